"""The selection of model 0.6.0 (``model/select.py`` until the histogram replaced it), frozen:
the baseline ``bench_model`` measures :mod:`model.select` against in the same run
(``model_select_vs_ladder_ratio``). Not used by the model.

Exact order statistics by a ladder of pivots: one vectorized counting pass against pivots at
``mean + LADDER * sd``, which brackets every wanted rank; per bracket, one pass that gathers the
values inside it; among those, linear pivots between their extremes until a handful is left,
then an insertion sort.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

LADDER = np.array(
    [-1.6, -1.35, -1.2, -1.05, -0.9, -0.75, -0.6, -0.45, -0.3, -0.15, 0.0, 0.15, 0.3]
    + [1.3, 1.5, 1.65, 1.8, 2.1]
)
"""Pivots of the first counting pass, in standard deviations from the mean: dense where the
5th, 50th and 95th percentiles of the model's per-sample ratios fall. Those are skewed to the
right (a long upper tail of costs), so the 5th percentile sits nearer the mean than a normal's
-1.64 and the median below the mean; this ladder halves the values gathered per bracket on
``bench_model``'s points against a normal's (159 -> 95 at the 5th percentile, 120 -> 67 at the
median). Any ladder gives exact results; only the speed depends on it."""

FEW = 24
"""Gathered values at or below which the bracket is sorted rather than narrowed again."""


@nb.njit(cache=True, error_model="numpy")
def _count_le(x, n, pivots, n_pivots, counts):
    """``counts[j] = #{i < n: x[i] <= pivots[j]}`` (vectorized over ``i``)."""
    for j in range(n_pivots):
        p = pivots[j]
        c = 0
        for i in range(n):
            c += x[i] <= p
        counts[j] = c


@nb.njit(cache=True, error_model="numpy")
def _gather(x, n, lo, hi, out):
    """Copy the values of ``x[:n]`` in ``(lo, hi]`` to ``out`` (branch-free); their number."""
    k = 0
    for i in range(n):
        v = x[i]
        out[k] = v
        k += (v > lo) & (v <= hi)
    return k


@nb.njit(cache=True, error_model="numpy")
def _insertion_sort(x, n):
    for i in range(1, n):
        v = x[i]
        q = i - 1
        while q >= 0 and x[q] > v:
            x[q + 1] = x[q]
            q -= 1
        x[q + 1] = v


@nb.njit(cache=True, error_model="numpy")
def _bracket(pivots, counts, n_pivots, rank, lo, hi, below, upto):
    """Tighten ``(lo, hi]`` around ``rank`` with the counts of a pass: ``below`` values are
    ``<= lo`` and ``upto`` are ``<= hi``, ``below <= rank < upto``."""
    for j in range(n_pivots):
        if counts[j] <= rank and pivots[j] > lo:
            lo = pivots[j]
            below = counts[j]
        if counts[j] > rank and pivots[j] < hi:
            hi = pivots[j]
            upto = counts[j]
    return lo, hi, below, upto


@nb.njit(cache=True, error_model="numpy")
def _gather_brackets(x, lo, hi, n_brackets, out, sizes):
    """The values of ``x`` in each bracket ``(lo[g], hi[g]]`` to ``out[g]``, their number to
    ``sizes[g]``: three brackets per pass, their counters in registers."""
    for first in range(0, n_brackets, 3):
        a = first
        b = min(first + 1, n_brackets - 1)
        c = min(first + 2, n_brackets - 1)
        lo_a, hi_a, lo_b, hi_b, lo_c, hi_c = lo[a], hi[a], lo[b], hi[b], lo[c], hi[c]
        out_a, out_b, out_c = out[a], out[b], out[c]
        k_a = 0
        k_b = 0
        k_c = 0
        for i in range(x.shape[0]):
            v = x[i]
            out_a[k_a] = v
            k_a += (v > lo_a) & (v <= hi_a)
            out_b[k_b] = v
            k_b += (v > lo_b) & (v <= hi_b)
            out_c[k_c] = v
            k_c += (v > lo_c) & (v <= hi_c)
        sizes[a] = k_a
        sizes[b] = k_b
        sizes[c] = k_c


