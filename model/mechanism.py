"""The ASI mechanism as per-op event counts, vectorized over points.

Everything here depends on the point only (workload, CPU count, flags), not
on the uncertain costs: each function returns, per count, one value per point
(a column over the chunk's points). :mod:`model.evaluate` multiplies each
count elementwise with its cost's draws (a row over the samples) and adds the
products cost by cost; there is no count-by-cost matrix. The one input that
needs a cost sample, the number of exits that come from *time* rather than
from ops (ticks, interrupts, kernel-thread switches: a rate per second times
the time per op), is priced there too.

Mechanism (the ASI prototype, branch ``asi/6.16`` of github.com/bjackman/linux:
``arch/x86/mm/asi.c``, ``arch/x86/mm/tlb.c``, ``mm/ephmap.c``, ``mm/mermap.c``;
RFC v2 on lore, ``20250110-asi-rfc-v2-v2-N-8419288bc805@google.com``):

* A kernel entry that touches a sensitive page through the physmap faults and
  exits ASI; the rest of that entry runs unrestricted, and the return to user
  space re-enters. So one syscall pays at most one exit/enter pair, whatever
  number of its steps would have exited.
* Within a page-cache I/O syscall the possible exit points, in code order,
  are: entering a file system built as a module (module text is not mapped
  in the restricted address space: a public trace of the prototype shows
  ``ext4_file_read_iter+0``), filesystem metadata, blocking on a page-cache
  miss (a context switch), the page-cache copy (always for the share of
  I/O the ephmap does not convert: writes, pipes, other file systems), and
  a zero-fill fault taken while the syscall holds the ephmap slot. The exit
  is attributed to the first that happens.
* User page faults (zero-fill, copy-on-write) and context switches outside
  I/O syscalls are kernel entries of their own: one pair each when they exit.
  ``switch_mm_irqs_off`` calls ``asi_exit`` unconditionally, so every switch
  exits until ``ctxsw_same_mm``.
* ``native_flush_tlb_local`` calls ``asi_exit`` (RFC v2 patch 20: "the
  extremely costly asi_exit"): every full local TLB flush of the native
  kernel exits (source ``tlb_flush``), and so do the mermap's flush on wrap
  (``arch_mermap_flush_tlb`` through ``flush_tlb_local``) and, on every CPU,
  a reclaim shootdown of lazily flushed regions. The ephmap's own flush of a
  large mapping calls ``invpcid_flush_all`` directly and does not exit.
* Time-driven exits (:data:`TIME_SOURCES`) come from interrupts whose
  handlers touch sensitive data and from switches to the kernel threads they
  wake. ``asi_intr_enter``/``asi_intr_exit`` count the nesting: an exit in an
  interrupt taken from user mode re-enters at the outermost return, one taken
  in a restricted syscall lasts to the end of it, and one taken while the CPU
  is already unrestricted costs nothing. So they are a rate times the time
  per op spent restricted.
* Migrating a page whose direct map is removed (secretmem, guest_memfd)
  either restores the direct map for the copy and removes it again, which
  needs a TLB shootdown on every CPU, or maps source and destination through
  the ephmap, which is CPU-local but needs two slots at once. It runs in a
  kernel thread (kcompactd), which stays unrestricted: no exits are counted.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .params import VM_EXIT_REASONS
from .units import PAGE_SIZE

HUGE_PAGE_SIZE = 2 * 1024 * 1024
"""A PMD-mapped transparent huge page on x86-64 [bytes]: ``clear_huge_page`` zeroes its 512
subpages in one fault, so it exits once."""

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

OP_SOURCES: tuple[str, ...] = (
    "module_text",
    "page_cache",
    "metadata",
    "context_switch",
    "zeroing",
    "cow",
    "nested_slot",
    "tlb_flush",
    "guest_ram_zeroing",
)
"""Exits that ops cause, a fixed number per op; ``nested_slot`` is ephmap use that found no
free slot, ``tlb_flush`` a full local TLB flush (native, mermap wrap, reclaim shootdown),
``guest_ram_zeroing`` the host zeroing a page that will back guest RAM on the EPT violation
of the guest's first touch (``guest_ram_touched_per_op``)."""

