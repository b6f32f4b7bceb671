"""The compiled evaluation (model/kernel.py, model/select.py) against numpy.

Its three hand-written pieces are each checked against what they replace: the order
statistics against ``np.sort`` (exact, on shapes that break naive selection), the refill
probability against ``np.expm1``, and the whole compiled engine against the numpy engine
(:func:`model.evaluate.price`) on generated and shipped points. Agreement with the scalar
reference is tests/model/test_reference_agreement.py; bit-identity whatever the chunk is
tests/model/test_evaluate.py, for both engines.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asi_slowdown.model.evaluate import ENGINES, METRICS, evaluate, order_ranks
from asi_slowdown.model.kernel import (
    ROW_PAD,
    cost_rows,
    evaluate_points,
    point_factors,
    refill_probability,
)
from asi_slowdown.model.params import as_columns
from asi_slowdown.model.select import order_statistics, selection_scratch
from tests.model.shipped import load, point, profile_costs
from tests.model.test_evaluate import costs, table
from tests.strategies import points


@nb.njit
def _rows(values, ranks, out):
    scratch = selection_scratch(values.shape[1], ranks.shape[0])
    for p in range(values.shape[0]):
        x = values[p]
        total = 0.0
        total_sq = 0.0
        for v in x:
            total += v
            total_sq += v * v
        order_statistics(x, total, total_sq, ranks, out[p], scratch)


def _selected(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ranks, _ = order_ranks(values.shape[1])
    out = np.empty((values.shape[0], ranks.shape[0]))
    _rows(np.ascontiguousarray(values), ranks, out)
    return out, np.sort(values, axis=1)[:, ranks]


RNG = np.random.default_rng(7)
SHAPES = {
    "lognormal": RNG.lognormal(size=(64, 1024)),
    "heavy tail": RNG.pareto(1.2, size=(64, 1024)),
    "negative": -RNG.lognormal(size=(16, 1024)),
    "five values": RNG.integers(0, 5, size=(64, 1024)).astype(float),
    "two clusters": np.where(RNG.random((32, 1024)) < 0.5, 0.0, 1.0)
    + 1e-9 * RNG.random((32, 1024)),
    "all zero": np.zeros((4, 1024)),
    "all equal": np.full((4, 1024), 3.25),
    "one outlier": np.concatenate([np.ones((8, 1023)), np.full((8, 1), 1e300)], axis=1),
    "nan and inf": np.where(RNG.random((16, 1024)) < 0.02, np.nan, RNG.random((16, 1024)))
    + np.where(RNG.random((16, 1024)) < 0.01, np.inf, 0.0),
    "few samples": RNG.lognormal(size=(64, 7)),
    "odd count": RNG.lognormal(size=(16, 999)),
    # the histogram's own hard cases (model/select.py)
    "far outliers": np.concatenate(
        [RNG.normal(size=(16, 1000)), np.full((16, 24), 1e6)], axis=1
    ),  # the bulk in one bucket: found by splits
    "one ulp apart": 1.0 + np.spacing(1.0) * RNG.integers(0, 40, size=(16, 1024)),
    "spread lost in the moments": 1e10 + 1e-5 * RNG.integers(0, 3, size=(8, 1024)),  # sd 0
    "subnormals beside ones": np.where(
        RNG.random((8, 1024)) < 0.5, RNG.choice([0.0, 5e-324, 1e-310], size=(8, 1024)), 1.0
    ),  # extremes a few subnormals apart: sorted, not split
    "signed zeros": np.where(RNG.random((16, 1024)) < 0.6, 0.0, RNG.normal(size=(16, 1024)))
    * np.where(RNG.random((16, 1024)) < 0.5, -1.0, 1.0),
    "steps": np.repeat(RNG.lognormal(size=(16, 32)), 32, axis=1),  # ties in every bucket
    "two samples": RNG.lognormal(size=(16, 2)),  # the quantiles' ranks repeat: 0 1 0 1 0 1
    "three samples": RNG.lognormal(size=(16, 3)),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_order_statistics_are_exactly_those_of_a_sort(shape):
    selected, sorted_ = _selected(SHAPES[shape])
    np.testing.assert_array_equal(selected, sorted_)


def test_equal_values_come_in_the_order_of_a_stable_sort():
    """``0.0`` and ``-0.0`` compare equal: the one selected is a stable sort's, as the ladder's
    was (every pass keeps the values' order, the insertion sort is stable)."""
    values = SHAPES["signed zeros"]
    selected, _ = _selected(values)
    ranks, _ = order_ranks(values.shape[1])
    stable = np.sort(values, axis=1, kind="stable")[:, ranks]
    np.testing.assert_array_equal(np.signbit(selected), np.signbit(stable))
    np.testing.assert_array_equal(selected, stable)


@given(
    st.lists(
        st.floats(
            allow_nan=False, allow_infinity=False, width=64, min_value=-1e100, max_value=1e100
        ),
        min_size=1,
        max_size=300,
    )
)
@settings(max_examples=200, deadline=None)
def test_order_statistics_of_any_finite_values(values):
    selected, sorted_ = _selected(np.array([values]))
    np.testing.assert_array_equal(selected, sorted_)


def test_the_refill_probability_matches_expm1():
    x = np.concatenate([np.logspace(-300, 3, 20_000), [0.0, 0.1, np.nextafter(0.1, 0), 745.0, 1e6]])
    got = np.array([refill_probability(v, 1.0) for v in x])
    want = -np.expm1(-x)
    np.testing.assert_allclose(got, want, rtol=2e-15, atol=0)
    assert refill_probability(3.0, 0.0) == 0.0


def test_an_unknown_engine_is_named():
    with pytest.raises(ValueError, match="engine must be one of compiled, numpy, got 'fast'"):
        evaluate(table([]), costs(4), engine="fast")


def _agree(a: dict, b: dict) -> None:
    for name in METRICS:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-9, atol=1e-12, err_msg=name)


