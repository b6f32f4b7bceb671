"""asi-report: the report folder, coverage of a partial store, nightly history and comparison."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from markupsafe import escape
from omegaconf import OmegaConf

from asi_slowdown.model.evaluate import evaluate
from asi_slowdown.model.units import parse_size
from asi_slowdown.pipeline.configuration.checks import REPORTS
from asi_slowdown.pipeline.configuration.checks import check_report as settings
from asi_slowdown.pipeline.configuration.compose import compose_config
from asi_slowdown.pipeline.configuration.compose import composer as default_composer
from asi_slowdown.pipeline.configuration.errors import ConfigError
from asi_slowdown.pipeline.configuration.profile import model_profile, point_from_config
from asi_slowdown.pipeline.projection import history as hist
from asi_slowdown.pipeline.projection.answer import conditional_on
from asi_slowdown.pipeline.projection.budget import budgets
from asi_slowdown.pipeline.projection.projection import (
    CONFIDENCE_COLUMNS,
    SCENARIO_KEYS,
    VS_DEFAULT_QUANTILES,
    at,
)
from asi_slowdown.pipeline.projection.sensitivity import noise_level
from asi_slowdown.pipeline.projection.verdicts import beats_default_from, crossing
from asi_slowdown.pipeline.report import figures as figs
from asi_slowdown.pipeline.report.build import build
from asi_slowdown.pipeline.report.collection import Replaced, focus_table, nightly, replaced_text
from asi_slowdown.pipeline.report.headline import headline, pct, signed
from asi_slowdown.pipeline.report.render import (
    budget_context,
    page,
    page_context,
    projection_matrix,
)
from asi_slowdown.pipeline.report.scope import experiment_grid_from, preset_points, store_presets
from asi_slowdown.pipeline.report.settings import claim_folder
from asi_slowdown.pipeline.report.summary import markdown
from asi_slowdown.pipeline.store import readers as results_store
from asi_slowdown.pipeline.store.schema import CUBE_KEYS, METRIC_COLUMNS

from .report_fixtures import SMALL_GRID, SMALL_SAMPLES, nightly_stub, write_store

REPO_CONF = Path(__file__).resolve().parents[2] / "conf"
"""This checkout's ``conf/`` (what installs as ``pipeline.conf``)."""

FIGURES = (
    "validation",
    "loss_vs_cpus",
    "guest_baselines",
    "size_slot_heatmap",
    "waterfall",
    "tornado",
    "trend",
    "confidence",
)


def overrides(root: Path, store: Path, name: str, *extra: str) -> list[str]:
    """asi-report overrides writing report ``name`` under ``root`` (history shared by names)."""
    return [
        f"store.path={store}",
        f"report.dir={root / name}",
        f"report.history={root / 'history'}",
        f"samples={SMALL_SAMPLES}",
        "dask.progress=false",
        *extra,
    ]


@pytest.fixture(scope="module")
def partial_report(tmp_path_factory):
    """A report over the small grid, from a store that lacks every fourth chunk."""
    root = tmp_path_factory.mktemp("partial")
    store = root / "store"
    grid = write_store(store, keep=lambda chunk: chunk % 4 != 2)
    index, report = build(
        overrides(root, store, "report"), grid_overrides=SMALL_GRID, err=lambda _: None
    )
    return index, report, grid


def test_the_folder_holds_page_summary_figures_and_tables(partial_report):
    index, report, _ = partial_report
    folder = index.parent
    html = index.read_text()
    assert '<table id="projection">' in html
    headers = html.replace("<wbr>", "")  # stage names may break after an underscore
    for stage in report.stages:
        assert f"<th>{stage}</th>" in headers
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and not [
        s for s in sources if re.match(r"^[a-z]+:", s)
    ]  # relative: opens offline
    for source in sources:
        assert (folder / source).is_file(), source
    assert {Path(f.path).stem for f in report.figures} == set(FIGURES)
    for figure in report.figures:
        assert (folder / figure.path).stat().st_size > 5_000
        assert re.search(r"From [\d,]+ (night\(s\), [\d,]+ )?[a-z ]*points?\b", figure.caption)
        assert str(escape(figure.caption)) in html
    summary = (folder / "summary.md").read_text()
    assert summary.startswith("# ASI slowdown") and "| workload | cpu |" in summary
    for name in (
        "projection_focus",
        "scenarios",
        "stage_summary",
        "coverage",
        "sensitivity",
        "budget",
    ):
        assert (folder / "data" / f"{name}.csv").is_file()


def test_a_partial_store_reports_its_coverage(partial_report):
    index, report, grid = partial_report
    stored = int(report.coverage["stored_points"].sum())
    assert report.grid_points == len(grid) == 216  # 9 stages
    assert 0 < stored < len(grid) and report.missing == len(grid) - stored
    assert (report.coverage["coverage"] <= 1).all() and (report.coverage["coverage"] < 1).any()
    html = index.read_text()
    assert f"{stored} of the grid's {len(grid)} points are in the store" in html
    assert (
        f"Coverage: {stored} of {len(grid)} grid points"
        in (index.parent / "summary.md").read_text()
    )
    incomplete = report.scenarios[~report.scenarios["complete"]]
    assert len(incomplete) > 0  # some scenarios lack a stage
    assert (report.scenarios["stages_present"] <= 8).all()


def test_the_projection_is_in_roadmap_order_with_crossings(partial_report):
    _, report, _ = partial_report
    focus = report.focus
    assert set(focus["workload"]) == {"fio_randread_tmpfs", "fork_exec"}
    for (_, _), rows in focus.groupby(["workload", "cpu"]):
        assert list(rows["stage_index"]) == sorted(rows["stage_index"])
        assert rows["cpus"].nunique() == rows["file_size"].nunique() == 1
    fio = focus[focus["workload"] == "fio_randread_tmpfs"].set_index("stage")
    assert fio.loc["rfc_v2", "dominant_exit_source"] == "page_cache"
    # The focus of each workload: its preset's file size if stored, else the nearest stored one.
    assert fio["file_size"].iloc[0] == 1 << 30
    fork = focus[focus["workload"] == "fork_exec"]
    assert fork["file_size"].iloc[0] == 64 << 20  # preset 2M, nearest stored 64M
    scen = report.scenarios.iloc[0]
    assert scen["final_slowdown_p05"] <= scen["final_slowdown_p50"] <= scen["final_slowdown_p95"]


