"""The ephmap posting's guest kernel build, run as it was run, against the shipped priors.

``conf/benchmark/posting_guest_kernel_build.yaml`` describes the run (three phases in one
fresh 2 GiB guest with 12 vCPUs on an ``asi=on`` Sapphire Rapids host) and
``conf/validation/kvm.yaml`` the published number: 52.73 s -> 55.80 s, +5.8 % (lore
``20250812173109.295750-1-jackmanb@google.com``). ``asi-validate`` is not on this branch,
so this test evaluates the benchmark's phases directly: per cost sample, each phase's wall
time is ``t x ops / parallel``, the benchmark's the sum over phases, its slowdown
``sum(t_asi) / sum(t_native) - 1``. The issue's acceptance: the published value inside the
5-95 % band, the p50 within 2 percentage points.

Known miss (strict xfail, so a fix that brings the run into the band flips it): with the
exits that KVM's and the prototype's code give and the host rates the phase presets assume,
the shipped priors put the build at about 0.4 % [0.2-0.9 %], an order of magnitude under the
published 5.8 %. docs/mechanism.md ("The published guest build") says what it would take and
why no prior was widened to get there.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import yaml

from asi_slowdown.model.evaluate import sample_times
from tests.model.shipped import CONF, load, point, profile_costs

SAMPLES = 1024
ACCEPT_P50 = 0.02  # percentage points, as a fraction


@cache
def case(name: str) -> dict:
    cases = yaml.safe_load((CONF / "validation" / "kvm.yaml").read_text())["cases"]
    return next(c for c in cases if c["name"] == name)


def benchmark(name: str) -> dict:
    return yaml.safe_load((CONF / "benchmark" / f"{name}.yaml").read_text())


def phase_point(phase: dict, stage: str, cpu: str, cpus: int) -> dict:
    """The model point of one phase; ``workload.<param>=<value>`` overrides only."""
    overrides = {}
    for item in phase.get("overrides") or []:
        key, _, value = item.partition("=")
        if not key.startswith("workload."):
            raise ValueError(
                f"phase {phase['workload']}: override {item!r} is not workload.<param>=..."
            )
        overrides[key.removeprefix("workload.")] = yaml.safe_load(value)
    return point(phase["workload"], stage, cpu, cpus=cpus, **overrides)


def benchmark_slowdowns(name: str, stage: str, cpu: str) -> np.ndarray:
    """Per cost sample, the benchmark's wall-time slowdown: sum(t_asi) / sum(t_native) - 1."""
    run = benchmark(name)
    cpus = int(run["cpus"])
    costs = profile_costs(cpu, SAMPLES)
    native = asi = 0.0
    for phase in run["phases"]:
        parallel = cpus if phase["parallel"] == "cpus" else float(phase["parallel"])
        t_native, t_asi = sample_times(phase_point(phase, stage, cpu, cpus), costs)
        native = native + t_native[0] * phase["ops"] / parallel
        asi = asi + t_asi[0] * phase["ops"] / parallel
    return asi / native - 1.0


def band(name: str) -> tuple[float, float, float]:
    c = case(name)
    s = benchmark_slowdowns(c["benchmark"], c["stage"], c["cpu"])
    return tuple(float(q) for q in np.quantile(s, [0.05, 0.5, 0.95]))


def test_the_benchmark_runs_the_shipped_phases_as_the_case_says():
    c = case("posting_guest_kernel_build")
    run = benchmark(c["benchmark"])
    assert c["quantity"] == "slowdown" and c["role"] == "validation"
    assert c["published"] == pytest.approx(55.80 / 52.73 - 1, abs=5e-4)
    assert [p["workload"] for p in run["phases"]] == [
        "guest_posting_untar",
        "guest_posting_tinyconfig",
        "guest_posting_vmlinux",
    ]
    assert all(p["workload"] in load("workload") for p in run["phases"])
    # the phases' native wall times add up to the published asi-off mean
    native = sum(float(load("workload")[p["workload"]]["base_time"]) for p in run["phases"])
    assert native == pytest.approx(52.73e9)


@pytest.mark.xfail(
    strict=True,
    reason="the code's exits at the assumed host rates give ~0.4 %, the posting 5.8 % "
    "(module docstring; docs/mechanism.md)",
)
def test_the_posted_guest_build_is_inside_the_band():
    c = case("posting_guest_kernel_build")
    low, p50, high = band(c["name"])
    assert low <= c["published"] <= high
    assert abs(p50 - c["published"]) <= ACCEPT_P50


def test_the_miss_is_below_the_band_not_above():
    # the direction of the miss: the model's band lies wholly under the published number, and
    # the final stage (no exit per return to the VMM) costs less again
    c = case("posting_guest_kernel_build")
    low, p50, high = band(c["name"])
    assert 0.0 < low < p50 < high < c["published"]
    final = benchmark_slowdowns(c["benchmark"], "kvm_vmm_switch", c["cpu"])
    assert np.median(final) < p50
