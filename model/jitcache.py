"""numba's on-disk machine code, dropped when any source of ``model/`` changed since.

numba keys a cached compilation (``cache=True``) to its own file's modification time only.
The compiled pass (:mod:`model.kernel`) links in the selection (:mod:`model.select`) and
freezes the mechanism's module-level constants (:mod:`model.mechanism`, :mod:`model.params`)
into its machine code, so an edit to one of those files alone left the kernel's cache in
place: stale results, or a crash when the selection's buffers changed shape. Before anything
is compiled, :func:`drop_stale_machine_code` compares a digest of every ``model/*.py`` with
the one recorded beside the cache and deletes the cached code when they differ.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

STAMP = "numba-sources.sha256"
"""The file in ``__pycache__`` recording the sources' digest the cached code was made from."""


def sources_digest(folder: Path) -> str:
    """SHA-256 of the folder's ``*.py`` files, names and contents, in name order."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def drop_stale_machine_code(folder: Path = Path(__file__).parent) -> bool:
    """Delete ``folder/__pycache__``'s numba files (``*.nbi`` index, ``*.nbc`` code) unless they
    were made from the sources as they are; record the sources' digest. True if any were
    deleted. A folder that cannot be written (an installed package: numba then caches
    elsewhere, and a reinstall rewrites every file anyway) is left alone."""
    cache = folder / "__pycache__"
    stamp = cache / STAMP
    digest = sources_digest(folder)
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    dropped = False
    try:
        for path in cache.glob("*.nb[ic]"):
            path.unlink(missing_ok=True)  # another process may drop it first
            dropped = True
        cache.mkdir(exist_ok=True)
        partial = cache / f"{STAMP}.{digest[:8]}.tmp"
        partial.write_text(digest)
        partial.replace(stamp)  # whole or absent, for a process reading it meanwhile
    except OSError:
        pass
    return dropped
