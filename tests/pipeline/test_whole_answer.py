"""asi-answer's whole answer: confidence, what it would take, and the kernel's defaults."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from asi_slowdown.model.evaluate import TARGET, THRESHOLD, sample_times
from asi_slowdown.pipeline.configuration.compose import compose_config
from asi_slowdown.pipeline.configuration.profile import model_profile
from asi_slowdown.pipeline.projection.answer import evaluate_stages, run, stage_points


def stage_samples(overrides):
    cfg = compose_config(overrides)
    points = stage_points(cfg, overrides)
    columns = {k: np.array([p[k] for p in points]) for k in points[0]}
    return sample_times(columns, model_profile(cfg).costs())


def test_json_gives_the_confidence_and_the_comparison_per_stage():
    overrides = ["samples=128", "workload=kernel_compile"]
    records = json.loads(run([*overrides, "answer.format=json"]))["stages"]
    t_native, t_asi = stage_samples(overrides)
    slowdown = t_asi / t_native - 1
    for i, record in enumerate(records):
        for key in ("p_meets_target", "p_under_threshold", "p_beats_default"):
            assert 0.0 <= record[key] <= 1.0
        for q in ("p05", "p50", "p95"):
            assert f"slowdown_vs_default_{q}" in record
        # the probabilities are a direct count over the paired samples
        assert record["p_meets_target"] == np.mean(slowdown[i] < TARGET)
        assert record["p_under_threshold"] == np.mean(slowdown[i] < THRESHOLD)


def test_pti_is_priced_on_a_meltdown_affected_cpu_only():
    skylake, _ = evaluate_stages(["samples=64", "cpu=skylake_l1tf"])
    spr, _ = evaluate_stages(["samples=64", "cpu=sapphire_rapids"])
    assert (skylake["default_ns_pti"] > 0).all() and (spr["default_ns_pti"] == 0).all()
    # the default costs time on Skylake: vs the default ASI looks better than vs off
    assert (skylake["slowdown_vs_default_p50"] < skylake["slowdown_p50"]).all()
    # ... and on Sapphire Rapids only the SWAPGS fence remains: nearly the same comparison
    np.testing.assert_allclose(spr["slowdown_vs_default_p50"], spr["slowdown_p50"], rtol=0.02)


def test_the_table_says_what_the_confidence_is_conditional_on_and_when_asi_beats_the_default():
    text = run(["samples=128", "cpu=skylake_l1tf"])
    assert "P(<1 %)" in text and "vs default % p50" in text
    assert "conditional on the priors of cpu=skylake_l1tf" in text
    assert "ASI is faster than the default from multi_slot on" in text
    text = run(["samples=128", "cpu=sapphire_rapids"])
    assert "ASI is not faster than the default at any stage" in text


def test_a_calibrated_profile_says_so(tmp_path):
    cfg = compose_config(["samples=64", "+cpu.provenance={date: 2026-12-01, base_profile: x}"])
    from asi_slowdown.pipeline.projection.answer import conditional_on

    assert conditional_on(cfg).startswith("the posterior of cpu=sapphire_rapids, calibrated")


def test_baseline_kernel_default_makes_the_verdict_read_the_comparison():
    off, _ = evaluate_stages(["samples=64", "cpu=skylake_l1tf"])
    default, _ = evaluate_stages(["samples=64", "cpu=skylake_l1tf", "baseline=kernel_default"])
    assert list(off["verdict"]) != list(default["verdict"])
    assert default["verdict"].iloc[-1] == "meets 1 % target"  # faster than the default


def test_the_budget_names_what_each_cost_would_need():
    text = run(["samples=128", "workload=fork_exec", "answer.budget=true"])
    assert "What it would take for fork_exec on sapphire_rapids" in text
    table = text.split("What it would take for", 1)[1].split("\n\n", 1)[1].splitlines()[2:]
    forms = r"(already met|not reachable in range|<= [\d.,e+]+ ns \(\d+ %\)|each at <= \d+ %)"
    for line in table:
        assert re.search(rf"{forms}\s+{forms}$", line), line
    assert table[-1].split()[0].count("+") == 1  # the two largest, moved together
    records = json.loads(
        run(["samples=128", "workload=fork_exec", "answer.budget=true", "answer.format=json"])
    )["stages"]
    budget = records[-1]["budget"]
    assert budget[-1]["cost"].count("+") == 1  # the pair of the two largest, moved together
    assert all(set(b) >= {"cost", "median_ns", "p50_factor", "confident_factor"} for b in budget)


@pytest.mark.parametrize("bad", ["answer.budget=maybe", "baseline=nope"])
def test_bad_budget_or_baseline_is_one_line(bad, capsys):
    from asi_slowdown.pipeline.cli.answer import main

    with pytest.raises(SystemExit) as exit_info:
        main([bad])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
