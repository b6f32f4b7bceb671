"""The nightly history of roadmap projections, and night-to-night comparison.

Layout (``report.history``, default ``outputs/history``)::

    date=2026-01-31/part-<UTC time>-<id>-00000-<digest>.parquet   a recording of that night
    date=2026-01-31/.part-...parquet.<pid>@<host>.tmp              one being written
    date=2026-01-31/_quarantine/part-...parquet                    one that failed its check
    date=2026-01-31/_index.json                                    digests already verified

One folder per date (Hive-style, so ``pyarrow.dataset`` with
``partitioning="hive"`` reads it as is: names starting with ``.`` or ``_``
are skipped). Each night's folder is a folder of part files exactly like
the results store, written and checked by the same functions
(:mod:`pipeline.store.parts`, :mod:`pipeline.store.readers`): a recording is
committed with :func:`~pipeline.store.parts.commit_bytes` (temporary file,
fsync, atomic rename, digest of its bytes in its name); every read checks
each part against its digest and reads the rest
(:func:`~pipeline.store.readers.read_folder`), moving one that fails to that
night's ``_quarantine/``; temporaries of dead writers are removed on the way.
Parts recorded by earlier versions (``part-<UTC time>.parquet``, no digest in
the name) stay readable: like the store's digest-less parts they are checked
by their Parquet footer, and one that does not decode is quarantined too (a
flipped bit that still decodes cannot be seen in them).

A night recorded again (a second nightly run on the same date) replaces the
night's earlier recording: the new part is committed first, then the older
parts of that date are removed (:func:`record`), so a failed run never loses
the night. Histories written by earlier versions may hold several parts for
a date; readers use the latest (:func:`nights`). A night's rows are the report's focus projections: one row
per workload, CPU profile, focus dimensions and roadmap stage (:data:`KEYS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from asi_slowdown.model.units import format_size
from asi_slowdown.pipeline.projection.projection import (
    CONFIDENCE_COLUMNS,
    FINAL_METRICS,
    SCENARIO_KEYS,
    VS_DEFAULT_QUANTILES,
)
from asi_slowdown.pipeline.store.parts import (
    QUARANTINE,
    commit_bytes,
    content_digest,
    encode_part,
    new_run_id,
    part_files,
    part_name,
)
from asi_slowdown.pipeline.store.readers import read_folder
from asi_slowdown.pipeline.store.schema import DIMENSIONS

KEYS: tuple[str, ...] = (*SCENARIO_KEYS, "stage")
"""What identifies one projected value across nights."""

VALUES: tuple[str, ...] = (
    "stage_index",
    *FINAL_METRICS,
    "dominant_cost",
    "dominant_exit_source",
    "verdict",
)
"""What a night records per key (fractions; names as in the projection): the slowdown
against mitigations=off, the confidence (:data:`CONFIDENCE_COLUMNS`) and the slowdown
against the kernel's default mitigations (:data:`VS_DEFAULT_QUANTILES`)."""

VS_DEFAULT_P50 = next(c for c in VS_DEFAULT_QUANTILES if c.endswith("_p50"))
"""The median slowdown against the kernel's default mitigations."""

PROBABILITY_MOVE = 0.1
"""A probability of meeting the target or the threshold that moves by more than this
between two nights is flagged (``confidence moved``)."""

TRACKED: tuple[str, ...] = ("slowdown_p50", *CONFIDENCE_COLUMNS, VS_DEFAULT_P50)
"""What the night-to-night comparison follows: ``previous_<c>`` and ``delta_<c>`` each."""

NO_PREVIOUS = "no previous value"
"""The comparison's status of a row the previous night has no value for (same workload, CPU
profile, focus point and stage): the focus or the grid changed between the nights. Such a
row is not compared, so it is never counted as steady or moved."""

PLACE: tuple[str, ...] = tuple(k for k in KEYS if k not in DIMENSIONS)
"""What stays when the focus point changes: workload, CPU profile, stage."""

_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


class HistoryWriteError(OSError):
    """A night could not be recorded (disk full, permissions): one line, earlier nights intact."""


