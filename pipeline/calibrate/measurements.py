"""Calibration inputs: fio runs tagged by a manifest, and published points.

``asi-calibrate measurements=PATH`` accepts:

* a directory holding a manifest (``manifest.yaml``, ``manifest.yml`` or
  ``manifest.csv``) and/or published points (``published.csv``);
* a manifest file (YAML or CSV) directly; its ``file`` paths are relative to it;
* a published-points CSV directly (recognised by its ``throughput_loss`` column);
* the name of one of those under ``conf/measurements/`` (``rfc_v2_anchor``).

A manifest tags each fio JSON file (one *run*)::

    # manifest.yaml: top-level tags apply to every run unless a run sets them
    workload: fio_randread_tmpfs
    profile: sapphire_rapids
    runs:
      - {file: native.json, asi: false}
      - {file: rfc_v2.json, asi: true, stage: rfc_v2, ibpb: true}
    published:              # optional, same columns as published.csv
      - {workload: fio_randread_tmpfs, stage: rfc_v2, cpus: 1, throughput_loss: 0.70}

or, as CSV, one row per file with the columns of :data:`RUN_KEYS`
(``overrides`` space-separated). Tags: ``asi`` (booted with ``asi=on``),
``stage`` (a ``conf/mitigations`` preset; required when ``asi`` is true),
``profile`` (the ``conf/cpu`` profile of the machine), ``cpus`` (defaults to
the run's job count, which it must equal: the model runs one job per CPU),
``workload`` (a ``conf/workload`` preset), ``ibpb`` (``false`` when booted
with IBPB off, i.e. ``clearcpuid=ibpb``), ``overrides`` (extra Hydra
overrides for that run's point, e.g. ``workload.page_cache_size=1G``).

Every problem is a one-line :class:`~pipeline.errors.ConfigError` naming the
file and row.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.calibrate.fio import FioRun, file_sha256, read_fio
from pipeline.configuration.errors import ConfigError

RUN_KEYS = ("file", "asi", "stage", "profile", "cpus", "workload", "ibpb", "overrides", "note")
"""Columns of a manifest row; ``file`` and ``asi`` are required."""
TAG_KEYS = tuple(k for k in RUN_KEYS if k not in ("file", "note"))
"""Tags a YAML manifest may set once at the top level for every run."""
PUBLISHED_KEYS = (
    "workload",
    "stage",
    "profile",
    "cpus",
    "throughput_loss",
    "ibpb",
    "sigma",
    "source",
    "label",
)
"""Columns of a published point; the first five are required (``profile`` may be empty)."""
PUBLISHED_REQUIRED = ("workload", "stage", "cpus", "throughput_loss")

MANIFEST_NAMES = ("manifest.yaml", "manifest.yml", "manifest.csv")
PUBLISHED_NAME = "published.csv"

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


@dataclass(frozen=True)
class Tags:
    """What a measurement was taken on; ``None`` means "use the default"."""

    asi: bool
    stage: str | None = None
    profile: str | None = None
    cpus: int | None = None
    workload: str | None = None
    ibpb: bool | None = None
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class MeasuredRun:
    """One fio JSON file and its manifest tags."""

    label: str
    run: FioRun
    tags: Tags


@dataclass(frozen=True)
class PublishedPoint:
    """A throughput loss someone reported, for when no raw fio output exists.

    ``throughput_loss = 1 - tput_asi / tput_native`` [0-1]; ``sigma`` its
    standard error (``None``: the calibration default).
    """

    label: str
    tags: Tags
    throughput_loss: float
    sigma: float | None
    source: str


@dataclass(frozen=True)
class InputFile:
    """A file the calibration read, for provenance."""

    path: str
    sha256: str
    kind: str  # "fio_json" | "manifest" | "published"


@dataclass(frozen=True)
class Inputs:
    """Everything a calibration reads."""

    runs: tuple[MeasuredRun, ...]
    published: tuple[PublishedPoint, ...]
    files: tuple[InputFile, ...]


# --------------------------------------------------------------------------- values
def parse_bool(value: object, where: str) -> bool:
    """``true/false/yes/no/on/off/1/0`` (any case) or a YAML boolean."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{where} must be true or false, got {value!r}")


def parse_count(value: object, where: str) -> int:
    """A whole number >= 1."""
    try:
        number = float(str(value).strip()) if not isinstance(value, int | float) else value
    except ValueError:
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 1 or number != int(number):
        raise ConfigError(f"{where} must be an integer >= 1, got {value!r}")
    return int(number)