def test_a_focus_value_the_store_lacks_is_named_with_its_replacement(partial_report):
    index, report, _ = partial_report
    # fork_exec's own file is 2M, the small grid stores 64M and 1G
    assert report.focus_replaced == [
        Replaced("fork_exec", "sapphire_rapids", "file_size", 2 << 20, 64 << 20)
    ]
    html = index.read_text()
    assert "not stored: file_size 2M → 64M</small>" in html
    text = replaced_text(report.focus_replaced)
    assert text.startswith("Focus values not in the store") and str(escape(text)) in html
    summary = (index.parent / "summary.md").read_text()
    assert text in summary and "2 slots (not stored: file_size 2M → 64M) |" in summary
    cfg = compose_config([f"samples={SMALL_SAMPLES}", "report.focus.cpus=3"])
    cube = report.aggregates.cube
    _, replaced = focus_table(report.projection, cube, cfg, None, None, default_composer())
    assert {(r.workload, r.name, r.wanted, r.shown) for r in replaced} == {
        ("fio_randread_tmpfs", "cpus", 3, 4),
        ("fork_exec", "cpus", 3, 4),
        ("fork_exec", "file_size", 2 << 20, 64 << 20),
    }


@pytest.mark.parametrize("preset", ["default", "nightly"])
def test_every_workload_s_own_focus_point_is_in_the_experiment_grid(preset):
    """``asi-sweep experiment=...`` stores each workload at its own file size, 1 CPU and 2 slots."""
    params = yaml.safe_load((REPO_CONF / "experiment" / f"{preset}.yaml").read_text())
    params = params["hydra"]["sweeper"]["params"]
    sizes = {parse_size(v) for v in str(params["workload.file_size"]).split(",")}
    listed = OverridesParser.create().parse_override(f"workload={params['workload']}").value()
    names = [p.stem for p in (REPO_CONF / "workload").glob("*.yaml")]
    swept = set(listed.filter(names) if hasattr(listed, "filter") else listed.list)
    for path in sorted((REPO_CONF / "workload").glob("*.yaml")):
        if path.stem not in swept:  # a phase of a published run (conf/benchmark), not swept
            continue
        own = yaml.safe_load(path.read_text())["file_size"]
        assert parse_size(own) in sizes, f"{path.stem}: file_size {own}"
    main = yaml.safe_load((REPO_CONF / "config.yaml").read_text())
    assert str(main["cpus"]) in str(params["cpus"]).split(",")
    assert str(main["ephmap"]["slots"]) in str(params["ephmap.slots"]).split(",")


def test_sensitivity_recomputes_the_stored_median_and_ranks_costs(partial_report):
    _, report, _ = partial_report
    sens = report.sensitivity
    assert not sens.empty and (sens["matches"] == 1.0).all()
    assert (sens["samples"] == SMALL_SAMPLES).all()
    fio = sens[sens["workload"] == "fio_randread_tmpfs"]
    assert fio.iloc[0]["cost"] == "ephmap_pte"  # what the remaining fio slowdown is made of
    assert fio.iloc[0]["group_share"] > 0.25 and fio.iloc[0]["spearman"] > 0.5
    assert fio.iloc[0]["high"] > fio.iloc[0]["low"]
    assert np.all(np.diff(fio["group_share"].to_numpy()) <= 1e-12)  # ranked by variance share
    # shares, not associations: they add up to at most 1, up to the estimator's noise at
    # this sample count (pick-freeze; a sum of |rho| would reach several)
    assert fio.drop_duplicates("group")["group_share"].sum() <= 1 + noise_level(SMALL_SAMPLES)


def test_both_baselines_and_the_confidence_are_in_the_projection(partial_report):
    index, report, _ = partial_report
    focus = report.focus
    for column in (*CONFIDENCE_COLUMNS, *VS_DEFAULT_QUANTILES):
        assert column in focus and focus[column].notna().all()
    # the scenario summary: the probability that the whole roadmap reaches the target, and
    # from which stage ASI beats the default, as the verdicts module reads the rows
    for key, rows in report.projection.groupby(list(SCENARIO_KEYS)):
        scen = at(report.scenarios, dict(zip(SCENARIO_KEYS, key, strict=True))).iloc[0]
        assert scen["final_p_meets_target"] == rows.iloc[-1]["p_meets_target"]
        assert scen["beats_default_from"] == beats_default_from(rows)
    html = index.read_text()
    assert "<th>long term</th>" in html and '<small class="default">vs default ' in html
    cells = [c for row in projection_matrix(report) for c in row["cells"] if "versus" in c]
    assert cells and html.count('class="versus') == len(cells)
    assert "not faster than the default at any stage stored" in html  # sapphire_rapids: no PTI
    conditional = re.search(r'<p class="meta" id="conditional">(.*?)</p>', html, re.S).group(1)
    assert "the priors of cpu=sapphire_rapids" in conditional
    summary = (index.parent / "summary.md").read_text()
    assert "| verdict | P(<1 %) | P(<5 %) |" in summary and "vs default)" in summary


def test_the_matrix_says_from_which_stage_asi_is_faster_than_the_default(partial_report):
    _, report, _ = partial_report
    focus = report.focus.copy()
    later = focus["stage_index"] >= report.stages.index("cr3_noflush")
    focus.loc[later, "slowdown_vs_default_p50"] = -0.004
    rows = projection_matrix(replace(report, focus=focus))
    for row in rows:
        stages = list(focus[(focus["workload"] == row["workload"])]["stage"])
        first = next(s for s in stages if report.stages.index(s) >= 3)
        assert row["beats_default"] == f"faster than the default from {first} on"
        assert [c["faster"] for c in row["cells"] if "faster" in c] == [
            report.stages.index(s) >= 3 for s in stages
        ]
        assert row["versus_final"] in ("-0.4 %", "n/a")


