"""The fused evaluation: each point's samples priced and summarised in one compiled pass.

:func:`model.evaluate.price` prices a chunk as (points x samples) numpy arrays, one temporary
per term; that is the readable statement of the pricing and what per-sample breakdowns use.
:func:`evaluate_points` computes the same summaries point by point in compiled code (numba),
where each point's samples stay in registers and a few 8 KiB buffers:

1. :func:`point_factors` (numpy, per point): everything the mechanism
   (:mod:`model.mechanism`) says about a point, as per-point numbers: native counts, exits per
   op by source, dwell counts, time-driven rates, pair flags, ASI work per cost, and the
   default mitigations as coefficients of :data:`TERMS`.
2. :func:`_point` (compiled, per point, over its samples): the per-sample quantities of
   :func:`model.evaluate.price` in the same formulas (native time, unrestricted and restricted
   time, exits, pair cost, extra time, the alternatives without ASI), their sums
   (:data:`SUMS`) and the order statistics of the four per-sample ratios
   (:mod:`model.select`).
3. :func:`model.evaluate.summarise` (numpy, per point) turns the sums into the metrics: a
   time-driven source's mean exits are its rate times the mean restricted time, and so on.

Sums run in a fixed order within one point (fastmath only re-associates the additions of a
sum into SIMD lanes and fuses a multiplication and an addition into one rounding, FMA: 4-10 %
of the pass, ``bench_model``), so a point's results never depend on which other points are
evaluated with it; they agree with :func:`model.evaluate.price` to rounding (``tests/model``).
Compiled once per process (``cache=True`` keeps the machine code on disk for the next
process, Ray workers included; :mod:`model.jitcache` drops it when any ``model/`` source
changes, which numba alone would not notice).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import IntEnum

import numba as nb
import numpy as np

from .costs import COST_NAMES, priced_draws
from .mechanism import (
    DWELL,
    FAULTING_SOURCES,
    MITIGATION_TERMS,
    OP_SOURCES,
    VM_BASELINE_EVENTS,
    active_defaults,
    default_events,
    direct_vmm_switch_rate,
    dwell_counts,
    ephmap_use_per_op,
    exits_per_op,
    kernel_share_time,
    native_counts,
    time_exit_rates,
    vm_exit_asi_factor,
    vm_exit_rates,
    vmm_exit_rate,
    vmm_exit_rates,
    work_counts,
)
from .params import VM_EXIT_REASONS
from .select import order_statistics, selection_scratch
from .units import PAGE_SIZE

ROWS: tuple[str, ...] = COST_NAMES
"""The per-sample cost rows, in :data:`model.costs.COST_NAMES` order (``rows[k]`` is cost ``ROWS[k]``)."""
Row = IntEnum("Row", {name: k for k, name in enumerate(ROWS)})
"""Index of each cost in :data:`ROWS` (an IntEnum: compiled code reads its members as constants)."""
_VM_SHARE_ROW = int(Row[f"vmexit_share_{next(iter(VM_EXIT_REASONS))}"])
"""The first VM-exit share row; the reasons' shares follow in :data:`VM_EXIT_REASONS` order."""

BASES = ("one", "native_s", "kernel_time", "unsafe_vm_entries")
"""What a default-mitigation term's per-point coefficient multiplies besides its cost, per
sample: nothing (an event count per op), the native time per op [s] (a rate's events: VM
entries, returns to the VMM), the kernel time per op [ns], or a guest's unsafe VM entries per
op (a per-reason rate times a sampled share)."""

_EVENT_BASE = {
    "kernel_time": "kernel_time",
    "vm_entries": "native_s",
    "vmm_exits": "native_s",
    "unsafe_vm_entries": "unsafe_vm_entries",
}
"""The per-sample events of :func:`model.mechanism.default_events` and their base; every other
event is a count per op (base ``one``)."""


def _terms() -> tuple[tuple[str, str], ...]:
    """Every (base, cost) that a default-mitigation or blanket-protection term prices."""
    found = []
    events = [t for terms in MITIGATION_TERMS.values() for t in terms]
    events += [(event, cost) for event, cost, _ in VM_BASELINE_EVENTS.values()]
    for event, cost in events:
        term = (_EVENT_BASE.get(event, "one"), cost)
        if term not in found:
            found.append(term)
    return tuple(found)


