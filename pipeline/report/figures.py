"""The report's figures: seaborn/matplotlib on the Agg backend, saved as PNG.

Each function draws one figure from small pandas frames (the projection,
the sensitivity table, the nightly history), saves it and returns a
:class:`Figure` whose caption says what it shows and from how many points.
Percentages on every axis are of the native time or throughput (``100 *``
the model's fractions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: figures are files (must precede pyplot's import)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from asi_slowdown.model.costs import ASI_COSTS  # noqa: E402
from asi_slowdown.model.units import format_size  # noqa: E402
from asi_slowdown.pipeline.projection.verdicts import TARGET, THRESHOLD  # noqa: E402
from asi_slowdown.pipeline.store.schema import DIMENSIONS  # noqa: E402

DPI = 110
"""Resolution of the PNGs [dots/inch]: sharp on screen, ~100-200 KB per figure."""


FLOOR = 1e-4
"""Values below this fraction (0.01 %) are drawn at it: a log axis cannot show zero."""


@dataclass(frozen=True)
class Figure:
    """One saved figure: file name (relative to the report folder), caption, points drawn."""

    path: str
    title: str
    caption: str
    points: int


def points(n: int, what: str = "stored point") -> str:
    """``"1 stored point"``, ``"1,234 stored points"``: the count every caption ends with."""
    return f"{n:,} {what}{'' if n == 1 else 's'}"


STAGE_COLOURS: tuple[str, ...] = (
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#CC79A7",
    "#0072B2",
    "#D55E00",
    "#8C8C00",
)
"""Eight colours told apart at a glance and by colour-blind readers (Okabe and Ito's palette,
its yellow darkened to olive to read on white); a ninth stage reuses them with another marker."""

STAGE_MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")
"""One marker per stage, so two stages whose lines coincide both stay visible."""

LINE_STYLES: tuple = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 3)))


def stage_palette(stages: Sequence[str]) -> dict[str, str]:
    """One colour per roadmap stage, in roadmap order (:data:`STAGE_COLOURS`)."""
    return {s: STAGE_COLOURS[i % len(STAGE_COLOURS)] for i, s in enumerate(stages)}


def stage_marker(stages: Sequence[str], stage: str) -> str:
    """The stage's marker (:data:`STAGE_MARKERS`)."""
    return STAGE_MARKERS[list(stages).index(stage) % len(STAGE_MARKERS)]


def _grid(n: int, width: float = 4.2, height: float = 3.2, wrap: int = 3):
    cols = min(n, wrap) if n else 1
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _top_legend(fig, handles, labels, *, ncol: int, top: float) -> None:
    """One legend for every panel, centred above them."""
    fig.legend(
        handles,
        labels,
        loc="upper center",
        ncol=ncol,
        frameon=False,
        bbox_to_anchor=(0.5, top),
        fontsize=8,
    )


def _save(fig, folder: Path, name: str) -> str:
    path = folder / name
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return f"{folder.name}/{name}"


def _empty(folder: Path, name: str, message: str) -> str:
    """A small placeholder PNG, so the page never shows a broken image."""
    fig, ax = plt.subplots(figsize=(6, 1.6))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, wrap=True)
    return _save(fig, folder, name)


def _floored(fraction: pd.Series) -> np.ndarray:
    """Percentages for a log axis: fractions below :data:`FLOOR` drawn at it."""
    return 100 * np.maximum(fraction.to_numpy(dtype=np.float64), FLOOR)


def _percent_axis(ax, axis: str = "y") -> None:
    formatter = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g} %")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)


def _lines(ax) -> None:
    """Mark the 1 % target and the 5 % threshold on a percent y axis."""
    ax.axhline(100 * THRESHOLD, color="0.35", lw=0.8, ls="--")
    ax.axhline(100 * TARGET, color="0.35", lw=0.8, ls=":")


