"""What a report covers: the experiment's grid (or the whole store's presets), its coverage.

The grid is re-expanded exactly as ``asi-sweep`` expands it; what-if points (swept
costs and flags) are kept out of the roadmap (:class:`KeptOut`); :func:`grid_scope`
turns the grid into the filters pushed down to the store (:class:`~pipeline.store.frame.Scope`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from omegaconf import DictConfig

from asi_slowdown.pipeline.configuration.compose import Composer
from asi_slowdown.pipeline.configuration.compose import composer as default_composer
from asi_slowdown.pipeline.configuration.profile import PARAM_LABELS
from asi_slowdown.pipeline.configuration.sweeps import MODEL_ROOTS, sweeper_params
from asi_slowdown.pipeline.store import readers as results_store
from asi_slowdown.pipeline.store.frame import Scope
from asi_slowdown.pipeline.store.readers import Checked
from asi_slowdown.pipeline.store.schema import CUBE_KEYS, DIMENSIONS, LABEL_COLUMNS
from asi_slowdown.pipeline.sweep.grid import MODEL_GROUPS, Grid, build_grid


# --------------------------------------------------------------------------- the grid
def model_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides that choose model inputs (what ``asi-sweep`` would sweep or fix)."""
    keep = []
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        root = key.split(".", 1)[0]
        if root in MODEL_ROOTS or key in MODEL_GROUPS or root == "experiment":
            keep.append(override)
    return keep


def experiment_grid(
    experiment: str, overrides: Sequence[str] = (), composer: Composer | None = None
) -> Grid:
    """The grid ``asi-sweep experiment=<experiment> <overrides>`` expands (no point is run)."""
    composer = composer or default_composer()
    wanted = [f"experiment={experiment}", *overrides]
    cfg = composer.load(wanted, multirun=True)
    params = sweeper_params(cfg.hydra.sweeper.get("params"))
    return build_grid([*params, *wanted], composer)


def grid_scope(grid: Grid) -> Scope:
    """Filters pushed down to the store for a grid's points, and the grid's id set."""
    profiles = grid.profiles
    seeds, samples = {p.seed for p in profiles}, {p.samples for p in profiles}
    return Scope(
        workloads=tuple(sorted({p.workload for p in profiles})),
        cpu_profiles=tuple(sorted({p.cpu for p in profiles})),
        stages=tuple(sorted({p.mitigations for p in profiles})),
        seed=seeds.pop() if len(seeds) == 1 else None,
        samples=samples.pop() if len(samples) == 1 else None,
        point_ids=grid.points.column("point_id").combine_chunks(),
    )


def grid_counts(grid: Grid) -> pd.DataFrame:
    """Points of the grid per (workload, cpu, mitigations)."""
    labels = pd.DataFrame(
        [(p.workload, p.cpu, p.mitigations) for p in grid.profiles],
        columns=list(LABEL_COLUMNS),
    )
    per_profile = np.bincount(
        grid.points.column("profile").to_numpy(), minlength=len(grid.profiles)
    )
    labels["grid_points"] = per_profile
    return labels.groupby(list(LABEL_COLUMNS), as_index=False)["grid_points"].sum()


def coverage(counts: pd.DataFrame | None, summary: pd.DataFrame) -> pd.DataFrame:
    """Stored vs grid points per (workload, cpu, mitigations); grid columns NaN without a grid."""
    stored = summary[[*LABEL_COLUMNS, "points"]].rename(columns={"points": "stored_points"})
    if counts is None:
        table = stored.assign(grid_points=np.nan)
    else:
        table = counts.merge(stored, on=list(LABEL_COLUMNS), how="left")
        table["stored_points"] = table["stored_points"].fillna(0).astype(np.int64)
    table["coverage"] = table["stored_points"] / table["grid_points"]
    return table


