"""Cost draws: in range, common random numbers, independent of batching."""

from __future__ import annotations

import re

import numpy as np
import pytest

from model.costs import COST_NAMES, CostSpec, sample_costs, stream_uniforms

SPECS = {name: CostSpec("loguniform", 10.0, 1000.0) for name in COST_NAMES}


def draw(n, **kw):
    args = {"seed": 7, "profile": "p", "ghz": 2.0} | kw
    return sample_costs(SPECS, n, **args)


def test_draw_k_does_not_depend_on_how_many_are_drawn():
    short, long = draw(10), draw(1000)
    for name in COST_NAMES:
        np.testing.assert_array_equal(short[name], long[name][:10])


def test_streams_differ_by_seed_profile_and_cost():
    base = stream_uniforms(64, seed=0, profile="a", cost="ibpb")
    assert not np.array_equal(base, stream_uniforms(64, seed=1, profile="a", cost="ibpb"))
    assert not np.array_equal(base, stream_uniforms(64, seed=0, profile="b", cost="ibpb"))
    assert not np.array_equal(base, stream_uniforms(64, seed=0, profile="a", cost="invlpg"))
    np.testing.assert_array_equal(base, stream_uniforms(64, seed=0, profile="a", cost="ibpb"))


@pytest.mark.parametrize("dist", ["uniform", "loguniform"])
def test_draws_stay_inside_the_documented_range(dist):
    spec = CostSpec(dist, 50.0, 200.0, unit="cycles")
    values = spec.ppf(stream_uniforms(4096, seed=0, profile="p", cost="x"))
    assert values.min() >= 50.0 and values.max() <= 200.0
    # cycles convert at the profile's clock: 100 cycles at 2.5 GHz = 40 ns
    costs = sample_costs({n: spec for n in COST_NAMES}, 4096, seed=0, profile="p", ghz=2.5)
    assert costs["cr3_write"].min() >= 20.0 and costs["cr3_write"].max() <= 80.0


def test_lognormal_low_high_are_its_5th_and_95th_percentiles():
    spec = CostSpec("lognormal", 100.0, 400.0)
    values = spec.ppf(stream_uniforms(200_000, seed=0, profile="p", cost="x"))
    assert np.quantile(values, 0.05) == pytest.approx(100.0, rel=0.02)
    assert np.quantile(values, 0.95) == pytest.approx(400.0, rel=0.02)
    assert spec.median() == pytest.approx(200.0)


def test_fixed_is_fixed():
    assert CostSpec("fixed", value=3.0).ppf(np.array([0.1, 0.9])).tolist() == [3.0, 3.0]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (CostSpec("gamma", 1.0, 2.0), "cpu.costs.ibpb.dist must be one of"),
        (CostSpec("uniform", 0.0, 2.0), "cpu.costs.ibpb.low must be a finite number > 0"),
        (CostSpec("uniform", 3.0, 2.0), "cpu.costs.ibpb.high must be >= low"),
        (CostSpec("fixed"), "cpu.costs.ibpb.value must be a number between 0 and 1e+09"),
        (CostSpec("uniform", 1.0, 2.0, unit="s"), "cpu.costs.ibpb.unit must be one of"),
    ],
)
def test_bad_specs_name_the_cost(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        spec.check("ibpb")


def test_missing_or_unknown_costs_are_named():
    with pytest.raises(ValueError, match="missing ibpb"):
        sample_costs(
            {k: v for k, v in SPECS.items() if k != "ibpb"}, 2, seed=0, profile="p", ghz=1.0
        )
    with pytest.raises(ValueError, match="unknown cost 'vmexit'"):
        sample_costs(SPECS | {"vmexit": SPECS["ibpb"]}, 2, seed=0, profile="p", ghz=1.0)