# --------------------------------------------------------------------------- 1. loss vs CPUs
def loss_vs_cpus(curves: pd.DataFrame, stages: Sequence[str], cpu: str, folder: Path) -> Figure:
    """Throughput loss p50 (band p05-p95) against the CPU count, one line per stage.

    ``curves``: projection rows of one CPU profile at each workload's focus
    file size and slot count, every CPU count and stage.
    """
    name = "loss_vs_cpus.png"
    title = "Throughput loss vs CPU count, per roadmap stage"
    workloads = sorted(set(curves["workload"]))
    if curves.empty or curves["cpus"].nunique() < 2:
        path = _empty(folder, name, "Fewer than two CPU counts stored: no curve to draw.")
        caption = (
            f"{title}: not drawn, the store holds fewer than two CPU counts. "
            f"From {points(len(curves))}."
        )
        return Figure(path, title, caption, len(curves))
    palette = stage_palette(stages)
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
        fig, axes = _grid(len(workloads))
        for ax, workload in zip(axes, workloads, strict=True):
            rows = curves[curves["workload"] == workload]
            for stage in stages:
                line = rows[rows["stage"] == stage].sort_values("cpus")
                if line.empty:
                    continue
                x = line["cpus"].to_numpy()
                loss = {q: _floored(line[f"throughput_loss_{q}"]) for q in ("p05", "p50", "p95")}
                ax.plot(
                    x,
                    loss["p50"],
                    color=palette[stage],
                    lw=1.4,
                    marker=stage_marker(stages, stage),
                    markersize=4,
                    label=stage,
                )
                ax.fill_between(
                    x,
                    loss["p05"],
                    loss["p95"],
                    color=palette[stage],
                    alpha=0.12,
                    lw=0,
                )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")  # losses span 0.01 % to 90 %: only a log axis shows both
            _lines(ax)
            _percent_axis(ax)
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            focus = rows.iloc[0]
            ax.set_title(
                f"{workload}\nfile {format_size(focus['file_size'])}, {int(focus['ephmap_slots'])} slots",
                fontsize=9,
            )
            ax.set_xlabel("CPUs")
            ax.set_ylabel("throughput loss p50")
        handles, labels = axes[0].get_legend_handles_labels()
        wide = len(workloads) >= 3  # the eight stages on one line above three panels
        _top_legend(fig, handles, labels, ncol=min(len(labels), 8 if wide else 4), top=1.04)
        fig.tight_layout()
        path = _save(fig, folder, name)
    caption = (
        f"{title} on {cpu}: median throughput loss (line) and its 5-95 % Monte Carlo band, "
        f"at each workload's focus file size and ephmap slot count; log y axis (below "
        f"0.01 % drawn at 0.01 %), dashed 5 %, dotted 1 %. "
        f"From {points(len(curves))}."
    )
    return Figure(path, title, caption, len(curves))


# --------------------------------------------------------------------------- 2. heatmap
def shared_norm(fractions: pd.Series) -> matplotlib.colors.LogNorm:
    """One logarithmic colour scale [%] for every panel compared: the same colour is the same
    slowdown in each (a panel at 0.6 % everywhere is not drawn as saturated as one at 60 %)."""
    values = _floored(fractions.dropna()) if fractions.notna().any() else np.array([100 * FLOOR])
    low, high = float(values.min()), float(values.max())
    return matplotlib.colors.LogNorm(vmin=low, vmax=high if high > low else low * 10)


