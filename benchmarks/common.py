"""Shared helpers: timing, peak memory, and the results file."""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "outputs" / "bench" / "results.json"


def best_time(fn: Callable[[], object], repeat: int = 5, min_time: float = 0.2) -> float:
    """Best wall time [s] of ``fn`` over ``repeat`` rounds of at least ``min_time`` each."""
    best = float("inf")
    for _ in range(repeat):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = min(best, elapsed / calls)
    return best


def peak_rss_mb() -> float:
    """This process's peak resident set size so far [MB] (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def merge_results(new: dict, path: Path = RESULTS) -> dict:
    """Merge ``new`` into the results JSON (other benchmarks own other keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(path.read_text()) if path.exists() else {}
    results.update(new)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return results
