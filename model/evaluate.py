"""Price the mechanism's counts with sampled costs, elementwise over (points x samples).

Counts are (points, 1) columns (:mod:`model.mechanism`), each cost's draws a
(1, samples) row, and each term is one broadcast elementwise product, added
cost by cost in a fixed order. For point ``p`` and cost sample ``s``:

    t_native[p, s] = fixed[p] + native_syscall[p] * syscall[s] + native_page_lookup[p] * page_lookup[s]
                     + ... (one product per native cost, model.evaluate.NATIVE_PRICED)
                     + bytes[p] * max(1 / copy_bandwidth[s], cpus[p] / mem_bandwidth[s])
    t_asi[p, s]    = t_native[p, s] + work[p, s] + sum over sources e of E_e[p, s] * pair_e[p, s]

``work`` is the ASI work that is not an exit: each count of
:func:`model.mechanism.work_counts` times its cost's draw, added in
:data:`model.costs.ASI_COSTS` order. ``E_e`` are the exits per op of source
``e``: a fixed count for the sources ops cause, and for the time-driven ones a
rate times the time per op spent restricted,

    E_time[p, s] = rate[p, s] * t_native[p, s] * 1e-9 * max(0, 1 - U_op[p, s] / t_native[p, s])

with ``U_op`` the time per op spent unrestricted after the op-driven exits
(each exit's dwell, :data:`model.mechanism.DWELL`). Ticks are counted over the
native time per op: the extra ticks that the slowdown itself adds are second
order (slowdown x tick share). For a guest's VM exits (:data:`model.mechanism.VM_EXIT_SOURCES`)
the rate is the workload's VM exits per second of that reason times the sampled share that
touches sensitive data, so it varies per sample like ``tick``. ``pair_e`` is the cost of one
exit/enter pair (:data:`model.mechanism.PAIR_COSTS`).

The alternatives without ASI are priced on the same samples: the kernel's default
mitigations (per kernel entry, context switch, and for a guest per VM entry, its VM
exits being a rate times ``t_native``), and for guests the blanket VM protection
(:data:`model.params.VM_BASELINE`) on top of it.

Nothing is a matrix product (no counts x costs product through BLAS, whose
blocking depends on the chunk's shape): a point's result must be bit-identical
whatever other points share its chunk. The per-point sample means of products
use ``einsum`` without BLAS, one C loop per point (``_mean_product``). Per point the samples
reduce to summary statistics. The two metrics are never confused:

    slowdown        = t_asi / t_native - 1
    throughput_loss = 1 - t_native / t_asi  = slowdown / (1 + slowdown)

Quantiles are taken of ``slowdown``; the loss quantiles are the same order
statistics mapped through the monotone ``s / (1 + s)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .costs import ASI_COSTS, priced_draws
from .mechanism import (
    DWELL,
    EXIT_REASONS,
    EXIT_SOURCES,
    FAULTING_SOURCES,
    GUEST_SOURCES,
    KERNEL_TIME_MITIGATIONS,
    MITIGATION_TERMS,
    OP_SOURCES,
    TIME_SOURCES,
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
from .params import DEFAULT_MITIGATIONS, VM_BASELINE, VM_EXIT_REASONS, as_columns, check_ranges

NATIVE_PRICED = ("syscall", "page_lookup", "user_fault", "context_switch")
"""Native costs that multiply a count (the bandwidths enter through ``bytes``)."""

QUANTILES = {"p05": 0.05, "p50": 0.50, "p95": 0.95}

TARGET = 0.01
"""The ASI team's target: degradations below 1 % (Brendan Jackman, lore
``DD7S12CF1V9G.3KGT3KYBLZ7F2@google.com``; Google's internal ASI: "under 1 %
commonly")."""
THRESHOLD = 0.05
"""At 5 % the team "doesn't even bother asking" (same thread): the line a fix must get under."""

CONFIDENCE = {"p_meets_target": TARGET, "p_under_threshold": THRESHOLD}
"""Per point, the share of cost samples whose slowdown is below each line: the probability,
under the CPU profile's cost distribution (its priors, or a calibrated posterior), that the
point meets it."""

