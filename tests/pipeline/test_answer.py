"""asi-answer: the published anchor, the roadmap table and its JSON form."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from model.costs import COST_NAMES
from pipeline.answer import JSON_KEYS, evaluate_stages, run, verdict
from pipeline.compose import compose_config, cost_specs, costs_for

REQUIRED_JSON_KEYS = {
    "stage",
    "throughput_loss_p05",
    "throughput_loss_p50",
    "throughput_loss_p95",
    "slowdown_p05",
    "slowdown_p50",
    "slowdown_p95",
    "exits_per_op",
}


def test_rfc_v2_anchor_holds_without_tuning():
    """Published: fio 4 KiB randread on tmpfs lost ~70 % of throughput under RFC v2."""
    table, _ = evaluate_stages(["workload=fio_randread_tmpfs", "cpu=sapphire_rapids", "cpus=1"])
    rfc_v2 = table.set_index("stage").loc["rfc_v2"]
    assert 0.60 <= rfc_v2.throughput_loss_p50 <= 0.80
    assert rfc_v2.exits_page_cache == 1.0


def test_anchor_costs_stay_inside_their_documented_ranges():
    cfg = compose_config(["cpu=sapphire_rapids"])
    draws = costs_for(cfg)
    for name, spec in cost_specs(cfg).items():
        low, high = spec.ppf(np.array([0.0])), spec.ppf(np.array([1.0 - 1e-16]))
        if spec.unit == "cycles":
            low, high = low / cfg.cpu.ghz, high / cfg.cpu.ghz
        assert low[0] * (1 - 1e-12) <= draws[name].min() and draws[name].max() <= high[0] * (
            1 + 1e-12
        ), name


def test_json_has_one_object_per_stage_in_roadmap_order():
    out = json.loads(run(["answer.format=json", "samples=128"]))
    stages = list(compose_config([]).roadmap.stages)
    assert [r["stage"] for r in out] == stages
    for record in out:
        assert REQUIRED_JSON_KEYS <= set(record) and set(record) == set(JSON_KEYS)
        assert (
            record["throughput_loss_p05"]
            <= record["throughput_loss_p50"]
            <= record["throughput_loss_p95"]
        )


def test_fio_tmpfs_improves_or_holds_at_every_stage_for_every_sample():
    """Common random numbers make stages paired: no sample may get worse on this workload."""
    table, _ = evaluate_stages(["samples=256"])
    assert (np.diff(table["slowdown_p50"]) <= 1e-12).all()
    assert (np.diff(table["exits_per_op"]) <= 1e-12).all()


def test_table_names_stages_verdicts_and_the_answer():
    text = run(["samples=128", "cpu=skylake_l1tf"])
    for stage in compose_config([]).roadmap.stages:
        assert stage in text
    assert "cpu=skylake_l1tf" in text
    assert "Long term (after metadata_mapped)" in text


@pytest.mark.parametrize(
    ("slowdown", "expected"), [(0.0, "meets 1 % target"), (0.02, "under 5 %"), (0.3, "over 5 %")]
)
def test_verdict(slowdown, expected):
    assert verdict(slowdown) == expected


def test_a_flag_override_applies_to_every_stage():
    table, _ = evaluate_stages(
        ["mitigations.metadata_mapped=true", "workload=fio_seqread_ext4", "samples=64"]
    )
    assert (table["exits_metadata"] == 0).all()


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-c", "from pipeline.answer import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_cli_prints_json_and_bad_input_exits_2_with_one_line():
    ok = run_cli("answer.format=json", "samples=64")
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)) == 7
    bad = run_cli("cpus=0")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: cpus must be an integer >= 1, got 0"
    assert bad.stdout == ""


def test_costs_cover_the_model():
    assert set(costs_for(compose_config([]), samples=4)) == set(COST_NAMES)
