"""asi-validate: the public record as cases, each run as it was run, scored in and out of sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from asi_slowdown.model.costs import COST_NAMES, CostSpec
from asi_slowdown.model.evaluate import sample_breakdown
from asi_slowdown.pipeline.calibrate.cases import (
    Benchmark,
    Case,
    CaseSet,
    CpuCount,
    Phase,
    read_cases,
)
from asi_slowdown.pipeline.calibrate.measurements import load_inputs
from asi_slowdown.pipeline.calibrate.run import run as calibrate
from asi_slowdown.pipeline.cli.validate import main
from asi_slowdown.pipeline.configuration.compose import CONF_DIR, composer
from asi_slowdown.pipeline.configuration.errors import ConfigError
from asi_slowdown.pipeline.projection.answer import run as answer
from asi_slowdown.pipeline.validate import score as score_module
from asi_slowdown.pipeline.validate.predict import (
    Profile,
    case_points,
    predict,
    quantity_samples,
    run_times,
)
from asi_slowdown.pipeline.validate.run import run as validate
from asi_slowdown.pipeline.validate.score import calibrate as calibrate_cases
from asi_slowdown.pipeline.validate.score import score

SHIPPED = read_cases()


@pytest.fixture(scope="module")
def in_sample():
    """The shipped cases under the shipped profiles, in sample (no refit)."""
    text = validate(
        [
            "validate.format=json",
            "validate.leave_one_out=false",
            "validate.figure=false",
            "validate.progress=false",
        ]
    )
    return json.loads(text)


@pytest.mark.parametrize("case", SHIPPED.cases, ids=lambda c: c.name)
def test_every_case_composes(case):
    cp = case_points(case, composer())
    rows = len(case.benchmark.phases) * len(case.cpus.values)
    sides = 2 if case.reference_overrides is not None else 1
    assert cp.columns["cpus"].shape == (rows * sides,)
    assert cp.profile.name == case.cpu


KNOWN_MISSES = {
    "posting_guest_kernel_build": "the model gives ~0.4 % against the published 5.8 %: the host's "
    "exit rates around a guest are ~10x short of what the run implies (docs/mechanism.md)",
}
"""Cases the shipped model does not reproduce: findings, kept visible as strict xfails, so a
fix that brings one into its band flips its test."""


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(c.name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[c.name]))
        if c.name in KNOWN_MISSES
        else c.name
        for c in SHIPPED.cases
    ],
)
def test_each_shipped_case_is_inside_its_band_under_the_shipped_profiles(in_sample, name):
    (case,) = [c for c in in_sample["cases"] if c["name"] == name]
    assert case["inside_band"], f"{case['published']} not in [{case['p05']:.4g}, {case['p95']:.4g}]"


def test_the_json_holds_what_the_issue_asks(in_sample):
    keys = {
        "name",
        "source",
        "quantity",
        "published",
        "p05",
        "p50",
        "p95",
        "inside_band",
        "loo_p50",
        "loo_error",
    }
    assert keys <= set(in_sample["cases"][0])
    assert {"cases", "coverage", "mean_abs_loo_error", "profile", "model_version"} <= set(in_sample)
    for c in in_sample["cases"]:
        assert c["p05"] <= c["p50"] <= c["p95"]
        assert c["loo_p50"] is None  # leave-one-out was switched off


def test_the_published_build_is_modelled_as_it_was_run():
    """The posting's build: four phases on tmpfs, make's busy CPUs uncertain. The old strict
    xfail (kernel_compile on ext4 against the published number) is gone because the run is
    modelled as it was run, not because a test changed."""
    case = SHIPPED.by_name()["posting_kernel_build"]
    assert [p.workload for p in case.benchmark.phases] == [
        "kbuild_untar_tmpfs",
        "kbuild_tinyconfig_tmpfs",
        "kbuild_vmlinux_tmpfs",
        "kbuild_rm_tmpfs",
    ]
    assert len(case.cpus.values) > 1  # the machine's count is not published
    cp = case_points(case, composer())
    costs = cp.profile.costs(256, 0)
    values = quantity_samples(cp, costs)
    assert values.shape == (len(case.cpus.values), 256)
    # more busy CPUs: make's share of the native wall time shrinks
    breakdown = sample_breakdown(cp.columns, costs)
    total = run_times(cp, breakdown, "native", "measured").mean(axis=1)
    make = cp.scale[2] * breakdown["native"][cp.rows["measured"][2]].mean(axis=1)
    share = make / total
    assert np.all(np.diff(share) < 0) and 0.3 < share[len(share) // 2] < 0.8


def test_a_mixture_over_cpu_counts_weighs_each_count(monkeypatch):
    """Hand-computed: two CPU counts with weights 3:1 and a one-sample quantity per count;
    the mean is the weighted mean."""
    case = SHIPPED.by_name()["posting_kernel_build"]
    cp = case_points(case, composer())
    cp.probabilities = np.array([0.0] * (len(cp.probabilities) - 2) + [0.75, 0.25])
    fixed = np.array([[0.0]] * (len(cp.probabilities) - 2) + [[0.02], [0.06]])
    monkeypatch.setattr("asi_slowdown.pipeline.validate.predict.quantity_samples", lambda *_: fixed)
    assert predict(cp, {}).mean == pytest.approx(0.75 * 0.02 + 0.25 * 0.06)


# --------------------------------------------------------------------------- leave one out
def _synthetic_set(truth: dict[str, float]):
    """Cases made by the model itself at known costs: fio runs at RFC v2 with IBPB on and off
    and at two read sizes, published as the model predicts them with every cost fixed (at
    ``truth``, else at its prior median). Each case's costs are pinned by the others: leave
    one out and the rest still separate IBPB from the rest of the exit pair."""
    c = composer()
    fio = Benchmark("fio", (Phase("fio_randread_tmpfs"),), CpuCount((1,), (1.0,)))

    def case(name, overrides):
        return Case(
            name,
            fio,
            "sapphire_rapids",
            "rfc_v2",
            CpuCount((1,), (1.0,)),
            "throughput_loss",
            0.5,
            0.01,
            "synthetic",
            "calibration",
            tuple(overrides),
        )

    cases = [
        case("ibpb_4k", []),
        case("no_ibpb_4k", ["cpu.ibpb=false"]),
        case("ibpb_16k", ["workload.io_size=16K"]),
        case("no_ibpb_16k", ["cpu.ibpb=false", "workload.io_size=16K"]),
    ]
    points = {x.name: case_points(x, c) for x in cases}
    prior = next(iter(points.values())).profile
    true_specs = {
        name: CostSpec("fixed", value=truth.get(name, spec.median()), unit=spec.unit)
        for name, spec in prior.specs.items()
    }
    true_costs = Profile("truth", true_specs, prior.ghz).costs(1, 0)
    published = {n: float(quantity_samples(cp, true_costs)[0, 0]) for n, cp in points.items()}
    cases = [
        Case(
            x.name,
            x.benchmark,
            x.cpu,
            x.stage,
            x.cpus,
            x.quantity,
            published[x.name],
            x.spread,
            x.source,
            x.role,
            x.overrides,
        )
        for x in cases
    ]
    points = {x.name: case_points(x, c) for x in cases}
    return CaseSet(tuple(cases)), points, prior


TRUTH = {"ibpb": 7000.0, "page_walk": 28.0}
"""Known costs inside the priors' ranges [cycles], away from their medians (3,162 and 45)."""


