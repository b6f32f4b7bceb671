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


def _accumulate(
    out: np.ndarray, counts: Mapping[str, np.ndarray], costs: Mapping[str, np.ndarray], names
) -> None:
    """``out += sum_c counts[c][:, None] * costs[c][None, :]`` over cost names ``names``.

    Elementwise rather than a BLAS matrix product on purpose: a point's result
    must be bit-identical whatever other points share its chunk, and BLAS
    kernels may sum in a different order for different matrix shapes. Columns
    that are zero for the whole chunk (flags off) are skipped.
    """
    scratch = np.empty_like(out)
    for name in names:
        count = np.broadcast_to(np.asarray(counts[name], dtype=np.float64), out.shape[:1])
        if not count.any():
            continue
        np.multiply(count[:, None], np.asarray(costs[name], dtype=np.float64)[None, :], out=scratch)
        out += scratch


def _times(cols, costs, rows: slice):
    """``(t_native, extra)`` [ns/op], each of shape (rows, samples), for a slice of points."""
    c = {k: v[rows] for k, v in cols.items()}
    n_points = c["cpus"].shape[0]
    n_samples = np.asarray(costs["syscall"]).shape[0]
    native = native_counts(c)
    # Bandwidth: each CPU copies at its own speed until the socket's bandwidth,
    # split between all CPUs, is the tighter limit.
    t_native = np.maximum(
        1.0 / np.asarray(costs["copy_bandwidth"], dtype=np.float64)[None, :],
        c["cpus"][:, None] / np.asarray(costs["mem_bandwidth"], dtype=np.float64)[None, :],
    )
    t_native *= np.broadcast_to(native["bytes"], (n_points,))[:, None]
    t_native += np.broadcast_to(native["fixed"], (n_points,))[:, None]
    _accumulate(t_native, native, costs, NATIVE_PRICED)
    extra = np.zeros((n_points, n_samples))
    _accumulate(extra, asi_counts(c), costs, ASI_COSTS)
    return t_native, extra


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
        qs = quantiles(slowdown, QUANTILES.values())
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