def record(history: Path | str, rows: pd.DataFrame, night: str, extra: dict | None = None) -> Path:
    """Append a night's projection rows (:data:`KEYS` + :data:`VALUES`) under ``date=<night>``.

    ``extra`` adds constant columns (coverage, git revision...). Returns the
    part written, committed like a results-store part (its name carries the
    digest of its bytes). On an ``OSError`` nothing is left behind and a
    one-line :class:`HistoryWriteError` is raised.
    """
    folder = Path(history) / f"date={night}"
    recorded_at = datetime.now(UTC)
    frame = rows[list(KEYS) + list(VALUES)].copy()
    for key, value in (extra or {}).items():
        frame[key] = value
    frame["recorded_at"] = pd.Timestamp(recorded_at)
    data = encode_part(pa.Table.from_pandas(frame, preserve_index=False))
    name = part_name(new_run_id(), 0, recorded_at, content_digest(data))
    try:
        committed = commit_bytes(folder, name, data)
    except OSError as exc:
        raise HistoryWriteError(
            f"cannot record the night {night} in the history {history}: {exc.strerror or exc} "
            "(earlier nights are intact; rerun the nightly report to record it)"
        ) from exc
    for older in part_files(folder):  # the night is tonight's recording alone
        if older != committed:
            try:
                older.unlink()
            except OSError:  # left in place: readers take the latest recording anyway
                pass
    return committed


def recordings(history: Path | str, night: str) -> list[datetime]:
    """When ``night`` was recorded already (UTC, from its parts' names), oldest first.

    A nightly run checks this before :func:`record`: a second run on the same
    date replaces the night and says so, instead of calling it the first night.
    """
    times = []
    for part in part_files(Path(history) / f"date={night}"):
        stamp = part.name[len("part-") :].split("-", 1)[0].removesuffix(".parquet")
        try:
            times.append(datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC))
        except ValueError:  # not a name this code writes: count it, time unknown
            times.append(datetime.fromtimestamp(part.stat().st_mtime, UTC))
    return sorted(times)


@dataclass(frozen=True)
class Unreadable:
    """A recording of a night that failed its check (or did not decode) and was left out."""

    night: str
    part: Path
    """Where it was found."""
    moved_to: Path | None
    """Where it is now, in that night's ``_quarantine/``; None if it was not moved by this read."""
    night_lost: bool
    """Whether the night has no readable recording left (the trend and comparison lack it)."""

    def warning(self) -> str:
        """One line for the report: which night, where the file is now, what the report does."""
        if self.moved_to is not None:
            where = f"moved to {self.moved_to}"
        elif self.part.exists():
            where = f"left in place at {self.part} (the folder could not be written)"
        else:
            where = f"already moved to {self.part.parent / QUARANTINE} by another reader"
        effect = (
            "the report is drawn without that night"
            if self.night_lost
            else "the night's other recording is used"
        )
        return (
            f"warning: the history's night {self.night} could not be read: {self.part.name} "
            f"failed its check (damaged) and was {where}; {effect}"
        )


def read(history: Path | str) -> tuple[pd.DataFrame, list[Unreadable]]:
    """Every recorded row that passes its check, with a ``date`` column, and what was left out.

    The rows are empty (with the recorded columns) if there is no history.
    Each night's folder is read by the store's functions
    (:func:`~pipeline.store.readers.read_folder`: checked like the results store);
    a part that fails, or that verifies but does not decode (a damaged part
    written without a digest), is quarantined and listed instead of read.
    """
    frames = []
    unreadable: list[Unreadable] = []
    root = Path(history)
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        found = _DATE_DIR.match(folder.name)
        if not found or not folder.is_dir():
            continue
        night = found.group(1)
        tables, moved = read_folder(folder)
        for table in tables:
            frame = table.to_pandas()
            frame.insert(0, "date", night)
            frames.append(frame)
        unreadable += [Unreadable(night, p, to, not tables) for p, to in moved.items()]
    if not frames:
        return pd.DataFrame(columns=["date", *KEYS, *VALUES, "recorded_at"]), unreadable
    return pd.concat(frames, ignore_index=True), unreadable


def nights(history: pd.DataFrame) -> pd.DataFrame:
    """One recording per night: the latest ``recorded_at`` of each date."""
    if history.empty:
        return history
    latest = history.groupby("date")["recorded_at"].transform("max")
    return history[history["recorded_at"] == latest].reset_index(drop=True)


def previous_night(history: pd.DataFrame, night: str) -> str | None:
    """The latest recorded date before ``night``, or None."""
    earlier = sorted(d for d in set(history["date"]) if d < night)
    return earlier[-1] if earlier else None


def focus_text(row) -> str:
    """A focus point in words (``4 CPUs, file 1G, 2 slots``); ``row`` has :data:`DIMENSIONS`."""
    return (
        f"{int(row['cpus'])} CPUs, file {format_size(int(row['file_size']))}, "
        f"{int(row['ephmap_slots'])} slots"
    )


