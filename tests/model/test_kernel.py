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
from asi_slowdown.model.kernel import refill_probability
from asi_slowdown.model.select import LADDER, order_statistics
from tests.model.shipped import load, point, profile_costs
from tests.model.test_evaluate import costs, table
from tests.strategies import points


@nb.njit
def _rows(values, ranks, out):
    n = values.shape[1]
    work = np.empty((ranks.shape[0], n))
    sorted_ = np.empty(n)
    spare = np.empty(n)
    pivots = np.empty(LADDER.shape[0] + 8)
    counts = np.empty(LADDER.shape[0] + 8, dtype=np.int64)
    bounds = np.empty((2, ranks.shape[0]))
    index = np.empty((3, ranks.shape[0]), dtype=np.int64)
    for p in range(values.shape[0]):
        x = values[p]
        total = 0.0
        total_sq = 0.0
        for v in x:
            total += v
            total_sq += v * v
        order_statistics(
            x, total, total_sq, ranks, out[p], work, sorted_, spare, pivots, counts, bounds, index
        )


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
}


@pytest.mark.parametrize("shape", SHAPES)
def test_order_statistics_are_exactly_those_of_a_sort(shape):
    selected, sorted_ = _selected(SHAPES[shape])
    np.testing.assert_array_equal(selected, sorted_)


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


@pytest.mark.parametrize("cpu", sorted(load("cpu")))
def test_the_engines_agree_on_every_shipped_point(cpu):
    rows = [
        point(workload, stage, cpu, cpus=cpus, slots=2)
        for workload in load("workload")
        for stage in load("mitigations")
        for cpus in (1, 64)
    ]
    columns = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    c = profile_costs(cpu, 256)
    _agree(*(evaluate(columns, c, engine=engine) for engine in ENGINES))
