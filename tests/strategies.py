"""Hypothesis strategies for model inputs: points and cost samples."""

from __future__ import annotations

from hypothesis import strategies as st

from asi_slowdown.model.costs import COST_NAMES, SHARE_COSTS
from asi_slowdown.model.params import (
    BOOL_PARAMS,
    FRACTION_PARAMS,
    INT_PARAMS,
    POINT_PARAMS,
    VM_EXIT_REASONS,
)
from asi_slowdown.model.units import PAGE_SIZE

_sizes = st.integers(1, 1 << 20).map(lambda pages: pages * PAGE_SIZE)
_rates = st.one_of(st.just(0.0), st.floats(1e-4, 50.0))
_times = st.one_of(st.just(0.0), st.floats(1.0, 1e7))
_fractions = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))

SPECIAL = {
    "cpus": st.integers(1, 512),
    "ephmap_slots": st.integers(1, 8),
    # Linux versions around the defaults' changes (model.mechanism.DEFAULT_SINCE)
    "kernel_version": st.sampled_from([414, 415, 502, 518, 519, 601, 602, 609, 615, 617, 618]),
    "io_size": st.one_of(_sizes, st.integers(1, 1 << 22)),
    "file_size": _sizes,
    "page_cache_size": _sizes,
    "readahead": _sizes,
    "folio_pages": st.sampled_from([1, 4, 16, 32, 33, 64, 512]),
    "device_latency": _times,
    "device_bandwidth": st.floats(1e6, 1e11),
    "base_time": st.floats(1.0, 1e7),
    # a guest's VM exits per second per vCPU: none, or up to a busy I/O guest's
    **{f"vmexits_{r}_per_s": st.one_of(st.just(0.0), st.floats(1.0, 1e6)) for r in VM_EXIT_REASONS},
    # the host's work around a guest, per second per vCPU, and the guest RAM it backs per op
    **{
        name: st.one_of(st.just(0.0), st.floats(1.0, 1e6))
        for name in ("kvm_run_returns_per_s", "vmm_io_syscalls_per_s", "vmm_thread_switches_per_s")
    },
    "guest_ram_touched_per_op": st.one_of(st.just(0.0), _sizes),
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
        name: st.floats(1.0, 500.0)
        if name in BANDWIDTHS
        else _fractions
        if name in SHARE_COSTS
        else st.floats(0.0, 1e5)
        for name in COST_NAMES
    }
)
"""One cost sample: times in [ns], bandwidths in [bytes/ns], shares in [0-1]."""


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
_COSTS = ["ibpb", "page_walk", "cr3_write"]


def _pair(fields, values):
    return st.tuples(st.sampled_from(fields), st.sampled_from(values)).map(
        lambda kv: (f"{kv[0]}={kv[1]}", kv[0])
    )


_bad_everywhere = st.one_of(
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
    _pair(
        _SIZE_FIELDS,
        ["1Q", "4KK", "-4K", "K", "0", "1.3", "99999P", "4 K B", "4x", "9" * 400 + "K"],
    ),
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
    # malformed override syntax: the override itself is named
    st.sampled_from(
        ["cpus=[1", "=3", "cpus", "cpus=1)", "workload.file_size=${oops", "a b=1", "cpus=(1"]
    ).map(lambda o: (o, o)),
)
"""Overrides every entry point rejects, and the field (or the override) the error must name."""

_one_value_sweeps = st.one_of(
    # sweeps where one value is expected, and empty ones
    _pair(["cpus", "ephmap.slots"], ["1,2", "range(1,4)", "choice(1,2)", "[]"]),
    st.sampled_from(
        [("workload=glob(*)", "workload"), ("mitigations=rfc_v2,multi_slot", "mitigations")]
    ),
)

_answer_lists = st.sampled_from(
    [
        ("answer.vs_cpus=[8,1,1]", "answer.vs_cpus"),
        ("answer.vs_slots=[2,2]", "answer.vs_slots"),
        ("answer.vs_cpus=[100000]", "answer.vs_cpus[0]"),
        ("answer.vs_slots=[1,0]", "answer.vs_slots[1]"),
    ]
)
"""``asi-answer``'s lists: a repeated value, and values out of the range their scalar has."""

bad_override = st.one_of(_bad_everywhere, _one_value_sweeps, _answer_lists)
"""One invalid override (for ``asi-answer``) and the field its error must name."""

_EXECUTION = {
    "sweep.chunk_size": ["0", "-1", "abc"],
    "sweep.max_chunk_points": ["0"],
    "sweep.target_task_seconds": ["0", "-1", "nan"],
    "sweep.points_per_second": ["0", "-5"],
    "sweep.max_in_flight": ["0"],
    "sweep.max_retries": ["-1", "1.5"],
    "store.part_rows": ["0", "1.5"],
    "store.flush_seconds": ["-1", "nan"],
    "store.path": [""],
    "ray.num_cpus": ["0", "-2"],
    "ray.address": ["nowhere", "host:port", "http://x"],
    "ray.object_store_memory": ["1", "1000"],
}

