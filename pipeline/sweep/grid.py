"""Grid expansion: Hydra sweep overrides -> one table of points, each with a ``point_id``.

The overrides are parsed, merged and checked into :class:`Dimensions` by
:mod:`pipeline.configuration.sweeps` (group, point and profile dimensions);
here they become the grid:

* **group dimensions** (``workload``, ``cpu``, ``mitigations``): the config is
  composed by Hydra at most once per combination of their options, the only
  place Hydra's composition (~0.3 s each with these configs) is paid; see
  :func:`compose_groups` for how multi-group grids get away with fewer. Each
  composition is validated once, which gives its model inputs
  (:class:`~pipeline.configuration.profile.ModelProfile`) too;
* **point dimensions** become columns of the grid, never a composition;
* **profile dimensions** change the cost draws, so each combination is its own
  :class:`Profile`, applied to a copy of the composed config.

Every distinct value is validated before anything runs; errors are one-line
:class:`~pipeline.configuration.errors.ConfigError` naming the field and what is allowed.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from math import prod
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from asi_slowdown.model.params import POINT_PARAMS
from asi_slowdown.pipeline.configuration.checks import validate as validate_config
from asi_slowdown.pipeline.configuration.compose import Composer, check_strict_bools
from asi_slowdown.pipeline.configuration.profile import ModelProfile, model_profile
from asi_slowdown.pipeline.configuration.sweeps import (
    MODEL_ROOTS,
    Dimensions,
    dimensions,
    point_dimensions,
    typed_values,
)
from asi_slowdown.pipeline.store.identity import cost_profile, point_ids, point_record, stable_hash
from asi_slowdown.pipeline.store.schema import LABEL_COLUMNS
from asi_slowdown.pipeline.sweep.points import Profile

MODEL_GROUPS: tuple[str, ...] = LABEL_COLUMNS
"""Config groups a sweep may range over: they choose the model's inputs."""

HASHED_SECTIONS: tuple[str, ...] = MODEL_ROOTS
"""Config sections a profile's ``config_hash`` covers (not hydra, store, ray, sweep, answer)."""

ID_BLOCK_ROWS = 1 << 16
"""Rows hashed per block: bounds the (rows x parameters) matrix built for hashing."""


# --------------------------------------------------------------------------- results of expansion
@dataclass
class Grid:
    """Every point of a sweep.

    ``points`` has one row per point: ``point_id`` (string), ``profile`` (index
    into ``profiles``) and one column per swept point parameter (``swept``), in
    model units. Parameters that are not swept come from the profile's
    ``base_point``, so a 10^6-point grid costs a few columns, not all of them.
    """

    profiles: list[Profile]
    points: pa.Table
    swept: tuple[str, ...]

    def __len__(self) -> int:
        return self.points.num_rows


# --------------------------------------------------------------------------- composition
Composed = tuple[DictConfig, ModelProfile]
"""A validated config and the model's inputs its validation made (once per composition)."""

ComposeFn = Callable[[Sequence[str]], Composed]


def validated(
    composer: Composer,
    config_name: str = "config",
    base: DictConfig | None = None,
    dims: Dimensions | None = None,
) -> ComposeFn:
    """Compose with ``composer`` (cached per override tuple) and validate.

    ``base`` is the run's config Hydra composed before the sweeper started (non-sweep
    overrides, default group options): it is returned for the combination that picks
    exactly those options with the same fixed overrides (``dims``), which is the same
    config, rather than composed again.
    """
    same = _base_overrides(base, dims) if base is not None and dims is not None else None

    def compose(overrides: Sequence[str]) -> Composed:
        cfg = base if list(overrides) == same else composer.load(overrides, config_name)
        return cfg, validate_config(cfg)

    return compose