@given(st.lists(points, min_size=1, max_size=12))
@settings(deadline=None)
def test_the_engines_agree_on_generated_points(rows):
    c = costs(128)
    _agree(*(evaluate(table(rows), c, engine=engine) for engine in ENGINES))


def _shipped_points(cpu: str) -> list[dict]:
    """Every shipped workload x stage on ``cpu``, at 1 and 64 CPUs."""
    return [
        point(workload, stage, cpu, cpus=cpus, slots=2)
        for workload in load("workload")
        for stage in load("mitigations")
        for cpus in (1, 64)
    ]


@pytest.mark.parametrize("cpu", sorted(load("cpu")))
def test_the_engines_agree_on_every_shipped_point(cpu):
    rows = _shipped_points(cpu)
    columns = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    c = profile_costs(cpu, 256)
    _agree(*(evaluate(columns, c, engine=engine) for engine in ENGINES))


@pytest.mark.parametrize("cpu", sorted(load("cpu")))
def test_the_pass_never_reads_the_rows_padding(cpu):
    """The cost rows are padded by a cache line (``kernel.ROW_PAD``); NaN in the padding
    must leave every sum and order statistic exactly as it was."""
    rows = _shipped_points(cpu)
    factors = point_factors(as_columns({k: [r[k] for r in rows] for k in rows[0]}))
    padded = cost_rows(profile_costs(cpu, 100))  # not a multiple of the 8 samples of a line
    assert padded.shape[1] == 100 + ROW_PAD and not padded[:, 100:].any()
    ranks, _ = order_ranks(100)
    clean = evaluate_points(factors, padded, ranks)
    padded[:, 100:] = np.nan
    dirty = evaluate_points(factors, padded, ranks)
    for a, b in zip(clean, dirty, strict=True):
        np.testing.assert_array_equal(a, b)
