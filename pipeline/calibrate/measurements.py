"""Calibration inputs: fio runs tagged by a manifest, and published points.

``asi-calibrate measurements=PATH`` accepts:

* a directory holding a manifest (``manifest.yaml``, ``manifest.yml`` or
  ``manifest.csv``) and/or published points (``published.csv``);
* a manifest file (YAML or CSV) directly; its ``file`` paths are relative to it;
* a published-points CSV directly (recognised by its ``throughput_loss`` or
  ``quantity`` column);
* the name of a group of the public record, ``conf/validation/<name>.yaml`` (``rfc_v2``,
  ``ephmap_posting``, ``asi_exit_trace``; :mod:`pipeline.calibrate.cases` gives the format):
  its one-point cases become published points (:func:`published_from_group`).

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

A published point (``published.csv`` or a manifest's ``published:`` list)
is one reported number at one model point: either a ``throughput_loss``
column, or a ``quantity`` and its ``value`` (:data:`QUANTITY_UNITS`):

* ``throughput_loss``: ``1 - tput_asi / tput_native`` [0-1]; ``sigma``
  absolute (default ``calibrate.loss_sigma``).
* exit counts, as the prototype's ``asi_exit`` tracepoints count them, with
  ``sigma`` *relative* (they are fitted in log space; default
  ``calibrate.exit_sigma``): ``exit_rate_<reason>`` [1/s per CPU] by the
  prototype's exit reason (:data:`model.mechanism.EXIT_REASONS`, e.g.
  ``exit_rate_page_fault`` for ``asi:asi_exit_pf``); ``exits_reason_<reason>``
  [1/op] the same per op; ``exits_<source>`` [1/op] by the model's exit
  source (:data:`model.mechanism.EXIT_SOURCES`); ``exit_rate_source_<source>``
  [1/s per CPU] the same per second (e.g. ``exit_rate_source_tick``);
  ``exits_per_op`` [1/op] all exits. A count must be > 0 (log space) and
  reasons the model has no source for (``user_ret``, ``misc``) are refused.

Other columns: ``ibpb`` (``false``: booted with ``clearcpuid=ibpb``; a pair of
rows at the same point with ``ibpb`` true and false is fitted jointly, so their
difference pins the IBPB cost), ``overrides`` (space-separated Hydra overrides
of the point, e.g. ``workload.io_size=4K``), ``fit`` (``false``: predict and
report the row but leave it out of the fit, a check of the model), ``source``
(where the number comes from) and ``label``.

A YAML manifest may also list ``perf kvm stat report --event=vmexit`` outputs of a
guest workload (:mod:`pipeline.calibrate.kvmstat`)::

    kvm_stat:
      - {file: vmexit.txt, seconds: 30, vcpus: 2, workload: guest_kernel_compile}

Their VM exits per second per vCPU by reason replace the workload's
``vmexits_<reason>_per_s`` in every datum of that workload (the recording's
length and vCPU count are not in the report, so the entry gives them).

Every problem is a one-line :class:`~pipeline.configuration.errors.ConfigError` naming the
file, the row (a CSV row by its line in the file, comments counted; a YAML
run by its number) and the field.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from asi_slowdown.model.mechanism import EXIT_REASONS, EXIT_SOURCES
from asi_slowdown.pipeline.calibrate.fio import FioRun, file_sha256, read_fio
from asi_slowdown.pipeline.calibrate.kvmstat import KvmStat, read_kvm_stat
from asi_slowdown.pipeline.configuration.errors import ConfigError

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
    "quantity",
    "value",
    "overrides",
    "fit",
)
"""Columns of a published point: ``workload``, ``stage``, ``cpus`` and either
``throughput_loss`` or ``quantity`` + ``value`` are required."""
PUBLISHED_REQUIRED = ("workload", "stage", "cpus")

LOSS = "throughput_loss"
QUANTITY_UNITS: dict[str, str] = {
    LOSS: "fraction",
    "exits_per_op": "1/op",
    **{f"exits_{s}": "1/op" for s in EXIT_SOURCES},
    **{f"exit_rate_source_{s}": "1/s per CPU" for s in EXIT_SOURCES},
    **{f"exits_reason_{r}": "1/op" for r, sources in EXIT_REASONS.items() if sources},
    **{f"exit_rate_{r}": "1/s per CPU" for r, sources in EXIT_REASONS.items() if sources},
}
"""Every ``quantity`` a published point may give, and its unit. Exit reasons the model has
no source for (``user_ret``, ``misc``) are not among them: the model predicts none."""
EXIT_QUANTITIES = frozenset(q for q in QUANTITY_UNITS if q != LOSS)
"""Exit counts: fitted in log space, ``sigma`` relative."""

KVM_STAT_KEY = "kvm_stat"
"""A YAML manifest's list of ``perf kvm stat report --event=vmexit`` files."""
KVM_STAT_ROW_KEYS = ("file", "seconds", "vcpus", "workload", "note")
"""Keys of one ``kvm_stat`` entry; ``file``, ``seconds`` and ``vcpus`` are required."""

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
    where: str = ""
    """The manifest and row it was read from (``manifest.yaml: run 2``), for error messages."""