def _base_overrides(base: DictConfig, dims: Dimensions) -> list[str] | None:
    """The override list of the combination ``base`` is, or None if it is none of them."""
    parser = OverridesParser.create()
    task = list(base.hydra.overrides.task)
    base_fixed = [o.input_line for o in parser.parse_overrides(task) if not o.is_sweep_override()]
    choices = base.hydra.runtime.choices
    if base_fixed != list(dims.fixed) or any(g not in choices for g in dims.groups):
        return None
    return [*dims.fixed, *(f"{g}={choices[g]}" for g in dims.groups)]


def _choice(dims: Dimensions, combo: Sequence[str]) -> list[str]:
    return [*dims.fixed, *(f"{k}={v}" for k, v in zip(dims.groups, combo, strict=True))]


def first_choice(dims: Dimensions) -> list[str]:
    """The overrides of the first combination of group options (the grid's first profile)."""
    return _choice(dims, [options[0] for options in dims.groups.values()])


class Counter(Protocol):
    """The part of tqdm's interface the grid's expansion reports to (:data:`Planner`)."""

    total: int
    n: int

    def update(self, n: int = 1) -> object: ...


class _Uncounted:
    total = 0
    n = 0

    def update(self, n: int = 1) -> None:
        pass


Planner = Callable[[Dimensions, int], "Counter | None"]
"""Told the sweep's dimensions and the number of expansion steps (:func:`expansion_steps`)
once they are known, before anything is composed; returns what counts the steps, or None."""


def _combinations(dims: Dimensions) -> int:
    return prod(len(v) for v in dims.groups.values())


def _profiles(dims: Dimensions) -> int:
    return _combinations(dims) * prod(len(v) for v in dims.profiles.values())


def expansion_steps(dims: Dimensions) -> int:
    """The steps :func:`build_grid` reports: every composition by Hydra, every combination
    assembled from them (:func:`compose_groups`), and every profile's points."""
    steps = _combinations(dims) + _profiles(dims)
    if len(dims.groups) >= 2:  # each option composed once, then the combinations assembled
        steps += 1 + sum(len(v) - 1 for v in dims.groups.values())
    return steps


def compose_each(
    dims: Dimensions,
    compose: ComposeFn,
    progress: Counter | None = None,
    first: Composed | None = None,
) -> list[Composed]:
    """One validated config per combination of group options: Hydra's composition, as is.

    ``first``: the first combination, composed already (by :func:`build_grid`, to check
    every value before the rest): used, not composed again.
    """
    progress = _Uncounted() if progress is None else progress
    configs = []
    for i, combo in enumerate(itertools.product(*dims.groups.values())):
        configs.append(first if i == 0 and first is not None else compose(_choice(dims, combo)))
        progress.update(1)
    return configs


def _sections(cfg: DictConfig, skip: str) -> dict:
    return {
        k: OmegaConf.to_container(v) if isinstance(v, DictConfig) else v
        for k, v in cfg.items_ex(resolve=False)
        if k not in (skip, "hydra")
    }