def test_the_budget_table_is_what_asi_answer_solves(partial_report):
    """The report's budget at the final stage equals ``budgets()`` on the composed focus point."""
    index, report, _ = partial_report
    budget = report.budget
    final = report.stages[-1]
    assert not budget.empty and set(budget["stage"]) == {final} and budget["matches"].all()
    focus_final = report.focus[report.focus["stage"] == final]
    assert set(budget["workload"]) == set(focus_final["workload"])
    row = focus_final.iloc[0]
    cfg = compose_config(
        [
            f"workload={row['workload']}",
            f"cpu={row['cpu']}",
            f"mitigations={final}",
            f"cpus={int(row['cpus'])}",
            f"workload.file_size={int(row['file_size'])}",
            f"ephmap.slots={int(row['ephmap_slots'])}",
            f"samples={SMALL_SAMPLES}",
        ]
    )
    point = point_from_config(cfg)
    table = pd.DataFrame(
        evaluate({k: np.array([v]) for k, v in point.items()}, model_profile(cfg).costs())
    )
    expected = budgets(table, cfg, [point])
    mine = budget[budget["workload"] == row["workload"]].reset_index(drop=True)
    assert list(mine["cost"]) == list(expected["cost"])
    for column in ("adds_ns_per_op", "median_ns", "lowest_ns"):
        np.testing.assert_allclose(mine[column], expected[column], rtol=1e-12)
    for column in ("p50_factor", "confident_factor"):
        np.testing.assert_allclose(
            mine[column].astype(float), expected[column].astype(float), rtol=1e-12
        )
    assert mine["cost"].iloc[-1].count("+") == 1  # the top pair last
    html = index.read_text()
    assert html.count('<table class="budget-table"') == budget.groupby(["workload", "cpu"]).ngroups
    for entry in budget_context(report):
        assert str(escape(entry["sentence"])) in html
        assert entry["sentence"].startswith(f"{entry['workload']} on {entry['cpu']}")
    summary = (index.parent / "summary.md").read_text()
    assert f"## What it would take at {final}" in summary


def test_the_confidence_caption_names_priors_or_the_calibrated_posterior(tmp_path):
    calibrated = OmegaConf.create(
        {
            "cpu": {
                "name": "sapphire_rapids_lab",
                "provenance": {
                    "date": "2026-12-01",
                    "inputs": ["a.csv", "b.csv"],
                    "base_profile": "sapphire_rapids",
                },
            }
        }
    )
    priors = OmegaConf.create({"cpu": {"name": "amd_zen4"}})
    stages = ["a", "b", "c"]
    focus = pd.DataFrame(
        [
            {
                "workload": w,
                "cpu": c,
                "stage": s,
                "p_meets_target": 0.1 * i,
                "p_under_threshold": 0.3 * i,
            }
            for w in ("w1", "w2")
            for c in ("sapphire_rapids_lab", "amd_zen4")
            for i, s in enumerate(stages)
        ]
    )
    folder = tmp_path / "figures"
    folder.mkdir()
    conditions = {c.cpu.name: conditional_on(c) for c in (calibrated, priors)}
    figure = figs.confidence(focus, stages, conditions, folder, samples=64)
    assert (tmp_path / figure.path).stat().st_size > 5_000
    assert (
        "the posterior of cpu=sapphire_rapids_lab, calibrated by asi-calibrate on 2026-12-01"
        in (figure.caption)
    )
    assert "from 2 input file(s)" in figure.caption
    assert "amd_zen4: the priors of cpu=amd_zen4" in figure.caption
    assert "64 paired Monte Carlo cost samples" in figure.caption
    assert figure.caption.endswith(
        "From 12 focus points (2 workload(s) x 2 CPU profile(s) x the stages stored)."
    )
    empty = figs.confidence(focus.head(0), stages, {}, folder)
    assert empty.points == 0 and "not drawn" in empty.caption


@pytest.mark.parametrize(
    ("values", "level", "expected"),
    [
        ([3.0, 0.09, 0.02, 0.02], 0.05, "c"),
        ([3.0, 0.09, 0.02, 0.02], 0.01, None),
        ([0.001, 0.001, 0.001, 0.001], 0.01, "a"),
        ([0.5, 0.001, 0.2, 0.001], 0.01, "d"),  # dips under, rises again: counts from d
    ],
)
def test_crossing_is_where_the_median_stays_below(values, level, expected):
    assert crossing(values, list("abcd"), level) == expected


def test_nightly_mode_records_the_night_and_flags_what_moved(tmp_path):
    """Two dated nightly runs; between them a cost was recalibrated (ephmap_pte 10x higher)."""
    first, second = tmp_path / "store1", tmp_path / "store2"
    write_store(first)
    recalibrated = (*SMALL_GRID, "cpu.costs.ephmap_pte.high=500")
    write_store(second, recalibrated)
    nightly = ["report.mode=nightly", "report.move_threshold=0.005"]
    quiet = {"err": lambda _: None}
    first_index, first_report = build(
        overrides(tmp_path, first, "night1", *nightly, "report.date=2026-01-01"),
        grid_overrides=SMALL_GRID,
        **quiet,
    )
    assert first_report.comparison is None and "first night" in first_report.comparison_note
    assert "nothing to compare with" in first_index.read_text()
    assert "nothing to compare with" in (first_index.parent / "summary.md").read_text()
    index, report = build(
        overrides(tmp_path, second, "night2", *nightly, "report.date=2026-01-02"),
        grid_overrides=recalibrated,
        **quiet,
    )
    assert sorted(p.name for p in (tmp_path / "history").iterdir()) == [
        "date=2026-01-01",
        "date=2026-01-02",
        "validation",  # each night's scores on the public record (pipeline/validate/run.py)
    ]
    assert report.previous_night == "2026-01-01"
    compared = report.comparison.set_index(["workload", "stage"])
    moved = compared.loc[("fio_randread_tmpfs", "metadata_mapped")]
    assert moved["moved"] and moved["status"] in ("moved", "verdict changed")
    assert moved["delta_p50"] > 0.005
    steady = compared.loc[("fio_randread_tmpfs", "rfc_v2")]  # no ephmap: ephmap_pte is unused
    assert not steady["moved"] and steady["status"] == "steady" and steady["delta_p50"] == 0
    assert steady["delta_p_meets_target"] == 0 and steady["delta_slowdown_vs_default_p50"] == 0
    assert np.isfinite(moved["delta_slowdown_vs_default_p50"])  # recorded both nights
    recorded, _ = hist.read(tmp_path / "history")
    assert recorded[list(CONFIDENCE_COLUMNS)].notna().all().all()
    # the budget solves the costs the second grid was swept with (ephmap_pte recalibrated)
    assert report.budget["matches"].all()
    fio = report.budget[report.budget["cost"] == "ephmap_pte"]
    assert (fio["median_ns"] > 20).all()  # high=500 moved the median up from ~14 ns
    html = index.read_text()
    assert "Compared with the previous night (2026-01-01)" in html and 'id="moved"' in html
    trend = next(f for f in report.figures if f.path.endswith("trend.png"))
    assert "2 night(s)" in trend.caption
    summary = (index.parent / "summary.md").read_text()
    assert "## Compared with 2026-01-01" in summary


