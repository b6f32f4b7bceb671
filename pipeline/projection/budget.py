"""What it would take: the median each ASI cost would need for the last stage to meet 1 %.

:func:`budgets` solves it for ``asi-answer answer.budget=true`` and the report's focus
points (:func:`model.budget.cost_budget`); :func:`format_budget` prints it.
"""

from __future__ import annotations

import pandas as pd

from asi_slowdown.model.budget import cost_budget
from asi_slowdown.model.costs import ASI_COSTS
from asi_slowdown.pipeline.configuration.profile import model_profile
from asi_slowdown.pipeline.projection.text import fixed_width, pct


def budgets(table: pd.DataFrame, cfg, points: list[dict], costs=None) -> pd.DataFrame:
    """What the ASI costs would have to cost for the last stage to meet the 1 % target.

    For every cost that adds time at the last stage, and for the two that add
    the most moved together, the median it would need (its draws scaled, their
    spread kept) for the slowdown p50, and for P(meets target) >= 0.9, to reach
    1 % (:func:`model.budget.cost_budget`), within the documented ranges.
    Rows sorted by what the cost adds now; the pair last. ``costs``: the config's draws,
    if drawn already.
    """
    last = points[-1]
    model = model_profile(cfg)
    costs = model.costs() if costs is None else costs
    specs = model.cost_specs
    row = table.iloc[-1]

    def lowest(name: str) -> float:
        spec = specs[name]
        low = spec.value if spec.dist == "fixed" else spec.low
        return low / cfg.cpu.ghz if spec.unit == "cycles" else low

    adding = [
        c
        for c in sorted(ASI_COSTS, key=lambda c: -row[f"extra_ns_{c}"])
        if row[f"extra_ns_{c}"] > 0
    ]
    groups = [(c,) for c in adding] + ([tuple(adding[:2])] if len(adding) >= 2 else [])
    rows = []
    for names in groups:
        lows = [lowest(n) for n in names]
        p50 = cost_budget(last, costs, names, lowest=lows)
        confident = cost_budget(last, costs, names, lowest=lows, statistic="confidence")
        rows.append(
            {
                "cost": p50.cost,
                "adds_ns_per_op": float(sum(row[f"extra_ns_{n}"] for n in names)),
                "median_ns": p50.current,
                "lowest_ns": lows[0],
                "p50_factor": p50.factor,
                "confident_factor": confident.factor,
            }
        )
    return pd.DataFrame(rows)


def budget_needs(factor: float | None, median: float, single: bool) -> str:
    """What a budget row asks of a cost (or of a pair, ``single=False``), in words."""
    if factor is None or factor != factor:  # None, or NaN once in a DataFrame
        return "not reachable in range"
    if factor >= 1.0:
        return "already met"
    if single:
        return f"<= {factor * median:,.3g} ns ({100 * factor:.0f} %)"
    return f"each at <= {100 * factor:.0f} %"


def format_budget(frame: pd.DataFrame, table: pd.DataFrame, cfg) -> str:
    """The budget as a table: per cost, the median it would need (and as a share of today's)."""
    last = table.iloc[-1]
    head = (
        f"What it would take for {cfg.workload.name} on {cfg.cpu.name} to meet the 1 % target "
        f"after {last.stage} (slowdown p50 now {pct(last.slowdown_p50)} %): the median each "
        f"cost would need, its spread kept, within its documented range:"
    )
    if frame.empty:
        return head + "\n\nnothing: ASI adds no time at this stage."
    rows = [("cost", "adds ns/op", "median ns", "range from ns", "p50 at 1 %", "P(meets) >= 0.9")]
    for r in frame.itertuples():
        single = "+" not in r.cost
        rows.append(
            (
                r.cost,
                f"{r.adds_ns_per_op:,.3g}",
                f"{r.median_ns:,.3g}" if single else "",
                f"{r.lowest_ns:,.3g}" if single else "",
                budget_needs(r.p50_factor, r.median_ns, single),
                budget_needs(r.confident_factor, r.median_ns, single),
            )
        )
    return "\n".join([head, "", *fixed_width(rows)])