def size_slot_heatmap(cells: pd.DataFrame, stage: str, cpu: str, folder: Path) -> Figure:
    """Final-stage slowdown p50 over file size x ephmap slot count, one panel per workload.

    ``cells``: projection rows of one CPU profile and stage at each
    workload's focus CPU count, every file size and slot count.
    """
    name = "size_slot_heatmap.png"
    title = "Remaining slowdown by file size and ephmap slot count"
    workloads = sorted(set(cells["workload"]))
    if cells.empty:
        path = _empty(folder, name, f"No stored points at stage {stage}.")
        return Figure(path, title, f"{title}: not drawn. From {points(0)} at {stage}.", 0)
    norm = shared_norm(cells["slowdown_p50"])
    with sns.axes_style("white"), sns.plotting_context("notebook", font_scale=0.8):
        fig, axes = _grid(len(workloads), width=4.4, height=3.4)
        for ax, workload in zip(axes, workloads, strict=True):
            rows = cells[cells["workload"] == workload]
            table = rows.pivot_table(
                index="file_size", columns="ephmap_slots", values="slowdown_p50", aggfunc="mean"
            ).sort_index(ascending=False)
            sns.heatmap(
                100 * np.maximum(table, FLOOR),
                ax=ax,
                annot=100 * table,
                fmt=".2g",
                cmap="rocket_r",
                norm=norm,
                cbar_kws={"label": "slowdown p50 [%]"},
                annot_kws={"fontsize": 7},
            )
            ax.set_yticklabels([format_size(v) for v in table.index], rotation=0)
            ax.set_xlabel("ephmap slots")
            ax.set_ylabel("file size")
            ax.set_title(f"{workload} ({int(rows['cpus'].iloc[0])} CPUs)", fontsize=9)
        fig.tight_layout()
        path = _save(fig, folder, name)
    caption = (
        f"{title} at the last stage ({stage}) on {cpu}: median slowdown [%] per file size "
        f"(rows) and slot count (columns), at each workload's focus CPU count; one logarithmic "
        f"colour scale for every panel (the same colour is the same slowdown). "
        f"From {points(len(cells))}."
    )
    return Figure(path, title, caption, len(cells))


# --------------------------------------------------------------------------- 3. waterfall
def component_shares(row: Mapping[str, float]) -> pd.Series:
    """Mean extra time of each ASI cost component as a share of native time (fractions), > 0 only."""
    shares = pd.Series(
        {c: row[f"extra_ns_{c}"] / row["t_native_mean"] for c in ASI_COSTS}, dtype=np.float64
    )
    return shares[shares > 0].sort_values(ascending=False)


def rows_shown(rows: pd.DataFrame) -> int:
    """The most cost components any panel of the waterfall shows (its bars' count)."""
    return max((len(component_shares(r)) for _, r in rows.iterrows()), default=1)


def waterfall(rows: pd.DataFrame, stage: str, cpu: str, folder: Path) -> Figure:
    """The remaining slowdown at ``stage`` built up cost component by cost component.

    ``rows``: one focus projection row per workload at ``stage``.
    """
    name = "waterfall.png"
    title = "What the remaining slowdown is made of"
    if rows.empty:
        path = _empty(folder, name, f"No stored points at stage {stage}.")
        return Figure(path, title, f"{title}: not drawn. From {points(0)} at {stage}.", 0)
    rows = rows.sort_values("workload")
    colours = dict(zip(ASI_COSTS, sns.color_palette("tab20", n_colors=len(ASI_COSTS)), strict=True))
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.8):
        height = max(2.4, 0.26 * (rows_shown(rows) + 2))
        fig, axes = _grid(len(rows), width=4.6, height=height)
        for ax, (_, row) in zip(axes, rows.iterrows(), strict=True):
            shares = 100 * component_shares(row)
            start = np.concatenate([[0.0], np.cumsum(shares.to_numpy())[:-1]])
            labels = [*shares.index, "total"]
            y = np.arange(len(labels))[::-1]  # largest at the top, the total at the bottom
            # horizontal bars: each component's name on a line of its own, never overlapping
            ax.barh(
                y[:-1],
                shares.to_numpy(),
                left=start,
                color=[colours[c] for c in shares.index],
                edgecolor="0.3",
                lw=0.5,
            )
            total = float(shares.sum())
            ax.barh([y[-1]], [total], color="0.45", edgecolor="0.3", lw=0.5)
            ax.text(total, y[-1], f" {total:.2g} %", ha="left", va="center", fontsize=7)
            ax.set_yticks(y, labels, fontsize=7)
            ax.set_xlim(0, total * 1.25 if total > 0 else 1)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))  # "0.015 %" is wide
            _percent_axis(ax, "x")
            ax.set_xlabel("extra time / native time")
            ax.set_title(
                f"{row['workload']} ({int(row['cpus'])} CPUs, file {format_size(row['file_size'])}, "
                f"{int(row['ephmap_slots'])} slots)",
                fontsize=8,
            )
        fig.tight_layout()
        path = _save(fig, folder, name)
    caption = (
        f"{title} at the last stage ({stage}) on {cpu}: each bar is one cost component's mean "
        f"extra time per op as a share of the mean native time, stacked largest first (top); the grey "
        f"bar is their sum (the ratio-of-means slowdown). From {points(len(rows), 'focus point')} "
        f"(one per workload)."
    )
    return Figure(path, title, caption, len(rows))