def test_history_rerun_of_a_night_keeps_the_latest(tmp_path):
    rows = history_rows()
    hist.record(tmp_path, rows, "2026-01-01")
    hist.record(tmp_path, rows.assign(slowdown_p50=0.03), "2026-01-01")
    hist.record(tmp_path, rows.assign(slowdown_p50=0.10, verdict="y"), "2026-01-02")
    nights = hist.nights(hist.read(tmp_path)[0])
    assert list(nights["date"]) == ["2026-01-01", "2026-01-02"]
    assert nights.iloc[0]["slowdown_p50"] == 0.03
    assert hist.previous_night(nights, "2026-01-02") == "2026-01-01"
    assert hist.previous_night(nights, "2026-01-01") is None
    compared = hist.compare(
        nights[nights.date == "2026-01-02"], nights[nights.date == "2026-01-01"], 0.05
    )
    assert compared.iloc[0]["status"] == "verdict changed"  # moved 7 points and verdict changed


def history_rows(**values) -> pd.DataFrame:
    """One recorded projection row: every :data:`hist.KEYS` and :data:`hist.VALUES` column."""
    rows = pd.DataFrame(
        {
            **{k: ["w"] if k in ("workload", "cpu", "stage") else [1] for k in hist.KEYS},
            **{
                v: [0.02] if v.startswith(("slowdown", "throughput", "p_")) else ["x"]
                for v in hist.VALUES
            },
        }
    ).assign(stage_index=0)
    return rows.assign(**values)


def test_history_records_the_confidence_and_the_slowdown_against_the_default(tmp_path):
    for column in (*CONFIDENCE_COLUMNS, *VS_DEFAULT_QUANTILES, "p_beats_default"):
        assert column in hist.VALUES and column in METRIC_COLUMNS
    hist.record(tmp_path, history_rows(p_meets_target=0.25), "2026-01-01")
    recorded, _ = hist.read(tmp_path)
    assert recorded.iloc[0]["p_meets_target"] == 0.25
    assert recorded.iloc[0]["slowdown_vs_default_p50"] == 0.02


@pytest.mark.parametrize(
    ("tonight", "status"),
    [
        ({"p_meets_target": 0.35}, "confidence moved"),  # moved by 0.15 > 0.1
        ({"p_under_threshold": 0.02 + 0.11}, "confidence moved"),
        ({"p_meets_target": 0.28}, "steady"),  # 0.08: within 0.1
        ({"slowdown_vs_default_p50": -0.01}, "vs default moved"),  # 3 points > 0.5
        ({"slowdown_vs_default_p50": 0.022}, "steady"),
        ({"slowdown_p50": 0.03, "p_meets_target": 0.9}, "moved"),  # the p50 is named first
    ],
)
def test_the_comparison_flags_a_change_in_confidence_or_against_the_default(tonight, status):
    before = history_rows(p_meets_target=0.2)
    now = history_rows(**{"p_meets_target": 0.2, **tonight})
    compared = hist.compare(now, before, 0.005).iloc[0]
    assert compared["status"] == status and compared["moved"] == (status != "steady")
    assert compared["previous_p_meets_target"] == 0.2
    assert compared["delta_p_meets_target"] == pytest.approx(now.iloc[0]["p_meets_target"] - 0.2)


def test_a_row_the_previous_night_lacks_is_not_compared_and_says_so():
    """The focus changed between the nights: same workload, CPU and stage, other point."""
    before = history_rows(slowdown_p50=0.021, verdict="under threshold").assign(cpus=4)
    now = history_rows(slowdown_p50=0.0088, verdict="meets target").assign(cpus=16)
    compared = hist.compare(now, before, 0.005).iloc[0]
    assert compared["status"] == hist.NO_PREVIOUS == "no previous value"
    assert not compared["moved"] and np.isnan(compared["previous_p50"])
    assert compared["focus_before"] == "4 CPUs, file 1, 1 slots"
    assert compared["focus_before_p50"] == 0.021
    assert compared["focus_before_verdict"] == "under threshold"
    matched = hist.compare(now, now.assign(slowdown_p50=0.0089), 0.005).iloc[0]
    assert matched["status"] == "steady" and pd.isna(matched["focus_before"])


def nightly_lines(tmp_path, night: str, focus: pd.DataFrame) -> tuple[object, list[str]]:
    report, lines = nightly_stub(tmp_path, night, focus)
    nightly(report, lines.append)
    return report, lines


def test_a_night_matching_none_of_the_previous_rows_says_nothing_was_compared(tmp_path):
    hist.record(tmp_path, history_rows(slowdown_p50=0.021).assign(cpus=4), "2026-01-01")
    report, lines = nightly_lines(tmp_path, "2026-01-02", history_rows().assign(cpus=16))
    line = next(x for x in lines if "compared with 2026-01-01" in x)
    assert "0 projection(s) moved" not in line
    assert "none of tonight's 1 projection(s) has a previous value" in line
    both = pd.concat([history_rows(workload="a"), history_rows(workload="b").assign(cpus=16)])
    hist.record(tmp_path, history_rows(workload="a"), "2026-01-03")
    _, lines = nightly_lines(tmp_path, "2026-01-04", both)
    line = next(x for x in lines if "compared with 2026-01-03" in x)
    assert ": 0 of 1 projection(s) moved" in line and "; 1 with no previous value" in line


