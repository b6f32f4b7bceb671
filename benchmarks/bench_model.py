"""Model speed against the scalar reference and a plain memory copy; peak memory.

Keys written: ``model_point_samples_per_s`` (one core), ``model_vs_scalar_ratio``
(vectorized over scalar throughput, same inputs), ``model_vs_memcopy_ratio``
(model time over a numpy copy of as many bytes as the model's inputs plus
outputs) and ``model_peak_rss_mb_1e5x1024`` (1e5 points x 1024 samples, in a
fresh process). Targets: >= 1e7 point-samples/s, >= 100x the reference,
< 2 GB.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from model.evaluate import evaluate
from model.params import POINT_PARAMS
from model.reference import reference_op
from pipeline.configuration.compose import CONF_DIR, compose_config
from pipeline.configuration.profile import model_profile, point_from_config

from .common import best_time, peak_rss_mb


def bench_points(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` points mixing every shipped workload and stage, CPU counts 1-256, slots 1-4."""
    templates = [
        point_from_config(compose_config([f"workload={w.stem}", f"mitigations={m.stem}"]))
        for w in sorted((CONF_DIR / "workload").glob("*.yaml"))
        for m in sorted((CONF_DIR / "mitigations").glob("*.yaml"))
    ]
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(templates), n)
    cols = {name: np.array([t[name] for t in templates])[pick] for name in POINT_PARAMS}
    cols["cpus"] = rng.integers(1, 257, n)
    cols["ephmap_slots"] = rng.integers(1, 5, n)
    return cols


def _pin_to_one_core() -> set[int] | None:
    """Pin this process to its first allowed core; return the cores it had (None: no affinity)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    return allowed


def run() -> dict:
    """All keys of this module, measured on one core (the other benchmarks get every core back:
    the processes they start inherit this one's affinity)."""
    allowed = _pin_to_one_core()
    try:
        return _measure()
    finally:
        if allowed is not None:
            os.sched_setaffinity(0, allowed)


def _measure() -> dict:
    costs = model_profile(compose_config([])).costs(1024)
    points = bench_points(4096)
    n_points, n_samples = 4096, 1024

    t_model = best_time(lambda: evaluate(points, costs), repeat=3)
    point_samples_per_s = n_points * n_samples / t_model

    # Scalar reference on a subset: it is ~1000x slower.
    rows = [{k: v[i].item() for k, v in points.items()} for i in range(40)]
    samples = [{k: float(v[j]) for k, v in costs.items()} for j in range(25)]
    t_scalar = best_time(lambda: [reference_op(r, s) for r in rows for s in samples], repeat=3)
    scalar_per_s = len(rows) * len(samples) / t_scalar

    result = evaluate(points, costs)
    nbytes = sum(np.asarray(v).nbytes for v in points.values())
    nbytes += sum(v.nbytes for v in costs.values()) + sum(v.nbytes for v in result.values())
    src = np.ones(nbytes // 8)
    t_copy = best_time(lambda: src.copy(), repeat=5)

    rss = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_model", "--rss"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return {
        "model_point_samples_per_s": point_samples_per_s,
        "model_scalar_point_samples_per_s": scalar_per_s,
        "model_vs_scalar_ratio": point_samples_per_s / scalar_per_s,
        "model_vs_memcopy_ratio": t_model / t_copy,
        "model_peak_rss_mb_1e5x1024": float(rss),
    }


def _rss_main() -> None:
    """Evaluate 1e5 points x 1024 samples and print the peak RSS [MB]."""
    costs = model_profile(compose_config([])).costs(1024)
    points = bench_points(100_000)
    evaluate(points, costs)
    print(f"{peak_rss_mb():.1f}")


if __name__ == "__main__":
    if "--rss" in sys.argv:
        _rss_main()
    else:
        print(run())
