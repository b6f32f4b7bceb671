"""The ASI mechanism as per-op event counts, vectorized over points.

Everything here depends on the point only (workload, CPU count, flags), not
on the uncertain costs. The model's time per op is then a sum over events of
``count x unit cost`` (:mod:`model.evaluate`), which is why counts and costs
are kept apart: one matrix product prices every point for every sample.

Mechanism (``shared/design/DOMAIN.md`` and the ``asi/6.16`` prototype,
``arch/x86/mm/asi.c``, ``mm/ephmap.c``):

* A kernel entry that touches a sensitive page through the physmap faults and
  exits ASI; the rest of that entry runs unrestricted, and the return to user
  space re-enters. So one syscall pays at most one exit/enter pair, whatever
  number of its steps would have exited.
* Within a page-cache I/O syscall the possible exit points, in code order,
  are: filesystem metadata, blocking on a page-cache miss (a context switch),
  the page-cache copy, and a zero-fill fault taken while the syscall holds
  the ephmap slot. The exit is attributed to the first that happens.
* User page faults (zero-fill, copy-on-write) and context switches outside
  I/O syscalls are kernel entries of their own: one pair each when they exit.
* Migrating a page whose direct map is removed (secretmem, guest_memfd)
  either restores the direct map for the copy and removes it again, which
  needs a TLB shootdown on every CPU, or maps source and destination through
  the ephmap, which is CPU-local but needs two slots at once. It runs in a
  kernel thread (kcompactd), which stays unrestricted: no exits are counted.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .units import PAGE_SIZE

INVLPG_CEILING = 33
"""``tlb_single_page_flush_ceiling``: an ephmap unmap of fewer pages uses INVLPG
per page, else a full local flush (x86 ``arch/x86/mm/tlb.c``, commit a5102476a24b)."""

EPHMAP_REGION_PAGES = 512
"""Pages in one CPU's ephmap region: ``PAGE_SIZE << MAX_PAGECACHE_ORDER`` with
``MAX_PAGECACHE_ORDER = HPAGE_PMD_ORDER = 9`` on x86-64. With multi_slot's lazy
flush the region is flushed once per wrap, i.e. once per this many pages mapped."""

RECLAIM_BATCH = 32
"""Pages reclaim frees per batch (``SWAP_CLUSTER_MAX``): with a lazy ephmap flush
one mm-wide flush covers the evictions of a batch."""

EXIT_SOURCES: tuple[str, ...] = (
    "page_cache",
    "metadata",
    "context_switch",
    "zeroing",
    "cow",
    "nested_slot",
)
"""Why an exit happened; ``nested_slot`` is ephmap use that found no free slot."""

FAULTING_SOURCES: tuple[str, ...] = tuple(s for s in EXIT_SOURCES if s != "context_switch")
"""Sources that exit through a kernel page fault (context switches call asi_exit directly).

A tuple, not a set: sums over it must add in the same order in every process
(a set's order follows the per-process string hash seed, which would change
the last bit of results between runs)."""


# --------------------------------------------------------------------------- page cache
def pages_per_io(io_size):
    """Pages one I/O syscall copies [pages] (I/O assumed page aligned)."""
    return np.ceil(io_size / PAGE_SIZE)


def hit_ratio(file_size, page_cache_size, sequential):
    """Page-cache hit ratio in steady state [0-1].

    Uniform random access to a file larger than the cache hits with
    probability ``cache / file``; a sequential scan of a file larger than an
    LRU cache misses every page (each page is evicted before it comes round).
    """
    fits = file_size <= page_cache_size
    random_hits = np.minimum(1.0, page_cache_size / file_size)
    return np.where(sequential, np.where(fits, 1.0, 0.0), random_hits)


def blocks_per_io(io_size, readahead, sequential, hits):
    """Probability that one I/O syscall blocks on the device [0-1].

    A random miss always blocks; a sequential reader with asynchronous
    readahead blocks about once per readahead window it catches up with.
    """
    misses = 1.0 - hits
    return np.where(sequential, misses * np.minimum(1.0, io_size / readahead), misses)


def device_time_per_io(io_size, cpus, device_latency, device_bandwidth, sequential, hits):
    """Time one I/O syscall waits for the device [ns].

    Every CPU runs one job, so each gets ``1/cpus`` of the device bandwidth.
    Sequential readahead hides the latency behind the transfer.
    """
    transfer = io_size * cpus / (device_bandwidth / 1e9)
    return (1.0 - hits) * np.where(sequential, transfer, device_latency + transfer)


# --------------------------------------------------------------------------- exits
def reads_via_ephmap(c: Mapping[str, np.ndarray]):
    """Whether I/O syscalls copy through the ephmap: the flag is on and the
    workload's filesystem read path has been converted."""
    return c["ephmap"] & c["ephmap_read_path"]