def test_the_first_night_says_there_is_nothing_to_compare_with(tmp_path):
    report, lines = nightly_lines(tmp_path, "2026-01-01", history_rows())
    assert report.comparison is None and report.previous_night is None
    assert report.comparison_note.endswith(
        "(it is the first night recorded): nothing to compare with"
    )
    assert f"asi-report: {report.comparison_note}" in lines


def test_the_trend_never_draws_a_line_across_a_change_of_focus(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(figs, "_save", lambda fig, folder, name: drawn.append(fig) or name)
    rows = pd.concat(
        [
            history_rows(slowdown_p50=p50, slowdown_p05=p50, slowdown_p95=p50).assign(
                date=night, cpus=cpus
            )
            for night, cpus, p50 in [
                ("2026-01-01", 4, 0.021),
                ("2026-01-02", 4, 0.020),
                ("2026-01-03", 16, 0.0088),
            ]
        ],
        ignore_index=True,
    )
    figure = figs.trend(rows, "w", "w", tmp_path)
    lines = [list(line.get_xdata()) for line in drawn[0].axes[0].lines if line.get_marker() == "o"]
    assert sorted(lines) == [[0, 1], [2]]  # nights 1-2 joined, night 3 on its own
    assert "focus point changed (1 change(s))" in figure.caption
    assert len(drawn[0].axes[0].get_legend().get_texts()) == 1  # one legend entry per workload


def test_a_changed_focus_is_reported_on_the_page_not_as_nothing_moved(partial_report, tmp_path):
    """The previous night was recorded at another focus point: nothing matches tonight."""
    _, first, _ = partial_report
    store = Path(first.aggregates.scan.store)
    hist.record(
        tmp_path / "history", first.focus.assign(cpus=first.focus["cpus"] + 1), "2026-01-01"
    )
    index, report = build(
        overrides(tmp_path, store, "r", "report.mode=nightly", "report.date=2026-01-02"),
        grid_overrides=SMALL_GRID,
        err=lambda _: None,
    )
    assert (report.comparison["status"] == hist.NO_PREVIOUS).all()
    html = index.read_text()
    assert 'id="unmatched"' in html and "no previous value" in html
    assert "Nothing compared" in html and "none moved" not in html
    summary = (index.parent / "summary.md").read_text()
    assert "Nothing moved" not in summary and "**no previous value**" in summary
    assert "Nothing compared: none of tonight's" in summary
    trend = next(f for f in report.figures if f.path.endswith("trend.png"))
    assert "focus point changed" in trend.caption


def test_a_night_recorded_before_the_confidence_columns_compares_without_flagging():
    old = history_rows().drop(columns=[*CONFIDENCE_COLUMNS, *VS_DEFAULT_QUANTILES])
    compared = hist.compare(history_rows(p_meets_target=0.9), old, 0.005).iloc[0]
    assert compared["status"] == "steady" and not compared["moved"]
    assert np.isnan(compared["delta_p_meets_target"]) and np.isnan(
        compared["previous_p_meets_target"]
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("report.mode=weekly", r"^report\.mode must be one of adhoc, nightly, got 'weekly'$"),
        (
            "dask.scheduler=thread",
            r"^dask\.scheduler must be threads, ray or a Dask scheduler address",
        ),
        ("dask.num_workers=0", r"^dask\.num_workers must be an integer >= 1 or null, got 0$"),
        (
            "report.date=2026-13-01",
            r"^report\.date must be a date YYYY-MM-DD or null, got '2026-13-01'$",
        ),
        ("report.move_threshold=-1", r"^report\.move_threshold must be a number >= 0, got -1"),
        (
            "report.experiment=nope",
            r"^report\.experiment: unknown experiment 'nope'; allowed: default",
        ),
        ("report.focus.file_size=big", r"^report\.focus\.file_size must be a size like 4K"),
        ("report.focus.cpus=0", r"^report\.focus\.cpus must be an integer >= 1 or null, got 0$"),
    ],
)
def test_bad_settings_are_one_line_naming_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        settings(compose_config([override]))


PRESETS = (
    "workload=fio_randread_tmpfs",
    "cpu=sapphire_rapids",
    "mitigations=rfc_v2,ephmap_prototype",
    "cpus=1",
    "workload.file_size=1G",
    "ephmap.slots=2",
    f"samples={SMALL_SAMPLES}",
)
"""Two stages of one workload at the report's default focus point."""

WHAT_IF = (
    "workload=fio_randread_tmpfs",
    "cpu=sapphire_rapids",
    "mitigations=ephmap_prototype",
    "cpu.costs.ibpb.high=5000,20000",
    "mitigations.cr3_noflush=true,false",
    "cpus=1",
    "workload.file_size=1G",
    "ephmap.slots=2",
    f"samples={SMALL_SAMPLES}",
)
"""The README's what-if sweep at that point: 4 points at ephmap_prototype, none a preset's."""


def test_the_whole_store_roadmap_keeps_what_ifs_out_and_says_how_many(tmp_path):
    store = tmp_path / "store"
    grid = write_store(store, PRESETS)
    write_store(store, WHAT_IF, run_id="run1")
    index, report = build(
        overrides(tmp_path, store, "r1", "report.whole_store=true"), err=lambda _: None
    )
    focus = report.focus.set_index("stage")
    assert (focus["points"] == 1).all()  # not the preset's point averaged with four what-ifs
    prototype = next(p for p in grid.profiles if p.mitigations == "ephmap_prototype")
    own = grid.points.filter(
        pc.equal(grid.points.column("profile"), grid.profiles.index(prototype))
    )
    stored = results_store.lookup(store, own.column("point_id").to_pylist(), ["slowdown_p50"])
    assert focus.loc["ephmap_prototype", "slowdown_p50"] == stored.column("slowdown_p50")[0].as_py()
    kept = report.kept_out
    assert kept.points == 4 and kept.stored
    assert kept.swept == ("cpu.costs.ibpb.high=20000.0", "cpu.costs.ibpb.high=5000.0")
    assert str(escape(kept.text())) in index.read_text()
    assert kept.text() in (index.parent / "summary.md").read_text()
    # a what-if reported with its own values: its point is the preset, the others are out
    values = ["cpu.costs.ibpb.high=20000", "mitigations.cr3_noflush=true"]
    cfg = compose_config([*overrides(tmp_path, store, "r2", "report.whole_store=true"), *values])
    presets, kept = store_presets(cfg, values, default_composer())
    assert kept.points == len(grid) + 3
    ids = set(presets.points.column("point_id").to_pylist())
    assert (
        len(ids & set(results_store.read(store, ["point_id"]).column("point_id").to_pylist())) == 1
    )


