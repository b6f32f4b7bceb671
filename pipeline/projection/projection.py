"""Roadmap projections: stage by stage, how much slowdown remains and what dominates it.

A *scenario* is a workload, a CPU profile and the dimensions a sweep varies
(:data:`SCENARIO_KEYS`); its *projection* is one row per roadmap stage, in
roadmap order (``conf/roadmap``), with the slowdown and throughput-loss
quantiles, the exit source and the cost component that dominate, and the
verdict against the 1 % target and the 5 % threshold (:mod:`pipeline.projection.verdicts`).

The rows come from the results store's cube (:func:`pipeline.report.aggregate.aggregate`)
or, for ``asi-answer``, straight from the store by point id
(:func:`stored_stages`), falling back to evaluating the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from asi_slowdown.model.evaluate import CONFIDENCE, QUANTILES
from asi_slowdown.pipeline.configuration.profile import ModelProfile, model_profile
from asi_slowdown.pipeline.projection.verdicts import (
    BASELINE_COLUMNS,
    TARGET,
    THRESHOLD,
    annotate,
    beats_default_from,
    crossing,
)
from asi_slowdown.pipeline.store.identity import cost_profile, id_prefix, point_id
from asi_slowdown.pipeline.store.parts import QUARANTINE
from asi_slowdown.pipeline.store.readers import check_parts, lookup
from asi_slowdown.pipeline.store.schema import DIMENSIONS, METRIC_COLUMNS, SLOWDOWN_QUANTILES

SCENARIO_KEYS: tuple[str, ...] = ("workload", "cpu", *DIMENSIONS)
"""What identifies a scenario across the stages of the roadmap."""

CONFIDENCE_COLUMNS: tuple[str, ...] = tuple(CONFIDENCE)
"""Per point, the share of paired cost samples under the 1 % target and the 5 % threshold
(:data:`model.evaluate.CONFIDENCE`)."""

VS_DEFAULT_QUANTILES: tuple[str, ...] = tuple(
    f"{BASELINE_COLUMNS['kernel_default']}_{q}" for q in QUANTILES
)
"""The slowdown quantiles of ASI (keeping what it does not make redundant) against the
kernel's default mitigations (negative: ASI is faster), as the model names them."""

BEATS_DEFAULT = "p_beats_default"
"""The share of paired samples where ASI is faster than the kernel's default mitigations."""


# --------------------------------------------------------------------------- projections
def projections(
    cube: pd.DataFrame,
    stages: Sequence[str],
    baseline: str = "mitigations_off",
    *,
    consume: bool = False,
) -> pd.DataFrame:
    """The cube's rows of the roadmap's ``stages``, ordered, annotated.

    Parameters
    ----------
    cube : DataFrame
        One row per (workload, cpu, mitigations, cpus, file_size, ephmap_slots)
        with the store's metric columns (:attr:`pipeline.report.aggregate.Aggregates.cube`).
    stages : sequence of str
        The roadmap, in order.
    baseline : str
        ``baseline.name``: which slowdown the verdicts read
        (:data:`pipeline.projection.verdicts.BASELINE_COLUMNS`); the rows carry both.
    consume : bool
        The cube is the caller's to give away (the report keeps only its cells): each
        metric column is deleted from ``cube`` once the projection has its copy, so the
        two are never both whole in memory (at the nightly preset each is the size of
        the store's points). ``cube`` keeps its keys and ``points``.

    Returns
    -------
    DataFrame
        The rows, with ``stage`` and ``stage_index`` (position in the roadmap),
        sorted by scenario then stage, plus what :func:`pipeline.answer._annotate`
        adds: ``extra_ns_per_op`` [ns/op], ``dominant_cost`` and its share,
        ``dominant_exit_source`` and ``verdict``.
    """
    order = {stage: i for i, stage in enumerate(stages)}
    kept = np.flatnonzero(cube["mitigations"].isin(list(stages)).to_numpy())
    keys = cube[list(SCENARIO_KEYS)].take(kept)
    keys.insert(len(keys.columns), "stage_index", cube["mitigations"].take(kept).map(order))
    keys = keys.astype({"stage_index": np.int64}).reset_index(drop=True)
    # a cell is one (scenario, stage): the keys alone order the rows, taken once
    rows_at = kept[keys.sort_values([*SCENARIO_KEYS, "stage_index"]).index.to_numpy()]
    rows = _taken(cube, rows_at, consume)
    rows.insert(0, "stage", rows["mitigations"])
    rows.insert(1, "stage_index", rows["mitigations"].map(order).astype(np.int64))
    return annotate(rows, baseline)


