"""Collect a report into typed tables (:class:`Report`), then render HTML, Markdown and CSV.

:func:`collect` composes, re-expands the experiment's grid, aggregates the
store (:mod:`pipeline.report.aggregate`) and projects it
(:mod:`pipeline.projection`); :func:`render` writes the folder. ``asi-report``
(:mod:`pipeline.cli.report`) is :func:`build` plus a line saying where.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from omegaconf import DictConfig

from model import MODEL_VERSION
from model.evaluate import QUANTILES
from model.units import format_size, parse_size
from pipeline.configuration.compose import PARAM_LABELS, Composer
from pipeline.configuration.compose import composer as default_composer
from pipeline.configuration.errors import ConfigError
from pipeline.projection import history as hist
from pipeline.projection.answer import budget_needs, budgets, conditional_on
from pipeline.projection.projection import (
    VS_DEFAULT_QUANTILES,
    at,
    focus_values,
    projections,
    scenario_summary,
)
from pipeline.projection.sensitivity import noise_level, point_sensitivity
from pipeline.projection.verdicts import (
    TARGET,
    THRESHOLD,
    beats_default_from,
    crossing,
    crossing_text,
)
from pipeline.report import figures as figs
from pipeline.report.aggregate import (
    Aggregates,
    Scope,
    aggregate,
    check_scheduler,
    progress,
    scheduler,
)
from pipeline.store import readers as results_store
from pipeline.store.parts import git_revision
from pipeline.store.schema import CUBE_KEYS, DIMENSIONS, LABEL_COLUMNS
from pipeline.sweep.grid import MODEL_GROUPS, MODEL_ROOTS, Grid, Profile, build_grid, make_profile

MODES = ("adhoc", "nightly")
TEMPLATE = "report.html.j2"
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
    from pipeline.sweep.run import sweeper_params

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
    cfg: DictConfig, overrides: Sequence[str], composer: Composer
) -> tuple[Grid | None, KeptOut]:
    """The whole store's presets grid, and the stored points it leaves out (:class:`KeptOut`).

    The grid is every stored workload, CPU profile and stage (those the configuration
    still has) at every stored value of :data:`DIMENSIONS`, composed as ``asi-sweep``
    would with the report's model overrides, seed and samples; restricting the
    aggregation to its ids keeps each roadmap cell to the presets' own points.
    None when the store holds nothing at this seed and samples that the configuration
    can compose.
    """
    where = Scope(seed=int(cfg.seed), samples=int(cfg.samples)).expression()
    columns = ["point_id", *LABEL_COLUMNS, *DIMENSIONS, "profile_overrides"]
    stored = results_store.read(cfg.store.path, columns, where)
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


# --------------------------------------------------------------------------- focus and sensitivity
def focus_wanted(
    cfg: DictConfig, workload: str, grid: Grid | None, size: int | None, composer: Composer
) -> dict:
    """The dimensions a workload's projection table is shown at, before snapping to stored values."""
    if size is None:
        base = next(
            (p.base_point for p in (grid.profiles if grid else []) if p.workload == workload), None
        )
        if base is None:
            base = make_profile(composer.compose([f"workload={workload}"])).base_point
        size = int(base["file_size"])
    return {
        "cpus": cfg.report.focus.cpus or cfg.cpus,
        "file_size": size,
        "ephmap_slots": cfg.report.focus.ephmap_slots or cfg.ephmap.slots,
    }


@dataclass(frozen=True)
class Replaced:
    """A focus value the store lacks for a workload and CPU profile, and the stored one shown."""

    workload: str
    cpu: str
    name: str
    """The dimension (:data:`DIMENSIONS`, as ``report.focus.<name>`` names it)."""
    wanted: float
    shown: float

    def values(self) -> str:
        """``file_size 2M -> 64M``: sizes as fio writes them, counts as integers."""
        show = format_size if self.name == "file_size" else str
        return f"{self.name} {show(int(self.wanted))} → {show(int(self.shown))}"


def replaced_text(replaced: Sequence[Replaced]) -> str | None:
    """One sentence naming every replaced focus value; None when each focus value was stored."""
    if not replaced:
        return None
    by_row: dict[tuple[str, str], list[str]] = {}
    for r in replaced:
        by_row.setdefault((r.workload, r.cpu), []).append(r.values())
    parts = "; ".join(f"{w} on {c}: {', '.join(v)}" for (w, c), v in by_row.items())
    return (
        f"Focus values not in the store, shown at the nearest stored value instead: {parts} "
        f"(sweep the wanted value, or set report.focus, to see it)."
    )


def focus_table(
    projection: pd.DataFrame,
    cube: pd.DataFrame,
    cfg: DictConfig,
    grid: Grid | None,
    size: int | None,
    composer: Composer,
) -> tuple[pd.DataFrame, list[Replaced]]:
    """Every stage of each (workload, cpu) at its focus dimensions (nearest stored values).

    Also returns each wanted focus value (:func:`focus_wanted`) the store lacks and
    the nearest stored value (:func:`pipeline.projection.projection.focus_values`) shown in its place.
    """
    parts, replaced = [], []
    for (workload, cpu), _ in cube.groupby(["workload", "cpu"], sort=True):
        wanted = focus_wanted(cfg, workload, grid, size, composer)
        chosen = focus_values(cube, workload, cpu, wanted)
        replaced += [
            Replaced(workload, cpu, name, float(wanted[name]), float(value))
            for name, value in chosen.items()
            if value != wanted[name]
        ]
        parts.append(at(projection, {"workload": workload, "cpu": cpu, **chosen}))
    table = pd.concat(parts, ignore_index=True) if parts else projection.head(0)
    return table, replaced


