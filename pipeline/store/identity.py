"""Point identity: the ``point_id`` a row is stored under, and the hashes it is built from.

A point's id is a hash of everything its result depends on: the model
version, its labels (workload, CPU profile, roadmap stage), its cost profile
(:func:`cost_profile`: the CPU profile's name, clock and cost distributions),
seed and sample count (together :func:`id_prefix`), and its point parameters
in :data:`model.params.POINT_PARAMS` order (:func:`point_ids`). A sweep names
the points it computes with these functions and ``asi-answer`` the points it
looks up, so both find the same rows. Changing any encoding here silently
breaks the resume of every store: bump ``MODEL_VERSION`` instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict

import numpy as np

from asi_slowdown.model import MODEL_VERSION
from asi_slowdown.model.costs import Correlation, CostSpec
from asi_slowdown.model.params import POINT_PARAMS


def stable_hash(payload: object, length: int = 16) -> str:
    """A stable hex hash of JSON-serialisable ``payload`` (sorted keys, shortest float repr)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def cost_profile(
    cpu: str,
    ghz: float,
    specs: Mapping[str, CostSpec],
    correlations: Sequence[Correlation] = (),
) -> str:
    """The hash naming a CPU profile's cost draws: its name, clock and cost distributions.

    Correlations enter the hash only when there are some: profiles without any
    keep the cost profile (and so the point ids) they had before correlations existed.
    """
    payload = {
        "cpu": cpu,
        "ghz": float(ghz),
        "costs": {name: asdict(spec) for name, spec in specs.items()},
    }
    if correlations:
        payload["correlations"] = [list(c) for c in correlations]
    return stable_hash(payload)


def id_prefix(
    *,
    workload: str,
    cpu: str,
    mitigations: str,
    cost_profile: str,
    seed: int,
    samples: int,
    model_version: str = MODEL_VERSION,
) -> bytes:
    """Canonical encoding of everything but the point's parameter values that its result depends on."""
    return json.dumps(
        {
            "model_version": model_version,
            "workload": workload,
            "cpu": cpu,
            "mitigations": mitigations,
            "cost_profile": cost_profile,
            "seed": seed,
            "samples": samples,
            "params": list(POINT_PARAMS),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def point_ids(prefix: bytes, records: np.ndarray) -> list[str]:
    """blake2b-128 hex ids of ``prefix`` + each row of ``records`` (float64, little-endian).

    ``records`` has one column per :data:`model.params.POINT_PARAMS`, in that
    order. 128 bits keep collisions negligible (~1e-26 at 10^6 points); hashing
    a fixed binary layout is exact, unlike hashing printed floats.
    """
    rows = np.ascontiguousarray(records, dtype="<f8")
    width = rows.shape[1] * 8
    view = memoryview(rows.tobytes())
    base = hashlib.blake2b(prefix, digest_size=16)
    out = []
    for start in range(0, len(view), width):
        h = base.copy()
        h.update(view[start : start + width])
        out.append(h.hexdigest())
    return out


def point_record(point: Mapping[str, float | bool]) -> np.ndarray:
    """A point's parameters as the float64 row :func:`point_ids` hashes (``POINT_PARAMS`` order)."""
    return np.array([float(point[p]) for p in POINT_PARAMS])


def point_id(prefix: bytes, point: Mapping[str, float | bool]) -> str:
    """The id of one point: :func:`point_ids` of its :func:`point_record`."""
    return point_ids(prefix, point_record(point)[np.newaxis, :])[0]
