"""Sweeps: Hydra overrides -> one grid table -> chunks evaluated on Ray -> the store.

* :mod:`.grid`: override parsing, validation and grid expansion (``point_id`` hashing);
* :mod:`.points`: a profile (one composed config's cost draws and base point);
* :mod:`.chunks`: evaluating a chunk of points into store rows, chunk sizing;
* :mod:`.raybackend`: Ray sessions and bounded dispatch with retries;
* :mod:`.run`: a sweep end to end; :mod:`.sweeper`: the Hydra sweeper plugin's logic.
"""
