"""``python -m benchmarks``: run every benchmark, merge into benchmarks/results.json (committed), print it."""

from __future__ import annotations

import importlib
import json
import sys

from .common import RESULTS, merge_results

MODULES = ["bench_model", "bench_sweep", "bench_aggregate", "bench_presets", "bench_report_memory"]
"""Benchmark modules, each with ``run() -> dict`` of result keys."""


def main(names: list[str]) -> None:
    for name in names or MODULES:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        merge_results(name, module.run())
    print(json.dumps(json.loads(RESULTS.read_text()), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
