"""The results store: a directory of Parquet part files, one row per point.

* :mod:`.schema`: every column-name tuple and the Arrow schema (from the model's tables);
* :mod:`.identity`: point identity, the ``point_id`` a sweep stores a point under and
  ``asi-answer`` looks it up by (hashes of the model version, labels, cost profile,
  seed, samples and the point's parameters);
* :mod:`.parts`: committing a part (temporary name, fsync, rename, digest in the name),
  verifying and quarantining parts, litter of killed writers (the nightly history,
  :mod:`pipeline.projection.history`, commits and checks its parts with the same functions);
* :mod:`.readers`: checked reads (digests verified once, cached in the store's index),
  ids for resuming, rows, lookups by id, with a duplicate check as a safety net, and a
  folder of parts read whole (a night of the history);
* :mod:`.dedup`: the one dedup rule (earliest ``created_at``, then smallest ``run_id``)
  and the losing copies found by position from the ids alone (compaction, the frame);
* :mod:`.frame`: the store as a lazy Dask DataFrame in a :class:`~.frame.Scope`, one row
  per point (what the report aggregates; not re-exported here, callers import it);
* :mod:`.compaction`: after a sweep commits, one row per point on disk;
* :mod:`.synthetic`: a store of made-up results at any size, for measuring its readers
  (not re-exported here).

No module outside this package opens a part file. This package re-exports the
functions callers use (``store.read(path)``).
"""

from asi_slowdown.pipeline.store.compaction import compact
from asi_slowdown.pipeline.store.dedup import dedupe
from asi_slowdown.pipeline.store.parts import (
    DIGEST_CHARS,
    QUARANTINE,
    STALE_TMP_SECONDS,
    CorruptPart,
    PartWriter,
    StoreWriteError,
    check_writable,
    commit_bytes,
    content_digest,
    encode_part,
    git_revision,
    is_stale_temporary,
    name_digest,
    new_run_id,
    part_files,
    part_name,
    quarantine,
    remove_stale_temporaries,
    temporary_name,
    verify,
    with_provenance,
    write_part,
)
from asi_slowdown.pipeline.store.readers import (
    INDEX,
    check_folder,
    check_parts,
    existing_ids,
    load_index,
    lookup,
    read,
)

__all__ = [
    "DIGEST_CHARS",
    "INDEX",
    "QUARANTINE",
    "STALE_TMP_SECONDS",
    "CorruptPart",
    "PartWriter",
    "StoreWriteError",
    "check_folder",
    "check_parts",
    "commit_bytes",
    "check_writable",
    "compact",
    "content_digest",
    "dedupe",
    "encode_part",
    "existing_ids",
    "git_revision",
    "is_stale_temporary",
    "load_index",
    "lookup",
    "name_digest",
    "new_run_id",
    "part_files",
    "part_name",
    "quarantine",
    "read",
    "remove_stale_temporaries",
    "temporary_name",
    "verify",
    "with_provenance",
    "write_part",
]
