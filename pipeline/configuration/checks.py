"""Every setting's check, one function per config section, in the schema's order.

A composed config is checked in two steps. :func:`validate` runs on every
composition (:meth:`pipeline.configuration.compose.Composer.compose`): the
top-level keys, ``samples`` and ``seed``, ``answer.format``, that ``store.path``
names a path, and the model's sections, by converting them into the model's
inputs (:func:`pipeline.configuration.profile.model_profile`). The sections a
command alone uses are checked by that command, before any work, with the
function of that section here: ``answer`` (:func:`check_answer`), ``store``,
``sweep`` and ``ray`` (:func:`check_execution`), ``dask`` and ``report``
(:func:`check_report`), ``validate`` (:func:`check_validate`), ``calibrate`` and
``measurements`` (:func:`check_calibrate`), and Hydra's own choices
(:func:`check_launcher`). Every failure is a one-line :class:`ConfigError`
naming the setting and what it takes.
"""

from __future__ import annotations

import functools
import math
import re
import secrets
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from asi_slowdown.model.params import as_columns, check_ranges
from asi_slowdown.model.units import parse_size
from asi_slowdown.pipeline.configuration.errors import ConfigError, cannot_delete
from asi_slowdown.pipeline.configuration.profile import (
    ModelProfile,
    model_profile,
    point_from_config,
)
from asi_slowdown.pipeline.configuration.schema import Config


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def check_one_of(field: str, what: str, values: Sequence[str], allowed: Sequence[str]) -> None:
    """Each of ``values`` is among ``allowed``; else one line naming the first that is not
    (``report.experiment: unknown experiment 'x'; allowed: default, nightly``)."""
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ConfigError(f"{field}: unknown {what} {unknown[0]!r}; allowed: {', '.join(allowed)}")


# --------------------------------------------------------------------------- every composition
MAX_SAMPLES = 1 << 20
"""More Monte Carlo samples than this per point is a typo (1024 resolve p05/p95 well)."""


@functools.cache
def _schema_fields(schema: type) -> tuple[dict[str, object], list[str]]:
    """A schema dataclass's field types and names. Cached: ``typing.get_type_hints``
    evaluates every string annotation anew on each call, and a grid validates hundreds of
    compositions against the same few classes."""
    return typing.get_type_hints(schema), [f.name for f in fields(schema)]


def unknown_key(node: DictConfig, schema: type, prefix: str = "") -> str | None:
    """The first key of ``node`` its ``schema`` (a dataclass) does not have, searched into the
    sections that are dataclasses too, as a one-line message naming it and what is allowed;
    None when there is none. Struct mode refuses such keys on a merge, but Hydra's ``+key=``
    force-adds them (``+calibrate.x=1``), so the schema is checked here, at every depth."""
    hints, names = _schema_fields(schema)
    for key in sorted(str(k) for k in node.keys()):
        if not prefix and key == "hydra":
            continue
        if key not in names:
            return f"{prefix}{key}: unknown key; allowed: {', '.join(prefix + n for n in names)}"
        child = node[key] if OmegaConf.is_dict(node) else None
        if is_dataclass(hints[key]) and isinstance(child, DictConfig):
            found = unknown_key(child, hints[key], f"{prefix}{key}.")
            if found:
                return found
    return None


