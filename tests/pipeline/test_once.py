"""One run of ``asi-sweep``: each config composed once, each cost draw made once.

The path from the overrides to a priced point (``docs/configuration.md``, "From the
overrides to a priced point") composes the sweep's config once, each combination of
group options once, converts each composition into the model's inputs once
(:func:`pipeline.configuration.profile.model_profile`) and draws each profile's costs
once: the driver's speed probe and the payloads shipped to the workers share them.
Counted with patches around Hydra's composition, the conversion and the draws, through
the command's own entry point.
"""

from __future__ import annotations

import collections
import json

import pytest

import asi_slowdown.pipeline.configuration.checks as checks
import asi_slowdown.pipeline.sweep.points as points
from asi_slowdown.pipeline.cli.sweep import main
from asi_slowdown.pipeline.configuration.compose import Composer

pytestmark = pytest.mark.slow

GRID = [
    "workload=kernel_compile,fork_exec",
    "cpu=sapphire_rapids,amd_zen4",
    "mitigations=rfc_v2,multi_slot",
    "cpus=1,2",
    "samples=16",
]
PROFILES = 2 * 2 * 2
COST_INPUTS = 2
"""Distinct cost draws: one per CPU profile (workloads and stages do not change costs)."""


def test_one_sweep_composes_each_config_and_draws_each_profiles_costs_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    points._DRAWS.clear()  # draws kept from earlier tests in this process
    composed: collections.Counter = collections.Counter()
    drawn: collections.Counter = collections.Counter()
    converted: list[int] = []

    load = Composer.load

    def counting_load(self, overrides=(), config_name=None, *, multirun=False):
        composed[(config_name, tuple(overrides), multirun)] += 1
        return load(self, overrides, config_name, multirun=multirun)

    sample_costs = points.sample_costs

    def counting_draws(specs, n, *, seed, ghz, correlations=()):
        drawn[(tuple(sorted(specs.items())), n, seed, ghz, tuple(correlations))] += 1
        return sample_costs(specs, n, seed=seed, ghz=ghz, correlations=correlations)

    model_profile = checks.model_profile

    def counting_conversion(cfg):
        converted.append(id(cfg))
        return model_profile(cfg)

    monkeypatch.setattr(Composer, "load", counting_load)
    monkeypatch.setattr(points, "sample_costs", counting_draws)
    monkeypatch.setattr(checks, "model_profile", counting_conversion)
    with pytest.raises(SystemExit) as done:
        main([*GRID, "store.path=store", "ray.num_cpus=1", "sweep.progress=false"])
    assert done.value.code == 0
    (summary,) = tmp_path.glob("outputs/sweeps/*/*/summary.json")
    assert json.loads(summary.read_text())["profiles"] == PROFILES

    twice = {key: n for key, n in composed.items() if n > 1}
    assert not twice, f"composed more than once: {twice}"
    assert sum(drawn.values()) == len(drawn) == COST_INPUTS, "cost draws made twice"
    assert len(converted) == len(set(converted)), "a composition converted twice"