def parse_fraction(value: object, where: str, *, open_low: bool = False) -> float:
    """A number in [0, 1] (``(0, 1]`` with ``open_low``)."""
    try:
        number = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    except ValueError:
        number = math.nan
    low_ok = number > 0 if open_low else number >= 0
    if isinstance(value, bool) or not (low_ok and number <= 1):
        rule = "a number > 0 and <= 1" if open_low else "a number between 0 and 1"
        raise ConfigError(f"{where} must be {rule}, got {value!r}")
    return number


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _name(value: object, where: str) -> str | None:
    if _blank(value):
        return None
    text = str(value).strip()
    if "/" in text or "=" in text or " " in text:
        raise ConfigError(f"{where} must be a preset name, got {value!r}")
    return text


def _overrides(value: object, where: str) -> tuple[str, ...]:
    if _blank(value):
        return ()
    items = value.split() if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(o, str) for o in items):
        raise ConfigError(f"{where} must be a list of Hydra overrides, got {value!r}")
    return tuple(items)


def parse_tags(row: Mapping[str, object], where: str, *, asi_required: bool = True) -> Tags:
    """Validate the tag columns of one row."""
    if _blank(row.get("asi")):
        if asi_required:
            raise ConfigError(f"{where}: 'asi' is required (true for asi=on, false for asi=off)")
        asi = True
    else:
        asi = parse_bool(row["asi"], f"{where}: asi")
    stage = _name(row.get("stage"), f"{where}: stage")
    if asi and stage is None:
        raise ConfigError(f"{where}: an ASI run needs 'stage' (a conf/mitigations preset)")
    return Tags(
        asi=asi,
        stage=stage,
        profile=_name(row.get("profile"), f"{where}: profile"),
        cpus=None if _blank(row.get("cpus")) else parse_count(row["cpus"], f"{where}: cpus"),
        workload=_name(row.get("workload"), f"{where}: workload"),
        ibpb=None if _blank(row.get("ibpb")) else parse_bool(row["ibpb"], f"{where}: ibpb"),
        overrides=_overrides(row.get("overrides"), f"{where}: overrides"),
    )


def _check_keys(row: Mapping[str, object], allowed: Iterable[str], where: str) -> None:
    allowed = tuple(allowed)
    unknown = [k for k in row if k not in allowed]
    if unknown:
        raise ConfigError(f"{where}: unknown column {unknown[0]!r}; allowed: {', '.join(allowed)}")


# --------------------------------------------------------------------------- rows
def run_from_row(row: Mapping[str, object], where: str, base_dir: Path) -> MeasuredRun:
    """One manifest row: read its fio file and check its tags against it."""
    _check_keys(row, RUN_KEYS, where)
    if _blank(row.get("file")):
        raise ConfigError(f"{where}: 'file' is required (a fio JSON output)")
    path = Path(str(row["file"]).strip())
    path = path if path.is_absolute() else base_dir / path
    if not path.is_file():
        raise ConfigError(f"{where}: fio output {str(path)!r} does not exist")
    tags = parse_tags(row, where)
    run = read_fio(path)
    if tags.cpus is not None and tags.cpus != run.jobs:
        raise ConfigError(
            f"{where}: cpus={tags.cpus} but {path.name} ran {run.jobs} fio job(s); "
            "the model runs one job per CPU"
        )
    return MeasuredRun(label=path.name, run=run, tags=tags)


def published_from_row(row: Mapping[str, object], where: str) -> PublishedPoint:
    """One published point."""
    _check_keys(row, PUBLISHED_KEYS, where)
    for key in PUBLISHED_REQUIRED:
        if _blank(row.get(key)):
            raise ConfigError(f"{where}: {key!r} is required")
    tags = parse_tags({**row, "asi": True}, where)
    loss = row["throughput_loss"]
    loss = parse_fraction(loss, f"{where}: throughput_loss")
    if loss >= 1:
        raise ConfigError(f"{where}: throughput_loss must be < 1, got {loss}")
    sigma = row.get("sigma")
    sigma = None if _blank(sigma) else parse_fraction(sigma, f"{where}: sigma", open_low=True)
    label = str(row.get("label") or "").strip() or (
        f"published {tags.workload}/{tags.stage}/{tags.cpus}cpu"
    )
    return PublishedPoint(
        label=label,
        tags=tags,
        throughput_loss=loss,
        sigma=sigma,
        source=str(row.get("source") or "").strip(),
    )


# --------------------------------------------------------------------------- files
def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(row for row in f if not row.lstrip().startswith("#")))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot read CSV: {exc}") from None
    for i, row in enumerate(rows, start=2):
        if None in row:
            raise ConfigError(f"{path}: row {i} has more cells than the header")
    return [{k.strip(): v for k, v in row.items() if k is not None} for row in rows]