def validate(cfg: DictConfig) -> ModelProfile:
    """Check what every command needs, once, before any work; return the model's inputs.

    The sections the schema requires must be there (``~cpus`` deletes one) and no other;
    ``samples``, ``seed``, ``answer.format`` and ``store.path`` (:func:`check_store_path`)
    are checked here, the model's sections by :func:`~pipeline.configuration.profile.model_profile`,
    whose result is returned: the one conversion of this composition.
    """
    absent = [f.name for f in fields(Config) if f.name not in cfg]
    if absent:  # ~cpus, ~answer: Hydra deletes what the schema requires
        raise ConfigError(cannot_delete(absent[0]))
    unknown = unknown_key(cfg, Config)
    if unknown:
        raise ConfigError(unknown)
    if cfg.samples < 1:
        raise ConfigError(f"samples must be an integer >= 1, got {cfg.samples}")
    if cfg.samples > MAX_SAMPLES:
        raise ConfigError(f"samples must be an integer <= {MAX_SAMPLES}, got {cfg.samples}")
    if cfg.seed < 0:  # numpy's SeedSequence rejects negative seeds
        raise ConfigError(f"seed must be an integer >= 0, got {cfg.seed}")
    if cfg.seed >= 2**63:
        raise ConfigError(f"seed must be an integer < 2**63, got {cfg.seed}")
    check_answer_format(cfg)
    check_store_path(cfg.store.path, use=False)
    return model_profile(cfg)


# --------------------------------------------------------------------------- roadmap, answer
def check_roadmap(cfg: DictConfig) -> list[str]:
    """``roadmap.stages``: at least one stage; returns them (for the commands that walk it)."""
    stages = list(cfg.roadmap.stages)
    if not stages:
        raise ConfigError("roadmap.stages must list at least one mitigations preset")
    return stages


ANSWER_FORMATS = ("table", "json")

ANSWER_SOURCES = ("auto", "store", "model")
"""``answer.source``: the store when it holds every point, else the model; the store only;
the model only."""

VS_DIMENSIONS = {"vs_cpus": ("cpus", "CPUs"), "vs_slots": ("ephmap_slots", "slots")}
"""``answer.<key>``: the point parameter it varies and the label of its columns."""


def check_answer_format(cfg: DictConfig) -> None:
    """``answer.format``: ``table`` or ``json``."""
    if cfg.answer.format not in ANSWER_FORMATS:
        raise ConfigError(
            f"answer.format must be one of {', '.join(ANSWER_FORMATS)}, got {cfg.answer.format!r}"
        )


def check_source(value: object) -> str:
    """``answer.source`` validated."""
    if value not in ANSWER_SOURCES:
        raise ConfigError(
            f"answer.source must be one of {', '.join(ANSWER_SOURCES)}, got {value!r}"
        )
    return str(value)


def check_vs(cfg: DictConfig, key: str, values: Sequence) -> list[int]:
    """``answer.<key>`` as a list of distinct integers, each in the range its parameter allows.

    One-line :class:`ConfigError` otherwise: a value out of range gets the message
    the scalar gets (``cpus=100000``), naming the list entry
    (``answer.vs_cpus[0] must be an integer <= 8192, got 100000``); a repeated
    value is refused rather than silently dropped.
    """
    param, _ = VS_DIMENSIONS[key]
    try:
        values = [int(v) for v in values]
    except (TypeError, ValueError):
        raise ConfigError(
            f"answer.{key} must be a list of integers >= 1, got {list(values)}"
        ) from None
    base = point_from_config(cfg)
    for i, value in enumerate(values):
        try:
            check_ranges(as_columns(base | {param: value}), {param: f"answer.{key}[{i}]"})
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ConfigError(
            f"answer.{key} must list each value once, got {values} "
            f"({', '.join(map(str, repeated))} repeated)"
        )
    return values


def check_answer(cfg: DictConfig) -> str:
    """Validate the ``answer`` options before any work (nothing is read or moved on bad input).

    Returns ``answer.source``. The ``vs_*`` lists are checked by :func:`check_vs`, and
    ``store.path`` as ``asi-sweep`` checks it whenever the store will be read.
    """
    source = check_source(cfg.answer.source)
    for key in VS_DIMENSIONS:
        check_vs(cfg, key, cfg.answer[key])
    if source != "model":
        check_store_path(str(cfg.store.path))
    return source