def _taken(cube: pd.DataFrame, at: np.ndarray, consume: bool) -> pd.DataFrame:
    """``cube``'s rows at positions ``at``, index reset; its trailing float columns in one block.

    With ``consume`` each float column not among the cube's keys is deleted from ``cube``
    once copied (the cube's own blocks free one by one when it holds a block per column,
    as :func:`pipeline.report.aggregate.cube_of_tables` builds it).
    """
    names = list(cube.columns)
    floats = len(names)
    while floats and cube.dtypes.iloc[floats - 1] == np.float64:
        floats -= 1
    head, tail = names[:floats], names[floats:]
    front = cube[head].take(at).reset_index(drop=True)
    if not tail:
        return front
    block = np.empty((len(tail), len(at)), dtype=np.float64)
    for i, name in enumerate(tail):
        np.take(cube[name].to_numpy(), at, out=block[i])
        if consume and name not in CUBE_KEYS_AND_POINTS:
            del cube[name]
    back = pd.DataFrame(block.T, columns=tail, copy=False)
    return pd.concat([front, back], axis=1)


CUBE_KEYS_AND_POINTS: frozenset[str] = frozenset((*SCENARIO_KEYS, "mitigations", "points"))
"""What :func:`projections` leaves in a consumed cube."""


FINAL_METRICS: tuple[str, ...] = (
    *SLOWDOWN_QUANTILES,
    "throughput_loss_p50",
    *CONFIDENCE_COLUMNS,
    *VS_DEFAULT_QUANTILES,
    BEATS_DEFAULT,
)
"""What a scenario summary reports of its last stage (as ``final_<metric>``), and what the
nightly history records per stage: the slowdown against mitigations=off, the confidence,
and the slowdown against the kernel's default mitigations."""

SCENARIO_COLUMNS: tuple[str, ...] = (
    *SCENARIO_KEYS,
    "stages_present",
    "complete",
    "last_stage",
    *(f"final_{m}" for m in FINAL_METRICS),
    "final_dominant_cost",
    "final_verdict",
    "under_threshold_from",
    "target_from",
    "beats_default_from",
)
"""Columns of :func:`scenario_summary` (present even when there is no scenario)."""


def scenario_summary(projection: pd.DataFrame, stages: Sequence[str]) -> pd.DataFrame:
    """One row per scenario: its final-stage quantiles and where it crosses 5 % and 1 %.

    ``final_p_meets_target`` is the probability that the whole roadmap reaches the
    target; ``beats_default_from`` the stage from which ASI is faster than the kernel's
    default mitigations at the median and stays so (None: at no stage).

    ``complete`` is False when the store lacks some stage of the scenario (a
    partial sweep): its crossings are then taken over the stages present.
    """
    records = []
    for key, rows in projection.groupby(list(SCENARIO_KEYS), sort=True, observed=True):
        present = list(rows["stage"])
        last = rows.iloc[-1]
        records.append(
            {
                **dict(zip(SCENARIO_KEYS, key, strict=True)),
                "stages_present": len(present),
                "complete": len(present) == len(stages),
                "last_stage": last["stage"],
                **{f"final_{m}": last[m] for m in FINAL_METRICS},
                "final_dominant_cost": last["dominant_cost"],
                "final_verdict": last["verdict"],
                "under_threshold_from": crossing(rows["slowdown_p50"], present, THRESHOLD),
                "target_from": crossing(rows["slowdown_p50"], present, TARGET),
                "beats_default_from": beats_default_from(rows),
            }
        )
    return pd.DataFrame.from_records(records, columns=SCENARIO_COLUMNS)


# --------------------------------------------------------------------------- focus
def nearest(values: Sequence[float], wanted: float) -> float:
    """The value of ``values`` closest to ``wanted`` on a log scale (sizes and counts)."""
    values = np.asarray(sorted(set(values)), dtype=np.float64)
    if len(values) == 0:
        raise ValueError("no values to choose from")
    return float(values[np.argmin(np.abs(np.log(values) - np.log(max(wanted, 1e-12))))])


def focus_values(
    cube: pd.DataFrame, workload: str, cpu: str, wanted: Mapping[str, float]
) -> dict[str, float]:
    """For one workload and CPU profile, each dimension's stored value nearest ``wanted``."""
    rows = cube[(cube["workload"] == workload) & (cube["cpu"] == cpu)]
    chosen = {}
    for name in DIMENSIONS:
        if not len(rows):
            break
        chosen[name] = nearest(rows[name], wanted[name])
        rows = rows[rows[name] == chosen[name]]
    return chosen


def at(frame: pd.DataFrame, where: Mapping[str, object]) -> pd.DataFrame:
    """Rows of ``frame`` whose columns equal ``where``'s values."""
    mask = np.ones(len(frame), dtype=bool)
    for column, value in where.items():
        mask &= (frame[column] == value).to_numpy()
    return frame[mask]


