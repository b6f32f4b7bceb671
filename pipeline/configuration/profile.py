"""A composed config as the model's inputs: its point and its cost draws (:class:`ModelProfile`).

:func:`model_profile` is the one conversion, and the check of everything the model
will see (the point's ranges, the cost distributions, the correlations): a composed
config is checked by converting it (:func:`pipeline.configuration.checks.validate`),
and the composer hands out the profile it made with the config
(:meth:`pipeline.configuration.compose.Composer.compose_profile`), so each composition
is converted once. :func:`point_from_config` is its first step alone, for a config
that is not checked (Hydra's own jobs, in the grammar tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig, OmegaConf

from asi_slowdown.model.costs import (
    Correlation,
    CostSpec,
    canonical_correlations,
    check_correlations,
    sample_costs,
)
from asi_slowdown.model.params import (
    CPU_FLAGS,
    MITIGATION_FLAGS,
    WORKLOAD_PARAMS,
    as_columns,
    check_ranges,
)
from asi_slowdown.model.units import parse_size
from asi_slowdown.pipeline.configuration.errors import ConfigError
from asi_slowdown.pipeline.configuration.schema import SIZE_FIELDS

PARAM_LABELS: dict[str, str] = {
    "cpus": "cpus",
    "ephmap_slots": "ephmap.slots",
    "kernel_version": "kernel.version",
    **{name: f"workload.{name}" for name in WORKLOAD_PARAMS},
    **{name: f"mitigations.{name}" for name in MITIGATION_FLAGS},
    **{name: f"cpu.{name}" for name in CPU_FLAGS},
}
"""The config path a user knows each point parameter by."""

MAX_GHZ = 10
"""A clock above this [GHz] is a typo (``cpu.ghz=2900`` meant MHz)."""


@dataclass(frozen=True)
class ModelProfile:
    """What one composed config gives the model: a point, and what its cost draws depend on.

    ``point`` holds the model's point parameters (Python scalars, sizes in [bytes]);
    ``cost_specs`` the CPU profile's distributions (without their ``source`` notes) and
    ``correlations`` its canonical ``(a, b, rho)`` triples
    (:func:`model.costs.canonical_correlations`: ordered, zeros dropped, so equal
    matrices hash alike).
    """

    point: Mapping[str, float | bool]
    cost_specs: Mapping[str, CostSpec]
    correlations: tuple[Correlation, ...]
    ghz: float
    seed: int
    samples: int

    def costs(self, samples: int | None = None) -> dict[str, np.ndarray]:
        """Common-random-number cost draws (``samples`` of them; default: the config's)."""
        return sample_costs(
            self.cost_specs,
            self.samples if samples is None else samples,
            seed=self.seed,
            ghz=self.ghz,
            correlations=self.correlations,
        )


def point_from_config(cfg: DictConfig) -> dict:
    """The model's point parameters for one composed config (Python scalars), unchecked."""
    w = cfg.workload
    point = {name: w[name] for name in WORKLOAD_PARAMS}
    for name in SIZE_FIELDS:
        try:
            point[name] = parse_size(w[name], f"workload.{name}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    point.update({name: bool(cfg.mitigations[name]) for name in MITIGATION_FLAGS})
    point.update({name: bool(cfg.cpu[name]) for name in CPU_FLAGS})
    point["cpus"] = cfg.cpus
    point["ephmap_slots"] = cfg.ephmap.slots
    point["kernel_version"] = cfg.kernel.version
    return point


def model_profile(cfg: DictConfig) -> ModelProfile:
    """The model's inputs of a composed config, checked: one-line :class:`ConfigError` else.

    Checks ``cpu.ghz``, every point parameter's range (:func:`model.params.check_ranges`,
    named by its config path, :data:`PARAM_LABELS`), every cost distribution
    (:meth:`model.costs.CostSpec.check`) and the correlations (fields, names, ranges,
    positive definiteness: :func:`model.costs.check_correlations`).
    """
    if not 0 < cfg.cpu.ghz <= MAX_GHZ:  # also false for NaN
        raise ConfigError(f"cpu.ghz must be a number > 0 and <= {MAX_GHZ}, got {cfg.cpu.ghz}")
    try:
        point = point_from_config(cfg)
        check_ranges(as_columns(point), PARAM_LABELS)
        costs = OmegaConf.to_container(cfg.cpu.costs, resolve=True)
        specs = {
            name: CostSpec(**{k: v for k, v in spec.items() if k != "source"})
            for name, spec in costs.items()
        }
        for name, spec in specs.items():
            spec.check(name)
        pairs = []
        for i, entry in enumerate(cfg.cpu.get("correlations") or ()):
            for key in ("a", "b", "rho"):
                if OmegaConf.is_missing(entry, key):
                    raise ValueError(
                        f"cpu.correlations[{i}].{key} is required (entries are {{a, b, rho}})"
                    )
            pairs.append((str(entry.a), str(entry.b), float(entry.rho)))
        correlations = canonical_correlations(pairs)
        check_correlations(correlations)  # names, ranges, positive definite
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return ModelProfile(
        point=point,
        cost_specs=specs,
        correlations=correlations,
        ghz=float(cfg.cpu.ghz),
        seed=int(cfg.seed),
        samples=int(cfg.samples),
    )
