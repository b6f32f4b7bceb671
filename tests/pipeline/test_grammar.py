"""The sweeper's grid against Hydra's own expansion, on generated override sets.

Hydra's BasicSweeper turns sweep overrides into jobs, and each job's config
is the base config with that job's overrides applied. For scalar sweeps the
same can be computed without composing: the base config once, then Hydra's
own override application per job (``ConfigLoaderImpl._apply_overrides_to_config``,
what its composition does after loading the defaults). The grid must hold
exactly those jobs' points, or refuse the set in one line for a documented
reason: a number given for a boolean (OmegaConf would read 1 as true), or an
interpolation of a swept key (Hydra resolves it per job).
"""

from __future__ import annotations

import copy

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.configuration.compose import composer
from pipeline.configuration.errors import ConfigError
from pipeline.configuration.profile import point_from_config
from pipeline.sweep.grid import build_grid

COMPARED = ("cpus", "ephmap_slots", "file_size", "ephmap")
"""The point parameters the generated overrides vary."""

VALUES = {
    "cpus": ["1,2", "'1','2'", "range(1,4)", "choice(2,4)", "2", "2,2,1", "'3'"],
    "ephmap.slots": ["1,2", "2", "range(1,3)", "'2',4", "4,'4'"],
    "mitigations.ephmap": ["true,false", "false", "true,1", "1,true", "'true',false", "0"],
    "workload.file_size": ["4K,4096", "1M", "64M,1G", "'4K',8K", "1G,1024M"],
}
EXTRAS = ["++cpus=3", "cpus=4", "ephmap.slots=${cpus}", "+hydra.sweeper.params.cpus='2,4'"]
"""Overrides that interact with the others: a forced value after a sweep, a later plain
value of a swept key, an interpolation, a sweep given as a sweeper parameter."""

DOCUMENTED_REFUSALS = ("must be true or false, got", "interpolates the swept key")


@st.composite
def override_sets(draw) -> list[str]:
    keys = draw(st.lists(st.sampled_from(sorted(VALUES)), min_size=1, max_size=4, unique=True))
    overrides = [f"{k}={draw(st.sampled_from(VALUES[k]))}" for k in keys]
    overrides += draw(st.lists(st.sampled_from(EXTRAS), max_size=2, unique=True))
    return draw(st.permutations(overrides))


def as_command_line(overrides: list[str]) -> list[str]:
    """``+hydra.sweeper.params.k='v'`` entries as the sweeps they are (first), then the rest."""
    params = [
        f"{o.split('=', 1)[0].removeprefix('+hydra.sweeper.params.')}={o.split('=', 1)[1][1:-1]}"
        for o in overrides
        if o.startswith("+hydra.sweeper.params.")
    ]
    return [*params, *(o for o in overrides if not o.startswith("+hydra."))]


def hydra_points(overrides: list[str]):
    """The points of the jobs Hydra's BasicSweeper makes of ``overrides``; None if it refuses."""
    parser = OverridesParser.create(config_loader=composer().loader())
    try:
        (batch,) = BasicSweeper.split_arguments(
            parser.parse_overrides(as_command_line(overrides)), None
        )
    except Exception:
        return None
    base = composer().load([])
    points = set()
    for job in batch:
        job_cfg = copy.deepcopy(base)
        try:
            ConfigLoaderImpl._apply_overrides_to_config(parser.parse_overrides(job), job_cfg)
            point = point_from_config(job_cfg)
        except Exception:
            return None
        points.add(tuple(float(point[k]) for k in COMPARED))
    return points


def grid_points(grid) -> set:
    rows = grid.points.to_pylist()
    out = set()
    for row in rows:
        point = {**grid.profiles[row["profile"]].base_point, **row}
        out.add(tuple(float(point[k]) for k in COMPARED))
    return out


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(overrides=override_sets())
def test_the_grid_is_hydras_own_expansion_or_a_documented_refusal(overrides):
    expected = hydra_points(overrides)
    try:
        grid = build_grid(as_command_line(overrides), composer())
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message
        assert expected is None or any(r in message for r in DOCUMENTED_REFUSALS), (
            overrides,
            message,
        )
        return
    assert expected is not None, f"Hydra refuses {overrides}, the grid accepts it"
    assert grid_points(grid) == expected, overrides


@pytest.mark.parametrize(
    ("overrides", "points"),
    [
        (["cpus=1,2", "++cpus=3"], {3}),
        (["++cpus=3", "cpus=1,2"], {1, 2}),
        (["cpus='1','2'"], {1, 2}),
        (["cpus=1,2", "cpus=4"], {4}),
        (["cpus=1,2", "++cpus=3", "cpus=4"], {3}),  # Hydra: one override per spelling
    ],
)
def test_known_disagreements_are_gone(overrides, points):
    grid = build_grid(overrides, composer())
    assert {c for c, *_ in grid_points(grid)} == points


def test_numbers_for_booleans_are_refused_whatever_the_order():
    for overrides in (["mitigations.ephmap=true,1"], ["mitigations.ephmap=1,true"]):
        with pytest.raises(ConfigError, match=r"^mitigations.ephmap must be true or false, got 1$"):
            build_grid(overrides, composer())
