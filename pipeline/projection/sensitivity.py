"""Which uncertain per-operation costs drive the spread of the final-stage slowdown.

The store keeps per-point summaries only, so the Monte Carlo samples of a
point are recomputed: the same common-random-number cost draws
(:meth:`pipeline.sweep.points.Profile.costs`, i.e. :func:`model.costs.sample_costs`)
priced by :func:`model.evaluate.sample_times`. Sample ``k`` of the slowdown
is then paired with draw ``k`` of every cost, and each cost's influence is
measured two ways:

* a **variance share** that stays valid when costs are correlated. A CPU
  profile may correlate some costs (``cpu.correlations``, which calibrated
  profiles carry): costs are then not drawn independently, and a cost's own
  first-order Sobol index is not a share of anything (it counts its
  partners' influence too, and the shares of correlated costs can add up to
  more than one). So costs are grouped: each connected set of correlated
  costs is one group (:func:`correlation_groups`), every other cost a group
  of its own. Groups are independent of each other, and a group's
  first-order effect ``Var(E[slowdown | the group's draws]) / Var(slowdown)``
  is a share of the slowdown's variance; shares of different groups add up
  to at most one (the rest is interactions), up to sampling error. Estimated
  by pick-freeze over the recomputed samples (:func:`group_first_order`;
  Saltelli et al. 2010, "Variance based sensitivity analysis of model output.
  Design and estimator for the total sensitivity index", Computer Physics
  Communications 181:259-270, doi:10.1016/j.cpc.2009.09.018).
* Spearman's rank correlation ``rho`` between the cost's draws and the
  slowdown, and a tornado swing (the median slowdown over the samples whose
  draw of that cost is in its lowest tenth, and over those in its highest
  tenth). Both are associations: with correlated costs they include the
  partners' influence, so a cost with no effect of its own can show a large
  ``rho``. ``rho**2`` is a share of variance only for independent costs with
  a monotone effect; it is not reported as one.

The recomputed median is checked against the stored one: equal (to rounding)
when the store was written by the same model and cost profile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.stats import rankdata

from asi_slowdown.model.costs import ASI_COSTS, Correlation
from asi_slowdown.model.evaluate import QUANTILES, quantiles, sample_times

TAIL = 0.10
"""Fraction of samples at each end of a cost's draws for the tornado's low/high medians."""

PICK_FREEZE_SEED = 20140901
"""Seed of the row permutation that pairs each sample with an independent one in
:func:`group_first_order` (fixed: a report is reproducible)."""

SlowdownOf = Callable[[Mapping[str, np.ndarray]], np.ndarray]
"""Per-sample slowdown [fraction], shape (samples,), of cost draws (each of shape (samples,))."""


def sample_slowdown(point: Mapping[str, object], costs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per-sample slowdown ``t_asi / t_native - 1`` of one point, shape (samples,)."""
    columns = {name: np.atleast_1d(value) for name, value in point.items()}
    t_native, t_asi = sample_times(columns, costs)
    return (t_asi / t_native - 1.0)[0]


def sample_quantiles(slowdown: np.ndarray) -> dict[str, float]:
    """``p05``, ``p50``, ``p95`` of per-sample slowdowns, defined as the model defines them."""
    values = quantiles(np.asarray(slowdown, dtype=np.float64)[None, :], QUANTILES.values())
    return {name: float(v[0]) for name, v in zip(QUANTILES, values, strict=True)}


def correlation_groups(
    names: Sequence[str], correlations: Sequence[Correlation] = ()
) -> list[tuple[str, ...]]:
    """``names`` split into groups that are independent of each other: the connected sets of
    the correlation graph (an edge per pair with ``rho != 0``), each in ``names`` order, the
    groups ordered by their first member."""
    index = {name: i for i, name in enumerate(names)}
    edges = [(index[a], index[b]) for a, b, rho in correlations if rho != 0]
    rows = [i for i, _ in edges]
    cols = [j for _, j in edges]
    graph = coo_matrix((np.ones(len(edges)), (rows, cols)), shape=(len(names), len(names)))
    _, label = connected_components(graph, directed=False)
    groups: dict[int, list[str]] = {}
    for name, group in zip(names, label, strict=True):
        groups.setdefault(int(group), []).append(name)
    return [tuple(members) for members in groups.values()]


def group_first_order(
    slowdown_of: SlowdownOf,
    costs: Mapping[str, np.ndarray],
    groups: Sequence[Sequence[str]],
    seed: int = PICK_FREEZE_SEED,
) -> dict[tuple[str, ...], float]:
    """First-order effect of each group of costs on the slowdown [share of its variance, 0-1].

    Pick-freeze over the given samples: sample ``k`` is paired with sample
    ``pi(k)`` of a random permutation ``pi``, and the model is priced again
    with the group's draws of ``k`` and every other cost's draws of
    ``pi(k)``. Since groups are independent of each other, that mixed row is
    a draw from the same joint distribution that shares only the group with
    row ``k``. With ``Y`` the slowdown of the rows, ``Y_pi`` that of the
    paired rows and ``Y_g`` that of the mixed ones, ``mean(Y (Y_g - Y_pi)) /
    Var(Y)`` estimates ``Var(E[Y | group]) / Var(Y)`` (Saltelli et al. 2010,
    Table 2, (b)); a group the slowdown does not depend on gets exactly 0
    (``Y_g == Y_pi``). The sampling error is about ``1 / sqrt(samples)``. A
    slowdown that does not vary gives 0 for every group.

    Parameters
    ----------
    slowdown_of : callable
        Per-sample slowdown of cost draws (:func:`sample_slowdown` of one point).
    costs : mapping of str to ndarray of shape (samples,)
        The draws ([ns], bandwidths [bytes/ns], rates [1/s]).
    groups : sequence of sequences of cost names
        Mutually independent groups (:func:`correlation_groups`) covering ``costs``.
    seed : int
        Seed of the permutation.
    """
    names = list(costs)
    n = len(np.asarray(costs[names[0]]))
    y = np.asarray(slowdown_of(costs), dtype=np.float64)
    perm = np.random.default_rng(seed).permutation(n)
    mixed = {
        name: np.concatenate(
            [np.asarray(costs[name])[np.arange(n) if name in group else perm] for group in groups]
        )
        for name in names
    }
    y_mixed = np.asarray(slowdown_of(mixed), dtype=np.float64).reshape(len(groups), n)
    y_other = y[perm]  # every cost from the paired rows: shares nothing with row k
    variance = float(np.var(y))
    return {
        tuple(group): float(np.mean(y * (y_g - y_other)) / variance) if variance > 0 else 0.0
        for group, y_g in zip(groups, y_mixed, strict=True)
    }


