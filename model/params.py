"""Canonical point parameters: the glossary of the model's inputs.

A *point* is one configuration: a workload, a CPU count, an ephmap size, the
roadmap's mitigation flags and the CPU profile's boolean features. Points are
passed to the model as columns (a mapping of name to 1-D array), one entry
per name below. Costs that are uncertain are not point parameters: they are
Monte Carlo samples of the CPU profile (:mod:`model.costs`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

MITIGATION_FLAGS: dict[str, str] = {
    "ephmap": "read() maps page-cache pages through the CPU's ephmap slot instead of the physmap",
    "ctxsw_same_mm": "context_switch() exits only when it switches mm",
    "cr3_noflush": "ASI CR3 writes keep the NOFLUSH bit: no TLB refill after an exit/enter pair",
    "ephmap_zeroing": "the allocator zeroes sensitive pages through the ephmap",
    "multi_slot": "several ephmap allocations per CPU (ephmap_slots) and a lazy local flush on wrap",
    "metadata_mapped": "filesystem metadata (buffer-head pages) mapped as nonsensitive",
    "mapping_fastpath": "ephmap/mermap map and unmap through a cached PTE pointer into preallocated "
    "tables instead of a software page-table walk per use",
    "kvm_vmm_switch": "KVM_RUN returns to the VMM switch from the KVM to the userspace restricted "
    "address space directly, without an asi_exit (the RFC v2 cover letter's intended design)",
    "smt_stun": "long-term design option, in no roadmap stage: the SMT sibling is stunned "
    "while its core runs unrestricted",
}
"""The roadmap's mitigation flags (``conf/mitigations``), in roadmap order, then design options."""

DESIGN_OPTIONS = frozenset({"smt_stun"})
"""Mitigation flags that no roadmap stage turns on: options a sweep can try."""

DEFAULT_MITIGATIONS: dict[str, str] = {
    "pti": "page-table isolation (Meltdown): a CR3 switch pair on every kernel entry and exit; "
    "without PCID each switch also flushes the TLB",
    "ibrs": "legacy IBRS (retbleed=ibrs, spectre_v2=ibrs; CPUs without eIBRS): a SPEC_CTRL write "
    "on every kernel entry and exit, and the kernel runs with restricted indirect prediction",
    "retpoline": "retpoline thunks for the kernel's indirect calls and jumps (spectre_v2=retpoline)",
    "call_depth": "call-depth tracking (retbleed=stuff): accounting thunks on every kernel call "
    "and an RSB refill when the depth would underflow; opt-in, never the default",
    "bhi": "the BHB clearing sequence on syscall entry and VM exit (spectre_bhi=on; CPUs "
    "without the BHI_DIS_S control)",
    "its": "ITS thunks for indirect branches and returns in the lower half of a cacheline "
    "(indirect_target_selection=on; eIBRS parts released before Alder Lake)",
    "verw": "VERW buffer clear on every return to user (MDS, TAA, MMIO stale data; TSA on AMD)",
    "srso": "SRSO return untraining on kernel entry and the safe-RET thunk on every kernel "
    "return (AMD Zen 3/4)",
    "swapgs_fence": "LFENCE after SWAPGS on kernel entry (Spectre v1 SWAPGS variant)",
    "rsb_ctxsw": "RSB fill on every context switch (Spectre v2 without eIBRS)",
    "ibpb_cond": "IBPB when switching to a task that asked for it (spectre_v2_user=prctl: the "
    "PR_SPEC_INDIRECT_BRANCH prctl, or seccomp before 5.16)",
    "l1d_vmentry": "L1D flush on VM entry after a VM exit that ran unaudited code "
    "(kvm-intel.vmentry_l1d_flush=cond, L1TF CPUs)",
    "pbrsb_vmexit": "the one-entry RSB fill after every VM exit (PBRSB, eIBRS parts)",
    "vmscape": "IBPB before returning to the VMM in user space after a guest ran (vmscape=ibpb)",
}
"""What the kernel runs by default (``mitigations=auto``) that the comparison with ASI prices:
each is a CPU-profile choice (``cpu.default_<name>``: this CPU gets it from the kernel version
that introduced it, :data:`model.mechanism.DEFAULT_SINCE`) and a claim (``cpu.asi_keeps_<name>``:
whether it stays on under ASI, with the profile's cited argument). ``kernel_version`` decides
which of them a kernel runs (:func:`model.mechanism.active_defaults`): legacy IBRS replaces the
retpolines from 5.19 on CPUs that need it for Retbleed, call-depth tracking (an opt-in,
``cpu.default_call_depth=true`` stands for ``retbleed=stuff``) replaces IBRS from 6.2. SSB is a
prctl/seccomp opt-in and costs these workloads nothing (``arch/x86/kernel/cpu/bugs.c``). On a
KVM host, VERW also runs on every VM entry (``Documentation/admin-guide/hw-vuln/mds.rst``:
buffers are cleared "on return to user space and when entering a guest"), the BHB clearing
and the PBRSB fill on every VM exit, and ``l1d_vmentry`` is the L1TF default, a flush on VM
entry in the conditional mode (``l1tf.rst``: "The kernel defaults to conditional mode on
affected processors"), priced on the VM exits whose handling touches sensitive data
(``cpu.costs.vmexit_share_<reason>``), the paths the conditional mode does not audit as safe."""