@dataclass(frozen=True)
class PublishedPoint:
    """A number someone reported, for when no raw fio output exists.

    ``quantity`` is one of :data:`QUANTITY_UNITS`: ``throughput_loss = 1 -
    tput_asi / tput_native`` [0-1] with ``sigma`` its absolute standard error,
    or an exit count with ``sigma`` relative (``None``: the calibration
    default). ``fit`` false: reported beside the fit, not fitted.
    """

    label: str
    tags: Tags
    value: float
    sigma: float | None
    source: str
    quantity: str = LOSS
    fit: bool = True
    where: str = ""
    """The file and row it was read from (``published.csv: line 3``), for error messages."""

    @property
    def throughput_loss(self) -> float | None:
        """The value when it is a throughput loss, else ``None``."""
        return self.value if self.quantity == LOSS else None


@dataclass(frozen=True)
class InputFile:
    """A file the calibration read, for provenance."""

    path: str
    sha256: str
    kind: str  # "fio_json" | "manifest" | "published"


@dataclass(frozen=True)
class VmExitInput:
    """One ``perf kvm stat`` report: a guest workload's VM exits per second by reason."""

    label: str
    stat: KvmStat
    workload: str | None
    sha256: str


@dataclass(frozen=True)
class Inputs:
    """Everything a calibration reads."""

    runs: tuple[MeasuredRun, ...]
    published: tuple[PublishedPoint, ...]
    files: tuple[InputFile, ...]
    vm_exits: tuple[VmExitInput, ...] = ()
    """``perf kvm stat`` reports: their rates set the VM exits of their workload's points."""


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
        number = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    except (ValueError, OverflowError):  # a YAML integer of hundreds of digits: no count
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 1 or number != int(number):
        raise ConfigError(f"{where} must be an integer >= 1, got {value!r}")
    return int(number)


def parse_fraction(value: object, where: str, *, open_low: bool = False) -> float:
    """A number in [0, 1] (``(0, 1]`` with ``open_low``)."""
    try:
        number = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    except (ValueError, OverflowError):
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
    return MeasuredRun(label=path.name, run=run, tags=tags, where=where)


def parse_quantity(value: object, where: str) -> str:
    """A name of :data:`QUANTITY_UNITS`."""
    text = str(value).strip()
    if text in QUANTITY_UNITS:
        return text
    for reason, sources in EXIT_REASONS.items():
        if not sources and text in (f"exit_rate_{reason}", f"exits_reason_{reason}"):
            raise ConfigError(
                f"{where} {text!r}: the model has no source of {reason} exits, so it predicts none"
            )
    raise ConfigError(
        f"{where} must be throughput_loss, exits_per_op, exits_<source>, "
        f"exit_rate_source_<source>, exit_rate_<reason> or exits_reason_<reason> "
        f"(sources: {', '.join(EXIT_SOURCES)}; reasons: "
        f"{', '.join(r for r, s in EXIT_REASONS.items() if s)}), got {value!r}"
    )