def _loo_errors(monkeypatch=None, mutate=False):
    case_set, points, prior = _synthetic_set(TRUTH)
    if mutate:  # a fit that ignores its data: every observation out of the fit
        real = score_module.observation
        monkeypatch.setattr(
            score_module,
            "observation",
            lambda case: type(real(case))(**{**real(case).__dict__, "fitted": False}),
        )
    result = score(case_set, points, {"sapphire_rapids": prior}, samples=128, seed=0, splits=False)
    return {s.case.name: abs(s.loo_error) for s in result.cases}, result


def test_leave_one_out_recovers_a_synthetic_case_set_made_from_known_costs():
    errors, result = _loo_errors()
    prior_errors = {s.case.name: abs(s.error) for s in result.cases}
    assert max(errors.values()) < 0.02, errors  # each held-out loss within 2 pp
    assert sum(errors.values()) < 0.5 * sum(prior_errors.values())


def test_a_fit_that_ignores_its_data_fails_the_synthetic_recovery(monkeypatch):
    """The test of the test: the same check with the data left out of the fit fails."""
    errors, _ = _loo_errors(monkeypatch, mutate=True)
    assert not max(errors.values()) < 0.02


def test_calibrating_on_cases_moves_the_costs_towards_the_truth():
    case_set, points, prior = _synthetic_set(TRUTH)
    fitted, result = calibrate_cases(list(points.values()), prior, samples=256, seed=0)
    ibpb_prior = np.log(prior.specs["ibpb"].median())
    ibpb_fit = result.costs["ibpb"].log_median
    assert abs(ibpb_fit - np.log(TRUTH["ibpb"])) < abs(ibpb_prior - np.log(TRUTH["ibpb"]))


