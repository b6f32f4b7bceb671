"""The layout holds: subpackages by concept, importable alone, no cycles, thin entry points."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from asi_slowdown import pipeline
from asi_slowdown.pipeline.store.schema import STORE_SCHEMA

ROOT = Path(pipeline.__file__).resolve().parent
REPO = ROOT.parent
SUBPACKAGES = sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "conf")
LAYERS = [
    "configuration",
    "store",
    "execution",
    "sweep",
    "projection",
    "calibrate",
    "validate",
    "report",
    "cli",
]
"""Lowest first: a subpackage may import only those before it. ``execution`` (Ray, Dask,
progress) serves the sweep and the report; ``validate`` scores the model against the public
record with ``calibrate``'s fit; the report shows that score."""


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


PART_READERS = ("pyarrow.parquet", "pyarrow.dataset")
"""What reads Parquet part files: only ``store/`` imports them (issue 23)."""

PART_READ_CALLS = ("read_parquet", "read_table", "ParquetFile", "dataset")
"""... nor calls these (``dd.read_parquet``, ``pq.read_table``, ``ds.dataset``)."""


def test_only_the_store_reads_its_part_files():
    """The store owns its on-disk format and every read: no module outside ``store/`` imports
    pyarrow's Parquet readers or calls ``read_parquet`` / ``read_table`` / ``dataset``; the
    report asks the store for a frame (``store.frame``), the nightly history for its parts
    (``store.readers.read_folder``)."""
    wrong = []
    for path in ROOT.rglob("*.py"):
        if path.is_relative_to(ROOT / "store"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Attribute) and node.attr in PART_READ_CALLS:
                names = [node.attr]
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
            wrong += [f"{where} {n}" for n in names if n in (*PART_READERS, *PART_READ_CALLS)]
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


CITED_MODULE = re.compile(r"\b(?:pipeline|model)(?:\.[A-Za-z_]\w*)+")
CITED_FILE = re.compile(r"\b(?:pipeline|model|tools|hydra_plugins|tests)/[\w./-]+\.(?:py|md|sh)\b")


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` is a module, or a module's attribute (``pipeline.calibrate.fit.X``)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 1, -1):
        name = ".".join(parts[:cut])
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            spec = None
        if spec is not None:
            target = importlib.import_module(name)
            for attribute in parts[cut:]:
                if not hasattr(target, attribute):
                    return False
                target = getattr(target, attribute)
            return True
    return False


def test_every_folder_that_ships_is_a_listed_package():
    """setuptools warned ~40 lines about each folder it finds with data but not among
    ``packages`` (conf/'s groups, the report's templates): the first ``make sweep`` printed
    about 560 lines. A group added to conf/ is listed in pyproject.toml too."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ])  # fmt: skip
    folders = {
        "asi_slowdown.pipeline.conf",
        *("asi_slowdown.pipeline.conf." + p.name for p in (REPO / "conf").iterdir() if p.is_dir()),
    }
    for top in ("model", "pipeline", "hydra_plugins"):
        folders |= {
            ".".join(p.relative_to(REPO).parts)
            for p in [REPO / top, *(REPO / top).rglob("*")]
            if p.is_dir() and p.name != "__pycache__"
        }
    folders.discard("asi_slowdown.pipeline.conf.__pycache__")
    assert folders == listed


def test_the_configs_cite_modules_and_files_that_exist():
    """conf/dask/distributed.yaml sent readers to ``pipeline.aggregate``, moved to
    ``pipeline.report.aggregate``: every module, attribute and file a shipped config names
    is there."""
    stale = []
    for path in sorted((REPO / "conf").rglob("*.yaml")):
        text = path.read_text()
        stale += [(path.name, m) for m in CITED_MODULE.findall(text) if not resolves(m)]
        stale += [(path.name, f) for f in CITED_FILE.findall(text) if not (REPO / f).exists()]
    assert not stale


def test_the_cost_sources_page_lists_every_cost_as_the_profiles_state_it():
    """docs/costs.md is what tools/cost_sources.py prints from the shipped profiles now: every
    cost, with the range, unit and source each profile gives it (the anchor test reads the
    ranges from this page)."""
    import contextlib
    import io

    from asi_slowdown.model.costs import COST_NAMES

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