# --------------------------------------------------------------------------- store, sweep, ray
def check_store_path(path: object, *, use: bool = True, exists: bool = False) -> None:
    """``store.path``, the one check of it: a path (every composition, ``use=False``); for a
    command that reads or writes the store, a directory or nothing yet (a sweep creates it);
    with ``exists``, a store that is there (the report reads one)."""
    text = str(path)
    _check(bool(text.strip()), f"store.path must be a directory path, got {text!r}")
    if exists:
        _check(
            Path(text).is_dir(),
            f"store.path: no results store at {text} "
            "(run asi-sweep first, or point store.path at one)",
        )
    elif use:
        _check(
            Path(text).exists() is False or Path(text).is_dir(),
            f"store.path must be a directory, got the file {text!r}",
        )


def check_store(cfg: DictConfig) -> None:
    """The ``store`` section of a command that writes the store (``asi-sweep``)."""
    st = cfg.store
    check_store_path(st.path)
    _check(st.part_rows >= 1, f"store.part_rows must be an integer >= 1, got {st.part_rows}")
    _check(
        st.flush_seconds >= 0, f"store.flush_seconds must be a number >= 0, got {st.flush_seconds}"
    )


def check_sweep(cfg: DictConfig) -> None:
    """The ``sweep`` section: how the grid is cut into tasks."""
    s = cfg.sweep
    _check(
        s.chunk_size is None or s.chunk_size >= 1,
        f"sweep.chunk_size must be an integer >= 1 or null, got {s.chunk_size}",
    )
    _check(
        s.target_task_seconds > 0,
        f"sweep.target_task_seconds must be a number > 0, got {s.target_task_seconds}",
    )
    _check(
        s.points_per_second is None or s.points_per_second > 0,
        f"sweep.points_per_second must be a number > 0 or null, got {s.points_per_second}",
    )
    _check(
        s.max_chunk_points >= 1,
        f"sweep.max_chunk_points must be an integer >= 1, got {s.max_chunk_points}",
    )
    _check(
        s.max_in_flight is None or s.max_in_flight >= 1,
        f"sweep.max_in_flight must be an integer >= 1 or null, got {s.max_in_flight}",
    )
    _check(s.max_retries >= 0, f"sweep.max_retries must be an integer >= 0, got {s.max_retries}")


def check_ray(cfg: DictConfig) -> None:
    """The ``ray`` section: where the sweep (and ``dask.scheduler=ray``) runs."""
    r = cfg.ray
    _check(
        r.num_cpus is None or r.num_cpus >= 1,
        f"ray.num_cpus must be an integer >= 1 or null, got {r.num_cpus}",
    )
    _check(
        r.object_store_memory is None or r.object_store_memory >= 80 << 20,
        f"ray.object_store_memory must be >= 83886080 bytes (80 MiB) or null, got {r.object_store_memory}",
    )
    address = r.address
    _check(
        address is None
        or address == "auto"
        or address.startswith("ray://")
        or (":" in address and address.rsplit(":", 1)[1].isdigit()),
        f"ray.address must be null (embedded Ray), auto, host:port or ray://host:port, got {address!r}",
    )


def check_execution(cfg: DictConfig) -> None:
    """Range-check the execution settings of a sweep (``sweep``, ``store``, ``ray``) before any work."""
    check_sweep(cfg)
    check_store(cfg)
    check_ray(cfg)


def check_launcher(cfg: DictConfig) -> None:
    """Refuse ``hydra/launcher=...`` and another ``hydra/sweeper``: points run as Ray tasks
    of the grid sweeper, never as Hydra jobs."""
    choices = OmegaConf.select(cfg, "hydra.runtime.choices", default={})
    sweeper = choices.get("hydra/sweeper")
    if sweeper not in (None, "grid"):
        raise ConfigError(
            f"hydra/sweeper={sweeper}: asi-sweep runs its grid sweeper (chunks of points as "
            "Ray tasks); Hydra's other sweepers would run one job per point"
        )
    choice = choices.get("hydra/launcher")
    if choice not in (None, "basic"):
        raise ConfigError(
            f"hydra/launcher={choice}: the grid sweeper runs points as Ray tasks, not through a "
            "Hydra launcher; choose where they run with ray=... or ray.address=..."
        )