VM_EXIT_SOURCES: tuple[str, ...] = tuple(f"vmexit_{reason}" for reason in VM_EXIT_REASONS)
"""ASI exits of a KVM host running a guest, one source per VM-exit reason
(:data:`model.params.VM_EXIT_REASONS`): the workload's VM exits per second of that reason
(``vmexits_<reason>_per_s``) times the CPU profile's share of them whose handling touches
sensitive data (``vmexit_share_<reason>``). The rest are handled in the KVM restricted
address space and go back to the guest without an exit: the prototype enters ASI right
before VM entry (``asi_enter`` in ``vmx_vcpu_enter_exit``/``svm_vcpu_enter_exit``, RFC v2
patch 21/29, lore ``20250110-asi-rfc-v2-v2-21-8419288bc805@google.com``) and only relaxes
after a VM exit. Which handlers touch guest memory is read from KVM's code (the shares in
``conf/cpu`` say where): TSC-deadline and x2APIC ICR writes and the preemption timer are
handled in the exit fastpath and touch none; an EPT violation pins the host page through
the VMM's page tables without reading it, and when the page is new its zeroing is its own
source (``guest_ram_zeroing``); an I/O exit is an ioeventfd signal (fast MMIO, port I/O) or
goes to the VMM (``kvm_run_return``), and only the few emulated in the kernel read the
guest's instruction through the VMM's mapping (user memory: RFC v2 patch 24/29 maps it only
into the userspace class). A HLT exit exits ASI only when the vCPU blocks (the share that
halt-polling does not end), in the host's context switch: always before ``ctxsw_same_mm``,
after it only when the host runs another mm (``ctxsw_mm_change``; the idle task keeps the
vCPU's mm). Steal time and PV clock updates after a vCPU is scheduled back in run while the
CPU is still unrestricted from that switch: no exit of their own."""

VMM_SOURCES: tuple[str, ...] = ("kvm_run_return", "vmm_syscall", "vmm_switch")
"""ASI exits of the host around a guest other than VM exits, each a rate per second per vCPU
(:data:`model.params.GUEST_HOST_PARAMS`):

* ``kvm_run_return``: every return of ``KVM_RUN`` to the VMM in user space (I/O and MMIO
  exits the VMM handles, signals) ends in an ``asi_exit()`` (RFC v2 patch 21/29 exits at the
  end of ``vcpu_run``), with the IBPB that the KVM class's guest-control taint asks for. The
  RFC v2 cover letter's intended design switches directly between the two restricted
  address spaces (``kvm_vmm_switch``; Google's deployment found avoiding that exit worth
  it), and its taint policy flushes no control-flow state between a VMM and its own guest,
  only on a later exit: no exit and no flush, but two CR3 writes and, while CR3 writes
  clear NOFLUSH, a TLB refill.
* ``vmm_syscall``: the VMM is an ordinary process under ASI; its reads and writes of the
  guest's disk image (ext4) and of 9p-shared files copy through the host page cache via
  the physmap, which the ephmap converts for tmpfs only: one exit per syscall.
* ``vmm_switch``: switches to and from the VMM's I/O threads (``switch_mm_irqs_off`` exits
  unconditionally); they share the vCPU threads' mm, so with ``ctxsw_same_mm`` only a
  switch to another mm exits (``ctxsw_mm_change``)."""

GUEST_SOURCES: tuple[str, ...] = (*VM_EXIT_SOURCES, *VMM_SOURCES, "guest_ram_zeroing")
"""Every host exit source of a guest workload, in the order ``asi-answer`` lists them."""

TIME_SOURCES: tuple[str, ...] = (
    "tick",
    "interrupt",
    "kthread_switch",
    *VM_EXIT_SOURCES,
    *VMM_SOURCES,
)
"""Exits that time causes: a rate per second per CPU times the time per op spent restricted.
``tick`` is the CPU profile's ``tick_exits`` rate, ``interrupt`` the workload's
``irq_exits_per_s``, ``kthread_switch`` its ``kthread_switches_per_s``, the
:data:`VM_EXIT_SOURCES` a guest's VM exits and the :data:`VMM_SOURCES` the host's work around
it (per vCPU: a guest workload's ``cpus`` are its vCPUs, one per host CPU)."""

EXIT_SOURCES: tuple[str, ...] = (*OP_SOURCES, *TIME_SOURCES)
"""Why an exit happened. Tuples, not sets: sums over them must add in the same order in
every process (a set's order follows the per-process string hash seed, which would change
the last bit of results between runs)."""

