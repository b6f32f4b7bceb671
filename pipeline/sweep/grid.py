"""Grid expansion: Hydra sweep overrides -> one table of points, each with a ``point_id``.

The overrides are Hydra's own (``a=1,2,3``, ``range()``, ``choice()``,
``glob()`` over config groups), parsed by ``hydra.core.override_parser``. They
split into three kinds:

* **group dimensions** (``workload``, ``cpu``, ``mitigations``): the config is
  composed by Hydra at most once per combination of their options, the only
  place Hydra's composition (~0.3 s each with these configs) is paid; see
  :func:`compose_groups` for how multi-group grids get away with fewer;
* **point dimensions**: scalars that are model point parameters
  (``cpus``, ``ephmap.slots``, ``workload.file_size``, ``mitigations.<flag>``,
  ``cpu.ibpb``...): they become columns of the grid, never a composition;
* **profile dimensions**: other scalars of the model's configs
  (``cpu.costs.ibpb.high``, ``cpu.ghz``, ``seed``, ``samples``...): they change
  the cost draws, so each combination is its own :class:`Profile`, applied to a
  copy of the composed config.

Every distinct value is validated once (type against the structured-config
schema, range with :func:`model.params.check_ranges`, sizes with
:func:`model.units.parse_size`) before anything runs; errors are one-line
:class:`~pipeline.configuration.errors.ConfigError` naming the field and what is allowed.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from math import prod
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, QuotedString, RangeSweep
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.nodes import BooleanNode, FloatNode, IntegerNode, StringNode

from model.params import BOOL_PARAMS, POINT_PARAMS, check_ranges
from model.units import parse_size
from pipeline.configuration.compose import (
    PARAM_LABELS,
    Composer,
    check_override_syntax,
    check_strict_bools,
    cost_correlations,
    cost_specs,
    point_from_config,
)
from pipeline.configuration.compose import validate as validate_config
from pipeline.configuration.errors import ConfigError, one_line
from pipeline.configuration.schema import SIZE_FIELDS
from pipeline.store.identity import cost_profile, point_ids, point_record, stable_hash
from pipeline.store.schema import LABEL_COLUMNS
from pipeline.sweep.points import Profile

MODEL_GROUPS: tuple[str, ...] = LABEL_COLUMNS
"""Config groups a sweep may range over: they choose the model's inputs."""

MODEL_ROOTS: tuple[str, ...] = (
    "workload",
    "cpu",
    "mitigations",
    "kernel",
    "ephmap",
    "cpus",
    "seed",
    "samples",
)
"""Top-level config keys whose scalars a sweep may vary (everything else is execution settings)."""

POINT_KEYS: dict[str, str] = {label: name for name, label in PARAM_LABELS.items()}
"""Config path -> model point parameter (``workload.file_size`` -> ``file_size``)."""

HASHED_SECTIONS: tuple[str, ...] = MODEL_ROOTS
"""Config sections a profile's ``config_hash`` covers (not hydra, store, ray, sweep, answer)."""

ID_BLOCK_ROWS = 1 << 16
"""Rows hashed per block: bounds the (rows x parameters) matrix built for hashing."""

MAX_SWEEP_VALUES = 100_000
"""Values one ``range()`` may give: more is a typo (``range(1,100000000)``), caught before
the values are listed (a billion-value range would hang the planner)."""

MAX_PROFILES = 10_000
"""Profiles (compositions x profile-dimension combinations) one sweep may have: each holds
its own cost draws (~140 KB at 1024 samples) in the Ray object store."""

MAX_GRID_POINTS = 10_000_000
"""Points one sweep may have (the nightly grid has ~2.3e5): bounds the planner's memory
(ids, columns) and catches a typo before composing anything."""


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


# --------------------------------------------------------------------------- parsing
@dataclass(frozen=True)
class Dimensions:
    """Sweep overrides, classified."""

    fixed: tuple[str, ...]
    groups: dict[str, list[str]]
    points: dict[str, list]
    profiles: dict[str, list]


def parse(overrides: Sequence[str], parser: OverridesParser) -> list[Override]:
    """Parse with Hydra's grammar; a malformed override is named in a one-line error."""
    check_override_syntax(overrides)
    return parser.parse_overrides(list(overrides))


def _key(override: Override) -> tuple[str, str | None]:
    return override.key_or_group, override.package


