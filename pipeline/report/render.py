"""Render a :class:`~.collection.Report`: figures, CSV tables, ``index.html``.

The page reads answer first: the headline (:func:`headline`), what moved since
the previous night, the figures, then the stage-by-stage table and the budgets.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from asi_slowdown.model import MODEL_VERSION
from asi_slowdown.model.evaluate import QUANTILES
from asi_slowdown.pipeline.projection import history as hist
from asi_slowdown.pipeline.projection.budget import budget_needs
from asi_slowdown.pipeline.projection.projection import (
    VS_DEFAULT_QUANTILES,
    at,
)
from asi_slowdown.pipeline.projection.sensitivity import noise_level
from asi_slowdown.pipeline.projection.verdicts import (
    TARGET,
    THRESHOLD,
    beats_default_from,
    crossing,
    crossing_text,
)
from asi_slowdown.pipeline.report import figures as figs
from asi_slowdown.pipeline.report.collection import Report, replaced_text
from asi_slowdown.pipeline.report.headline import final_rows, headline, is_guest, pct, signed
from asi_slowdown.pipeline.report.settings import claim_folder
from asi_slowdown.pipeline.report.summary import markdown
from asi_slowdown.pipeline.store.parts import git_revision
from asi_slowdown.pipeline.validate.run import error_text, value_text
from asi_slowdown.pipeline.validate.run import figure as validation_plot

# --------------------------------------------------------------------------- rendering
VS_DEFAULT: dict[str, str] = dict(zip(QUANTILES, VS_DEFAULT_QUANTILES, strict=True))
"""Quantile name (``p05``...) -> the column of the slowdown against the kernel's default."""
VS_DEFAULT_P05, VS_DEFAULT_P50, VS_DEFAULT_P95 = (VS_DEFAULT[q] for q in ("p05", "p50", "p95"))


TEMPLATE = "report.html.j2"

SHOWN_MOVED = 10
"""Rows of what moved since the previous night shown under the headline; the rest fold away."""


def guest_rows(report: Report) -> pd.DataFrame:
    """The guest workloads' focus rows at the last stage, every CPU profile."""
    final = final_rows(report)
    return final[[is_guest(r) for _, r in final.iterrows()]] if not final.empty else final


def draw(report: Report) -> list:
    """Every figure of the report, saved under ``figures/``."""
    folder = report.settings.folder / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    final, cpu = report.stages[-1], report.focus_cpu
    proj, focus = report.projection, report.focus
    mine = proj[proj["cpu"] == cpu]
    focus_here = focus[focus["cpu"] == cpu]
    curve_parts, cell_parts = [], []
    for workload, rows in focus_here.groupby("workload"):
        first = rows.iloc[0]
        curve_parts.append(
            at(
                mine,
                {
                    "workload": workload,
                    "file_size": first["file_size"],
                    "ephmap_slots": first["ephmap_slots"],
                },
            )
        )
        cell_parts.append(at(mine, {"workload": workload, "cpus": first["cpus"], "stage": final}))
    curves = pd.concat(curve_parts, ignore_index=True) if curve_parts else mine.head(0)
    cells = pd.concat(cell_parts, ignore_index=True) if cell_parts else mine.head(0)
    nights = report.history_nights
    trend_rows = (
        nights[(nights["cpu"] == cpu) & (nights["stage"] == final)] if not nights.empty else nights
    )
    sens = report.sensitivity
    return [
        *validation_figure(report, folder),
        figs.loss_vs_cpus(curves, report.stages, cpu, folder),
        figs.guest_baselines(guest_rows(report), final, folder),
        figs.size_slot_heatmap(cells, final, cpu, folder),
        figs.waterfall(focus_here[focus_here["stage"] == final], final, cpu, folder),
        figs.tornado(sens[sens["cpu"] == cpu] if not sens.empty else sens, final, cpu, folder),
        figs.trend(trend_rows, final, cpu, folder),
        figs.confidence(
            focus,
            report.stages,
            report.conditions,
            folder,
            int(report.sensitivity["samples"].max()) if not report.sensitivity.empty else None,
        ),
    ]


def validation_rows(validation: dict | None) -> dict | None:
    """The validation section's table, formatted: fractions in %, exit counts as numbers."""
    if not validation:
        return None
    score = validation["score"]

    def value(c, x):
        return value_text(c["quantity"], x, "–")

    def error(c, x):
        return error_text(c["quantity"], x, "–")

    return {
        "summary": score.get("summary", ""),
        "source": validation["source"],
        "flags": validation["flags"],
        "rows": [
            {
                "name": c["name"],
                "quantity": c["quantity"],
                "role": c["role"],
                "published": value(c, c["published"]),
                "band": f"{value(c, c['p50'])} [{value(c, c['p05'])}–{value(c, c['p95'])}]",
                "error": error(c, c["error"]),
                "inside": c["inside_band"],
                "loo": value(c, c.get("loo_p50")),
                "loo_error": error(c, c.get("loo_error")),
                "source": c["source"],
            }
            for c in score["cases_scored"]
        ],
    }


