"""The vectorized model agrees with the scalar reference on random inputs."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from asi_slowdown.model.costs import ASI_COSTS, COST_NAMES
from asi_slowdown.model.evaluate import evaluate, sample_times
from asi_slowdown.model.mechanism import EXIT_REASONS, EXIT_SOURCES, GUEST_SOURCES
from asi_slowdown.model.params import POINT_PARAMS
from asi_slowdown.model.reference import reference_op
from tests.strategies import cost_sample, points

RTOL = 1e-9


def columns(rows: list[dict], names) -> dict[str, np.ndarray]:
    return {name: np.array([r[name] for r in rows]) for name in names}


@given(st.lists(points, min_size=1, max_size=6), st.lists(cost_sample, min_size=1, max_size=4))
def test_per_sample_times_match_reference(point_rows, cost_rows):
    t_native, t_asi = sample_times(
        columns(point_rows, POINT_PARAMS), columns(cost_rows, COST_NAMES)
    )
    for i, point in enumerate(point_rows):
        for j, cost in enumerate(cost_rows):
            ref = reference_op(point, cost)
            np.testing.assert_allclose(t_native[i, j], ref["t_native"], rtol=RTOL)
            np.testing.assert_allclose(t_asi[i, j], ref["t_asi"], rtol=RTOL)


@given(st.lists(points, min_size=1, max_size=6), cost_sample)
def test_exits_and_extra_by_component_match_reference(point_rows, cost):
    costs = {name: np.array([value]) for name, value in cost.items()}
    result = evaluate(columns(point_rows, POINT_PARAMS), costs)
    for i, point in enumerate(point_rows):
        ref = reference_op(point, cost)
        for source in EXIT_SOURCES:
            np.testing.assert_allclose(
                result[f"exits_{source}"][i], ref["exits"][source], rtol=RTOL, atol=1e-12
            )
        np.testing.assert_allclose(
            result["exits_per_op"][i], sum(ref["exits"].values()), rtol=RTOL, atol=1e-12
        )
        for name in ASI_COSTS:
            np.testing.assert_allclose(
                result[f"extra_ns_{name}"][i], ref["extra"][name], rtol=RTOL, atol=1e-9
            )
        for source in EXIT_SOURCES:
            np.testing.assert_allclose(
                result[f"extra_ns_exit_{source}"][i], ref["by_source"][source], rtol=RTOL, atol=1e-9
            )
        for reason in EXIT_REASONS:
            np.testing.assert_allclose(
                result[f"exit_rate_{reason}"][i], ref["exit_rates"][reason], rtol=RTOL, atol=1e-9
            )
        for source in GUEST_SOURCES:  # a guest's host exits per second, by source
            np.testing.assert_allclose(
                result[f"host_exit_rate_{source}"][i],
                ref["host_exit_rates"][source],
                rtol=RTOL,
                atol=1e-9,
            )
        versus = ref["t_asi_with_kept"] / ref["t_default"] - 1
        for stat in ("mean", "p50"):
            np.testing.assert_allclose(
                result[f"slowdown_vs_default_{stat}"][i], versus, rtol=RTOL, atol=1e-12
            )
        np.testing.assert_allclose(result["t_default_mean"][i], ref["t_default"], rtol=RTOL)
        # the default's own cost against mitigations=off
        vs_off = ref["t_default"] / ref["t_native"] - 1
        for stat in ("mean", "p05", "p50", "p95"):
            np.testing.assert_allclose(
                result[f"default_vs_off_{stat}"][i], vs_off, rtol=RTOL, atol=1e-12
            )
        # a guest's VM exits and the blanket VM protection (IBPB on every VM exit, L1D flush
        # on every VM entry on L1TF CPUs) against which ASI is also compared
        np.testing.assert_allclose(
            result["vm_exits_per_op"][i], ref["vm_exits"], rtol=RTOL, atol=1e-12
        )
        np.testing.assert_allclose(result["t_ibpb_vmexit_mean"][i], ref["t_blanket"], rtol=RTOL)
        for part, value in ref["baseline_cost"].items():
            np.testing.assert_allclose(
                result[f"baseline_ns_{part}"][i], value, rtol=RTOL, atol=1e-9
            )
        for m, value in ref["default_cost"].items():
            np.testing.assert_allclose(result[f"default_ns_{m}"][i], value, rtol=RTOL, atol=1e-9)
        versus_vm = ref["t_asi_with_kept"] / ref["t_blanket"] - 1
        for stat in ("mean", "p50"):
            np.testing.assert_allclose(
                result[f"slowdown_vs_ibpb_vmexit_{stat}"][i], versus_vm, rtol=RTOL, atol=1e-12
            )
        assert result["p_beats_ibpb_vmexit"][i] == float(versus_vm < 0) or np.isclose(
            versus_vm, 0.0, atol=1e-12
        )
        slowdown = ref["t_asi"] / ref["t_native"] - 1
        for stat in ("mean", "p05", "p50", "p95"):
            np.testing.assert_allclose(
                result[f"slowdown_{stat}"][i], slowdown, rtol=RTOL, atol=1e-12
            )
            np.testing.assert_allclose(
                result[f"throughput_loss_{stat}"][i],
                1 - ref["t_native"] / ref["t_asi"],
                rtol=RTOL,
                atol=1e-12,
            )