# --------------------------------------------------------------------------- 4. tornado
def tornado(sensitivity: pd.DataFrame, stage: str, cpu: str, folder: Path, top: int = 8) -> Figure:
    """Which cost draws move the final-stage slowdown most, one panel per workload.

    ``sensitivity``: :func:`pipeline.projection.sensitivity.cost_sensitivity` rows with
    ``workload``, ``median`` (the point's p50) and ``samples`` columns added.
    """
    name = "tornado.png"
    title = "Sensitivity of the remaining slowdown to each uncertain cost"
    if sensitivity.empty:
        path = _empty(folder, name, "No focus point to recompute: no sensitivity.")
        caption = f"{title}: not drawn. From {points(0, 'focus point')} at {stage}."
        return Figure(path, title, caption, 0)
    workloads = sorted(set(sensitivity["workload"]))
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.8):
        fig, axes = _grid(len(workloads), width=4.6, height=3.0)
        for ax, workload in zip(axes, workloads, strict=True):
            rows = sensitivity[sensitivity["workload"] == workload].head(top).iloc[::-1]
            centre = 100 * float(rows["median"].iloc[0])
            low, high = 100 * rows["low"].to_numpy(), 100 * rows["high"].to_numpy()
            y = np.arange(len(rows))
            ax.barh(
                y,
                high - centre,
                left=centre,
                color="#c44e52",
                alpha=0.85,
                label="cost high (top 10 %)",
            )
            ax.barh(
                y,
                low - centre,
                left=centre,
                color="#4c72b0",
                alpha=0.85,
                label="cost low (bottom 10 %)",
            )
            ax.axvline(centre, color="0.2", lw=0.8)
            ax.set_yticks(
                y,
                [f"{c} (ρ {r:+.2f})" for c, r in zip(rows["cost"], rows["spearman"], strict=True)],
                fontsize=7,
            )
            _percent_axis(ax, "x")
            ax.set_xlabel("median slowdown")
            ax.set_title(workload, fontsize=9)
        handles, labels = axes[0].get_legend_handles_labels()
        _top_legend(fig, handles, labels, ncol=2, top=1.05)
        fig.tight_layout()
        path = _save(fig, folder, name)
    samples = int(sensitivity["samples"].max())
    caption = (
        f"{title} at the last stage ({stage}) on {cpu}: for the {top} costs whose group (costs "
        f"the profile correlates count as one) explains most of the slowdown's variance, with "
        f"their Spearman rank correlation ρ (an association), the median slowdown over the "
        f"samples whose draw of that "
        f"cost is in its lowest tenth (blue) and highest tenth (red), around the point's median "
        f"(black line). Recomputed from {samples:,} Monte Carlo samples with the sweep's "
        f"common random numbers. From {points(len(workloads), 'focus point')} (one per workload)."
    )
    return Figure(path, title, caption, len(workloads))