def effective_slots(ephmap_slots, multi_slot):
    """Ephmap allocations a CPU can hold: one in the single-slot prototype."""
    return np.where(multi_slot, ephmap_slots, 1.0)


def context_switch_exit_probability(ctxsw_same_mm, ctxsw_mm_change):
    """Probability that one context switch exits: always, or only when it switches mm."""
    return np.where(ctxsw_same_mm, ctxsw_mm_change, 1.0)


def exits_per_op(c: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ASI exit/enter pairs per op, by source (:data:`EXIT_SOURCES`)."""
    hits = hit_ratio(c["file_size"], c["page_cache_size"], c["sequential"])
    slots = effective_slots(c["ephmap_slots"], c["multi_slot"])
    zeroing_via_ephmap = c["ephmap"] & c["ephmap_zeroing"]
    cow_via_ephmap = c["ephmap"] & c["multi_slot"] & (slots >= 2)
    ctx_exit = context_switch_exit_probability(c["ctxsw_same_mm"], c["ctxsw_mm_change"])

    # Within one I/O syscall, in code order; the first that happens exits.
    p_metadata = c["metadata_per_io"] * ~c["metadata_mapped"]
    p_block = blocks_per_io(c["io_size"], c["readahead"], c["sequential"], hits) * ctx_exit
    p_page_cache = (~reads_via_ephmap(c)).astype(float)
    # A zero-fill fault under the held slot exits: through the physmap without
    # ephmap_zeroing, or for want of a second slot with it.
    p_fault_zeroing = c["io_fault_fraction"] * ~zeroing_via_ephmap
    p_fault_no_slot = c["io_fault_fraction"] * (
        zeroing_via_ephmap & reads_via_ephmap(c) & (slots < 2)
    )

    io = c["io_per_op"]
    not_yet = 1.0 - p_metadata
    metadata = io * p_metadata
    block = io * not_yet * p_block
    not_yet = not_yet * (1.0 - p_block)
    page_cache = io * not_yet * p_page_cache
    not_yet = not_yet * (1.0 - p_page_cache)
    io_zeroing = io * not_yet * p_fault_zeroing
    nested_slot = io * not_yet * p_fault_no_slot

    return {
        "page_cache": page_cache,
        "metadata": metadata,
        "context_switch": block + c["ctxsw_per_op"] * ctx_exit,
        "zeroing": io_zeroing + c["zero_fill_per_op"] * ~zeroing_via_ephmap,
        "cow": c["cow_per_op"] * ~cow_via_ephmap,
        "nested_slot": nested_slot,
    }


# --------------------------------------------------------------------------- migration
def migrates_via_ephmap(c: Mapping[str, np.ndarray]):
    """Whether page migration maps source and destination through the ephmap.

    Both must be mapped at once, so it needs ``multi_slot`` with at least two
    slots; with one slot migration falls back to restoring the direct map.
    """
    return (
        c["ephmap"] & c["multi_slot"] & (effective_slots(c["ephmap_slots"], c["multi_slot"]) >= 2)
    )


def migration_per_op(c: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Pages migrated per op by each strategy, and the mm switches the ephmap path needs.

    * ``via_direct_map``: restore the direct map of source and destination
      (two PTEs), copy, remove them again and flush the two pages on every
      CPU (``flush_tlb_kernel_range``: kernel mappings are shared by all).
    * ``via_ephmap``: map both pages in this CPU's ephmap, copy, unmap and
      flush them locally (the source is freed next, so no lazy flush here).
      From a kernel thread with no user mm, ``migration_temporary_mm`` adds a
      switch to a temporary mm and back (two CR3 writes) per page.
    """
    via_ephmap = migrates_via_ephmap(c)
    pages = c["migrations_per_op"]
    return {
        "via_direct_map": pages * ~via_ephmap,
        "via_ephmap": pages * via_ephmap,
        "mm_switches": pages * (via_ephmap & c["migration_temporary_mm"]),
    }


# --------------------------------------------------------------------------- ephmap
def ephmap_use_per_op(c: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ephmap work per op: pages mapped, INVLPGs, full local flushes, mm-wide flushes.

    * read(): maps the pages it copies, at most one folio per mapping, and
      unmaps each mapping at once: INVLPG per page below
      :data:`INVLPG_CEILING` pages, else a full local flush.
    * zeroing through the ephmap maps one page (a zero-fill fault inside
      read() only when a second slot is free); copy-on-write maps two.
    * With ``multi_slot`` the flush is lazy: nothing per unmap, one full flush
      per wrap of the CPU's region, but a page leaving the page cache may
      still sit in any CPU's TLB, so reclaim flushes every CPU's region once
      per batch: a shootdown whose local part is a full flush.
    * Page migration (:func:`migration_per_op`): two PTEs and two local
      INVLPGs per page either way, plus a shootdown per page via the direct map.
    """
    ephmap = c["ephmap"]
    slots = effective_slots(c["ephmap_slots"], c["multi_slot"])
    lazy = ephmap & c["multi_slot"]
    zeroing_via_ephmap = ephmap & c["ephmap_zeroing"]
    cow_via_ephmap = ephmap & c["multi_slot"] & (slots >= 2)
    io = c["io_per_op"]

    pages = pages_per_io(c["io_size"])
    pages_per_map = np.minimum(c["folio_pages"], pages)
    via_ephmap = reads_via_ephmap(c)
    read_maps = io * via_ephmap * np.ceil(pages / pages_per_map)
    read_pages = io * via_ephmap * pages
    # a zero-fill fault inside read() finds no free slot if read() holds the only one
    zero_pages = (
        io * c["io_fault_fraction"] * (zeroing_via_ephmap & ~(via_ephmap & (slots < 2)))
        + c["zero_fill_per_op"] * zeroing_via_ephmap
    )
    cow_pages = 2.0 * c["cow_per_op"] * cow_via_ephmap
    mapped = read_pages + zero_pages + cow_pages

    small = pages_per_map < INVLPG_CEILING
    eager_invlpg = np.where(small, read_pages, 0.0) + zero_pages + cow_pages
    eager_full = np.where(small, 0.0, read_maps)

    hits = hit_ratio(c["file_size"], c["page_cache_size"], c["sequential"])
    evicted = io * pages * (1.0 - hits)
    # only pages read through the ephmap can be stale in some CPU's TLB
    reclaim_shootdowns = np.where(lazy & via_ephmap, evicted / RECLAIM_BATCH, 0.0)
    migration = migration_per_op(c)
    migrated = migration["via_direct_map"] + migration["via_ephmap"]
    return {
        "pages_mapped": mapped + 2.0 * migrated,
        "invlpg": np.where(lazy, 0.0, eager_invlpg) + 2.0 * migrated,
        "full_flush": np.where(lazy, mapped / EPHMAP_REGION_PAGES, eager_full) + reclaim_shootdowns,
        "shootdowns": reclaim_shootdowns + migration["via_direct_map"],
        "mm_switches": migration["mm_switches"],
    }


# --------------------------------------------------------------------------- counts
def native_counts(c: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Native events per op, keyed by the native cost they are priced with.

    ``bytes`` is memory copied or zeroed per op (priced by bandwidth), and
    ``fixed`` the time that carries no uncertain cost [ns].
    """
    hits = hit_ratio(c["file_size"], c["page_cache_size"], c["sequential"])
    io = c["io_per_op"]
    io_faults = io * c["io_fault_fraction"]
    return {
        "syscall": io + c["syscalls_per_op"],
        "page_lookup": io * pages_per_io(c["io_size"]),
        "user_fault": c["zero_fill_per_op"] + c["cow_per_op"] + io_faults,
        # blocking switches out to another task and back in: two switches
        "context_switch": 2.0
        * io
        * blocks_per_io(c["io_size"], c["readahead"], c["sequential"], hits)
        + c["ctxsw_per_op"],
        "bytes": io * c["io_size"]
        + PAGE_SIZE
        * (c["zero_fill_per_op"] + c["cow_per_op"] + io_faults + c["migrations_per_op"]),
        "fixed": c["base_time"]
        + io
        * device_time_per_io(
            c["io_size"],
            c["cpus"],
            c["device_latency"],
            c["device_bandwidth"],
            c["sequential"],
            hits,
        ),
    }


def asi_counts(
    c: Mapping[str, np.ndarray], exits: Mapping[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Events per op that ASI adds, keyed by the ASI cost (:data:`model.costs.ASI_COSTS`)."""
    exits = exits_per_op(c) if exits is None else exits
    total = sum(exits.values())
    faulting = sum(exits[s] for s in FAULTING_SOURCES)
    use = ephmap_use_per_op(c)
    return {
        "fault_entry": faulting,
        "cr3_write": 2.0 * (total + use["mm_switches"]),
        "tlb_refill": total * ~c["cr3_noflush"] + use["full_flush"],
        "ibpb": total * c["ibpb"],
        "rsb_fill": total * c["ibpb"],
        "l1d_flush": total * c["l1tf"],
        "ephmap_pte": use["pages_mapped"],
        "invlpg": use["invlpg"],
        "full_flush": use["full_flush"],
        # a shootdown to other CPUs only exists when there are other CPUs
        "shootdown_base": use["shootdowns"] * (c["cpus"] > 1),
        "shootdown_per_cpu": use["shootdowns"] * (c["cpus"] - 1.0),
    }
