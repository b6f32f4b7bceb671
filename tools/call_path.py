"""Count the calls from ``asi-sweep``'s overrides to the first priced point.

    .venv/bin/python tools/call_path.py workload=kernel_compile,fork_exec cpus=1,2 samples=16

Runs ``asi-sweep``'s entry point (:func:`pipeline.cli.sweep.main`) in-process, in a
temporary directory, under ``sys.setprofile``, until the first call of
:func:`model.evaluate.evaluate` (the driver's speed probe: the first priced point); the
sweep then finishes as usual. The *path* is the set of distinct project functions (under
``pipeline/``, ``model/``, ``hydra_plugins/``) on the call stack at each event that takes
the overrides toward that point: a Hydra composition (``ConfigLoaderImpl.load_configuration``),
a conversion of a config into model inputs (any of ``point_from_config``, ``cost_specs``,
``cost_correlations``, ``model_profile`` in ``pipeline/configuration``), a worker profile
made (``Profile.__init__``), a cost draw (``model.costs.sample_costs``) and the evaluation.
Printed: the events (before the first priced point and in the whole run), the number of
functions on the path, of their files, and of returns to a file already left (the path's
calls in call order, consecutive calls in one file counted once), then the functions.
docs/configuration.md ("From the overrides to a priced point") quotes its numbers.
"""

from __future__ import annotations

import collections
import importlib
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = tuple(str(REPO / d) for d in ("pipeline", "model", "hydra_plugins"))
CONVERSIONS = ("point_from_config", "cost_specs", "cost_correlations", "model_profile")


def label(code) -> str:
    return f"{Path(code.co_filename).relative_to(REPO)}:{code.co_qualname}"


def events() -> dict:
    """The code objects of the events, by kind."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    import model.costs
    import model.evaluate
    import pipeline.configuration
    import pipeline.sweep.points

    found = {}
    for path in Path(pipeline.configuration.__file__).parent.glob("*.py"):
        module = importlib.import_module(f"asi_slowdown.pipeline.configuration.{path.stem}")
        for name in CONVERSIONS:
            function = getattr(module, name, None)
            if function is not None and function.__module__ == module.__name__:
                found[function.__code__] = "convert"
    found[ConfigLoaderImpl.load_configuration.__code__] = "compose"
    found[pipeline.sweep.points.Profile.__init__.__code__] = "profile"
    found[model.costs.sample_costs.__code__] = "draw"
    found[model.evaluate.evaluate.__code__] = "evaluate"
    return found


def main(overrides: list[str]) -> None:
    os.chdir(tempfile.mkdtemp(prefix="asi-call-path-"))
    kinds = events()
    from asi_slowdown.pipeline.cli.sweep import main as asi_sweep

    before, total = collections.Counter(), collections.Counter()
    path: dict[str, None] = {}
    order: list[str] = []
    priced = False

    def profile(frame, event, arg) -> None:
        nonlocal priced
        if event != "call":
            return
        code = frame.f_code
        kind = kinds.get(code)
        if kind is not None:
            total[kind] += 1
        if priced:
            return
        if code.co_filename.startswith(ROOTS):
            order.append(label(code))
        if kind is None:
            return
        before[kind] += 1
        stack, f = [], frame
        while f is not None:
            if f.f_code.co_filename.startswith(ROOTS):
                stack.append(label(f.f_code))
            f = f.f_back
        for name in reversed(stack):
            path.setdefault(name)
        priced = kind == "evaluate"

    sys.setprofile(profile)
    try:
        asi_sweep([*overrides, "store.path=store", "ray.num_cpus=1", "sweep.progress=false"])
    except SystemExit:
        pass
    finally:
        sys.setprofile(None)
    files, left, returns = [], set(), 0
    for name in (n for n in order if n in path):
        file = name.split(":")[0]
        if files and files[-1] == file:
            continue
        if files:
            left.add(files[-1])
        returns += file in left
        files.append(file)
    print(f"events before the first priced point: {dict(before)}; in the whole run: {dict(total)}")
    print(
        f"path: {len(path)} functions in {len({n.split(':')[0] for n in path})} files, "
        f"{returns} returns to a file already left"
    )
    for name in path:
        print(f"    {name}")


if __name__ == "__main__":
    main(sys.argv[1:])