def merge_by_key(overrides: Sequence[Override]) -> list[Override]:
    """The overrides that decide each key, as in every job of Hydra's own sweeper.

    Hydra keeps one override per spelling of a key (``cpus`` and ``++cpus``
    are two): the last one given, at the place of the first. Each job then
    applies them in that order, so per config path the last of them wins:
    ``cpus=1,2 ++cpus=3`` is ``cpus=3``, and so is ``cpus=1,2 ++cpus=3 cpus=4``.
    """
    spelled: dict[str, Override] = {}
    for override in overrides:
        spelled[override.get_key_element()] = override  # a dict keeps the first position
    merged: dict[tuple, Override] = {}
    for override in spelled.values():
        merged.pop(_key(override), None)
        merged[_key(override)] = override
    return list(merged.values())


_INTERPOLATED = re.compile(r"\$\{([^}:]+)\}")


def check_interpolations(overrides: Sequence[Override], dims: Dimensions) -> None:
    """Refuse an interpolation of a swept key (``ephmap.slots=${cpus}`` with ``cpus=1,2``).

    Hydra resolves it in each job, to that job's value; the grid composes each
    combination of groups once and sweeps scalars as columns, so it would see
    the base value instead.
    """
    swept = [*dims.groups, *dims.points, *dims.profiles]
    for override in overrides:
        text = override.input_line.split("=", 1)[-1]
        for ref in _INTERPOLATED.findall(text):
            hit = next((k for k in swept if ref == k or ref.startswith(f"{k}.")), None)
            if hit:
                raise ConfigError(
                    f"{override.key_or_group}: {text} interpolates the swept key {hit} "
                    "(Hydra resolves it per job; the grid sweeper does not): sweep "
                    f"{override.key_or_group} with literal values instead"
                )


def range_length(sweep: RangeSweep) -> float:
    """How many values a ``range()`` sweep gives, without listing them (inf if unbounded)."""
    start, stop, step = sweep.start, sweep.stop, sweep.step
    if all(isinstance(v, int) for v in (start, stop, step)):
        return len(range(start, stop, step))  # step 0 raises ValueError, as range() does
    if step == 0:
        raise ValueError("range() arg 3 must not be zero")
    span = (float(stop) - float(start)) / float(step)
    return max(0.0, math.ceil(span)) if math.isfinite(span) else math.inf


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _sweep_values(override: Override, is_group: bool) -> list:
    key = override.get_key_element()
    text = override.input_line.split("=", 1)[-1]
    if not override.is_discrete_sweep():
        raise ConfigError(
            f"{key}: {text} is not a list of values; use a,b,c, range(), choice() or glob()"
        )
    try:
        sweep = override.value()
        too_many = isinstance(sweep, RangeSweep) and range_length(sweep) > MAX_SWEEP_VALUES
        values = (
            []
            if too_many
            else list(override.sweep_string_iterator() if is_group else override.sweep_iterator())
        )
    except (ValueError, TypeError, OverflowError) as exc:  # range(1,5,0), range(1,nan)
        raise ConfigError(f"{key}: {text} is not a valid sweep: {exc}") from None
    if too_many:
        raise ConfigError(
            f"{key}: {text} gives more than {MAX_SWEEP_VALUES:,} values; "
            "a sweep that large is a typo or needs splitting"
        )
    if not values:
        raise ConfigError(f"{key}: {text} gives no value: the grid is empty")
    # 'quoted' values compose to what they spell, as in Hydra's own jobs ('2' -> 2 for an int)
    values = [v.text if isinstance(v, QuotedString) else v for v in values]
    unhashable = [v for v in values if not _hashable(v)]
    if unhashable:  # [1,2],[3]: lists and dicts are not one value of a scalar
        raise ConfigError(f"{key}: a sweep takes single values, got {unhashable[0]!r} in {text}")
    # distinct by type and value, in the order given: 1 == 1.0 == True in Python, and each is
    # validated on its own (true,1 and 1,true are refused alike: 1 is not a bool)
    return list({(type(v), v): v for v in values}.values())


