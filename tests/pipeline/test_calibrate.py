"""asi-calibrate: the RFC v2 anchor, fio manifests, the fit itself, and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from model.costs import CostSpec
from model.evaluate import evaluate
from pipeline.calibrate.fio import read_fio
from pipeline.calibrate.fit import (
    LINKED_RHO,
    RHO_DIGITS,
    LogPrior,
    Observation,
    Problem,
    fit,
    lognormal_spec,
)
from pipeline.calibrate.measurements import load_inputs
from pipeline.calibrate.run import run
from pipeline.cli.calibrate import main
from pipeline.configuration.compose import (
    CONF_DIR,
    compose_config,
    cost_specs,
    costs_for,
    point_from_config,
)
from pipeline.configuration.errors import ConfigError
from pipeline.projection.answer import run as answer

DATA = Path(__file__).resolve().parent.parent / "data" / "fio"
ANCHOR_LOSS = 0.70


def calibrate(tmp_path: Path, measurements, name: str, *extra: str):
    return run(
        [
            f"measurements={measurements}",
            f"calibrate.name={name}",
            f"calibrate.conf_dir={tmp_path / 'conf'}",
            f"calibrate.report_dir={tmp_path / 'reports'}",
            *extra,
        ]
    )


def compose_calibrated(conf: Path, *overrides: str):
    return compose_config([f"hydra.searchpath=[file://{conf}]", *overrides])


def predict(cfg) -> dict:
    result = evaluate(point_from_config(cfg), costs_for(cfg))
    return {k: float(v[0]) for k, v in result.items()}


# --------------------------------------------------------------------------- the RFC v2 anchor
@pytest.fixture(scope="module")
def anchor(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("anchor")
    outcome = calibrate(tmp, "rfc_v2_anchor", "sr_anchor")
    return tmp / "conf", outcome


def test_anchor_profile_reproduces_the_published_loss(anchor):
    """Acceptance: RFC v2, fio randread on tmpfs, Sapphire Rapids, 1 CPU: loss 0.70 +- 0.02."""
    conf, _ = anchor
    cfg = compose_calibrated(
        conf, "cpu=sr_anchor", "workload=fio_randread_tmpfs", "mitigations=rfc_v2", "cpus=1"
    )
    assert cfg.cpu.name == "sr_anchor"
    assert abs(predict(cfg)["throughput_loss_p50"] - ANCHOR_LOSS) <= 0.02


def test_calibration_does_work_the_prior_alone_would_not():
    """A target well away from the prior's prediction is met too: the fit, not luck, hits it."""
    cfg = compose_config(["workload=fio_randread_tmpfs", "mitigations=rfc_v2", "cpus=1"])
    prior = predict(cfg)["throughput_loss_p50"]
    target = prior - 0.12
    problem = Problem(
        [Observation("target", "throughput_loss", target, 0.01, point_from_config(cfg))],
        cost_specs(cfg),
        float(cfg.cpu.ghz),
    )
    result = fit(problem, samples=256, seed=0, profile="far")
    assert abs(result.predictions[0] - target) <= 0.02
    assert result.costs["page_walk"].shift < 0  # cheaper exits explain a smaller loss


def test_anchor_report_says_which_costs_moved(anchor):
    conf, outcome = anchor
    report = outcome.report_path.read_text()
    moved_line = next(line for line in report.splitlines() if "Moved by the data" in line)
    cfg = compose_calibrated(conf, "cpu=sr_anchor")
    moved = [n for n, c in cfg.cpu.provenance.costs.items() if "moved" in c.status]
    assert moved, "the anchor should move at least one cost"
    for name in moved:
        assert name in moved_line
    # What an rfc_v2 exit costs on Sapphire Rapids: the expensive parts carry the fit.
    assert {"page_walk", "ibpb"} & set(moved)
    for name in cfg.cpu.provenance.kept_at_prior:
        assert name not in moved_line
    assert "| published fio_randread_tmpfs/rfc_v2/1cpu" in report


