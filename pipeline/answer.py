"""``asi-answer``: how much slowdown remains, stage by stage along the roadmap.

    asi-answer workload=fio_randread_tmpfs cpu=sapphire_rapids cpus=1
    asi-answer answer.format=json

Every stage of ``roadmap`` is evaluated for the same configuration with the
same cost draws (common random numbers), so the differences between stages
are paired, not noise.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

from model.costs import ASI_COSTS
from model.evaluate import evaluate
from model.mechanism import EXIT_SOURCES

from .compose import compose_config, costs_for, point_from_config
from .errors import ConfigError, exits_cleanly

TARGET = 0.01
"""The ASI team's target: degradations below 1 % (DOMAIN.md section 3)."""
THRESHOLD = 0.05
"""At 5 % "we don't even bother asking" (DOMAIN.md section 3)."""


def verdict(slowdown: float) -> str:
    """Where a slowdown stands against the 1 % target and the 5 % threshold."""
    if slowdown < TARGET:
        return "meets 1 % target"
    if slowdown < THRESHOLD:
        return "under 5 %"
    return "over 5 %"


def _without_group(overrides: Sequence[str], group: str) -> list[str]:
    """Drop ``group=option`` overrides (keep ``group.key=value`` ones)."""
    return [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != group]


def evaluate_stages(overrides: Sequence[str] = ()) -> tuple[pd.DataFrame, object]:
    """One row per roadmap stage, in roadmap order, for the configuration ``overrides`` gives.

    Returns the table and the base composed config.
    """
    cfg = compose_config(overrides)
    stages = list(cfg.roadmap.stages)
    if not stages:
        raise ConfigError("roadmap.stages must list at least one mitigations preset")
    base = _without_group(overrides, "mitigations")
    points = [
        point_from_config(compose_config([*base, f"mitigations={stage}"])) for stage in stages
    ]
    columns = {name: np.array([p[name] for p in points]) for name in points[0]}
    result = evaluate(columns, costs_for(cfg))
    table = pd.DataFrame(result)
    table.insert(0, "stage", stages)
    extra = table[[f"extra_ns_{c}" for c in ASI_COSTS]].to_numpy()
    total_extra = extra.sum(axis=1)
    table["dominant_cost"] = np.where(
        total_extra > 0, [ASI_COSTS_LIST[i] for i in extra.argmax(axis=1)], "none"
    )
    table["dominant_cost_share"] = np.where(
        total_extra > 0, extra.max(axis=1) / np.where(total_extra > 0, total_extra, 1), 0.0
    )
    exits = table[[f"exits_{s}" for s in EXIT_SOURCES]].to_numpy()
    table["dominant_exit_source"] = np.where(
        exits.sum(axis=1) > 0, [EXIT_SOURCES[i] for i in exits.argmax(axis=1)], "none"
    )
    table["verdict"] = [verdict(s) for s in table["slowdown_p50"]]
    return table, cfg


ASI_COSTS_LIST = list(ASI_COSTS)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def format_table(table: pd.DataFrame, cfg) -> str:
    """A readable, fixed-width table plus the one-sentence answer."""
    header = (
        f"ASI slowdown along the roadmap: workload={cfg.workload.name} cpu={cfg.cpu.name} "
        f"cpus={cfg.cpus} ephmap.slots={cfg.ephmap.slots} samples={cfg.samples} seed={cfg.seed}"
    )
    rows = [
        (
            "stage",
            "tput loss % p50 [p05-p95]",
            "slowdown % p50 [p05-p95]",
            "exits/op",
            "top exit source",
            "top remaining cost",
            "verdict",
        )
    ]
    for r in table.itertuples():
        rows.append(
            (
                r.stage,
                f"{_pct(r.throughput_loss_p50)} [{_pct(r.throughput_loss_p05)}-{_pct(r.throughput_loss_p95)}]",
                f"{_pct(r.slowdown_p50)} [{_pct(r.slowdown_p05)}-{_pct(r.slowdown_p95)}]",
                f"{r.exits_per_op:.3g}",
                r.dominant_exit_source,
                f"{r.dominant_cost} ({100 * r.dominant_cost_share:.0f} %)"
                if r.dominant_cost != "none"
                else "none",
                r.verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    last = table.iloc[-1]
    answer = (
        f"Long term (after {last.stage}): slowdown {_pct(last.slowdown_p50)} % "
        f"[{_pct(last.slowdown_p05)}-{_pct(last.slowdown_p95)} %], throughput loss "
        f"{_pct(last.throughput_loss_p50)} %: {last.verdict}; what remains is mostly {last.dominant_cost}."
    )
    return "\n".join([header, "", *lines, "", answer])


JSON_KEYS = (
    "stage",
    "throughput_loss_p05",
    "throughput_loss_p50",
    "throughput_loss_p95",
    "throughput_loss_mean",
    "slowdown_p05",
    "slowdown_p50",
    "slowdown_p95",
    "slowdown_mean",
    "exits_per_op",
    *(f"exits_{s}" for s in EXIT_SOURCES),
    *(f"extra_ns_{c}" for c in ASI_COSTS),
    "t_native_mean",
    "t_asi_mean",
    "dominant_exit_source",
    "dominant_cost",
    "verdict",
)


def format_json(table: pd.DataFrame) -> str:
    """A JSON list, one object per stage in roadmap order."""
    records = table[list(JSON_KEYS)].to_dict(orient="records")
    return json.dumps(
        [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records],
        indent=2,
    )


def run(argv: Sequence[str]) -> str:
    """The text ``asi-answer`` prints for command-line overrides ``argv``."""
    table, cfg = evaluate_stages(argv)
    return format_json(table) if cfg.answer.format == "json" else format_table(table, cfg)


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    print(run(argv))
    return 0