def validation_figure(report: Report, folder: Path) -> list:
    """The model against the public record (predicted vs published), when the report has it."""
    if not report.validation:
        return []
    cases = report.validation["score"]["cases_scored"]
    path = validation_plot(cases, folder / "validation.png")
    inside = sum(c["inside_band"] for c in cases)
    title = "The model against the public record"
    caption = (
        f"Each published measurement against the model's p50 and the 90 % band of a "
        f"measurement (the cost samples, the uncertain inputs of the run as it was run, and "
        f"the published run-to-run spread), log axes; the dashed line is predicted = "
        f"published. {inside} of {len(cases)} inside their band; a cross marks one outside. "
        f"Source: {report.validation['source']}. From {figs.points(len(cases), 'point')} of "
        "the public record."
    )
    return [figs.Figure(f"figures/{path.name}", title, caption, len(cases))]


def projection_matrix(report: Report) -> list[dict]:
    """The stage-by-stage table: one row per (workload, cpu) at its focus, one cell per stage."""
    rows = []
    final = report.stages[-1]
    for (workload, cpu), group in report.focus.groupby(["workload", "cpu"], sort=True):
        by_stage = group.set_index("stage")
        first = group.iloc[0]
        p50 = [
            by_stage.loc[s, "slowdown_p50"] if s in by_stage.index else np.nan
            for s in report.stages
        ]
        present = [s for s in report.stages if s in by_stage.index]
        values = [by_stage.loc[s, "slowdown_p50"] for s in present]
        cells = []
        for stage, value in zip(report.stages, p50, strict=True):
            if not np.isfinite(value):
                cells.append({"text": "missing", "tone": "missing", "title": "not in the store"})
                continue
            r = by_stage.loc[stage]
            versus = r[VS_DEFAULT_P50]
            cells.append(
                {
                    "text": f"{pct(value)} %",
                    "range": f"{pct(r['slowdown_p05'])}–{pct(r['slowdown_p95'])}",
                    "confidence": f"P<1 % {r['p_meets_target']:.2f} · P<5 % "
                    f"{r['p_under_threshold']:.2f}",
                    "versus": f"{signed(versus)} %",
                    "faster": bool(versus < 0),
                    "tone": "meets" if value < TARGET else "under" if value < THRESHOLD else "over",
                    "title": f"throughput loss {pct(r['throughput_loss_p50'])} %; top exit source "
                    f"{r['dominant_exit_source']}; top cost {r['dominant_cost']} "
                    f"({100 * r['dominant_cost_share']:.0f} %); vs the kernel's default "
                    f"{signed(versus)} % [{signed(r[VS_DEFAULT_P05])} to "
                    f"{signed(r[VS_DEFAULT_P95])} %], P(faster than the default) "
                    f"{r['p_beats_default']:.2f}",
                }
            )
        last = by_stage.loc[final] if final in by_stage.index else None
        faster = beats_default_from(group) if len(group) else None
        rows.append(
            {
                "workload": workload,
                "cpu": cpu,
                "focus": hist.focus_text(first),
                "replaced": ", ".join(
                    r.values()
                    for r in report.focus_replaced
                    if (r.workload, r.cpu) == (workload, cpu)
                ),
                "cells": cells,
                "threshold": crossing_text(
                    crossing(values, present, THRESHOLD), present, "under 5 %"
                )
                if present
                else "n/a",
                "target": crossing_text(crossing(values, present, TARGET), present, "1 % target")
                if present
                else "n/a",
                "verdict": last["verdict"] if last is not None else "incomplete",
                "p_meets": f"{last['p_meets_target']:.2f}" if last is not None else "n/a",
                "p_under": f"{last['p_under_threshold']:.2f}" if last is not None else "n/a",
                "versus_final": f"{signed(last[VS_DEFAULT_P50])} %" if last is not None else "n/a",
                "beats_default": f"faster than the default from {faster} on"
                if faster
                else "not faster than the default at any stage stored",
                "dominant": f"{last['dominant_cost']} ({100 * last['dominant_cost_share']:.0f} %)"
                if last is not None
                else "",
            }
        )
    return rows


def write_tables(report: Report) -> dict[str, str]:
    """The report's tables as CSV under ``data/``; returns name -> relative path."""
    folder = report.settings.folder / "data"
    folder.mkdir(parents=True, exist_ok=True)
    tables = {
        "projection_focus": report.focus,
        "scenarios": report.scenarios,
        "stage_summary": report.aggregates.stage_summary,
        "coverage": report.coverage,
        "sensitivity": report.sensitivity,
        "budget": report.budget,
    }
    if report.comparison is not None:
        tables["nightly_comparison"] = report.comparison
    written = {}
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv", index=False)
        written[name] = f"data/{name}.csv"
    return written