def stage_profile(
    grid: Grid | None, workload: str, cpu: str, stage: str, cfg: DictConfig, composer: Composer
) -> Profile:
    """The profile (cost draws, base point) of one workload, CPU profile and stage."""
    for profile in grid.profiles if grid else []:
        if (profile.workload, profile.cpu, profile.mitigations, profile.profile_overrides) == (
            workload,
            cpu,
            stage,
            "",
        ):
            return profile
    overrides = [f"workload={workload}", f"cpu={cpu}", f"mitigations={stage}"]
    return make_profile(
        composer.compose([*overrides, f"seed={cfg.seed}", f"samples={cfg.samples}"])
    )


def sensitivities(
    focus: pd.DataFrame, stage: str, grid: Grid | None, cfg: DictConfig, composer: Composer
) -> pd.DataFrame:
    """:func:`pipeline.projection.sensitivity.point_sensitivity` of each focus point at ``stage``."""
    tables = []
    for _, row in focus[focus["stage"] == stage].iterrows():
        profile = stage_profile(grid, row["workload"], row["cpu"], stage, cfg, composer)
        point = {**profile.base_point, **{k: row[k] for k in DIMENSIONS}}
        table, stats = point_sensitivity(
            point, profile.costs(), row["slowdown_p50"], profile.correlations
        )
        tables.append(
            table.assign(
                workload=row["workload"],
                cpu=row["cpu"],
                median=stats["p50"],
                stored_p50=stats["stored_p50"],
                matches=stats["matches"],
                samples=int(stats["samples"]),
            )
        )
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


# --------------------------------------------------------------------------- what it would take
def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _hydra_value(value: object) -> str:
    if value is None:
        return "null"
    return repr(value) if isinstance(value, float) else str(value)


def stored_cost_overrides(composed: Profile, stored: Profile) -> list[str]:
    """Overrides that turn the composed profile's cost distributions into the stored ones.

    A grid may fix a cost (``cpu.costs.ephmap_pte.high=500``) that the report's own
    composition does not carry; the budget must solve the costs the store was swept with.
    """
    extra = [f"cpu.ghz={stored.ghz!r}"] if composed.ghz != stored.ghz else []
    for name, spec in stored.cost_specs.items():
        mine = composed.cost_specs.get(name)
        for key, value in asdict(spec).items():
            if mine is None or getattr(mine, key) != value:
                extra.append(f"cpu.costs.{name}.{key}={_hydra_value(value)}")
    return extra


def cpu_config(
    cpu: str, stored: Profile, cfg: DictConfig, overrides: Sequence[str], composer: Composer
) -> tuple[DictConfig, bool]:
    """A composed configuration whose CPU profile draws the costs ``stored`` was swept with.

    The report's own model overrides, ``cpu``, seed and samples; when the store's
    profile has other cost distributions (a grid that fixed a cost), the overrides
    that restore them (:func:`stored_cost_overrides`). Returns the config and
    whether its cost profile is the stored one.
    """
    mine = [f"cpu={cpu}", f"seed={stored.seed}", f"samples={stored.samples}"]
    taken = {_override_key(o) for o in mine} | {"experiment"}
    wanted = [o for o in model_overrides(overrides) if _override_key(o) not in taken] + mine
    composed = composer.compose(wanted)
    profile = make_profile(composed)
    if profile.cost_profile == stored.cost_profile:
        return composed, True
    extra = stored_cost_overrides(profile, stored)
    again = {_override_key(e) for e in extra}
    composed = composer.compose([*(o for o in wanted if _override_key(o) not in again), *extra])
    return composed, make_profile(composed).cost_profile == stored.cost_profile


BUDGET_COLUMNS = (
    "workload",
    "cpu",
    "stage",
    "slowdown_p50",
    "p_meets_target",
    "cost",
    "adds_ns_per_op",
    "median_ns",
    "lowest_ns",
    "p50_factor",
    "confident_factor",
    "matches",
)
"""The budget table: per focus point and cost (or the top pair, ``a+b``), what
:func:`pipeline.projection.answer.budgets` finds, and whether the costs solved are the stored ones."""


