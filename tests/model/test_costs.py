"""Cost draws: in range, common random numbers, independent of batching."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import stats

from asi_slowdown.model.costs import (
    COST_NAMES,
    RATE_COSTS,
    SHARE_COSTS,
    CostSpec,
    canonical_correlations,
    check_correlations,
    cholesky_factor,
    correlation_matrix,
    sample_costs,
    stream_uniforms,
)

SPECS = {
    name: CostSpec("loguniform", 0.01, 1.0, unit="fraction")
    if name in SHARE_COSTS
    else CostSpec("loguniform", 10.0, 1000.0, unit="1/s" if name in RATE_COSTS else "ns")
    for name in COST_NAMES
}


def draw(n, **kw):
    args = {"seed": 7, "ghz": 2.0} | kw
    return sample_costs(SPECS, n, **args)


def test_draw_k_does_not_depend_on_how_many_are_drawn():
    short, long = draw(10), draw(1000)
    for name in COST_NAMES:
        np.testing.assert_array_equal(short[name], long[name][:10])


def test_streams_differ_by_seed_and_cost_only():
    base = stream_uniforms(64, seed=0, cost="ibpb")
    assert not np.array_equal(base, stream_uniforms(64, seed=1, cost="ibpb"))
    assert not np.array_equal(base, stream_uniforms(64, seed=0, cost="invlpg"))
    np.testing.assert_array_equal(base, stream_uniforms(64, seed=0, cost="ibpb"))


def test_two_profiles_draw_from_the_same_uniforms():
    """Paired comparisons: a profile changes a cost's draws only through its distribution.
    Two profiles with the same spec of a cost draw it identically, and where the specs differ
    the draws keep their ranks (the same uniform through two monotone quantile functions)."""
    other = SPECS | {"ibpb": CostSpec("loguniform", 50.0, 5000.0)}
    a = sample_costs(SPECS, 256, seed=0, ghz=2.0)
    b = sample_costs(other, 256, seed=0, ghz=2.0)
    for name in SPECS:
        if name != "ibpb":
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    np.testing.assert_array_equal(np.argsort(a["ibpb"]), np.argsort(b["ibpb"]))


@pytest.mark.parametrize("dist", ["uniform", "loguniform"])
def test_draws_stay_inside_the_documented_range(dist):
    """Bounded draws fill [low, high] (both ends within 1 % of the range for 4096 draws), and a
    cycle cost is converted at the profile's clock: 50-200 cycles at 2.5 GHz is 20-80 ns, the
    very draws divided by 2.5."""
    spec = CostSpec(dist, 50.0, 200.0, unit="cycles")
    u = stream_uniforms(4096, seed=0, cost="cr3_write")
    values = spec.ppf(u)
    assert 50.0 <= values.min() < 50.0 * 1.02 and 200.0 / 1.02 < values.max() <= 200.0
    specs = {n: SPECS[n] if n in SHARE_COSTS else spec for n in COST_NAMES}
    specs |= {n: CostSpec(dist, 50.0, 200.0, unit="1/s") for n in RATE_COSTS}
    costs = sample_costs(specs, 4096, seed=0, ghz=2.5)
    np.testing.assert_array_equal(costs["cr3_write"], values / 2.5)
    assert 20.0 <= costs["cr3_write"].min() < 20.4 and 79.6 < costs["cr3_write"].max() <= 80.0


def test_lognormal_low_high_are_its_5th_and_95th_percentiles():
    spec = CostSpec("lognormal", 100.0, 400.0)
    values = spec.ppf(stream_uniforms(200_000, seed=0, cost="x"))
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


@pytest.mark.parametrize(
    ("name", "spec", "message"),
    [
        ("vmexit_share_io", CostSpec("uniform", 0.1, 0.5), "vmexit_share_io.unit must be fraction"),
        ("ibpb", CostSpec("uniform", 0.1, 0.5, unit="fraction"), "ibpb.unit must be ns, cycles"),
        (
            "vmexit_share_io",
            CostSpec("uniform", 0.1, 1.5, unit="fraction"),
            "vmexit_share_io.high must be <= 1",
        ),
        (
            "vmexit_share_io",
            CostSpec("fixed", value=2.0, unit="fraction"),
            "vmexit_share_io.value must be a number between 0 and 1",
        ),
    ],
)
def test_shares_are_fractions_and_only_shares_are(name, spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        spec.check(name)
    CostSpec("fixed", value=0.0, unit="fraction").check("vmexit_share_io")


def test_missing_or_unknown_costs_are_named():
    with pytest.raises(ValueError, match="missing ibpb"):
        sample_costs({k: v for k, v in SPECS.items() if k != "ibpb"}, 2, seed=0, ghz=1.0)
    with pytest.raises(ValueError, match="unknown cost 'vmexit'"):
        sample_costs(SPECS | {"vmexit": SPECS["ibpb"]}, 2, seed=0, ghz=1.0)


# --------------------------------------------------------------------------- correlations
CORRELATED = (
    ("page_walk", "ibpb", -0.7),
    ("ibpb", "cr3_write", 0.4),
    ("cr3_write", "syscall", 0.5),
)


PINNED_DRAWS = {
    "syscall": [825.1385926291886, 707.0522564272402, 12.783868216708331, 497.12766184165855],
    "ibpb": [266.1605678689045, 192.03715933608962, 216.9885871553915, 139.97517717185434],
    "cr3_write": [0.9141299413954447, 3.5797026757669093, 4.045756096198842, 3.857727213497704],
    "tick_exits": [371.5007457755371, 100.69449557328461, 28.242166700525125, 10.70276571835262],
}
"""The first four draws of ``sample_costs(PINNED_SPECS, n, seed=3, ghz=2.0)``,
written down once (model 0.6.0, streams keyed by cost and seed, numpy 2 PCG64, no
correlations) with
``[repr(float(x)) for x in sample_costs(...)[name][:4]]``: syscall and tick_exits
loguniform 10-1000, ibpb lognormal 100-400, cr3_write uniform 1-9 cycles at 2 GHz [ns]."""

PINNED_SPECS = SPECS | {
    "ibpb": CostSpec("lognormal", 100.0, 400.0),
    "cr3_write": CostSpec("uniform", 1, 9, unit="cycles"),
}


def test_profiles_without_correlations_draw_exactly_as_before():
    """No correlations (or only zeros): the draws are the pinned numbers bit for bit (``repr``
    round-trips a float), whatever ``n`` is."""
    for correlations in ((), (("ibpb", "page_walk", 0.0),)):
        for n in (4, 257):
            drawn = sample_costs(PINNED_SPECS, n, seed=3, ghz=2.0, correlations=correlations)
            for name, pinned in PINNED_DRAWS.items():
                np.testing.assert_array_equal(drawn[name][:4], pinned, err_msg=name)


def test_copula_draws_have_the_requested_rank_correlation():
    n = 20_000
    draws = draw(n, correlations=CORRELATED)
    for a, b, rho in CORRELATED:
        spearman = stats.spearmanr(draws[a], draws[b]).statistic
        expected = 6 / np.pi * np.arcsin(rho / 2)  # Gaussian copula: Pearson rho -> Spearman
        assert spearman == pytest.approx(expected, abs=0.025), (a, b)
    # a cost in no pair (invlpg) stays independent of the correlated ones
    assert abs(stats.spearmanr(draws["page_walk"], draws["invlpg"]).statistic) < 0.025


def test_copula_keeps_every_marginal():
    """Each correlated cost still follows its own ppf: its uniforms stay uniform."""
    specs = SPECS | {
        "ibpb": CostSpec("lognormal", 100.0, 400.0),
        "cr3_write": CostSpec("uniform", 1, 9),
    }
    n = 20_000
    draws = sample_costs(specs, n, seed=7, ghz=1.0, correlations=CORRELATED)
    cdfs = {
        "page_walk": lambda x: np.log(x / 10.0) / np.log(100.0),
        "syscall": lambda x: np.log(x / 10.0) / np.log(100.0),
        "cr3_write": lambda x: (x - 1) / 8,
        "ibpb": lambda x: stats.norm.cdf(
            np.log(x), np.log(200.0), np.log(2.0) / stats.norm.ppf(0.95)
        ),
    }
    for name, cdf in cdfs.items():
        assert stats.kstest(cdf(draws[name]), "uniform").pvalue > 1e-3, name
    low, high = draws["page_walk"].min(), draws["page_walk"].max()
    assert 10.0 <= low and high <= 1000.0


def test_correlated_draw_k_does_not_depend_on_how_many_are_drawn():
    short, long = draw(10, correlations=CORRELATED), draw(1000, correlations=CORRELATED)
    plain = draw(1000)
    for name in COST_NAMES:
        np.testing.assert_array_equal(short[name], long[name][:10])
    for name in ("invlpg", "full_flush"):  # in no pair: the same draws as without correlations
        np.testing.assert_array_equal(long[name], plain[name])


def test_pair_order_and_direction_do_not_matter():
    reordered = tuple((b, a, rho) for a, b, rho in reversed(CORRELATED))
    assert canonical_correlations(reordered) == canonical_correlations(CORRELATED)
    one, other = draw(50, correlations=CORRELATED), draw(50, correlations=reordered)
    for name in COST_NAMES:
        np.testing.assert_array_equal(one[name], other[name])


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ((("tlb", "ibpb", 0.5),), "cpu.correlations[0].a: unknown cost 'tlb'; allowed: syscall"),
        ((("ibpb", "ibpb", 0.5),), "cpu.correlations[0]: a cost is not correlated with itself"),
        (
            (("page_walk", "ibpb", 1.5),),
            "cpu.correlations[0].rho (page_walk:ibpb) must be in [-1, 1]",
        ),
        ((("page_walk", "ibpb", float("nan")),), "must be in [-1, 1], got nan"),
        (
            (("page_walk", "ibpb", 0.5), ("ibpb", "page_walk", 0.5)),
            "cpu.correlations lists the pair page_walk:ibpb twice",
        ),
        (
            (("page_walk", "ibpb", 1.0),),
            "cpu.correlations over page_walk, ibpb is not positive definite",
        ),
        (
            (
                ("page_walk", "ibpb", 0.9),
                ("ibpb", "cr3_write", 0.9),
                ("page_walk", "cr3_write", -0.9),
            ),
            "cpu.correlations over cr3_write, page_walk, ibpb is not positive definite",
        ),
    ],
)
def test_bad_correlations_fail_in_one_line(pairs, message):
    with pytest.raises(ValueError) as err:
        check_correlations(pairs)
    assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match=re.escape(message)):
        draw(4, correlations=pairs)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ([[1.0, 0.5], [0.4, 1.0]], "not symmetric: a:b is 0.5 but b:a is 0.4"),
        ([[1.0, 0.5], [0.5, 0.9]], "b:b must be 1, got 0.9"),
        ([[1.0, -2.0], [-2.0, 1.0]], "a:b must be in [-1, 1], got -2.0"),
        ([[1.0, 1.0], [1.0, 1.0]], "over a, b is not positive definite"),
        ([[1.0]], "a 2x2 matrix expected"),
    ],
)
def test_bad_matrices_fail_in_one_line(matrix, message):
    with pytest.raises(ValueError) as err:
        cholesky_factor(np.array(matrix), ("a", "b"))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_correlation_matrix_is_over_the_costs_involved():
    names, matrix = correlation_matrix(CORRELATED)
    assert names == ("syscall", "cr3_write", "page_walk", "ibpb")  # COST_NAMES order
    np.testing.assert_array_equal(matrix, matrix.T)
    assert matrix[names.index("ibpb"), names.index("page_walk")] == -0.7
    assert matrix[names.index("syscall"), names.index("ibpb")] == 0.0
    factor = cholesky_factor(matrix, names)
    np.testing.assert_allclose(factor @ factor.T, matrix, atol=1e-12)