bad_sweep_override = st.one_of(
    _bad_everywhere,
    # empty sweeps: no value, or no option matched
    _pair(["cpus", "ephmap.slots", "samples"], ["range(1,1)", "range(5,1)", "range(3,3,1)"]),
    _pair(["workload", "cpu", "mitigations"], ["glob(nope*)", "glob(*,exclude=*)"]),
    # unknown options, bad values and wrong types inside a sweep
    st.sampled_from(
        [
            ("workload=fio_randread_tmpfs,nope", "workload"),
            ("cpu=amd_zen4,pentium4", "cpu"),
            ("mitigations=rfc_v2,everything", "mitigations"),
        ]
    ),
    _pair(["cpus", "ephmap.slots"], ["1,0", "2,-3", "1,abc", "1,2.5", "1,inf", "[1,2],[3]", "[]"]),
    _pair(["samples"], ["16,0", "16,100000000"]),
    _pair(["seed"], ["1,-1"]),
    _pair(_SIZE_FIELDS, ["64M,1Q", "4K,0", "1G,-4K", "64M," + "9" * 400 + "K"]),
    _pair(_FLOAT_FIELDS, ["1,nan", "1,-1", "2,abc"]),
    _pair(_FRACTION_FIELDS, ["0.5,1.5", "0,-0.1"]),
    _pair(_BOOL_FIELDS, ["true,2", "maybe,true", "1,0"]),
    _pair([f"cpu.costs.{c}.low" for c in _COSTS], ["1,-5", "1,nan"]),
    _pair(["cpu.ghz"], ["2,nan", "2,100"]),
    # not a list of values, a zero step, and sizes that are typos
    _pair(["cpus", "ephmap.slots"], ["interval(1,4)", "range(1,5,0)", "range(1.0,5,0)"]),
    _pair(["cpus"], ["range(1,100000000)", "range(1,inf)"]),
    _pair(["seed"], ["range(0,20000)"]),
    # keys that cannot be swept, and sweeps that add or delete keys
    st.sampled_from(
        [
            ("answer.format=table,json", "answer.format"),
            ("store.path=a,b", "store.path"),
            ("roadmap=glob(*)", "roadmap"),
            ("ray.num_cpus=1,2", "ray.num_cpus"),
            ("sweep.chunk_size=1,2", "sweep.chunk_size"),
            ("+foo=1,2", "foo"),
            ("workload.nonexistent=1,2", "workload.nonexistent"),
            ("cpu.costs.vmexit.low=1,2", "cpu.costs.vmexit"),
        ]
    ),
    # execution settings out of range
    st.sampled_from(sorted(_EXECUTION)).flatmap(
        lambda key: st.sampled_from(_EXECUTION[key]).map(lambda v: (f"{key}={v}", key))
    ),
)
"""One override ``asi-sweep`` rejects (sweeps included) and the field its error must name."""

bad_override_sets = st.tuples(
    bad_override, st.lists(st.sampled_from(VALID_OVERRIDES), max_size=2, unique=True), st.randoms()
).map(lambda t: _shuffled(t[0], t[1], t[2]))
"""``(overrides, field)``: one bad override among up to two valid ones, in random order."""

bad_sweep_override_sets = st.tuples(
    bad_sweep_override,
    st.lists(st.sampled_from(VALID_OVERRIDES), max_size=2, unique=True),
    st.randoms(),
).map(lambda t: _shuffled(t[0], t[1], t[2]))
"""Like :data:`bad_override_sets`, for ``asi-sweep`` (whose valid overrides may be sweeps)."""


def _shuffled(bad, valid, rnd):
    overrides = [o for o in valid if o.split("=")[0] != bad[1]] + [bad[0]]
    rnd.shuffle(overrides)
    return overrides, bad[1]


# --------------------------------------------------------------------------- asi-report, asi-calibrate
def _each(table: dict[str, list[str]]):
    """``(key=value, key)`` for every key of ``table`` and each of its bad values."""
    return st.sampled_from(sorted(table)).flatmap(
        lambda key: st.sampled_from(table[key]).map(lambda v: (f"{key}={v}", key))
    )


_REPORT = {
    "report.mode": ["x", "NIGHTLY", "null", "1", "[adhoc]"],
    "report.experiment": ["nope", "Default", "../default"],
    "report.whole_store": ["maybe", "2", "[true]"],
    "report.focus.cpus": ["0", "-1", "abc", "1.5", "[1]"],
    "report.focus.ephmap_slots": ["0", "-2", "x"],
    "report.focus.file_size": ["1Q", "-4K", "4KK", "K", "1.3", "4 K B", "9" * 400 + "K"],
    "report.date": ["yesterday", "2026-02-30", "2026-13-01", "1", "26-1-1"],
    "report.move_threshold": ["-1", "nan", "inf", "-inf", "abc", "-0.001"],
    "report.history": ["null"],
    "report.focus": ["3", "[1]"],
    "dask.scheduler": ["foo", "''", "tcp:/x", "1", "thread"],
    "dask.num_workers": ["0", "-1", "abc", "1.5"],
    "dask.progress": ["2", "maybe"],
    "store.path": ["''", "null"],
}
"""Bad values of the settings only ``asi-report`` reads (every one refused before the store)."""

