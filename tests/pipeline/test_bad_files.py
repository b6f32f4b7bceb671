"""Generated bad files: malformed fio JSON and manifests fed to ``asi-calibrate``, and
damaged parts of the results store and of the nightly history.

* fio JSON and manifests: every case ends in one ``error: ...`` line naming the file and
  the field, exit 2, with the calibration's output folders (and the inputs) untouched.
  Only damage that is bad for certain is generated (a truncation before the last
  brace, a counter of the wrong type, a version that is not fio 3.x...), so a case
  that calibrates is a bug, and the fit is replaced by a tripwire.
* Store parts: truncated at a random offset, a random bit flipped, emptied, replaced
  by a directory, next to a dead writer's temporary or a damaged index: every reader
  returns the intact parts' rows, never a traceback, and a damaged part is moved to
  ``_quarantine/`` byte for byte (``pipeline.store.parts``).
* History parts: the same damage; the nightly report must still render (exit 0) and
  name the part it moved aside. That needs the history on the store's machinery
  (digest in the name, quarantine): until then those tests are expected to fail.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from asi_slowdown.pipeline import store
from asi_slowdown.pipeline.cli.calibrate import main as calibrate_main
from asi_slowdown.pipeline.cli.report import main as report_main
from asi_slowdown.pipeline.projection import history as hist
from asi_slowdown.pipeline.report import aggregate
from asi_slowdown.pipeline.store.parts import QUARANTINE
from tests.pipeline.report_fixtures import write_store
from tests.pipeline.test_bad_input import run_main, snapshot
from tests.pipeline.test_store import worker_rows
from tests.profiles import bad_input_examples, bad_input_settings

pytestmark = [pytest.mark.fault, pytest.mark.bad_input]

DATA = Path(__file__).resolve().parent.parent / "data" / "fio"
GENUINE = json.loads((DATA / "randread_1job.json").read_text())
TWO_JOBS = json.loads((DATA / "randread_2jobs.json").read_text())

FILE_EXAMPLES = 100
"""Generated input folders per test and run (the exhaustive profile: 1000)."""
DAMAGE_EXAMPLES = 100
"""Generated damaged stores per test and run (the exhaustive profile: 1000)."""


class ReachedExecution(AssertionError):
    """Bad input got past validation: raised instead of fitting on it."""


def refuse_to_fit(*args, **kwargs):
    raise ReachedExecution("a bad input file passed validation and reached the fit")


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# --------------------------------------------------------------------------- fio JSON
COUNTERS = ("usr_cpu", "sys_cpu", "ctx", "majf", "minf", "job_runtime")
SECTION_COUNTERS = ("total_ios", "iops")
_not_numbers = st.sampled_from(["12", "", None, True, [1], {"a": 1}, "NaN"])
_bad_numbers = st.sampled_from([-1, -0.5, math.nan, math.inf, -math.inf, 10**400, -(10**400)])


def _set(doc: dict, path: tuple, value) -> dict:
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


def _delete(doc: dict, path: tuple) -> dict:
    target = doc
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return doc


_counter_paths = st.one_of(
    st.sampled_from(COUNTERS).map(lambda k: (("jobs", 0, k), k)),
    st.tuples(st.sampled_from(("read", "write")), st.sampled_from(SECTION_COUNTERS)).map(
        lambda dk: (("jobs", 0, *dk), dk[1])
    ),
)


@st.composite
def bad_fio_json(draw) -> tuple[bytes, str]:
    """``(bytes of a fio JSON file, what the error must name)``: a genuine fio 3.33 output,
    damaged so that it is bad for certain."""
    doc = copy.deepcopy(GENUINE)
    kind = draw(
        st.sampled_from(
            [
                "truncated",
                "wrong_type",
                "bad_number",
                "missing",
                "version",
                "numjobs",
                "overflowing_sum",
                "failed_job",
                "no_io",
                "shape",
                "bytes",
            ]
        )
    )
    if kind == "truncated":
        text = json.dumps(doc, indent=2)
        cut = draw(st.integers(0, text.rindex("}") - 1))  # the last brace closes the object
        return text[:cut].encode(), "fio JSON" if text[:cut].strip() else "no JSON object"
    if kind == "wrong_type":
        path, key = draw(_counter_paths)
        return json.dumps(_set(doc, path, draw(_not_numbers))).encode(), key
    if kind == "bad_number":
        path, key = draw(_counter_paths)
        return json.dumps(_set(doc, path, draw(_bad_numbers))).encode(), key
    if kind == "missing":
        path, key = draw(
            st.one_of(
                _counter_paths.filter(lambda pk: pk[1] != "job_runtime"),  # falls back: runtime
                st.sampled_from(
                    [(("jobs", 0, "read"), "'read'"), (("jobs", 0, "write"), "'write'")]
                ),
                st.just((("jobs",), "'jobs'")),
            )
        )
        return json.dumps(_delete(doc, path)).encode(), key
    if kind == "version":
        version = draw(
            st.sampled_from(
                ["fio-2.2.10", "fio-2.0", "fio-4.0", "fio-10.1", "3.33", "", "fio", 3.33, None, []]
            )
        )
        return json.dumps(_set(doc, ("fio version",), version)).encode(), "fio version"
    if kind == "numjobs":
        value = draw(st.sampled_from([0, -1, 1.5, "x", "2.5", 10**6, "9" * 30, None, [2]]))
        return json.dumps(_set(doc, ("jobs", 0, "job options", "numjobs"), value)).encode(), (
            "numjobs"
        )
    if kind == "overflowing_sum":  # each finite, the sum over the two jobs not
        doc = copy.deepcopy(TWO_JOBS)
        key = draw(st.sampled_from(["iops", "ctx", "minf"]))
        for job in doc["jobs"]:
            if key == "iops":
                job["read"]["iops"] = 1.7e308
            else:
                job[key] = 1.7e308
        return json.dumps(doc).encode(), key
    if kind == "failed_job":
        errno = draw(st.sampled_from([5, 28, 9999, -1]))
        return json.dumps(_set(doc, ("jobs", 0, "error"), errno)).encode(), "error"
    if kind == "no_io":
        for d in ("read", "write"):
            doc["jobs"][0][d]["total_ios"] = 0
        return json.dumps(doc).encode(), "total_ios"
    if kind == "shape":
        option, value = draw(
            st.sampled_from(
                [("bs", "9" * 400), ("size", "9" * 40 + "P"), ("bs", 10**30), ("size", "8E")]
            )
        )
        if option == "size" and value == "8E":  # not a size fio writes: ignored, so make it bad
            value = "9" * 25 + "G"
        return json.dumps(_set(doc, ("jobs", 0, "job options", option), value)).encode(), option
    # not fio JSON at all
    data, what = draw(
        st.sampled_from(
            [
                (b"", "no JSON object"),
                (b"\xff\xfe{", "not text"),
                (b"[1, 2]", "no JSON object"),
                (b'{"jobs": []}', "'jobs'"),
                (b'{"jobs": [3]}', "job 0"),
                (b"fio: pid=1, err=5/file:io_u.c:1889, func=io_u error\n", "no JSON object"),
            ]
        )
    )
    return data, what


# --------------------------------------------------------------------------- manifests
NATIVE = {"file": "native.json", "asi": False}
ASI = {"file": "asi.json", "asi": True, "stage": "rfc_v2", "ibpb": True}
TOP = {"workload": "fio_randread_tmpfs", "profile": "sapphire_rapids"}

_tag_damage = st.sampled_from(
    [
        ("asi", "maybe", "asi"),
        ("asi", 2, "asi"),
        ("asi", [True], "asi"),
        ("asi", None, "'asi' is required"),
        ("cpus", 0, "cpus"),
        ("cpus", -1, "cpus"),
        ("cpus", 1.5, "cpus"),
        ("cpus", "x", "cpus"),
        ("cpus", 2, "cpus=2"),  # the run has one job
        ("cpus", 10**400, "cpus"),
        ("stage", "a/b", "stage"),
        ("stage", "rfc_v3", "mitigations"),
        ("workload", "no_such_workload", "workload"),
        ("workload", "a b", "workload"),
        ("profile", "amd_zen4", "profile"),
        ("profile", "x=y", "profile"),
        ("ibpb", "maybe", "ibpb"),
        ("overrides", 5, "overrides"),
        ("overrides", {"a": 1}, "overrides"),
        ("overrides", "cpus=abc", "cpus"),
        ("overrides", "nonexistent=1", "nonexistent"),
        ("overrides", "workload.file_size=1Q", "workload.file_size"),
        ("file", "gone.json", "gone.json"),
        ("file", ".", "fio output"),
        ("file", None, "'file' is required"),
        ("colour", "red", "colour"),
    ]
)


def _yaml(doc) -> str:
    return json.dumps(doc, indent=1)  # JSON is YAML: exact types, no quoting surprises


def _csv(rows: list[dict], columns: list[str]) -> str:
    def cell(v):
        return "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)

    return "\n".join(
        [",".join(columns), *(",".join(cell(r.get(c)) for c in columns) for r in rows)]
    )


@st.composite
def bad_measurements(draw) -> tuple[dict[str, bytes], str, str]:
    """``(files of a measurements folder, the file the error must name, the field)``.

    The folder's valid form: a native and an ASI run of the genuine fio output,
    tagged by a YAML or CSV manifest. Exactly one thing is made bad.
    """
    fio = json.dumps(GENUINE).encode()
    files = {"native.json": fio, "asi.json": fio}
    runs = [dict(NATIVE), dict(ASI)]
    kind = draw(st.sampled_from(["fio", "tag", "yaml_shape", "yaml_text", "csv", "published"]))
    if kind == "fio":
        name = draw(st.sampled_from(["native.json", "asi.json"]))
        files[name], field = draw(bad_fio_json())
        files["manifest.yaml"] = _yaml({**TOP, "runs": runs}).encode()
        return files, name, field
    if kind == "tag":
        key, value, field = draw(_tag_damage)
        index = 1 if key == "stage" else draw(st.sampled_from([0, 1]))  # the ASI run's stage
        if value is None:
            runs[index].pop(key, None)
        else:
            runs[index][key] = value
        files["manifest.yaml"] = _yaml({**TOP, "runs": runs}).encode()
        return files, "manifest.yaml", field
    if kind == "yaml_shape":
        doc, field = draw(
            st.sampled_from(
                [
                    ([NATIVE], "mapping"),
                    ("runs", "mapping"),
                    ({"runs": {"file": "native.json"}}, "lists"),
                    ({"runs": [3]}, "run 1"),
                    ({"runs": []}, "lists no runs"),
                    ({"runs": [NATIVE], "published": [3]}, "published 1"),
                    ({"runs": [NATIVE], "speed": 3}, "speed"),
                ]
            )
        )
        files["manifest.yaml"] = _yaml(doc).encode()
        return files, "manifest.yaml", field
    if kind == "yaml_text":
        text = _yaml({**TOP, "runs": runs})
        damage = draw(st.sampled_from(["truncate", "tab", "bytes", "nul"]))
        if damage == "truncate":
            text = text[: draw(st.integers(0, text.rindex("]") - 1))]
            field = "manifest.yaml"
        elif damage == "tab":
            text = "runs:\n\t- {file: native.json, asi: false}\n"
            field = "YAML"
        elif damage == "nul":
            text = text.replace('"native.json"', '"native\\u0000.json"')
            field = "native"
        else:
            files["manifest.yaml"] = b"runs:\n  - {file: \xff}\n"
            return files, "manifest.yaml", "YAML"
        files["manifest.yaml"] = text.encode()
        return files, "manifest.yaml", field
    columns = ["file", "asi", "stage", "profile", "cpus", "workload", "ibpb", "overrides"]
    if kind == "csv":
        damage = draw(st.sampled_from(["tag", "extra_cell", "unknown_column", "empty", "nul"]))
        field = "manifest.csv"
        if damage == "tag":
            key, value, field = draw(
                _tag_damage.filter(
                    lambda t: not isinstance(t[1], list | dict) and t[0] not in ("overrides",)
                )
            )
            if key == "stage" or value is None:
                index = 1
            else:
                index = draw(st.sampled_from([0, 1]))
            if value is None:
                runs[index].pop(key, None)
            else:
                runs[index][key] = value
            if key not in columns:
                columns = [*columns, key]
            text = _csv(runs, columns)
        elif damage == "extra_cell":
            text = _csv(runs, columns) + ",extra"
            field = "more cells"
        elif damage == "unknown_column":
            text = _csv([{**r, "colour": "red"} for r in runs], [*columns, "colour"])
            field = "colour"
        elif damage == "empty":
            text = ",".join(columns)
            field = "lists no runs"
        else:
            text = _csv(runs, columns).replace("native.json", "native\0.json")
            field = "native"  # a file name no file system has
        files["manifest.csv"] = text.encode()
        return files, "manifest.csv", field
    # published points
    row = {"workload": "fio_randread_tmpfs", "stage": "rfc_v2", "cpus": 1, "throughput_loss": 0.7}
    key, value, field = draw(
        st.sampled_from(
            [
                ("throughput_loss", "1.5", "throughput_loss"),
                ("throughput_loss", "1", "throughput_loss"),
                ("throughput_loss", "-0.1", "throughput_loss"),
                ("throughput_loss", "nan", "throughput_loss"),
                ("throughput_loss", "abc", "throughput_loss"),
                ("sigma", "0", "sigma"),
                ("sigma", "2", "sigma"),
                ("sigma", "-1", "sigma"),
                ("cpus", "0", "cpus"),
                ("cpus", "", "'cpus' is required"),
                ("stage", "", "'stage' is required"),
                ("stage", "rfc_v3", "mitigations"),
                ("workload", "nope", "workload"),
                ("fit", "maybe", "fit"),
                ("quantity", "exits_per_op", "not both"),
                ("value", "3", "'value' goes with 'quantity'"),
                ("colour", "red", "colour"),
            ]
        )
    )
    row[key] = value
    header = [*PUBLISHED_COLUMNS, *([key] if key not in PUBLISHED_COLUMNS else [])]
    files = {"published.csv": _csv([row], header).encode()}
    return files, "published.csv", field


PUBLISHED_COLUMNS = ["workload", "stage", "cpus", "throughput_loss"]


@pytest.fixture
def calibration_outputs(tmp_path_factory, monkeypatch) -> Path:
    """Calibration output folders holding an earlier calibration that a run would replace."""
    outputs = tmp_path_factory.mktemp("guarded")
    (outputs / "conf" / "cpu").mkdir(parents=True)
    (outputs / "conf" / "cpu" / "fuzzed.yaml").write_text("# written by asi-calibrate\n")
    (outputs / "calibration" / "fuzzed").mkdir(parents=True)
    (outputs / "calibration" / "fuzzed" / "report.md").write_text("an earlier report\n")
    monkeypatch.setattr("asi_slowdown.pipeline.calibrate.run.fit", refuse_to_fit)
    return outputs


def feed_measurements(strategy, outputs: Path, cwd: Path, default: int) -> int:
    """Write each generated measurements folder and calibrate on it; how many ran."""
    before = snapshot(outputs)
    seen = []

    @bad_input_settings(default)
    @given(strategy)
    def check(case):
        files, named, field = case
        seen.append(named)
        with tempfile.TemporaryDirectory(dir=cwd.parent) as folder:
            folder = Path(folder)
            for name, data in files.items():
                (folder / name).write_bytes(data)
            inputs = snapshot(folder)
            argv = [
                f"measurements={folder}",
                f"calibrate.conf_dir={outputs / 'conf'}",
                f"calibrate.report_dir={outputs / 'calibration'}",
                "calibrate.name=fuzzed",
            ]
            code, out, err = run_main(calibrate_main, argv)
            assert code == 2, (files, err)
            assert out == "", (files, out)
            assert err.startswith("error: ") and err.count("\n") == 1, (files, err)
            assert "Traceback" not in err
            assert named in err, (named, err)
            assert field in err, (field, err)
            assert snapshot(folder) == inputs, "the inputs changed"
        assert snapshot(outputs) == before, files
        assert list(cwd.iterdir()) == []

    check()
    print(f"asi-calibrate: {len(seen)} generated measurement folders")
    return len(seen)


def test_asi_calibrate_names_the_file_and_field_of_bad_fio_json(
    calibration_outputs, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)

    def in_folder(case):
        data, field = case
        manifest = _yaml({**TOP, "runs": [NATIVE]}).encode()
        return {"native.json": data, "manifest.yaml": manifest}, "native.json", field

    strategy = bad_fio_json().map(in_folder)
    ran = feed_measurements(strategy, calibration_outputs, tmp_path, FILE_EXAMPLES)
    assert ran >= bad_input_examples(FILE_EXAMPLES)


def test_asi_calibrate_names_the_file_and_field_of_bad_manifests(
    calibration_outputs, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    ran = feed_measurements(bad_measurements(), calibration_outputs, tmp_path, FILE_EXAMPLES)
    assert ran >= bad_input_examples(FILE_EXAMPLES)


# --------------------------------------------------------------------------- store damage
IDS = {x: [f"{x}{i}" for i in range(6)] for x in "abc"}


def _three_parts(path: Path) -> list[Path]:
    return [store.write_part(path, worker_rows(IDS[x]), "run1", seq) for seq, x in enumerate("abc")]


@st.composite
def part_damage(draw) -> tuple[str, float, int]:
    """``(kind, where in the file 0-1, which bit)`` of one damage to a committed part."""
    kind = draw(st.sampled_from(["truncate", "flip", "empty", "directory", "garbage", "append"]))
    return kind, draw(st.floats(0.0, 1.0, exclude_max=True)), draw(st.integers(0, 7))


def damage_part(part: Path, kind: str, where: float, bit: int) -> bytes | None:
    """Damage ``part`` in place; its new bytes (None: it is now a directory)."""
    data = bytearray(part.read_bytes())
    if kind == "truncate":
        data = data[: int(where * len(data))]
    elif kind == "flip":
        data[int(where * len(data))] ^= 1 << bit
    elif kind == "empty":
        data = bytearray()
    elif kind == "garbage":
        data = bytearray(hashlib.sha256(bytes(data) + bytes([bit])).digest()) * (1 + bit)
    elif kind == "append":
        data += bytes([bit])
    else:
        part.unlink()
        part.mkdir()
        return None
    part.write_bytes(bytes(data))
    return bytes(data)


_litter = st.sampled_from(
    ["none", "dead_writer", "index_garbage", "index_types", "quarantine_file"]
)


def add_litter(path: Path, kind: str) -> None:
    if kind == "dead_writer":
        name = f".part-20260101T000000000000Z-run9-00000-{'0' * 16}.parquet"
        (path / f"{name}.{dead_pid()}@{socket.gethostname()}.tmp").write_bytes(b"half a part")
    elif kind == "index_garbage":
        (path / "_index.json").write_bytes(b'{"verified": {"part-')
    elif kind == "index_types":
        (path / "_index.json").write_text(json.dumps({"verified": [1], "unique": {"a": 2}}))
    elif kind == "quarantine_file":
        (path / QUARANTINE).write_text("a file where the quarantine folder goes")


READERS = ("read", "existing_ids", "check_parts", "aggregate", "dataset")


@bad_input_settings(DAMAGE_EXAMPLES)
@given(
    damage=st.lists(
        st.tuples(st.sampled_from([0, 1, 2]), part_damage()),
        min_size=1,
        max_size=3,
        unique_by=lambda d: d[0],
    ),
    litter=_litter,
    reader=st.sampled_from(READERS),
)
def test_every_reader_survives_generated_damage_and_quarantines_it(damage, litter, reader):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "store"
        parts = _three_parts(path)
        damaged = {}
        for index, (kind, where, bit) in damage:
            damaged[index] = damage_part(parts[index], kind, where, bit)
        add_litter(path, litter)
        # Damage a digest cannot see does not exist: a flip or a cut always changes the bytes.
        intact = [i for i in range(3) if i not in damaged]
        expected = sorted(x for i in intact for x in IDS["abc"[i]])
        if reader == "read":
            got = sorted(store.read(path)["point_id"].to_pylist())
        elif reader == "existing_ids":
            ids, _ = store.existing_ids(path)
            got = sorted(ids.to_pylist())
        elif reader == "check_parts":
            good, _ = store.check_parts(path)
            got = sorted(x for p in good for x in IDS["abc"[parts.index(p)]])
        elif reader == "aggregate":
            result = aggregate.aggregate_pandas(path, metrics=("slowdown_p50",))
            got = [None] * int(result.stage_summary["points"].sum())
            expected = [None] * len(expected)
        else:  # a plain pyarrow read of the store after the checked read moved damage aside
            assume(litter != "quarantine_file")  # nothing moved: pyarrow alone reads the damage
            store.check_parts(path)
            got = [None] * ds.dataset(path, format="parquet").count_rows()
            expected = [None] * len(expected)
        assert got == expected, (damage, litter, reader)
        quarantined = path / QUARANTINE
        for index, data in damaged.items():
            if data is None:  # a directory is no part: skipped, left alone
                assert parts[index].is_dir()
                continue
            if litter == "quarantine_file":  # cannot be moved: stays, skipped by every read
                assert parts[index].read_bytes() == data
                continue
            assert not parts[index].exists(), (damage, reader)
            assert (quarantined / parts[index].name).read_bytes() == data


def test_asi_report_reports_a_damaged_store_from_its_intact_parts(tmp_path):
    """End to end, once per kind of damage: exit 0, the damaged part in ``_quarantine/``."""
    path = tmp_path / "store"
    write_store(path, ("cpus=1,2", "mitigations=rfc_v2,multi_slot", "samples=16"), chunk_rows=2)
    parts = store.part_files(path)
    kinds = ["truncate", "flip", "empty", "garbage", "append"]
    for part, kind in zip(parts, kinds, strict=False):
        damage_part(part, kind, 0.5, 3)
    add_litter(path, "dead_writer")
    argv = [
        f"store.path={path}",
        f"report.dir={tmp_path / 'report'}",
        f"report.history={tmp_path / 'history'}",
        "report.whole_store=true",
        "samples=16",
        "dask.progress=false",
    ]
    code, out, err = run_main(report_main, argv)
    assert code == 0, err
    assert "Traceback" not in err
    assert f"({min(len(parts), len(kinds))} unreadable, skipped)" in err
    assert (tmp_path / "report" / "index.html").is_file()
    moved = sorted(p.name for p in (path / QUARANTINE).iterdir())
    assert moved == sorted(p.name for p in parts[: len(kinds)])


# --------------------------------------------------------------------------- history damage
def _history_with_two_nights(root: Path) -> Path:
    """A history of two nights, one projected row each, recorded by the history's own writer."""
    history = root / "history"
    texts = ("dominant_cost", "dominant_exit_source", "verdict")
    row = {v: "x" if v in texts else 0.1 for v in hist.VALUES} | {"stage_index": 0}
    counts = {"cpus": 1, "file_size": 1 << 30, "ephmap_slots": 1}  # as the projection types them
    row |= {k: counts.get(k, "x") for k in hist.KEYS}
    rows = pd.DataFrame([row])
    hist.record(history, rows, "2026-01-29")
    hist.record(history, rows, "2026-01-30")
    return history


