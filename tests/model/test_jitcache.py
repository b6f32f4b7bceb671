"""numba's cached machine code is dropped when any source of ``model/`` changes.

numba itself checks only the compiled function's own file, so an edit to ``model/select.py``
(or to the mechanism's constants) alone left the kernel's cache in place: a segfault in
``test_kernel`` after the selection's buffers changed, stale numbers otherwise.
"""

from __future__ import annotations

from asi_slowdown.model.jitcache import STAMP, drop_stale_machine_code


def _cached(folder):
    return sorted(p.name for p in (folder / "__pycache__").glob("*.nb[ic]"))


def test_cached_code_survives_until_a_source_changes_then_goes(tmp_path):
    (tmp_path / "kernel.py").write_text("A = 1\n")
    (tmp_path / "select.py").write_text("B = 2\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    (cache / "kernel._point-1.py311.nbi").write_text("index")
    (cache / "kernel._point-1.py311.1.nbc").write_text("code")
    (cache / "kernel.cpython-311.pyc").write_text("bytecode")

    assert drop_stale_machine_code(tmp_path)  # no record of what it was made from: dropped
    assert _cached(tmp_path) == [] and (cache / STAMP).is_file()
    assert (cache / "kernel.cpython-311.pyc").is_file(), "only numba's files go"

    (cache / "kernel._point-1.py311.nbi").write_text("index")  # compiled again
    assert not drop_stale_machine_code(tmp_path)  # the same sources: kept
    assert _cached(tmp_path) == ["kernel._point-1.py311.nbi"]

    (tmp_path / "select.py").write_text("B = 3\n")  # another file than the compiled one
    assert drop_stale_machine_code(tmp_path)
    assert _cached(tmp_path) == []


def test_a_folder_that_cannot_be_written_is_left_alone(tmp_path):
    (tmp_path / "kernel.py").write_text("A = 1\n")
    (tmp_path / "__pycache__").write_text("not a folder")  # every write below it fails
    assert not drop_stale_machine_code(tmp_path)