@nb.njit(cache=True, error_model="numpy")
def _select_gathered(gathered, m, rank, work, spare, pivots, counts):
    """Sort the neighbourhood of ``rank`` among ``gathered[:m]`` into ``work``: narrow by linear
    pivots between the values' extremes until at most :data:`FEW` are left, then sort them.
    Returns how many gathered values lie below the sorted ``work[:size]`` and ``size``."""
    below = 0
    work[:m] = gathered[:m]
    while True:
        low = work[0]
        high = work[0]
        for i in range(m):
            low = min(low, work[i])
            high = max(high, work[i])
        if low == high:  # all equal: already in order
            return below, m
        if m <= FEW:
            _insertion_sort(work, m)
            return below, m
        for k in range(8):
            pivots[k] = low + (high - low) * (k + 1) / 9.0
        _count_le(work, m, pivots, 8, counts)
        lo, hi, c_lo, c_hi = _bracket(pivots, counts, 8, rank - below, -np.inf, np.inf, 0, m)
        m2 = _gather(work, m, lo, hi, spare)
        work[:m2] = spare[:m2]
        m = m2
        below += c_lo


@nb.njit(cache=True, error_model="numpy")
def order_statistics(
    x, total, total_sq, ranks, out, work, sorted_, spare, pivots, counts, bounds, index
):
    """``out[j]`` = the ``ranks[j]``-th smallest of ``x`` (0-based; ``ranks`` ascending).

    ``total`` and ``total_sq`` are the sums of ``x`` and ``x**2`` (the ladder's centre and
    width). ``work`` (ranks x ``len(x)``), ``sorted_`` and ``spare`` (``len(x)``), ``pivots`` and ``counts``
    (at least ``len(LADDER)``), ``bounds`` (2 x ranks) and ``index`` (3 x ranks, int) are scratch
    buffers the caller reuses: nothing is allocated per call.
    """
    n = x.shape[0]
    n_ranks = ranks.shape[0]
    # not all finite, or squares that underflow (subnormal values): sort
    if not (math.isfinite(total) and math.isfinite(total_sq)) or total_sq < 1e-290:
        if total_sq == 0.0 and not np.any(x):  # every value is zero: the common case
            for j in range(n_ranks):
                out[j] = 0.0
            return
        ordered = np.sort(x)
        for j in range(n_ranks):
            out[j] = ordered[ranks[j]]
        return
    mean = total / n
    sd = math.sqrt(max(total_sq / n - mean * mean, 0.0))
    n_ladder = LADDER.shape[0]
    for k in range(n_ladder):
        pivots[k] = mean + LADDER[k] * sd
    _count_le(x, n, pivots, n_ladder, counts)
    # each rank's bracket; neighbouring ranks often share one
    lo = bounds[0]
    hi = bounds[1]
    below = index[0]
    bracket_of = index[1]
    sizes = index[2]
    n_brackets = 0
    for j in range(n_ranks):
        low, high, b, _ = _bracket(pivots, counts, n_ladder, ranks[j], -np.inf, np.inf, 0, n)
        if n_brackets > 0 and lo[n_brackets - 1] == low and hi[n_brackets - 1] == high:
            bracket_of[j] = n_brackets - 1
            continue
        lo[n_brackets] = low
        hi[n_brackets] = high
        below[n_brackets] = b
        bracket_of[j] = n_brackets
        n_brackets += 1
    _gather_brackets(x, lo, hi, n_brackets, work, sizes)
    first = -1  # the bracket's work[:size] holds the values of ranks first .. first + size - 1
    size = 0
    current = -1
    for j in range(n_ranks):
        g = bracket_of[j]
        rank = ranks[j]
        if g == current and first <= rank < first + size:
            out[j] = sorted_[rank - first]
            continue
        skipped, size = _select_gathered(
            work[g], sizes[g], rank - below[g], sorted_, spare, pivots, counts
        )
        first = below[g] + skipped
        current = g
        out[j] = sorted_[rank - first]