def _history_parts(history: Path) -> list[Path]:
    return sorted(p for p in history.rglob("*.parquet") if p.is_file())


def damage_history(history: Path, kind: str, where: float, bit: int) -> Path:
    """Damage the latest night's part (or its folder); the path that was damaged."""
    part = _history_parts(history)[-1]
    if kind == "dead_writer":
        tmp = part.parent / f".{part.name}.{dead_pid()}@{socket.gethostname()}.tmp"
        tmp.write_bytes(part.read_bytes()[: int(where * part.stat().st_size)])
        return tmp
    if kind == "night_is_a_file":
        folder = part.parent
        shutil.rmtree(folder)
        folder.write_bytes(b"not a folder")
        return folder
    damage_part(part, kind, where, bit)
    return part


_history_damage = st.tuples(
    st.sampled_from(
        [
            "truncate",
            "flip",
            "empty",
            "directory",
            "garbage",
            "append",
            "dead_writer",
            "night_is_a_file",
        ]
    ),
    st.floats(0.0, 1.0, exclude_max=True),
    st.integers(0, 7),
)


@bad_input_settings(DAMAGE_EXAMPLES)
@given(damage=_history_damage)
def test_history_readers_survive_generated_damage(damage):
    """Reading a damaged history never raises; the intact night is still read."""
    with tempfile.TemporaryDirectory() as folder:
        history = _history_with_two_nights(Path(folder))
        damage_history(history, *damage)
        rows, unreadable = hist.read(history)
        assert "2026-01-29" in set(hist.nights(rows)["date"])
        assert all("\n" not in u.warning() for u in unreadable)


@pytest.mark.parametrize(
    "kind", ["truncate", "flip", "empty", "directory", "garbage", "dead_writer", "night_is_a_file"]
)
def test_nightly_report_renders_over_damaged_history_and_names_the_moved_part(tmp_path, kind):
    path = tmp_path / "store"
    write_store(path, ("cpus=1,2", "mitigations=rfc_v2,multi_slot", "samples=16"), chunk_rows=2)
    history = _history_with_two_nights(tmp_path)
    damaged = damage_history(history, kind, 0.5, 3)
    argv = [
        f"store.path={path}",
        f"report.dir={tmp_path / 'report'}",
        f"report.history={history}",
        "report.whole_store=true",
        "report.mode=nightly",
        "report.date=2026-01-31",
        "samples=16",
        "dask.progress=false",
    ]
    code, out, err = run_main(report_main, argv)
    assert code == 0, err
    assert "Traceback" not in err
    assert (tmp_path / "report" / "index.html").is_file()
    if kind not in ("dead_writer", "directory", "night_is_a_file"):
        assert damaged.name in err, err  # the warning names the part it moved aside
        assert not damaged.exists()