def compare(
    tonight: pd.DataFrame,
    before: pd.DataFrame,
    threshold: float,
    probability: float = PROBABILITY_MOVE,
) -> pd.DataFrame:
    """Tonight's projections next to a previous night's, with what moved.

    Parameters
    ----------
    tonight, before : DataFrame
        Rows with :data:`KEYS` and :data:`VALUES` (a night recorded before the
        confidence columns existed lacks them: they are compared as unknown).
    threshold : float
        A projection is flagged when its slowdown p50 (against mitigations=off, or
        against the kernel's default) moved by more than this (absolute, a fraction:
        0.005 is half a percentage point), or its verdict changed.
    probability : float
        ... or when P(meets target) or P(under threshold) moved by more than this.

    Returns
    -------
    DataFrame
        Tonight's rows plus, for each of :data:`TRACKED`, ``previous_<c>`` and
        ``delta_<c>`` (tonight minus before; ``previous_p50`` and ``delta_p50`` for
        the slowdown p50), ``previous_verdict``, ``moved`` and ``status``:
        :data:`NO_PREVIOUS` (``before`` has no row with the same :data:`KEYS`: not
        compared, never ``moved``), ``verdict changed``, ``moved`` (the p50),
        ``confidence moved``, ``vs default moved`` or ``steady``. For a row with no
        previous value whose workload, CPU profile and stage ``before`` holds at
        another focus point, ``focus_before`` says which (:func:`focus_text`) and
        ``focus_before_p50`` / ``focus_before_verdict`` what it was there (for
        reading, not compared: a different point); empty on the other rows.
    """
    keys = list(KEYS)
    names = {c: "previous_p50" if c == "slowdown_p50" else f"previous_{c}" for c in TRACKED}
    previous = before.reindex(columns=[*keys, *TRACKED, "verdict"]).rename(
        columns={**names, "verdict": "previous_verdict"}
    )
    merged = tonight.merge(previous, on=keys, how="left")
    deltas = {}
    for column, was in names.items():
        delta = "delta_p50" if column == "slowdown_p50" else f"delta_{column}"
        now = pd.to_numeric(merged[column], errors="coerce") if column in merged else np.nan
        merged[delta] = now - pd.to_numeric(merged[was], errors="coerce")
        deltas[column] = np.abs(merged[delta].to_numpy(dtype=np.float64))
    new = merged["previous_p50"].isna().to_numpy()
    with np.errstate(invalid="ignore"):  # NaN deltas (a column unknown then) never flag
        moved = (deltas["slowdown_p50"] > threshold) & ~new
        confidence = np.zeros(len(merged), dtype=bool)
        for column in CONFIDENCE_COLUMNS:
            confidence |= deltas[column] > probability
        confidence &= ~new
        versus = (deltas[VS_DEFAULT_P50] > threshold) & ~new
    changed = (merged["verdict"] != merged["previous_verdict"]).to_numpy() & ~new
    merged["moved"] = moved | changed | confidence | versus
    merged["status"] = np.select(
        [new, changed, moved, confidence, versus],
        [NO_PREVIOUS, "verdict changed", "moved", "confidence moved", "vs default moved"],
        default="steady",
    )
    elsewhere = before.reindex(columns=[*PLACE, *DIMENSIONS, "slowdown_p50", "verdict"])
    elsewhere = elsewhere.dropna(subset=list(DIMENSIONS)).drop_duplicates(list(PLACE))
    elsewhere = pd.DataFrame(
        {
            **{k: elsewhere[k] for k in PLACE},
            "focus_before": [focus_text(r) for _, r in elsewhere.iterrows()],
            "focus_before_p50": elsewhere["slowdown_p50"],
            "focus_before_verdict": elsewhere["verdict"],
        },
        index=elsewhere.index,
    )
    merged = merged.merge(elsewhere, on=list(PLACE), how="left")
    merged.loc[~new, ["focus_before", "focus_before_p50", "focus_before_verdict"]] = np.nan
    return merged


def outcome(compared: pd.DataFrame, threshold: float, probability: float = PROBABILITY_MOVE) -> str:
    """The comparison in one sentence: how many of the compared rows moved, how many had none.

    Rows with no previous value (:data:`NO_PREVIOUS`) are counted apart, never
    as "nothing moved"; if no row had one, nothing was compared and it says so.
    """
    unmatched = int((compared["status"] == NO_PREVIOUS).sum())
    matched = len(compared) - unmatched
    if matched == 0:
        return (
            f"none of tonight's {len(compared)} projection(s) has a previous value (the focus "
            "point or the grid changed between the nights)"
        )
    text = (
        f"{int(compared['moved'].sum())} of {matched} projection(s) moved by more than "
        f"{100 * threshold:g} points, changed verdict or moved P(<1 %) / P(<5 %) by more "
        f"than {probability:g}"
    )
    if unmatched:
        text += f"; {unmatched} with {NO_PREVIOUS} (the focus point or the grid changed)"
    return text
