"""Sweeps: Hydra overrides -> one grid table -> chunks evaluated on Ray -> the store.

* :mod:`.grid`: override parsing, validation and grid expansion (points named by
  :mod:`pipeline.store.identity`);
* :mod:`.points`: a profile (one composed config's cost draws and base point);
* :mod:`.chunks`: evaluating a chunk of points into store rows, chunk sizing;
* :mod:`.dispatch`: chunks as Ray tasks on the Ray session (:mod:`pipeline.execution`),
  bounded dispatch with retries, stopped in order;
* :mod:`.run`: a sweep end to end; :mod:`.sweeper`: the Hydra sweeper plugin's logic.
"""