TERMS: tuple[tuple[str, str], ...] = _terms()
"""The (base, cost) products the alternatives without ASI are sums of; per point each has a
coefficient in the default, in what ASI keeps of it, and in the blanket VM protection."""
TERM_BASE = np.array([BASES.index(base) for base, _ in TERMS], dtype=np.int64)
TERM_ROW = np.array([Row[cost] for _, cost in TERMS], dtype=np.int64)

N_VM = len(VM_EXIT_REASONS)
VM_FAULTING = np.array(
    [f"vmexit_{r}" in FAULTING_SOURCES for r in VM_EXIT_REASONS], dtype=np.float64
)
"""Per VM-exit reason, 1 when its exits come through a kernel page fault (``fault_entry``)."""

SUMS: tuple[str, ...] = (
    # times and ratios
    "t_native",
    "extra",
    "slowdown",
    "loss",
    "meets_target",
    "under_threshold",
    # exit sums: restricted time [s] times 1, the pair cost, fault entry, kernel_rest, 1/t_asi
    "restricted",
    "restricted_pair",
    "restricted_entry",
    "restricted_rest",
    "restricted_inverse",
    # ... the same weighted by the tick rate
    "tick",
    "tick_pair",
    "tick_entry",
    "tick_rest",
    "tick_inverse",
    # per-sample means an op-driven exit is priced with
    "pair",
    "dwell_io",
    "dwell_fault",
    "inverse",
    # extra time by pair cost: exits per op times that cost
    "total_cr3_write",
    "total_page_walk",
    "total_ibpb",
    "total_rsb_fill",
    "total_l1d_flush",
    "total_generation_check",
    "total_smt_stun",
    "faulting_entry",
    "unrestricted",
    # direct KVM <-> VMM switches: restricted time times the CR3 writes, times the walks
    "restricted_cr3_write",
    "restricted_page_walk",
    # the alternatives without ASI
    "t_default",
    "default_vs_off",
    "vs_default",
    "beats_default",
    "t_blanket",
    "vs_blanket",
    "beats_blanket",
    "native_s",  # native time per op [s]
    # per VM-exit reason (share x restricted time, x pair, x entry, x rest, x 1/t_asi)
    *(
        f"vm_{what}_{r}"
        for what in ("", "pair", "entry", "rest", "inverse")
        for r in VM_EXIT_REASONS
    ),
    # each mitigation term's base times its cost
    *(f"term_{base}_{cost}" for base, cost in TERMS),
)
"""What :func:`_point` sums over a point's samples (sums, not means; counts for the shares)."""
Sum = IntEnum("Sum", {name: k for k, name in enumerate(SUMS)})
N_SUMS = len(SUMS)
_VM_SUM = int(Sum[f"vm__{next(iter(VM_EXIT_REASONS))}"])
_TERM_SUM = int(Sum[f"term_{TERMS[0][0]}_{TERMS[0][1]}"])

RATIOS = ("slowdown", "default_vs_off", "vs_default", "vs_blanket")
"""The per-sample ratios whose order statistics :func:`_point` returns."""

FACTORS: tuple[str, ...] = (
    "cpus",
    "bytes",
    "fixed",
    "native_syscall",
    "native_page_lookup",
    "native_user_fault",
    "native_context_switch",
    "io_syscall",
    "io_page_lookup",
    "io_bytes",
    "unrestricted_io",  # op-driven exits per op that dwell for an I/O path, a fault, the rest
    "unrestricted_fault",
    "unrestricted_rest",
    "op_total",
    "op_faulting",
    "tick_on",
    "rate",  # time-driven rates other than tick and VM exits [1/s]
    "rate_faulting",
    "ibpb",
    "l1tf",
    "cr3_noflush",
    "smt_stun",
    "invalidations",
    "tlb_working_set",
    "direct_rate",
    "kernel_share",
    "guest",
    "blanket_differs",
)
"""Per-point scalars of :func:`point_factors`, the columns of its ``scalars`` array."""
Factor = IntEnum("Factor", {name: k for k, name in enumerate(FACTORS)})