REPORT_VALID = [
    "samples=64",
    "seed=3",
    "cpu=amd_zen4",
    "report.mode=nightly",
    "report.focus.cpus=2",
    "report.move_threshold=0.01",
    "report.date=2026-01-31",
    "dask.num_workers=1",
]
"""Overrides ``asi-report`` accepts; mixed into its bad sets."""

_report_only = st.one_of(
    _each(_REPORT),
    st.sampled_from(
        [
            ("report.nonexistent=1", "report.nonexistent"),
            ("report.focus.nope=1", "report.focus.nope"),
            ("dask.nope=1", "dask.nope"),
            ("dask=nope", "dask"),
            ("baseline=nope", "baseline"),
            ("report=nope", "report"),
            ("report.mode=adhoc,nightly", "report.mode"),
            ("report.focus.cpus=1,2", "report.focus.cpus"),
            ("report.date=range(1,3)", "report.date"),
        ]
    ),
)

bad_report_override = st.one_of(_bad_everywhere, _one_value_sweeps, _report_only)
"""One override ``asi-report`` rejects before it reads the store, and the field to name."""


def bad_report_override_sets(a_file: str, missing: str):
    """Like :data:`bad_override_sets` for ``asi-report``; ``a_file`` is an existing file
    (not a directory) and ``missing`` a path that does not exist."""
    paths = st.sampled_from(
        [
            (f"report.dir={a_file}", "report.dir"),
            (f"store.path={a_file}", "store.path"),
            (f"store.path={missing}", "store.path"),
        ]
    )
    return _sets(st.one_of(bad_report_override, paths), REPORT_VALID)


_SIGMAS = [f"calibrate.{k}_sigma" for k in ("time", "loss", "exit", "sys")]
_CALIBRATE = {
    "calibrate.name": ["a-b", "_x", "1x", "null", "[a]", "sapphire_rapids", "a.b", "${oops"],
    **{k: ["0", "-1", "nan", "inf", "-inf", "abc", "[1]", "1e400", "null", "0,1"] for k in _SIGMAS},
    "calibrate.report_dir": ["null"],
    "calibrate.conf_dir": ["null"],
    "measurements": ["nope", "''", "null", "rfc_v2,ephmap_posting", "rfc_v2_anchor"],
}
"""Bad values of ``asi-calibrate``'s own options."""

CALIBRATE_VALID = [
    "samples=64",
    "seed=3",
    "ephmap.slots=4",
    "calibrate.name=fuzzed",
    "calibrate.time_sigma=0.05",
    "calibrate.exit_sigma=0.2",
]
"""Overrides ``asi-calibrate`` accepts with the shipped ``rfc_v2`` measurements (``conf/validation/rfc_v2.yaml``)."""

_calibrate_only = st.one_of(
    _each(_CALIBRATE),
    st.sampled_from(
        [
            ("calibrate.nonexistent=1", "calibrate.nonexistent"),
            ("+calibrate.x=1", "calibrate.x"),
            ("calibrate=1", "calibrate"),
            ("calibrate.name", "calibrate.name"),
            ("measurements", "measurements"),
            ("~calibrate.name", "~calibrate.name"),
        ]
    ),
)


def bad_calibrate_override_sets(a_file: str, wrong_suffix: str, empty_dir: str):
    """Like :data:`bad_override_sets` for ``asi-calibrate``: project overrides and its own.

    ``a_file`` is an existing file, ``wrong_suffix`` an existing ``.txt`` file and
    ``empty_dir`` an empty directory (neither is a measurement).
    """
    paths = st.sampled_from(
        [
            (f"calibrate.report_dir={a_file}", "calibrate.report_dir"),
            (f"calibrate.conf_dir={a_file}", "calibrate.conf_dir"),
            (f"calibrate.conf_dir={a_file}/sub", "calibrate.conf_dir"),
            (f"calibrate.report_dir={a_file}/a/b", "calibrate.report_dir"),
            (f"measurements={wrong_suffix}", wrong_suffix),
            (f"measurements={empty_dir}", empty_dir),
            (f"measurements={a_file}/x.csv", "measurements"),
        ]
    )
    return _sets(
        st.one_of(_bad_everywhere, _one_value_sweeps, _calibrate_only, paths), CALIBRATE_VALID
    )


def _sets(bad, valid: list[str]):
    return st.tuples(
        bad, st.lists(st.sampled_from(valid), max_size=2, unique=True), st.randoms()
    ).map(lambda t: _shuffled(t[0], t[1], t[2]))
