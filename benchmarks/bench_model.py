"""Model speed against the scalar reference and a plain memory copy; peak memory.

Keys written: ``model_point_samples_per_s`` (the default, compiled engine, one core),
``model_numpy_point_samples_per_s`` and ``model_compiled_vs_numpy_ratio`` (the numpy engine on
the same points in the same run: numba is worth its dependency only at >= 3x),
``model_vs_scalar_ratio`` (over the scalar reference, same inputs), ``model_vs_memcopy_ratio``
(model time over a numpy copy of as many bytes as the model's inputs plus outputs),
``model_floor_point_samples_per_s`` and ``model_vs_floor_ratio`` (the floor: the compiled
pass's floating-point operations per point-sample, counted from its source, at this core's
multiply-add rate measured in the same run by a compiled loop of independent multiply-adds),
``model_peak_rss_mb_1e5x1024`` (1e5 points x 1024 samples, in a fresh process) and
``model_answer_s`` (what ``asi-answer`` waits for the model: nine stages of one configuration at
1024 samples in a fresh process, loading the compiled code included). Targets (issue 21):
>= 5e7 point-samples/s, < 2 GB, < 1 s.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numba as nb
import numpy as np

from asi_slowdown.model.evaluate import evaluate
from asi_slowdown.model.params import POINT_PARAMS
from asi_slowdown.model.reference import reference_op
from asi_slowdown.pipeline.configuration.compose import CONF_DIR, compose_config
from asi_slowdown.pipeline.configuration.profile import model_profile, point_from_config

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


FLOPS_PER_POINT_SAMPLE = 260
"""Floating-point operations per point-sample of :func:`model.kernel._point` for a typical point,
an estimate read off its source by part (about 60 in the native and restricted time, 20 in the refill
probability, 50 in the pair cost and extra time, 70 in the sums, 30 in the alternatives without
ASI, 30 in the ratios and the selection's counting pass), the floor's numerator."""


@nb.njit(cache=True, error_model="numpy")
def _multiply_adds(y, x, rounds):
    """``rounds`` passes of ``y = y * 0.999 + x`` over L1-resident buffers: independent
    multiply-adds the compiler vectorizes, the model's kind of arithmetic at this core's best
    rate; 2 flops per element and pass."""
    for _ in range(rounds):
        for i in range(y.shape[0]):
            y[i] = y[i] * 0.999 + x[i]


def multiply_add_flops_per_s() -> float:
    """This core's rate of independent, vectorized multiply-adds over cache-resident data [flop/s]."""
    x = np.ones(1024)
    y = np.zeros(1024)
    rounds = 2000
    t = best_time(lambda: _multiply_adds(y, x, rounds), repeat=5)
    return 2.0 * x.shape[0] * rounds / t


def _measure() -> dict:
    costs = model_profile(compose_config([])).costs(1024)
    points = bench_points(4096)
    n_points, n_samples = 4096, 1024

    evaluate(points, costs)  # compiles (or loads the cached machine code) outside the timing
    t_model = best_time(lambda: evaluate(points, costs), repeat=3)
    point_samples_per_s = n_points * n_samples / t_model
    t_numpy = best_time(lambda: evaluate(points, costs, engine="numpy"), repeat=2)
    numpy_per_s = n_points * n_samples / t_numpy
    floor_per_s = multiply_add_flops_per_s() / FLOPS_PER_POINT_SAMPLE

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

    answer, rss = (_in_a_fresh_process(flag) for flag in ("--answer", "--rss"))
    return {
        "model_point_samples_per_s": point_samples_per_s,
        "model_numpy_point_samples_per_s": numpy_per_s,
        "model_compiled_vs_numpy_ratio": point_samples_per_s / numpy_per_s,
        "model_floor_point_samples_per_s": floor_per_s,
        "model_vs_floor_ratio": floor_per_s / point_samples_per_s,
        "model_scalar_point_samples_per_s": scalar_per_s,
        "model_vs_scalar_ratio": point_samples_per_s / scalar_per_s,
        "model_vs_memcopy_ratio": t_model / t_copy,
        "model_peak_rss_mb_1e5x1024": float(rss),
        "model_answer_s": float(answer),
    }


def _in_a_fresh_process(flag: str) -> str:
    """What ``python -m benchmarks.bench_model <flag>`` prints, in a new interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_model", flag],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _rss_main() -> None:
    """Evaluate 1e5 points x 1024 samples and print the peak RSS [MB]."""
    costs = model_profile(compose_config([])).costs(1024)
    points = bench_points(100_000)
    evaluate(points, costs)
    print(f"{peak_rss_mb():.1f}")


def _answer_main() -> None:
    """Print the seconds a fresh process takes to evaluate one configuration's nine stages at
    1024 samples, importing the model and loading its compiled code included."""
    import time

    costs = model_profile(compose_config([])).costs(1024)
    points = {k: v[:9] for k, v in bench_points(9).items()}
    start = time.perf_counter()
    from asi_slowdown.model.kernel import evaluate_points  # noqa: F401  (numba and the cached machine code)

    evaluate(points, costs)
    print(f"{time.perf_counter() - start:.4f}")


if __name__ == "__main__":
    if "--rss" in sys.argv:
        _rss_main()
    elif "--answer" in sys.argv:
        _answer_main()
    else:
        print(run())
