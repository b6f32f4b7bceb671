"""A process's peak memory is its own, not the peak of the process that started it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

CHILD = (
    "import json, resource\n"
    "from asi_slowdown.pipeline.execution.memory import peak_rss_bytes\n"
    "print(json.dumps([peak_rss_bytes(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]))\n"
)


def test_a_child_of_a_large_process_reports_its_own_peak():
    """``ru_maxrss`` crosses ``execve`` from the address space replaced: started by a test
    worker that had held 400 MiB, a small child said 400 MiB (the report's memory test then
    read 11x its cube under pytest-xdist)."""
    hog = np.ones(400 << 17)  # 400 MiB, touched
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    del hog
    own, maxrss_kib = json.loads(done.stdout)
    assert own < 300 << 20, f"the child's peak {own >> 20} MiB (ru_maxrss {maxrss_kib >> 10} MiB)"
