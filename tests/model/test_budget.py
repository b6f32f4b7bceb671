"""The budget solver against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from asi_slowdown.model.budget import cost_budget
from asi_slowdown.model.evaluate import sample_times


def one_sample(costs: dict) -> dict[str, np.ndarray]:
    return {k: np.array([v]) for k, v in costs.items()}


@pytest.fixture
def software_only(base_point, round_costs):
    """An ephmap read whose only ASI cost is the software path: 40 ns over 856 native."""
    point = base_point | {"ephmap": True}
    costs = round_costs | {"ephmap_pte": 0.0, "invlpg": 0.0, "psc_rewalk": 0.0}
    return point, one_sample(costs)


def test_a_linear_cost_has_the_exact_root(software_only):
    # slowdown = software / 856: 1 % at exactly 8.56 ns
    point, costs = software_only
    budget = cost_budget(point, costs, "ephmap_software", lowest=1.0)
    assert budget.reachable and not budget.already_met
    assert budget.current == 40.0
    assert budget.needed == pytest.approx(8.56, rel=1e-5)
    assert budget.needed <= 8.56  # on the side that meets it


def test_below_the_documented_range_is_not_reachable(software_only):
    point, costs = software_only
    budget = cost_budget(point, costs, "ephmap_software", lowest=10.0)
    assert not budget.reachable and budget.needed is None


def test_a_cost_that_is_not_what_remains_cannot_reach_it(software_only):
    point, costs = software_only
    assert not cost_budget(point, costs, "invlpg", lowest=0.0).reachable  # already zero


def test_a_point_that_meets_it_needs_nothing(software_only):
    point, costs = software_only
    cheap = {**costs, "ephmap_software": np.array([4.0])}
    budget = cost_budget(point, cheap, "ephmap_software", lowest=1.0)
    assert budget.already_met and budget.needed == 4.0


def test_the_confidence_budget_puts_nine_samples_in_ten_under_the_target(base_point, round_costs):
    # ten samples of the software path, 10..100 ns: 1 % needs each under 8.56 ns, so
    # P >= 0.9 needs the ninth smallest (90 ns) scaled to 8.56, i.e. a median of
    # 55 x 8.56 / 90
    point = base_point | {"ephmap": True}
    costs = one_sample(round_costs | {"ephmap_pte": 0.0, "invlpg": 0.0, "psc_rewalk": 0.0})
    costs = {k: np.repeat(v, 10) for k, v in costs.items()}
    costs["ephmap_software"] = np.arange(10.0, 101.0, 10.0)
    budget = cost_budget(point, costs, "ephmap_software", lowest=0.1, statistic="confidence")
    assert budget.needed == pytest.approx(55 * 8.56 / 90, rel=1e-4)
    scaled = {**costs, "ephmap_software": costs["ephmap_software"] * budget.needed / 55}
    t_native, t_asi = sample_times(point, scaled)
    assert np.mean(t_asi[0] / t_native[0] - 1 < 0.01) >= 0.9


def test_bad_statistic_is_one_line(software_only):
    point, costs = software_only
    with pytest.raises(ValueError, match="^statistic must be one of p50, confidence, got 'p95'$"):
        cost_budget(point, costs, "ephmap_software", lowest=1.0, statistic="p95")


def test_a_pair_moves_together_and_the_first_to_its_floor_bounds_it(base_point, round_costs):
    # software 40 + re-walk 30 (INVLPG, PTE off): 70 f <= 8.56 -> f = 0.1223
    point = base_point | {"ephmap": True}
    costs = one_sample(round_costs | {"ephmap_pte": 0.0, "invlpg": 0.0})
    pair = ("ephmap_software", "psc_rewalk")
    budget = cost_budget(point, costs, pair, lowest=(1.0, 1.0))
    assert budget.cost == "ephmap_software+psc_rewalk"
    assert budget.factor == pytest.approx(8.56 / 70, rel=1e-5)
    assert budget.needed == pytest.approx(40 * 8.56 / 70, rel=1e-5)
    # a floor of 5 ns for the re-walk stops it at f = 1/6, above 0.1223: not reachable
    assert not cost_budget(point, costs, pair, lowest=(1.0, 5.0)).reachable
