"""Structured-config schemas, registered in Hydra's ConfigStore.

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

from model.costs import COST_NAMES
from model.params import MITIGATION_FLAGS, WORKLOAD_PARAMS

SIZE_FIELDS = ("io_size", "file_size", "page_cache_size", "readahead")
"""Workload fields given as fio size strings (``4K``, ``64M``, ``1G``)."""

BOOL_WORKLOAD_FIELDS = ("sequential",)
INT_WORKLOAD_FIELDS = ("folio_pages",)


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
class CpuConf:
    """A CPU cost profile (``conf/cpu``)."""

    name: str = MISSING
    description: str = ""
    ghz: float = MISSING
    ibpb: bool = True
    l1tf: bool = False
    costs: CostsConf = MISSING
    provenance: Any = None  # filled by asi-calibrate: inputs, residuals, date


def _workload_type(name: str):
    if name in SIZE_FIELDS:
        return str
    if name in BOOL_WORKLOAD_FIELDS:
        return bool
    if name in INT_WORKLOAD_FIELDS:
        return int
    return float


WorkloadConf = make_dataclass(
    "WorkloadConf",
    [("name", str, field(default=MISSING)), ("description", str, field(default=""))]
    + [(name, _workload_type(name), field(default=MISSING)) for name in WORKLOAD_PARAMS],
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
class RoadmapConf:
    name: str = MISSING
    stages: list[str] = MISSING


@dataclass
class AnswerConf:
    format: str = "table"  # table | json


@dataclass
class Config:
    workload: WorkloadConf = MISSING
    cpu: CpuConf = MISSING
    mitigations: MitigationsConf = MISSING
    roadmap: RoadmapConf = MISSING
    ephmap: EphmapConf = field(default_factory=EphmapConf)
    answer: AnswerConf = field(default_factory=AnswerConf)
    cpus: int = 1
    samples: int = 1024
    seed: int = 0


def register() -> None:
    """Store the schema as ``config_schema`` (the first entry of ``conf/config.yaml``'s defaults)."""
    ConfigStore.instance().store(name="config_schema", node=Config)