def classify(
    overrides: Sequence[Override], group_options: Callable[[str], list[str]]
) -> Dimensions:
    """Split overrides into fixed ones (passed to composition) and the three kinds of dimension."""
    fixed, groups, points, profiles = [], {}, {}, {}
    for override in overrides:
        key = override.key_or_group
        is_group = bool(group_options(key))
        if not override.is_sweep_override():
            if key.split(".", 1)[0].split("/", 1)[0] != "hydra":  # Hydra's settings: applied
                fixed.append(override.input_line)  # to the run's config, not the model's
            continue
        if override.is_add() or override.is_delete() or override.package is not None:
            raise ConfigError(
                f"{override.input_line}: a sweep cannot add, delete or re-package keys"
            )
        if is_group:
            if key not in MODEL_GROUPS:
                raise ConfigError(
                    f"{key}: this group cannot be swept; sweepable groups: {', '.join(MODEL_GROUPS)}"
                )
            options = group_options(key)
            values = _sweep_values(override, is_group=True)
            unknown = [v for v in values if v not in options]
            if unknown:
                raise ConfigError(
                    f"{key}: unknown option {unknown[0]!r}; allowed: {', '.join(options)}"
                )
            groups[key] = values
            continue
        if key.split(".", 1)[0] not in MODEL_ROOTS:
            raise ConfigError(
                f"{key}: cannot be swept; sweepable: the groups {', '.join(MODEL_GROUPS)} "
                f"and the model's scalars under {', '.join(MODEL_ROOTS)}"
            )
        values = _sweep_values(override, is_group=False)
        (points if key in POINT_KEYS else profiles)[key] = values
    return Dimensions(tuple(fixed), groups, points, profiles)


def dimensions_text(dims: Dimensions) -> str:
    """What a sweep ranges over and its size before merging equal values, in one line:
    ``workload (8) x cpu (3) x cpus (7) = 168 points``."""
    sizes = {**dims.groups, **dims.profiles, **dims.points}
    points = prod(len(v) for v in sizes.values())
    named = " x ".join(f"{k} ({len(v)})" for k, v in sizes.items()) or "one point"
    return f"{named} = {points:,} point{'s' if points != 1 else ''}"


def check_size(dims: Dimensions) -> None:
    """Reject a grid above :data:`MAX_PROFILES` or :data:`MAX_GRID_POINTS` before any work.

    The counts are upper bounds (equal values such as ``4K`` and ``4096`` merge
    later), computed from the dimensions alone: nothing is composed or listed.
    """
    profiles = prod(len(v) for v in (*dims.groups.values(), *dims.profiles.values()))
    points = profiles * prod(len(v) for v in dims.points.values())
    if profiles > MAX_PROFILES:
        sizes = " x ".join(f"{k} ({len(v)})" for k, v in {**dims.groups, **dims.profiles}.items())
        raise ConfigError(
            f"{sizes}: {profiles:,} profiles, more than {MAX_PROFILES:,}; split the sweep"
        )
    if points > MAX_GRID_POINTS:
        sizes = " x ".join(
            f"{k} ({len(v)})" for k, v in {**dims.groups, **dims.profiles, **dims.points}.items()
        )
        raise ConfigError(
            f"{sizes}: {points:,} points, more than {MAX_GRID_POINTS:,}; split the sweep"
        )


# --------------------------------------------------------------------------- composition
ComposeFn = Callable[[Sequence[str]], DictConfig]


def validated(composer: Composer, config_name: str = "config") -> ComposeFn:
    """Compose with ``composer`` (cached per override tuple) and validate."""

    def compose(overrides: Sequence[str]) -> DictConfig:
        cfg = composer.load(overrides, config_name)
        validate_config(cfg)
        return cfg

    return compose


def _choice(dims: Dimensions, combo: Sequence[str]) -> list[str]:
    return [*dims.fixed, *(f"{k}={v}" for k, v in zip(dims.groups, combo, strict=True))]


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
    dims: Dimensions, compose: ComposeFn, progress: Counter | None = None
) -> list[DictConfig]:
    """One validated config per combination of group options: Hydra's composition, as is."""
    progress = _Uncounted() if progress is None else progress
    configs = []
    for combo in itertools.product(*dims.groups.values()):
        configs.append(compose(_choice(dims, combo)))
        progress.update(1)
    return configs


def _sections(cfg: DictConfig, skip: str) -> dict:
    return {
        k: OmegaConf.to_container(v) if isinstance(v, DictConfig) else v
        for k, v in cfg.items_ex(resolve=False)
        if k not in (skip, "hydra")
    }