# --------------------------------------------------------------------------- 5. trend
def focus_runs(rows: pd.DataFrame) -> list[pd.DataFrame]:
    """One workload's nights (sorted by date) cut where its focus point changed.

    Consecutive nights with the same :data:`~pipeline.store.schema.DIMENSIONS`
    form one run; the trend joins the points of a run, never two runs (a line
    across a change of focus would draw a move that is a different point).
    Rows lacking a dimension are their own focus.
    """
    rows = rows.sort_values("date")
    if rows.empty:
        return []
    focus = rows.reindex(columns=list(DIMENSIONS)).astype(str).agg("/".join, axis=1)
    run = (focus != focus.shift()).cumsum()
    return [group for _, group in rows.groupby(run.to_numpy(), sort=True)]


def trend(nights: pd.DataFrame, stage: str, cpu: str, folder: Path) -> Figure:
    """The last stage's projected slowdown across nightly runs, one line per workload and focus.

    ``nights``: history rows (:func:`pipeline.history.nights`) of one CPU
    profile and ``stage``, with a ``date`` column. A workload's line is broken
    where its focus point changed between two nights (:func:`focus_runs`).
    """
    name = "trend.png"
    title = "Nightly trend of the long-term projection"
    dates = sorted(set(nights["date"])) if not nights.empty else []
    if not dates:
        path = _empty(folder, name, "No nightly history yet: run asi-report report.mode=nightly.")
        caption = (
            f"{title}: no nightly run recorded yet. From 0 night(s), {points(0, 'recorded point')}."
        )
        return Figure(path, title, caption, 0)
    changes = 0
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
        fig, ax = plt.subplots(figsize=(8.5, 3.6))
        names = sorted(set(nights["workload"]))
        palette = dict(zip(names, sns.color_palette("colorblind", len(names)), strict=True))
        # a marker and a dash pattern per workload: two lines on the same values both show
        style = {
            w: (STAGE_MARKERS[i % len(STAGE_MARKERS)], LINE_STYLES[i % len(LINE_STYLES)])
            for i, w in enumerate(names)
        }
        x_of = {d: i for i, d in enumerate(dates)}
        for workload, rows in nights.groupby("workload"):
            runs = focus_runs(rows)
            changes += len(runs) - 1
            for number, run in enumerate(runs):
                x = run["date"].map(x_of).to_numpy()
                slowdown = {q: _floored(run[f"slowdown_{q}"]) for q in ("p05", "p50", "p95")}
                ax.plot(
                    x,
                    slowdown["p50"],
                    marker=style[workload][0],
                    ls=style[workload][1],
                    markersize=7 - 1.5 * (names.index(workload) % 3),
                    markerfacecolor="none" if names.index(workload) % 2 else palette[workload],
                    color=palette[workload],
                    label=workload if number == 0 else None,
                )
                ax.fill_between(
                    x,
                    slowdown["p05"],
                    slowdown["p95"],
                    color=palette[workload],
                    alpha=0.12,
                    lw=0,
                )
        _lines(ax)
        ax.set_yscale("log")
        _percent_axis(ax)
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(range(len(dates)), dates, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(f"slowdown p50 at {stage}")
        ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.tight_layout()
        path = _save(fig, folder, name)
    broken = (
        f" A line is broken where the workload's focus point changed ({changes} change(s)): "
        "the nights either side are different points, not a move."
        if changes
        else ""
    )
    caption = (
        f"{title}: median slowdown at the last stage ({stage}) on {cpu} at each workload's "
        f"focus point, per night (band: 5-95 %), each workload with its own marker and dashes "
        f"(lines on the same values stay visible); grey dashed 5 % threshold, dotted 1 % target."
        f"{broken} From {len(dates)} night(s), {points(len(nights), 'recorded point')}."
    )
    return Figure(path, title, caption, len(nights))


# --------------------------------------------------------------------------- 6. confidence
CONFIDENCE_LEVELS: dict[str, str] = {
    "p_meets_target": f"P(< {100 * TARGET:g} %)",
    "p_under_threshold": f"P(< {100 * THRESHOLD:g} %)",
}
"""The confidence columns (:data:`model.evaluate.CONFIDENCE`) and their legend labels."""


def confidence(
    focus: pd.DataFrame,
    stages: Sequence[str],
    conditions: Mapping[str, str],
    folder: Path,
    samples: int | None = None,
) -> Figure:
    """The probability of meeting 1 % and 5 % at each roadmap stage, per workload and CPU profile.

    ``focus``: the focus projection (every workload, CPU profile and stage at
    its focus point) with the confidence columns; ``conditions``: per CPU
    profile, what its probabilities are conditional on (its priors, or a
    calibrated posterior).
    """
    name = "confidence.png"
    title = "Probability of meeting 1 % and 5 %, by roadmap stage"
    levels = [c for c in CONFIDENCE_LEVELS if c in focus.columns]
    if focus.empty or not levels:
        path = _empty(folder, name, "No focus projection with confidence columns to draw.")
        caption = f"{title}: not drawn. From {points(0, 'focus point')}."
        return Figure(path, title, caption, 0)
    order = {stage: i for i, stage in enumerate(stages)}
    long = focus.melt(
        id_vars=["workload", "cpu", "stage"],
        value_vars=levels,
        var_name="level",
        value_name="probability",
    )
    long["level"] = long["level"].map(CONFIDENCE_LEVELS)
    long["x"] = long["stage"].map(order)
    long = long.dropna(subset=["x", "probability"]).sort_values(["workload", "cpu", "x"])
    workloads = sorted(set(long["workload"]))
    cpus = sorted(set(long["cpu"]))
    palette = dict(zip(cpus, sns.color_palette("deep", n_colors=max(len(cpus), 1)), strict=False))
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.8):
        fig, axes = _grid(len(workloads), width=4.6, height=3.4)
        for ax, workload in zip(axes, workloads, strict=True):
            sns.lineplot(
                data=long[long["workload"] == workload],
                x="x",
                y="probability",
                hue="cpu",
                hue_order=cpus,
                style="level",
                style_order=list(CONFIDENCE_LEVELS.values()),
                palette=palette,
                markers=True,
                dashes={
                    list(CONFIDENCE_LEVELS.values())[0]: "",
                    list(CONFIDENCE_LEVELS.values())[1]: (4, 2),
                },
                estimator=None,
                units="cpu",
                ax=ax,
                legend=ax is axes[0],
            )
            ax.axhline(0.9, color="0.35", lw=0.8, ls=":")
            ax.set_ylim(-0.03, 1.03)
            ax.set_xticks(range(len(stages)), list(stages), rotation=60, ha="right", fontsize=7)
            ax.yaxis.set_major_formatter(
                matplotlib.ticker.FuncFormatter(lambda v, _: f"{100 * v:g} %")
            )
            ax.set_xlabel("")
            ax.set_ylabel("probability")
            ax.set_title(workload, fontsize=9)
        legend = axes[0].get_legend()
        if legend is not None:
            handles, labels = legend.legend_handles, [t.get_text() for t in legend.texts]
            legend.remove()
            _top_legend(fig, handles, labels, ncol=min(len(labels), 7), top=1.06)
        fig.tight_layout()
        path = _save(fig, folder, name)
    given = "; ".join(f"{cpu}: {conditions.get(cpu, 'its priors')}" for cpu in cpus)
    caption = (
        f"{title}: at each workload's focus point and each CPU profile (colour), the share of "
        f"the {f'{samples:,} ' if samples else ''}paired Monte Carlo cost samples whose slowdown "
        f"against mitigations=off is below the {100 * TARGET:g} % target (solid) and the "
        f"{100 * THRESHOLD:g} % threshold (dashed); common random numbers, so stages compare "
        f"sample by sample; dotted 90 %. Conditional on the cost distributions of each CPU "
        f"profile, not on the model being right: {given}. "
        f"From {points(len(focus), 'focus point')} ({len(workloads)} workload(s) x "
        f"{len(cpus)} CPU profile(s) x the stages stored)."
    )
    return Figure(path, title, caption, len(focus))


