"""The shipped configurations (``conf/``) read as plain YAML, for model-only tests.

No Hydra: the model's tests stay fast and independent of the pipeline. A point
is a workload preset, a roadmap stage (``conf/mitigations``) and a CPU profile,
as ``asi-answer`` composes them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import yaml

from asi_slowdown.model.costs import CostSpec, sample_costs
from asi_slowdown.model.params import CPU_FLAGS, MITIGATION_FLAGS, WORKLOAD_PARAMS
from asi_slowdown.model.units import parse_size

CONF = Path(__file__).resolve().parents[2] / "conf"
SIZES = ("io_size", "file_size", "page_cache_size", "readahead")


@cache
def load(group: str) -> dict[str, dict]:
    """Every preset of a config group, by name."""
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted((CONF / group).glob("*.yaml"))}


DEFAULT_KERNEL = "linux_6_17"
"""The kernel whose defaults the shipped config compares with (``conf/config.yaml``)."""


def point(
    workload: str,
    stage: str,
    cpu: str,
    *,
    cpus: int = 1,
    slots: int = 2,
    kernel: str = DEFAULT_KERNEL,
    **overrides,
) -> dict:
    """The model point of a shipped workload at a roadmap stage on a CPU profile, compared with
    the defaults of a shipped kernel (``conf/kernel``)."""
    w, m, c = load("workload")[workload], load("mitigations")[stage], load("cpu")[cpu]
    out = {k: w[k] for k in WORKLOAD_PARAMS}
    out.update({k: parse_size(out[k]) for k in SIZES})
    out.update({k: bool(m.get(k, False)) for k in MITIGATION_FLAGS})
    out.update({k: bool(c[k]) for k in CPU_FLAGS})
    out.update(cpus=cpus, ephmap_slots=slots, kernel_version=load("kernel")[kernel]["version"])
    return out | overrides


def profile_costs(cpu: str, samples: int, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Common-random-number draws of a shipped CPU profile's costs."""
    profile = load("cpu")[cpu]
    specs = {
        name: CostSpec(**{k: v for k, v in spec.items() if k != "source"})
        for name, spec in profile["costs"].items()
    }
    return sample_costs(specs, samples, seed=seed, ghz=profile["ghz"])
