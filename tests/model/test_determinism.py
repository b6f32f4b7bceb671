"""Results are bit-identical across processes, not only across chunkings.

Python randomizes string hashing per process (PYTHONHASHSEED), so anything
that iterates a set of names while adding floats changes the last bit of a
result from one run to the next; a sweep would then store different metrics
for the same point depending on which process computed it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import hashlib
import numpy as np
from asi_slowdown.model.costs import COST_NAMES, RATE_COSTS, SHARE_COSTS, CostSpec, sample_costs
from asi_slowdown.model.evaluate import evaluate
from asi_slowdown.model.params import BOOL_PARAMS, FRACTION_PARAMS, POINT_PARAMS

rng = np.random.default_rng(0)
n = 64
points = {
    name: rng.random(n) < 0.5 if name in BOOL_PARAMS else rng.integers(1, 64, n).astype(float)
    for name in POINT_PARAMS
}
for name in sorted(FRACTION_PARAMS):
    points[name] = rng.random(n)
points["folio_pages"] = np.ones(n)
specs = {name: CostSpec("loguniform", 5.0, 5000.0, unit="1/s" if name in RATE_COSTS else "ns")
    for name in COST_NAMES if name not in SHARE_COSTS
    }
specs |= {name: CostSpec("loguniform", 0.01, 1.0, unit="fraction") for name in SHARE_COSTS}
costs = sample_costs(specs, 128, seed=1, ghz=3.0)
result = evaluate(points, costs)
digest = hashlib.sha256()
for key in sorted(result):
    digest.update(key.encode())
    digest.update(np.ascontiguousarray(result[key], dtype=np.float64).tobytes())
print(digest.hexdigest())
"""


def digest_with_hash_seed(seed: str) -> str:
    env = os.environ | {"PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def test_results_do_not_depend_on_the_process_hash_seed():
    digests = {digest_with_hash_seed(seed) for seed in ("1", "2", "3", "4")}
    assert len(digests) == 1, digests