def _read_yaml(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: cannot read YAML: {first}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a manifest must be a mapping with a 'runs' list")
    return doc


def read_published_csv(path: Path) -> list[PublishedPoint]:
    """Published points from a CSV with the columns of :data:`PUBLISHED_KEYS`."""
    rows = _read_csv(path)
    if not rows:
        raise ConfigError(f"{path}: no published points")
    return [published_from_row(row, f"{path}: row {i}") for i, row in enumerate(rows, start=2)]


def read_manifest(path: Path) -> tuple[list[MeasuredRun], list[PublishedPoint]]:
    """Runs (and inline published points) of a YAML or CSV manifest."""
    base = path.parent
    if path.suffix == ".csv":
        rows = _read_csv(path)
        if not rows:
            raise ConfigError(f"{path}: the manifest lists no runs")
        return [run_from_row(r, f"{path}: row {i}", base) for i, r in enumerate(rows, 2)], []
    doc = _read_yaml(path)
    _check_keys(doc, ("runs", "published", *TAG_KEYS), str(path))
    defaults = {k: doc[k] for k in TAG_KEYS if k in doc}
    runs, published = doc.get("runs") or [], doc.get("published") or []
    if not isinstance(runs, list) or not isinstance(published, list):
        raise ConfigError(f"{path}: 'runs' and 'published' must be lists")
    if not runs and not published:
        raise ConfigError(f"{path}: the manifest lists no runs")
    out_runs, out_published = [], []
    for i, row in enumerate(runs, start=1):
        where = f"{path}: run {i}"
        if not isinstance(row, dict):
            raise ConfigError(f"{where} must be a mapping like {{file: x.json, asi: false}}")
        out_runs.append(run_from_row({**defaults, **row}, where, base))
    for i, row in enumerate(published, start=1):
        where = f"{path}: published {i}"
        if not isinstance(row, dict):
            raise ConfigError(f"{where} must be a mapping")
        inherited = {k: v for k, v in defaults.items() if k in PUBLISHED_KEYS}
        out_published.append(published_from_row({**inherited, **row}, where))
    return out_runs, out_published


def resolve(location: str, conf_dir: Path) -> Path:
    """The path ``measurements=`` names: as given, else under ``conf/measurements``."""
    path = Path(location).expanduser()
    if path.exists():
        return path
    shipped = conf_dir / "measurements"
    for candidate in (shipped / location, *(shipped / f"{location}{s}" for s in (".csv", ".yaml"))):
        if candidate.exists():
            return candidate
    examples = sorted(
        p.stem for p in shipped.glob("*") if p.is_dir() or p.suffix in (".csv", ".yaml")
    )
    hint = f"; shipped: {', '.join(examples)}" if examples else ""
    raise ConfigError(f"measurements: no such file or directory {location!r}{hint}")


def _is_published_csv(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        header = next((line for line in f if line.strip() and not line.startswith("#")), "")
    return "throughput_loss" in [c.strip() for c in header.split(",")]


def load_inputs(location: str, conf_dir: Path) -> Inputs:
    """Read every input ``measurements=location`` names (see the module notes)."""
    path = resolve(location, conf_dir)
    manifest = published_csv = None
    if path.is_dir():
        found = [path / n for n in MANIFEST_NAMES if (path / n).is_file()]
        if len(found) > 1:
            raise ConfigError(
                f"{path}: more than one manifest ({', '.join(p.name for p in found)})"
            )
        manifest = found[0] if found else None
        published_csv = path / PUBLISHED_NAME if (path / PUBLISHED_NAME).is_file() else None
        if manifest is None and published_csv is None:
            raise ConfigError(
                f"{path}: holds neither a manifest ({', '.join(MANIFEST_NAMES)}) nor {PUBLISHED_NAME}"
            )
    elif path.suffix == ".csv" and _is_published_csv(path):
        published_csv = path
    elif path.suffix in (".csv", ".yaml", ".yml"):
        manifest = path
    else:
        raise ConfigError(
            f"{path}: expected a directory, a .yaml/.csv manifest or a published .csv"
        )

    runs, published, files = [], [], []
    if manifest is not None:
        runs, published = read_manifest(manifest)
        files.append(InputFile(str(manifest), file_sha256(manifest), "manifest"))
        files += [InputFile(r.run.path, r.run.sha256, "fio_json") for r in runs]
    if published_csv is not None:
        published += read_published_csv(published_csv)
        files.append(InputFile(str(published_csv), file_sha256(published_csv), "published"))
    return Inputs(runs=tuple(runs), published=tuple(published), files=tuple(files))