# --------------------------------------------------------------------------- paired draws
def test_a_calibration_that_constrains_nothing_leaves_the_answer_bit_identical(tmp_path):
    """A group whose only case is a check (role validation: reported, not fitted) constrains
    no cost: the written profile draws exactly the prior's costs, so asi-answer prints the
    same numbers (common random numbers keyed by cost, not by profile)."""
    group = tmp_path / "validation" / "checks.yaml"
    group.parent.mkdir()
    group.write_text(
        "cases:\n"
        "  - {name: a_check, workload: fio_randread_tmpfs, cpu: sapphire_rapids,"
        " stage: rfc_v2, cpus: 1, quantity: throughput_loss, published: 0.7, spread: 0.02,"
        " source: test, role: validation}\n"
    )
    outcome = calibrate(
        [
            f"measurements={group}",
            "calibrate.name=nothing_moved",
            f"calibrate.conf_dir={tmp_path / 'conf'}",
            f"calibrate.report_dir={tmp_path / 'rep'}",
        ]
    )
    assert not any(c.constrained for c in outcome.result.costs.values())
    search = f"hydra.searchpath=[file://{tmp_path / 'conf'}]"
    prior = answer([search, "answer.format=json", "cpu=sapphire_rapids", "answer.source=model"])
    calibrated = answer([search, "answer.format=json", "cpu=nothing_moved", "answer.source=model"])
    assert json.loads(prior)["stages"] == json.loads(calibrated)["stages"]


# --------------------------------------------------------------------------- bad input
def _write(root: Path, text: str) -> Path:
    path = root / "validation" / "bad.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cases: [{name: x}]\n", "cpu is required"),
        (
            "cases:\n  - {name: x, workload: w, cpu: c, stage: s, cpus: 1, quantity: speed,"
            " published: 1, spread: 0.1, source: s, role: validation}\n",
            "unknown quantity 'speed'",
        ),
        (
            "cases:\n  - {name: x, workload: w, cpu: c, stage: s, cpus: 0, quantity: slowdown,"
            " published: 1, spread: 0.1, source: s, role: validation}\n",
            "cpus must be an integer",
        ),
        (
            "cases:\n  - {name: x, workload: w, cpu: c, stage: s, cpus: 1, quantity: slowdown,"
            " published: 1, spread: 0.1, source: s, role: maybe}\n",
            "role must be one of",
        ),
        (
            "cases:\n  - {name: x, benchmark: nope, cpu: c, stage: s, cpus: 1, quantity: slowdown,"
            " published: 1, spread: 0.1, source: s, role: validation}\n",
            "unknown benchmark 'nope'",
        ),
        (
            "cases:\n  - {name: rfc_v2_fio, workload: w, cpu: c, stage: s, cpus: 1, quantity: slowdown,"
            " published: 1, spread: 0.1, source: s, role: validation}\n",
            "defined twice",
        ),
        ("cases: [{name: x, colour: red}]\n", "colour: unknown key"),
    ],
)
def test_bad_cases_fail_in_one_line_naming_the_file_and_field(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        read_cases([CONF_DIR, tmp_path])
    assert message in str(err.value) and "\n" not in str(err.value)
    if "twice" not in message:
        assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate.format=xml"], "validate.format must be one of table, json"),
        (["validate.cases=[nope]"], "validate.cases: unknown case 'nope'"),
    ],
)
def test_command_line_errors_exit_2_with_one_line(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_the_shipped_groups_calibrate_through_the_same_format():
    """One format: asi-calibrate's shipped inputs are the validation groups themselves."""
    names = {p.label for p in load_inputs("asi_exit_trace", CONF_DIR).published}
    assert names == {c.name for c in SHIPPED.cases if c.group == "asi_exit_trace"}
    assert not (CONF_DIR / "measurements").exists()


def test_costs_of_every_profile_are_named_as_the_model_names_them():
    assert set(case_points(SHIPPED.cases[0], composer()).profile.specs) == set(COST_NAMES)


# --------------------------------------------------------------------------- nightly flags
def test_a_case_that_left_its_band_since_the_previous_night_is_flagged(tmp_path):
    from asi_slowdown.pipeline.validate.run import left_their_band, previous_night, save_night

    inside = {
        "name": "c",
        "published": 0.07,
        "p05": 0.05,
        "p50": 0.08,
        "p95": 0.11,
        "inside_band": True,
    }
    outside = inside | {"p05": 0.09, "p50": 0.12, "p95": 0.16, "inside_band": False}
    save_night(tmp_path, "2026-12-01", {"cases_scored": [inside]})
    (tmp_path / "validation" / "2026-12-02.json").write_text("{trunc")  # a damaged night
    before = previous_night(tmp_path, "2026-12-03")
    assert before == {"cases_scored": [inside]}
    (flag,) = left_their_band(before, {"cases_scored": [outside]})
    assert flag.startswith("c left its band") and "0.12" in flag
    assert left_their_band(before, {"cases_scored": [inside]}) == []
    assert left_their_band(None, {"cases_scored": [outside]}) == []
