"""The results store: a directory of Parquet part files, one row per point.

* :mod:`.schema`: every column-name tuple and the Arrow schema (from the model's tables);
* :mod:`.parts`: committing, checking, quarantining and reading part files.
"""
