"""The model version cannot lie: any change to results fails here until it is bumped.

Every stored point's id hashes ``MODEL_VERSION``, so a resumed sweep reuses a
stored row only while the version is the same. This test evaluates the model
on every shipped workload, CPU profile and roadmap stage (``conf/``, read as
plain YAML: no Hydra) at a few CPU and slot counts, and compares a digest of
the results with the one pinned for the current ``MODEL_VERSION``. A change to
the model's code or to a shipped config that moves any result fails it; the
fix is to bump ``MODEL_VERSION`` in ``model/__init__.py`` and pin the digest the
failure prints, in the same commit.

Values are rounded to 8 significant digits before hashing, so the digest is
the same on every machine (SIMD and libm differ in the last bits: a value
lands within 1e-15 of a rounding boundary with odds of about 1e-7) while any
change of a result by more than a hundred-millionth of itself is seen.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from asi_slowdown.model import MODEL_VERSION
from asi_slowdown.model.evaluate import METRICS, evaluate
from tests.model.shipped import load, point, profile_costs

GOLDEN = {
    "0.4.1": "c7253bcd4e4dcdacdc702de7",
    "0.5.0": "cc5d4b1174531353552a3735",
    "0.6.0": "5325d6a5e906108c37bdc6e4",
}
"""MODEL_VERSION -> digest of :func:`results_digest`; one entry per version ever released."""

SAMPLES = 64


def shipped_points() -> list[tuple[str, dict]]:
    """(cpu profile, point) for every shipped workload x CPU profile x stage x size."""
    return [
        (cpu, point(workload, stage, cpu, cpus=cpus, slots=slots))
        for cpu in load("cpu")
        for workload in load("workload")
        for stage in load("mitigations")
        for cpus in (1, 8, 256)
        for slots in (1, 2)
    ]


def scaled_costs(cpu: str, scale: float = 1.0) -> dict[str, np.ndarray]:
    return {name: v * scale for name, v in profile_costs(cpu, SAMPLES).items()}


def results_digest(*, cost_scale: float = 1.0, edit_point=None) -> str:
    h = hashlib.sha256()
    by_cpu: dict[str, list[dict]] = {}
    for cpu_name, row in shipped_points():
        by_cpu.setdefault(cpu_name, []).append(edit_point(row) if edit_point else row)
    for cpu_name, rows in sorted(by_cpu.items()):
        columns = {k: np.array([r[k] for r in rows]) for k in rows[0]}
        result = evaluate(columns, scaled_costs(cpu_name, cost_scale))
        for name in METRICS:
            h.update(name.encode())
            h.update(" ".join(f"{v:.8g}" for v in result[name]).encode())
    return h.hexdigest()[:24]


@pytest.fixture(scope="module")
def digest() -> str:
    return results_digest()


def test_results_match_the_digest_pinned_for_this_model_version(digest):
    assert GOLDEN.get(MODEL_VERSION) == digest, (
        f"the model's results changed (digest {digest}) but MODEL_VERSION is still "
        f"{MODEL_VERSION!r} (pinned digest {GOLDEN.get(MODEL_VERSION)}): bump MODEL_VERSION in "
        f"model/__init__.py and pin {{'<new version>': '{digest}'}} in GOLDEN"
    )


def test_no_two_versions_pin_the_same_results():
    assert len(set(GOLDEN.values())) == len(GOLDEN)


@pytest.mark.parametrize(
    "change",
    [
        {"cost_scale": 1.0 + 1e-6},  # every cost moved by a millionth
        {"edit_point": lambda p: p | {"base_time": p["base_time"] * (1 + 1e-6)}},
        {"edit_point": lambda p: p | {"tlb_working_set": p["tlb_working_set"] + 1}},
    ],
)
def test_the_digest_sees_the_smallest_change_to_results(digest, change):
    """The test of the test: a result change far below any real one fails the golden check."""
    assert results_digest(**change) != digest