def test_calibrated_profile_validates_and_keeps_unconstrained_priors(anchor):
    conf, outcome = anchor
    cfg = compose_calibrated(conf, "cpu=sr_anchor")  # composition checks the CpuConf schema
    base = compose_config(["cpu=sapphire_rapids"])
    calibrated, prior = cost_specs(cfg), cost_specs(base)
    kept = set(cfg.cpu.provenance.kept_at_prior)
    assert "l1d_flush" in kept  # Sapphire Rapids has no L1TF: the data cannot see it
    for name in kept:
        assert calibrated[name] == prior[name]
    for name in set(calibrated) - kept:
        assert calibrated[name].dist == "lognormal"
        assert prior[name].low <= calibrated[name].low <= calibrated[name].high <= prior[name].high
        assert cfg.cpu.costs[name].source.startswith("asi-calibrate:")
    provenance = cfg.cpu.provenance
    assert provenance.base_profile == "sapphire_rapids"
    assert [i.kind for i in provenance.inputs] == ["published"]
    assert len(provenance.inputs[0].sha256) == 64
    assert provenance.residuals[0].measured == ANCHOR_LOSS
    assert outcome.profile_path == conf / "cpu" / "sr_anchor.yaml"


def test_written_profile_reproduces_the_fit_exactly(anchor):
    """The fit prices the profile it writes, with the draws asi-answer will use."""
    _, outcome = anchor
    fitted = outcome.result.predictions[0]
    composed = outcome.verified[0]["throughput_loss_p50"]
    assert composed == pytest.approx(fitted, abs=1e-4)
    assert "Warning" not in outcome.report


def _loss_spread(cfg) -> tuple[float, float, float]:
    out = predict(cfg)
    return tuple(out[f"throughput_loss_{q}"] for q in ("p05", "p50", "p95"))


def test_correlations_narrow_the_anchor_prediction(anchor):
    """Acceptance: with the fitted correlations the anchor's p05-p95 is less than half as wide
    as with the same marginals drawn independently, and its p50 stays at 0.70 +- 0.02."""
    conf, outcome = anchor
    point = ("workload=fio_randread_tmpfs", "mitigations=rfc_v2", "cpus=1")
    cfg = compose_calibrated(conf, "cpu=sr_anchor", *point)
    pairs = {(c.a, c.b): c.rho for c in cfg.cpu.correlations}
    assert pairs[("page_walk", "ibpb")] < -0.5  # the anchor pins down their sum
    low, p50, high = _loss_spread(cfg)
    ind_low, _, ind_high = _loss_spread(
        compose_calibrated(conf, "cpu=sr_anchor", *point, "cpu.correlations=[]")
    )
    assert high - low < 0.5 * (ind_high - ind_low)
    assert abs(p50 - ANCHOR_LOSS) <= 0.02
    verified = outcome.verified[0]
    assert verified["throughput_loss_p05_independent"] == pytest.approx(ind_low)
    assert verified["throughput_loss_p95"] - verified["throughput_loss_p05"] == pytest.approx(
        high - low
    )
    report = outcome.report_path.read_text()
    assert "Correlations written to the profile" in report
    assert f"{ind_low:.3f}-{ind_high:.3f}" in report


def test_only_constrained_costs_and_their_links_are_correlated(anchor):
    _, outcome = anchor
    result = outcome.result
    involved = {n for a, b, _ in result.correlations for n in (a, b)}
    constrained = {n for n, c in result.costs.items() if c.constrained}
    assert constrained <= involved
    assert "l1d_flush" not in involved and "shootdown_per_cpu" not in involved
    for name in involved - constrained:  # linked: correlated with a constrained cost
        links = [
            abs(r) for a, b, r in result.correlations if {a, b} & constrained and name in (a, b)
        ]
        assert max(links) >= LINKED_RHO - 0.5 * 10**-RHO_DIGITS, name