def missing_cells(grid: Grid, cube: pd.DataFrame, limit: int = 10) -> tuple[int, pd.DataFrame]:
    """How many grid points the store lacks, and up to ``limit`` examples (labels and dimensions)."""
    points = grid.points
    labels = pd.DataFrame(
        [(p.workload, p.cpu, p.mitigations) for p in grid.profiles],
        columns=list(LABEL_COLUMNS),
    ).iloc[points.column("profile").to_numpy()]
    frame = labels.reset_index(drop=True)
    for name in DIMENSIONS:
        if name in points.column_names:
            frame[name] = points.column(name).to_numpy()
        else:
            frame[name] = [
                grid.profiles[i].base_point[name] for i in points.column("profile").to_numpy()
            ]
    keys = list(CUBE_KEYS)
    frame = frame.astype({"cpus": np.int64, "file_size": np.int64, "ephmap_slots": np.int64})
    present = cube[keys].assign(_present=True)
    merged = frame.merge(present, on=keys, how="left")
    lacking = merged[merged["_present"].isna()].drop(columns="_present")
    return len(lacking), lacking.head(limit).reset_index(drop=True)


# --------------------------------------------------------------------------- presets and what-ifs
@dataclass(frozen=True)
class KeptOut:
    """Points left out of the roadmap because they are what-ifs, not the presets' own points.

    A point is its presets' own when everything but :data:`DIMENSIONS` (cost
    distributions, flags, workload inputs, model version) is what its workload,
    CPU profile and stage compose to with the report's model overrides. Any other
    point (``asi-sweep cpu.costs.ibpb.high=5000,20000 mitigations.cr3_noflush=true,false``)
    would otherwise be averaged into the presets' roadmap cell.
    """

    points: int = 0
    stored: bool = True
    """True: counted among the stored points (whole store); False: among the grid's points."""
    swept: tuple[str, ...] = ()
    """The swept values that set some of them apart (``cpu.costs.ibpb.high=20000``, ``cr3_noflush``)."""

    def text(self) -> str | None:
        """One sentence for the page, the Markdown and the console; None when nothing was left out."""
        if not self.points:
            return None
        which = "stored" if self.stored else "grid"
        swept = f" (swept: {', '.join(self.swept)})" if self.swept else ""
        example = next((v for v in self.swept if "=" in v), None)
        return (
            f"{self.points:,} {which} point(s) kept out of the roadmap: they differ from what "
            f"their workload, CPU profile and stage presets compose to (a cost, a flag, another "
            f"input or the model version){swept}. To report such a what-if, give asi-report the "
            f"same overrides" + (f" ({example})." if example else ".")
        )


SHOWN_SWEPT = 4
"""How many distinct swept values :class:`KeptOut` names."""


def preset_points(grid: Grid) -> tuple[Grid, KeptOut]:
    """The grid without its what-if points (:class:`KeptOut`), and how many there were.

    A grid's what-ifs are the points of a profile made by a swept non-point value
    (``profile_overrides``, e.g. ``cpu.costs.ibpb.high=20000``) and the points whose
    swept parameter outside :data:`DIMENSIONS` (``mitigations.cr3_noflush=true,false``)
    differs from the stage's own value.
    """
    profile = grid.points.column("profile").to_numpy()
    keep = np.array([not p.profile_overrides for p in grid.profiles], dtype=bool)[profile]
    swept = [p.profile_overrides for p in grid.profiles if p.profile_overrides]
    for name in grid.swept:
        if name in DIMENSIONS:
            continue
        own = np.array([float(p.base_point[name]) for p in grid.profiles])[profile]
        values = grid.points.column(name).to_numpy().astype(np.float64)
        same = np.isclose(values, own, rtol=1e-12, atol=0.0)
        if not same.all():
            swept.append(PARAM_LABELS[name])
        keep &= same
    if keep.all():
        return grid, KeptOut(stored=False)
    points = grid.points.filter(pa.array(keep))
    shown = tuple(dict.fromkeys(swept))[:SHOWN_SWEPT]
    return replace(grid, points=points), KeptOut(int((~keep).sum()), False, shown)