# --------------------------------------------------------------------------- dask
DISTRIBUTED_SCHEMES: tuple[str, ...] = (
    "tcp://",
    "tls://",
    "inproc://",
    "ucx://",
    "ws://",
    "wss://",
)
"""Address schemes of a Dask distributed scheduler (``inproc://`` only within one process)."""


def check_scheduler(value: object) -> str:
    """``dask.scheduler`` validated: ``threads``, ``ray`` or a distributed address."""
    text = str(value) if value is not None else ""
    if text in ("threads", "ray") or text.startswith(DISTRIBUTED_SCHEMES):
        return text
    raise ConfigError(
        f"dask.scheduler must be threads, ray or a Dask scheduler address "
        f"(tcp://host:port), got {value!r}"
    )


def check_dask(cfg: DictConfig) -> None:
    """The ``dask`` section: where the report's aggregation runs."""
    check_scheduler(cfg.dask.scheduler)
    if cfg.dask.num_workers is not None and cfg.dask.num_workers < 1:
        raise ConfigError(
            f"dask.num_workers must be an integer >= 1 or null, got {cfg.dask.num_workers}"
        )


# --------------------------------------------------------------------------- report
MODES = ("adhoc", "nightly")

REPORTS = Path("outputs/reports")
"""Where a report goes when ``report.dir`` is null: a folder per run (:func:`report_folder`)."""


@dataclass(frozen=True)
class ReportSettings:
    """The report's validated settings (``report`` and ``dask``)."""

    mode: str
    experiment: str | None  # None: the whole store
    folder: Path
    night: str
    threshold: float
    focus_file_size: int | None
    history: Path
    fresh: bool = False
    """True when the report named its own folder: :func:`pipeline.report.settings.claim_folder`
    then refuses an existing one."""


def report_folder(now: datetime) -> Path:
    """A new folder under :data:`REPORTS`: the UTC time to the microsecond and six random hex digits.

    Two reports started in the same second (or microsecond) never share a folder; the
    name still sorts by time, as Hydra's ``${now:...}`` sweep folders do.
    """
    return REPORTS / f"{now:%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(3)}"


def parse_date(text: str | None) -> str:
    """``report.date`` as ``YYYY-MM-DD``; None is today (UTC)."""
    if text is None:
        return datetime.now(UTC).date().isoformat()
    try:
        return date.fromisoformat(str(text)).isoformat()
    except ValueError:
        raise ConfigError(f"report.date must be a date YYYY-MM-DD or null, got {text!r}") from None


def check_threshold(value: object) -> float:
    """``report.move_threshold`` validated (a fraction >= 0)."""
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not math.isfinite(threshold) or threshold < 0:
        raise ConfigError(f"report.move_threshold must be a number >= 0, got {value!r}")
    return threshold


