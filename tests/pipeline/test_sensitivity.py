"""Sensitivity: a variance share valid for correlated costs, against known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtri

from asi_slowdown.model.costs import correlate_uniforms, stream_uniforms
from asi_slowdown.pipeline.configuration.compose import compose_config
from asi_slowdown.pipeline.configuration.profile import model_profile, point_from_config
from asi_slowdown.pipeline.projection.sensitivity import (
    correlation_groups,
    cost_sensitivity,
    group_first_order,
    point_sensitivity,
)

N = 8192
NAMES = ("page_walk", "ibpb", "invlpg")


def normal_scores(correlations=()) -> dict[str, np.ndarray]:
    """Standard normal draws of three costs, the first two correlated as asked (Gaussian copula)."""
    uniforms = {n: stream_uniforms(N, seed=1, cost=n) for n in NAMES}
    return {n: ndtri(u) for n, u in correlate_uniforms(uniforms, correlations).items()}


def test_groups_are_the_connected_sets_of_correlated_costs():
    names = ["a", "b", "c", "d", "e"]
    assert correlation_groups(names) == [("a",), ("b",), ("c",), ("d",), ("e",)]
    pairs = (("d", "b", 0.3), ("b", "a", -0.5), ("c", "e", 0.0))  # a zero links nothing
    assert correlation_groups(names, pairs) == [("a", "b", "d"), ("c",), ("e",)]


def test_independent_costs_get_their_known_first_order_shares():
    """Y = X1 + 2 X2 with independent standard normals: Var(Y) = 5, so the first-order shares
    are exactly 1/5 and 4/5, and a cost the model ignores gets 0."""
    x = normal_scores()
    shares = group_first_order(
        lambda c: c["page_walk"] + 2 * c["ibpb"], x, correlation_groups(list(x))
    )
    assert shares[("page_walk",)] == pytest.approx(0.2, abs=0.03)
    assert shares[("ibpb",)] == pytest.approx(0.8, abs=0.03)
    assert shares[("invlpg",)] == pytest.approx(0.0, abs=0.03)


def test_correlated_costs_are_shared_as_a_group_where_rank_correlation_misleads():
    """page_walk and ibpb correlated at 0.9 and the slowdown their difference, plus a little
    of invlpg: Var = 2 - 2 (0.9) + 0.2^2 = 0.24, so the pair explains 0.2 / 0.24 = 5/6 and
    invlpg 1/6. Each of the pair has |rho| of only (1 - 0.9) / sqrt(0.24) = 0.20 with the
    slowdown against invlpg's 0.2 / sqrt(0.24) = 0.41: ranked by rank correlation, invlpg
    would come first and rho**2 would say the pair explains about 8 %."""
    correlations = (("page_walk", "ibpb", 0.9),)
    x = normal_scores(correlations)
    table = cost_sensitivity(
        lambda c: c["page_walk"] - c["ibpb"] + 0.2 * c["invlpg"], x, correlations
    ).set_index("cost")
    assert abs(table.loc["invlpg", "spearman"]) > 1.5 * abs(table.loc["ibpb", "spearman"])
    assert (table["spearman"] ** 2).loc[["page_walk", "ibpb"]].sum() < 0.15  # what rho**2 says
    assert table.loc["page_walk", "group"] == table.loc["ibpb", "group"] == "page_walk+ibpb"
    assert table.loc["ibpb", "group_share"] == pytest.approx(5 / 6, abs=0.03)
    assert table.loc["invlpg", "group_share"] == pytest.approx(1 / 6, abs=0.03)
    assert list(table.index[:2]) != ["invlpg"] and table.index[-1] == "invlpg"


def test_a_correlated_cost_without_its_own_effect_is_not_given_a_share_of_its_own():
    """Y = X1 + X3 with X2 correlated 0.9 with X1 but absent from Y: X2's rank correlation is
    about 0.9 / sqrt(2) = 0.63, so the rho**2 'shares' add up to about 1.4; the groups'
    shares are {X1, X2}: 1/2 and {X3}: 1/2, adding up to one."""
    correlations = (("page_walk", "ibpb", 0.9),)
    x = normal_scores(correlations)
    table = cost_sensitivity(lambda c: c["page_walk"] + c["invlpg"], x, correlations)
    table = table.set_index("cost")
    assert table.loc["ibpb", "spearman"] > 0.55 and (table["spearman"] ** 2).sum() > 1.3
    assert table.loc["ibpb", "group_share"] == pytest.approx(0.5, abs=0.03)
    assert table.loc["invlpg", "group_share"] == pytest.approx(0.5, abs=0.03)
    shares = table.drop_duplicates("group")["group_share"]
    assert shares.sum() == pytest.approx(1.0, abs=0.04)


def test_a_shipped_point_gets_shares_that_add_up_to_at_most_one():
    """fio on tmpfs at the end of the roadmap, with and without a correlation in its profile."""
    overrides = ["workload=fio_randread_tmpfs", "mitigations=mapping_fastpath", "samples=1024"]
    cfg = compose_config(overrides)
    point = point_from_config(cfg)
    table, stats = point_sensitivity(
        point, model_profile(cfg).costs(), correlations=model_profile(cfg).correlations
    )
    shares = table.drop_duplicates("group")["group_share"]
    assert shares.sum() <= 1.0 + 0.1 and (table["group"] == table["cost"]).all()
    assert table.iloc[0]["group_share"] == shares.max() > 0.2
    assert stats["samples"] == 1024 and np.isnan(stats["matches"])
    correlations = (("ephmap_pte", "ephmap_software", 0.8),)
    correlated = compose_config(
        [*overrides, "cpu.correlations=[{a: ephmap_pte, b: ephmap_software, rho: 0.8}]"]
    )
    table, _ = point_sensitivity(
        point, model_profile(correlated).costs(), correlations=correlations
    )
    pair = table[table["cost"].isin(["ephmap_pte", "ephmap_software"])]
    assert set(pair["group"]) == {"ephmap_pte+ephmap_software"}
    assert table.drop_duplicates("group")["group_share"].sum() <= 1.0 + 0.1