def focus_budgets(
    focus: pd.DataFrame,
    stage: str,
    grid: Grid | None,
    cfg: DictConfig,
    overrides: Sequence[str],
    composer: Composer,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """What each cost would need at ``stage`` for every focus (workload, CPU profile).

    :func:`pipeline.projection.answer.budgets` on each focus point (the stored
    profile's point at the focus dimensions, as the sensitivity uses it) with the
    CPU profile's composed configuration (:func:`cpu_config`, one composition per
    CPU profile), ranked by the stored row's extra time per cost: every cost that
    adds time, and the top two moved together, as ``asi-answer answer.budget=true``
    prints them (a few dozen model runs on one point per cost: about 0.2 s a focus
    point at 1024 samples). Returns the table (:data:`BUDGET_COLUMNS`) and, per CPU
    profile, what its probabilities are conditional on
    (:func:`pipeline.projection.answer.conditional_on`).
    """
    tables, conditions, configs = [], {}, {}
    for _, row in focus[focus["stage"] == stage].iterrows():
        workload, cpu = str(row["workload"]), str(row["cpu"])
        profile = stage_profile(grid, workload, cpu, stage, cfg, composer)
        key = (cpu, profile.cost_profile)
        if key not in configs:
            configs[key] = cpu_config(cpu, profile, cfg, overrides, composer)
        composed, matches = configs[key]
        conditions.setdefault(cpu, conditional_on(composed))
        point = {**profile.base_point, **{k: row[k] for k in DIMENSIONS}}
        table = budgets(pd.DataFrame([row.to_dict()]), composed, [point])
        if table.empty:
            continue
        tables.append(
            table.assign(
                workload=workload,
                cpu=cpu,
                stage=stage,
                slowdown_p50=row["slowdown_p50"],
                p_meets_target=row["p_meets_target"],
                matches=matches,
            )
        )
    for cpu in sorted(set(focus["cpu"]) - set(conditions)):
        conditions[cpu] = conditional_on(composer.compose([f"cpu={cpu}"]))
    if not tables:
        return pd.DataFrame(columns=list(BUDGET_COLUMNS)), conditions
    return pd.concat(tables, ignore_index=True)[list(BUDGET_COLUMNS)], conditions


# --------------------------------------------------------------------------- collecting
@dataclass
class Report:
    """Everything the page, the Markdown and the CSVs show."""

    settings: Settings
    stages: list[str]
    focus_cpu: str
    aggregates: Aggregates
    coverage: pd.DataFrame
    projection: pd.DataFrame
    scenarios: pd.DataFrame
    focus: pd.DataFrame
    sensitivity: pd.DataFrame
    grid_points: int | None
    missing: int
    missing_examples: pd.DataFrame
    scheduler: str
    comparison: pd.DataFrame | None = None
    previous_night: str | None = None
    history_nights: pd.DataFrame = field(default_factory=pd.DataFrame)
    history_part: str | None = None
    history_error: str | None = None
    """Why tonight could not be recorded (the report is still written), or None."""
    history_warnings: list[str] = field(default_factory=list)
    """One line per recording of the history that failed its check and was left out."""
    comparison_note: str | None = None
    """Why there is no comparison in nightly mode (the first night), or None."""
    timings: dict[str, float] = field(default_factory=dict)
    figures: list = field(default_factory=list)
    generated_at: str = ""
    budget: pd.DataFrame = field(default_factory=pd.DataFrame)
    """What each cost would need at the final stage (:func:`focus_budgets`)."""
    conditions: dict[str, str] = field(default_factory=dict)
    """Per CPU profile, what its probabilities are conditional on."""
    baseline: str = "mitigations_off"
    """``baseline.name``: what the verdicts compare with."""
    kept_out: KeptOut = field(default_factory=KeptOut)
    """The what-if points left out of the roadmap (:func:`preset_points`, :func:`store_presets`)."""
    focus_replaced: list[Replaced] = field(default_factory=list)
    """Focus values the store lacks and the stored values shown instead (:func:`focus_table`)."""


def collect(
    overrides: Sequence[str] = (),
    *,
    grid_overrides: Sequence[str] | None = None,
    composer: Composer | None = None,
    err: Out = _stderr,
) -> tuple[Report, DictConfig]:
    """Compose, aggregate and project: everything but the rendering.

    ``grid_overrides`` replaces the experiment's sweep overrides (tests use a
    small grid); by default the grid is the experiment's.
    """
    timings: dict[str, float] = {}
    composer = composer or default_composer()
    cfg = composer.compose(overrides)
    s = settings(cfg, composer=composer)
    if not Path(cfg.store.path).is_dir():
        raise ConfigError(
            f"store.path: no results store at {cfg.store.path} "
            "(run asi-sweep first, or point store.path at one)"
        )
    stages = list(cfg.roadmap.stages)
    tick = time.perf_counter()
    grid = None
    if grid_overrides is not None:
        grid = experiment_grid_from(grid_overrides, composer)
    elif s.experiment is not None:
        grid = experiment_grid(s.experiment, model_overrides(overrides), composer)
    if grid is not None:
        err(
            f"asi-report: grid {'of the given overrides' if grid_overrides is not None else s.experiment}: "
            f"{len(grid):,} points in {len(grid.profiles)} profiles"
        )
        grid, kept_out = preset_points(grid)
        presets, moved_first = grid, []
    else:
        # Quarantine damage before the presets' read, so that the count below still says so.
        store_path = Path(cfg.store.path)
        moved_first = results_store.check_parts(store_path)[1] if store_path.is_dir() else []
        presets, kept_out = store_presets(cfg, overrides, composer)
    timings["grid_s"] = time.perf_counter() - tick
    if kept_out.points:
        err(f"asi-report: {kept_out.text()}")
    if presets is not None:
        scope = grid_scope(presets)
    else:  # nothing stored at this seed and samples that the presets compose
        scope = Scope(point_ids=pa.array([], pa.string()))
    tick = time.perf_counter()
    with scheduler(cfg.dask, cfg.ray) as info:
        err(
            f"asi-report: aggregating {cfg.store.path} on Dask ({info.name}, {info.workers} workers)"
        )
        with progress(bool(cfg.dask.progress) and info.name != "distributed"):
            aggs = aggregate(cfg.store.path, scope)
    timings["aggregate_s"] = time.perf_counter() - tick
    scan = aggs.scan
    unreadable = len(scan.unreadable) + len(moved_first)
    err(
        f"asi-report: {int(aggs.cube['points'].sum()):,} points in scope from {scan.parts} part files"
        + (f" ({unreadable} unreadable, skipped)" if unreadable else "")
        + (f", {scan.duplicates_dropped} duplicates dropped" if scan.duplicates_dropped else "")
    )
    counts = grid_counts(grid) if grid is not None else None
    cover = coverage(counts, aggs.stage_summary)
    missing, examples = missing_cells(grid, aggs.cube) if grid is not None else (0, pd.DataFrame())
    tick = time.perf_counter()
    baseline = str(cfg.baseline.name)
    projection = projections(aggs.cube, stages, baseline)
    scenarios = scenario_summary(projection, stages)
    focus, replaced = focus_table(projection, aggs.cube, cfg, presets, s.focus_file_size, composer)
    if replaced:
        err(f"asi-report: {replaced_text(replaced)}")
    final = stages[-1]
    sensitivity = sensitivities(focus, final, presets, cfg, composer)
    timings["project_s"] = time.perf_counter() - tick
    tick = time.perf_counter()
    budget, conditions = focus_budgets(focus, final, presets, cfg, overrides, composer)
    timings["budget_s"] = time.perf_counter() - tick
    report = Report(
        settings=s,
        stages=stages,
        focus_cpu=str(cfg.cpu.name),
        aggregates=aggs,
        coverage=cover,
        projection=projection,
        scenarios=scenarios,
        focus=focus,
        sensitivity=sensitivity,
        grid_points=len(grid) if grid is not None else None,
        missing=missing,
        missing_examples=examples,
        scheduler=f"{info.name} ({info.workers} workers{', ' + info.detail if info.detail else ''})",
        timings=timings,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        budget=budget,
        conditions=conditions,
        baseline=baseline,
        kept_out=kept_out,
        focus_replaced=replaced,
    )
    nightly(report, err)
    return report, cfg


def experiment_grid_from(overrides: Sequence[str], composer: Composer | None = None) -> Grid:
    """A grid from explicit sweep overrides (no experiment preset)."""
    return build_grid(list(overrides), composer or default_composer())


def nightly(report: Report, err: Out) -> None:
    """Nightly mode: record tonight's focus projection, compare with the previous night; read the trend.

    Faults lose nothing: a night that cannot be recorded (disk full) is one
    ``error:`` line and :attr:`Report.history_error`, and the report is still
    written; a recording that fails its check is quarantined, named in a
    ``warning:`` line, and left out of the trend and the comparison.
    """
    s = report.settings
    if s.mode == "nightly" and not report.focus.empty:
        extra = {
            "coverage": report.coverage["stored_points"].sum() / report.grid_points
            if report.grid_points
            else np.nan,
            "model_version": MODEL_VERSION,
            "git_revision": git_revision(),
        }
        try:
            report.history_part = str(hist.record(s.history, report.focus, s.night, extra))
            err(f"asi-report: recorded the {s.night} projection in {report.history_part}")
        except hist.HistoryWriteError as exc:
            report.history_error = str(exc)
            err(f"error: {exc}")
    rows, unreadable = hist.read(s.history)
    report.history_warnings = [item.warning() for item in unreadable]
    for line in report.history_warnings:
        err(line)
    history = hist.nights(rows)
    report.history_nights = history
    previous = hist.previous_night(history, s.night) if not history.empty else None
    report.previous_night = previous
    if previous is None:
        if s.mode == "nightly":
            others = set(history["date"]) - {s.night} if not history.empty else set()
            report.comparison_note = (
                f"No night before {s.night} in the history {s.history}"
                + ("" if others else " (it is the first night recorded)")
                + ": nothing to compare with"
            )
            err(f"asi-report: {report.comparison_note}")
        return
    if not report.focus.empty:
        report.comparison = hist.compare(
            report.focus, history[history["date"] == previous], s.threshold
        )
        err(f"asi-report: compared with {previous}: {hist.outcome(report.comparison, s.threshold)}")


# --------------------------------------------------------------------------- rendering
def pct(x: float) -> str:
    """A fraction as a short percentage (``0.0213`` -> ``2.1``)."""
    if x is None or not np.isfinite(x):
        return "n/a"
    value = 100 * x
    return (
        f"{value:.2g}"
        if abs(value) < 1
        else f"{value:.1f}"
        if abs(value) < 100
        else f"{value:,.0f}"
    )


def signed(x: float) -> str:
    """:func:`pct` with its sign (``-0.012`` -> ``-1.2``, ``0.003`` -> ``+0.3``)."""
    text = pct(x)
    return text if text == "n/a" or text.startswith("-") else f"+{text}"


VS_DEFAULT: dict[str, str] = dict(zip(QUANTILES, VS_DEFAULT_QUANTILES, strict=True))
"""Quantile name (``p05``...) -> the column of the slowdown against the kernel's default."""
VS_DEFAULT_P05, VS_DEFAULT_P50, VS_DEFAULT_P95 = (VS_DEFAULT[q] for q in ("p05", "p50", "p95"))


def draw(report: Report) -> list:
    """Every figure of the report, saved under ``figures/``."""
    folder = report.settings.folder / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    final, cpu = report.stages[-1], report.focus_cpu
    proj, focus = report.projection, report.focus
    mine = proj[proj["cpu"] == cpu]
    focus_here = focus[focus["cpu"] == cpu]
    curve_parts, cell_parts = [], []
    for workload, rows in focus_here.groupby("workload"):
        first = rows.iloc[0]
        curve_parts.append(
            at(
                mine,
                {
                    "workload": workload,
                    "file_size": first["file_size"],
                    "ephmap_slots": first["ephmap_slots"],
                },
            )
        )
        cell_parts.append(at(mine, {"workload": workload, "cpus": first["cpus"], "stage": final}))
    curves = pd.concat(curve_parts, ignore_index=True) if curve_parts else mine.head(0)
    cells = pd.concat(cell_parts, ignore_index=True) if cell_parts else mine.head(0)
    nights = report.history_nights
    trend_rows = (
        nights[(nights["cpu"] == cpu) & (nights["stage"] == final)] if not nights.empty else nights
    )
    sens = report.sensitivity
    return [
        figs.loss_vs_cpus(curves, report.stages, cpu, folder),
        figs.size_slot_heatmap(cells, final, cpu, folder),
        figs.waterfall(focus_here[focus_here["stage"] == final], final, cpu, folder),
        figs.tornado(sens[sens["cpu"] == cpu] if not sens.empty else sens, final, cpu, folder),
        figs.trend(trend_rows, final, cpu, folder),
        figs.confidence(
            focus,
            report.stages,
            report.conditions,
            folder,
            int(report.sensitivity["samples"].max()) if not report.sensitivity.empty else None,
        ),
    ]


def projection_matrix(report: Report) -> list[dict]:
    """The headline table: one row per (workload, cpu) at its focus, one cell per stage."""
    rows = []
    final = report.stages[-1]
    for (workload, cpu), group in report.focus.groupby(["workload", "cpu"], sort=True):
        by_stage = group.set_index("stage")
        first = group.iloc[0]
        p50 = [
            by_stage.loc[s, "slowdown_p50"] if s in by_stage.index else np.nan
            for s in report.stages
        ]
        present = [s for s in report.stages if s in by_stage.index]
        values = [by_stage.loc[s, "slowdown_p50"] for s in present]
        cells = []
        for stage, value in zip(report.stages, p50, strict=True):
            if not np.isfinite(value):
                cells.append({"text": "missing", "tone": "missing", "title": "not in the store"})
                continue
            r = by_stage.loc[stage]
            versus = r[VS_DEFAULT_P50]
            cells.append(
                {
                    "text": f"{pct(value)} %",
                    "range": f"{pct(r['slowdown_p05'])}–{pct(r['slowdown_p95'])}",
                    "confidence": f"P<1 % {r['p_meets_target']:.2f} · P<5 % "
                    f"{r['p_under_threshold']:.2f}",
                    "versus": f"{signed(versus)} %",
                    "faster": bool(versus < 0),
                    "tone": "meets" if value < TARGET else "under" if value < THRESHOLD else "over",
                    "title": f"throughput loss {pct(r['throughput_loss_p50'])} %; top exit source "
                    f"{r['dominant_exit_source']}; top cost {r['dominant_cost']} "
                    f"({100 * r['dominant_cost_share']:.0f} %); vs the kernel's default "
                    f"{signed(versus)} % [{signed(r[VS_DEFAULT_P05])} to "
                    f"{signed(r[VS_DEFAULT_P95])} %], P(faster than the default) "
                    f"{r['p_beats_default']:.2f}",
                }
            )
        last = by_stage.loc[final] if final in by_stage.index else None
        faster = beats_default_from(group) if len(group) else None
        rows.append(
            {
                "workload": workload,
                "cpu": cpu,
                "focus": hist.focus_text(first),
                "replaced": ", ".join(
                    r.values()
                    for r in report.focus_replaced
                    if (r.workload, r.cpu) == (workload, cpu)
                ),
                "cells": cells,
                "threshold": crossing_text(
                    crossing(values, present, THRESHOLD), present, "under 5 %"
                )
                if present
                else "n/a",
                "target": crossing_text(crossing(values, present, TARGET), present, "1 % target")
                if present
                else "n/a",
                "verdict": last["verdict"] if last is not None else "incomplete",
                "p_meets": f"{last['p_meets_target']:.2f}" if last is not None else "n/a",
                "p_under": f"{last['p_under_threshold']:.2f}" if last is not None else "n/a",
                "versus_final": f"{signed(last[VS_DEFAULT_P50])} %" if last is not None else "n/a",
                "beats_default": f"faster than the default from {faster} on"
                if faster
                else "not faster than the default at any stage stored",
                "dominant": f"{last['dominant_cost']} ({100 * last['dominant_cost_share']:.0f} %)"
                if last is not None
                else "",
            }
        )
    return rows


def write_tables(report: Report) -> dict[str, str]:
    """The report's tables as CSV under ``data/``; returns name -> relative path."""
    folder = report.settings.folder / "data"
    folder.mkdir(parents=True, exist_ok=True)
    tables = {
        "projection_focus": report.focus,
        "scenarios": report.scenarios,
        "stage_summary": report.aggregates.stage_summary,
        "coverage": report.coverage,
        "sensitivity": report.sensitivity,
        "budget": report.budget,
    }
    if report.comparison is not None:
        tables["nightly_comparison"] = report.comparison
    written = {}
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv", index=False)
        written[name] = f"data/{name}.csv"
    return written


def render(report: Report) -> Path:
    """Write the report folder; returns the path of ``index.html``."""
    folder = report.settings.folder
    claim_folder(report.settings)
    report.figures = draw(report)
    tables = write_tables(report)
    context = page_context(report, tables)
    index = folder / "index.html"
    index.write_text(page(context), encoding="utf-8")
    (folder / "summary.md").write_text(markdown(report, context), encoding="utf-8")
    return index


def page(context: dict) -> str:
    """``index.html``: the template (:data:`TEMPLATE`) filled with :func:`page_context`."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("pipeline.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(TEMPLATE).render(**context)


def page_context(report: Report, tables: dict[str, str]) -> dict:
    """What the template shows."""
    s = report.settings
    stored = int(report.coverage["stored_points"].sum())
    final = report.stages[-1]
    sens = report.sensitivity
    top_costs = []
    if not sens.empty:
        noise = noise_level(int(sens["samples"].max()))
        for (workload, cpu), rows in sens.groupby(["workload", "cpu"], sort=True):
            groups = rows.drop_duplicates("group")
            groups = groups[groups["group_share"] > noise].head(3)
            top_costs.append(
                {
                    "workload": workload,
                    "cpu": cpu,
                    "costs": ", ".join(
                        f"{g.group} ({100 * g.group_share:.0f} %, ρ "
                        + "/".join(f"{r:+.2f}" for r in rows[rows["group"] == g.group]["spearman"])
                        + ")"
                        for g in groups.itertuples()
                    )
                    or "none above noise",
                    "check": "matches the store"
                    if (rows["matches"] == 1.0).all()
                    else "differs from the store (mean over several stored points, or stale store)",
                }
            )
    comparison = None
    if report.comparison is not None:
        c = report.comparison
        flagged = c[c["moved"]]
        unmatched = c[c["status"] == hist.NO_PREVIOUS]
        comparison = {
            "previous": report.previous_night,
            "rows": len(c),
            "compared": len(c) - len(unmatched),
            "outcome": hist.outcome(c, s.threshold),
            "unmatched": [
                {
                    "workload": r.workload,
                    "cpu": r.cpu,
                    "stage": r.stage,
                    "focus": hist.focus_text(r._asdict()),
                    "now": pct(r.slowdown_p50),
                    "verdict": r.verdict,
                    "before": f"at {r.focus_before}: {pct(r.focus_before_p50)} % "
                    f"({r.focus_before_verdict})"
                    if isinstance(r.focus_before, str)
                    else f"no {r.workload} / {r.cpu} / {r.stage} row",
                }
                for r in unmatched.itertuples()
            ],
            "flagged": [
                {
                    "workload": r.workload,
                    "cpu": r.cpu,
                    "stage": r.stage,
                    "before": pct(r.previous_p50),
                    "now": pct(r.slowdown_p50),
                    "delta": f"{100 * r.delta_p50:+.2f}" if np.isfinite(r.delta_p50) else "n/a",
                    "p_meets_before": _probability(r.previous_p_meets_target),
                    "p_meets_now": _probability(r.p_meets_target),
                    "versus_before": signed(getattr(r, f"previous_{VS_DEFAULT_P50}")),
                    "versus_now": signed(getattr(r, VS_DEFAULT_P50)),
                    "status": r.status,
                }
                for r in flagged.itertuples()
            ],
        }
    budget_rows = budget_context(report)
    scen = report.scenarios
    grid_wide = []
    for (workload, cpu), rows in scen.groupby(["workload", "cpu"], sort=True):
        grid_wide.append(
            {
                "workload": workload,
                "cpu": cpu,
                "scenarios": len(rows),
                "complete": int(rows["complete"].sum()),
                "under": f"{100 * (rows['final_slowdown_p50'] < THRESHOLD).mean():.0f} %",
                "meets": f"{100 * (rows['final_slowdown_p50'] < TARGET).mean():.0f} %",
                "worst": f"{pct(rows['final_slowdown_p50'].max())} %",
                "median": f"{pct(rows['final_slowdown_p50'].median())} %",
                "p_meets": f"{rows['final_p_meets_target'].mean():.2f}",
                "faster": f"{100 * (rows[f'final_{VS_DEFAULT_P50}'] < 0).mean():.0f} %",
            }
        )
    cover = report.coverage
    return {
        "title": "ASI slowdown: long-term projection",
        "generated_at": report.generated_at,
        "mode": s.mode,
        "night": s.night,
        "experiment": s.experiment or "whole store",
        "store": report.aggregates.scan.store,
        "scheduler": report.scheduler,
        "git": git_revision()[:16],
        "model_version": MODEL_VERSION,
        "stages": report.stages,
        "final": final,
        "focus_cpu": report.focus_cpu,
        "matrix": projection_matrix(report),
        "stored": stored,
        "grid_points": report.grid_points,
        "coverage_pct": f"{100 * stored / report.grid_points:.1f}" if report.grid_points else None,
        "missing": report.missing,
        "missing_examples": report.missing_examples.to_dict("records"),
        "kept_out": report.kept_out.text(),
        "focus_replaced": replaced_text(report.focus_replaced),
        "unreadable": report.aggregates.scan.unreadable,
        "duplicates": report.aggregates.scan.duplicates_dropped,
        "coverage_rows": [
            {
                "workload": r.workload,
                "cpu": r.cpu,
                "stage": r.mitigations,
                "stored": r.stored_points,
                "grid": "" if not np.isfinite(r.grid_points) else int(r.grid_points),
                "pct": "" if not np.isfinite(r.coverage) else f"{100 * r.coverage:.0f} %",
            }
            for r in cover.itertuples()
            if not np.isfinite(r.coverage) or r.coverage < 1
        ],
        "grid_wide": grid_wide,
        "top_costs": top_costs,
        "comparison": comparison,
        "comparison_note": report.comparison_note,
        "history_warnings": report.history_warnings,
        "history_error": report.history_error,
        "threshold_points": f"{100 * s.threshold:g}",
        "probability_move": f"{hist.PROBABILITY_MOVE:g}",
        "budget": budget_rows,
        "budget_missing": sorted(
            {(r.workload, r.cpu) for r in report.focus.itertuples()}
            - {(e["workload"], e["cpu"]) for e in budget_rows}
        ),
        "conditions": [{"cpu": c, "text": t} for c, t in sorted(report.conditions.items())],
        "baseline": report.baseline,
        "figures": report.figures,
        "tables": tables,
        "timings": {k: f"{v:.1f}" for k, v in report.timings.items()},
        "pct": pct,
    }


def _probability(x: float) -> str:
    return f"{x:.2f}" if x is not None and np.isfinite(x) else "n/a"


def _ns(x: float) -> str:
    return f"{x:,.3g}"


def budget_context(report: Report) -> list[dict]:
    """The budget table, one entry per focus (workload, CPU profile), with a sentence each."""
    entries = []
    if report.budget.empty:
        return entries
    for (workload, cpu), rows in report.budget.groupby(["workload", "cpu"], sort=True):
        first = rows.iloc[0]
        costs = []
        for r in rows.itertuples():
            single = "+" not in r.cost
            costs.append(
                {
                    "cost": r.cost,
                    "adds": _ns(r.adds_ns_per_op),
                    "median": _ns(r.median_ns) if single else "",
                    "lowest": _ns(r.lowest_ns) if single else "",
                    "p50": budget_needs(r.p50_factor, r.median_ns, single),
                    "confident": budget_needs(r.confident_factor, r.median_ns, single),
                }
            )
        reachable = [
            r
            for r in rows.itertuples()
            if "+" not in r.cost and r.p50_factor is not None and np.isfinite(r.p50_factor)
        ]
        if first["slowdown_p50"] < TARGET:
            sentence = f"{workload} on {cpu} already meets the 1 % target at the median."
        elif reachable:
            best = reachable[0]
            sentence = (
                f"{workload} on {cpu} reaches 1 % at the median if {best.cost} costs under "
                f"{_ns(best.p50_factor * best.median_ns)} ns (today's median: "
                f"{_ns(best.median_ns)} ns), the other costs as they are."
            )
        else:
            pairs = [
                r
                for r in rows.itertuples()
                if "+" in r.cost and r.p50_factor is not None and np.isfinite(r.p50_factor)
            ]
            sentence = (
                f"{workload} on {cpu}: no single cost reaches 1 % at the median inside its "
                f"documented range"
                + (
                    f"; {pairs[0].cost.replace('+', ' and ')} together do at "
                    f"{100 * pairs[0].p50_factor:.0f} % of today's medians."
                    if pairs
                    else ", nor do the top two together."
                    if any("+" in c for c in rows["cost"])
                    else "."
                )
            )
        entries.append(
            {
                "workload": workload,
                "cpu": cpu,
                "stage": first["stage"],
                "now": f"{pct(first['slowdown_p50'])} %",
                "p_meets": _probability(first["p_meets_target"]),
                "sentence": sentence,
                "matches": bool(rows["matches"].all()),
                "costs": costs,
            }
        )
    return entries


def markdown(report: Report, context: dict) -> str:
    """The short Markdown summary (``summary.md``)."""
    lines = [
        f"# {context['title']}",
        "",
        f"Generated {context['generated_at']} ({context['mode']}), experiment `{context['experiment']}`, "
        f"store `{context['store']}`, Dask {context['scheduler']}, git `{context['git']}`.",
        "",
    ]
    if context["grid_points"]:
        lines.append(
            f"Coverage: {context['stored']:,} of {context['grid_points']:,} grid points "
            f"({context['coverage_pct']} %); {context['missing']:,} missing."
        )
    else:
        lines.append(
            f"Points: {context['stored']:,} (whole store; no grid to measure coverage against)."
        )
    if context["kept_out"]:
        lines += ["", context["kept_out"]]
    lines += ["", f"## Projection at the focus point ({' → '.join(context['stages'])})", ""]
    lines.append(
        "| workload | cpu | focus | "
        + " | ".join(context["stages"])
        + " | verdict | P(<1 %) | P(<5 %) |"
    )
    lines.append("|" + "---|" * (len(context["stages"]) + 6))
    for row in context["matrix"]:
        focus = (
            f"{row['focus']} (not stored: {row['replaced']})" if row["replaced"] else row["focus"]
        )
        cells = " | ".join(
            f"{c['text']} ({c['versus']} vs default)" if c.get("versus") else c["text"]
            for c in row["cells"]
        )
        lines.append(
            f"| {row['workload']} | {row['cpu']} | {focus} | {cells} | {row['verdict']} "
            f"| {row['p_meets']} | {row['p_under']} |"
        )
    if context["focus_replaced"]:
        lines += ["", context["focus_replaced"]]
    lines += [
        "",
        "Slowdown p50 against mitigations=off (in brackets: against the kernel's default "
        "mitigations, negative = ASI faster); P(<1 %), P(<5 %) after the whole roadmap; crossings:",
        "",
    ]
    for row in context["matrix"]:
        remaining = (
            f"remaining mostly {row['dominant']}"
            if row["dominant"]
            else f"{context['final']} not stored at the focus point"
        )
        lines.append(
            f"- {row['workload']} on {row['cpu']}: {row['threshold']}; {row['target']}; "
            f"{row['beats_default']}; {remaining}."
        )
    if context["conditions"]:
        lines += ["", "Probabilities are conditional on:", ""]
        lines += [f"- {c['cpu']}: {c['text']}" for c in context["conditions"]]
    if context["budget"]:
        lines += ["", f"## What it would take at {context['final']}", ""]
        for entry in context["budget"]:
            lines.append(f"- {entry['sentence']}")
    if context["top_costs"]:
        lines += ["", f"## What drives the spread at {context['final']}", ""]
        for row in context["top_costs"]:
            lines.append(f"- {row['workload']} on {row['cpu']}: {row['costs']}")
    if context["comparison"] is not None:
        comp = context["comparison"]
        lines += ["", f"## Compared with {comp['previous']}", ""]
        if comp["flagged"]:
            for f in comp["flagged"]:
                lines.append(
                    f"- **{f['status']}**: {f['workload']} / {f['cpu']} / {f['stage']}: "
                    f"{f['before']} % → {f['now']} % ({f['delta']} points), P(<1 %) "
                    f"{f['p_meets_before']} → {f['p_meets_now']}, vs default "
                    f"{f['versus_before']} % → {f['versus_now']} %"
                )
        elif comp["compared"]:
            lines.append(
                f"Of the {comp['compared']} projection(s) compared, none moved by more than "
                f"{context['threshold_points']} points, no verdict changed, no probability "
                f"moved by more than {context['probability_move']}."
            )
        else:
            lines.append(f"Nothing compared: {comp['outcome']}.")
        for u in comp["unmatched"]:
            lines.append(
                f"- **{hist.NO_PREVIOUS}**: {u['workload']} / {u['cpu']} / {u['stage']} at "
                f"{u['focus']}: {u['now']} % ({u['verdict']}); on {comp['previous']}: {u['before']}"
            )
    elif context["comparison_note"]:
        lines += [
            "",
            "## Compared with the previous night",
            "",
            f"{context['comparison_note']}.",
        ]
    if context["history_error"] or context["history_warnings"]:
        lines += ["", "## History", ""]
        lines += [
            f"- {line}"
            for line in filter(None, [context["history_error"], *context["history_warnings"]])
        ]
    lines += ["", "## Figures", ""]
    for fig in context["figures"]:
        lines.append(f"- [{fig.title}]({fig.path}): {fig.caption}")
    return "\n".join(lines) + "\n"


def build(
    overrides: Sequence[str] = (),
    *,
    grid_overrides: Sequence[str] | None = None,
    composer: Composer | None = None,
    err: Out = _stderr,
) -> tuple[Path, Report]:
    """Collect and render a report; returns ``index.html``'s path and the :class:`Report`."""
    report, _ = collect(overrides, grid_overrides=grid_overrides, composer=composer, err=err)
    tick = time.perf_counter()
    index = render(report)
    report.timings["render_s"] = time.perf_counter() - tick
    return index, report


def announce(index: Path, report: Report) -> None:
    """What ``asi-report`` prints once the report is written."""
    flagged = 0 if report.comparison is None else int(report.comparison["moved"].sum())
    if flagged:
        print(
            f"asi-report: {flagged} projection(s) moved since {report.previous_night}: see the report"
        )
    print(f"asi-report: report in {index}")


__all__ = ["Report", "announce", "build", "collect", "render"]
