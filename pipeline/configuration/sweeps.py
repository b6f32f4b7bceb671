"""Sweep overrides: Hydra's grammar, classified into a grid's dimensions and checked.

The overrides are Hydra's own (``a=1,2,3``, ``range()``, ``choice()``,
``glob()`` over config groups), parsed by ``hydra.core.override_parser`` and
merged per key as each job of Hydra's BasicSweeper applies them
(:func:`merge_by_key`). They split into three kinds (:func:`classify`):

* **group dimensions** (``workload``, ``cpu``, ``mitigations``): each combination
  of their options is one composition (:mod:`pipeline.sweep.grid`);
* **point dimensions**: scalars that are model point parameters
  (``cpus``, ``ephmap.slots``, ``workload.file_size``, ``mitigations.<flag>``,
  ``cpu.ibpb``...): they become columns of the grid, never a composition;
* **profile dimensions**: other scalars of the model's configs
  (``cpu.costs.ibpb.high``, ``cpu.ghz``, ``seed``, ``samples``...): they change
  the cost draws, so each combination is its own profile.

Every distinct value is validated once (type against the structured-config
schema, :func:`typed_values`; range with :func:`model.params.check_ranges`,
sizes with :func:`model.units.parse_size`, :func:`model_values`) before
anything runs; the refusals (``docs/configuration.md`` lists each, with its
reason) are one-line :class:`~pipeline.configuration.errors.ConfigError`
naming the override or the field and what is allowed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from math import prod

import numpy as np
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, QuotedString, RangeSweep
from omegaconf import DictConfig, OmegaConf
from omegaconf.nodes import BooleanNode, FloatNode, IntegerNode, StringNode

from asi_slowdown.model.params import BOOL_PARAMS, check_ranges
from asi_slowdown.model.units import parse_size
from asi_slowdown.pipeline.configuration.compose import check_deleted_keys, check_override_syntax
from asi_slowdown.pipeline.configuration.errors import ConfigError, one_line
from asi_slowdown.pipeline.configuration.profile import PARAM_LABELS
from asi_slowdown.pipeline.configuration.schema import SIZE_FIELDS

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

MAX_SWEEP_VALUES = 100_000
"""Values one ``range()`` may give: more is a typo (``range(1,100000000)``), caught before
the values are listed (a billion-value range would hang the planner)."""

MAX_PROFILES = 10_000
"""Profiles (compositions x profile-dimension combinations) one sweep may have: each holds
its own cost draws (~140 KB at 1024 samples) in the Ray object store."""

MAX_GRID_POINTS = 10_000_000
"""Points one sweep may have (the nightly grid has ~2.3e5): bounds the planner's memory
(ids, columns) and catches a typo before composing anything."""


def sweeper_params(params: Mapping | None) -> list[str]:
    """``hydra.sweeper.params`` as overrides (they come before the command line's)."""
    return [f"{key}={value}" for key, value in (params or {}).items()]


def check_params_override(overrides: Sequence[str]) -> None:
    """Refuse ``hydra.sweeper.params={...}`` in one line (Hydra's composition cannot merge it)."""
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key == "hydra.sweeper.params":
            raise ConfigError(
                f"{override}: Hydra cannot replace hydra.sweeper.params as a whole; give each "
                "sweep on its own (cpus=1,2 or +hydra.sweeper.params.cpus='1,2')"
            )


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
    """The overrides that decide each key, as every job of Hydra's own sweeper applies them.

    Hydra keeps one override per spelling of a key (``cpus``, ``++cpus``, ``+cpus``,
    ``~cpus`` are four): the last one given, at the place of the first. Each job then
    applies them in that order. Per config path, so:

    * a sweep followed by another override of its key decides nothing: every job
      ends with the later one (``cpus=1,2 ++cpus=3`` is ``cpus=3``, and so is
      ``cpus=1,2 ++cpus=3 cpus=4``; ``cpus=1,2 ~cpus`` deletes it);
    * a sweep that comes last decides the key; what came before it is overwritten,
      but an add (``+cpus=3``) of a key that is there fails in every job, so it is kept
      for the composition to refuse, as Hydra does;
    * a key without a sweep keeps all its overrides, in order: the composition applies
      them as a job does (``~cpus +cpus=3`` deletes, then adds back);
    * a deleted key cannot be set until it is added back (``~cpus cpus=1,2``: Hydra fails
      every job, ``cpus: unknown key``): refused in one line naming the deletion
      (:func:`~pipeline.configuration.compose.check_deleted_keys`).
    """
    spelled: dict[str, Override] = {}
    for override in overrides:
        spelled[override.get_key_element()] = override  # a dict keeps the first position
    by_key: dict[tuple, list[Override]] = {}
    for override in spelled.values():
        by_key.setdefault(_key(override), []).append(override)
    kept: set[int] = set()
    for ops in by_key.values():
        kept.update(id(o) for o in _deciding(ops))
    last = {_key(o): i for i, o in enumerate(spelled.values())}
    ordered = sorted(spelled.values(), key=lambda o: last[_key(o)])  # stable: in order per key
    return [o for o in ordered if id(o) in kept]


def _deciding(ops: Sequence[Override]) -> list[Override]:
    """The overrides of one key (in a job's order) that decide it; see :func:`merge_by_key`."""
    check_deleted_keys(ops)
    present, adds_when_there = True, []
    for op in ops:
        if op.is_delete():
            present = False
        elif op.is_add() or op.is_force_add():
            if op.is_add() and present:
                adds_when_there.append(op)  # fails in Hydra's jobs: the composition says so
            present = True
    sweeps = [i for i, op in enumerate(ops) if op.is_sweep_override()]
    if not sweeps:
        return list(ops)
    if sweeps[-1] != len(ops) - 1:  # later overrides decide every job: no dimension
        return [op for op in ops if not op.is_sweep_override()]
    return [*adds_when_there, ops[-1]]


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
        values = [] if too_many else list(override.sweep_iterator())
        if is_group and not too_many:  # options by name, as Hydra's jobs choose them
            values = [
                v if isinstance(v, QuotedString) else name
                for v, name in zip(values, override.sweep_string_iterator(), strict=True)
            ]
    except (ValueError, TypeError, OverflowError) as exc:  # range(1,5,0), range(1,nan)
        raise ConfigError(f"{key}: {text} is not a valid sweep: {exc}") from None
    if too_many:
        raise ConfigError(
            f"{key}: {text} gives more than {MAX_SWEEP_VALUES:,} values; "
            "a sweep that large is a typo or needs splitting"
        )
    if not values:
        raise ConfigError(f"{key}: {text} gives no value: the grid is empty")
    # 'quoted' values compose to what they spell, as in Hydra's own jobs ('2' -> 2 for an int,
    # 'fork_exec' -> the option fork_exec)
    values = [v.text if isinstance(v, QuotedString) else v for v in values]
    unhashable = [v for v in values if not _hashable(v)]
    if unhashable:  # [1,2],[3]: lists and dicts are not one value of a scalar
        raise ConfigError(f"{key}: a sweep takes single values, got {unhashable[0]!r} in {text}")
    # distinct by type and value, in the order given: 1 == 1.0 == True in Python, and each is
    # validated on its own (true,1 and 1,true are refused alike: 1 is not a bool)
    return list({(type(v), v): v for v in values}.values())


def classify(
    overrides: Sequence[Override],
    group_options: Callable[[str], list[str]],
    sweepable: Sequence[str],
) -> Dimensions:
    """Split overrides into fixed ones (passed to composition) and the three kinds of dimension.

    ``sweepable`` are the config groups a sweep may range over (the grid's labels,
    :data:`pipeline.sweep.grid.MODEL_GROUPS`).
    """
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
            if key not in sweepable:
                raise ConfigError(
                    f"{key}: this group cannot be swept; sweepable groups: {', '.join(sweepable)}"
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
                f"{key}: cannot be swept; sweepable: the groups {', '.join(sweepable)} "
                f"and the model's scalars under {', '.join(MODEL_ROOTS)}"
            )
        values = _sweep_values(override, is_group=False)
        (points if key in POINT_KEYS else profiles)[key] = values
    return Dimensions(tuple(fixed), groups, points, profiles)


def dimensions(overrides: Sequence[str], loader, sweepable: Sequence[str]) -> Dimensions:
    """Parse, merge (:func:`merge_by_key`), classify and check sweep ``overrides``: the
    grid's :class:`Dimensions`, before anything is composed. ``loader`` is Hydra's config
    loader (``glob()`` over a group lists its options)."""
    parsed = merge_by_key(parse(overrides, OverridesParser.create(config_loader=loader)))
    dims = classify(parsed, loader.get_group_options, sweepable)
    check_interpolations(parsed, dims)
    check_size(dims)
    return dims


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