def test_nothing_constrained_means_no_correlations():
    cfg = compose_config(["mitigations=rfc_v2"])
    prior = predict(cfg)["throughput_loss_p50"]
    problem = Problem(
        [Observation("vague", "throughput_loss", prior, 0.5, point_from_config(cfg))],
        cost_specs(cfg),
        float(cfg.cpu.ghz),
    )
    assert fit(problem, samples=64, seed=0, profile="vague").correlations == ()


@given(
    position=st.floats(0.0, 1.0),
    log_sd=st.floats(0.0, 3.0),
    low=st.floats(1e-2, 1e4),
    ratio=st.floats(1.01, 1e3),
)
def test_calibrated_specs_keep_their_median_inside_the_prior_range(position, log_sd, low, ratio):
    prior = LogPrior.from_spec(CostSpec(dist="loguniform", low=low, high=low * ratio))
    log_median = prior.lower + position * (prior.upper - prior.lower)
    spec = lognormal_spec(log_median, log_sd, prior, "ns")
    assert low * (1 - 1e-9) <= spec.low <= spec.high <= low * ratio * (1 + 1e-9)
    assert np.log(spec.median()) == pytest.approx(log_median, abs=1e-9)


def test_asi_answer_uses_the_calibrated_profile(anchor):
    conf, _ = anchor
    out = json.loads(
        answer([f"hydra.searchpath=[file://{conf}]", "cpu=sr_anchor", "answer.format=json"])
    )
    rfc_v2 = next(r for r in out if r["stage"] == "rfc_v2")
    assert abs(rfc_v2["throughput_loss_p50"] - ANCHOR_LOSS) <= 0.02


def test_data_the_prior_already_explains_leave_every_cost_at_its_prior():
    cfg = compose_config(["mitigations=rfc_v2"])
    point = point_from_config(cfg)
    prior = predict(cfg)["throughput_loss_p50"]
    problem = Problem(
        [Observation("vague", "throughput_loss", prior, 0.5, point)],
        cost_specs(cfg),
        float(cfg.cpu.ghz),
    )
    result = fit(problem, samples=256, seed=0, profile="vague")
    assert all(c.status == "prior" for c in result.costs.values())
    assert {n: c.spec for n, c in result.costs.items()} == {
        n: s for n, s in cost_specs(cfg).items() if n in result.costs
    }


def test_fit_is_deterministic():
    cfg = compose_config(["mitigations=rfc_v2"])
    problem = Problem(
        [Observation("a", "throughput_loss", 0.65, 0.02, point_from_config(cfg))],
        cost_specs(cfg),
        float(cfg.cpu.ghz),
    )
    first = fit(problem, samples=128, seed=3, profile="x")
    second = fit(problem, samples=128, seed=3, profile="x")
    np.testing.assert_array_equal(first.predictions, second.predictions)
    assert first.costs == second.costs


# --------------------------------------------------------------------------- fio manifests
def _asi_copy(native: Path, out: Path, slowdown: float) -> None:
    """An 'ASI on' run derived from a genuine native one: same counters, ``slowdown``x the time.

    No ASI kernel boots in the tests, so this is the stand-in for an asi=on
    run: its structure is fio's, its throughput the one chosen here.
    """
    doc = json.loads(native.read_text())
    for job in doc["jobs"]:
        for direction in ("read", "write"):
            job[direction]["iops"] /= slowdown
            job[direction]["total_ios"] = int(job[direction]["total_ios"] / slowdown)
    out.write_text(json.dumps(doc))


@pytest.fixture
def fio_dir(tmp_path) -> Path:
    measurements = tmp_path / "measurements"
    measurements.mkdir()
    shutil.copy(DATA / "randread_1job.json", measurements / "native.json")
    return measurements


