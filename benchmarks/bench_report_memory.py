"""The report's peak memory at the nightly preset's size, against the gathered-frame path.

A synthetic store with every column the report reads (:data:`REPORT_METRICS`), one point
per cube cell (a grid's scope), as many points as the nightly preset plus one calibrated
CPU profile (626,688), is written to a temporary directory in parts of 100,000 rows, as a
sweep writes them. Two fresh processes then aggregate it and project it, and report their
peak RSS above what they held before (imports and a warm-up on a tiny store):

- ours: :func:`pipeline.report.aggregate.aggregate` (the cube gathered as Arrow and built
  column by column) and ``projections(consume=True)``, under
  :func:`pipeline.execution.memory.returning_memory`, as ``asi-report`` runs them;
- the gathered-frame path (the aggregation before issue 22's fix): the rows gathered as one
  pandas frame by ``dask.compute``, :func:`~pipeline.report.aggregate.cube_of`, a cube kept
  beside its projection, default allocators.

Keys: ``report_peak_mb_626688`` (ours), ``report_gathered_peak_mb_626688``,
``report_peak_vs_gathered_ratio`` (gathered / ours), ``report_cube_mb_626688`` (the cube's
own size), and ``report_memory_load_avg_1m``. The whole ``asi-report`` at this size (grid,
figures, budgets) is measured in ``README.md`` (Reports).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from asi_slowdown.pipeline.report import aggregate as agg
from asi_slowdown.pipeline.report.collection import REPORT_METRICS
from asi_slowdown.pipeline.store.schema import DEDUP_COLUMNS
from asi_slowdown.pipeline.store.synthetic import write_synthetic_store

POINTS = 626_688
PART_ROWS = 100_000
STAGES = ("rfc_v2", "cr3_noflush", "multi_slot", "kvm_vmm_switch")
COLUMNS = tuple(dict.fromkeys([*DEDUP_COLUMNS, *agg._needed(REPORT_METRICS)]))


def write_store(path: Path, rows: int = POINTS, part_rows: int = PART_ROWS) -> None:
    """One point per cube cell, every column the report reads, random metrics."""
    write_synthetic_store(
        path,
        rows,
        columns=COLUMNS,
        workloads=[f"workload{i}" for i in range(8)],
        cpus=[f"cpu{i}" for i in range(4)],
        stages=STAGES,
        file_sizes=[(1 << 16) << (2 * i) for i in range(8)],
        part_rows=part_rows,
        seed=22,
    )


CHILD = r"""
import json, sys, threading, time
import psutil
from omegaconf import OmegaConf
from asi_slowdown.pipeline.execution.memory import returning_memory
from asi_slowdown.pipeline.execution.scheduler import scheduler
from asi_slowdown.pipeline.projection.projection import projections
from asi_slowdown.pipeline.report import aggregate as agg
from asi_slowdown.pipeline.report.collection import REPORT_METRICS
from asi_slowdown.pipeline.store.schema import CUBE_KEYS

big, small, stages, how = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4]
process, peak = psutil.Process(), [0]

def sample():
    while True:
        peak[0] = max(peak[0], process.memory_info().rss)
        time.sleep(0.005)

def ours(path):
    with returning_memory():
        out = agg.aggregate(path, metrics=REPORT_METRICS, gather=True)  # as a grid scope
        size = int(out.cube.memory_usage(deep=True).sum())
        projections(out.cube, stages, consume=True)
    return size

def gathered(path):  # before issue 22: one pandas frame gathered, the cube kept beside
    import dask
    frame, _ = agg.store_frame(path, agg._needed(REPORT_METRICS))
    wanted = list(dict.fromkeys([*CUBE_KEYS, *REPORT_METRICS]))
    _, rows = dask.compute(agg.stage_summary(frame), frame[wanted])
    cube = agg.cube_of(rows, REPORT_METRICS)
    del rows
    size = int(cube.memory_usage(deep=True).sum())
    projections(cube, stages)
    return size

run = ours if how == "ours" else gathered
with scheduler(OmegaConf.create({"scheduler": "threads", "num_workers": 2})):
    run(small)  # lazy imports, Dask's threads
    threading.Thread(target=sample, daemon=True).start()
    start = process.memory_info().rss
    size = run(big)
print(json.dumps({"peak_mb": (peak[0] - start) / 2**20, "cube_mb": size / 2**20}))
"""


def measure(big: Path, small: Path, how: str) -> dict:
    """Peak RSS [MB] above the warm start of one fresh process running ``how``."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(big), str(small), ",".join(STAGES), how],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def run(points: int = POINTS) -> dict:
    with tempfile.TemporaryDirectory(prefix="asi-bench-report-") as tmp:
        big, small = Path(tmp, "big"), Path(tmp, "small")
        big.mkdir()
        small.mkdir()
        print(f"  writing a synthetic store of {points:,} points ...", file=sys.stderr, flush=True)
        write_store(big, points)
        write_store(small, 4_096, 2_048)
        load = os.getloadavg()[0]
        ours = measure(big, small, "ours")
        gathered = measure(big, small, "gathered")
    print(
        f"  ours {ours['peak_mb']:.0f} MB, gathered {gathered['peak_mb']:.0f} MB", file=sys.stderr
    )
    return {
        f"report_peak_mb_{points}": ours["peak_mb"],
        f"report_gathered_peak_mb_{points}": gathered["peak_mb"],
        "report_peak_vs_gathered_ratio": gathered["peak_mb"] / ours["peak_mb"],
        f"report_cube_mb_{points}": ours["cube_mb"],
        "report_memory_load_avg_1m": load,
    }


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else POINTS))
