"""Structured-config schemas, registered in Hydra's ConfigStore: one :class:`Config` with
every section, each command's included (checked by :mod:`pipeline.configuration.checks`).

The schemas mirror the model: workload fields are
:data:`model.params.WORKLOAD_PARAMS`, mitigation flags
:data:`model.params.MITIGATION_FLAGS`, and a CPU profile's costs
:data:`model.costs.COST_NAMES`. Because the dataclasses are generated from
those tables, a typo'd key or a wrong type fails at composition, and adding a
parameter to the model is one edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from asi_slowdown.model.costs import COST_NAMES
from asi_slowdown.model.params import (
    BOOL_PARAMS,
    CPU_FLAGS,
    INT_PARAMS,
    MITIGATION_FLAGS,
    WORKLOAD_PARAMS,
)

SIZE_FIELDS = ("io_size", "file_size", "page_cache_size", "readahead")
"""Workload fields given as fio size strings (``4K``, ``64M``, ``1G``)."""


@dataclass
class CostSpecConf:
    """One uncertain cost (see :class:`model.costs.CostSpec`), with its source."""

    dist: str = "loguniform"
    low: float | None = None
    high: float | None = None
    value: float | None = None
    unit: str = "ns"
    source: str = MISSING


CostsConf = make_dataclass(
    "CostsConf", [(name, CostSpecConf, field(default=MISSING)) for name in COST_NAMES]
)


@dataclass
class CorrelationConf:
    """Correlation ``rho`` in [-1, 1] between the normal scores of costs ``a`` and ``b``
    (a Gaussian copula, see :func:`model.costs.correlate_uniforms`)."""

    a: str = MISSING
    b: str = MISSING
    rho: float = MISSING


CpuConf = make_dataclass(
    "CpuConf",
    [
        ("name", str, field(default=MISSING)),
        ("description", str, field(default="")),
        ("ghz", float, field(default=MISSING)),
    ]
    # the CPU's flags (model.params.CPU_FLAGS): which flushes run, which default
    # mitigations the kernel runs on it and which of them ASI keeps
    + [(flag, bool, field(default=MISSING)) for flag in CPU_FLAGS]
    + [
        ("costs", CostsConf, field(default=MISSING)),
        # pairs of correlated costs, e.g. [{a: page_walk, b: ibpb, rho: -0.7}]; unlisted: independent
        ("correlations", list[CorrelationConf], field(default_factory=list)),
        (
            "provenance",
            Any,
            field(default=None),
        ),  # filled by asi-calibrate: inputs, residuals, date
    ],
)
CpuConf.__doc__ = """A CPU cost profile (``conf/cpu``)."""


def _workload_type(name: str):
    if name in SIZE_FIELDS:
        return str
    if name in BOOL_PARAMS:
        return bool
    if name in INT_PARAMS:
        return int
    return float


WorkloadConf = make_dataclass(
    "WorkloadConf",
    [("name", str, field(default=MISSING)), ("description", str, field(default=""))]
    + [(name, _workload_type(name), field(default=MISSING)) for name in WORKLOAD_PARAMS]
    # filled by asi-calibrate for a workload calibrated on measurements
    + [("provenance", Any, field(default=None))],
)

MitigationsConf = make_dataclass(
    "MitigationsConf",
    [("name", str, field(default=MISSING))]
    + [(flag, bool, field(default=False)) for flag in MITIGATION_FLAGS],
)


@dataclass
class EphmapConf:
    slots: int = 2  # allocations per CPU once multi_slot lands (the prototype has 1)


@dataclass
class KernelConf:
    """The Linux version whose default mitigations ASI is compared with (``conf/kernel``)."""

    name: str = MISSING
    release: str = MISSING  # "6.17"
    version: int = MISSING  # major x 100 + minor (617): model.params.SYSTEM_PARAMS kernel_version
    description: str = ""


@dataclass
class RoadmapConf:
    name: str = MISSING
    stages: list[str] = MISSING


@dataclass
class BaselineConf:
    """What verdicts compare ASI with (``conf/baseline``): ``mitigations_off``,
    ``kernel_default`` or ``ibpb_vmexit`` (the default plus the blanket VM protection,
    :data:`model.params.VM_BASELINE`). Every comparison is always computed."""

    name: str = MISSING
    description: str = ""


@dataclass
class AnswerConf:
    format: str = "table"  # table | json
    vs_cpus: list[int] = field(default_factory=list)  # also tabulate the stages at these CPU counts
    vs_slots: list[int] = field(default_factory=list)  # ... and at these ephmap slot counts
    # auto: the results store when it holds every stage, else the model | store | model
    source: str = "auto"
    budget: bool = False  # also say what each cost would have to be for the last stage to meet 1 %


@dataclass
class StoreConf:
    """The results store (``pipeline/store/parts.py``): where, and how rows are grouped into part files."""

    path: str = "outputs/store"  # a directory of Parquet part files (pyarrow.dataset)
    part_rows: int = 100_000  # rows buffered before a part file is committed
    flush_seconds: float = 30.0  # ... or seconds since the last commit, whichever comes first


@dataclass
class RayConf:
    """How the sweep reaches Ray (``conf/ray``)."""

    address: str | None = None  # None: embedded local Ray; "auto" or "ray://host:port": connect
    num_cpus: int | None = None  # embedded only; None: every CPU of this machine
    object_store_memory: int | None = None  # embedded only [bytes]; None: sized for the machine
    log_to_driver: bool = False  # forward worker logs to the terminal
    ship_code: bool | None = None  # send model/ and pipeline/ as py_modules; None: for ray:// only


@dataclass
class SweepConf:
    """How the grid is cut into Ray tasks (``pipeline/sweep/run.py``)."""

    chunk_size: int | None = None  # points per task; None: sized to target_task_seconds
    target_task_seconds: float = 1.0  # wall time one task should take [s]
    points_per_second: float | None = None  # per worker; None: measured on the first chunk
    max_chunk_points: int = 20_000  # upper bound on a chunk, to bound memory per task [points]
    max_in_flight: int | None = None  # tasks submitted but not collected; None: 2 x cluster CPUs
    max_retries: int = 3  # reruns of a task whose worker crashed (not of one that raised)
    progress: bool = True  # on stderr: a live bar on a terminal, a plain line per 10 % in a log


@dataclass
class DaskConf:
    """Where the store's aggregation runs (``conf/dask``, ``pipeline/report/aggregate.py``)."""

    scheduler: str = "threads"  # threads | ray (Dask-on-Ray, the sweep's Ray) | tcp://host:port
    num_workers: int | None = None  # threads only: worker threads; None: every CPU
    progress: bool = True  # progress bar on stderr (threads and ray)