def test_native_and_asi_fio_runs_calibrate_together(tmp_path, fio_dir):
    _asi_copy(fio_dir / "native.json", fio_dir / "asi.json", slowdown=1 / (1 - ANCHOR_LOSS))
    (fio_dir / "manifest.csv").write_text(
        "file,asi,stage,profile,cpus,workload,ibpb\n"
        "native.json,false,,sapphire_rapids,1,fio_randread_tmpfs,\n"
        "asi.json,true,rfc_v2,sapphire_rapids,1,fio_randread_tmpfs,true\n"
    )
    outcome = calibrate(tmp_path, fio_dir, "sr_fio")
    conf = tmp_path / "conf"
    native = read_fio(fio_dir / "native.json")
    common = ["cpu=sr_fio", "workload=fio_randread_tmpfs_sr_fio", "cpus=1"]
    off = predict(compose_calibrated(conf, *common))
    on = predict(compose_calibrated(conf, *common, "mitigations=rfc_v2"))
    assert 1e9 / off["t_native_mean"] == pytest.approx(native.iops, rel=0.05)
    assert abs(on["throughput_loss_p50"] - ANCHOR_LOSS) <= 0.03
    report = outcome.report_path.read_text()
    assert "Throughput loss of the fio ASI runs" in report and "asi.json" in report
    workload = yaml.safe_load(outcome.workload_paths["fio_randread_tmpfs"].read_text())
    assert workload["name"] == "fio_randread_tmpfs_sr_fio" and workload["base_time"] > 0


def test_ibpb_off_runs_are_priced_without_ibpb(tmp_path, fio_dir):
    """Two ASI runs, IBPB on and off: the difference pins IBPB down more than the anchor does."""
    _asi_copy(fio_dir / "native.json", fio_dir / "asi_ibpb.json", slowdown=3.3)
    _asi_copy(fio_dir / "native.json", fio_dir / "asi_noibpb.json", slowdown=2.4)
    (fio_dir / "manifest.yaml").write_text(
        "workload: fio_randread_tmpfs\n"
        "runs:\n"
        "  - {file: native.json, asi: false}\n"
        "  - {file: asi_ibpb.json, asi: true, stage: rfc_v2, ibpb: true}\n"
        "  - {file: asi_noibpb.json, asi: true, stage: rfc_v2, ibpb: false}\n"
    )
    calibrate(tmp_path, fio_dir, "sr_ibpb")
    cfg = compose_calibrated(tmp_path / "conf", "cpu=sr_ibpb")
    assert cfg.cpu.provenance.costs.ibpb.status != "prior"
    assert cfg.cpu.ibpb is True  # the profile's default stays the base profile's


# --------------------------------------------------------------------------- errors
def _manifest(tmp_path: Path, text: str, name: str = "manifest.yaml") -> Path:
    directory = tmp_path / "m"
    directory.mkdir(exist_ok=True)
    shutil.copy(DATA / "randread_1job.json", directory / "native.json")
    shutil.copy(DATA / "error_eio.json", directory / "broken.json")
    (directory / name).write_text(text)
    return directory


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("runs:\n  - {file: native.json}\n", "run 1: 'asi' is required"),
        ("runs:\n  - {file: native.json, asi: maybe}\n", "run 1: asi must be true or false"),
        ("runs:\n  - {file: native.json, asi: true}\n", "run 1: an ASI run needs 'stage'"),
        ("runs:\n  - {file: native.json, asi: false, cpus: 2}\n", "ran 1 fio job(s)"),
        ("runs:\n  - {file: gone.json, asi: false}\n", "gone.json' does not exist"),
        ("runs:\n  - {file: native.json, asi: false, colour: red}\n", "unknown column 'colour'"),
        (
            "runs:\n  - {file: broken.json, asi: false}\n",
            "broken.json: job 0 ('nullread') failed with error 5",
        ),
        ("runs: [\n", "cannot read YAML"),
        ("runs: []\n", "lists no runs"),
        ("speed: 3\nruns: []\n", "unknown column 'speed'"),
    ],
)
def test_bad_manifests_fail_in_one_line(tmp_path, manifest, message):
    directory = _manifest(tmp_path, manifest)
    with pytest.raises(ConfigError) as err:
        load_inputs(str(directory), CONF_DIR)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        (
            "workload,stage,cpus,throughput_loss\nfio_randread_tmpfs,rfc_v2,1,1.5\n",
            "throughput_loss must be",
        ),
        ("workload,stage,cpus,throughput_loss\nfio_randread_tmpfs,,1,0.7\n", "'stage' is required"),
        (
            "workload,stage,cpus,throughput_loss\nfio_randread_tmpfs,rfc_v2,0,0.7\n",
            "cpus must be an integer >= 1",
        ),
        (
            "workload,stage,cpus,throughput_loss,sigma\nfio_randread_tmpfs,rfc_v2,1,0.7,0\n",
            "sigma must be a number > 0",
        ),
        (
            "workload,stage,cpus,throughput_loss\nfio_randread_tmpfs,rfc_v2,1,0.7,9\n",
            "more cells than the header",
        ),
    ],
)
def test_bad_published_points_fail_in_one_line(tmp_path, csv, message):
    path = tmp_path / "points.csv"
    path.write_text(csv)
    with pytest.raises(ConfigError) as err:
        load_inputs(str(path), CONF_DIR)
    assert message in str(err.value) and str(path) in str(err.value)


