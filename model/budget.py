"""What it would take: how low one cost must go for a point to meet the target.

For a point (in practice a workload at the roadmap's last stage on a CPU
profile) and one uncertain cost, scale every draw of that cost by the same
factor ``f <= 1`` (the shape of its distribution kept, its median moved to
``f x`` today's) and find the largest ``f`` at which

* ``statistic="p50"``: the median slowdown is below the target, or
* ``statistic="confidence"``: the probability of meeting the target (the
  share of paired samples below it) reaches ``probability``.

Time per op is linear in most costs, so the median is piecewise linear in
``f`` and the probability a step function; both are monotone, and
:func:`scipy.optimize.brentq` finds the crossing. The search stays inside the
cost's documented range: a factor that would take the median below the
range's low end is "not reachable" (the cost alone cannot get there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from .evaluate import TARGET, sample_times

STATISTICS = ("p50", "confidence")


@dataclass(frozen=True)
class Budget:
    """The answer for one cost, or several moved together (``cost`` joined by ``+``; then
    ``current``, ``lowest`` and ``needed`` are those of the first). Values in the model's
    units ([ns] for times)."""

    cost: str
    statistic: str
    current: float  # today's median of the cost's draws
    lowest: float  # the documented range's low end
    needed: float | None  # the largest median that meets it; None: not reachable
    already_met: bool
    factor: float | None = None  # needed / current: the same factor for every cost moved

    @property
    def reachable(self) -> bool:
        return self.needed is not None


def _shortfall(
    point,
    costs,
    names: tuple[str, ...],
    factor: float,
    statistic: str,
    target: float,
    probability: float,
) -> float:
    """Positive while the scaled point still misses the goal."""
    scaled = {**costs, **{n: np.asarray(costs[n], dtype=np.float64) * factor for n in names}}
    t_native, t_asi = sample_times(point, scaled)
    slowdown = t_asi[0] / t_native[0] - 1
    if statistic == "p50":
        return float(np.median(slowdown)) - target
    # a step function: signs only, so the root is the largest factor that still meets it
    return 0.5 if np.mean(slowdown < target) < probability else -0.5


def cost_budget(
    point: Mapping[str, object],
    costs: Mapping[str, np.ndarray],
    cost: str | Sequence[str],
    *,
    lowest: float | Sequence[float],
    statistic: str = "p50",
    target: float = TARGET,
    probability: float = 0.9,
) -> Budget:
    """How low the median of ``cost`` must go for ``point`` to meet ``target``.

    Parameters
    ----------
    point : mapping
        One point's parameters (:data:`model.params.POINT_PARAMS`).
    costs : mapping of str to ndarray
        Cost draws, as :func:`model.costs.sample_costs` returns them.
    cost : str or sequence of str
        The cost to move, or several moved by the same factor.
    lowest : float or sequence of float
        The low end of each cost's documented range, in the model's units.
    statistic : {"p50", "confidence"}
        What must meet the target: the median slowdown, or the probability
        of meeting it, which must reach ``probability``.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
    names = (cost,) if isinstance(cost, str) else tuple(cost)
    lows = (lowest,) * len(names) if np.ndim(lowest) == 0 else tuple(lowest)
    medians = [float(np.median(costs[n])) for n in names]
    label, current, low = "+".join(names), medians[0], float(lows[0])
    args = (point, costs, names)
    goal = (statistic, target, probability)
    if _shortfall(*args, 1.0, *goal) <= 0:
        return Budget(label, statistic, current, low, current, True, 1.0)
    if min(medians) <= 0:
        return Budget(label, statistic, current, low, None, False)
    # the first cost to reach the bottom of its range bounds the factor
    low_factor = max(lo / m for lo, m in zip(lows, medians, strict=True))
    if _shortfall(*args, low_factor, *goal) > 0:
        return Budget(label, statistic, current, low, None, False)
    factor = brentq(lambda f: _shortfall(*args, f, *goal), low_factor, 1.0, xtol=1e-6, rtol=1e-9)
    # brentq brackets the crossing; step to the side that meets the goal
    while _shortfall(*args, factor, *goal) > 0:
        factor *= 1 - 1e-6
    return Budget(label, statistic, current, low, current * factor, False, factor)
