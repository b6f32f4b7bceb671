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
from pathlib import Path

import numpy as np
import pytest
import yaml

from model import MODEL_VERSION
from model.costs import CostSpec, sample_costs
from model.evaluate import METRICS, evaluate
from model.params import CPU_FLAGS, MITIGATION_FLAGS, WORKLOAD_PARAMS
from model.units import parse_size

GOLDEN = {
    "0.2.2": "215a9f0bd14017f9d785b22e",
}
"""MODEL_VERSION -> digest of :func:`results_digest`; one entry per version ever released."""

CONF = Path(__file__).resolve().parents[2] / "conf"
SIZES = ("io_size", "file_size", "page_cache_size", "readahead")
SAMPLES = 64


def load(group: str) -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted((CONF / group).glob("*.yaml"))}


def shipped_points() -> list[tuple[str, dict]]:
    """(cpu profile, point) for every shipped workload x CPU profile x stage x size."""
    out = []
    for cpu_name, cpu in load("cpu").items():
        for workload in load("workload").values():
            for stage in load("mitigations").values():
                for cpus in (1, 8, 256):
                    for slots in (1, 2):
                        point = {k: workload[k] for k in WORKLOAD_PARAMS}
                        point.update({k: parse_size(point[k]) for k in SIZES})
                        point.update({k: bool(stage.get(k, False)) for k in MITIGATION_FLAGS})
                        point.update({k: bool(cpu[k]) for k in CPU_FLAGS})
                        point.update(cpus=cpus, ephmap_slots=slots)
                        out.append((cpu_name, point))
    return out


def profile_costs(cpu_name: str, scale: float = 1.0) -> dict[str, np.ndarray]:
    cpu = load("cpu")[cpu_name]
    specs = {
        name: CostSpec(**{k: v for k, v in spec.items() if k != "source"})
        for name, spec in cpu["costs"].items()
    }
    costs = sample_costs(specs, SAMPLES, seed=0, profile=cpu_name, ghz=cpu["ghz"])
    return {name: values * scale for name, values in costs.items()}


def results_digest(*, cost_scale: float = 1.0, edit_point=None) -> str:
    h = hashlib.sha256()
    by_cpu: dict[str, list[dict]] = {}
    for cpu_name, point in shipped_points():
        by_cpu.setdefault(cpu_name, []).append(edit_point(point) if edit_point else point)
    for cpu_name, rows in sorted(by_cpu.items()):
        columns = {k: np.array([r[k] for r in rows]) for k in rows[0]}
        result = evaluate(columns, profile_costs(cpu_name, cost_scale))
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
