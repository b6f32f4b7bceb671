"""Fixtures shared by the pipeline's test modules."""

from __future__ import annotations

import signal

import pytest

from tests.pipeline.report_fixtures import write_store


@pytest.fixture
def sigint_default():
    """SIGINT at Python's default (raises KeyboardInterrupt), whatever the test process had
    (a run from a script's background job inherits it ignored), and restored afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """The small grid, every point stored (168 points in 14 part files)."""
    store = tmp_path_factory.mktemp("store")
    return store, write_store(store)