@dataclass
class FocusConf:
    """The dimensions a report's projection tables are shown at; None: the config's own."""

    cpus: int | None = None  # None: ``cpus``
    file_size: str | None = None  # None: each workload's preset (fio size string)
    ephmap_slots: int | None = None  # None: ``ephmap.slots``


@dataclass
class ReportConf:
    """``asi-report`` (``conf/report``, ``pipeline/report/build.py``)."""

    dir: str | None = None  # None: a new outputs/reports/<UTC time>-<random suffix> per run
    mode: str = "adhoc"  # adhoc | nightly (appends the projection to the history, compares)
    experiment: str | None = None  # the grid reported on; None: default (nightly mode: nightly)
    whole_store: bool = False  # every stored preset point (not what-ifs) at seed and samples
    focus: FocusConf = field(default_factory=FocusConf)
    history: str = "outputs/history"  # nightly projections, Parquet partitioned by date
    date: str | None = None  # the night's date (YYYY-MM-DD); None: today (UTC)
    move_threshold: float = 0.005  # flag a slowdown p50 that moved more than this [fraction]


@dataclass
class ValidateConf:
    """``asi-validate`` (``pipeline/validate``): the model against the public record."""

    format: str = "table"  # table | json
    cases: list[str] = field(default_factory=list)  # only these cases; empty: every case
    leave_one_out: bool = True  # calibrate on the other cases and predict each one
    splits: bool = True  # the named splits of conf/validation/*.yaml
    figure: bool = True  # predicted vs published, written under validate.dir
    dir: str | None = None  # None: outputs/validation/<UTC time>
    progress: bool = True  # a line on stderr per case and fit


@dataclass
class CalibrateConf:
    """``asi-calibrate`` (``pipeline/calibrate``): how measurements are fitted, where the results go."""

    name: str = ""  # the calibrated profile; "": <base profile>_calibrated
    conf_dir: str = ""  # "": the user's config directory (ASI_CONFIG_DIR, default outputs/conf)
    report_dir: str = "outputs/calibration"
    time_sigma: float = 0.02  # relative standard error of a fio time per op
    loss_sigma: float = 0.02  # standard error of a published loss (unless its row has sigma)
    exit_sigma: float = 0.1  # relative standard error of a published exit count (ditto)
    sys_sigma: float = 0.1  # softness of the system-CPU-time bound on kernel time


@dataclass
class Config:
    workload: WorkloadConf = MISSING
    cpu: CpuConf = MISSING
    mitigations: MitigationsConf = MISSING
    roadmap: RoadmapConf = MISSING
    baseline: BaselineConf = MISSING
    kernel: KernelConf = MISSING
    ephmap: EphmapConf = field(default_factory=EphmapConf)
    answer: AnswerConf = field(default_factory=AnswerConf)
    store: StoreConf = field(default_factory=StoreConf)
    ray: RayConf = field(default_factory=RayConf)
    sweep: SweepConf = field(default_factory=SweepConf)
    dask: DaskConf = field(default_factory=DaskConf)
    report: ReportConf = field(default_factory=ReportConf)
    validate: ValidateConf = field(default_factory=ValidateConf)
    calibrate: CalibrateConf = field(default_factory=CalibrateConf)
    # asi-calibrate's input: a directory, a CSV or a group of conf/validation ("": none)
    measurements: str = ""
    cpus: int = 1
    samples: int = 1024
    seed: int = 0


def register() -> None:
    """Store the schema as ``config_schema`` (the first entry of ``conf/config.yaml``'s defaults)."""
    ConfigStore.instance().store(name="config_schema", node=Config)
