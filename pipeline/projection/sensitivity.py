"""Which uncertain per-operation costs drive the spread of the final-stage slowdown.

The store keeps per-point summaries only, so the Monte Carlo samples of a
point are recomputed: the same common-random-number cost draws
(:meth:`pipeline.grid.Profile.costs`, i.e. :func:`model.costs.sample_costs`)
priced by :func:`model.evaluate.sample_times`. Sample ``k`` of the slowdown
is then paired with draw ``k`` of every cost, and each cost's influence is
measured on those pairs:

* Spearman's rank correlation ``rho`` (monotone influence, sign included);
  the costs are drawn independently, so ``rho**2`` approximates the share of
  the slowdown's rank variance that cost explains;
* a tornado swing: the median slowdown over the samples whose draw of that
  cost is in its lowest tenth, and over those in its highest tenth.

The recomputed median is checked against the stored one: equal (to rounding)
when the store was written by the same model and cost profile.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from model.costs import ASI_COSTS
from model.evaluate import QUANTILES, quantiles, sample_times

TAIL = 0.10
"""Fraction of samples at each end of a cost's draws for the tornado's low/high medians."""


def sample_slowdown(point: Mapping[str, object], costs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per-sample slowdown ``t_asi / t_native - 1`` of one point, shape (samples,)."""
    columns = {name: np.atleast_1d(value) for name, value in point.items()}
    t_native, t_asi = sample_times(columns, costs)
    return (t_asi / t_native - 1.0)[0]


def sample_quantiles(slowdown: np.ndarray) -> dict[str, float]:
    """``p05``, ``p50``, ``p95`` of per-sample slowdowns, defined as the model defines them."""
    values = quantiles(np.asarray(slowdown, dtype=np.float64)[None, :], QUANTILES.values())
    return {name: float(v[0]) for name, v in zip(QUANTILES, values, strict=True)}


def rank_sensitivity(
    slowdown: np.ndarray, costs: Mapping[str, np.ndarray], tail: float = TAIL
) -> pd.DataFrame:
    """Each cost's influence on ``slowdown`` over paired samples.

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
        One row per cost, most influential first: ``cost``, ``kind`` (``asi``
        for a cost ASI adds, ``native`` for one that sets the baseline),
        ``spearman`` (rank correlation, 0 for a fixed cost), ``rank_share``
        (``spearman**2``), ``low`` and ``high`` (median slowdown with the cost
        in its lowest and highest ``tail`` of draws) and ``swing``
        (``high - low``).
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
                "rank_share": rho**2,
                "low": low,
                "high": high,
                "swing": high - low,
            }
        )
    table = pd.DataFrame.from_records(records)
    order = np.argsort(-np.abs(table["spearman"].to_numpy()), kind="stable")
    return table.iloc[order].reset_index(drop=True)


def noise_level(samples: int) -> float:
    """|rho| below which a rank correlation is indistinguishable from zero (about 2 sigma)."""
    return 2.0 / np.sqrt(max(samples - 1, 1))


def point_sensitivity(
    point: Mapping[str, object],
    costs: Mapping[str, np.ndarray],
    stored_p50: float | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """:func:`rank_sensitivity` of one point, and its recomputed quantiles.

    The quantiles dict also holds ``stored_p50`` and ``matches`` (1.0 when
    the recomputed p50 equals the stored one to 1e-9 relative, 0.0 when it
    does not, NaN when nothing was stored).
    """
    slowdown = sample_slowdown(point, costs)
    stats = sample_quantiles(slowdown)
    stats["samples"] = float(len(slowdown))
    if stored_p50 is None or not np.isfinite(stored_p50):
        stats["stored_p50"], stats["matches"] = float("nan"), float("nan")
    else:
        stats["stored_p50"] = float(stored_p50)
        close = abs(stats["p50"] - stored_p50) <= 1e-9 * max(abs(stored_p50), 1e-12)
        stats["matches"] = 1.0 if close else 0.0
    return rank_sensitivity(slowdown, costs), stats
