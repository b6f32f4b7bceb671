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


# --------------------------------------------------------------------------- bad overrides
VALID_OVERRIDES = [
    "cpus=2",
    "samples=64",
    "seed=3",
    "workload=fork_exec",
    "cpu=amd_zen4",
    "mitigations=multi_slot",
    "ephmap.slots=4",
    "workload.file_size=64M",
    "cpu.ibpb=false",
]
"""Overrides every entry point accepts; mixed into bad sets so the bad one is not always alone."""

_INT_FIELDS = ["cpus", "samples", "seed", "ephmap.slots", "workload.folio_pages"]
_FLOAT_FIELDS = [
    "workload.base_time",
    "workload.io_per_op",
    "workload.device_latency",
    "workload.cow_per_op",
]
_POSITIVE_FLOAT_FIELDS = ["workload.base_time", "workload.device_bandwidth"]
_FRACTION_FIELDS = [
    "workload.ctxsw_mm_change",
    "workload.metadata_per_io",
    "workload.io_fault_fraction",
]
_BOOL_FIELDS = ["mitigations.ephmap", "mitigations.multi_slot", "cpu.ibpb", "workload.sequential"]
_SIZE_FIELDS = [
    "workload.file_size",
    "workload.io_size",
    "workload.page_cache_size",
    "workload.readahead",
]
_GROUPS = {"workload": "nope", "cpu": "pentium4", "mitigations": "everything", "roadmap": "fast"}
_COSTS = ["ibpb", "tlb_refill", "cr3_write"]


def _pair(fields, values):
    return st.tuples(st.sampled_from(fields), st.sampled_from(values)).map(
        lambda kv: (f"{kv[0]}={kv[1]}", kv[0])
    )


bad_override = st.one_of(
    # wrong types
    _pair(_INT_FIELDS, ["abc", "1.5", "[1]", "{a: 1}", "x1"]),
    _pair(_FLOAT_FIELDS, ["abc", "[1.0]", "{}", "1,5e"]),
    _pair(_BOOL_FIELDS, ["maybe", "2", "yess", "[true]"]),
    # NaN and infinities
    _pair(_FLOAT_FIELDS + _FRACTION_FIELDS, ["nan", "inf", "-inf", "NaN"]),
    # negative, zero, out of range, huge
    _pair(_INT_FIELDS[:2] + ["ephmap.slots"], ["0", "-3"]),
    _pair(_FLOAT_FIELDS, ["-1", "-0.001", "1e300"]),
    _pair(_POSITIVE_FLOAT_FIELDS, ["0", "0.0"]),
    _pair(_FRACTION_FIELDS, ["1.5", "-0.1", "2"]),
    _pair(["cpus"], ["100000", "99999999999999999999"]),
    _pair(["samples"], ["100000000"]),
    # bad size strings
    _pair(_SIZE_FIELDS, ["1Q", "4KK", "-4K", "K", "0", "1.3", "99999P", "4 K B", "4x"]),
    # unknown keys and group options
    st.sampled_from(
        [
            ("workload.nonexistent=1", "workload.nonexistent"),
            ("+nonexistent=1", "nonexistent"),
            ("nonexistent=1", "nonexistent"),
            ("cpu.costs.vmexit.low=1", "cpu.costs.vmexit"),
            ("ephmap.size=2", "ephmap.size"),
        ]
    ),
    st.sampled_from(sorted(_GROUPS.items())).map(lambda kv: (f"{kv[0]}={kv[1]}", kv[0])),
    # cost distributions
    _pair([f"cpu.costs.{c}.low" for c in _COSTS], ["-5", "0", "nan", "1e30"]),
    _pair([f"cpu.costs.{c}.dist" for c in _COSTS], ["gamma", "normal"]),
    _pair([f"cpu.costs.{c}.unit" for c in _COSTS], ["s", "Hz"]),
    _pair(["cpu.ghz"], ["0", "-1", "nan", "100"]),
    # sweeps where one value is expected, and empty ones
    _pair(["cpus", "ephmap.slots"], ["1,2", "range(1,4)", "choice(1,2)", "[]"]),
    st.sampled_from(
        [("workload=glob(*)", "workload"), ("mitigations=rfc_v2,multi_slot", "mitigations")]
    ),
    # malformed override syntax: the override itself is named
    st.sampled_from(
        ["cpus=[1", "=3", "cpus", "cpus=1)", "workload.file_size=${oops", "a b=1", "cpus=(1"]
    ).map(lambda o: (o, o)),
)
"""One invalid override and the field (or the override itself) its error must name."""

bad_override_sets = st.tuples(
    bad_override, st.lists(st.sampled_from(VALID_OVERRIDES), max_size=2, unique=True), st.randoms()
).map(lambda t: _shuffled(t[0], t[1], t[2]))


def _shuffled(bad, valid, rnd):
    overrides = [o for o in valid if o.split("=")[0] != bad[1]] + [bad[0]]
    rnd.shuffle(overrides)
    return overrides, bad[1]