def test_manifest_csv_reads_like_yaml(tmp_path):
    directory = _manifest(
        tmp_path,
        "file,asi,stage,cpus,ibpb,overrides\nnative.json,no,,1,,workload.page_cache_size=1G\n",
        "manifest.csv",
    )
    inputs = load_inputs(str(directory), CONF_DIR)
    (measured,) = inputs.runs
    assert measured.tags.asi is False and measured.tags.overrides == (
        "workload.page_cache_size=1G",
    )
    assert [f.kind for f in inputs.files] == ["manifest", "fio_json"]


def test_profile_other_than_the_base_is_refused(tmp_path):
    directory = _manifest(
        tmp_path, "profile: amd_zen4\nruns:\n  - {file: native.json, asi: false}\n"
    )
    with pytest.raises(
        ConfigError, match="differs from the base profile 'sapphire_rapids'.*cpu=amd_zen4"
    ):
        calibrate(tmp_path, directory, "x")


def test_unknown_stage_lists_the_presets(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("workload,stage,cpus,throughput_loss\nfio_randread_tmpfs,rfc_v3,1,0.7\n")
    with pytest.raises(
        ConfigError, match="mitigations: unknown option 'rfc_v3'; allowed: .*rfc_v2"
    ):
        calibrate(tmp_path, path, "x")


def test_hand_written_profiles_are_never_overwritten(tmp_path):
    target = tmp_path / "conf" / "cpu" / "mine.yaml"
    target.parent.mkdir(parents=True)
    target.write_text("name: mine\n")
    with pytest.raises(ConfigError, match="not written by asi-calibrate"):
        calibrate(tmp_path, "rfc_v2_anchor", "mine")
    assert target.read_text() == "name: mine\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["measurements=/no/such/dir"], "measurements: no such file or directory '/no/such/dir'"),
        ([], "measurements is required"),
        (
            ["measurements=rfc_v2_anchor", "calibrate.time_sigma=-1"],
            "calibrate.time_sigma must be a number > 0",
        ),
        (["measurements=rfc_v2_anchor", "calibrate.colour=red"], "calibrate.colour"),
        (
            ["measurements=rfc_v2_anchor", "calibrate.name=sapphire_rapids"],
            "must differ from the base profile",
        ),
        (["measurements=rfc_v2_anchor", "calibrate.name=a-b"], "calibrate.name must be a letter"),
        (["measurements=rfc_v2_anchor", "cpu=nope"], "cpu: unknown option 'nope'"),
    ],
)
def test_command_line_errors_exit_2_with_one_line(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err
