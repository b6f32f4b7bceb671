"""Each experiment preset (``conf/experiment/*.yaml``) swept as a user would, timed.

Keys written, per preset ``<name>``: ``preset_<name>_points`` (points the
sweep computed), ``preset_<name>_samples`` (cost samples per point) and
``preset_<name>_wall_s`` (wall time of ``asi-sweep experiment=<name>`` in a
fresh process into an empty store, embedded Ray on every core: Python
start-up, Hydra, composing the grid, Ray's start and stop, the model and the
Parquet writes all included). ``tools/make_docs.py`` writes these into the
presets' header comments and the README, so neither quotes a time by hand.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from .bench_sweep import ASI_SWEEP, run_command

EXPERIMENTS = Path(__file__).resolve().parent.parent / "conf" / "experiment"


def presets() -> list[str]:
    """The shipped experiment presets, by name."""
    return sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))


def sweep_preset(name: str, workdir: Path) -> dict:
    """Sweep preset ``name`` into an empty store under ``workdir``; its keys."""
    start = time.perf_counter()
    run_command([ASI_SWEEP, f"experiment={name}", "sweep.progress=false"], workdir)
    wall = time.perf_counter() - start
    summary = json.loads(max((workdir / "outputs" / "sweeps").glob("*/*/summary.json")).read_text())
    assert summary["ok"] and summary["done"] == summary["points"], summary
    config = (workdir / "outputs" / "sweeps").glob("*/*/multirun.yaml")
    samples = int(summary.get("samples") or _samples(next(config)))
    return {
        f"preset_{name}_points": summary["points"],
        f"preset_{name}_samples": samples,
        f"preset_{name}_wall_s": wall,
    }


def _samples(multirun: Path) -> int:
    """``samples`` of the sweep's composed config (``multirun.yaml``)."""
    from omegaconf import OmegaConf

    return int(OmegaConf.load(multirun).samples)


def run() -> dict:
    results = {}
    for name in presets():
        print(f"  bench_presets: {name} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix=f"bench-preset-{name}-") as tmp:
            results.update(sweep_preset(name, Path(tmp)))
    return results


if __name__ == "__main__":
    print(run())
