"""asi-answer reads the results store when it holds every stage, and says so."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.configuration.errors import ConfigError
from pipeline.projection.answer import JSON_KEYS, answer_stages, run
from pipeline.store.schema import METRIC_COLUMNS

from .report_fixtures import write_store

STAGES_GRID = ("mitigations=glob(*)", "samples=64")
"""Every roadmap stage of asi-answer's default configuration: 7 points."""


@pytest.fixture(scope="module")
def answer_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("answer-store")
    write_store(store, STAGES_GRID, chunk_rows=1)
    return store


def test_the_answer_comes_from_the_store_and_equals_direct_evaluation(answer_store):
    stored, _, source = answer_stages(["samples=64", f"store.path={answer_store}"])
    direct, _, model = answer_stages(["samples=64", "answer.source=model"])
    assert source.startswith(f"results store {answer_store} (8 stages, run run0")
    assert model == "evaluated directly (answer.source=model)"
    columns = ["stage", *METRIC_COLUMNS, "dominant_cost", "dominant_exit_source", "verdict"]
    pd.testing.assert_frame_equal(stored[columns], direct[columns], rtol=0, atol=0)


def test_the_table_names_its_source_and_the_crossings(answer_store):
    text = run(["samples=64", f"store.path={answer_store}"])
    assert f"Source: results store {answer_store}" in text
    assert (
        "Crossings: under 5 %: met from mapping_fastpath on; 1 % target: not reached by mapping_fastpath."
        in text
    )
    elsewhere = run(["samples=64", f"store.path={answer_store}", "cpus=2"])  # not stored
    assert (
        f"Source: evaluated directly (the results store {answer_store} holds 0 of 8 stages)"
        in elsewhere
    )


def test_json_keeps_its_keys_and_reports_the_source_on_stderr(answer_store, capsys):
    records = json.loads(run(["samples=64", f"store.path={answer_store}", "answer.format=json"]))
    assert [set(r) for r in records] == [set(JSON_KEYS)] * 8
    assert capsys.readouterr().err.startswith(f"source: results store {answer_store}")


def test_a_partly_stored_configuration_is_evaluated(tmp_path):
    write_store(tmp_path, STAGES_GRID, chunk_rows=1, keep=lambda chunk: chunk != 3)
    _, _, source = answer_stages(["samples=64", f"store.path={tmp_path}"])
    assert source == f"evaluated directly (the results store {tmp_path} holds 7 of 8 stages)"
    with pytest.raises(
        ConfigError, match=r"^answer\.source=store: the results store .* holds 7 of 8 stages$"
    ):
        answer_stages(["samples=64", f"store.path={tmp_path}", "answer.source=store"])


def test_a_bad_source_is_one_line():
    with pytest.raises(
        ConfigError, match=r"^answer\.source must be one of auto, store, model, got 'disk'$"
    ):
        run(["answer.source=disk", "samples=8"])