METRICS: tuple[str, ...] = (
    "t_native_mean",
    "t_asi_mean",
    "slowdown_mean",
    "throughput_loss_mean",
    *(f"slowdown_{q}" for q in QUANTILES),
    *CONFIDENCE,
    *(f"throughput_loss_{q}" for q in QUANTILES),
    "exits_per_op",
    *(f"exits_{source}" for source in EXIT_SOURCES),
    *(f"exit_rate_{reason}" for reason in EXIT_REASONS),
    *(f"extra_ns_{cost}" for cost in ASI_COSTS),
    *(f"extra_ns_exit_{source}" for source in EXIT_SOURCES),
    "t_default_mean",
    *(f"default_vs_off_{q}" for q in ("mean", *QUANTILES)),
    *(f"slowdown_vs_default_{q}" for q in ("mean", *QUANTILES)),
    "p_beats_default",
    *(f"default_ns_{m}" for m in DEFAULT_MITIGATIONS),
    "vm_exits_per_op",
    "t_ibpb_vmexit_mean",
    *(f"slowdown_vs_ibpb_vmexit_{q}" for q in ("mean", *QUANTILES)),
    "p_beats_ibpb_vmexit",
    *(f"baseline_ns_{part}" for part in VM_BASELINE),
    *(f"host_exit_rate_{source}" for source in GUEST_SOURCES),
)
"""Every output of :func:`evaluate`, in order: times [ns/op], slowdown and loss [fraction],
exits [1/op] (sample means), exit rates by the prototype's reasons [1/s per CPU], and the
mean extra time per op [ns/op] by ASI cost and by exit source; then the comparison with the
kernel's default mitigations: the native time with them [ns/op], their own cost against
``mitigations=off`` (``default_vs_off``: ``t_default / t_native - 1``), the slowdown of ASI (with
what it keeps of them) against it, the share of samples where ASI is faster, and the cost of
each default mitigation [ns/op]; then a guest's VM exits per op [1/op] (its rates times the
native time) and the same comparison with the blanket VM protection of a host without ASI
(:data:`model.params.VM_BASELINE`: the default plus IBPB on every VM exit and an L1D flush on
every VM entry on L1TF CPUs), with the cost of each of its parts [ns/op]; last, a guest's host
exits per second per vCPU by source (:data:`model.mechanism.GUEST_SOURCES`: VM-exit reason,
``KVM_RUN`` returns, the VMM's syscalls and thread switches, zeroing of guest RAM), over the
time with ASI like ``exit_rate_<reason>``, comparable with ``perf kvm stat`` and the
prototype's ``asi_exit`` tracepoints."""

DEFAULT_CHUNK_ELEMENTS = {"compiled": 1 << 22, "numpy": 1 << 16}
"""Points x samples per internal chunk, by engine: the numpy engine's temporaries are (points x
samples), so its chunks stay small enough for the cache (1e5 points x 1024 samples never
materialise at once); the compiled engine holds only per-point factors and sums, so its chunks
are large enough that the per-chunk numpy work (:func:`model.kernel.point_factors`,
:func:`summarise`) is spread over thousands of points."""


@dataclass
class Priced:
    """One chunk of points priced for every sample.

    ``t_native`` and ``extra`` have shape (points, samples); the summaries are
    per-point sample means, shape (points,), keyed by metric name (``exits_*``,
    ``extra_ns_*``, ``extra_ns_exit_*``, ``exit_rate_*``)."""

    t_native: np.ndarray
    extra: np.ndarray
    means: dict[str, np.ndarray]
    default: np.ndarray  # the default mitigations' time per op without ASI [ns]
    kept: np.ndarray  # ... and what of it stays on under ASI [ns]
    blanket: np.ndarray  # the blanket VM protection's time per op without ASI [ns]
    exits: dict[str, np.ndarray]  # exits per op by source: (points, 1) or (points, samples)


def _row(values) -> np.ndarray:
    """A per-sample cost as a (1, samples) row."""
    return np.asarray(values, dtype=np.float64)[None, :]


def _col(values, n: int) -> np.ndarray:
    """A per-point count as a (points, 1) column."""
    return np.broadcast_to(np.asarray(values, dtype=np.float64), (n,))[:, None]