VM_BASELINE: dict[str, str] = {
    "ibpb_vmexit": "IBPB on every VM exit (X86_FEATURE_IBPB_ON_VMEXIT, as retbleed=ibpb or "
    "spec_rstack_overflow=ibpb-vmexit select)",
    "l1d_always": "an L1D flush on every VM entry on L1TF CPUs (kvm-intel.vmentry_l1d_flush=always), "
    "in place of the default's conditional one",
}
"""The blanket protection of a KVM host without ASI that ASI's authors compare with ("already
strictly cheaper than IBPB-on-VMExit", Brendan Jackman, lore ``DD7SQLDVNSRL.XJ8PUCH6GYR1@google.com``;
the RFC v1 cover's graph compares ASI with "a comparable blanket mitigation (IBPB on VM Exit)"):
the kernel's default (:data:`DEFAULT_MITIGATIONS`) plus these, priced per VM exit and VM entry
(``baseline=ibpb_vmexit``)."""

CPU_FLAGS: dict[str, str] = {
    "ibpb": "asi_exit runs IBPB + RSB fill (booted without clearcpuid=ibpb)",
    "l1tf": "the CPU has the L1TF bug: asi_enter after an exit flushes L1D",
    "pcid": "the CPU has PCID and INVPCID and the kernel uses them (no nopcid): PTI keeps the "
    "user and kernel TLB entries apart instead of flushing on every switch",
    **{
        f"default_{m}": f"the kernel's default runs {text}"
        for m, text in DEFAULT_MITIGATIONS.items()
    },
    **{
        f"asi_keeps_{m}": f"under ASI the kernel still runs {m} (False: ASI makes it redundant)"
        for m in DEFAULT_MITIGATIONS
    },
}
"""Boolean features of the CPU profile that decide which flushes run, and which default
mitigations it has and keeps under ASI."""

