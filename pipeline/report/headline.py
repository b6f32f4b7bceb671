"""The report's answer, first: after the whole roadmap, per workload and CPU profile.

One sentence and one compact table that fit the first screen (1280 x 800): the
long-term slowdown p50 [p05-p95] at each workload's focus point against
``mitigations=off``, P(<1 %), the comparison with today's default mitigations,
for guest workloads the comparison with IBPB on every VM exit (the blanket
protection of a KVM host without ASI), and what remains (the cost that adds
the most). Rows are workloads, columns CPU profiles, so the default grid's 8
workloads x 3 CPU profiles stay one screen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from asi_slowdown.model.units import format_size
from asi_slowdown.pipeline.projection.verdicts import TARGET, THRESHOLD
from asi_slowdown.pipeline.report.collection import Report

VS_IBPB = "slowdown_vs_ibpb_vmexit"
"""The prefix of the slowdown against IBPB on every VM exit (model columns)."""


def pct(x: float) -> str:
    """A fraction as a short percentage (``0.0213`` -> ``2.1``)."""
    if x is None or not np.isfinite(x):
        return "n/a"
    value = 100 * x
    return (
        f"{value:.2g}"
        if abs(value) < 1
        else f"{value:.1f}"
        if abs(value) < 100
        else f"{value:,.0f}"
    )


def signed(x: float) -> str:
    """:func:`pct` with its sign (``-0.012`` -> ``-1.2``, ``0.003`` -> ``+0.3``)."""
    text = pct(x)
    return text if text == "n/a" or text.startswith("-") else f"+{text}"


def is_guest(row: pd.Series) -> bool:
    """A KVM guest's workload: its host sees VM exits (the model's ``vm_exits_per_op``)."""
    value = row.get("vm_exits_per_op", 0.0)
    return bool(value is not None and np.isfinite(value) and value > 0)


def tone(p50: float) -> str:
    """The verdict's colour class of a median slowdown."""
    return "meets" if p50 < TARGET else "under" if p50 < THRESHOLD else "over"


def cell(row: pd.Series | None, final: str) -> dict:
    """One workload on one CPU profile after the whole roadmap, in words and numbers."""
    if row is None:
        return {"missing": True, "text": f"{final} not stored", "tone": "missing"}
    guest = is_guest(row)
    entry = {
        "missing": False,
        "tone": tone(row["slowdown_p50"]),
        "p50": f"{pct(row['slowdown_p50'])} %",
        "range": f"{pct(row['slowdown_p05'])}–{pct(row['slowdown_p95'])}",
        "p_meets": f"{row['p_meets_target']:.2f}",
        "versus": f"{signed(row['slowdown_vs_default_p50'])} %",
        "faster": bool(row["slowdown_vs_default_p50"] < 0),
        "p_faster": f"{row['p_beats_default']:.2f}",
        "guest": guest,
        "remains": f"{row['dominant_cost']} {100 * row['dominant_cost_share']:.0f} %"
        if row["dominant_cost"] != "none"
        else "nothing",
    }
    if guest and f"{VS_IBPB}_p50" in row:
        entry["vm"] = f"{signed(row[f'{VS_IBPB}_p50'])} %"
        entry["vm_cheaper"] = bool(row[f"{VS_IBPB}_p50"] < 0)
        entry["p_vm"] = f"{row['p_beats_ibpb_vmexit']:.2f}"
    return entry


def final_rows(report: Report) -> pd.DataFrame:
    """The focus projection at the last roadmap stage: one row per workload and CPU profile."""
    focus = report.focus
    if focus.empty:
        return focus
    return focus[focus["stage"] == report.stages[-1]]


def sentence(final: pd.DataFrame, pairs: int, stage: str) -> str:
    """The answer in one sentence: how many meet 1 %, the worst, the guests against IBPB."""
    if final.empty:
        return (
            f"No workload has its last roadmap stage ({stage}) stored at its focus point: "
            "no long-term answer yet."
        )
    meets = int((final["slowdown_p50"] < TARGET).sum())
    under = int((final["slowdown_p50"] < THRESHOLD).sum())
    worst = final.loc[final["slowdown_p50"].idxmax()]
    faster = int((final["slowdown_vs_default_p50"] < 0).sum())
    text = (
        f"After the whole roadmap ({stage}), {meets} of {len(final)} workload × CPU profile "
        f"focus points meet the 1 % target at the median and {under} are under 5 %; the worst is "
        f"{worst['workload']} on {worst['cpu']} at {pct(worst['slowdown_p50'])} %. "
        f"ASI is faster than today's default mitigations in {faster} of {len(final)}."
    )
    guests = final[[is_guest(r) for _, r in final.iterrows()]]
    if not guests.empty and f"{VS_IBPB}_p50" in guests:
        cheaper = int((guests[f"{VS_IBPB}_p50"] < 0).sum())
        text += (
            f" For guest workloads, ASI is cheaper than IBPB on every VM exit in {cheaper} of "
            f"{len(guests)}."
        )
    if len(final) < pairs:
        text += f" Not stored at {stage} at the focus point: {pairs - len(final)} of {pairs}."
    return text


def headline(report: Report) -> dict:
    """The headline's context: a sentence, CPU profiles (columns), one row per workload."""
    final = report.stages[-1]
    rows_at = final_rows(report)
    focus = report.focus
    pairs = focus.groupby(["workload", "cpu"]).ngroups if not focus.empty else 0
    cpus = sorted(set(focus["cpu"])) if not focus.empty else []
    by_key = {(r["workload"], r["cpu"]): r for _, r in rows_at.iterrows()}
    rows = []
    for workload in sorted(set(focus["workload"])) if not focus.empty else []:
        cells = [cell(by_key.get((workload, cpu)), final) for cpu in cpus]
        first = focus[focus["workload"] == workload].iloc[0]
        rows.append(
            {
                "workload": workload,
                "guest": any(c.get("guest") for c in cells),
                "focus": f"{int(first['cpus'])} CPU{'s' if int(first['cpus']) != 1 else ''} · "
                f"{format_size(int(first['file_size']))} · {int(first['ephmap_slots'])} slots",
                "cells": cells,
            }
        )
    return {
        "sentence": sentence(rows_at, pairs, final),
        "cpus": cpus,
        "rows": rows,
        "final": final,
    }


__all__ = ["headline", "pct", "signed"]