def store_presets(
    cfg: DictConfig, overrides: Sequence[str], composer: Composer, checked: Checked | None = None
) -> tuple[Grid | None, KeptOut]:
    """The whole store's presets grid, and the stored points it leaves out (:class:`KeptOut`).

    The grid is every stored workload, CPU profile and stage (those the configuration
    still has) at every stored value of :data:`DIMENSIONS`, composed as ``asi-sweep``
    would with the report's model overrides, seed and samples; restricting the
    aggregation to its ids keeps each roadmap cell to the presets' own points.
    None when the store holds nothing at this seed and samples that the configuration
    can compose. ``checked``: the store's parts as the report checked them (not again).
    """
    where = Scope(seed=int(cfg.seed), samples=int(cfg.samples)).expression()
    columns = ["point_id", *LABEL_COLUMNS, *DIMENSIONS, "profile_overrides"]
    stored = results_store.read(cfg.store.path, columns, where, checked)
    if stored.num_rows == 0:
        return None, KeptOut()
    wanted = [o for o in model_overrides(overrides) if _override_key(o) != "experiment"]
    for group in MODEL_GROUPS:  # the store's label columns are the model's groups
        known = set(composer.group_options(group))
        values = sorted(v for v in pc.unique(stored.column(group)).to_pylist() if v in known)
        if not values:  # nothing the configuration can compose any more
            return None, kept_out_of(stored, pa.array([], pa.string()))
        wanted.append(f"{group}={','.join(values)}")
    for name in DIMENSIONS:
        values = sorted(int(v) for v in pc.unique(stored.column(name)).to_pylist())
        wanted.append(f"{PARAM_LABELS[name]}={','.join(map(str, values))}")
    wanted += [f"seed={int(cfg.seed)}", f"samples={int(cfg.samples)}"]
    presets = experiment_grid_from(wanted, composer)
    return presets, kept_out_of(stored, presets.points.column("point_id"))


def kept_out_of(stored: pa.Table, ids: pa.Array | pa.ChunkedArray) -> KeptOut:
    """:class:`KeptOut` of the stored rows whose ``point_id`` is not among ``ids``."""
    out = stored.filter(pc.invert(pc.is_in(stored.column("point_id"), value_set=ids)))
    swept = sorted(v for v in pc.unique(out.column("profile_overrides")).to_pylist() if v)
    return KeptOut(out.num_rows, True, tuple(swept[:SHOWN_SWEPT]))


def experiment_grid_from(overrides: Sequence[str], composer: Composer | None = None) -> Grid:
    """A grid from explicit sweep overrides (no experiment preset)."""
    return build_grid(list(overrides), composer or default_composer())


# --------------------------------------------------------------------------- what it would take
def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def coverage_hint(
    cover: pd.DataFrame, stages: Sequence[str], grid_points: int | None
) -> str | None:
    """What to do when the store covers little of the grid; None when it covers it all.

    ``asi-sweep -m cpus=1,2`` sweeps only the configured stage, so ``asi-report`` over
    the default experiment finds 7 of 8 stages missing and a fraction of a percent of
    the grid: say which stages lack every point, how to sweep them, and how to report
    only what is stored.
    """
    if not grid_points:
        return None
    stored = int(cover["stored_points"].sum())
    if stored >= grid_points:
        return None
    have = set(cover.loc[cover["stored_points"] > 0, "mitigations"])
    lacking = [s for s in stages if s not in have]
    share = stored / grid_points
    text = f"the store holds {stored:,} of the grid's {grid_points:,} points ({100 * share:.1f} %)"
    if lacking:
        text += (
            f" and no point of {len(lacking)} of the {len(stages)} roadmap stages "
            f"({', '.join(lacking)})"
        )
    todo = []
    if lacking:
        todo.append(
            "to sweep every stage, add 'mitigations=glob(*)' to asi-sweep's overrides "
            "(asi-sweep -m 'mitigations=glob(*)' ..., or asi-sweep experiment=<the experiment>)"
        )
    if share < 0.5:
        todo.append("to report only what is stored, run asi-report report.whole_store=true")
    if not todo:
        return None
    return f"hint: {text}; {'; '.join(todo)}."