# --------------------------------------------------------------------------- 7. guests vs IBPB
GUEST_BASELINES: dict[str, str] = {
    "slowdown": "vs mitigations=off",
    "slowdown_vs_default": "vs today's default",
    "slowdown_vs_ibpb_vmexit": "vs IBPB on every VM exit",
}
"""The three baselines a guest workload's slowdown is read against (model column prefixes)."""


def guest_baselines(rows: pd.DataFrame, stage: str, folder: Path) -> Figure:
    """Guest workloads after the whole roadmap against each baseline, one panel per workload.

    ``rows``: focus projection rows of the guest workloads (VM exits per op > 0) at ``stage``,
    every CPU profile. Negative: ASI is cheaper than that baseline.
    """
    name = "guest_baselines.png"
    title = "Guest workloads: ASI against IBPB on every VM exit"
    if rows.empty:
        path = _empty(folder, name, f"No guest workload stored at {stage} at its focus point.")
        caption = f"{title}: not drawn, no guest workload in the report. From {points(0)}."
        return Figure(path, title, caption, 0)
    workloads = sorted(set(rows["workload"]))
    cpus = sorted(set(rows["cpu"]))
    colours = dict(zip(GUEST_BASELINES, ("0.55", "#0072B2", "#D55E00"), strict=True))
    hatches = dict(zip(GUEST_BASELINES, ("", "//", ".."), strict=True))
    width = 0.8 / len(GUEST_BASELINES)
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.8):
        fig, axes = _grid(len(workloads), width=4.2, height=3.0)
        for ax, workload in zip(axes, workloads, strict=True):
            mine = rows[rows["workload"] == workload].set_index("cpu").reindex(cpus)
            for i, (prefix, label) in enumerate(GUEST_BASELINES.items()):
                x = np.arange(len(cpus)) + (i - 1) * width
                p50 = 100 * mine[f"{prefix}_p50"].to_numpy(dtype=np.float64)
                low = 100 * mine[f"{prefix}_p05"].to_numpy(dtype=np.float64)
                high = 100 * mine[f"{prefix}_p95"].to_numpy(dtype=np.float64)
                ax.bar(
                    x,
                    p50,
                    width,
                    color=colours[prefix],
                    hatch=hatches[prefix],
                    edgecolor="0.25",
                    lw=0.5,
                    label=label,
                    yerr=[np.maximum(p50 - low, 0), np.maximum(high - p50, 0)],
                    error_kw={"lw": 0.8, "capsize": 2},
                )
            ax.axhline(0, color="0.2", lw=0.8)
            ax.set_xticks(np.arange(len(cpus)), cpus, fontsize=7)
            _percent_axis(ax)
            ax.set_ylabel(f"slowdown p50 at {stage}")
            ax.set_title(workload, fontsize=9)
        handles, labels = axes[0].get_legend_handles_labels()
        _top_legend(fig, handles, labels, ncol=3, top=1.06)
        fig.tight_layout()
        path = _save(fig, folder, name)
    caption = (
        f"{title}: after the whole roadmap ({stage}), each guest workload's median slowdown at "
        f"its focus point on each CPU profile against mitigations=off (grey), against today's "
        f"default mitigations (blue) and against the blanket protection of a KVM host without "
        f"ASI, IBPB on every VM exit on top of the default (and an L1D flush on every VM entry "
        f"on L1TF CPUs) (orange); whiskers 5-95 %; below zero ASI is cheaper. "
        f"From {points(len(rows), 'focus point')}."
    )
    return Figure(path, title, caption, len(rows))