WORKLOAD_PARAMS: dict[str, str] = {
    "io_size": "bytes copied by one page-cache I/O syscall (read/write) [bytes]",
    "io_per_op": "page-cache I/O syscalls per op [1/op]",
    "file_size": "size of the file the I/O goes to [bytes]",
    "page_cache_size": "memory available to the page cache for that file [bytes]",
    "sequential": "True for sequential access, False for uniform random access",
    "readahead": "readahead window for sequential reads [bytes]",
    "folio_pages": "pages per page-cache folio; one ephmap mapping covers at most one folio [pages]",
    "ephmap_read_path": "the workload's read path maps page-cache pages through the ephmap once "
    "mitigations.ephmap is on (the prototype converts shmem/tmpfs only)",
    "unconverted_io_share": "share of the I/O syscalls that copy through pages the ephmap never "
    "maps even where the read path is converted (page-cache writes, pipe buffers, reads of "
    "another file system): they exit as without the ephmap [0-1]",
    "io_module_text": "the I/O syscalls enter a file system built as a loadable module (ext4 with "
    "CONFIG_EXT4_FS=m): the prototype's restricted address space does not map module text, so "
    "each one exits on entering it",
    "device_latency": "device latency of a page-cache miss [ns]",
    "device_bandwidth": "device bandwidth shared by all CPUs [bytes/s]",
    "syscalls_per_op": "other syscalls per op, which touch no sensitive data [1/op]",
    "base_time": "time per op outside the paths the model counts (user space, other kernel work); > 0 [ns]",
    "ctxsw_per_op": "context switches per op not caused by page-cache misses [1/op]",
    "ctxsw_mm_change": "fraction of context switches that switch to another mm [0-1]",
    "zero_fill_per_op": "user page faults that allocate and zero a page [1/op]",
    "cow_per_op": "copy-on-write faults on user pages [1/op]",
    "metadata_per_io": "probability that an I/O syscall touches unmapped filesystem metadata [0-1]",
    "io_fault_fraction": "probability that an I/O syscall takes a zero-fill fault while it holds the ephmap [0-1]",
    "migrations_per_op": "pages migrated per op whose direct map is removed (secretmem, guest_memfd) [pages/op]",
    "migration_temporary_mm": "migration runs with no user mm and switches to a temporary mm to reach an "
    "ephmap region (False: it borrows the lazily active mm's region)",
    "kernel_thread": "the op runs in a kernel thread that stays unrestricted (kcompactd): no "
    "exits, time-driven ones included",
    "tlb_working_set": "TLB entries the workload refills after a flushing CR3 switch or a full local "
    "flush, user and kernel (ASI makes kernel mappings non-global) [entries]",
    "tlb_flushes_per_op": "full local TLB flushes per op in the native kernel (exit_mmap, ranged "
    "flushes of 33 pages or more, remote full-flush IPIs); under ASI each one exits [1/op]",
    "mm_setups_per_op": "mm structs created and torn down per op (fork, exec) [1/op]",
    "irq_exits_per_s": "device interrupts per second per CPU whose handlers (or the softirq work "
    "they run) touch sensitive data [1/s]",
    "kthread_switches_per_s": "context switches per second per CPU to and from kernel threads "
    "(kworker, ksoftirqd) that interrupts and timers wake, not counted in ctxsw_per_op; they keep "
    "the mm, so they exit only before ctxsw_same_mm [1/s]",
    "base_kernel_share": "share of base_time the CPU spends in the host kernel (sys time the "
    "model's counted paths leave out); with those paths it is the op's kernel time, which the "
    "kernel-time mitigations (IBRS, retpolines, call-depth tracking, ITS, safe-RET) slow [0-1]",
    "ibpb_task_share": "share of the context switches that switch mm into a task that asked for "
    "IBPB (the PR_SPEC_INDIRECT_BRANCH prctl; seccomp before 5.16) [0-1]",
    "ctxsw_in_exiting_io": "share of ctxsw_per_op that block inside one of the op's I/O syscalls "
    "whose copy exits anyway (a pipe read or write waiting for the other end: pipe buffers are "
    "user pages, copied through the physmap at every stage). The switch's asi_exit comes first "
    "and the copy after it runs unrestricted (asi_exit does nothing when the CPU is already "
    "unrestricted), so the syscall still exits once and the switch adds no exit [0-1]",
}
"""Workload parameters (``conf/workload``)."""

