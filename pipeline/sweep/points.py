"""What a worker needs to evaluate grid rows: the :class:`Profile` and the point columns.

Kept free of Hydra and OmegaConf so that Ray workers import only numpy,
pyarrow and the model (their start-up is part of every sweep's latency).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from asi_slowdown.model import MODEL_VERSION
from asi_slowdown.model.costs import Correlation, CostSpec, sample_costs
from asi_slowdown.model.params import BOOL_PARAMS, POINT_PARAMS


@dataclass(frozen=True)
class Profile:
    """What the points of one composition share: labels, cost-draw inputs, the base point.

    ``base_point`` holds the model's point parameters of the composed config
    (Python scalars, sizes in [bytes]); a grid row overrides the swept ones.
    """

    workload: str
    cpu: str
    mitigations: str
    seed: int
    samples: int
    ghz: float
    cost_specs: Mapping[str, CostSpec]
    cost_profile: str
    profile_overrides: str
    config_hash: str
    base_point: Mapping[str, float | bool]
    model_version: str = MODEL_VERSION
    correlations: tuple[Correlation, ...] = ()  # (a, b, rho): the profile's correlated costs

    def costs(self) -> dict[str, np.ndarray]:
        """Common-random-number cost draws (identical for every chunk and worker).

        Drawn once: the driver's speed probe and the payload shipped to the workers
        share them, and so do profiles whose costs are the same (a sweep's workloads and
        stages on one CPU profile); :data:`KEPT_DRAWS_BYTES` of the latest draws are kept.
        """
        key = (
            tuple(sorted(self.cost_specs.items())),
            self.samples,
            self.seed,
            self.ghz,
            self.correlations,
        )
        if key not in _DRAWS:
            _DRAWS[key] = sample_costs(
                self.cost_specs,
                self.samples,
                seed=self.seed,
                ghz=self.ghz,
                correlations=self.correlations,
            )
            while len(_DRAWS) > 1 and _kept_bytes() > KEPT_DRAWS_BYTES:
                del _DRAWS[next(iter(_DRAWS))]  # the oldest
        _DRAWS[key] = _DRAWS.pop(key)  # the latest used last
        return dict(_DRAWS[key])

    def id_prefix(self) -> bytes:
        """What the ids of this profile's points hash besides their parameters
        (:func:`pipeline.store.identity.id_prefix`)."""
        from asi_slowdown.pipeline.store.identity import (
            id_prefix,  # the driver's: workers never name points
        )

        return id_prefix(
            workload=self.workload,
            cpu=self.cpu,
            mitigations=self.mitigations,
            cost_profile=self.cost_profile,
            seed=self.seed,
            samples=self.samples,
            model_version=self.model_version,
        )


KEPT_DRAWS_BYTES = 64 << 20
"""Cost draws :meth:`Profile.costs` keeps in this process [bytes] (the latest one always):
a sweep's distinct cost profiles, ~350 KB each at 1024 samples."""

_DRAWS: dict[tuple, dict[str, np.ndarray]] = {}


def _kept_bytes() -> int:
    return sum(a.nbytes for draws in _DRAWS.values() for a in draws.values())


def point_columns(rows: pa.Table, profile: Profile) -> dict[str, np.ndarray]:
    """The model's point columns for grid ``rows``: swept columns, else the profile's base value."""
    n = rows.num_rows
    cols = {}
    for name in POINT_PARAMS:
        dtype = bool if name in BOOL_PARAMS else np.float64
        if name in rows.column_names:
            cols[name] = rows.column(name).to_numpy(zero_copy_only=False).astype(dtype, copy=False)
        else:
            cols[name] = np.full(n, profile.base_point[name], dtype=dtype)
    return cols