def test_a_grid_s_swept_flags_and_costs_are_kept_out_of_its_roadmap():
    grid = experiment_grid_from(
        [
            "workload=fio_randread_tmpfs",
            "mitigations=ephmap_prototype,cr3_noflush",
            "mitigations.cr3_noflush=true,false",
            "cpus=1,2",
            "samples=16",
        ]
    )
    kept, out = preset_points(grid)
    assert (len(grid), len(kept), out.points, out.stored, out.swept) == (
        8,
        4,
        4,
        False,
        ("mitigations.cr3_noflush",),
    )
    stages = [kept.profiles[i].mitigations for i in kept.points.column("profile").to_pylist()]
    flags = kept.points.column("cr3_noflush").to_pylist()
    assert (
        sorted(zip(stages, flags, strict=True))
        == [("cr3_noflush", True)] * 2 + [("ephmap_prototype", False)] * 2
    )
    costs = experiment_grid_from(
        ["workload=fio_randread_tmpfs", "mitigations=rfc_v2", "cpu.costs.ibpb.high=5000,20000"]
    )
    kept, out = preset_points(costs)
    assert len(kept) == 0 and out.points == 2
    assert out.swept == ("cpu.costs.ibpb.high=5000.0", "cpu.costs.ibpb.high=20000.0")
    assert "2 grid point(s) kept out of the roadmap" in out.text()


def test_a_focus_row_without_its_final_stage_says_so(partial_report):
    _, report, _ = partial_report
    final = report.stages[-1]
    lacking = replace(report, focus=report.focus[report.focus["stage"] != final])
    context = page_context(lacking, {})
    summary = markdown(lacking, context)
    assert "mostly ." not in summary and "remaining mostly" not in summary
    assert summary.count(f"{final} not stored at the focus point.") == len(context["matrix"])
    html = page(context)
    assert "<small>mostly </small>" not in html and f"{final} not stored here" in html


def test_two_reports_started_in_the_same_second_get_folders_of_their_own(tmp_path):
    cfg = compose_config([])
    now = datetime(2026, 1, 1, 2, 30, 0, 123456, tzinfo=UTC)
    first, second = settings(cfg, now=now), settings(cfg, now=now)
    assert first.folder != second.folder
    assert first.folder.parent == second.folder.parent == REPORTS
    assert first.folder.name.startswith("20260101T023000.123456Z-")
    assert first.fresh and second.fresh
    # a folder the report named itself is claimed exclusively; a chosen report.dir is reused
    mine = replace(first, folder=tmp_path / first.folder.name)
    claim_folder(mine)
    with pytest.raises(ConfigError, match=r"^report\.dir: '.*' already exists"):
        claim_folder(mine)
    chosen = settings(compose_config([f"report.dir={mine.folder}"]))
    assert not chosen.fresh
    claim_folder(chosen)