def parse_positive(value: object, where: str) -> float:
    """A finite number > 0."""
    try:
        number = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    except (ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not (math.isfinite(number) and number > 0):
        raise ConfigError(f"{where} must be a number > 0, got {value!r}")
    return number


def published_from_row(row: Mapping[str, object], where: str) -> PublishedPoint:
    """One published point: a throughput loss or an exit count (see the module notes)."""
    _check_keys(row, PUBLISHED_KEYS, where)
    for key in PUBLISHED_REQUIRED:
        if _blank(row.get(key)):
            raise ConfigError(f"{where}: {key!r} is required")
    tags = parse_tags({**row, "asi": True}, where)
    has_loss, has_quantity = not _blank(row.get(LOSS)), not _blank(row.get("quantity"))
    if has_loss == has_quantity:
        raise ConfigError(
            f"{where}: give either 'throughput_loss' or 'quantity' and 'value'"
            + (" (not both)" if has_loss else "")
        )
    if has_loss:
        quantity, raw, field = LOSS, row[LOSS], LOSS
        if not _blank(row.get("value")):
            raise ConfigError(f"{where}: 'value' goes with 'quantity', not with 'throughput_loss'")
    else:
        quantity = parse_quantity(row["quantity"], f"{where}: quantity")
        if _blank(row.get("value")):
            raise ConfigError(f"{where}: 'value' is required with quantity {quantity}")
        raw, field = row["value"], "value"
    if quantity == LOSS:
        value = parse_fraction(raw, f"{where}: {field}")
        if value >= 1:
            raise ConfigError(f"{where}: {field} must be < 1, got {value}")
    else:
        value = parse_positive(raw, f"{where}: value ({quantity})")
    sigma = row.get("sigma")
    if _blank(sigma):
        sigma = None
    elif quantity == LOSS:
        sigma = parse_fraction(sigma, f"{where}: sigma", open_low=True)
    else:
        sigma = parse_positive(sigma, f"{where}: sigma (relative, for {quantity})")
    fit = True if _blank(row.get("fit")) else parse_bool(row["fit"], f"{where}: fit")
    what = "" if quantity == LOSS else f" {quantity}"
    ibpb = "" if tags.ibpb is None else f"/ibpb {'on' if tags.ibpb else 'off'}"
    label = str(row.get("label") or "").strip() or (
        f"published {tags.workload}/{tags.stage}/{tags.cpus}cpu{ibpb}{what}"
    )
    return PublishedPoint(
        label=label,
        tags=tags,
        value=value,
        sigma=sigma,
        source=str(row.get("source") or "").strip(),
        quantity=quantity,
        fit=fit,
        where=where,
    )


# --------------------------------------------------------------------------- files
def _read_csv(path: Path) -> list[tuple[int, dict[str, str]]]:
    """``(line, row)`` per data row; ``line`` is the row's line in the file, comments counted."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            kept = [
                (n, line) for n, line in enumerate(f, start=1) if not line.lstrip().startswith("#")
            ]
        reader = csv.DictReader(line for _, line in kept)
        rows = []
        for row in reader:
            rows.append((kept[reader.line_num - 1][0], row))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot read CSV: {exc}") from None
    for line, row in rows:
        if None in row:
            raise ConfigError(f"{path}: row at line {line} has more cells than the header")
    return [(line, {k.strip(): v for k, v in row.items() if k is not None}) for line, row in rows]


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
    return [published_from_row(row, f"{path}: line {line}") for line, row in rows]


def read_manifest(path: Path) -> tuple[list[MeasuredRun], list[PublishedPoint]]:
    """Runs (and inline published points) of a YAML or CSV manifest."""
    base = path.parent
    if path.suffix == ".csv":
        rows = _read_csv(path)
        if not rows:
            raise ConfigError(f"{path}: the manifest lists no runs")
        return [run_from_row(r, f"{path}: line {line}", base) for line, r in rows], []
    doc = _read_yaml(path)
    _check_keys(doc, ("runs", "published", KVM_STAT_KEY, *TAG_KEYS), str(path))
    defaults = {k: doc[k] for k in TAG_KEYS if k in doc}
    runs, published = doc.get("runs") or [], doc.get("published") or []
    if not isinstance(runs, list) or not isinstance(published, list):
        raise ConfigError(f"{path}: 'runs' and 'published' must be lists")
    if not runs and not published and not doc.get(KVM_STAT_KEY):
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


def read_manifest_kvm_stat(path: Path) -> list[VmExitInput]:
    """The ``kvm_stat:`` entries of a YAML manifest: ``perf kvm stat report --event=vmexit``
    files, each with the record's ``seconds`` and the ``vcpus`` that ran
    (:mod:`pipeline.calibrate.kvmstat`); ``workload`` defaults to the manifest's."""
    if path.suffix == ".csv":
        return []
    doc = _read_yaml(path)
    entries = doc.get(KVM_STAT_KEY) or []
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: '{KVM_STAT_KEY}' must be a list of {{file, seconds, vcpus}}")
    out = []
    for i, row in enumerate(entries, start=1):
        where = f"{path}: {KVM_STAT_KEY} {i}"
        if not isinstance(row, dict):
            raise ConfigError(
                f"{where} must be a mapping like {{file: vmexit.txt, seconds: 30, vcpus: 2}}"
            )
        _check_keys(row, KVM_STAT_ROW_KEYS, where)
        for key in ("file", "seconds", "vcpus"):
            if _blank(row.get(key)):
                raise ConfigError(f"{where}: {key!r} is required")
        file = Path(str(row["file"]).strip())
        file = file if file.is_absolute() else path.parent / file
        if not file.is_file():
            raise ConfigError(f"{where}: perf kvm stat report {str(file)!r} does not exist")
        seconds = parse_positive(row["seconds"], f"{where}: seconds")
        vcpus = parse_count(row["vcpus"], f"{where}: vcpus")
        workload = _name(row.get("workload", doc.get("workload")), f"{where}: workload")
        stat = read_kvm_stat(file, seconds=seconds, vcpus=vcpus)
        out.append(
            VmExitInput(label=file.name, stat=stat, workload=workload, sha256=file_sha256(file))
        )
    return out


VALIDATION_DIR = "validation"
"""Where the shipped public record is: ``conf/validation/<group>.yaml`` (:mod:`pipeline.calibrate.cases`)."""


def resolve(location: str, conf_dir: Path) -> Path:
    """The path ``measurements=`` names: as given, else a group of the public record,
    ``conf/validation/<location>.yaml``."""
    path = Path(location).expanduser()
    if path.exists():
        return path
    shipped = conf_dir / VALIDATION_DIR
    candidate = shipped / f"{location}.yaml"
    if candidate.exists():
        return candidate
    groups = sorted(p.stem for p in shipped.glob("*.yaml"))
    hint = f"; shipped groups of the public record: {', '.join(groups)}" if groups else ""
    raise ConfigError(f"measurements: no such file or directory {location!r}{hint}")


def published_from_group(path: Path) -> tuple[list[PublishedPoint], list[str]]:
    """A group of the public record as published points, and the cases left out.

    A case becomes a point when its run is one phase at one CPU count and its quantity is a
    throughput loss, a slowdown (fitted as the loss ``s / (1 + s)``) or an exit count; a
    ``validation`` case is reported, not fitted (``fit: false``). Runs of several phases and
    the default mitigations' quantities are scored by ``asi-validate``, which runs them as
    they were run; their names come back in the second list.
    """
    from asi_slowdown.pipeline.calibrate.cases import config_roots, read_benchmarks, read_group

    roots = config_roots()
    if path.parent.parent not in roots:
        roots = [*roots, path.parent.parent]
    cases, _ = read_group(path, read_benchmarks(roots))
    points, skipped = [], []
    for case in cases:
        phases = case.benchmark.phases
        fitted = case.quantity in QUANTITY_UNITS or case.quantity == "slowdown"
        if len(phases) != 1 or len(case.cpus.values) != 1 or not fitted:
            skipped.append(case.name)
            continue
        value, sigma, quantity = case.published, case.spread, case.quantity
        if quantity == "slowdown":  # a time ratio as the loss of throughput it means
            value, sigma, quantity = value / (1 + value), sigma / (1 + value) ** 2, LOSS
        ibpb = {"cpu.ibpb=false": False, "cpu.ibpb=true": True}
        tags = Tags(
            asi=True,
            stage=case.stage,
            profile=case.cpu,
            cpus=case.cpus.values[0],
            workload=phases[0].workload,
            ibpb=next((v for o, v in ibpb.items() if o in case.overrides), None),
            overrides=tuple(o for o in (*phases[0].overrides, *case.overrides) if o not in ibpb),
        )
        points.append(
            PublishedPoint(
                label=case.name,
                tags=tags,
                value=value,
                sigma=sigma,
                source=case.source,
                quantity=quantity,
                fit=case.role == "calibration",
                where=f"{path}: case {case.name}",
            )
        )
    return points, skipped


def _is_published_csv(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        header = next((line for line in f if line.strip() and not line.startswith("#")), "")
    columns = [c.strip() for c in header.split(",")]
    return LOSS in columns or "quantity" in columns


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
    elif path.suffix == ".yaml" and path.parent.name == VALIDATION_DIR:
        points, skipped = published_from_group(path)
        if not points:
            raise ConfigError(
                f"{path}: none of its cases is one run at one point ({', '.join(skipped)}): "
                "asi-validate scores such runs"
            )
        return Inputs(
            runs=(),
            published=tuple(points),
            files=(InputFile(str(path), file_sha256(path), "published"),),
        )
    elif path.suffix in (".csv", ".yaml", ".yml"):
        manifest = path
    else:
        raise ConfigError(
            f"{path}: expected a directory, a .yaml/.csv manifest or a published .csv"
        )

    runs, published, files, vm_exits = [], [], [], []
    if manifest is not None:
        runs, published = read_manifest(manifest)
        vm_exits = read_manifest_kvm_stat(manifest)
        files.append(InputFile(str(manifest), file_sha256(manifest), "manifest"))
        files += [InputFile(r.run.path, r.run.sha256, "fio_json") for r in runs]
        files += [InputFile(v.stat.path, v.sha256, "perf_kvm_stat") for v in vm_exits]
    if published_csv is not None:
        published += read_published_csv(published_csv)
        files.append(InputFile(str(published_csv), file_sha256(published_csv), "published"))
    return Inputs(
        runs=tuple(runs), published=tuple(published), files=tuple(files), vm_exits=tuple(vm_exits)
    )
