"""Exact order statistics of one point's samples by selection, not by sorting.

:func:`model.kernel.evaluate_points` needs a few order statistics of each of four per-sample
arrays of ~1024 values (the ranks of :data:`model.evaluate.QUANTILES`), not the sorted
array. A full sort costs about 16 ns per value on this project's machines; selection here
costs about two (``bench_model``: ``model_select_ns_per_value``), in passes that are each a
single loop over the values:

1. a *key* per value, its bucket among :data:`BUCKETS` equal-width buckets over
   ``mean + SPAN * sd`` (the values' moments are summed in the same loop that produced them;
   values outside go to the end buckets), computed vectorized as ``(x - base) * scale``
   clamped and truncated to a small integer;
2. a histogram of the keys, whose running sum names the bucket of every wanted rank and
   the number of values below it;
3. one pass that keeps the values of those buckets (a few, usually a dozen values each),
   then per bucket an insertion sort; a bucket with more than :data:`FEW` values is split
   again into :data:`SUB` buckets between its minimum and maximum, until few are left.

The result is exactly the ``k``-th smallest value, ties and all: the key is a monotone
function of the value (a subtraction, a multiplication by a positive number, a clamp and a
truncation, each monotone in floating point), so every value of a lower bucket is at most
every value of a higher one, whatever the rounding, and a bucket whose values are all equal
returns that value. Every pass keeps the values' order and the insertion sort is stable, so
among equal values (``0.0`` and ``-0.0``) the one returned is that of a stable sort. Values
that are not all finite, or so small that their squares underflow, go through ``np.sort``
(NaN last, as numpy orders them). Everything is per point: no value depends on other points.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .jitcache import drop_stale_machine_code

drop_stale_machine_code()  # before anything here or in the kernel is compiled

BUCKETS = 256
"""Buckets of the first pass (keys fit a byte). More buckets leave fewer values per wanted
bucket but cost a longer running sum."""

SPAN = (-2.1, 2.5)
"""The first pass's buckets cover ``mean + SPAN[0] * sd`` to ``mean + SPAN[1] * sd``: where the
5th, 50th and 95th percentiles of the model's per-sample ratios fall on ``bench_model``'s points
(-2.0 to 2.4 standard deviations: the ratios are skewed to the right). Any span gives exact
results; only the speed depends on it (a wanted rank in an end bucket is found one split
later)."""

FEW = 16
"""Values in a bucket at or below which it is sorted rather than split again."""

SUB = 32
"""Buckets of each further split, between the bucket's minimum and maximum."""


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
def _keys(x, n, base, scale, top, keys):
    """``keys[i]`` = ``(x[i] - base) * scale`` clamped to ``[0, top]`` and truncated: monotone
    in ``x[i]`` (vectorized)."""
    for i in range(n):
        keys[i] = np.uint8(min(max((x[i] - base) * scale, 0.0), top))


@nb.njit(cache=True, error_model="numpy")
def _histogram(keys, n, hist, n_buckets):
    for b in range(n_buckets):
        hist[b] = 0
    for i in range(n):
        hist[keys[i]] += 1


@nb.njit(cache=True, error_model="numpy")
def _keep(x, keys, n, targets, n_targets, mask, words, out, out_keys):
    """Copy the values of ``x[:n]`` whose key is one of ``targets[:n_targets]`` and their keys
    to ``out`` and ``out_keys``, in order (``out_keys`` may be ``keys``); their number.

    ``mask`` (at least ``n / 8`` 64-bit words) is set a byte per value, vectorized; then the
    indices of its non-zero words go to ``words`` and only those words' values are copied
    (the kept values are a few percent: a few dozen words of ~128). Every loop is
    branch-free: a branch per word would be mispredicted about every fourth word."""
    n_words = (n + 7) // 8
    flags = mask.view(np.uint8)
    for i in range(8 * n_words):
        flags[i] = 0
    for t in range(n_targets):
        b = np.uint8(targets[t])
        for i in range(n):
            flags[i] |= np.uint8(keys[i] == b)
    m = np.uint64(0)  # unsigned indices: no wraparound check
    for w in range(n_words):
        words[m] = w
        m += np.uint64(mask[w] != 0)
    k = np.uint64(0)
    for j in range(int(m)):
        w = words[j]
        for i in range(8 * w, min(8 * w + 8, n)):
            out[k] = x[i]
            out_keys[k] = keys[i]
            k += np.uint64(flags[i])
    return int(k)


@nb.njit(cache=True, error_model="numpy")
def _extremes(x, n):
    low = x[0]
    high = x[0]
    for i in range(n):
        v = x[i]
        low = v if v < low else low
        high = v if v > high else high
    return low, high


@nb.njit(cache=True, error_model="numpy")
def _narrow(work, m, rank, spare, keys, mask, words, hist, target):
    """Sort the neighbourhood of ``rank`` among ``work[:m]`` in place: split into :data:`SUB`
    buckets between the values' extremes until at most :data:`FEW` are left, then sort them.
    Returns how many values lie below the sorted ``work[:size]`` and ``size``."""
    below = 0
    while m > FEW:
        low, high = _extremes(work, m)
        if low == high:  # all equal: already in order
            return below, m
        scale = SUB / (high - low)
        if not scale < math.inf:  # extremes a few subnormals apart
            break
        _keys(work, m, low, scale, SUB - 1.0, keys)
        _histogram(keys, m, hist, SUB)
        b = 0
        while below + hist[b] <= rank:
            below += hist[b]
            b += 1
        if hist[b] == m:  # no progress (cannot happen with low < high): sort them all
            break
        target[0] = b
        m = _keep(work, keys, m, target, 1, mask, words, spare, keys)
        work[:m] = spare[:m]
    _insertion_sort(work, m)
    return below, m


