"""The nightly history of roadmap projections, and night-to-night comparison.

Layout (``report.history``, default ``outputs/history``)::

    date=2026-01-31/part-<UTC time>.parquet     the projections recorded that night

One folder per date (Hive-style, so ``pyarrow.dataset`` with
``partitioning="hive"`` reads it as is); a part is written under a temporary
name and renamed, like the results store's. A night recorded twice keeps
both parts; readers use the latest (:func:`nights`).

A night's rows are the report's focus projections: one row per workload, CPU
profile, focus dimensions and roadmap stage (:data:`KEYS`).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.configuration.errors import ConfigError
from pipeline.projection.projection import (
    CONFIDENCE_COLUMNS,
    FINAL_METRICS,
    SCENARIO_KEYS,
    VS_DEFAULT_QUANTILES,
)

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

_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def parse_date(text: str | None) -> str:
    """``report.date`` as ``YYYY-MM-DD``; None is today (UTC)."""
    if text is None:
        return datetime.now(UTC).date().isoformat()
    try:
        return date.fromisoformat(str(text)).isoformat()
    except ValueError:
        raise ConfigError(f"report.date must be a date YYYY-MM-DD or null, got {text!r}") from None


def record(history: Path | str, rows: pd.DataFrame, night: str, extra: dict | None = None) -> Path:
    """Append a night's projection rows (:data:`KEYS` + :data:`VALUES`) under ``date=<night>``.

    ``extra`` adds constant columns (coverage, git revision...). Returns the part written.
    """
    folder = Path(history) / f"date={night}"
    folder.mkdir(parents=True, exist_ok=True)
    recorded_at = datetime.now(UTC)
    frame = rows[list(KEYS) + list(VALUES)].copy()
    for key, value in (extra or {}).items():
        frame[key] = value
    frame["recorded_at"] = pd.Timestamp(recorded_at)
    final = folder / f"part-{recorded_at:%Y%m%dT%H%M%S%fZ}.parquet"
    tmp = folder / f".{final.name}.tmp"
    try:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def read(history: Path | str) -> pd.DataFrame:
    """Every recorded row, with a ``date`` column (``YYYY-MM-DD``); empty if no history."""
    frames = []
    root = Path(history)
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        found = _DATE_DIR.match(folder.name)
        if not found or not folder.is_dir():
            continue
        for part in sorted(folder.glob("part-*.parquet")):
            frame = pq.read_table(part).to_pandas()
            frame.insert(0, "date", found.group(1))
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["date", *KEYS, *VALUES, "recorded_at"])
    return pd.concat(frames, ignore_index=True)


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
        the slowdown p50), ``previous_verdict``, ``moved`` and ``status``: ``new``
        (no previous value), ``verdict changed``, ``moved`` (the p50),
        ``confidence moved``, ``vs default moved`` or ``steady``.
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
        ["new", "verdict changed", "moved", "confidence moved", "vs default moved"],
        default="steady",
    )
    return merged


def check_threshold(value: object) -> float:
    """``report.move_threshold`` validated (a fraction >= 0)."""
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not np.isfinite(threshold) or threshold < 0:
        raise ConfigError(f"report.move_threshold must be a number >= 0, got {value!r}")
    return threshold