def compose_groups(
    dims: Dimensions,
    compose: ComposeFn,
    progress: Counter | None = None,
    first: Composed | None = None,
) -> list[Composed]:
    """One validated config per combination of group options, in ``itertools.product`` order.

    Composition costs ~0.3 s here, and a grid over workloads x CPUs x stages has
    dozens of combinations. So with two or more group dimensions, each option
    is composed once, next to the first option of every other group (1 +
    sum(options - 1) compositions instead of prod(options)), and each
    combination is assembled from those subtrees. That is exact when choosing
    an option changes only its own subtree, which is checked for every option;
    if any option reaches outside its subtree (a ``_global_`` package, a
    defaults list), every combination is composed by Hydra instead. ``first`` is
    as :func:`compose_each` takes it. With fewer than two group dimensions there is
    nothing to assemble: :func:`compose_each`.
    """
    progress = _Uncounted() if progress is None else progress
    keys = list(dims.groups)
    chosen = [dims.groups[k][0] for k in keys]
    first = compose(_choice(dims, chosen)) if first is None else first
    anchor = first[0]
    progress.update(1)
    parts: dict[str, dict[str, DictConfig]] = {k: {chosen[i]: anchor} for i, k in enumerate(keys)}
    for i, key in enumerate(keys):
        outside = _sections(anchor, skip=key)
        for option in dims.groups[key][1:]:
            cfg, _ = compose(_choice(dims, [*chosen[:i], option, *chosen[i + 1 :]]))
            progress.update(1)
            if _sections(cfg, skip=key) != outside:
                # every combination by Hydra instead, then the profiles: the steps from here
                progress.total = progress.n + _combinations(dims) + _profiles(dims)
                return compose_each(dims, compose, progress, first)
            parts[key][option] = cfg
    base = copy.deepcopy(anchor)
    with open_dict(base):
        # Neither is needed per combination: hydra not downstream, the groups' sections
        # replaced by each combination's own (the cpu section is most of a config's nodes).
        for key in ("hydra", *keys):
            del base[key]
    configs = [first]
    progress.update(1)
    for combo in itertools.islice(itertools.product(*dims.groups.values()), 1, None):
        cfg = copy.deepcopy(base)
        with open_dict(cfg):
            for key, option in zip(keys, combo, strict=True):
                cfg[key] = parts[key][option][key]  # a copy: OmegaConf copies a node it sets
        # Only the model's inputs are new here: every other check of validate() reads
        # sections this combination shares with a composition validated above, each
        # option's section included.
        configs.append((cfg, model_profile(cfg)))
        progress.update(1)
    return configs


# --------------------------------------------------------------------------- profiles
def _model_sections(cfg: DictConfig) -> dict:
    return {
        k: OmegaConf.to_container(cfg[k], resolve=True)
        if isinstance(cfg[k], DictConfig)
        else cfg[k]
        for k in HASHED_SECTIONS
        if k in cfg
    }


def make_profile(
    cfg: DictConfig, model: ModelProfile | None = None, profile_overrides: str = ""
) -> Profile:
    """The :class:`Profile` of a composed, validated config and its model inputs (``model``:
    what :func:`~pipeline.configuration.checks.validate` made of it; made now if None)."""
    model = model_profile(cfg) if model is None else model
    return Profile(
        workload=str(cfg.workload.name),
        cpu=str(cfg.cpu.name),
        mitigations=str(cfg.mitigations.name),
        seed=model.seed,
        samples=model.samples,
        ghz=model.ghz,
        cost_specs=model.cost_specs,
        cost_profile=cost_profile(cfg.cpu.name, model.ghz, model.cost_specs, model.correlations),
        profile_overrides=profile_overrides,
        config_hash=stable_hash(_model_sections(cfg)),
        base_point=model.point,
        correlations=model.correlations,
    )


def expand_profiles(
    configs: Sequence[Composed], dims: Dimensions, probe: DictConfig
) -> list[Profile]:
    """One profile per composed config and combination of profile-dimension values."""
    keys = list(dims.profiles)
    typed = [typed_values(probe, key, dims.profiles[key]) for key in keys]
    profiles = []
    for cfg, model in configs:
        for combo in itertools.product(*typed):
            variant, inputs = cfg, model
            if keys:  # a copy per combination: the composed config is shared
                variant = copy.deepcopy(cfg)
                with open_dict(variant):
                    for key, value in zip(keys, combo, strict=True):
                        OmegaConf.update(variant, key, value, merge=False)
                inputs = validate_config(variant)
            label = " ".join(f"{k}={v}" for k, v in zip(keys, combo, strict=True))
            profiles.append(make_profile(variant, inputs, label))
    return profiles