def render(report: Report) -> Path:
    """Write the report folder; returns the path of ``index.html``."""
    folder = report.settings.folder
    claim_folder(report.settings)
    report.figures = draw(report)
    tables = write_tables(report)
    context = page_context(report, tables)
    index = folder / "index.html"
    index.write_text(page(context), encoding="utf-8")
    (folder / "summary.md").write_text(markdown(report, context), encoding="utf-8")
    return index


def page(context: dict) -> str:
    """``index.html``: the template (:data:`TEMPLATE`) filled with :func:`page_context`."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("asi_slowdown.pipeline.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(TEMPLATE).render(**context)


def page_context(report: Report, tables: dict[str, str]) -> dict:
    """What the template shows."""
    s = report.settings
    stored = int(report.coverage["stored_points"].sum())
    final = report.stages[-1]
    sens = report.sensitivity
    top_costs = []
    if not sens.empty:
        noise = noise_level(int(sens["samples"].max()))
        for (workload, cpu), rows in sens.groupby(["workload", "cpu"], sort=True):
            groups = rows.drop_duplicates("group")
            groups = groups[groups["group_share"] > noise].head(3)
            top_costs.append(
                {
                    "workload": workload,
                    "cpu": cpu,
                    "costs": ", ".join(
                        f"{g.group} ({100 * g.group_share:.0f} %, ρ "
                        + "/".join(f"{r:+.2f}" for r in rows[rows["group"] == g.group]["spearman"])
                        + ")"
                        for g in groups.itertuples()
                    )
                    or "none above noise",
                    "check": "matches the store"
                    if (rows["matches"] == 1.0).all()
                    else "differs from the store (mean over several stored points, or stale store)",
                }
            )
    comparison = None
    if report.comparison is not None:
        c = report.comparison
        flagged = c[c["moved"]]
        unmatched = c[c["status"] == hist.NO_PREVIOUS]
        comparison = {
            "previous": report.previous_night,
            "rows": len(c),
            "compared": len(c) - len(unmatched),
            "outcome": hist.outcome(c, s.threshold),
            "unmatched": [
                {
                    "workload": r.workload,
                    "cpu": r.cpu,
                    "stage": r.stage,
                    "focus": hist.focus_text(r._asdict()),
                    "now": pct(r.slowdown_p50),
                    "verdict": r.verdict,
                    "before": f"at {r.focus_before}: {pct(r.focus_before_p50)} % "
                    f"({r.focus_before_verdict})"
                    if isinstance(r.focus_before, str)
                    else f"no {r.workload} / {r.cpu} / {r.stage} row",
                }
                for r in unmatched.itertuples()
            ],
            "flagged": [
                {
                    "workload": r.workload,
                    "cpu": r.cpu,
                    "stage": r.stage,
                    "before": pct(r.previous_p50),
                    "now": pct(r.slowdown_p50),
                    "delta": f"{100 * r.delta_p50:+.2f}" if np.isfinite(r.delta_p50) else "n/a",
                    "p_meets_before": _probability(r.previous_p_meets_target),
                    "p_meets_now": _probability(r.p_meets_target),
                    "versus_before": signed(getattr(r, f"previous_{VS_DEFAULT_P50}")),
                    "versus_now": signed(getattr(r, VS_DEFAULT_P50)),
                    "status": r.status,
                }
                for r in flagged.itertuples()
            ],
        }
    budget_rows = budget_context(report)
    scen = report.scenarios
    grid_wide = []
    for (workload, cpu), rows in scen.groupby(["workload", "cpu"], sort=True):
        grid_wide.append(
            {
                "workload": workload,
                "cpu": cpu,
                "scenarios": len(rows),
                "complete": int(rows["complete"].sum()),
                "under": f"{100 * (rows['final_slowdown_p50'] < THRESHOLD).mean():.0f} %",
                "meets": f"{100 * (rows['final_slowdown_p50'] < TARGET).mean():.0f} %",
                "worst": f"{pct(rows['final_slowdown_p50'].max())} %",
                "median": f"{pct(rows['final_slowdown_p50'].median())} %",
                "p_meets": f"{rows['final_p_meets_target'].mean():.2f}",
                "faster": f"{100 * (rows[f'final_{VS_DEFAULT_P50}'] < 0).mean():.0f} %",
            }
        )
    cover = report.coverage
    return {
        "title": "ASI slowdown: long-term projection",
        "headline": headline(report),
        "hint": report.hint,
        "validation": validation_rows(report.validation),
        "generated_at": report.generated_at,
        "mode": s.mode,
        "night": s.night,
        "experiment": s.experiment or "whole store",
        "store": report.aggregates.scan.store,
        "scheduler": report.scheduler,
        "git": git_revision()[:16],
        "model_version": MODEL_VERSION,
        "stages": report.stages,
        "final": final,
        "focus_cpu": report.focus_cpu,
        "matrix": projection_matrix(report),
        "stored": stored,
        "grid_points": report.grid_points,
        "coverage_pct": f"{100 * stored / report.grid_points:.1f}" if report.grid_points else None,
        "missing": report.missing,
        "missing_examples": report.missing_examples.to_dict("records"),
        "kept_out": report.kept_out.text(),
        "focus_replaced": replaced_text(report.focus_replaced),
        "unreadable": report.aggregates.scan.unreadable,
        "duplicates": report.aggregates.scan.duplicates_dropped,
        "coverage_rows": [
            {
                "workload": r.workload,
                "cpu": r.cpu,
                "stage": r.mitigations,
                "stored": r.stored_points,
                "grid": "" if not np.isfinite(r.grid_points) else int(r.grid_points),
                "pct": "" if not np.isfinite(r.coverage) else f"{100 * r.coverage:.0f} %",
            }
            for r in cover.itertuples()
            if not np.isfinite(r.coverage) or r.coverage < 1
        ],
        "grid_wide": grid_wide,
        "top_costs": top_costs,
        "comparison": comparison,
        "comparison_note": report.comparison_note,
        "history_warnings": report.history_warnings,
        "history_error": report.history_error,
        "history_replaced": report.history_replaced,
        "shown_moved": SHOWN_MOVED,
        "threshold_points": f"{100 * s.threshold:g}",
        "probability_move": f"{hist.PROBABILITY_MOVE:g}",
        "budget": budget_rows,
        "budget_missing": sorted(
            {(r.workload, r.cpu) for r in report.focus.itertuples()}
            - {(e["workload"], e["cpu"]) for e in budget_rows}
        ),
        "conditions": [{"cpu": c, "text": t} for c, t in sorted(report.conditions.items())],
        "baseline": report.baseline,
        "figures": report.figures,
        "tables": tables,
        "timings": {k: f"{v:.1f}" for k, v in report.timings.items()},
        "pct": pct,
    }


def _probability(x: float) -> str:
    return f"{x:.2f}" if x is not None and np.isfinite(x) else "n/a"


def _ns(x: float) -> str:
    return f"{x:,.3g}"


def budget_context(report: Report) -> list[dict]:
    """The budget table, one entry per focus (workload, CPU profile), with a sentence each."""
    entries = []
    if report.budget.empty:
        return entries
    for (workload, cpu), rows in report.budget.groupby(["workload", "cpu"], sort=True):
        first = rows.iloc[0]
        costs = []
        for r in rows.itertuples():
            single = "+" not in r.cost
            costs.append(
                {
                    "cost": r.cost,
                    "adds": _ns(r.adds_ns_per_op),
                    "median": _ns(r.median_ns) if single else "",
                    "lowest": _ns(r.lowest_ns) if single else "",
                    "p50": budget_needs(r.p50_factor, r.median_ns, single),
                    "confident": budget_needs(r.confident_factor, r.median_ns, single),
                }
            )
        reachable = [
            r
            for r in rows.itertuples()
            if "+" not in r.cost and r.p50_factor is not None and np.isfinite(r.p50_factor)
        ]
        if first["slowdown_p50"] < TARGET:
            sentence = f"{workload} on {cpu} already meets the 1 % target at the median."
        elif reachable:
            best = reachable[0]
            sentence = (
                f"{workload} on {cpu} reaches 1 % at the median if {best.cost} costs under "
                f"{_ns(best.p50_factor * best.median_ns)} ns (today's median: "
                f"{_ns(best.median_ns)} ns), the other costs as they are."
            )
        else:
            pairs = [
                r
                for r in rows.itertuples()
                if "+" in r.cost and r.p50_factor is not None and np.isfinite(r.p50_factor)
            ]
            sentence = (
                f"{workload} on {cpu}: no single cost reaches 1 % at the median inside its "
                f"documented range"
                + (
                    f"; {pairs[0].cost.replace('+', ' and ')} together do at "
                    f"{100 * pairs[0].p50_factor:.0f} % of today's medians."
                    if pairs
                    else ", nor do the top two together."
                    if any("+" in c for c in rows["cost"])
                    else "."
                )
            )
        entries.append(
            {
                "workload": workload,
                "cpu": cpu,
                "stage": first["stage"],
                "now": f"{pct(first['slowdown_p50'])} %",
                "p_meets": _probability(first["p_meets_target"]),
                "sentence": sentence,
                "matches": bool(rows["matches"].all()),
                "costs": costs,
            }
        )
    return entries
