"""Price the mechanism's counts with sampled costs, vectorized over (points x samples).

Time per op is linear in the unit costs except for memory bandwidth, so for a
chunk of points the model is two small matrix products (counts x costs) and
one elementwise bandwidth term:

    t_native[p, s] = fixed[p] + N_native[p] @ C_native[:, s]
                     + bytes[p] * max(1 / copy_bandwidth[s], cpus[p] / mem_bandwidth[s])
    t_asi[p, s]    = t_native[p, s] + N_asi[p] @ C_asi[:, s]

Per point the samples reduce to summary statistics. The two metrics are never
confused (``ARCHITECTURE.md``):

    slowdown        = t_asi / t_native - 1
    throughput_loss = 1 - t_native / t_asi  = slowdown / (1 + slowdown)

Quantiles are taken of ``slowdown``; the loss quantiles are the same order
statistics mapped through the monotone ``s / (1 + s)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .costs import ASI_COSTS
from .mechanism import EXIT_SOURCES, asi_counts, exits_per_op, native_counts
from .params import as_columns, check_ranges

NATIVE_PRICED = ("syscall", "page_lookup", "user_fault", "context_switch")
"""Native costs that multiply a count (the bandwidths enter through ``bytes``)."""

QUANTILES = {"p05": 0.05, "p50": 0.50, "p95": 0.95}

DEFAULT_CHUNK_ELEMENTS = 1 << 16
"""Points x samples per internal chunk: small enough to stay in cache and to
bound memory (1e5 points x 1024 samples never materialise at once)."""


def _cost_matrix(costs: Mapping[str, np.ndarray], names) -> np.ndarray:
    return np.stack([np.asarray(costs[n], dtype=np.float64) for n in names])


def _count_matrix(counts: Mapping[str, np.ndarray], names, n: int) -> np.ndarray:
    return np.stack(
        [np.broadcast_to(np.asarray(counts[k], dtype=np.float64), (n,)) for k in names], axis=1
    )


def _times(cols, costs, rows: slice):
    """``(t_native, extra)`` of shape (rows, samples) for a slice of points."""
    c = {k: v[rows] for k, v in cols.items()}
    n = c["cpus"].shape[0]
    native = native_counts(c)
    asi = asi_counts(c)
    t_native = _count_matrix(native, NATIVE_PRICED, n) @ _cost_matrix(costs, NATIVE_PRICED)
    t_native += native["fixed"][:, None]
    seconds_per_byte = np.maximum(
        1.0 / np.asarray(costs["copy_bandwidth"])[None, :],
        c["cpus"][:, None] / np.asarray(costs["mem_bandwidth"])[None, :],
    )
    t_native += native["bytes"][:, None] * seconds_per_byte
    extra = _count_matrix(asi, ASI_COSTS, n) @ _cost_matrix(costs, ASI_COSTS)
    return t_native, extra


def sample_times(points: Mapping[str, object], costs: Mapping[str, np.ndarray]):
    """Per-sample native and ASI time per op [ns], each of shape (points, samples).

    For tests and sensitivity analysis; :func:`evaluate` never materialises
    these for all points at once.
    """
    cols = as_columns(points)
    check_ranges(cols)
    t_native, extra = _times(cols, costs, slice(None))
    return t_native, t_native + extra


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
        ``t_native_mean``, ``t_asi_mean`` [ns/op]; ``slowdown_*`` and
        ``throughput_loss_*`` for ``mean``, ``p05``, ``p50``, ``p95``;
        ``exits_per_op`` and ``exits_<source>`` [1/op]; ``extra_ns_<cost>``,
        the mean extra time per op by ASI cost component [ns/op].
    """
    cols = as_columns(points)
    check_ranges(cols)
    n_points = cols["cpus"].shape[0]
    n_samples = np.asarray(costs["syscall"]).shape[0]
    out = {
        name: np.empty(n_points)
        for name in (
            "t_native_mean",
            "t_asi_mean",
            "slowdown_mean",
            "throughput_loss_mean",
            *(f"slowdown_{q}" for q in QUANTILES),
        )
    }
    step = max(1, chunk_elements // max(n_samples, 1))
    for start in range(0, n_points, step):
        rows = slice(start, min(start + step, n_points))
        t_native, extra = _times(cols, costs, rows)
        slowdown = extra / t_native
        out["t_native_mean"][rows] = t_native.mean(axis=1)
        out["t_asi_mean"][rows] = out["t_native_mean"][rows] + extra.mean(axis=1)
        out["slowdown_mean"][rows] = slowdown.mean(axis=1)
        out["throughput_loss_mean"][rows] = (extra / (t_native + extra)).mean(axis=1)
        qs = np.quantile(slowdown, list(QUANTILES.values()), axis=1)
        for name, q in zip(QUANTILES, qs, strict=True):
            out[f"slowdown_{name}"][rows] = q
    for name in QUANTILES:
        s = out[f"slowdown_{name}"]
        out[f"throughput_loss_{name}"] = s / (1.0 + s)

    exits = exits_per_op(cols)
    out["exits_per_op"] = np.asarray(sum(exits.values()), dtype=np.float64) * np.ones(n_points)
    for source in EXIT_SOURCES:
        out[f"exits_{source}"] = np.broadcast_to(exits[source], (n_points,)).astype(np.float64)
    # Extra time is linear in the costs, so its sample mean per component is
    # the count times the cost's sample mean: no per-sample work needed.
    asi = asi_counts(cols, exits)
    for name in ASI_COSTS:
        out[f"extra_ns_{name}"] = np.broadcast_to(asi[name], (n_points,)) * float(
            np.mean(costs[name])
        )
    return out