def compose_groups(
    dims: Dimensions, compose: ComposeFn, progress: Counter | None = None
) -> list[DictConfig]:
    """One validated config per combination of group options, in ``itertools.product`` order.

    Composition costs ~0.3 s here, and a grid over workloads x CPUs x stages has
    dozens of combinations. So with two or more group dimensions, each option
    is composed once, next to the first option of every other group (1 +
    sum(options - 1) compositions instead of prod(options)), and each
    combination is assembled from those subtrees. That is exact when choosing
    an option changes only its own subtree, which is checked for every option;
    if any option reaches outside its subtree (a ``_global_`` package, a
    defaults list), every combination is composed by Hydra instead.
    """
    progress = _Uncounted() if progress is None else progress
    keys = list(dims.groups)
    if len(keys) < 2:
        return compose_each(dims, compose, progress)
    first = [dims.groups[k][0] for k in keys]
    anchor = compose(_choice(dims, first))
    progress.update(1)
    parts: dict[str, dict[str, DictConfig]] = {k: {first[i]: anchor} for i, k in enumerate(keys)}
    for i, key in enumerate(keys):
        outside = _sections(anchor, skip=key)
        for option in dims.groups[key][1:]:
            cfg = compose(_choice(dims, [*first[:i], option, *first[i + 1 :]]))
            progress.update(1)
            if _sections(cfg, skip=key) != outside:
                # every combination by Hydra instead, then the profiles: the steps from here
                progress.total = progress.n + _combinations(dims) + _profiles(dims)
                return compose_each(dims, compose, progress)
            parts[key][option] = cfg
    base = copy.deepcopy(anchor)
    with open_dict(base):
        del base["hydra"]  # not needed downstream, and the largest node to copy
    configs = []
    for combo in itertools.product(*dims.groups.values()):
        cfg = copy.deepcopy(base)
        with open_dict(cfg):
            for key, option in zip(keys, combo, strict=True):
                cfg[key] = parts[key][option][key]
        validate_config(cfg)
        configs.append(cfg)
        progress.update(1)
    return configs


def reuse_base(compose: ComposeFn, base: DictConfig, dims: Dimensions) -> ComposeFn:
    """A composer that returns ``base`` for the override list Hydra composed it from.

    Hydra composes the run's config (non-sweep overrides, default group
    options) before the sweeper starts; the combination that picks exactly
    those options with the same fixed overrides is the same config.
    """
    parser = OverridesParser.create()
    task = list(base.hydra.overrides.task)
    base_fixed = [o.input_line for o in parser.parse_overrides(task) if not o.is_sweep_override()]
    choices = base.hydra.runtime.choices
    if base_fixed != list(dims.fixed) or any(g not in choices for g in dims.groups):
        return compose
    same = [*dims.fixed, *(f"{g}={choices[g]}" for g in dims.groups)]

    def composer(overrides: Sequence[str]) -> DictConfig:
        if list(overrides) == same:
            validate_config(base)
            return base
        return compose(overrides)

    return composer


_NODE_RULES = {
    IntegerNode: "an integer",
    FloatNode: "a number",
    BooleanNode: "true or false",
    StringNode: "a string",
}


def _leaf_node(cfg: DictConfig, key: str):
    """The value node at ``key``; ConfigError if the key does not exist or is a section."""
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if not isinstance(parent, DictConfig) or leaf not in parent:
        siblings = sorted(parent.keys()) if isinstance(parent, DictConfig) else []
        prefix = f"{parent_key}." if parent_key else ""
        allowed = ", ".join(f"{prefix}{k}" for k in siblings if isinstance(k, str))
        raise ConfigError(f"{key}: unknown key" + (f"; allowed: {allowed}" if allowed else ""))
    node = parent._get_node(leaf)
    if isinstance(node, DictConfig):
        fields = ", ".join(f"{key}.{k}" for k in node.keys())
        raise ConfigError(f"{key}: a section, not a value; sweep one of {fields}")
    return node


def typed_values(probe: DictConfig, key: str, values: Sequence) -> list:
    """Each value as the schema types it at ``key`` (``"2"`` -> 2); ConfigError names the field.

    ``probe`` is a scratch copy of a composed config: values are assigned to it
    one by one, so OmegaConf's structured-config validation does the typing.
    """
    node = _leaf_node(probe, key)
    rule = next((r for t, r in _NODE_RULES.items() if isinstance(node, t)), None)
    typed = []
    for value in values:
        if isinstance(node, BooleanNode) and not isinstance(value, bool | str):
            # OmegaConf turns any number into a bool (2 -> true): asi-answer rejects it too
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        try:
            OmegaConf.update(probe, key, value, merge=False)
        except Exception as exc:  # OmegaConf ValidationError and friends
            if rule is None:
                raise ConfigError(one_line(exc)) from None
            raise ConfigError(f"{key} must be {rule}, got {value!r}") from None
        typed.append(OmegaConf.select(probe, key))
    return typed


