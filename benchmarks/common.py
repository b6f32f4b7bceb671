"""Shared helpers: timing, peak memory, and the committed results file."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from asi_slowdown.pipeline.execution.memory import peak_rss_bytes

RESULTS = Path(__file__).resolve().parent / "results.json"
"""The results of the last ``make bench``, committed: ``tools/make_docs.py`` renders the README's
benchmark table and the presets' run-time estimates from it."""


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
    """This process's peak resident set size so far [MiB] (its own, not a parent's:
    :func:`pipeline.execution.memory.peak_rss_bytes`)."""
    return peak_rss_bytes() / (1 << 20)


def _cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    """What the numbers were measured on: CPU, core count, memory, Python and numpy."""
    import numpy as np

    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory = float("nan")
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def merge_results(module: str, new: dict, path: Path = RESULTS) -> dict:
    """Merge benchmark ``module``'s keys ``new`` into the results file (other modules own other
    keys), recording the machine, the UTC date and the 1-minute load average of the run."""
    from asi_slowdown.model import MODEL_VERSION

    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("results", {}).update(new)
    data.setdefault("runs", {})[module] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "model_version": MODEL_VERSION,
    }
    data["machine"] = machine()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return data
