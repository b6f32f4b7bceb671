"""The report's settings: ``report`` and ``dask`` validated into :class:`Settings`, the folder.

Checked before any grid is expanded or any part file read, so bad input is one line.
"""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from omegaconf import DictConfig

from model.units import parse_size
from pipeline.configuration.compose import Composer
from pipeline.configuration.compose import composer as default_composer
from pipeline.configuration.errors import ConfigError
from pipeline.projection import history as hist
from pipeline.report.aggregate import (
    check_scheduler,
)

MODES = ("adhoc", "nightly")

REPORTS = Path("outputs/reports")
"""Where a report goes when ``report.dir`` is null: a folder per run (:func:`report_folder`)."""

Out = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """The report's validated settings."""

    mode: str
    experiment: str | None  # None: the whole store
    folder: Path
    night: str
    threshold: float
    focus_file_size: int | None
    history: Path
    fresh: bool = False
    """True when the report named its own folder: :func:`claim_folder` then refuses an existing one."""


def report_folder(now: datetime) -> Path:
    """A new folder under :data:`REPORTS`: the UTC time to the microsecond and six random hex digits.

    Two reports started in the same second (or microsecond) never share a folder; the
    name still sorts by time, as Hydra's ``${now:...}`` sweep folders do.
    """
    return REPORTS / f"{now:%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(3)}"


def claim_folder(s: Settings) -> None:
    """Create the report's folder; a folder the report named itself must not exist yet.

    ``report.dir`` given: an existing folder is written into (the caller chose it).
    """
    try:
        s.folder.mkdir(parents=True, exist_ok=not s.fresh)
    except FileExistsError:
        raise ConfigError(
            f"report.dir: {str(s.folder)!r} already exists (another report took it); run again"
        ) from None


def settings(
    cfg: DictConfig, now: datetime | None = None, composer: Composer | None = None
) -> Settings:
    """Validate the ``report`` and ``dask`` sections; one-line :class:`ConfigError` otherwise."""
    r = cfg.report
    if r.mode not in MODES:
        raise ConfigError(f"report.mode must be one of {', '.join(MODES)}, got {r.mode!r}")
    check_scheduler(cfg.dask.scheduler)
    if cfg.dask.num_workers is not None and cfg.dask.num_workers < 1:
        raise ConfigError(
            f"dask.num_workers must be an integer >= 1 or null, got {cfg.dask.num_workers}"
        )
    experiment = None
    if not r.get("whole_store", False):
        experiment = r.experiment or ("nightly" if r.mode == "nightly" else "default")
        options = (composer or default_composer()).group_options("experiment")
        if experiment not in options:
            raise ConfigError(
                f"report.experiment: unknown experiment {experiment!r}; allowed: {', '.join(options)}"
            )
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
    return Settings(
        mode=r.mode,
        experiment=experiment,
        folder=folder,
        night=hist.parse_date(r.date),
        threshold=hist.check_threshold(r.move_threshold),
        focus_file_size=size,
        history=Path(r.history),
        fresh=not r.dir,
    )


def check_folder_path(folder: Path, field: str) -> None:
    """A folder the report will write into: a directory or not there yet, never under a file.

    Checked with the settings, so a bad path is one line before any aggregation.
    """
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{field} must be a directory, got the file {str(folder)!r}")
    above = next((p for p in folder.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ConfigError(f"{field}: {str(folder)!r} is under the file {str(above)!r}")


def report_options() -> str:
    """``asi-report --help``'s list of every ``report.*`` option: its default and what it does.

    Read from the packaged ``conf/report/default.yaml`` (key, value, comment), so the
    list is the config's own and cannot drift from it.
    """
    from pipeline.configuration.compose import CONF_DIR

    entries: list[list[str]] = []
    parents: list[tuple[int, str]] = []
    for line in (CONF_DIR / "report" / "default.yaml").read_text().splitlines():
        found = re.match(r"^(\s*)([A-Za-z_]+):\s*([^#]*?)\s*(?:#\s?(.*))?$", line)
        if found is None:
            comment = re.match(r"^\s+#\s?(.*)$", line)
            if comment and entries:  # a comment continued on the next line
                entries[-1][2] += " " + comment.group(1).strip()
            continue
        indent, key, value, comment = found.groups()
        parents = [(i, k) for i, k in parents if i < len(indent)]
        name = ".".join(["report", *(k for _, k in parents), key])
        if not value:  # a section (focus:): its keys follow, one level deeper
            parents.append((len(indent), key))
            entries.append([name + ".*", "", (comment or "").strip()])
            continue
        entries.append([f"{name}={value}", "", (comment or "").strip()])
    width = max(len(e[0]) for e in entries)
    lines = ["Options (report.*; defaults from conf/report/default.yaml):"]
    lines += [f"  {e[0]:<{width}}  {e[2]}".rstrip() for e in entries]
    return "\n".join(lines)