FAULTING_SOURCES: tuple[str, ...] = (
    "module_text",
    "page_cache",
    "metadata",
    "zeroing",
    "cow",
    "nested_slot",
    "tick",
    "interrupt",
    *(s for s in VM_EXIT_SOURCES if s != "vmexit_hlt"),
    "vmm_syscall",
    "guest_ram_zeroing",
)
"""Sources that exit through a kernel page fault; context switches, TLB flushes and the end of
``KVM_RUN`` call ``asi_exit`` directly, without the fault entry. A VM exit's handler faults
on the sensitive page it touches; a HLT exit that blocks exits in the context switch."""

EXIT_REASONS: dict[str, tuple[str, ...]] = {
    "page_fault": FAULTING_SOURCES,
    "context_switch": ("context_switch", "kthread_switch", "vmexit_hlt", "vmm_switch"),
    "tlb_flush": ("tlb_flush",),
    "user_ret": (),
    "misc": ("kvm_run_return",),
}
"""The prototype's ``enum asi_exit_reason`` (``PAGE_FAULT``, ``USER_RET``, ``CONTEXT_SWITCH``,
``TLB_FLUSH``, ``MISC``) and the sources that exit with each, so exit rates compare with the
prototype's ``asi_exit`` tracepoints (``asi:asi_exit_pf`` counts the first). The model has no
source for ``USER_RET``; ``MISC`` (suspend, tests) holds the exit at the end of ``KVM_RUN``,
whose reason argument was not confirmed in the posted code (an assumption)."""

DWELL: dict[str, str] = {
    "module_text": "io",
    "page_cache": "io",
    "metadata": "io",
    "zeroing": "fault",
    "cow": "fault",
    "nested_slot": "fault",
    "context_switch": "rest",
    "tlb_flush": "rest",
    "tick": "rest",
    "interrupt": "rest",
    "kthread_switch": "rest",
    **{source: "rest" for source in VM_EXIT_SOURCES},
    **{source: "rest" for source in VMM_SOURCES},
    "guest_ram_zeroing": "fault",
}
"""How long the CPU stays unrestricted after an exit of each source, until ``asi_enter``:
``io`` the rest of an I/O syscall (its page lookups and copy, half a syscall's entry/exit
work), ``fault`` the rest of a user page fault (the fault's work and the page's zeroing or
copy), ``rest`` the cost ``kernel_rest`` (a path the model does not count)."""


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


def converted_io_share(c: Mapping[str, np.ndarray]):
    """Share of the I/O syscalls that copy through the ephmap [0-1]: those of a converted
    read path, less its ``unconverted_io_share`` (writes, pipes, other file systems)."""
    return reads_via_ephmap(c) * (1.0 - c["unconverted_io_share"])


def effective_slots(ephmap_slots, multi_slot):
    """Ephmap allocations a CPU can hold: one in the single-slot prototype."""
    return np.where(multi_slot, ephmap_slots, 1.0)


def context_switch_exit_probability(ctxsw_same_mm, ctxsw_mm_change):
    """Probability that one context switch exits: always, or only when it switches mm."""
    return np.where(ctxsw_same_mm, ctxsw_mm_change, 1.0)


