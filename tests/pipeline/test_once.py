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


@pytest.mark.parametrize("source", ["model", "store"])
def test_one_answer_converts_its_config_once_and_draws_its_costs_once(
    tmp_path, monkeypatch, source
):
    """``asi-answer`` with every table (the stages, a curve over CPUs, the budgets), from the
    model or from the store: each composition (the config, and each stage's) becomes the
    model's inputs once, and the cost draws are made once, whichever tables read them (the
    store's point ids, the budgets).
    """
    import asi_slowdown.model.costs as costs
    import asi_slowdown.pipeline.configuration.profile as profile
    import asi_slowdown.pipeline.projection.answer as answer
    import asi_slowdown.pipeline.projection.budget as budget
    import asi_slowdown.pipeline.projection.projection as projection

    monkeypatch.chdir(tmp_path)
    converted: list = []  # the configs themselves: kept alive, their ids stay distinct
    drawn: list[int] = []
    composed: collections.Counter = collections.Counter()
    conversion, sample_costs = profile.model_profile, profile.sample_costs
    load = Composer.load

    def counting_load(self, overrides=(), config_name=None, *, multirun=False):
        composed[(config_name, tuple(overrides), multirun)] += 1
        return load(self, overrides, config_name, multirun=multirun)

    def counting_conversion(cfg):
        converted.append(cfg)
        return conversion(cfg)

    def counting_draws(*args, **kwargs):
        drawn.append(1)
        return sample_costs(*args, **kwargs)

    for module in (checks, answer, budget, projection):
        monkeypatch.setattr(module, "model_profile", counting_conversion)
    monkeypatch.setattr(profile, "sample_costs", counting_draws)
    monkeypatch.setattr(costs, "sample_costs", counting_draws)
    monkeypatch.setattr(Composer, "load", counting_load)
    argv = ["samples=32", "answer.vs_cpus=[1,4]", "answer.budget=true", "store.path=store"]
    if source == "store":
        argv.append("answer.source=auto")  # an empty store: looked up, then the model
    else:
        argv.append("answer.source=model")
    text = answer.run(argv)
    assert "Slowdown p50" in text
    assert not {key: n for key, n in composed.items() if n > 1}, "a config composed twice"
    assert len({id(c) for c in converted}) == len(converted), "a composition converted twice"
    assert len(converted) == sum(composed.values()), "a conversion of no composition of its own"
    assert len(drawn) == 1, f"the costs drawn {len(drawn)} times"