def check_folder_path(folder: Path, field: str) -> None:
    """A folder the report will write into: a directory or not there yet, never under a file.

    Checked with the settings, so a bad path is one line before any aggregation.
    """
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{field} must be a directory, got the file {str(folder)!r}")
    above = next((p for p in folder.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ConfigError(f"{field}: {str(folder)!r} is under the file {str(above)!r}")


def check_report(
    cfg: DictConfig,
    now: datetime | None = None,
    group_options: Callable[[str], list[str]] | None = None,
) -> ReportSettings:
    """Validate the ``report`` and ``dask`` sections; one-line :class:`ConfigError` otherwise.

    ``group_options`` lists a config group's options (default: the process's composer's),
    for ``report.experiment``.
    """
    r = cfg.report
    if r.mode not in MODES:
        raise ConfigError(f"report.mode must be one of {', '.join(MODES)}, got {r.mode!r}")
    check_dask(cfg)
    experiment = None
    if not r.get("whole_store", False):
        experiment = r.experiment or ("nightly" if r.mode == "nightly" else "default")
        if group_options is None:
            from asi_slowdown.pipeline.configuration.compose import composer

            group_options = composer().group_options
        check_one_of("report.experiment", "experiment", [experiment], group_options("experiment"))
    for name in ("cpus", "ephmap_slots"):
        value = r.focus[name]
        if value is not None and value < 1:
            raise ConfigError(f"report.focus.{name} must be an integer >= 1 or null, got {value}")
    size = None
    if r.focus.file_size is not None:
        try:
            size = parse_size(r.focus.file_size, "report.focus.file_size")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if size < 1:
            raise ConfigError(
                f"report.focus.file_size must be a size of at least 1 byte (64K, 1G) or null, "
                f"got {r.focus.file_size}"
            )
    folder = Path(r.dir) if r.dir else report_folder(now or datetime.now(UTC))
    check_folder_path(folder, "report.dir")
    if r.mode == "nightly":
        check_folder_path(Path(r.history), "report.history")
    return ReportSettings(
        mode=r.mode,
        experiment=experiment,
        folder=folder,
        night=parse_date(r.date),
        threshold=check_threshold(r.move_threshold),
        focus_file_size=size,
        history=Path(r.history),
        fresh=not r.dir,
    )


# --------------------------------------------------------------------------- validate
VALIDATE_FORMATS = ("table", "json")


def check_validate(cfg: DictConfig, cases: Sequence[str] | None = None) -> None:
    """The ``validate`` section; with ``cases`` (the public record's case names), also
    that ``validate.cases`` names only those."""
    v = cfg.validate
    if v.format not in VALIDATE_FORMATS:
        raise ConfigError(
            f"validate.format must be one of {', '.join(VALIDATE_FORMATS)}, got {v.format!r}"
        )
    if cases is not None:
        check_one_of("validate.cases", "case", list(v.cases), cases)


# --------------------------------------------------------------------------- calibrate
CALIBRATED_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
"""A calibrated profile's name (``calibrate.name``): a file name and a config option."""

SIGMAS = ("time_sigma", "loss_sigma", "exit_sigma", "sys_sigma")


def check_output_dir(path: str, key: str) -> None:
    """A directory to write into: it, or else its nearest existing parent, must be a directory.

    Checked before anything is written, so a file in the way is one line, not a
    profile written and its report lost.
    """
    target = Path(path).expanduser().absolute()
    for candidate in (target, *target.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise ConfigError(f"{key} must be a directory, but {candidate} is a file")
            return


def check_calibrated_name(path: Path) -> None:
    """``calibrate.name`` must not overwrite a hand-written config at ``path`` (one without
    calibration provenance); checked for each file the calibration will write, before the fit."""
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    if "asi-calibrate" not in text:
        raise ConfigError(
            f"calibrate.name: {path} exists and was not written by asi-calibrate; "
            "pick another calibrate.name"
        )


def check_calibrate(cfg: DictConfig) -> str:
    """``measurements`` (required) and the ``calibrate`` section; returns the calibrated
    profile's name (``calibrate.name``, default ``<base profile>_calibrated``)."""
    if not cfg.measurements:
        raise ConfigError("measurements is required: measurements=DIR (see asi-calibrate --help)")
    c = cfg.calibrate
    for key in SIGMAS:
        value = c[key]
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"calibrate.{key} must be a number > 0, got {value}")
    if c.name and not CALIBRATED_NAME.match(c.name):
        raise ConfigError(
            f"calibrate.name must be a letter followed by letters, digits or _, got {c.name!r}"
        )
    for key in ("conf_dir", "report_dir"):
        if c[key]:
            check_output_dir(c[key], f"calibrate.{key}")
    base = str(cfg.cpu.name)
    name = c.name or f"{base}_calibrated"
    if name == base:
        raise ConfigError(f"calibrate.name must differ from the base profile {base!r}")
    return name