# --------------------------------------------------------------------------- points and ids
def product_index(sizes: Sequence[int], rows: np.ndarray) -> Iterator[np.ndarray]:
    """For flat indices ``rows`` of a row-major product of ``sizes``, the index along each axis."""
    stride = prod(sizes)
    for size in sizes:
        stride //= size
        yield (rows // stride) % size


def profile_points(index: int, profile: Profile, dims: Mapping[str, np.ndarray]) -> pa.Table:
    """The grid rows of one profile: the product of the point dimensions, with ids."""
    names = list(dims)
    sizes = [len(dims[n]) for n in names]
    n = prod(sizes)
    swept = {name: np.empty(n, dtype=dims[name].dtype) for name in names}
    base = point_record(profile.base_point)
    position = {p: i for i, p in enumerate(POINT_PARAMS)}
    prefix = profile.id_prefix()
    ids: list[str] = []
    for start in range(0, n, ID_BLOCK_ROWS):
        rows = np.arange(start, min(start + ID_BLOCK_ROWS, n))
        records = np.tile(base, (len(rows), 1))
        for name, axis in zip(names, product_index(sizes, rows), strict=True):
            values = dims[name][axis]
            swept[name][rows] = values
            records[:, position[name]] = values
        ids.extend(point_ids(prefix, records))
    return pa.table(
        {
            "point_id": pa.array(ids, pa.string()),
            "profile": pa.array(np.full(n, index, dtype=np.int32)),
            **swept,
        }
    )


def drop_duplicate_ids(points: pa.Table) -> pa.Table:
    """Keep the first row of each ``point_id`` (``1G`` and ``1024M`` are one point)."""
    if pc.count_distinct(points.column("point_id")).as_py() == points.num_rows:
        return points
    ids = points.column("point_id").to_numpy(zero_copy_only=False)
    _, first = np.unique(ids, return_index=True)
    return points.take(pa.array(np.sort(first)))


# --------------------------------------------------------------------------- entry point
def build_grid(
    overrides: Sequence[str],
    composer: Composer,
    config_name: str = "config",
    base: DictConfig | None = None,
    planner: Planner | None = None,
) -> Grid:
    """Validate and expand sweep ``overrides`` into a :class:`Grid`.

    Parameters
    ----------
    overrides : sequence of str
        Hydra overrides: ``hydra.sweeper.params`` entries first, then the
        command line's (later ones win for the same key).
    composer : Composer
        Resolves ``glob()`` over config groups and composes configs
        (:func:`pipeline.configuration.compose.composer`).
    config_name : str
        The primary config.
    base : DictConfig, optional
        The config Hydra already composed for this run (the sweep overrides
        left out): reused for the combination it equals, saving one composition.
    planner : callable, optional
        Told the dimensions once they are checked, before the expansion's slow part
        (composing: ~0.3 s per configuration); what it returns counts the steps
        (:data:`Planner`), so a sweep can show its progress from the start.

    Raises
    ------
    ConfigError
        One line naming the field and what is allowed; raised before any work.
    """
    dims = dimensions(overrides, composer.loader(), MODEL_GROUPS)
    compose = validated(composer, config_name, base, dims)
    # Every value is checked on the first combination before the others are composed (the
    # slow part), so bad input is refused before the plan is said and the progress starts;
    # its composition and profiles are the grid's first, made once.
    first = compose(first_choice(dims))
    check_strict_bools(first[0], dims.fixed)  # as asi-answer: no numbers for booleans
    probe = copy.deepcopy(first[0])
    columns = point_dimensions(probe, dims)
    profiles = expand_profiles([first], dims, probe)
    progress = planner(dims, expansion_steps(dims)) if planner else None
    progress = _Uncounted() if progress is None else progress
    expand = compose_groups if len(dims.groups) >= 2 else compose_each
    configs = expand(dims, compose, progress, first)
    profiles += expand_profiles(configs[1:], dims, probe)
    tables = []
    for i, profile in enumerate(profiles):
        tables.append(profile_points(i, profile, columns))
        progress.update(1)
    points = drop_duplicate_ids(pa.concat_tables(tables))
    return Grid(profiles=profiles, points=points, swept=tuple(columns))
