"""Freed memory handed back to the system while a report runs: its peak is what is alive.

The report's big frames (the grid, the store's rows in scope, the cube, the projection)
are built and dropped one after another. Two allocators would keep what they free: Arrow's
default pool (mimalloc or jemalloc) holds freed pages for reuse by Arrow alone, and glibc
raises its mmap threshold after each large free, so later large arrays come from heaps it
does not return either. Freed there, a phase's temporaries stay resident and add up
(issue 22: the nightly report's peak). :func:`returning_memory` puts Arrow on the system
allocator for the block and fixes glibc's threshold, so a large array is its own mapping,
returned when freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter (malloc.h): allocations of at least this many bytes are
mapped on their own and unmapped when freed; setting it turns off the dynamic threshold."""

MMAP_THRESHOLD = 128 * 1024
"""Bytes: glibc's own starting value (128 KiB), kept: a column of a partition or of the cube
(hundreds of KB to tens of MB) is above it."""


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold for the rest of the process; False where there is no glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))


@contextmanager
def returning_memory() -> Iterator[None]:
    """Arrow on the system allocator for the block, glibc's mmap threshold fixed (see above)."""
    import pyarrow as pa

    fix_mmap_threshold()
    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(before)


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far [bytes]: ``VmHWM``, the high-water mark of
    its own address space (``/proc/self/status``), else ``getrusage``'s ``ru_maxrss``.

    Not ``ru_maxrss`` first: Linux carries it across ``execve`` from the address space being
    replaced, so a process started by a large one (a test worker, a benchmark, a notebook;
    Python's ``subprocess`` may ``vfork``, sharing the parent's) reports the parent's peak
    until it exceeds it. A report measured 11x its cube under pytest-xdist that way.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