VM_EXIT_REASONS: dict[str, str] = {
    "ept_violation": "EPT_VIOLATION (NPF on AMD): a guest access to guest-physical memory the "
    "host has not mapped yet, fixed up from the VMM's mappings",
    "hlt": "HLT: the vCPU idles; KVM polls for a wake-up, then blocks and schedules",
    "external_interrupt": "EXTERNAL_INTERRUPT (INTR): a host interrupt (device, IPI) arrived "
    "while the guest ran; the host timer tick is priced apart (cpu.costs.tick_exits)",
    "msr": "MSR_READ and MSR_WRITE (TSC deadline, x2APIC ICR and the rest)",
    "io": "IO_INSTRUCTION and EPT_MISCONFIG (port and MMIO accesses: virtio kicks, emulated "
    "devices)",
    "preemption_timer": "PREEMPTION_TIMER: the VMX preemption timer that emulates the guest's "
    "TSC deadline timer",
}
"""The VM-exit reasons a guest workload's host-side exits are counted by, as ``perf kvm stat
report --event=vmexit`` names them on Intel (``pipeline.calibrate.kvmstat`` maps the names)."""

WORKLOAD_PARAMS.update(
    {
        f"vmexits_{reason}_per_s": f"VM exits per second per vCPU of reason {reason}: {text} [1/s]"
        for reason, text in VM_EXIT_REASONS.items()
    }
)

GUEST_HOST_PARAMS: dict[str, str] = {
    "kvm_run_returns_per_s": "returns of KVM_RUN to the VMM in user space per second per vCPU "
    "(I/O and MMIO exits the VMM handles, signals): each ends in the prototype's asi_exit [1/s]",
    "vmm_io_syscalls_per_s": "the VMM's own I/O syscalls per second per vCPU that copy guest data "
    "through the host page cache of a filesystem the ephmap does not convert (a virtio-blk "
    "backend on ext4, 9p reads): each exits as a native process's would [1/s]",
    "vmm_thread_switches_per_s": "host context switches per second per vCPU that switch to or "
    "from the VMM's I/O threads while the CPU is restricted (a worker woken per request, a vCPU "
    "thread it preempts); they stay in the VMM's mm [1/s]",
    "guest_ram_touched_per_op": "host memory backing guest RAM touched for the first time per op, "
    "allocated and zeroed on an EPT violation (a fresh VM touches its whole working set) [bytes/op]",
    "guest_ram_huge": "guest RAM is backed by 2 MiB transparent huge pages (THP in madvise mode "
    "and the VMM's MADV_HUGEPAGE): one zeroing exit per 2 MiB, else one per 4 KiB",
}
"""What the host does around a running guest besides VM exits (``conf/workload``): returns to
the VMM, the VMM's own work, and the host memory a guest touches first."""

WORKLOAD_PARAMS.update(GUEST_HOST_PARAMS)

SYSTEM_PARAMS: dict[str, str] = {
    "cpus": "CPUs running the workload, one job each [count]",
    "ephmap_slots": "ephmap allocations one CPU can hold at once with multi_slot [count]",
    "kernel_version": "the Linux version whose default mitigations ASI is compared with, as "
    "major x 100 + minor (6.17 is 617): it decides which default each CPU gets "
    "(conf/kernel) [version code]",
}

POINT_PARAMS: dict[str, str] = {**SYSTEM_PARAMS, **WORKLOAD_PARAMS, **MITIGATION_FLAGS, **CPU_FLAGS}
"""Every point parameter, with its meaning and unit."""

BOOL_PARAMS = frozenset(
    {
        *MITIGATION_FLAGS,
        *CPU_FLAGS,
        "sequential",
        "ephmap_read_path",
        "io_module_text",
        "migration_temporary_mm",
        "kernel_thread",
        "guest_ram_huge",
    }
)
INT_PARAMS = frozenset(
    {
        "cpus",
        "ephmap_slots",
        "kernel_version",
        "io_size",
        "file_size",
        "page_cache_size",
        "readahead",
        "folio_pages",
    }
)
FRACTION_PARAMS = frozenset(
    {
        "ctxsw_mm_change",
        "metadata_per_io",
        "io_fault_fraction",
        "unconverted_io_share",
        "base_kernel_share",
        "ibpb_task_share",
        "ctxsw_in_exiting_io",
    }
)
POSITIVE_PARAMS = INT_PARAMS | frozenset({"device_bandwidth", "base_time"})
"""Parameters that must be >= 1 (integers) or > 0 (floats); every other numeric one must be >= 0."""