def exits_per_op(c: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ASI exit/enter pairs per op that ops cause, by source (:data:`OP_SOURCES`)."""
    hits = hit_ratio(c["file_size"], c["page_cache_size"], c["sequential"])
    slots = effective_slots(c["ephmap_slots"], c["multi_slot"])
    zeroing_via_ephmap = c["ephmap"] & c["ephmap_zeroing"]
    cow_via_ephmap = c["ephmap"] & c["multi_slot"] & (slots >= 2)
    ctx_exit = context_switch_exit_probability(c["ctxsw_same_mm"], c["ctxsw_mm_change"])

    # Within one I/O syscall, in code order; the first that happens exits.
    p_module = np.asarray(c["io_module_text"], dtype=np.float64)
    p_metadata = c["metadata_per_io"] * ~c["metadata_mapped"]
    p_block = blocks_per_io(c["io_size"], c["readahead"], c["sequential"], hits) * ctx_exit
    p_page_cache = 1.0 - converted_io_share(c)
    # A zero-fill fault under the held slot exits: through the physmap without
    # ephmap_zeroing, or for want of a second slot with it.
    p_fault_zeroing = c["io_fault_fraction"] * ~zeroing_via_ephmap
    p_fault_no_slot = c["io_fault_fraction"] * (
        zeroing_via_ephmap & reads_via_ephmap(c) & (slots < 2)
    )

    io = c["io_per_op"]
    module = io * p_module
    not_yet = 1.0 - p_module
    metadata = io * not_yet * p_metadata
    not_yet = not_yet * (1.0 - p_metadata)
    block = io * not_yet * p_block
    not_yet = not_yet * (1.0 - p_block)
    page_cache = io * not_yet * p_page_cache
    not_yet = not_yet * (1.0 - p_page_cache)
    io_zeroing = io * not_yet * p_fault_zeroing
    nested_slot = io * not_yet * p_fault_no_slot

    use = ephmap_use_per_op(c)
    return {
        "module_text": module,
        "page_cache": page_cache,
        "metadata": metadata,
        # a switch that blocks inside an I/O syscall exiting anyway (a pipe wait) is that
        # syscall's one exit, already counted with its copy
        "context_switch": block + c["ctxsw_per_op"] * (1.0 - c["ctxsw_in_exiting_io"]) * ctx_exit,
        "zeroing": io_zeroing + c["zero_fill_per_op"] * ~zeroing_via_ephmap,
        "cow": c["cow_per_op"] * ~cow_via_ephmap,
        "nested_slot": nested_slot,
        # the native kernel's full flushes, the mermap's wrap flush, and a reclaim
        # shootdown's full flush on every CPU (initiator and remotes) all exit
        "tlb_flush": c["tlb_flushes_per_op"]
        + use["wrap_flushes"]
        + use["reclaim_shootdowns"] * c["cpus"],
        "guest_ram_zeroing": guest_ram_zeroings_per_op(c) * ~zeroing_via_ephmap,
    }


def guest_ram_zeroings_per_op(c: Mapping[str, np.ndarray]):
    """Host pages zeroed per op to back guest RAM the guest touches first [pages/op]: one per
    2 MiB with transparent huge pages (``clear_huge_page`` in one EPT-violation fault), else
    one per 4 KiB. A fresh VM touches its whole working set once."""
    return c["guest_ram_touched_per_op"] / np.where(c["guest_ram_huge"], HUGE_PAGE_SIZE, PAGE_SIZE)


def vmm_exit_rates(c: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The host's exits around a guest other than VM exits [1/s per vCPU], by
    :data:`VMM_SOURCES`: returns to the VMM (none with ``kvm_vmm_switch``), the VMM's page-cache
    syscalls and its I/O threads' switches (with ``ctxsw_same_mm`` only to another mm).
    Zero for a ``kernel_thread`` op, which runs no guest."""
    user = ~np.asarray(c["kernel_thread"], dtype=bool)
    ctx_exit = context_switch_exit_probability(c["ctxsw_same_mm"], c["ctxsw_mm_change"])
    return {
        "kvm_run_return": c["kvm_run_returns_per_s"] * ~c["kvm_vmm_switch"] * user,
        "vmm_syscall": c["vmm_io_syscalls_per_s"] * user,
        "vmm_switch": c["vmm_thread_switches_per_s"] * ctx_exit * user,
    }


def direct_vmm_switch_rate(c: Mapping[str, np.ndarray]):
    """Direct switches between the KVM and the userspace restricted address spaces per second
    per vCPU (``kvm_vmm_switch``): one per return to the VMM, paired with the way back in;
    each pair is two CR3 writes and, unless they keep NOFLUSH, a TLB refill [1/s]."""
    user = ~np.asarray(c["kernel_thread"], dtype=bool)
    return c["kvm_run_returns_per_s"] * c["kvm_vmm_switch"] * user


def time_exit_rates(c: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Time-driven exit rates that depend on the point [1/s per CPU], by source.

    The third, ``tick``, is the CPU profile's uncertain ``tick_exits`` rate
    (zero for a ``kernel_thread`` op, see :func:`evaluate.price`). A switch to
    a kernel thread keeps the mm (lazy TLB), so it stops exiting with
    ``ctxsw_same_mm``. A kernel thread that stays unrestricted takes none.
    """
    user = ~np.asarray(c["kernel_thread"], dtype=bool)
    return {
        "interrupt": c["irq_exits_per_s"] * user,
        "kthread_switch": c["kthread_switches_per_s"] * ~c["ctxsw_same_mm"] * user,
    }


def vm_exit_rates(c: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A guest's VM exits per second per vCPU, by reason (:data:`model.params.VM_EXIT_REASONS`).

    Zero for a ``kernel_thread`` op, which runs no guest.
    """
    user = ~np.asarray(c["kernel_thread"], dtype=bool)
    return {reason: c[f"vmexits_{reason}_per_s"] * user for reason in VM_EXIT_REASONS}


def vmm_exit_rate(c: Mapping[str, np.ndarray]) -> np.ndarray:
    """A guest's returns to the VMM in user space per second per vCPU
    (``kvm_run_returns_per_s``, whatever the roadmap stage: VMSCAPE's IBPB runs on each in a
    kernel without ASI); zero for a ``kernel_thread`` op, which runs no guest."""
    return c["kvm_run_returns_per_s"] * ~np.asarray(c["kernel_thread"], dtype=bool)


def vm_exit_asi_factor(c: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per VM-exit source, what multiplies rate x share [0-1]: 1, and for ``vmexit_hlt`` the
    probability that the host context switch of a blocked vCPU exits
    (:func:`context_switch_exit_probability`)."""
    one = np.ones_like(np.asarray(c["ctxsw_mm_change"], dtype=np.float64))
    out = {source: one for source in VM_EXIT_SOURCES}
    out["vmexit_hlt"] = context_switch_exit_probability(c["ctxsw_same_mm"], c["ctxsw_mm_change"])
    return out


def dwell_counts(c: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """What one unrestricted period costs, per :data:`DWELL` kind: native cost name -> count.

    ``bytes`` is memory copied or zeroed in it (priced by bandwidth). The time
    spent unrestricted decides how many time-driven exits find the CPU
    already unrestricted, and what stunning the SMT sibling costs.
    """
    one = np.ones_like(np.asarray(c["io_size"], dtype=np.float64))
    return {
        "io": {
            "syscall": 0.5 * one,
            "page_lookup": pages_per_io(c["io_size"]),
            "bytes": c["io_size"],
        },
        "fault": {"user_fault": one, "bytes": PAGE_SIZE * one},
        "rest": {"kernel_rest": one},
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
    """Ephmap work per op: uses, pages mapped, INVLPGs, flushes, shootdowns.

    * read(): maps the pages it copies, at most one folio per mapping (one
      *use*: ``ephmap_get`` + ``ephmap_put``), and unmaps each mapping at
      once: INVLPG per page below :data:`INVLPG_CEILING` pages, else a full
      local flush (``invpcid_flush_all``, which does not exit).
    * zeroing through the ephmap maps one page (a zero-fill fault inside
      read() only when a second slot is free); copy-on-write maps two (two uses).
    * With ``multi_slot`` (the mermap) the flush is lazy: nothing per unmap,
      one full flush per wrap of the CPU's region (``wrap_flushes``: they go
      through ``flush_tlb_local``, so they exit), but a page leaving the page
      cache may still sit in any CPU's TLB, so reclaim flushes every CPU's
      region once per batch (``reclaim_shootdowns``).
    * Page migration (:func:`migration_per_op`): two PTEs, two software uses
      and two local INVLPGs per page either way, plus a shootdown per page via
      the direct map.
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
    converted = io * converted_io_share(c)
    read_maps = converted * np.ceil(pages / pages_per_map)
    read_pages = converted * pages
    # a zero-fill fault inside read() finds no free slot if read() holds the only one
    # guest RAM is zeroed 4 KiB at a time, a huge page's subpages one after another
    zero_pages = (
        io * c["io_fault_fraction"] * (zeroing_via_ephmap & ~(via_ephmap & (slots < 2)))
        + (c["zero_fill_per_op"] + c["guest_ram_touched_per_op"] / PAGE_SIZE) * zeroing_via_ephmap
    )
    cow_pages = 2.0 * c["cow_per_op"] * cow_via_ephmap
    mapped = read_pages + zero_pages + cow_pages
    uses = read_maps + zero_pages + cow_pages

    small = pages_per_map < INVLPG_CEILING
    eager_invlpg = np.where(small, read_pages, 0.0) + zero_pages + cow_pages
    eager_full = np.where(small, 0.0, read_maps)
    wrap_flushes = np.where(lazy, mapped / EPHMAP_REGION_PAGES, 0.0)

    hits = hit_ratio(c["file_size"], c["page_cache_size"], c["sequential"])
    evicted = converted * pages * (1.0 - hits)
    # only pages read through the ephmap can be stale in some CPU's TLB
    reclaim_shootdowns = np.where(lazy & via_ephmap, evicted / RECLAIM_BATCH, 0.0)
    migration = migration_per_op(c)
    migrated = migration["via_direct_map"] + migration["via_ephmap"]
    return {
        "uses": uses + 2.0 * migrated,
        "pages_mapped": mapped + 2.0 * migrated,
        "invlpg": np.where(lazy, 0.0, eager_invlpg) + 2.0 * migrated,
        # unmaps that end in INVLPG: each drops the PCID's paging-structure caches once
        "invlpg_unmaps": np.where(
            lazy, 0.0, np.where(small, read_maps, 0.0) + zero_pages + cow_pages
        )
        + migrated,
        # eager unmaps of large mappings: a full flush that does not exit, then a refill
        "silent_full_flush": np.where(lazy, 0.0, eager_full),
        "wrap_flushes": wrap_flushes,
        "reclaim_shootdowns": reclaim_shootdowns,
        "shootdowns": reclaim_shootdowns + migration["via_direct_map"],
        "mm_switches": migration["mm_switches"],
        # unmaps of kernel addresses the other ASI address space may hold (cr3_noflush)
        "invalidations": np.where(lazy, 0.0, uses)
        + 2.0 * migrated
        + wrap_flushes
        + reclaim_shootdowns,
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


def work_counts(
    c: Mapping[str, np.ndarray], use: Mapping[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """ASI work per op other than exit/enter pairs, keyed by ASI cost (:data:`model.costs.ASI_COSTS`).

    * Every ephmap use pays its PTE writes per page and a software path:
      the prototype's page-table walk (``ephmap_get``/``ephmap_put``; the
      mermap's ``apply_to_existing_page_range`` walks too), or with
      ``mapping_fastpath`` a cached PTE pointer into preallocated tables.
    * Every unmap that ends in INVLPG drops the PCID's paging-structure
      caches, so the next TLB misses walk from the top (``psc_rewalk``).
    * A full local flush throws the TLB away: the workload's working set is
      walked again (``page_walk`` per entry), on every CPU a reclaim shootdown reaches.
    * Every new mm gets a restricted address space (``asi_mm_setup``) and,
      with the ephmap, page tables for every possible CPU (``ephmap_setup``
      loops over ``for_each_possible_cpu``; ``cpus`` stands for them).
    """
    use = ephmap_use_per_op(c) if use is None else use
    fast = c["mapping_fastpath"]
    cpus = c["cpus"]
    full_flushes = use["silent_full_flush"] + use["wrap_flushes"] + use["reclaim_shootdowns"]
    flushed_tlbs = use["silent_full_flush"] + use["wrap_flushes"] + use["reclaim_shootdowns"] * cpus
    return {
        "cr3_write": 2.0 * use["mm_switches"],
        "page_walk": c["tlb_working_set"] * flushed_tlbs,
        "ephmap_pte": use["pages_mapped"],
        "ephmap_software": use["uses"] * ~fast,
        "ephmap_software_fast": use["uses"] * fast,
        "invlpg": use["invlpg"],
        "psc_rewalk": use["invlpg_unmaps"],
        "full_flush": full_flushes,
        # a shootdown to other CPUs only exists when there are other CPUs
        "shootdown_base": use["shootdowns"] * (cpus > 1),
        "shootdown_per_cpu": use["shootdowns"] * (cpus - 1.0),
        "asi_mm_setup": np.asarray(c["mm_setups_per_op"], dtype=np.float64),
        "ephmap_setup_per_cpu": c["mm_setups_per_op"] * cpus * c["ephmap"],
    }


PAIR_COSTS: tuple[str, ...] = (
    "fault_entry",
    "cr3_write",
    "page_walk",
    "ibpb",
    "rsb_fill",
    "l1d_flush",
    "generation_check",
    "smt_stun",
)
"""What one exit/enter pair can cost (:func:`model.evaluate` prices it per sample):

* ``fault_entry`` for :data:`FAULTING_SOURCES`; two CR3 writes;
* the TLB refill, ``tlb_working_set`` page walks: always, since neither CR3
  write sets NOFLUSH; with ``cr3_noflush`` only when a kernel-address
  invalidation that the other address space may hold happened since the
  last switch (``invalidate_other``), with probability ``1 - exp(-I / E)``
  for ``I`` invalidations and ``E`` exits per op, and then a
  ``generation_check`` on every enter;
* IBPB where the CPU has it (``cpu.ibpb``) and the RSB fill always
  (``maybe_flush_control`` runs ``fill_return_buffer()`` whether or not
  ``X86_FEATURE_IBPB`` is set; the user-entry control taint is re-armed on
  every enter); an L1D flush on L1TF CPUs (``maybe_flush_data``);
* with ``smt_stun``, the stun handshake and the sibling's lost time while
  the core runs unrestricted (:data:`DWELL`).
"""


# --------------------------------------------------------------------------- default mitigations
DEFAULT_SINCE: dict[str, int] = {
    "pti": 415,
    "ibrs": 519,
    "retpoline": 415,
    "call_depth": 602,
    "bhi": 609,
    "its": 615,
    "verw": 502,
    "srso": 605,
    "swapgs_fence": 503,
    "rsb_ctxsw": 415,
    "ibpb_cond": 420,
    "l1d_vmentry": 419,
    "pbrsb_vmexit": 600,
    "vmscape": 617,
}
"""The first kernel version (major x 100 + minor) whose default runs each mitigation on a CPU
that needs it, from that version's ``Documentation/admin-guide/hw-vuln/`` and
``arch/x86/kernel/cpu/bugs.c`` (stable backports came earlier; the model follows mainline):

* ``pti`` 4.15 (``Documentation/x86/pti.txt``, now ``arch/x86/pti.rst``), ``retpoline`` and
  ``rsb_ctxsw`` 4.15 (``spectre.rst``: ``spectre_v2=auto`` picks retpoline, and the RSB is
  filled on context switch where there is no eIBRS);
* ``l1d_vmentry`` 4.19 (``l1tf.rst``), ``ibpb_cond`` 4.20 (``spectre.rst``,
  ``spectre_v2_user=prctl``/``seccomp``), ``verw`` 5.2 (``mds.rst``; TAA 5.4, MMIO 5.19 and
  RFDS 6.9 reuse it), ``swapgs_fence`` 5.3 (``spectre.rst``, the SWAPGS variant);
* ``ibrs`` 5.19 (``spectre.rst``, Retbleed: ``retbleed=auto`` selects IBRS on Intel parts
  without eIBRS whose RSB underflows to the BTB, and ``spectre_v2=auto`` follows it with
  ``ibrs`` in place of retpoline), ``pbrsb_vmexit`` 6.0 (``spectre.rst``, PBRSB);
* ``call_depth`` 6.2: ``retbleed=stuff`` exists from 6.2 (``CONFIG_CALL_DEPTH_TRACKING``:
  "off by default and needs to be enabled on the kernel command line via the retbleed=stuff
  option"); IBRS stayed the default on Skylake-generation parts, so no shipped profile sets it;
* ``srso`` 6.5 (``srso.rst``), ``bhi`` 6.9 (``spectre.rst``, "Branch History Injection":
  ``spectre_bhi=on`` by default, the clearing loop where ``BHI_DIS_S`` is absent),
  ``its`` 6.15 (``indirect-target-selection.rst``), ``vmscape`` 6.17 (``vmscape.rst``)."""

MITIGATION_TERMS: dict[str, tuple[tuple[str, str], ...]] = {
    "pti": (("entries", "pti"), ("pti_refills", "page_walk")),
    "ibrs": (("spec_ctrl_writes", "spec_ctrl_write"), ("kernel_time", "ibrs_factor")),
    "retpoline": (("kernel_time", "retpoline_factor"),),
    "call_depth": (("kernel_time", "call_depth_factor"),),
    "bhi": (("syscalls", "bhb_clear"), ("vm_entries", "bhb_clear")),
    "its": (("kernel_time", "its_factor"),),
    "verw": (("entries", "verw"), ("vm_entries", "verw")),
    "srso": (("entries", "srso"), ("kernel_time", "safe_ret_factor")),
    "swapgs_fence": (("entries", "swapgs_fence"),),
    "rsb_ctxsw": (("context_switches", "rsb_fill"),),
    "ibpb_cond": (("ibpb_switches", "ibpb"),),
    "l1d_vmentry": (("unsafe_vm_entries", "l1d_flush"),),
    "pbrsb_vmexit": (("vm_entries", "pbrsb"),),
    "vmscape": (("vmm_exits", "ibpb"),),
}
"""Each default mitigation as a sum of terms, an event count per op (:func:`default_events`)
times a cost, or the kernel time per op [ns] times a factor (:data:`model.costs.KERNEL_TIME_FACTORS`):

* PTI: its CR3 switch pair on every kernel entry and return; without PCID both switches flush
  the non-global TLB entries, so every entry refills the workload's ``tlb_working_set``;
* legacy IBRS: two ``SPEC_CTRL`` writes per entry (set on entry, cleared on return to user),
  and the kernel's own execution slowed while it is set;
* retpolines, call-depth tracking, ITS's thunks, SRSO's safe-RET: per unit of kernel time;
  SRSO also untrains the return predictor on every entry;
* BHI: the clearing loop on syscall entry (not on faults) and on every VM exit; VERW on every
  return to user and VM entry; the SWAPGS fence per entry; the RSB fill per context switch;
  the conditional IBPB on switches into a task that asked for it; the conditional L1D flush
  on VM entries after unaudited exits; the PBRSB fill per VM exit; VMSCAPE's IBPB per return
  to the VMM in user space."""

KERNEL_TIME_MITIGATIONS = tuple(
    m for m, terms in MITIGATION_TERMS.items() if any(e == "kernel_time" for e, _ in terms)
)
"""The default mitigations with a kernel-time term: only they need the kernel time per op."""


def active_defaults(c: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per default mitigation, whether the kernel of ``kernel_version`` runs it on the point's CPU.

    A CPU's ``default_<m>`` takes effect from :data:`DEFAULT_SINCE`; where two mitigate the same
    bug the later one replaces the earlier (``bugs.c``): call-depth tracking (``retbleed=stuff``)
    replaces IBRS, and IBRS replaces the retpolines (``spectre_v2=ibrs``; call-depth tracking
    keeps them: it needs ``spectre_v2=retpoline``).
    """
    version = np.asarray(c["kernel_version"], dtype=np.float64)
    on = {
        m: np.asarray(c[f"default_{m}"], dtype=bool) & (version >= since)
        for m, since in DEFAULT_SINCE.items()
    }
    on["ibrs"] = on["ibrs"] & ~on["call_depth"]
    on["retpoline"] = on["retpoline"] & ~on["ibrs"]
    return on


def kernel_share_time(c: Mapping[str, np.ndarray]) -> np.ndarray:
    """The part of ``base_time`` spent in the host kernel [ns]; with the kernel paths the model
    prices (syscalls, page lookups, faults, switches, kernel copies) it makes the kernel time per
    op (:func:`model.evaluate.price`)."""
    return c["base_time"] * c["base_kernel_share"]


def default_events(c: Mapping[str, np.ndarray], per_sample=None) -> dict[str, np.ndarray]:
    """Events per op the default mitigations are priced on (:data:`MITIGATION_TERMS`).

    Kernel entries from user space are the syscalls and user page faults (interrupts, a few per
    millisecond, are left out); context switches as in :func:`native_counts`. ``per_sample``
    holds what :mod:`model.evaluate` prices per cost sample, (points, samples) arrays: the
    ``kernel_time`` per op [ns], a guest's ``vm_entries`` and ``unsafe_vm_entries`` and the
    ``vmm_exits`` (rates times the native time); absent ones are zero.
    """
    native = native_counts(c)
    extra = per_sample or {}
    two_d = any(np.ndim(v) == 2 for v in extra.values())

    def col(x):
        x = np.asarray(x, dtype=np.float64)
        return x[:, None] if two_d and x.ndim == 1 else x

    entries = native["syscall"] + c["zero_fill_per_op"] + c["cow_per_op"]
    no_pcid = ~np.asarray(c["pcid"], dtype=bool)
    return {
        "entries": col(entries),
        "spec_ctrl_writes": col(2.0 * entries),
        "syscalls": col(native["syscall"]),
        "pti_refills": col(entries * c["tlb_working_set"] * no_pcid),
        "context_switches": col(native["context_switch"]),
        "ibpb_switches": col(
            native["context_switch"] * c["ctxsw_mm_change"] * c["ibpb_task_share"]
        ),
        **{
            name: extra.get(name, 0.0)
            for name in ("kernel_time", "vm_entries", "unsafe_vm_entries", "vmm_exits")
        },
    }


VM_BASELINE_EVENTS: dict[str, tuple[str, str, str | None]] = {
    "ibpb_vmexit": ("vm_entries", "ibpb", None),
    "l1d_always": ("vm_entries", "l1d_flush", "l1tf"),
}
"""The blanket VM protection (:data:`model.params.VM_BASELINE`): per part, its event (every
VM exit comes back through one VM entry), its cost and the CPU flag it needs (None: any)."""
