"""The verdict vocabulary: the 1 % target, the 5 % threshold, and where a roadmap crosses them.

A leaf module (it imports nothing from :mod:`pipeline`): the projection, the
report's aggregation and figures and ``asi-answer`` all speak it. Verdicts
compare a slowdown's median with the ASI team's target and threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from asi_slowdown.model.costs import ASI_COSTS
from asi_slowdown.model.evaluate import (  # defined once, with their source
    TARGET,
    THRESHOLD,
    overhead_split,
)
from asi_slowdown.model.mechanism import EXIT_SOURCES

VERDICTS = ("meets 1 % target", "under 5 %", "over 5 %")
"""Every verdict, best first."""


def verdict(slowdown: float) -> str:
    """Where a slowdown stands against the 1 % target and the 5 % threshold."""
    if slowdown < TARGET:
        return VERDICTS[0]
    if slowdown < THRESHOLD:
        return VERDICTS[1]
    return VERDICTS[2]


BASELINE_COLUMNS = {
    "mitigations_off": "slowdown",
    "kernel_default": "slowdown_vs_default",
    "ibpb_vmexit": "slowdown_vs_ibpb_vmexit",
}
"""``baseline.name`` -> the prefix of the slowdown columns that baseline's verdicts read."""

BASELINE_TEXT = {
    "mitigations_off": "mitigations=off",
    "kernel_default": "the kernel's default",
    "ibpb_vmexit": "the kernel's default plus IBPB on every VM exit and an L1D flush on every "
    "VM entry",
}
"""``baseline.name`` -> what the verdicts are against, in words."""


def annotate(table: pd.DataFrame, baseline: str = "mitigations_off") -> pd.DataFrame:
    """Add the dominant cost (and its share), the dominant exit source and the verdict per row.

    ``table`` has the model's ``extra_ns_<cost>``, ``exits_<source>`` and
    ``slowdown_p50`` columns (``slowdown_vs_default_p50`` with ``baseline=kernel_default``,
    which the verdict then reads); ``extra_ns_per_op`` [ns/op] is their sum, and
    ``overhead_ns_<part>`` where it goes (:func:`model.evaluate.overhead_split`).
    """
    extra = table[[f"extra_ns_{c}" for c in ASI_COSTS]].to_numpy()
    total = extra.sum(axis=1)
    table["extra_ns_per_op"] = total
    # names picked from an object array ("none" last): each row refers to one of a few
    # strings, where a fixed-width unicode array per column would be the size of the rows
    costs = np.array([*ASI_COSTS, "none"], dtype=object)
    table["dominant_cost"] = costs[np.where(total > 0, extra.argmax(axis=1), len(ASI_COSTS))]
    table["dominant_cost_share"] = np.where(
        total > 0, extra.max(axis=1) / np.where(total > 0, total, 1), 0.0
    )
    del extra
    exits = table[[f"exits_{s}" for s in EXIT_SOURCES]].to_numpy()
    sources = np.array([*EXIT_SOURCES, "none"], dtype=object)
    table["dominant_exit_source"] = sources[
        np.where(exits.sum(axis=1) > 0, exits.argmax(axis=1), len(EXIT_SOURCES))
    ]
    del exits
    table["verdict"] = [verdict(s) for s in table[f"{BASELINE_COLUMNS[baseline]}_p50"]]
    # the extra time columns alone: a text column as numpy is a Python string per row
    extras = {c: table[c].to_numpy() for c in table.columns if c.startswith("extra_ns_")}
    for part, ns in overhead_split(extras).items():
        table[f"overhead_ns_{part}"] = ns
    return table


def crossing(slowdown_p50: Sequence[float], stages: Sequence[str], level: float) -> str | None:
    """The stage from which the slowdown p50 stays below ``level``; None if it never does.

    "Stays": a stage that dips below and a later one that rises above again
    (a fix that costs more than it saves for this scenario) does not count.
    """
    above = np.flatnonzero(np.asarray(slowdown_p50, dtype=np.float64) >= level)
    first = 0 if len(above) == 0 else int(above[-1]) + 1
    return stages[first] if first < len(stages) else None


def crossing_text(stage: str | None, stages: Sequence[str], what: str) -> str:
    """``what`` crossed at ``stage``, in words."""
    if stage is None:
        return f"{what}: not reached by {stages[-1]}"
    if stage == stages[0]:
        return f"{what}: met from {stage} (the first stage) on"
    return f"{what}: met from {stage} on"


def crossing_line(table: pd.DataFrame) -> str:
    """One line: where a single scenario's projection crosses the target and the threshold."""
    stages = list(table["stage"])
    p50 = table["slowdown_p50"].to_numpy()
    return "; ".join(
        [
            crossing_text(crossing(p50, stages, THRESHOLD), stages, "under 5 %"),
            crossing_text(crossing(p50, stages, TARGET), stages, "1 % target"),
        ]
    )


def beats_default_from(table: pd.DataFrame, column: str = "slowdown_vs_default_p50") -> str | None:
    """The first stage from which ASI (keeping what it does not make redundant) is faster
    than the kernel's default mitigations at the median and stays so, else ``None``;
    ``column="slowdown_vs_ibpb_vmexit_p50"`` asks the same of the blanket VM protection."""
    faster = list(table[column] < 0)
    for i in range(len(faster)):
        if all(faster[i:]):
            return str(table["stage"].iloc[i])
    return None