@nb.njit(cache=True)
def selection_scratch(n, n_ranks):
    """The scratch buffers :func:`order_statistics` needs for ``n`` values and ``n_ranks``
    ranks, allocated once per caller and reused for every call."""
    return (
        np.empty(2 * n),  # a bucket's values, then a split's
        np.empty(n),  # the kept values of every wanted bucket
        np.empty(2 * n, dtype=np.uint8),  # keys, then a split's
        np.empty((n + 7) // 8, dtype=np.uint64),  # the keep mask, a byte per value
        np.empty((n + 7) // 8, dtype=np.int64),  # its non-zero words
        np.empty(BUCKETS + SUB, dtype=np.int64),  # histograms
        np.empty(n_ranks + 1, dtype=np.int64),  # the wanted buckets
        np.empty((2, n_ranks), dtype=np.int64),  # each rank's bucket and the count below it
    )


@nb.njit(cache=True, error_model="numpy")
def _sorted_order_statistics(x, ranks, out):
    ordered = np.sort(x)
    for j in range(ranks.shape[0]):
        out[j] = ordered[ranks[j]]


@nb.njit(cache=True, error_model="numpy")
def order_statistics(x, total, total_sq, ranks, out, scratch):
    """``out[j]`` = the ``ranks[j]``-th smallest of ``x`` (0-based; fastest with ``ranks``
    ascending).

    ``total`` and ``total_sq`` are the sums of ``x`` and ``x**2`` (the buckets' centre and
    width); ``scratch`` is :func:`selection_scratch` ``(len(x), len(ranks))``, which the caller
    reuses: nothing is allocated per call.
    """
    n_ranks = ranks.shape[0]
    for j in range(1, n_ranks):
        if ranks[j] < ranks[j - 1]:  # not ascending (a few samples: the quantiles' ranks repeat)
            for k in range(n_ranks):
                _ascending(x, total, total_sq, ranks[k : k + 1], out[k : k + 1], scratch)
            return
    _ascending(x, total, total_sq, ranks, out, scratch)


@nb.njit(cache=True, error_model="numpy")
def _ascending(x, total, total_sq, ranks, out, scratch):
    """:func:`order_statistics` of ascending ``ranks`` (not recursive: numba's cache of a
    recursive function crashes once another specialisation of it is compiled)."""
    n = x.shape[0]
    n_ranks = ranks.shape[0]
    if n_ranks == 0:
        return
    # not all finite, or squares that underflow (subnormal values): sort
    if not (math.isfinite(total) and math.isfinite(total_sq)) or total_sq < 1e-290:
        if total_sq == 0.0 and not np.any(x):  # every value is zero: the common case
            for j in range(n_ranks):
                out[j] = 0.0
            return
        _sorted_order_statistics(x, ranks, out)
        return
    work, kept, keys, mask, words, hist, targets, where = scratch
    mean = total / n
    sd = math.sqrt(max(total_sq / n - mean * mean, 0.0))
    base = mean + SPAN[0] * sd
    scale = BUCKETS / ((SPAN[1] - SPAN[0]) * sd)
    if not (0.0 < scale < math.inf):  # no spread left after rounding: the extremes instead
        low, high = _extremes(x, n)
        if low == high:
            for j in range(n_ranks):
                out[j] = low
            return
        base = low
        scale = BUCKETS / (high - low)
        if not scale < math.inf:
            _sorted_order_statistics(x, ranks, out)
            return
    _keys(x, n, base, scale, BUCKETS - 1.0, keys)
    _histogram(keys, n, hist, BUCKETS)
    # the running count: each rank's bucket and the values below it
    bucket_of = where[0]
    below = where[1]
    c = 0
    j = 0
    n_targets = 0
    for b in range(BUCKETS):
        h = hist[b]
        if ranks[j] < c + h:
            targets[n_targets] = b
            n_targets += 1
            while j < n_ranks and ranks[j] < c + h:
                bucket_of[j] = b
                below[j] = c
                j += 1
            if j == n_ranks:
                break
        c += h
    m_kept = _keep(x, keys, n, targets, n_targets, mask, words, kept, keys)
    current = -1  # the bucket whose neighbourhood work[:size] holds, sorted
    first = 0  # ... from rank first on
    size = 0
    for j in range(n_ranks):
        b = bucket_of[j]
        rank = ranks[j]
        if b == current and first <= rank < first + size:
            out[j] = work[rank - first]
            continue
        m = 0
        for i in range(m_kept):
            work[m] = kept[i]
            m += keys[i] == b
        skipped, size = _narrow(
            work,
            m,
            rank - below[j],
            work[n:],
            keys[n:],
            mask,
            words,
            hist[BUCKETS:],
            targets[n_ranks:],
        )
        first = below[j] + skipped
        current = b
        out[j] = work[rank - first]