def point_factors(c: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-point inputs of :func:`_point`: ``scalars`` (points, :data:`FACTORS`), ``vm_rate``
    and ``vm_coef`` (points, VM-exit reasons: the guest's VM exits per second, and that times
    :func:`model.mechanism.vm_exit_asi_factor`), ``work`` (points, :data:`ROWS`: ASI work per
    op by cost), ``op`` (:func:`model.mechanism.exits_per_op`), ``rates`` (every time-driven
    rate but tick's, by source) and ``default``/``kept``/``blanket`` (points, :data:`TERMS`)."""
    n = c["cpus"].shape[0]

    def full(x):
        return np.broadcast_to(np.asarray(x, dtype=np.float64), (n,))

    native = native_counts(c)
    op = {k: full(v) for k, v in exits_per_op(c).items()}
    dwell = dwell_counts(c)
    rates = {k: full(v) for k, v in time_exit_rates(c).items()}
    rates.update({k: full(v) for k, v in vmm_exit_rates(c).items()})
    vm_rates = vm_exit_rates(c)
    vm_factor = vm_exit_asi_factor(c)
    vm_rate = np.stack([full(vm_rates[r]) for r in VM_EXIT_REASONS], axis=1)
    vm_coef = np.stack(
        [full(vm_rates[r] * vm_factor[f"vmexit_{r}"]) for r in VM_EXIT_REASONS], axis=1
    )
    use = ephmap_use_per_op(c)
    work = np.zeros((n, len(ROWS)))
    for name, count in work_counts(c, use).items():
        work[:, Row[name]] = full(count)
    unrestricted = {
        kind: sum((op[s] for s in OP_SOURCES if DWELL[s] == kind), np.zeros(n))
        for kind in ("io", "fault", "rest")
    }
    scalars = {
        "cpus": full(c["cpus"]),
        "bytes": full(native["bytes"]),
        "fixed": full(native["fixed"]),
        **{f"native_{k}": full(native[k]) for k in ("syscall", "page_lookup", "user_fault")},
        "native_context_switch": full(native["context_switch"]),
        "io_syscall": full(dwell["io"]["syscall"]),
        "io_page_lookup": full(dwell["io"]["page_lookup"]),
        "io_bytes": full(dwell["io"]["bytes"]),
        "unrestricted_io": unrestricted["io"],
        "unrestricted_fault": unrestricted["fault"],
        "unrestricted_rest": unrestricted["rest"],
        "op_total": sum((op[s] for s in OP_SOURCES), np.zeros(n)),
        "op_faulting": sum((op[s] for s in OP_SOURCES if s in FAULTING_SOURCES), np.zeros(n)),
        "tick_on": full(~(np.asarray(c["kernel_thread"], dtype=np.float64) > 0)),
        "rate": sum(rates.values(), np.zeros(n)),
        "rate_faulting": sum((rates[s] for s in rates if s in FAULTING_SOURCES), np.zeros(n)),
        **{k: full(c[k]) for k in ("ibpb", "l1tf", "cr3_noflush", "smt_stun")},
        "invalidations": full(use["invalidations"]),
        "tlb_working_set": full(c["tlb_working_set"]),
        "direct_rate": full(direct_vmm_switch_rate(c)),
        "kernel_share": full(kernel_share_time(c)),
    }
    default, kept, blanket, by_mitigation, vm_total = _term_coefficients(c, n, vm_rate)
    guest = vm_total > 0
    scalars["guest"] = guest.astype(np.float64)
    scalars["blanket_differs"] = np.any(blanket != default, axis=1).astype(np.float64)
    return {
        "scalars": np.ascontiguousarray(np.stack([scalars[k] for k in FACTORS], axis=1)),
        "vm_rate": np.ascontiguousarray(vm_rate),
        "vm_coef": np.ascontiguousarray(vm_coef),
        "work": work,
        "op": op,
        "rates": rates,
        "default": default,
        "kept": kept,
        "blanket": blanket,
        "by_mitigation": by_mitigation,
        "vm_total": vm_total,
    }


def _term_coefficients(c, n: int, vm_rate: np.ndarray):
    """Per point and :data:`TERMS` term, its coefficient in the default mitigations, in what
    ASI keeps of them and in the blanket VM protection (:func:`model.evaluate.price` states the
    same sums sample by sample)."""
    active = {m: np.broadcast_to(on, (n,)) for m, on in active_defaults(c).items()}
    vm_total = sum((vm_rate[:, k] for k in range(N_VM)), np.zeros(n))
    # the per-sample events, by their base: VM entries and returns to the VMM are a rate times
    # the native time; the kernel time and the unsafe VM entries are their own base
    per_base = {
        "kernel_time": np.ones(n),
        "vm_entries": vm_total,
        "vmm_exits": np.broadcast_to(np.asarray(vmm_exit_rate(c), dtype=np.float64), (n,)),
        "unsafe_vm_entries": np.ones(n),
    }
    events = default_events(c)
    index = {term: k for k, term in enumerate(TERMS)}
    default = np.zeros((n, len(TERMS)))
    kept = np.zeros((n, len(TERMS)))
    # per mitigation, its terms' coefficients: {term index: (points,)}, a few terms each
    by_mitigation: dict[str, dict[int, np.ndarray]] = {}
    for m, terms in MITIGATION_TERMS.items():
        keep = np.broadcast_to(np.asarray(c[f"asi_keeps_{m}"], dtype=np.float64), (n,))
        coef: dict[int, np.ndarray] = {}
        for event, cost in terms:
            j = index[(_EVENT_BASE.get(event, "one"), cost)]
            count = per_base[event] if event in _EVENT_BASE else events[event]
            coef[j] = coef.get(j, 0.0) + np.broadcast_to(count, (n,)) * active[m]
        for j, value in coef.items():
            default[:, j] += value
            kept[:, j] += value * keep
        by_mitigation[m] = coef
    guest = vm_total > 0
    blanket = default.copy()
    for _, (event, cost, needs) in VM_BASELINE_EVENTS.items():
        flag = np.ones(n) if needs is None else np.broadcast_to(c[needs], (n,)).astype(np.float64)
        blanket[:, index[(_EVENT_BASE[event], cost)]] += per_base[event] * flag
    l1tf = np.broadcast_to(c["l1tf"], (n,)).astype(np.float64)
    # the always-flush replaces the conditional one, IBPB on every exit VMSCAPE's
    for j, value in by_mitigation["l1d_vmentry"].items():
        blanket[:, j] -= value * l1tf
    for j, value in by_mitigation["vmscape"].items():
        blanket[:, j] -= value * guest
    blanket[~guest] = default[~guest]
    return default, kept, blanket, by_mitigation, vm_total


LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
"""ln 2 in two parts, the first with trailing zero bits so ``k * LN2_HI`` is exact (Cody and
Waite's range reduction, as fdlibm's ``exp``)."""
ROW_PAD = 8
"""Unused samples after each per-sample row of :func:`cost_rows` and of the compiled pass's
buffers: one cache line. Rows of 1024 samples are 8 KiB apart, and addresses 4 KiB apart share
a set of the 8-way L1 data cache, so a loop over a dozen rows and a dozen buffers evicts its own
lines; one line more per row puts each row in other sets (20 % of the compiled pass,
``bench_model``)."""

POW2 = 2.0 ** -np.arange(1076.0)
"""``2**-k`` for ``k`` in 0..1075: the scale of ``exp`` by table, which vectorizes (a gather)."""
_INV_FACTORIAL = tuple(1.0 / math.factorial(k) for k in range(15))


@nb.njit(cache=True, error_model="numpy", inline="always")
def refill_probability(invalidations, exits):
    """``1 - exp(-invalidations / exits)`` (0 without exits), the chance that a pair under
    ``cr3_noflush`` finds an invalidation since the last switch (:data:`model.mechanism.PAIR_COSTS`).

    Written without a call to ``expm1`` so the loop over samples vectorizes: Cody and Waite's
    reduction ``-x = k ln2 + r`` with ``|r| <= ln2 / 2``, ``expm1(r)`` by its series to ``r**14``
    (truncation < 1e-17 relative), then ``expm1(-x) = 2**k expm1(r) + (2**k - 1)`` with the power
    of two by table. Within 2e-15 of ``-np.expm1(-x)`` (``tests/model/test_kernel.py``). No
    fastmath of its own: the reduction's order of operations matters. Inlined in :func:`_point`
    it takes that function's flags, under which the reduction's first step stays exact
    (``k * LN2_HI`` is, fused or not); the agreement tests cover it there.
    """
    f = _INV_FACTORIAL
    x = min(invalidations / exits if exits > 0.0 else 0.0, 745.0)
    y = -x
    k = np.floor(y * 1.4426950408889634 + 0.5)
    r = (y - k * LN2_HI) - k * LN2_LO
    series = f[14]
    for j in range(13, 0, -1):
        series = series * r + f[j]
    scale = POW2[int(-k)]
    return -(scale * (series * r) + (scale - 1.0))


@nb.njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def _point(
    f,
    vm_rate,
    vm_coef,
    work,
    term_coef,
    rows,
    n,
    inverse_bandwidth,
    ranks,
    sums,
    stats,
    buf,
    scratch,
    selection,
):
    """Price one point over every sample; its :data:`SUMS` into ``sums`` and the order statistics
    ``ranks`` of each of :data:`RATIOS` into ``stats`` (ratios x ranks).

    ``f`` is the point's :data:`FACTORS` row, ``term_coef`` its (default, kept, blanket)
    coefficients of :data:`TERMS`, ``rows`` the cost rows (:data:`ROWS` x ``n`` samples, padded
    by :data:`ROW_PAD`) and ``inverse_bandwidth`` one over the copy and the memory bandwidths per
    sample. ``buf`` (buffers x samples) and ``scratch`` hold per-sample values between the loops,
    padded likewise, ``selection`` the small scratch of :func:`model.select.order_statistics`:
    nothing is allocated per point.
    """
    inv_copy_bw = inverse_bandwidth[0]  # [ns/byte]
    inv_mem_bw = inverse_bandwidth[1]
    syscall = rows[Row.syscall]
    page_lookup = rows[Row.page_lookup]
    user_fault = rows[Row.user_fault]
    context_switch = rows[Row.context_switch]
    kernel_rest = rows[Row.kernel_rest]
    tick_exits = rows[Row.tick_exits]
    fault_entry = rows[Row.fault_entry]
    cr3_write = rows[Row.cr3_write]
    page_walk = rows[Row.page_walk]
    ibpb = rows[Row.ibpb]
    rsb_fill = rows[Row.rsb_fill]
    l1d_flush = rows[Row.l1d_flush]
    generation_check = rows[Row.generation_check]
    smt_stun = rows[Row.smt_stun]

    cpus = f[Factor.cpus]
    nbytes = f[Factor.bytes]
    fixed = f[Factor.fixed]
    n_syscall = f[Factor.native_syscall]
    n_lookup = f[Factor.native_page_lookup]
    n_fault = f[Factor.native_user_fault]
    n_switch = f[Factor.native_context_switch]
    io_syscall = f[Factor.io_syscall]
    io_lookup = f[Factor.io_page_lookup]
    io_bytes = f[Factor.io_bytes]
    u_io = f[Factor.unrestricted_io]
    u_fault = f[Factor.unrestricted_fault]
    u_rest = f[Factor.unrestricted_rest]
    op_total = f[Factor.op_total]
    op_faulting = f[Factor.op_faulting]
    tick_on = f[Factor.tick_on]
    rate = f[Factor.rate]
    rate_faulting = f[Factor.rate_faulting]
    has_ibpb = f[Factor.ibpb]
    l1tf = f[Factor.l1tf]
    noflush = f[Factor.cr3_noflush]
    smt = f[Factor.smt_stun]
    invalidations = f[Factor.invalidations]
    tlb = f[Factor.tlb_working_set]
    direct_rate = f[Factor.direct_rate]
    kernel_share = f[Factor.kernel_share]
    guest = f[Factor.guest] > 0

    t_native = buf[0]
    extra = buf[1]
    restricted = buf[2]
    pair_cost = buf[3]
    inverse = buf[4]
    kernel_time = buf[5]
    vm_rate_s = buf[6]  # VM exits per second that exit ASI, per sample
    vm_faulting_s = buf[7]
    unsafe = buf[8]  # unsafe VM entries per op
    base_extra = buf[9]  # extra time that is linear in the costs: ASI work per op

    # per-sample rows of a guest: its exiting VM exits and its unsafe VM entries per second
    for s in range(n):
        vm_rate_s[s] = 0.0
        vm_faulting_s[s] = 0.0
        unsafe[s] = 0.0
        base_extra[s] = 0.0
    if guest:
        for r in range(N_VM):
            share = rows[_VM_SHARE_ROW + r]
            coef = vm_coef[r]
            faulting = coef * VM_FAULTING[r]
            entries = vm_rate[r]
            for s in range(n):
                vm_rate_s[s] += coef * share[s]
                vm_faulting_s[s] += faulting * share[s]
                unsafe[s] += entries * share[s]
    for k in range(work.shape[0]):
        w = work[k]
        if w != 0.0:
            row = rows[k]
            for s in range(n):
                base_extra[s] += w * row[s]

    acc = sums
    acc[:] = 0.0
    total_b = buf[10]
    faulting_b = buf[11]
    unrestricted_b = buf[12]
    walks_b = buf[13]
    s_tn = 0.0
    s_r = 0.0
    s_r_entry = 0.0
    s_r_rest = 0.0
    s_t = 0.0
    s_t_entry = 0.0
    s_t_rest = 0.0
    s_dio = 0.0
    s_dfault = 0.0
    s_unr = 0.0
    s_rcr3 = 0.0
    s_rpw = 0.0
    # native time, unrestricted and restricted time, exits per op
    for s in range(n):
        ns_per_byte = max(inv_copy_bw[s], cpus * inv_mem_bw[s])
        # the kernel paths the model prices: the native time without its fixed part, and the
        # kernel time per op without base_time's kernel share
        paths = nbytes * ns_per_byte + n_syscall * syscall[s] + n_lookup * page_lookup[s]
        paths += n_fault * user_fault[s] + n_switch * context_switch[s]
        tn = paths + fixed
        dwell_io = io_syscall * syscall[s] + io_lookup * page_lookup[s] + io_bytes * ns_per_byte
        dwell_fault = user_fault[s] + PAGE_SIZE * ns_per_byte
        unr = u_io * dwell_io + u_fault * dwell_fault + u_rest * kernel_rest[s]
        restr = max(0.0, 1.0 - unr / tn) * tn * 1e-9  # a division: rounding as the numpy engine's
        tick = tick_on * tick_exits[s]
        timed = (tick + rate + vm_rate_s[s]) * restr
        unr += timed * kernel_rest[s]
        t_native[s] = tn
        restricted[s] = restr
        total_b[s] = op_total + timed
        faulting_b[s] = op_faulting + (tick + rate_faulting + vm_faulting_s[s]) * restr
        unrestricted_b[s] = unr
        kernel_time[s] = paths + kernel_share
        unsafe[s] *= tn * 1e-9
        s_tn += tn
        s_r += restr
        s_r_entry += restr * fault_entry[s]
        s_r_rest += restr * kernel_rest[s]
        tr = tick * restr
        s_t += tr
        s_t_entry += tr * fault_entry[s]
        s_t_rest += tr * kernel_rest[s]
        s_dio += dwell_io
        s_dfault += dwell_fault
        s_unr += unr
        s_rcr3 += restr * cr3_write[s]
        s_rpw += restr * page_walk[s]
    # the TLB refill per pair: every time, or with NOFLUSH only after an invalidation
    if noflush > 0.0:
        for s in range(n):
            walks_b[s] = tlb * refill_probability(invalidations, total_b[s])
    else:
        for s in range(n):
            walks_b[s] = tlb
    s_extra = 0.0
    s_slow = 0.0
    s_slow2 = 0.0
    s_loss = 0.0
    s_meets = 0.0
    s_under = 0.0
    s_r_pair = 0.0
    s_r_inv = 0.0
    s_t_pair = 0.0
    s_t_inv = 0.0
    s_pair = 0.0
    s_inv = 0.0
    s_cr3 = 0.0
    s_pw = 0.0
    s_ibpb = 0.0
    s_rsb = 0.0
    s_l1d = 0.0
    s_gen = 0.0
    s_stun = 0.0
    s_fe = 0.0
    slowdown = scratch[0]
    # what a pair costs, the extra time per op, and the sums that need them
    for s in range(n):
        tn = t_native[s]
        restr = restricted[s]
        total = total_b[s]
        walks = walks_b[s]
        pair = (
            2.0 * cr3_write[s]
            + walks * page_walk[s]
            + has_ibpb * ibpb[s]
            + rsb_fill[s]
            + l1tf * l1d_flush[s]
            + noflush * generation_check[s]
            + smt * smt_stun[s]
        )
        switches = direct_rate * restr
        ex = (
            total * pair
            + faulting_b[s] * fault_entry[s]
            + smt * unrestricted_b[s]
            + base_extra[s]
            + switches * (2.0 * cr3_write[s] + tlb * (1.0 - noflush) * page_walk[s])
        )
        t_asi = tn + ex
        inv_asi = 1.0 / t_asi
        inv = 1e9 * inv_asi
        slow = ex / tn
        extra[s] = ex
        pair_cost[s] = pair
        inverse[s] = inv
        slowdown[s] = slow
        s_extra += ex
        s_slow += slow
        s_slow2 += slow * slow
        s_loss += ex * inv_asi
        s_meets += slow < 0.01
        s_under += slow < 0.05
        s_r_pair += restr * pair
        s_r_inv += restr * inv
        tr = tick_on * tick_exits[s] * restr
        s_t_pair += tr * pair
        s_t_inv += tr * inv
        s_pair += pair
        s_inv += inv
        s_cr3 += total * 2.0 * cr3_write[s]
        s_pw += total * walks * page_walk[s]
        s_ibpb += total * ibpb[s]
        s_rsb += total * rsb_fill[s]
        s_l1d += total * l1d_flush[s]
        s_gen += total * generation_check[s]
        s_stun += total * smt_stun[s]
        s_fe += faulting_b[s] * fault_entry[s]
    acc[Sum.t_native] = s_tn
    acc[Sum.extra] = s_extra
    acc[Sum.slowdown] = s_slow
    acc[Sum.loss] = s_loss
    acc[Sum.meets_target] = s_meets
    acc[Sum.under_threshold] = s_under
    acc[Sum.restricted] = s_r
    acc[Sum.restricted_pair] = s_r_pair
    acc[Sum.restricted_entry] = s_r_entry
    acc[Sum.restricted_rest] = s_r_rest
    acc[Sum.restricted_inverse] = s_r_inv
    acc[Sum.tick] = s_t
    acc[Sum.tick_pair] = s_t_pair
    acc[Sum.tick_entry] = s_t_entry
    acc[Sum.tick_rest] = s_t_rest
    acc[Sum.tick_inverse] = s_t_inv
    acc[Sum.pair] = s_pair
    acc[Sum.dwell_io] = s_dio
    acc[Sum.dwell_fault] = s_dfault
    acc[Sum.inverse] = s_inv
    acc[Sum.total_cr3_write] = s_cr3
    acc[Sum.total_page_walk] = s_pw
    acc[Sum.total_ibpb] = s_ibpb
    acc[Sum.total_rsb_fill] = s_rsb
    acc[Sum.total_l1d_flush] = s_l1d
    acc[Sum.total_generation_check] = s_gen
    acc[Sum.total_smt_stun] = s_stun
    acc[Sum.faulting_entry] = s_fe
    acc[Sum.unrestricted] = s_unr
    acc[Sum.restricted_cr3_write] = s_rcr3
    acc[Sum.restricted_page_walk] = s_rpw

    # a guest's VM exits by reason
    if guest:
        for r in range(N_VM):
            share = rows[_VM_SHARE_ROW + r]
            a0 = 0.0
            a1 = 0.0
            a2 = 0.0
            a3 = 0.0
            a4 = 0.0
            for s in range(n):
                x = share[s] * restricted[s]
                a0 += x
                a1 += x * pair_cost[s]
                a2 += x * fault_entry[s]
                a3 += x * kernel_rest[s]
                a4 += x * inverse[s]
            acc[_VM_SUM + r] = a0
            acc[_VM_SUM + N_VM + r] = a1
            acc[_VM_SUM + 2 * N_VM + r] = a2
            acc[_VM_SUM + 3 * N_VM + r] = a3
            acc[_VM_SUM + 4 * N_VM + r] = a4

    # the alternatives without ASI: the default, what ASI keeps of it, the blanket protection
    default = scratch[1]
    kept = scratch[2]
    blanket = scratch[3]
    for s in range(n):
        default[s] = 0.0
        kept[s] = 0.0
        blanket[s] = 0.0
    differs = f[Factor.blanket_differs] > 0
    for j in range(TERM_ROW.shape[0]):
        cd = term_coef[0, j]
        ck = term_coef[1, j]
        cb = term_coef[2, j]
        if cd == 0.0 and ck == 0.0 and cb == 0.0:
            continue
        row = rows[TERM_ROW[j]]
        b = TERM_BASE[j]
        total = 0.0
        for s in range(n):
            if b == 0:
                x = row[s]
            elif b == 1:
                x = t_native[s] * 1e-9 * row[s]
            elif b == 2:
                x = kernel_time[s] * row[s]
            else:
                x = unsafe[s] * row[s]
            default[s] += cd * x
            kept[s] += ck * x
            blanket[s] += cb * x
            total += x
        acc[_TERM_SUM + j] = total
    vs_off = scratch[4]
    vs_default = scratch[5]
    vs_blanket = scratch[6]
    s_td = 0.0
    s_off = 0.0
    s_off2 = 0.0
    s_vd = 0.0
    s_vd2 = 0.0
    s_bd = 0.0
    s_tb = 0.0
    s_vb = 0.0
    s_vb2 = 0.0
    s_bb = 0.0
    s_ns = 0.0
    for s in range(n):
        tn = t_native[s]
        t_kept = tn + extra[s] + kept[s]
        t_def = tn + default[s]
        off = default[s] / tn
        vd = t_kept / t_def - 1.0
        vs_off[s] = off
        vs_default[s] = vd
        s_td += t_def
        s_off += off
        s_off2 += off * off
        s_vd += vd
        s_vd2 += vd * vd
        s_bd += vd < 0.0
        s_ns += tn * 1e-9
    if differs:
        for s in range(n):
            t_b = t_native[s] + blanket[s]
            vb = (t_native[s] + extra[s] + kept[s]) / t_b - 1.0
            vs_blanket[s] = vb
            s_tb += t_b
            s_vb += vb
            s_vb2 += vb * vb
            s_bb += vb < 0.0
    else:
        s_tb = s_td
        s_vb = s_vd
        s_bb = s_bd
    acc[Sum.t_default] = s_td
    acc[Sum.default_vs_off] = s_off
    acc[Sum.vs_default] = s_vd
    acc[Sum.beats_default] = s_bd
    acc[Sum.t_blanket] = s_tb
    acc[Sum.vs_blanket] = s_vb
    acc[Sum.beats_blanket] = s_bb
    acc[Sum.native_s] = s_ns

    order_statistics(slowdown[:n], s_slow, s_slow2, ranks, stats[0], selection)
    order_statistics(vs_off[:n], s_off, s_off2, ranks, stats[1], selection)
    order_statistics(vs_default[:n], s_vd, s_vd2, ranks, stats[2], selection)
    if differs:
        order_statistics(vs_blanket[:n], s_vb, s_vb2, ranks, stats[3], selection)
    else:
        stats[3, :] = stats[2, :]


@nb.njit(cache=True, error_model="numpy")
def _points(scalars, vm_rate, vm_coef, work, terms, rows, ranks, sums, stats):
    n = rows.shape[1] - ROW_PAD
    buf = np.empty((14, n + ROW_PAD))
    inverse_bandwidth = np.empty((2, n + ROW_PAD))
    for s in range(n):
        inverse_bandwidth[0, s] = 1.0 / rows[Row.copy_bandwidth, s]
        inverse_bandwidth[1, s] = 1.0 / rows[Row.mem_bandwidth, s]
    scratch = np.empty((7, n + ROW_PAD))
    selection = selection_scratch(n, ranks.shape[0])
    for p in range(scalars.shape[0]):
        _point(
            scalars[p],
            vm_rate[p],
            vm_coef[p],
            work[p],
            terms[p],
            rows,
            n,
            inverse_bandwidth,
            ranks,
            sums[p],
            stats[p],
            buf,
            scratch,
            selection,
        )


def cost_rows(costs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The draws as priced (:func:`model.costs.priced_draws`), a (:data:`ROWS`, samples +
    :data:`ROW_PAD`) array: each row's samples, then zeros."""
    priced = priced_draws(costs)
    n = np.asarray(priced[ROWS[0]]).shape[0]
    rows = np.zeros((len(ROWS), n + ROW_PAD))
    for k, name in enumerate(ROWS):
        rows[k, :n] = priced[name]
    return rows


def evaluate_points(factors: Mapping[str, object], rows: np.ndarray, ranks: np.ndarray):
    """Run the compiled pass over every point of ``factors`` (:func:`point_factors`) with cost
    ``rows`` (:func:`cost_rows`): per point its :data:`SUMS` (points, sums) and the order
    statistics ``ranks`` of each of :data:`RATIOS` (points, ratios, ranks)."""
    scalars = factors["scalars"]
    n = scalars.shape[0]
    terms = np.ascontiguousarray(
        np.stack([factors["default"], factors["kept"], factors["blanket"]], axis=1)
    )
    sums = np.zeros((n, N_SUMS))
    stats = np.zeros((n, len(RATIOS), len(ranks)))
    _points(
        scalars,
        factors["vm_rate"],
        factors["vm_coef"],
        factors["work"],
        terms,
        rows,
        np.asarray(ranks, dtype=np.int64),
        sums,
        stats,
    )
    return sums, stats