def rank_sensitivity(
    slowdown: np.ndarray, costs: Mapping[str, np.ndarray], tail: float = TAIL
) -> pd.DataFrame:
    """Each cost's association with ``slowdown`` over paired samples.

    Parameters
    ----------
    slowdown : ndarray of shape (samples,)
        Per-sample slowdown of one point (fraction).
    costs : mapping of str to ndarray of shape (samples,)
        The cost draws that produced it ([ns], bandwidths [bytes/ns]).
    tail : float
        Fraction of samples at each end for ``low`` and ``high``.

    Returns
    -------
    DataFrame
        One row per cost, largest ``|spearman|`` first: ``cost``, ``kind``
        (``asi`` for a cost ASI adds, ``native`` for one that sets the
        baseline), ``spearman`` (rank correlation, 0 for a fixed cost; an
        association, not a share of variance), ``low`` and ``high`` (median
        slowdown with the cost in its lowest and highest ``tail`` of draws)
        and ``swing`` (``high - low``).
    """
    slowdown = np.asarray(slowdown, dtype=np.float64)
    n = len(slowdown)
    k = max(1, int(round(tail * n)))
    slowdown_ranks = rankdata(slowdown)
    records = []
    for name, draws in costs.items():
        draws = np.asarray(draws, dtype=np.float64)
        varies = np.ptp(draws) > 0 and np.ptp(slowdown) > 0
        rho = float(np.corrcoef(rankdata(draws), slowdown_ranks)[0, 1]) if varies else 0.0
        order = np.argsort(draws, kind="stable")
        low = float(np.median(slowdown[order[:k]]))
        high = float(np.median(slowdown[order[-k:]]))
        records.append(
            {
                "cost": name,
                "kind": "asi" if name in ASI_COSTS else "native",
                "spearman": rho,
                "low": low,
                "high": high,
                "swing": high - low,
            }
        )
    table = pd.DataFrame.from_records(records)
    order = np.argsort(-np.abs(table["spearman"].to_numpy()), kind="stable")
    return table.iloc[order].reset_index(drop=True)


def noise_level(samples: int) -> float:
    """|rho|, or a group's share, below which it is indistinguishable from zero (about 2 sigma)."""
    return 2.0 / np.sqrt(max(samples - 1, 1))


def cost_sensitivity(
    slowdown_of: SlowdownOf,
    costs: Mapping[str, np.ndarray],
    correlations: Sequence[Correlation] = (),
    tail: float = TAIL,
) -> pd.DataFrame:
    """:func:`rank_sensitivity` with each cost's group and the group's variance share.

    Adds ``group`` (the group's costs joined by ``+``; a cost alone when the
    profile correlates it with nothing) and ``group_share``
    (:func:`group_first_order` of that group). Rows are ordered by
    ``group_share``, largest first, then by ``|spearman|`` within a group.
    """
    slowdown = np.asarray(slowdown_of(costs), dtype=np.float64)
    table = rank_sensitivity(slowdown, costs, tail)
    groups = correlation_groups(list(costs), correlations)
    shares = group_first_order(slowdown_of, costs, groups)
    member = {name: group for group in groups for name in group}
    table["group"] = ["+".join(member[c]) for c in table["cost"]]
    table["group_share"] = [shares[member[c]] for c in table["cost"]]
    order = np.lexsort((-np.abs(table["spearman"].to_numpy()), -table["group_share"].to_numpy()))
    return table.iloc[order].reset_index(drop=True)


def point_sensitivity(
    point: Mapping[str, object],
    costs: Mapping[str, np.ndarray],
    stored_p50: float | None = None,
    correlations: Sequence[Correlation] = (),
) -> tuple[pd.DataFrame, dict[str, float]]:
    """:func:`cost_sensitivity` of one point, and its recomputed quantiles.

    ``correlations`` are the profile's (``Profile.correlations``): they decide
    the groups. The quantiles dict also holds ``stored_p50`` and ``matches``
    (1.0 when the recomputed p50 equals the stored one to 1e-9 relative, 0.0
    when it does not, NaN when nothing was stored).
    """

    def slowdown_of(draws: Mapping[str, np.ndarray]) -> np.ndarray:
        return sample_slowdown(point, draws)

    table = cost_sensitivity(slowdown_of, costs, correlations)
    stats = sample_quantiles(sample_slowdown(point, costs))
    stats["samples"] = float(len(np.asarray(costs[next(iter(costs))])))
    if stored_p50 is None or not np.isfinite(stored_p50):
        stats["stored_p50"], stats["matches"] = float("nan"), float("nan")
    else:
        stats["stored_p50"] = float(stored_p50)
        close = abs(stats["p50"] - stored_p50) <= 1e-9 * max(abs(stored_p50), 1e-12)
        stats["matches"] = 1.0 if close else 0.0
    return table, stats
