"""Price the mechanism's counts with sampled costs, elementwise over (points x samples).

For a chunk of points and every cost sample ``s``:

    t_native[p, s] = fixed[p] + sum_c N_native[p, c] * C[c, s]
                     + bytes[p] * max(1 / copy_bandwidth[s], cpus[p] / mem_bandwidth[s])
    t_asi[p, s]    = t_native[p, s] + work[p, s] + sum_e E_e[p, s] * pair_e[p, s]

``work`` is the ASI work that is not an exit (:func:`model.mechanism.work_counts`
times the costs). ``E_e`` are the exits per op of source ``e``: a fixed count
for the sources ops cause, and for the time-driven ones a rate times the time
per op spent restricted,

    E_time[p, s] = rate[p, s] * t_native[p, s] * 1e-9 * max(0, 1 - U_op[p, s] / t_native[p, s])

with ``U_op`` the time per op spent unrestricted after the op-driven exits
(each exit's dwell, :data:`model.mechanism.DWELL`). Ticks are counted over the
native time per op: the extra ticks that the slowdown itself adds are second
order (slowdown x tick share). ``pair_e`` is the cost of one exit/enter pair
(:data:`model.mechanism.PAIR_COSTS`).

Everything is elementwise, never a BLAS product: a point's result must be
bit-identical whatever other points share its chunk. Per point the samples
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

from .costs import ASI_COSTS
from .mechanism import (
    DWELL,
    EXIT_REASONS,
    EXIT_SOURCES,
    FAULTING_SOURCES,
    OP_SOURCES,
    TIME_SOURCES,
    dwell_counts,
    ephmap_use_per_op,
    exits_per_op,
    native_counts,
    time_exit_rates,
    work_counts,
)
from .params import as_columns, check_ranges

NATIVE_PRICED = ("syscall", "page_lookup", "user_fault", "context_switch")
"""Native costs that multiply a count (the bandwidths enter through ``bytes``)."""

QUANTILES = {"p05": 0.05, "p50": 0.50, "p95": 0.95}

METRICS: tuple[str, ...] = (
    "t_native_mean",
    "t_asi_mean",
    "slowdown_mean",
    "throughput_loss_mean",
    *(f"slowdown_{q}" for q in QUANTILES),
    *(f"throughput_loss_{q}" for q in QUANTILES),
    "exits_per_op",
    *(f"exits_{source}" for source in EXIT_SOURCES),
    *(f"exit_rate_{reason}" for reason in EXIT_REASONS),
    *(f"extra_ns_{cost}" for cost in ASI_COSTS),
    *(f"extra_ns_exit_{source}" for source in EXIT_SOURCES),
)
"""Every output of :func:`evaluate`, in order: times [ns/op], slowdown and loss [fraction],
exits [1/op] (sample means), exit rates by the prototype's reasons [1/s per CPU], and the
mean extra time per op [ns/op] by ASI cost and by exit source."""

DEFAULT_CHUNK_ELEMENTS = 1 << 16
"""Points x samples per internal chunk: small enough to stay in cache and to
bound memory (1e5 points x 1024 samples never materialise at once)."""


@dataclass
class Priced:
    """One chunk of points priced for every sample; arrays of shape (points, samples)
    unless noted (a (points,) count broadcasts)."""

    t_native: np.ndarray
    extra: np.ndarray
    contributions: dict[str, np.ndarray]  # ASI cost -> extra time per op [ns]
    exits: dict[str, np.ndarray]  # exit source -> exits per op
    by_source: dict[str, np.ndarray]  # exit source -> extra time per op its exits cost [ns]


def _row(values) -> np.ndarray:
    """A per-sample cost as a (1, samples) row."""
    return np.asarray(values, dtype=np.float64)[None, :]


def _col(values, n: int) -> np.ndarray:
    """A per-point count as a (points, 1) column."""
    return np.broadcast_to(np.asarray(values, dtype=np.float64), (n,))[:, None]


def _dwell_times(dwell, costs, ns_per_byte, n: int) -> dict[str, np.ndarray]:
    """Time one unrestricted period of each :data:`model.mechanism.DWELL` kind lasts [ns]."""
    out = {}
    for kind, counts in dwell.items():
        t = np.zeros((n, 1))
        for name, count in counts.items():
            price = ns_per_byte if name == "bytes" else _row(costs[name])
            t = t + _col(count, n) * price
        out[kind] = t
    return out


def price(c: Mapping[str, np.ndarray], costs: Mapping[str, np.ndarray]) -> Priced:
    """Price points ``c`` (columns of one chunk) with every cost sample."""
    n = c["cpus"].shape[0]
    # the optimised path does a subset of the walk's work: never dearer than the walk
    costs = {
        **costs,
        "ephmap_software_fast": np.minimum(costs["ephmap_software_fast"], costs["ephmap_software"]),
    }
    native = native_counts(c)
    # Bandwidth: each CPU copies at its own speed until the socket's bandwidth,
    # split between all CPUs, is the tighter limit.
    ns_per_byte = np.maximum(
        1.0 / _row(costs["copy_bandwidth"]), _col(c["cpus"], n) / _row(costs["mem_bandwidth"])
    )
    t_native = _col(native["bytes"], n) * ns_per_byte + _col(native["fixed"], n)
    for name in NATIVE_PRICED:
        t_native = t_native + _col(native[name], n) * _row(costs[name])

    # ---- exits: the op-driven ones, then the time-driven ones over the restricted time
    exits: dict[str, np.ndarray] = {k: _col(v, n) for k, v in exits_per_op(c).items()}
    dwell = _dwell_times(dwell_counts(c), costs, ns_per_byte, n)
    unrestricted = sum(exits[s] * dwell[DWELL[s]] for s in OP_SOURCES)
    restricted_s = np.maximum(0.0, 1.0 - unrestricted / t_native) * t_native * 1e-9
    rates = {"tick": np.where(_col(c["kernel_thread"], n) > 0, 0.0, _row(costs["tick_exits"]))}
    rates.update({k: _col(v, n) for k, v in time_exit_rates(c).items()})
    for source in TIME_SOURCES:
        exits[source] = rates[source] * restricted_s
        unrestricted = unrestricted + exits[source] * dwell[DWELL[source]]
    total = sum(exits[s] for s in EXIT_SOURCES)

    # ---- what one pair costs (model.mechanism.PAIR_COSTS)
    flag = {k: _col(c[k], n) for k in ("ibpb", "l1tf", "cr3_noflush", "smt_stun")}
    use = ephmap_use_per_op(c)
    invalidations = _col(use["invalidations"], n)
    with np.errstate(divide="ignore", invalid="ignore"):
        refill_share = np.where(
            total > 0, -np.expm1(-invalidations / np.where(total > 0, total, 1.0)), 0.0
        )
    refill = np.where(flag["cr3_noflush"] > 0, refill_share, 1.0)
    walks = refill * _col(c["tlb_working_set"], n)
    per_pair = {
        "cr3_write": 2.0 * _row(costs["cr3_write"]),
        "page_walk": walks * _row(costs["page_walk"]),
        "ibpb": flag["ibpb"] * _row(costs["ibpb"]),
        "rsb_fill": _row(costs["rsb_fill"]),
        "l1d_flush": flag["l1tf"] * _row(costs["l1d_flush"]),
        "generation_check": flag["cr3_noflush"] * _row(costs["generation_check"]),
        "smt_stun": flag["smt_stun"] * _row(costs["smt_stun"]),
    }
    pair_direct = sum(per_pair.values())
    faulting = sum(exits[s] for s in FAULTING_SOURCES)

    # ---- extra time by ASI cost: the pairs', then the rest of the work
    contributions = {name: total * cost for name, cost in per_pair.items()}
    contributions["fault_entry"] = faulting * _row(costs["fault_entry"])
    # a stunned sibling loses the time its core spends unrestricted
    contributions["smt_stun"] = contributions["smt_stun"] + flag["smt_stun"] * unrestricted
    for name, count in work_counts(c, use).items():
        if np.any(count):
            contributions[name] = contributions.get(name, 0.0) + _col(count, n) * _row(costs[name])
    extra = np.zeros_like(t_native)
    for name in ASI_COSTS:  # a fixed order: the sum is the same in every process
        if name in contributions:
            extra = extra + contributions[name]

    by_source = {}
    for source in EXIT_SOURCES:
        pair = pair_direct + flag["smt_stun"] * dwell[DWELL[source]]
        if source in FAULTING_SOURCES:
            pair = pair + _row(costs["fault_entry"])
        by_source[source] = exits[source] * pair
    return Priced(np.broadcast_to(t_native, extra.shape), extra, contributions, exits, by_source)


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
    return np.array(priced.t_native), priced.t_native + priced.extra


def _mean(values: np.ndarray) -> np.ndarray:
    """Sample mean per point of a (points, samples) or (points, 1) array."""
    return values.mean(axis=1)


def evaluate(
    points: Mapping[str, object],
    costs: Mapping[str, np.ndarray],
    *,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> dict[str, np.ndarray]:
    """Evaluate points over cost samples and summarise each point.

    Parameters
    ----------
    points : mapping of str to array-like
        Columns named as in :data:`model.params.POINT_PARAMS`.
    costs : mapping of str to ndarray of shape (samples,)
        From :func:`model.costs.sample_costs`.
    chunk_elements : int
        Upper bound on points x samples held at once.

    Returns
    -------
    dict of str to ndarray of shape (points,)
        The :data:`METRICS`: ``t_native_mean``, ``t_asi_mean`` [ns/op];
        ``slowdown_*`` and ``throughput_loss_*`` for ``mean``, ``p05``,
        ``p50``, ``p95``; ``exits_per_op`` and ``exits_<source>`` [1/op];
        ``exit_rate_<reason>`` [1/s per CPU, over the time per op with ASI];
        ``extra_ns_<cost>`` and ``extra_ns_exit_<source>``, the mean extra
        time per op by ASI cost and by exit source [ns/op]. All sample means
        but the quantiles.
    """
    cols = _columns(points)
    n_points = cols["cpus"].shape[0]
    n_samples = np.asarray(costs["syscall"]).shape[0]
    out = {name: np.zeros(n_points) for name in METRICS}
    step = max(1, chunk_elements // max(n_samples, 1))
    for start in range(0, n_points, step):
        rows = slice(start, min(start + step, n_points))
        priced = price({k: v[rows] for k, v in cols.items()}, costs)
        m = rows.stop - rows.start
        t_native, extra = priced.t_native, priced.extra
        t_asi = t_native + extra
        slowdown = extra / t_native
        out["t_native_mean"][rows] = t_native.mean(axis=1)
        out["t_asi_mean"][rows] = out["t_native_mean"][rows] + extra.mean(axis=1)
        out["slowdown_mean"][rows] = slowdown.mean(axis=1)
        out["throughput_loss_mean"][rows] = (extra / t_asi).mean(axis=1)
        for name, q in zip(QUANTILES, quantiles(slowdown, QUANTILES.values()), strict=True):
            out[f"slowdown_{name}"][rows] = q
        for source in EXIT_SOURCES:
            out[f"exits_{source}"][rows] = _mean(priced.exits[source])
            out[f"extra_ns_exit_{source}"][rows] = _mean(priced.by_source[source])
        for reason, sources in EXIT_REASONS.items():
            count = sum((priced.exits[s] for s in sources), np.zeros((m, 1)))
            out[f"exit_rate_{reason}"][rows] = (count / t_asi).mean(axis=1) * 1e9
        for name in ASI_COSTS:
            if name in priced.contributions:
                out[f"extra_ns_{name}"][rows] = _mean(priced.contributions[name])
    for name in QUANTILES:
        s = out[f"slowdown_{name}"]
        out[f"throughput_loss_{name}"] = s / (1.0 + s)
    out["exits_per_op"] = sum(out[f"exits_{source}"] for source in EXIT_SOURCES)
    return out


OVERHEAD_PARTS: dict[str, str] = {
    "op_exits": "exit/enter pairs of the exits ops cause",
    "time_exits": "exit/enter pairs of time-driven exits (ticks, interrupts, kthread switches)",
    "pte_writes": "ephmap PTE set and clear",
    "software_path": "the ephmap's software path per use (walk, slot, checks)",
    "invlpg": "INVLPG per unmapped ephmap page",
    "rewalk": "page walks again after INVLPG dropped the paging-structure caches",
    "flushes": "full flushes and their refills, shootdowns, temporary-mm switches",
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
