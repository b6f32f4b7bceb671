"""asi-answer reads the results store when it holds every stage, and says so."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from asi_slowdown.pipeline.configuration.compose import packaged_options
from asi_slowdown.pipeline.configuration.errors import ConfigError
from asi_slowdown.pipeline.projection.answer import JSON_DERIVED_KEYS, JSON_KEYS, answer_stages, run
from asi_slowdown.pipeline.store.schema import METRIC_COLUMNS

from .report_fixtures import write_store

STAGES_GRID = ("mitigations=glob(*)", "samples=64")
"""Every roadmap stage of asi-answer's default configuration: 7 points."""

STAGES = packaged_options("mitigations")


@pytest.fixture(scope="module")
def answer_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("answer-store")
    write_store(store, STAGES_GRID, chunk_rows=1)
    return store


def test_the_answer_comes_from_the_store_and_equals_direct_evaluation(answer_store):
    stored, _, source = answer_stages(["samples=64", f"store.path={answer_store}"])
    direct, _, model = answer_stages(["samples=64", "answer.source=model"])
    assert source.startswith(f"results store {answer_store} (9 stages, run run0")
    assert model == "evaluated directly (answer.source=model)"
    columns = ["stage", *METRIC_COLUMNS, "dominant_cost", "dominant_exit_source", "verdict"]
    pd.testing.assert_frame_equal(stored[columns], direct[columns], rtol=0, atol=0)


def test_the_table_names_its_source_and_the_crossings(answer_store):
    text = run(["samples=64", f"store.path={answer_store}"])
    assert f"Source: results store {answer_store}" in text
    assert (
        "Crossings: under 5 %: met from mapping_fastpath on; 1 % target: not reached by kvm_vmm_switch."
        in text
    )
    elsewhere = run(["samples=64", f"store.path={answer_store}", "cpus=2"])  # not stored
    assert (
        f"Source: evaluated directly (the results store {answer_store} holds 0 of 9 stages at "
        "workload=fio_randread_tmpfs cpu=sapphire_rapids cpus=2 ephmap.slots=2 samples=64 "
        "seed=0; it lacks every one: asi-sweep -m 'mitigations=glob(*)' with the same "
        "overrides stores them)" in elsewhere
    )


def test_source_store_says_which_stages_of_which_point_the_store_lacks_or_that_it_is_not_there(
    answer_store, tmp_path
):
    """``answer.source=store cpus=300`` and a store path that does not exist used to say the
    same thing, "holds 0 of 9 stages"."""
    store = [f"store.path={answer_store}", "answer.source=store", "samples=64"]
    with pytest.raises(ConfigError) as info:
        run([*store, "cpus=300"])
    assert str(info.value).startswith(
        f"answer.source=store: the results store {answer_store} holds 0 of 9 stages at "
        "workload=fio_randread_tmpfs cpu=sapphire_rapids cpus=300 "
    )
    assert "it lacks every one: asi-sweep -m 'mitigations=glob(*)'" in str(info.value)
    nowhere = tmp_path / "nowhere"
    with pytest.raises(ConfigError) as info:
        run([f"store.path={nowhere}", "answer.source=store", "samples=64"])
    assert str(info.value) == (
        f"answer.source=store: the results store {nowhere} does not exist: no sweep has "
        "written there"
    )
    assert not nowhere.exists()


def test_json_keeps_its_keys_and_reports_the_source_on_stderr(answer_store, capsys):
    document = json.loads(run(["samples=64", f"store.path={answer_store}", "answer.format=json"]))
    assert [set(r) for r in document["stages"]] == [set(JSON_KEYS) | set(JSON_DERIVED_KEYS)] * 9
    assert capsys.readouterr().err.startswith(f"source: results store {answer_store}")
    assert document["source"]["stages"].startswith(f"results store {answer_store}")


@pytest.fixture(scope="module")
def store_at_two_cpu_counts(tmp_path_factory):
    store = tmp_path_factory.mktemp("answer-store-cpus")
    write_store(store, (*STAGES_GRID, "cpus=1,3"), chunk_rows=16)
    return store


def test_each_table_says_where_it_came_from_and_store_means_the_store(store_at_two_cpu_counts):
    """The by-CPU table reads the store too; ``source=store`` never computes what it lacks."""
    store = store_at_two_cpu_counts
    both = ["samples=64", f"store.path={store}", "answer.source=store"]
    text = run([*both, "answer.vs_cpus=[1,3]"])
    sources = [line for line in text.splitlines() if line.startswith("Source: ")]
    assert len(sources) == 2
    assert all(s.startswith(f"Source: results store {store}") for s in sources)
    assert "(18 points, run run0" in sources[1]
    with pytest.raises(
        ConfigError,
        match=r"^answer\.source=store: the results store .* holds 9 of 18 points; "
        r"it lacks points at cpus=4$",
    ):
        run([*both, "answer.vs_cpus=[3,4]"])
    # auto: the stages from the store, the by-CPU table from the model, and each says so
    document = json.loads(
        run(["samples=64", f"store.path={store}", "answer.vs_cpus=[3,4]", "answer.format=json"])
    )
    assert document["source"]["stages"].startswith(f"results store {store}")
    assert document["source"]["by_cpus"] == (
        f"evaluated directly (the results store {store} holds 9 of 18 points; "
        "it lacks points at cpus=4)"
    )
    assert document["configuration"]["overrides"][-2:] == [
        "answer.vs_cpus=[3,4]",
        "answer.format=json",
    ]
    assert document["configuration"]["config"]["answer"]["vs_cpus"] == [3, 4]


def test_a_quarantined_part_is_reported(tmp_path):
    write_store(tmp_path, STAGES_GRID, chunk_rows=4)
    part = sorted(tmp_path.glob("part-*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:-7])  # truncated: fails its digest
    text = run(["samples=64", f"store.path={tmp_path}"])
    source = next(line for line in text.splitlines() if line.startswith("Source: "))
    assert source.startswith(f"Source: evaluated directly (the results store {tmp_path} holds")
    assert (
        f"1 part file(s) failed their check and were moved to {tmp_path / '_quarantine'}" in source
    )
    assert part.name in source and (tmp_path / "_quarantine" / part.name).exists()


def test_a_partly_stored_configuration_is_evaluated(tmp_path):
    write_store(tmp_path, STAGES_GRID, chunk_rows=1, keep=lambda chunk: chunk != 3)
    _, _, source = answer_stages(["samples=64", f"store.path={tmp_path}"])
    assert source.startswith(f"evaluated directly (the results store {tmp_path} holds 8 of 9 ")
    lacking = re.search(r"; it lacks (\w+): asi-sweep", source).group(1)
    assert lacking in STAGES
    with pytest.raises(
        ConfigError,
        match=rf"^answer\.source=store: the results store .* holds 8 of 9 stages at .*; "
        rf"it lacks {lacking}: ",
    ):
        answer_stages(["samples=64", f"store.path={tmp_path}", "answer.source=store"])


def test_a_bad_source_is_one_line():
    with pytest.raises(
        ConfigError, match=r"^answer\.source must be one of auto, store, model, got 'disk'$"
    ):
        run(["answer.source=disk", "samples=8"])
