"""The results store's schema: every column-name tuple the pipeline reads or writes, once.

Parameter, cost and exit-source names come from the model's own tables
(:data:`model.params.POINT_PARAMS`, :data:`model.costs.ASI_COSTS`,
:data:`model.mechanism.EXIT_SOURCES`, :data:`model.evaluate.QUANTILES`), so a
new model parameter or cost is a new column without an edit here.
"""

from __future__ import annotations

import pyarrow as pa

from asi_slowdown.model.evaluate import METRICS, QUANTILES
from asi_slowdown.model.params import BOOL_PARAMS, INT_PARAMS, POINT_PARAMS

STORE_SCHEMA_VERSION = "1"
"""Bumped when :data:`STORE_SCHEMA` changes in a way old readers cannot follow."""

LABEL_COLUMNS: tuple[str, ...] = ("workload", "cpu", "mitigations")
"""Names of the chosen presets: ``workload.name``, ``cpu.name`` and the roadmap stage ``mitigations.name``."""

PARAM_COLUMNS: tuple[str, ...] = tuple(POINT_PARAMS)
"""Every model point parameter, named as in :data:`model.params.POINT_PARAMS` (the
leaf of its config path: ``workload.file_size`` -> ``file_size``, ``ephmap.slots`` ->
``ephmap_slots``). Sizes in [bytes]."""

PROFILE_COLUMNS: dict[str, pa.DataType] = {
    "seed": pa.int64(),
    "samples": pa.int64(),
    "cost_profile": pa.string(),
    "profile_overrides": pa.string(),
}
"""What fixes the cost draws: the seed, the sample count, a hash of the CPU
profile's name, clock and cost distributions, and the swept non-point values
(e.g. ``cpu.costs.ibpb.high=20000``) as ``key=value`` pairs, space separated."""

METRIC_COLUMNS: tuple[str, ...] = METRICS
"""Every output of :func:`model.evaluate.evaluate` (times [ns/op], exits [1/op], exit rates
[1/s], extra time by cost and by exit source [ns/op]), defined once in the model."""

PROVENANCE_COLUMNS: tuple[str, ...] = (
    "model_version",
    "config_hash",
    "git_revision",
    "package_versions",
    "run_id",
    "created_at",
)
"""Where a row came from: model version, a hash of the composed config (execution
settings excluded), the code's git revision (``-dirty`` if uncommitted changes),
package versions (JSON), the sweep run, and the commit time of its part (UTC)."""


def _param_type(name: str) -> pa.DataType:
    if name in BOOL_PARAMS:
        return pa.bool_()
    if name in INT_PARAMS:
        return pa.int64()
    return pa.float64()


STORE_SCHEMA = pa.schema(
    [
        pa.field("point_id", pa.string(), nullable=False),
        *(pa.field(c, pa.string()) for c in LABEL_COLUMNS),
        *(pa.field(c, _param_type(c)) for c in PARAM_COLUMNS),
        *(pa.field(c, t) for c, t in PROFILE_COLUMNS.items()),
        *(pa.field(c, pa.float64()) for c in METRIC_COLUMNS),
        *(pa.field(c, pa.string()) for c in PROVENANCE_COLUMNS[:-1]),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
    ],
    metadata={"asi.store_schema_version": STORE_SCHEMA_VERSION},
)
"""One row per point: id, labels, parameters, profile, metrics, provenance."""

ROW_COLUMNS: tuple[str, ...] = tuple(STORE_SCHEMA.names[: STORE_SCHEMA.names.index("git_revision")])
"""Columns a worker computes (up to ``config_hash``); the driver adds the run-wide rest."""


DIMENSIONS: tuple[str, ...] = ("cpus", "file_size", "ephmap_slots")
"""Point parameters the reports chart (the sweeps' usual dimensions). [count], [bytes], [count]."""

DEDUP_COLUMNS: tuple[str, ...] = ("point_id", "created_at", "run_id")
"""What decides which of two rows of one point is kept: earliest commit, then run id."""

SLOWDOWN_QUANTILES: tuple[str, ...] = tuple(f"slowdown_{q}" for q in QUANTILES)
"""The slowdown's quantiles per point (fractions)."""

LOSS_QUANTILES: tuple[str, ...] = tuple(f"throughput_loss_{q}" for q in QUANTILES)
"""The throughput loss's quantiles per point (fractions)."""

HEADLINE_METRICS: tuple[str, ...] = (*SLOWDOWN_QUANTILES, *LOSS_QUANTILES)
"""Quantiles of the two metrics, per point (fractions)."""

CUBE_KEYS: tuple[str, ...] = (*LABEL_COLUMNS, *DIMENSIONS)
"""A cube cell of the report's aggregation: labels and dimensions."""
