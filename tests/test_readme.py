"""The generated documentation (``make docs``) is what the model, the presets' grids and
``benchmarks/results.json`` say."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_readme_tables_match_the_current_model():
    done = subprocess.run(
        [sys.executable, "tools/make_docs.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr or done.stdout


def test_a_stale_table_is_caught(tmp_path, monkeypatch):
    """The check compares text: any change inside a generated block fails it."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import make_docs
    finally:
        sys.path.pop(0)
    text = "a\n<!-- BEGIN short-answer -->\nold\n<!-- END short-answer -->\nb\n"
    assert make_docs.render(text, {"short-answer": "new"}) == (
        "a\n<!-- BEGIN short-answer -->\nnew\n<!-- END short-answer -->\nb\n"
    )
    with pytest.raises(SystemExit, match="no <!-- BEGIN checks -->"):
        make_docs.render(text, {"checks": "x"})


def make_docs_module():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import make_docs
    finally:
        sys.path.pop(0)
    return make_docs


def test_the_presets_and_benchmarks_are_rendered_from_the_grid_and_the_results_file():
    """README's presets and benchmark tables and every preset's header comment are what
    ``make docs`` writes from the presets' grids and ``benchmarks/results.json`` (the
    benchmarks are not rerun: the committed file is the record)."""
    stale = [
        str(path.relative_to(ROOT))
        for path, text in make_docs_module().generated_files(cheap_only=True).items()
        if path.read_text() != text
    ]
    assert not stale, f"run `make docs`: {stale}"


def glob_size(key: str, value: str) -> int:
    """Values of one sweep dimension: a group's options for ``glob(*)`` (less those of
    ``exclude=[...]``), else the comma-separated values."""
    from asi_slowdown.pipeline.configuration.compose import composer

    if value.startswith("glob(*"):
        excluded = re.findall(r"exclude=\[([^\]]*)\]", value)
        dropped = [x for x in excluded[0].split(",") if x] if excluded else []
        return len(set(composer().group_options(key)) - set(dropped))
    return len(value.split(","))


def test_each_preset_states_its_own_grid_size_and_was_benchmarked_at_it():
    """The points a preset's header and the README claim are its grid's (the product of its
    dimensions, counted here from the YAML alone), and ``make bench`` swept that grid."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from asi_slowdown.pipeline.configuration.compose import composer

    def glob_options(key: str, value: str) -> list[str]:  # Hydra's own glob, exclude included
        glob = OverridesParser.create().parse_override(f"{key}={value}").value()
        return glob.filter(composer().group_options(key))

    make_docs = make_docs_module()
    results = json.loads((ROOT / "benchmarks" / "results.json").read_text())["results"]
    readme = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "conf" / "experiment").glob("*.yaml")):
        params = OmegaConf.load(path).hydra.sweeper.params
        sizes = [
            len(glob_options(key, value)) if value.startswith("glob(") else len(value.split(","))
            for key, value in params.items()
        ]
        points = math.prod(sizes)
        assert make_docs.preset_points(path.stem) == points > 1000
        header = " ".join(line.lstrip("# ") for line in path.read_text().splitlines()[:8])
        assert f"= {points:,} points" in header, path.name
        assert f"| `experiment={path.stem}` |" in readme and f"= {points:,} points |" in readme
        assert results[f"preset_{path.stem}_points"] == points, "rerun `make bench`"
