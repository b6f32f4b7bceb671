"""setuptools' build backend, building wheels and sdists from a copy of the project.

``pip install /path/to/checkout`` builds in that directory, and setuptools
leaves ``build/`` and ``*.egg-info`` there; a later build may even package
what ``build/lib`` kept from an earlier one. These hooks build from a
temporary copy (without ``.git``, ``.venv``, ``outputs``...) instead, so the
checkout stays as it was. Every other hook, the editable install of ``make
setup`` included, is setuptools' own (``pyproject.toml``: ``backend-path``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from setuptools import build_meta
from setuptools.build_meta import *  # noqa: F403 (setuptools' hooks, as they are)

LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "outputs", "*.egg-info", "__pycache__",
    ".pytest_cache", ".ruff_cache", ".hypothesis",
)  # fmt: skip
"""What a build never reads: repository state, environments, results, earlier builds."""


@contextmanager
def _in_a_copy():
    here = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="asi-slowdown-build-") as scratch:
        copy = Path(scratch) / here.name
        shutil.copytree(here, copy, ignore=LEFT_OUT, symlinks=True)
        os.chdir(copy)
        try:
            yield
        finally:
            os.chdir(here)


def _copied(hook: Callable) -> Callable:
    def run(directory, *args, **kwargs):
        with _in_a_copy():  # the output directory is pip's, outside the checkout
            return hook(os.path.abspath(directory), *args, **kwargs)

    run.__name__ = hook.__name__
    run.__doc__ = hook.__doc__
    return run


build_wheel = _copied(build_meta.build_wheel)
build_sdist = _copied(build_meta.build_sdist)
prepare_metadata_for_build_wheel = _copied(build_meta.prepare_metadata_for_build_wheel)