def model_values(key: str, values: Sequence) -> np.ndarray:
    """Typed config values of a point dimension as the model's canonical column."""
    name = POINT_KEYS[key]
    if name in SIZE_FIELDS:
        try:
            column = np.array([parse_size(v, key) for v in values], dtype=np.float64)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    elif name in BOOL_PARAMS:
        column = np.array([bool(v) for v in values], dtype=bool)
    else:
        column = np.array(values, dtype=np.float64)
    try:
        check_ranges({name: column}, PARAM_LABELS)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return column


def point_dimensions(probe: DictConfig, dims: Dimensions) -> dict[str, np.ndarray]:
    """Validated, distinct model values per swept point parameter (``4K`` and ``4096`` are one)."""
    columns = {}
    for key, values in dims.points.items():
        column = model_values(key, typed_values(probe, key, values))
        _, first = np.unique(column, return_index=True)
        columns[POINT_KEYS[key]] = column[np.sort(first)]
    return columns


# --------------------------------------------------------------------------- profiles
def _model_sections(cfg: DictConfig) -> dict:
    return {
        k: OmegaConf.to_container(cfg[k], resolve=True)
        if isinstance(cfg[k], DictConfig)
        else cfg[k]
        for k in HASHED_SECTIONS
        if k in cfg
    }


def make_profile(cfg: DictConfig, profile_overrides: str = "") -> Profile:
    """The :class:`Profile` of a composed, validated config."""
    specs = cost_specs(cfg)
    correlations = cost_correlations(cfg)
    return Profile(
        workload=str(cfg.workload.name),
        cpu=str(cfg.cpu.name),
        mitigations=str(cfg.mitigations.name),
        seed=int(cfg.seed),
        samples=int(cfg.samples),
        ghz=float(cfg.cpu.ghz),
        cost_specs=specs,
        cost_profile=cost_profile(cfg.cpu.name, cfg.cpu.ghz, specs, correlations),
        profile_overrides=profile_overrides,
        config_hash=stable_hash(_model_sections(cfg)),
        base_point=point_from_config(cfg),
        correlations=correlations,
    )


def expand_profiles(
    configs: Sequence[DictConfig], dims: Dimensions, probe: DictConfig
) -> list[Profile]:
    """One profile per composed config and combination of profile-dimension values."""
    keys = list(dims.profiles)
    typed = [typed_values(probe, key, dims.profiles[key]) for key in keys]
    profiles = []
    for cfg in configs:
        for combo in itertools.product(*typed):
            variant = cfg
            if keys:  # a copy per combination: the composed config is shared
                variant = copy.deepcopy(cfg)
                with open_dict(variant):
                    for key, value in zip(keys, combo, strict=True):
                        OmegaConf.update(variant, key, value, merge=False)
                validate_config(variant)
            label = " ".join(f"{k}={v}" for k, v in zip(keys, combo, strict=True))
            profiles.append(make_profile(variant, label))
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
    loader = composer.loader()
    parser = OverridesParser.create(config_loader=loader)
    parsed = merge_by_key(parse(overrides, parser))
    dims = classify(parsed, lambda key: loader.get_group_options(key))
    check_interpolations(parsed, dims)
    check_size(dims)
    compose = validated(composer, config_name)
    if base is not None:
        compose = reuse_base(compose, base, dims)
    # Every value is checked on the first combination before the others are composed (the
    # slow part: the composer caches this one), so bad input is refused before the plan is
    # said and the progress starts.
    first = compose(_choice(dims, [options[0] for options in dims.groups.values()]))
    check_strict_bools(first, dims.fixed)  # as asi-answer: no numbers for booleans
    probe = copy.deepcopy(first)
    columns = point_dimensions(probe, dims)
    expand_profiles([first], dims, probe)
    progress = planner(dims, expansion_steps(dims)) if planner else None
    progress = _Uncounted() if progress is None else progress
    configs = compose_groups(dims, compose, progress)
    profiles = expand_profiles(configs, dims, probe)
    tables = []
    for i, profile in enumerate(profiles):
        tables.append(profile_points(i, profile, columns))
        progress.update(1)
    points = drop_duplicate_ids(pa.concat_tables(tables))
    return Grid(profiles=profiles, points=points, swept=tuple(columns))