# --------------------------------------------------------------------------- asi-answer
def stage_point_ids(
    cfg: DictConfig,
    points: Sequence[Mapping],
    stages: Sequence[str],
    model: ModelProfile | None = None,
) -> list[str]:
    """The store's ``point_id`` of each stage's point, as the sweep computes it.

    The requested config's labels, cost profile, seed and samples, relabelled per
    stage, and each stage's point parameters (:mod:`pipeline.store.identity`, which
    names the sweep's points too), so a sweep over the same configuration finds
    the same ids. ``model``: the config's :class:`ModelProfile`, if made already.
    """
    cpu = str(cfg.cpu.name)
    model = model_profile(cfg) if model is None else model
    costs = cost_profile(cpu, model.ghz, model.cost_specs, model.correlations)
    ids = []
    for stage, point in zip(stages, points, strict=True):
        prefix = id_prefix(
            workload=str(cfg.workload.name),
            cpu=cpu,
            mitigations=stage,
            cost_profile=costs,
            seed=int(cfg.seed),
            samples=int(cfg.samples),
        )
        ids.append(point_id(prefix, point))
    return ids


def point_text(cfg: DictConfig) -> str:
    """The settings that name a stage table's point, as asi-answer's header gives them."""
    return (
        f"workload={cfg.workload.name} cpu={cfg.cpu.name} cpus={cfg.cpus} "
        f"ephmap.slots={cfg.ephmap.slots} samples={cfg.samples} seed={cfg.seed}"
    )


def stored_stages(
    cfg: DictConfig,
    points: Sequence[Mapping],
    stages: Sequence[str],
    labels: Sequence[str] | None = None,
    model: ModelProfile | None = None,
) -> tuple[pd.DataFrame | None, str]:
    """The metrics of every point from the results store, or None; and a note on the source.

    Parameters
    ----------
    points, stages : sequences of equal length
        Each point and the roadmap stage (``mitigations`` preset) it belongs to.
    labels : sequence of str, optional
        What to call each point when the store lacks it (``"cpus=3"``: the note lists
        them, each once); default: its stage (the note counts the stages held).
    model : ModelProfile, optional
        The config's model inputs, if made already (they name the points).

    Returns
    -------
    table : DataFrame or None
        :data:`pipeline.store.schema.METRIC_COLUMNS`, one row per point in order
        (what :func:`model.evaluate.evaluate` returns for the points), or None
        unless the store holds every point.
    note : str
        Where the numbers come from, or why the store could not serve them; it
        also says when part files failed their check and were quarantined.
    """
    store = str(cfg.store.path)
    ids = stage_point_ids(cfg, points, stages, model)
    if not Path(store).exists():
        return None, f"the results store {store} does not exist: no sweep has written there"
    try:
        checked = check_parts(store)  # once: lookup() reads these; said here, since it drops some
        bad = checked[1]
        columns = [*METRIC_COLUMNS, "run_id", "created_at", "git_revision"]
        rows = lookup(store, ids, columns, checked)
    except (OSError, ValueError) as exc:  # an unreadable store is no answer, but no error either
        return None, f"the results store {store} could not be read: {exc}"
    quarantined = (
        f"; {len(bad)} part file(s) failed their check and were moved to "
        f"{Path(store) / QUARANTINE} (their points count as missing): "
        f"{', '.join(p.name for p in bad[:3])}"
        if bad
        else ""
    )
    found = rows.to_pandas().set_index("point_id")
    unit = "stages" if labels is None else "points"
    named = stages if labels is None else labels
    missing = [label for label, pid in zip(named, ids, strict=True) if pid not in found.index]
    if missing:
        held = len(ids) - len(missing)
        if labels is None:  # which stages, of which point, and what would store them
            which = "every one" if not held else ", ".join(dict.fromkeys(missing))
            lacks = (
                f" at {point_text(cfg)}; it lacks {which}: asi-sweep -m "
                "'mitigations=glob(*)' with the same overrides stores them"
            )
        else:
            lacks = f"; it lacks points at {', '.join(dict.fromkeys(missing))}"
        return (
            None,
            f"the results store {store} holds {held} of {len(ids)} {unit}{lacks}{quarantined}",
        )
    table = found.loc[ids, list(METRIC_COLUMNS)].reset_index(drop=True)
    runs = sorted(set(found["run_id"]))
    when = found["created_at"].max()
    note = (
        f"results store {store} ({len(ids)} {unit}, run {', '.join(runs)}, "
        f"stored {when:%Y-%m-%d %H:%M} UTC, git {str(found['git_revision'].iloc[0])[:12]})"
        f"{quarantined}"
    )
    return table, note
