"""The layout holds: subpackages by concept, importable alone, no cycles, thin entry points."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline
from pipeline.store.schema import STORE_SCHEMA

ROOT = Path(pipeline.__file__).resolve().parent
REPO = ROOT.parent
SUBPACKAGES = sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "conf")
LAYERS = ["configuration", "store", "sweep", "projection", "calibrate", "validate", "report", "cli"]
"""Lowest first: a subpackage may import only those before it. ``validate`` scores the model
against the public record with ``calibrate``'s fit; the report shows that score."""


def modules(subpackage: str) -> list[str]:
    folder = ROOT / subpackage
    return sorted(
        f"pipeline.{subpackage}" + ("" if p.stem == "__init__" else f".{p.stem}")
        for p in folder.glob("*.py")
    )


def pipeline_imports(path: Path) -> set[str]:
    """Every ``pipeline.*`` module ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "pipeline"}


def test_the_subpackages_are_the_concepts():
    assert SUBPACKAGES == sorted(LAYERS)
    assert not [p.name for p in ROOT.glob("*.py") if p.name != "__init__.py"], "no flat modules"


@pytest.mark.parametrize("subpackage", LAYERS)
def test_each_subpackage_says_what_it_owns(subpackage):
    doc = ast.get_docstring(ast.parse((ROOT / subpackage / "__init__.py").read_text()))
    assert doc and len(doc.splitlines()) >= 2
    for module in (ROOT / subpackage).glob("*.py"):
        assert ast.get_docstring(ast.parse(module.read_text())), f"{module} has no docstring"


@pytest.mark.parametrize("subpackage", LAYERS)
def test_each_subpackage_imports_alone_in_a_fresh_process(subpackage):
    names = modules(subpackage)
    code = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)"
    done = subprocess.run(
        [sys.executable, "-c", code, *names], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_dependencies_point_one_way_no_cycles():
    """Imports between subpackages follow :data:`LAYERS` (function-level imports included)."""
    wrong = []
    for subpackage in LAYERS:
        allowed = set(LAYERS[: LAYERS.index(subpackage) + 1])
        for path in (ROOT / subpackage).glob("*.py"):
            for name in pipeline_imports(path):
                parts = name.split(".")
                target = parts[1] if len(parts) > 1 else None
                if target is not None and target not in allowed:  # ``import pipeline``: the root
                    wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert not wrong


def test_the_verdict_vocabulary_is_a_leaf():
    assert pipeline_imports(ROOT / "projection" / "verdicts.py") == set()


@pytest.mark.parametrize("name", ["answer", "sweep", "report", "calibrate"])
def test_entry_points_are_at_most_20_lines(name):
    tree = ast.parse((ROOT / "cli" / f"{name}.py").read_text())
    body = tree.body[1:] if ast.get_docstring(tree) else tree.body
    lines = body[-1].end_lineno - body[0].lineno + 1
    assert lines <= 20


def test_hydra_plugins_are_thin_shims():
    for path in (REPO / "hydra_plugins").rglob("*.py"):
        tree = ast.parse(path.read_text())
        body = tree.body[1:] if ast.get_docstring(tree) else tree.body
        code = sum(n.end_lineno - n.lineno + 1 for n in body)
        assert code <= 15, f"{path}: {code} lines of code; the logic belongs in pipeline/"


CONFIG_KEY_TUPLES = {"SIZE_FIELDS", "MODEL_ROOTS"}
"""Tuples of config keys that happen to share names with columns (workload fields given
as size strings; the config roots a sweep may vary): config vocabulary, not columns."""


def test_column_name_tuples_are_spelled_once():
    """No literal of three or more store column names outside ``store/schema.py``."""
    columns = set(STORE_SCHEMA.names)
    spelled = []
    for path in ROOT.rglob("*.py"):
        if path == ROOT / "store" / "schema.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                target = node.targets[0] if isinstance(node, ast.Assign) else node.target
                if getattr(target, "id", None) in CONFIG_KEY_TUPLES:
                    node.value = ast.Constant(None)  # skip its literal
        for node in ast.walk(tree):
            if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(node.elts) >= 3:
                values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
                if len(values) == len(node.elts) and all(v in columns for v in values):
                    spelled.append(f"{path.relative_to(REPO)}:{node.lineno} {values}")
    assert not spelled


OUTSIDE = ("shared" + "/design", "DOMAIN" + ".md", "ARCHITECTURE" + ".md", "STYLE" + ".md")
"""Design notes kept outside the repository: nothing in it may send a reader there."""


def test_nothing_in_the_repository_cites_files_outside_it():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    citing = []
    for name in tracked:
        path = REPO / name
        if path.suffix not in (".py", ".md", ".yaml", ".toml", ".j2", ".sh", ".txt", ".csv"):
            continue
        text = path.read_text(errors="replace")
        citing.extend(name for word in OUTSIDE if word in text)
    assert not citing


def test_the_cost_sources_page_lists_every_cost_as_the_profiles_state_it():
    """docs/costs.md is what tools/cost_sources.py prints from the shipped profiles now: every
    cost, with the range, unit and source each profile gives it (the anchor test reads the
    ranges from this page)."""
    import contextlib
    import io

    from model.costs import COST_NAMES

    page = (REPO / "docs" / "costs.md").read_text()
    missing = [c for c in COST_NAMES if f"`{c}`" not in page]
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import cost_sources
    finally:
        sys.path.pop(0)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        cost_sources.main()
    regenerate = "regenerate: python tools/cost_sources.py > docs/costs.md"
    assert not missing, f"{regenerate} ({missing})"
    assert printed.getvalue() == page, regenerate
