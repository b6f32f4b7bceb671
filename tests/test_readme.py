"""The README's model-derived tables are what the current model prints (``make docs``)."""

from __future__ import annotations

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
