"""Properties of the vectorized evaluation beyond agreement with the reference."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asi_slowdown.model.costs import (
    ASI_COSTS,
    COST_NAMES,
    RATE_COSTS,
    SHARE_COSTS,
    CostSpec,
    sample_costs,
)
from asi_slowdown.model.evaluate import CONFIDENCE, ENGINES, evaluate, quantiles, sample_times
from asi_slowdown.model.mechanism import (
    EXIT_SOURCES,
    OP_SOURCES,
    PAIR_COSTS,
    TIME_SOURCES,
    ephmap_use_per_op,
)
from asi_slowdown.model.params import (
    MITIGATION_FLAGS,
    POINT_PARAMS,
    VM_EXIT_REASONS,
    as_columns,
    check_ranges,
)
from tests.strategies import points


def costs(n=256, seed=0):
    specs = {
        name: CostSpec("loguniform", 0.01, 1.0, unit="fraction")
        if name in SHARE_COSTS
        else CostSpec("loguniform", 5.0, 5000.0, unit="1/s" if name in RATE_COSTS else "ns")
        for name in COST_NAMES
    }
    return sample_costs(specs, n, seed=seed, ghz=3.0)


def table(rows):
    return {name: np.array([r[name] for r in rows]) for name in POINT_PARAMS}


@pytest.mark.parametrize("engine", ENGINES)
@given(st.lists(points, min_size=1, max_size=20), st.sampled_from([1, 7, 1000, 1 << 16]))
def test_results_do_not_depend_on_chunking(engine, rows, chunk_elements):
    c = costs(64)
    whole = evaluate(table(rows), c, engine=engine)
    chunked = evaluate(table(rows), c, chunk_elements=chunk_elements, engine=engine)
    for key in whole:
        np.testing.assert_array_equal(whole[key], chunked[key], err_msg=key)


@pytest.mark.parametrize("engine", ENGINES)
@given(st.lists(points, min_size=2, max_size=10))
def test_a_point_gives_the_same_result_alone_or_with_others(engine, rows):
    c = costs(32)
    together = evaluate(table(rows), c, engine=engine)
    alone = evaluate(table(rows[1:2]), c, engine=engine)
    for key in together:
        assert together[key][1] == alone[key][0], key


def test_quantiles_match_numpy_linear_method():
    values = np.random.default_rng(1).lognormal(size=(13, 1001))
    ours = quantiles(values, [0.05, 0.5, 0.95])
    np.testing.assert_allclose(ours, np.quantile(values, [0.05, 0.5, 0.95], axis=1), rtol=1e-12)


def test_summaries_are_consistent(base_point):
    point = base_point | {"zero_fill_per_op": 0.5, "ctxsw_per_op": 0.2}
    result = evaluate(point, costs())
    t_native, t_asi = sample_times(point, costs())
    slowdown = t_asi / t_native - 1
    assert result["slowdown_mean"][0] == pytest.approx(slowdown.mean())
    assert result["throughput_loss_mean"][0] == pytest.approx((1 - t_native / t_asi).mean())
    assert result["t_native_mean"][0] == pytest.approx(t_native.mean())
    assert result["t_asi_mean"][0] == pytest.approx(t_asi.mean())
    for stat in ("p05", "p50", "p95"):
        s = result[f"slowdown_{stat}"][0]
        assert result[f"throughput_loss_{stat}"][0] == pytest.approx(s / (1 + s))
    assert result["slowdown_p05"] <= result["slowdown_p50"] <= result["slowdown_p95"]
    extra = sum(result[f"extra_ns_{cost}"][0] for cost in ASI_COSTS)
    assert extra == pytest.approx(result["t_asi_mean"][0] - result["t_native_mean"][0])
    # without the ephmap every pair cost comes from exits: the two breakdowns add up alike
    by_source = sum(result[f"extra_ns_exit_{source}"][0] for source in EXIT_SOURCES)
    assert by_source == pytest.approx(sum(result[f"extra_ns_{cost}"][0] for cost in PAIR_COSTS))
    assert result["exits_tick"][0] > 0  # the profile's tick rate over the restricted time


@given(points)
def test_time_driven_exits_are_a_rate_over_at_most_the_native_time(point):
    c = costs(16)
    result = evaluate(point, c)
    t_native, _ = sample_times(point, c)
    rates = {
        "tick": c["tick_exits"],
        "interrupt": point["irq_exits_per_s"],
        "kthread_switch": 0.0 if point["ctxsw_same_mm"] else point["kthread_switches_per_s"],
        # a guest's VM exits: at most every one of them (a share <= 1)
        **{f"vmexit_{r}": point[f"vmexits_{r}_per_s"] for r in VM_EXIT_REASONS},
        # the host's work around it: every return to the VMM, syscall and switch at most
        "kvm_run_return": point["kvm_run_returns_per_s"],
        "vmm_syscall": point["vmm_io_syscalls_per_s"],
        "vmm_switch": point["vmm_thread_switches_per_s"],
    }
    for source in TIME_SOURCES:
        bound = np.mean(rates[source] * t_native[0] * 1e-9)
        assert 0.0 <= result[f"exits_{source}"][0] <= bound * (1 + 1e-12) + 1e-300, source


def mermap_flush_exits(point) -> float:
    """The mermap's flushes that exit: one per wrap, and a reclaim shootdown's on every CPU."""
    use = ephmap_use_per_op(as_columns(point))
    return use["wrap_flushes"][0] + use["reclaim_shootdowns"][0] * point["cpus"]


@given(points)
def test_each_roadmap_fix_never_adds_op_driven_exits_but_the_mermap_flush(point):
    """Turning on any one flag, all else equal, never increases the exits ops cause, except
    the mermap's flush on wrap (``tlb_flush``: at most one per 512 pages mapped, plus the
    reclaim shootdowns on every CPU), which ``multi_slot`` brings."""
    for flag in MITIGATION_FLAGS:
        off = evaluate(point | {flag: False}, costs(2))
        on = evaluate(point | {flag: True}, costs(2))
        added = mermap_flush_exits(point | {flag: True}) - mermap_flush_exits(point | {flag: False})
        op_exits = {
            k: sum(r[f"exits_{s}"][0] for s in OP_SOURCES) for k, r in (("on", on), ("off", off))
        }
        assert op_exits["on"] <= op_exits["off"] + max(0.0, added) + 1e-9 * (1 + op_exits["off"]), (
            flag
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cpus", 0, "cpus must be an integer >= 1, got 0"),
        ("cpus", 1.5, "cpus must be an integer >= 1, got 1.5"),
        ("ctxsw_mm_change", 1.5, "ctxsw_mm_change must be a number between 0 and 1, got 1.5"),
        ("base_time", 0.0, "base_time must be a number > 0, got 0"),
        ("device_latency", -1.0, "device_latency must be a number >= 0, got -1"),
        ("cow_per_op", float("nan"), "cow_per_op must be a number >= 0, got nan"),
        ("zero_fill_per_op", float("inf"), "zero_fill_per_op must be a number >= 0, got inf"),
    ],
)
def test_out_of_range_inputs_fail_with_one_line(base_point, field, value, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        check_ranges(as_columns(base_point | {field: value}))


def test_missing_and_unknown_parameters_are_named(base_point):
    with pytest.raises(ValueError, match="'cpus' is missing"):
        as_columns({k: v for k, v in base_point.items() if k != "cpus"})
    with pytest.raises(ValueError, match="unknown point parameter 'cpu'"):
        as_columns(base_point | {"cpu": 1})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cpus", 100_000, "cpus must be an integer <= 8192, got 100000"),
        ("file_size", 2.0**70, "file_size must be an integer <= 1.15292e+18, got 1.18059e+21"),
        ("base_time", 1e300, "base_time must be a number <= 1e+12, got 1e+300"),
        ("cow_per_op", 1e10, "cow_per_op must be a number <= 1e+09, got 1e+10"),
        ("ephmap_slots", 1e4, "ephmap_slots must be an integer <= 512, got 10000"),
    ],
)
def test_huge_values_fail_with_one_line(base_point, field, value, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_ranges(as_columns(base_point | {field: value}))


@given(st.lists(points, min_size=1, max_size=8))
def test_confidence_is_the_share_of_samples_below_each_line(rows):
    c = costs(64)
    result = evaluate(table(rows), c)
    t_native, t_asi = sample_times(table(rows), c)
    slowdown = t_asi / t_native - 1
    for name, line in CONFIDENCE.items():
        np.testing.assert_array_equal(result[name], (slowdown < line).sum(axis=1) / 64)
    assert (result["p_meets_target"] <= result["p_under_threshold"]).all()


@given(points)
def test_a_stage_that_only_removes_costs_never_lowers_the_confidence(point):
    """Paired samples: with the same draws, a change that only removes a cost (the fast
    mapping path instead of the walk; no IBPB) can only lower each sample's slowdown, so the
    share below each line can only grow. (Removing an exit can move it to a later, dearer
    exit point, so the other stages are not of this kind.)"""
    c = costs(64)
    for removed in ({"mapping_fastpath": True}, {"ibpb": False}):
        before = evaluate(point | {k: not v for k, v in removed.items()}, c)
        after = evaluate(point | removed, c)
        for name in CONFIDENCE:
            assert after[name][0] >= before[name][0], (removed, name)
