"""asi-report: the report folder, coverage of a partial store, nightly history and comparison."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

from pipeline.configuration.compose import compose_config
from pipeline.configuration.errors import ConfigError
from pipeline.projection import history as hist
from pipeline.projection.verdicts import crossing
from pipeline.report.build import build, settings

from .report_fixtures import SMALL_GRID, SMALL_SAMPLES, write_store

FIGURES = ("loss_vs_cpus", "size_slot_heatmap", "waterfall", "tornado", "trend")


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
    for stage in report.stages:
        assert f"<th>{stage}</th>" in html
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
    for name in ("projection_focus", "scenarios", "stage_summary", "coverage", "sensitivity"):
        assert (folder / "data" / f"{name}.csv").is_file()


def test_a_partial_store_reports_its_coverage(partial_report):
    index, report, grid = partial_report
    stored = int(report.coverage["stored_points"].sum())
    assert report.grid_points == len(grid) == 192
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


def test_sensitivity_recomputes_the_stored_median_and_ranks_costs(partial_report):
    _, report, _ = partial_report
    sens = report.sensitivity
    assert not sens.empty and (sens["matches"] == 1.0).all()
    assert (sens["samples"] == SMALL_SAMPLES).all()
    fio = sens[sens["workload"] == "fio_randread_tmpfs"]
    assert fio.iloc[0]["cost"] == "ephmap_pte"  # what the remaining fio slowdown is made of
    assert fio.iloc[0]["spearman"] > 0.5 and fio.iloc[0]["high"] > fio.iloc[0]["low"]
    assert np.all(np.diff(np.abs(fio["spearman"].to_numpy())) <= 1e-12)


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
    build(
        overrides(tmp_path, first, "night1", *nightly, "report.date=2026-01-01"),
        grid_overrides=SMALL_GRID,
        **quiet,
    )
    index, report = build(
        overrides(tmp_path, second, "night2", *nightly, "report.date=2026-01-02"),
        grid_overrides=recalibrated,
        **quiet,
    )
    assert sorted(p.name for p in (tmp_path / "history").iterdir()) == [
        "date=2026-01-01",
        "date=2026-01-02",
    ]
    assert report.previous_night == "2026-01-01"
    compared = report.comparison.set_index(["workload", "stage"])
    moved = compared.loc[("fio_randread_tmpfs", "metadata_mapped")]
    assert moved["moved"] and moved["status"] in ("moved", "verdict changed")
    assert moved["delta_p50"] > 0.005
    steady = compared.loc[("fio_randread_tmpfs", "rfc_v2")]  # no ephmap: ephmap_pte is unused
    assert not steady["moved"] and steady["status"] == "steady" and steady["delta_p50"] == 0
    html = index.read_text()
    assert "Compared with the previous night (2026-01-01)" in html and 'id="moved"' in html
    trend = next(f for f in report.figures if f.path.endswith("trend.png"))
    assert "2 night(s)" in trend.caption
    summary = (index.parent / "summary.md").read_text()
    assert "## Compared with 2026-01-01" in summary


def test_history_rerun_of_a_night_keeps_the_latest(tmp_path):
    rows = pd.DataFrame(
        {
            **{k: ["w"] if k in ("workload", "cpu", "stage") else [1] for k in hist.KEYS},
            **{
                v: [0.02] if v.startswith(("slowdown", "throughput")) else ["x"]
                for v in hist.VALUES
            },
        }
    ).assign(stage_index=0)
    hist.record(tmp_path, rows, "2026-01-01")
    hist.record(tmp_path, rows.assign(slowdown_p50=0.03), "2026-01-01")
    hist.record(tmp_path, rows.assign(slowdown_p50=0.10, verdict="y"), "2026-01-02")
    nights = hist.nights(hist.read(tmp_path))
    assert list(nights["date"]) == ["2026-01-01", "2026-01-02"]
    assert nights.iloc[0]["slowdown_p50"] == 0.03
    assert hist.previous_night(nights, "2026-01-02") == "2026-01-01"
    assert hist.previous_night(nights, "2026-01-01") is None
    compared = hist.compare(
        nights[nights.date == "2026-01-02"], nights[nights.date == "2026-01-01"], 0.05
    )
    assert compared.iloc[0]["status"] == "verdict changed"  # moved 7 points and verdict changed


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
    assert "16 points in scope" in ok.stderr
    bad = subprocess.run(
        [*command, "report.mode=weekly"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == "error: report.mode must be one of adhoc, nightly, got 'weekly'"


def test_a_store_that_does_not_exist_is_one_line_and_no_report(tmp_path, capsys):
    from pipeline.cli.report import main

    with pytest.raises(SystemExit) as exit_:
        main([f"store.path={tmp_path / 'nowhere'}", f"report.dir={tmp_path / 'r'}"])
    _, err = capsys.readouterr()
    assert exit_.value.code == 2
    assert (
        err
        == f"error: store.path: no results store at {tmp_path / 'nowhere'} (run asi-sweep first, or point store.path at one)\n"
    )
    assert not (tmp_path / "r").exists()