@pytest.mark.slow
def test_cli_writes_the_whole_store_report_and_rejects_bad_input(tmp_path):
    store = tmp_path / "store"
    write_store(store, ("mitigations=glob(*)", "cpus=1,2", "samples=16"))
    command = [sys.executable, "-c", "from pipeline.cli.report import main; main()"]
    ok = subprocess.run(
        [
            *command,
            "report.whole_store=true",
            f"store.path={store}",
            f"report.dir={tmp_path / 'r'}",
            "samples=16",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().endswith(f"asi-report: report in {tmp_path / 'r' / 'index.html'}")
    assert "18 points in scope" in ok.stderr  # 2 workloads x 9 stages
    bad = subprocess.run(
        [*command, "report.mode=weekly"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == "error: report.mode must be one of adhoc, nightly, got 'weekly'"


def test_a_store_that_does_not_exist_is_one_line_and_no_report(tmp_path, capsys):
    from asi_slowdown.pipeline.cli.report import main

    with pytest.raises(SystemExit) as exit_:
        main([f"store.path={tmp_path / 'nowhere'}", f"report.dir={tmp_path / 'r'}"])
    _, err = capsys.readouterr()
    assert exit_.value.code == 2
    assert (
        err
        == f"error: store.path: no results store at {tmp_path / 'nowhere'} (run asi-sweep first, or point store.path at one)\n"
    )
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- answer first (issue 22)
def test_the_page_opens_with_the_answer_then_the_figures_then_the_stage_table(partial_report):
    index, report, _ = partial_report
    html = index.read_text()
    order = [html.index(f'id="{i}"') for i in ("headline", "figures", "projection", "budget")]
    assert order == sorted(order)
    context = headline(report)
    assert str(escape(context["sentence"])) in html
    assert context["sentence"].startswith(f"After the whole roadmap ({report.stages[-1]}), ")
    rows = {r["workload"]: r for r in context["rows"]}
    assert set(rows) == {"fio_randread_tmpfs", "fork_exec"} and context["cpus"] == [
        "sapphire_rapids"
    ]
    fio = rows["fio_randread_tmpfs"]["cells"][0]
    final = report.focus[
        (report.focus["workload"] == "fio_randread_tmpfs")
        & (report.focus["stage"] == report.stages[-1])
    ].iloc[0]
    assert fio["p50"] == f"{pct(final['slowdown_p50'])} %" and not fio["guest"]
    assert fio["p_meets"] == f"{final['p_meets_target']:.2f}" and "vm" not in fio
    assert (
        html.count('<details class="budget">') == report.budget.groupby(["workload", "cpu"]).ngroups
    )
    summary = (index.parent / "summary.md").read_text()
    assert summary.index("## The answer") < summary.index("## Projection at the focus point")
    # the verdict sentence reads "mitigations=off with", not "mitigations=offwith"
    text = re.sub(r"<[^>]+>", "", html)
    assert "mitigations=offwith" not in text and "against mitigations=off with the ASI" in text


GUEST_GRID = (
    "workload=guest_netperf_rr,kernel_compile",
    "cpu=sapphire_rapids,skylake_l1tf",
    "mitigations=glob(*)",
    "cpus=1",
    "workload.file_size=64K,1G",
    "ephmap.slots=2",
    "samples=16",
)
"""A guest and a host workload on two CPU profiles: 2 x 2 x 8 stages x 2 sizes = 64 points."""


def test_a_guest_is_compared_with_ibpb_on_every_vm_exit_in_the_headline_and_a_figure(tmp_path):
    store = tmp_path / "store"
    write_store(store, GUEST_GRID)
    index, report = build(
        [*overrides(tmp_path, store, "r"), "samples=16"],
        grid_overrides=GUEST_GRID,
        err=lambda _: None,
    )
    context = headline(report)
    rows = {r["workload"]: r for r in context["rows"]}
    assert rows["guest_netperf_rr"]["guest"] and not rows["kernel_compile"]["guest"]
    final = report.focus[report.focus["stage"] == report.stages[-1]].set_index(["workload", "cpu"])
    for cpu, guest in zip(context["cpus"], rows["guest_netperf_rr"]["cells"], strict=True):
        value = final.loc[("guest_netperf_rr", cpu), "slowdown_vs_ibpb_vmexit_p50"]
        assert guest["vm"] == f"{signed(value)} %" and guest["vm_cheaper"] == (value < 0)
    assert all("vm" not in c for c in rows["kernel_compile"]["cells"])
    assert (
        "For guest workloads, ASI is cheaper than IBPB on every VM exit in " in context["sentence"]
    )
    html = index.read_text()
    headline_html = html[html.index('id="headline"') : html.index('id="figures"')]
    assert headline_html.count('<span class="vm ') == 2  # the guest on each CPU profile
    figure = next(f for f in report.figures if f.path.endswith("guest_baselines.png"))
    assert figure.points == 2 and "IBPB on every VM exit" in figure.caption
    assert (index.parent / figure.path).stat().st_size > 5_000


def test_a_store_of_one_stage_says_how_to_sweep_the_others_or_report_what_is_stored(tmp_path):
    """``asi-sweep -m cpus=1,2`` stores the configured stage only; the grid has every stage."""
    store = tmp_path / "store"
    write_store(store, ("cpus=1,2", "samples=16"))
    lines: list[str] = []
    index, report = build(
        overrides(tmp_path, store, "r", "samples=16"),
        grid_overrides=("mitigations=glob(*)", "cpus=1,2", "samples=16"),
        err=lines.append,
    )
    hint = report.hint
    stages = len(report.stages)  # every roadmap stage, at two CPU counts
    assert hint.startswith(
        f"hint: the store holds 2 of the grid's {2 * stages} points ({100 / stages:.1f} %)"
    )
    assert f"no point of {stages - 1} of the {stages} roadmap stages (" in hint
    assert "'mitigations=glob(*)'" in hint and "report.whole_store=true" in hint
    assert f"asi-report: {hint}" in lines
    html = index.read_text()
    assert str(escape(hint)) in html[: html.index('id="figures"')]
    assert hint in (index.parent / "summary.md").read_text()
    full = [*overrides(tmp_path, store, "r2", "samples=16")]
    _, whole = build(
        [*full, "report.whole_store=true"], err=lambda _: None
    )  # what the hint proposes: no grid, no hint
    assert whole.hint is None


# --------------------------------------------------------------------------- figures (issue 22)
def captured(monkeypatch) -> list:
    drawn = []
    monkeypatch.setattr(figs, "_save", lambda fig, folder, name: drawn.append(fig) or name)
    return drawn


def test_waterfall_labels_never_overlap(partial_report, tmp_path, monkeypatch):
    _, report, _ = partial_report
    drawn = captured(monkeypatch)
    for stage in report.stages:  # later stages add components (ephmap_*, invlpg...)
        rows = report.focus[report.focus["stage"] == stage]
        figs.waterfall(rows, stage, "sapphire_rapids", tmp_path)
        fig = drawn[-1]
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                boxes = [
                    t.get_window_extent(renderer) for t in axis.get_ticklabels() if t.get_text()
                ]
                for i, a in enumerate(boxes):
                    for b in boxes[i + 1 :]:
                        assert not a.overlaps(b), (stage, ax.get_title(), a, b)


def test_heatmap_panels_share_one_colour_scale(partial_report, tmp_path, monkeypatch):
    _, report, _ = partial_report
    drawn = captured(monkeypatch)
    final = report.stages[-1]
    cells = report.projection[
        (report.projection["stage"] == final) & (report.projection["cpus"] == 1)
    ]
    figs.size_slot_heatmap(cells, final, "sapphire_rapids", tmp_path)
    panels = [ax for ax in drawn[0].axes if ax.get_title()]  # colour bars have no title
    meshes = [ax.collections[0] for ax in panels]
    assert len(meshes) == 2
    scales = {(m.norm.vmin, m.norm.vmax) for m in meshes}
    assert len(scales) == 1


def _lab(colour) -> np.ndarray:
    """sRGB -> CIELAB (D65), for colour differences as the eye sees them."""
    import matplotlib.colors as mcolors

    rgb = np.array(mcolors.to_rgb(colour))
    rgb = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = (
        np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
        @ rgb
        / np.array([0.95047, 1.0, 1.08883])
    )
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_the_eight_stage_colours_are_told_apart():
    stages = [f"s{i}" for i in range(8)]
    colours = list(figs.stage_palette(stages).values())
    distances = [
        np.linalg.norm(_lab(a) - _lab(b)) for i, a in enumerate(colours) for b in colours[i + 1 :]
    ]
    assert min(distances) > 25  # CIE76: adjacent viridis steps are about 15
    assert len({figs.stage_marker(stages, s) for s in stages}) == 8


def test_trend_lines_on_the_same_values_both_stay_visible(tmp_path, monkeypatch):
    drawn = captured(monkeypatch)
    rows = pd.concat(
        [
            history_rows(
                workload=w, slowdown_p50=0.02, slowdown_p05=0.02, slowdown_p95=0.02
            ).assign(date=night)
            for w in ("a", "b", "c")
            for night in ("2026-01-01", "2026-01-02")
        ],
        ignore_index=True,
    )
    figs.trend(rows, "w", "w", tmp_path)
    lines = [line for line in drawn[0].axes[0].lines if line.get_label() in ("a", "b", "c")]
    assert len(lines) == 3
    styles = {
        (line.get_marker(), str(line.get_linestyle()), line.get_markersize()) for line in lines
    }
    assert len(styles) == 3


# --------------------------------------------------------------------------- nightly (issue 22)
def test_a_second_run_on_the_same_night_replaces_it_and_says_so(tmp_path):
    first, _ = nightly_lines(tmp_path, "2026-01-01", history_rows(slowdown_p50=0.02))
    assert "first night recorded" in first.comparison_note and first.history_replaced is None
    again, lines = nightly_lines(tmp_path, "2026-01-01", history_rows(slowdown_p50=0.03))
    parts = sorted((tmp_path / "date=2026-01-01").glob("part-*.parquet"))
    assert [str(p) for p in parts] == [again.history_part]  # one recording of the night
    assert "first night" not in again.comparison_note
    assert again.history_replaced.startswith("2026-01-01 was recorded before (at ")
    assert "this run replaced that recording" in again.history_replaced
    assert any(line.startswith(f"asi-report: {again.history_replaced}") for line in lines)
    nights = hist.nights(hist.read(tmp_path)[0])
    assert list(nights["slowdown_p50"]) == [0.03]
    later, _ = nightly_lines(tmp_path, "2026-01-02", history_rows(slowdown_p50=0.03))
    assert later.previous_night == "2026-01-01" and later.history_replaced is None


def test_the_aggregation_reads_only_the_columns_the_report_uses(partial_report, monkeypatch):
    """... and the whole store's parts are checked once (they were three times)."""
    import asi_slowdown.pipeline.report.build as report_build
    from asi_slowdown.pipeline.store import frame, readers

    _, report, _ = partial_report
    asked, checks = [], []
    real = report_build.aggregate
    monkeypatch.setattr(
        report_build,
        "aggregate",
        lambda store, scope, metrics=None, checked=None: (
            asked.append(metrics) or real(store, scope, metrics, checked)
        ),
    )
    real_check = readers.check_parts
    for module in (readers, frame):  # every reader of the results store checks through these
        monkeypatch.setattr(module, "check_parts", lambda s: checks.append(s) or real_check(s))
    store = report.aggregates.scan.store
    root = Path(store).parent
    report_build.collect(
        overrides(root, store, "columns", "report.whole_store=true"), err=lambda _: None
    )
    assert len(checks) == 1
    (metrics,) = asked
    unused = {
        c for c in METRIC_COLUMNS if c.startswith(("exit_rate_", "default_ns_", "baseline_ns"))
    }
    assert unused and not unused & set(metrics)
    assert {"slowdown_vs_ibpb_vmexit_p50", "vm_exits_per_op", "t_native_mean"} <= set(metrics)


def test_asi_report_help_lists_every_report_option(capsys):
    from asi_slowdown.pipeline.cli.report import main

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    out, _ = capsys.readouterr()
    assert exit_.value.code == 0

    def leaves(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from leaves(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    report = OmegaConf.to_container(compose_config([]).report)
    for name, value in leaves(report, "report."):
        shown = (
            "null" if value is None else str(value).lower() if isinstance(value, bool) else value
        )
        assert f"  {name}={shown}" in out, name


def test_the_cube_without_a_groupby_is_the_groupby_s_cube(partial_report):
    """One point per cell: the rows themselves; several (two seeds): averaged as before."""
    from asi_slowdown.pipeline.report import aggregate as agg

    _, report, _ = partial_report
    metrics = ("slowdown_p50", "slowdown_p95", "extra_ns_ibpb")
    rows = results_store.read(report.aggregates.scan.store, [*CUBE_KEYS, *metrics]).to_pandas()
    for frame in (rows, pd.concat([rows, rows.assign(slowdown_p50=rows["slowdown_p50"] + 1)])):
        expected = agg._flatten(agg.cube(frame, metrics), means_by_name=True).sort_values(
            list(CUBE_KEYS), ignore_index=True
        )
        pd.testing.assert_frame_equal(agg.cube_of(frame, metrics), expected)


def test_the_report_shows_the_model_against_the_public_record(partial_report):
    """Issue 18: the validation table and its figure (predicted vs published) are in the page,
    from asi-validate's shipped score when it is of this model."""
    index, report, _ = partial_report
    html = index.read_text()
    assert '<section id="validation">' in html
    cases = report.validation["score"]["cases_scored"]
    assert cases and all(f"<code>{c['name']}</code>" in html for c in cases)
    assert "figures/validation.png" in html
    assert report.validation["source"].startswith("asi-validate")
    assert report.validation["flags"] == []  # not nightly: nothing compared


def test_the_nightly_report_flags_a_case_that_left_its_band(tmp_path, monkeypatch):
    import asi_slowdown.pipeline.report.collection as collection

    night = {
        "name": "posting_fio",
        "quantity": "throughput_loss",
        "published": 0.13,
        "p05": 0.09,
        "p50": 0.15,
        "p95": 0.23,
        "inside_band": True,
    }
    later = night | {"p05": 0.15, "p50": 0.2, "p95": 0.3, "inside_band": False}
    scores = iter([{"cases_scored": [night]}, {"cases_scored": [later]}])
    monkeypatch.setattr(collection, "shipped_or_live", lambda _: (next(scores), "test"))
    lines: list[str] = []
    for date in ("2026-01-01", "2026-01-02"):
        stub, _ = nightly_stub(tmp_path, date, history_rows(slowdown_p50=0.02))
        result = collection.validation(stub, None, lines.append)
    assert result["flags"] and result["flags"][0].startswith("posting_fio left its band")
    assert any(line.startswith("warning: posting_fio left its band") for line in lines)
    assert sorted(p.name for p in (tmp_path / "validation").glob("*.json")) == [
        "2026-01-01.json",
        "2026-01-02.json",
    ]
