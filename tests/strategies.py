"""Hypothesis strategies for model inputs: points and cost samples."""

from __future__ import annotations

from hypothesis import strategies as st

from model.costs import COST_NAMES
from model.params import BOOL_PARAMS, FRACTION_PARAMS, INT_PARAMS, POINT_PARAMS
from model.units import PAGE_SIZE

_sizes = st.integers(1, 1 << 20).map(lambda pages: pages * PAGE_SIZE)
_rates = st.one_of(st.just(0.0), st.floats(1e-4, 50.0))
_times = st.one_of(st.just(0.0), st.floats(1.0, 1e7))
_fractions = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))

SPECIAL = {
    "cpus": st.integers(1, 512),
    "ephmap_slots": st.integers(1, 8),
    "io_size": st.one_of(_sizes, st.integers(1, 1 << 22)),
    "file_size": _sizes,
    "page_cache_size": _sizes,
    "readahead": _sizes,
    "folio_pages": st.sampled_from([1, 4, 16, 32, 33, 64, 512]),
    "device_latency": _times,
    "device_bandwidth": st.floats(1e6, 1e11),
    "base_time": st.floats(1.0, 1e7),
}


def _param(name: str):
    if name in SPECIAL:
        return SPECIAL[name]
    if name in BOOL_PARAMS:
        return st.booleans()
    if name in FRACTION_PARAMS:
        return _fractions
    if name in INT_PARAMS:
        return st.integers(1, 1000)
    return _rates


points = st.fixed_dictionaries({name: _param(name) for name in POINT_PARAMS})
"""One point: every parameter as a Python scalar within its valid range."""

BANDWIDTHS = {"copy_bandwidth", "mem_bandwidth"}
cost_sample = st.fixed_dictionaries(
    {
        name: st.floats(1.0, 500.0) if name in BANDWIDTHS else st.floats(0.0, 1e5)
        for name in COST_NAMES
    }
)
"""One cost sample: times in [ns], bandwidths in [bytes/ns]."""