UPPER_BOUNDS: dict[str, float] = {
    "cpus": 8192,  # the largest NR_CPUS x86-64 Kconfig allows
    "ephmap_slots": 512,  # slots cannot outnumber the pages of a CPU's region
    "kernel_version": 9999,  # major x 100 + minor: a version past 99.99 is a typo
    "folio_pages": 512,  # MAX_PAGECACHE_ORDER = 9 on x86-64
    "io_size": 2**40,
    "file_size": 2**60,
    "page_cache_size": 2**60,
    "readahead": 2**40,
    "device_bandwidth": 1e15,  # [bytes/s]
    "device_latency": 1e12,  # [ns]: 1000 s
    "base_time": 1e12,  # [ns]
    "guest_ram_touched_per_op": 2**52,  # [bytes]: 4 PiB, the x86-64 physical address space
}
"""Plausibility bounds: anything above is a typo or a unit mistake, not a machine."""

MAX_EVENTS_PER_OP = 1e9
"""Bound on every per-op event count (and per-second rate) not listed in :data:`UPPER_BOUNDS`:
a unit of work as large as a whole kernel build stays well under it."""


def upper_bound(name: str) -> float:
    """The largest value ``name`` may take."""
    if name in FRACTION_PARAMS:
        return 1.0
    return UPPER_BOUNDS.get(name, MAX_EVENTS_PER_OP)


def as_columns(points: Mapping[str, object]) -> dict[str, np.ndarray]:
    """Return the point parameters as 1-D arrays of equal length.

    Booleans become ``bool`` arrays, everything else ``float64``; scalars are
    broadcast. Raises ``ValueError`` naming a missing or unknown parameter.
    """
    missing = [name for name in POINT_PARAMS if name not in points]
    if missing:
        raise ValueError(f"point parameter {missing[0]!r} is missing")
    unknown = [name for name in points if name not in POINT_PARAMS]
    if unknown:
        raise ValueError(f"unknown point parameter {unknown[0]!r}")
    cols = {
        name: np.atleast_1d(
            np.asarray(points[name], dtype=bool if name in BOOL_PARAMS else np.float64)
        )
        for name in POINT_PARAMS
    }
    n = max(c.shape[0] for c in cols.values())
    return {name: np.broadcast_to(c, (n,)) for name, c in cols.items()}


def check_ranges(cols: Mapping[str, np.ndarray], labels: Mapping[str, str] | None = None) -> None:
    """Raise ``ValueError`` (one line, naming the field) on any out-of-range value.

    ``labels`` maps a parameter to the name the user knows it by (a config
    path such as ``workload.file_size``). The message names the side violated:
    ``cpus must be an integer >= 1, got 0``.
    """
    labels = labels or {}
    for name, col in cols.items():
        if name in BOOL_PARAMS:
            continue
        label = labels.get(name, name)
        kind = "an integer" if name in INT_PARAMS else "a number"
        low = 1 if name in INT_PARAMS else 0
        below = col < low if name in INT_PARAMS or name not in POSITIVE_PARAMS else col <= 0
        low_rule = f">= {low}" if name in INT_PARAMS or name not in POSITIVE_PARAMS else "> 0"
        high = upper_bound(name)
        checks = [
            (~np.isfinite(col), f"{kind} {low_rule}"),
            (below, f"{kind} {low_rule}"),
            (col > high, f"{kind} <= {high:g}"),
        ]
        if name in INT_PARAMS:
            checks.append((col != np.round(col), f"{kind} {low_rule}"))
        if name in FRACTION_PARAMS:
            checks = [(bad, "a number between 0 and 1") for bad, _ in checks]
        for bad, rule in checks:
            if bad.any():
                raise ValueError(f"{label} must be {rule}, got {col[bad][0]:g}")