def _mean_product(a: np.ndarray, b: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Per point, the sample mean of ``a * b`` (each (points|1, samples|1)), in one pass.

    A C loop per point (``einsum`` without BLAS), so a point's value never
    depends on which other points share its chunk.
    """
    return np.einsum("ps,ps->p", np.broadcast_to(a, shape), np.broadcast_to(b, shape)) / shape[1]


def _flagged(flag: np.ndarray, value: np.ndarray):
    """``flag * value`` for a (points, 1) 0/1 flag; ``value`` itself when every point has the
    flag and ``None`` when none has (the same numbers, fewer passes)."""
    if flag.all():
        return value
    if not flag.any():
        return None
    return flag * value


def price(c: Mapping[str, np.ndarray], costs: Mapping[str, np.ndarray]) -> Priced:
    """Price points ``c`` (columns of one chunk) with every cost sample."""
    n = c["cpus"].shape[0]
    samples = np.asarray(costs["syscall"]).shape[0]
    shape = (n, samples)
    row = {name: _row(values) for name, values in priced_draws(costs).items()}

    # ---- native time
    native = native_counts(c)
    # Bandwidth: each CPU copies at its own speed until the socket's bandwidth,
    # split between all CPUs, is the tighter limit.
    ns_per_byte = np.maximum(1.0 / row["copy_bandwidth"], _col(c["cpus"], n) / row["mem_bandwidth"])
    t_native = _col(native["bytes"], n) * ns_per_byte
    t_native += _col(native["fixed"], n)
    for name in NATIVE_PRICED:
        if np.any(native[name]):
            t_native += _col(native[name], n) * row[name]

    # ---- exits: the op-driven ones, then the time-driven ones over the restricted time
    op = {k: _col(v, n) for k, v in exits_per_op(c).items()}
    dwell = dwell_counts(c)
    dwell_time = {
        "io": _col(dwell["io"]["syscall"], n) * row["syscall"]
        + _col(dwell["io"]["page_lookup"], n) * row["page_lookup"]
        + _col(dwell["io"]["bytes"], n) * ns_per_byte,
        "fault": row["user_fault"] + _col(dwell["fault"]["bytes"], n) * ns_per_byte,
        "rest": row["kernel_rest"],
    }
    by_kind = {kind: sum(op[s] for s in OP_SOURCES if DWELL[s] == kind) for kind in dwell_time}
    unrestricted = np.zeros(shape)
    for kind, count in by_kind.items():
        if count.any():
            unrestricted += count * dwell_time[kind]
    restricted_s = np.maximum(0.0, 1.0 - unrestricted / t_native) * t_native * 1e-9
    rates = {"tick": np.where(_col(c["kernel_thread"], n) > 0, 0.0, row["tick_exits"])}
    rates.update({k: _col(v, n) for k, v in time_exit_rates(c).items()})
    rates.update({k: _col(v, n) for k, v in vmm_exit_rates(c).items()})
    # a guest's VM exits: per reason, the rate times the share that touches sensitive data
    vm_rates = vm_exit_rates(c)
    vm_factor = vm_exit_asi_factor(c)
    for reason in VM_EXIT_REASONS:
        source = f"vmexit_{reason}"
        rates[source] = (
            _col(vm_rates[reason] * vm_factor[source], n) * row[f"vmexit_share_{reason}"]
            if np.any(vm_rates[reason])
            else np.zeros((1, 1))
        )
    timed = {s: rates[s] * restricted_s for s in TIME_SOURCES if np.any(rates[s])}
    timed_total = sum(timed.values(), np.zeros(shape))
    unrestricted += timed_total * row["kernel_rest"]
    op_total = sum(op[s] for s in OP_SOURCES)
    total = op_total + timed_total
    faulting = sum(op[s] for s in FAULTING_SOURCES if s in OP_SOURCES) + sum(
        (timed[s] for s in FAULTING_SOURCES if s in timed), np.zeros(shape)
    )

    # ---- what one pair costs (model.mechanism.PAIR_COSTS)
    flag = {k: _col(c[k], n) for k in ("ibpb", "l1tf", "cr3_noflush", "smt_stun")}
    use = ephmap_use_per_op(c)
    walks = _col(c["tlb_working_set"], n)
    if flag["cr3_noflush"].any():
        invalidations = _col(use["invalidations"], n)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(
                total > 0, -np.expm1(-invalidations / np.where(total > 0, total, 1.0)), 0.0
            )
        walks = walks * np.where(flag["cr3_noflush"] > 0, share, 1.0)
    per_pair = {
        "cr3_write": 2.0 * row["cr3_write"],
        "page_walk": walks * row["page_walk"],
        "ibpb": _flagged(flag["ibpb"], row["ibpb"]),
        "rsb_fill": row["rsb_fill"],
        "l1d_flush": _flagged(flag["l1tf"], row["l1d_flush"]),
        "generation_check": _flagged(flag["cr3_noflush"], row["generation_check"]),
        "smt_stun": _flagged(flag["smt_stun"], row["smt_stun"]),
    }
    per_pair = {k: v for k, v in per_pair.items() if v is not None}
    pair_direct = sum(per_pair.values())
    smt = _flagged(flag["smt_stun"], np.ones((1, 1)))

    # ---- extra time: the pairs, the sibling's lost time, then the rest of the work
    extra = total * pair_direct
    extra += faulting * row["fault_entry"]
    if smt is not None:  # a stunned sibling loses the time its core spends unrestricted
        extra += smt * unrestricted
    work = work_counts(c, use)
    for name in ASI_COSTS:  # a fixed order: the sum is the same in every process
        if name in work and np.any(work[name]):
            extra += _col(work[name], n) * row[name]
    # kvm_vmm_switch: a direct KVM <-> VMM switch pair per return to the VMM, over the same
    # restricted time as the exits it replaces: two CR3 writes and, unless they keep
    # NOFLUSH, the refill
    direct_rate = direct_vmm_switch_rate(c)
    direct = {}
    if np.any(direct_rate):
        switches = _col(direct_rate, n) * restricted_s
        refill = _col(c["tlb_working_set"], n) * (1.0 - flag["cr3_noflush"])
        direct = {"cr3_write": 2.0 * switches * row["cr3_write"]}
        direct["page_walk"] = switches * refill * row["page_walk"]
        for value in direct.values():
            extra += value

    # ---- summaries: sample means per point
    means: dict[str, np.ndarray] = {}
    for source in EXIT_SOURCES:
        means[f"exits_{source}"] = (
            timed[source].mean(axis=1)
            if source in timed
            else np.broadcast_to(op.get(source, 0.0), (n, 1))[:, 0].copy()
        )
    for name in ASI_COSTS:
        value = np.zeros(n)
        if name in per_pair:
            value = value + _mean_product(total, per_pair[name], shape)
        if name == "fault_entry":
            value = value + _mean_product(faulting, row["fault_entry"], shape)
        if name == "smt_stun" and smt is not None:
            value = value + (smt * unrestricted).mean(axis=1)
        if name in work and np.any(work[name]):
            value = value + np.broadcast_to(work[name], (n,)) * row[name].mean()
        if name in direct:
            value = value + direct[name].mean(axis=1)
        means[f"extra_ns_{name}"] = value
    # what each source's exits cost: an op-driven source's count is the same in every
    # sample, so its mean is the count times the mean cost of its pairs
    pair_mean = np.broadcast_to(pair_direct, shape).mean(axis=1)
    entry_mean = row["fault_entry"].mean()
    dwell_mean = {k: np.broadcast_to(v, shape).mean(axis=1) for k, v in dwell_time.items()}
    for source in EXIT_SOURCES:
        entry = source in FAULTING_SOURCES
        if source in timed:
            value = _mean_product(timed[source], pair_direct, shape)
            if entry:
                value = value + _mean_product(timed[source], row["fault_entry"], shape)
            if smt is not None:
                value = value + smt[:, 0] * _mean_product(
                    timed[source], dwell_time[DWELL[source]], shape
                )
        elif source in op:
            pair = pair_mean + (entry_mean if entry else 0.0)
            if smt is not None:
                pair = pair + smt[:, 0] * dwell_mean[DWELL[source]]
            value = op[source][:, 0] * pair
        else:
            value = np.zeros(n)
        means[f"extra_ns_exit_{source}"] = value
    inverse_time = 1e9 / (t_native + extra)
    inverse_mean = inverse_time.mean(axis=1)
    for reason, sources in EXIT_REASONS.items():
        rate = sum((op[s][:, 0] for s in sources if s in op), np.zeros(n)) * inverse_mean
        for s in sources:
            if s in timed:
                rate = rate + _mean_product(timed[s], inverse_time, shape)
        means[f"exit_rate_{reason}"] = rate
    for source in GUEST_SOURCES:
        means[f"host_exit_rate_{source}"] = (
            _mean_product(timed[source], inverse_time, shape)
            if source in timed
            else op.get(source, np.zeros((n, 1)))[:, 0] * inverse_mean
        )
    # ---- the alternatives without ASI: the kernel's default, and the blanket VM protection
    active = {m: _col(on, n) for m, on in active_defaults(c).items()}
    per_sample = {}
    if any(active[m].any() for m in KERNEL_TIME_MITIGATIONS):
        # the op's kernel time: the kernel paths the model prices, and base_time's kernel share
        kernel_time = _col(native["bytes"], n) * ns_per_byte + _col(kernel_share_time(c), n)
        for name in NATIVE_PRICED:
            if np.any(native[name]):
                kernel_time = kernel_time + _col(native[name], n) * row[name]
        per_sample["kernel_time"] = kernel_time
    per_op = t_native * 1e-9  # [s] of guest time per op: VM exits are a rate over it
    vm_entries = np.zeros((1, 1))
    guest = any(np.any(v) for v in vm_rates.values())
    if guest:
        vm_entries = sum(_col(vm_rates[r], n) for r in VM_EXIT_REASONS) * per_op
        unsafe = sum(
            (_col(vm_rates[r], n) * row[f"vmexit_share_{r}"] for r in VM_EXIT_REASONS),
            np.zeros(shape),
        )
        per_sample |= {"vm_entries": vm_entries, "unsafe_vm_entries": unsafe * per_op}
    vmm_rate = vmm_exit_rate(c)
    if np.any(vmm_rate):
        per_sample["vmm_exits"] = _col(vmm_rate, n) * per_op
    means["vm_exits_per_op"] = np.broadcast_to(vm_entries, shape).mean(axis=1)
    events = default_events(c, per_sample)
    default, kept = np.zeros(shape), np.zeros(shape)
    by_mitigation = {}
    for m, terms in MITIGATION_TERMS.items():
        value = None
        if active[m].any():
            for event, cost in terms:
                count = events[event]
                if np.any(count):
                    count = count if np.ndim(count) == 2 else _col(count, n)
                    term = count * row[cost]
                    value = term if value is None else value + term
        if value is None:
            means[f"default_ns_{m}"] = np.zeros(n)
            continue
        value = active[m] * value
        by_mitigation[m] = value
        default += value
        # a (points, samples) product reduced row by row: the same sum whether or not other
        # points of the chunk make the events per-sample (a guest's VM entries)
        means[f"default_ns_{m}"] = np.broadcast_to(value, shape).mean(axis=1)
        keep = _col(c[f"asi_keeps_{m}"], n)
        if keep.any():
            kept += keep * value
    blanket = default if not guest else default.copy()  # no VM exits: it is the default
    for part, (_, cost_name, needs) in VM_BASELINE_EVENTS.items():
        means[f"baseline_ns_{part}"] = np.zeros(n)
        if not guest:
            continue
        flag = np.ones((n, 1)) if needs is None else _col(c[needs], n)
        value = vm_entries * flag * row[cost_name]
        means[f"baseline_ns_{part}"] = value.mean(axis=1)
        blanket += value
    if guest:
        # the always-flush replaces the conditional one, IBPB on every exit VMSCAPE's
        if "l1d_vmentry" in by_mitigation:
            blanket -= by_mitigation["l1d_vmentry"] * _col(c["l1tf"], n)
        if "vmscape" in by_mitigation:  # on the points that run a guest
            runs_guest = sum(_col(vm_rates[r], n) for r in VM_EXIT_REASONS) > 0
            blanket -= by_mitigation["vmscape"] * runs_guest
    exits = {s: timed[s] if s in timed else op.get(s, np.zeros((n, 1))) for s in EXIT_SOURCES}
    return Priced(t_native, extra, means, default, kept, blanket, exits)


def quantiles(values: np.ndarray, probabilities) -> np.ndarray:
    """Quantiles along axis 1 with linear interpolation between order statistics.

    Same definition as ``numpy.quantile``'s default ``"linear"`` method, but one
    SIMD sort per chunk is several times faster than numpy's partition-based
    selection for three quantiles of ~1000 samples.
    """
    ordered = np.sort(values, axis=1)
    n = ordered.shape[1]
    out = []
    for q in probabilities:
        position = q * (n - 1)
        lo = int(np.floor(position))
        hi = min(lo + 1, n - 1)
        frac = position - lo
        out.append(ordered[:, lo] + frac * (ordered[:, hi] - ordered[:, lo]))
    return np.stack(out)


def _columns(points: Mapping[str, object]) -> dict[str, np.ndarray]:
    cols = as_columns(points)
    check_ranges(cols)
    return cols


def sample_times(points: Mapping[str, object], costs: Mapping[str, np.ndarray]):
    """Per-sample native and ASI time per op [ns], each of shape (points, samples).

    For tests and sensitivity analysis; :func:`evaluate` never materialises
    these for all points at once.
    """
    priced = price(_columns(points), costs)
    return priced.t_native, priced.t_native + priced.extra


def sample_default_times(points: Mapping[str, object], costs: Mapping[str, np.ndarray]):
    """Per-sample native time and time with the kernel's default mitigations per op [ns], each
    of shape (points, samples): what a single-mechanism microbenchmark compares."""
    times = sample_breakdown(points, costs)
    return times["native"], times["default"]


def sample_breakdown(
    points: Mapping[str, object], costs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Per-sample times per op [ns], each (points, samples), of every alternative:
    ``native`` (``mitigations=off``), ``asi`` (ASI alone), ``asi_kept`` (ASI with the
    default mitigations it keeps), ``default`` (the kernel's default mitigations without
    ASI), ``blanket`` (the default plus the blanket VM protection); and ``exits_<source>``
    [1/op], broadcast to (points, samples). For published benchmarks run as they were
    run (:mod:`pipeline.validate`), which combine several points sample by sample."""
    priced = price(_columns(points), costs)
    shape = priced.t_native.shape
    t_asi = priced.t_native + priced.extra
    out = {
        "native": priced.t_native,
        "asi": t_asi,
        "asi_kept": t_asi + priced.kept,
        "default": priced.t_native + priced.default,
        "blanket": priced.t_native + priced.blanket,
    }
    out.update({f"exits_{s}": np.broadcast_to(v, shape) for s, v in priced.exits.items()})
    return out


def _compare(out: dict, rows, name: str, t_alternative: np.ndarray, t_kept: np.ndarray) -> None:
    """ASI (with the mitigations it keeps, ``t_kept`` [ns]) against an alternative without
    ASI (``t_alternative`` [ns]), per sample: ``t_<name>_mean``, ``slowdown_vs_<name>_*``
    (the mean and :data:`QUANTILES`) and ``p_beats_<name>`` into ``out[...][rows]``."""
    versus = t_kept / t_alternative - 1
    out[f"t_{name}_mean"][rows] = t_alternative.mean(axis=1)
    out[f"slowdown_vs_{name}_mean"][rows] = versus.mean(axis=1)
    out[f"p_beats_{name}"][rows] = (versus < 0).mean(axis=1)
    for q_name, q in zip(QUANTILES, quantiles(versus, QUANTILES.values()), strict=True):
        out[f"slowdown_vs_{name}_{q_name}"][rows] = q


ENGINES = ("compiled", "numpy")
"""How :func:`evaluate` prices: ``compiled`` (:mod:`model.kernel`, point by point in machine
code, the default) or ``numpy`` (:func:`price` over (points x samples) chunks, the readable
statement of the same sums and the baseline ``benchmarks/bench_model.py`` measures against)."""


def order_ranks(n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The order statistics :data:`QUANTILES` interpolate between, for ``n_samples`` samples:
    the ranks (0-based, ascending, each quantile's lower then upper) and each quantile's
    fraction of the way between them (numpy's default ``"linear"`` method)."""
    ranks, fractions = [], []
    for q in QUANTILES.values():
        position = q * (n_samples - 1)
        lo = int(np.floor(position))
        ranks += [lo, min(lo + 1, n_samples - 1)]
        fractions.append(position - lo)
    return np.array(ranks, dtype=np.int64), np.array(fractions)


def _interpolate(stats: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Quantiles (quantiles, points) from order statistics (points, ranks) of :func:`order_ranks`."""
    lo, hi = stats[:, 0::2], stats[:, 1::2]
    return (lo + fractions * (hi - lo)).T


def summarise(
    factors: Mapping[str, object],
    costs: Mapping[str, np.ndarray],
    sums: np.ndarray,
    stats: np.ndarray,
    fractions: np.ndarray,
) -> dict[str, np.ndarray]:
    """The :data:`METRICS` of points from what :func:`model.kernel.evaluate_points` returns:
    their sums over samples, the order statistics of each ratio, and the per-point factors and
    cost draws they came from. Means are sums over the number of samples; a time-driven
    source's mean exits are its rate times the mean restricted time, an op-driven one's its
    count; per cost, work that does not depend on the sample is its count times the cost's mean."""
    from .kernel import RATIOS, SUMS, TERMS, Factor, Row

    n_samples = np.asarray(costs["syscall"]).shape[0]
    f = factors["scalars"]
    n = f.shape[0]
    mean = {name: sums[:, k] / n_samples for k, name in enumerate(SUMS)}
    cost_mean = {name: float(np.mean(v)) for name, v in priced_draws(costs).items()}
    flag = {k: f[:, Factor[k]] for k in ("ibpb", "l1tf", "cr3_noflush", "smt_stun")}
    smt = flag["smt_stun"]
    out: dict[str, np.ndarray] = {}
    out["t_native_mean"] = mean["t_native"]
    out["t_asi_mean"] = mean["t_native"] + mean["extra"]
    out["slowdown_mean"] = mean["slowdown"]
    out["throughput_loss_mean"] = mean["loss"]
    out["p_meets_target"] = mean["meets_target"]
    out["p_under_threshold"] = mean["under_threshold"]
    quantile = {name: _interpolate(stats[:, k], fractions) for k, name in enumerate(RATIOS)}
    for k, q in enumerate(QUANTILES):
        out[f"slowdown_{q}"] = quantile["slowdown"][k]

    # exits, their cost and their rate, by source: for a time-driven source, sums weighted by
    # its rate (a constant, the tick's draw, or a VM exit's rate times its sampled share)
    op, rates = factors["op"], factors["rates"]
    weighted = {}  # source -> (rate, sum prefix) with mean(rate x restricted x what)
    for r, reason in enumerate(VM_EXIT_REASONS):
        weighted[f"vmexit_{reason}"] = (factors["vm_coef"][:, r], ("vm", reason))
    weighted["tick"] = (f[:, Factor.tick_on], "tick")
    for source in TIME_SOURCES:
        if source not in weighted:
            weighted[source] = (rates[source], "restricted")

    def timed(source: str, what: str) -> np.ndarray:
        rate, prefix = weighted[source]
        if isinstance(prefix, tuple):
            return rate * mean[f"vm_{what}_{prefix[1]}"]
        return rate * mean[prefix if not what else f"{prefix}_{what}"]

    dwell_mean = {
        "io": mean["dwell_io"],
        "fault": mean["dwell_fault"],
        "rest": np.full(n, cost_mean["kernel_rest"]),
    }
    for source in EXIT_SOURCES:
        out[f"exits_{source}"] = timed(source, "") if source in weighted else op[source].copy()
    for source in EXIT_SOURCES:
        entry = source in FAULTING_SOURCES
        if source in weighted:
            value = timed(source, "pair")
            if entry:
                value = value + timed(source, "entry")
            value = value + smt * timed(source, "rest")
        else:
            pair = mean["pair"] + (cost_mean["fault_entry"] if entry else 0.0)
            pair = pair + smt * dwell_mean[DWELL[source]]
            value = op[source] * pair
        out[f"extra_ns_exit_{source}"] = value
    # extra time by ASI cost: the pairs, the fault entries, the stunned sibling, the work
    per_pair = {
        "cr3_write": mean["total_cr3_write"],
        "page_walk": mean["total_page_walk"],
        "ibpb": flag["ibpb"] * mean["total_ibpb"],
        "rsb_fill": mean["total_rsb_fill"],
        "l1d_flush": flag["l1tf"] * mean["total_l1d_flush"],
        "generation_check": flag["cr3_noflush"] * mean["total_generation_check"],
        "smt_stun": smt * mean["total_smt_stun"] + smt * mean["unrestricted"],
        "fault_entry": mean["faulting_entry"],
    }
    direct = f[:, Factor.direct_rate]
    refill = f[:, Factor.tlb_working_set] * (1.0 - flag["cr3_noflush"])
    per_pair["cr3_write"] = per_pair["cr3_write"] + 2.0 * direct * mean["restricted_cr3_write"]
    per_pair["page_walk"] = per_pair["page_walk"] + direct * refill * mean["restricted_page_walk"]
    work = factors["work"]
    for name in ASI_COSTS:
        out[f"extra_ns_{name}"] = per_pair.get(name, 0.0) + work[:, Row[name]] * cost_mean[name]
    for reason, sources in EXIT_REASONS.items():
        rate = sum((op[s] for s in sources if s in op and s not in weighted), np.zeros(n))
        rate = rate * mean["inverse"]
        for s in sources:
            if s in weighted:
                rate = rate + timed(s, "inverse")
        out[f"exit_rate_{reason}"] = rate
    for source in GUEST_SOURCES:
        out[f"host_exit_rate_{source}"] = (
            timed(source, "inverse") if source in weighted else op[source] * mean["inverse"]
        )

    # the alternatives without ASI
    out["t_default_mean"] = mean["t_default"]
    out["default_vs_off_mean"] = mean["default_vs_off"]
    out["slowdown_vs_default_mean"] = mean["vs_default"]
    out["p_beats_default"] = mean["beats_default"]
    out["t_ibpb_vmexit_mean"] = mean["t_blanket"]
    out["slowdown_vs_ibpb_vmexit_mean"] = mean["vs_blanket"]
    out["p_beats_ibpb_vmexit"] = mean["beats_blanket"]
    for k, q in enumerate(QUANTILES):
        out[f"default_vs_off_{q}"] = quantile["default_vs_off"][k]
        out[f"slowdown_vs_default_{q}"] = quantile["vs_default"][k]
        out[f"slowdown_vs_ibpb_vmexit_{q}"] = quantile["vs_blanket"][k]
    # each default mitigation's mean cost: its terms' coefficients times the terms' means
    term_mean = [mean[f"term_{base}_{cost}"] for base, cost in TERMS]
    for m, coef in factors["by_mitigation"].items():
        out[f"default_ns_{m}"] = sum(
            (value * term_mean[j] for j, value in sorted(coef.items())), np.zeros(n)
        )
    vm_total = factors["vm_total"]
    out["vm_exits_per_op"] = vm_total * mean["native_s"]
    for part, (_, cost_name, needs) in VM_BASELINE_EVENTS.items():
        flag_part = np.ones(n) if needs is None else f[:, Factor[needs]]
        out[f"baseline_ns_{part}"] = vm_total * flag_part * mean[f"term_native_s_{cost_name}"]
    return out


def evaluate(
    points: Mapping[str, object],
    costs: Mapping[str, np.ndarray],
    *,
    chunk_elements: int | None = None,
    engine: str = "compiled",
) -> dict[str, np.ndarray]:
    """Evaluate points over cost samples and summarise each point.

    Parameters
    ----------
    points : mapping of str to array-like
        Columns named as in :data:`model.params.POINT_PARAMS`.
    costs : mapping of str to ndarray of shape (samples,)
        From :func:`model.costs.sample_costs`.
    chunk_elements : int, optional
        Points x samples per internal chunk (default: :data:`DEFAULT_CHUNK_ELEMENTS`).
    engine : {"compiled", "numpy"}
        :data:`ENGINES`; both give the same results to rounding.

    Returns
    -------
    dict of str to ndarray of shape (points,)
        The :data:`METRICS`: ``t_native_mean``, ``t_asi_mean`` [ns/op];
        ``slowdown_*`` and ``throughput_loss_*`` for ``mean``, ``p05``,
        ``p50``, ``p95``; ``p_meets_target`` and ``p_under_threshold``, the
        share of samples below 1 % and 5 % (:data:`CONFIDENCE`);
        ``exits_per_op`` and ``exits_<source>`` [1/op];
        ``exit_rate_<reason>`` [1/s per CPU, over the time per op with ASI];
        ``extra_ns_<cost>`` and ``extra_ns_exit_<source>``, the mean extra
        time per op by ASI cost and by exit source [ns/op]. All sample means
        but the quantiles.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    cols = _columns(points)
    n_points = cols["cpus"].shape[0]
    n_samples = np.asarray(costs["syscall"]).shape[0]
    out = {name: np.zeros(n_points) for name in METRICS}
    step = max(1, (chunk_elements or DEFAULT_CHUNK_ELEMENTS[engine]) // max(n_samples, 1))
    if engine == "compiled":
        from .kernel import cost_rows, evaluate_points, point_factors

        rows = cost_rows(costs)
        ranks, fractions = order_ranks(n_samples)
        for start in range(0, n_points, step):
            rows_slice = slice(start, min(start + step, n_points))
            factors = point_factors({k: v[rows_slice] for k, v in cols.items()})
            sums, stats = evaluate_points(factors, rows, ranks)
            for name, value in summarise(factors, costs, sums, stats, fractions).items():
                out[name][rows_slice] = value
    else:
        for start in range(0, n_points, step):
            _evaluate_chunk(out, slice(start, min(start + step, n_points)), cols, costs)
    for name in QUANTILES:
        s = out[f"slowdown_{name}"]
        out[f"throughput_loss_{name}"] = s / (1.0 + s)
    out["exits_per_op"] = sum(out[f"exits_{source}"] for source in EXIT_SOURCES)
    return out


def _evaluate_chunk(out: dict, rows: slice, cols, costs) -> None:
    """The numpy engine: one chunk of points priced by :func:`price` and summarised."""
    priced = price({k: v[rows] for k, v in cols.items()}, costs)
    t_native, extra = priced.t_native, priced.extra
    t_asi = t_native + extra
    slowdown = extra / t_native
    out["t_native_mean"][rows] = t_native.mean(axis=1)
    out["t_asi_mean"][rows] = out["t_native_mean"][rows] + extra.mean(axis=1)
    out["slowdown_mean"][rows] = slowdown.mean(axis=1)
    out["throughput_loss_mean"][rows] = (extra / t_asi).mean(axis=1)
    for name, line in CONFIDENCE.items():
        out[name][rows] = (slowdown < line).mean(axis=1)
    for name, q in zip(QUANTILES, quantiles(slowdown, QUANTILES.values()), strict=True):
        out[f"slowdown_{name}"][rows] = q
    for name, value in priced.means.items():
        out[name][rows] = value
    t_kept = t_asi + priced.kept
    t_default = t_native + priced.default
    vs_off = priced.default / t_native
    out["default_vs_off_mean"][rows] = vs_off.mean(axis=1)
    for name, q in zip(QUANTILES, quantiles(vs_off, QUANTILES.values()), strict=True):
        out[f"default_vs_off_{name}"][rows] = q
    _compare(out, rows, "default", t_default, t_kept)
    _compare(out, rows, "ibpb_vmexit", t_native + priced.blanket, t_kept)


OVERHEAD_PARTS: dict[str, str] = {
    "op_exits": "exit/enter pairs of the exits ops cause",
    "time_exits": "exit/enter pairs of time-driven exits (ticks, interrupts, kthread switches, a "
    "guest's VM exits and the host's work around it)",
    "pte_writes": "ephmap PTE set and clear",
    "software_path": "the ephmap's software path per use (walk, slot, checks)",
    "invlpg": "INVLPG per unmapped ephmap page",
    "rewalk": "page walks again after INVLPG dropped the paging-structure caches",
    "flushes": "full flushes and their refills, shootdowns, temporary-mm switches and direct "
    "KVM <-> VMM switches (kvm_vmm_switch)",
    "mm_setup": "per-mm restricted tables (ASI PGD, ephmap tables per possible CPU)",
}
"""Where the extra time per op goes, in a reader's terms (:func:`overhead_split`)."""


def overhead_split(result: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Split the mean extra time per op [ns] of :func:`evaluate`'s ``result`` into
    :data:`OVERHEAD_PARTS`; the parts add up to ``t_asi_mean - t_native_mean``."""
    parts = {
        "op_exits": sum(result[f"extra_ns_exit_{s}"] for s in OP_SOURCES),
        "time_exits": sum(result[f"extra_ns_exit_{s}"] for s in TIME_SOURCES),
        "pte_writes": result["extra_ns_ephmap_pte"],
        "software_path": result["extra_ns_ephmap_software"]
        + result["extra_ns_ephmap_software_fast"],
        "invlpg": result["extra_ns_invlpg"],
        "rewalk": result["extra_ns_psc_rewalk"],
        "mm_setup": result["extra_ns_asi_mm_setup"] + result["extra_ns_ephmap_setup_per_cpu"],
    }
    total = sum(result[f"extra_ns_{cost}"] for cost in ASI_COSTS)
    # what is left: flush instructions, their refills, shootdowns and mm switches
    parts["flushes"] = total - sum(parts.values())
    return {name: parts[name] for name in OVERHEAD_PARTS}
