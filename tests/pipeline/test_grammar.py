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
from pathlib import Path

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asi_slowdown.pipeline.configuration.compose import composer
from asi_slowdown.pipeline.configuration.errors import ConfigError
from asi_slowdown.pipeline.configuration.profile import point_from_config
from asi_slowdown.pipeline.sweep.grid import build_grid

COMPARED = ("cpus", "ephmap_slots", "file_size", "ephmap")
"""The point parameters the generated overrides vary."""

VALUES = {
    "cpus": ["1,2", "'1','2'", "range(1,4)", "choice(2,4)", "2", "2,2,1", "'3'"],
    "ephmap.slots": ["1,2", "2", "range(1,3)", "'2',4", "4,'4'"],
    "mitigations.ephmap": ["true,false", "false", "true,1", "1,true", "'true',false", "0"],
    "workload.file_size": ["4K,4096", "1M", "64M,1G", "'4K',8K", "1G,1024M"],
}
EXTRAS = [
    "++cpus=3",
    "cpus=4",
    "ephmap.slots=${cpus}",
    "+hydra.sweeper.params.cpus='2,4'",
    "~cpus",
    "+cpus=3",
    "~ephmap.slots=2",
]
"""Overrides that interact with the others: a forced value after a sweep, a later plain
value of a swept key, an interpolation, a sweep given as a sweeper parameter, a deletion
(with a value: only if the key has it), an add of a key that is there."""

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
    max_examples=50,  # derandomized: the same 50 sets each run (200 also agreed, in four times the time)
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


# --------------------------------------------------------------------------- the command line
def hydra_jobs(overrides: list[str]) -> list[object]:
    """Each job of Hydra's BasicSweeper composed as Hydra composes it: the config, or the
    exception Hydra fails that job with."""
    from hydra.types import RunMode

    loader = composer().loader()
    parser = OverridesParser.create(config_loader=loader)
    (batch,) = BasicSweeper.split_arguments(parser.parse_overrides(overrides), None)
    jobs = []
    for job in batch:
        try:
            jobs.append(loader.load_configuration("config", job, run_mode=RunMode.RUN))
        except Exception as exc:  # Hydra fails this job
            jobs.append(exc)
    return jobs


def asi_sweep_refuses(overrides: list[str], capsys) -> str:
    """``asi-sweep``'s one ``error:`` line and exit 2, before Ray is started."""
    from asi_slowdown.pipeline.cli.sweep import main

    with pytest.raises(SystemExit) as done:
        main([*overrides, "sweep.progress=false", "store.path=/nonexistent/store"])
    err = capsys.readouterr().err
    assert done.value.code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err.removeprefix("error: ").rstrip("\n")


def test_deleting_a_key_every_job_needs_is_one_line_exit_2(capsys):
    """``asi-sweep -m '~cpus'`` ended in an OmegaConf traceback and exit 1. Hydra runs its one
    job without ``cpus``, which no command can use: refused, naming the override."""
    (job,) = hydra_jobs(["~cpus"])
    assert "cpus" not in job
    message = asi_sweep_refuses(["~cpus"], capsys)
    assert (
        message == "~cpus: cpus cannot be deleted, every command needs it; set it with cpus=VALUE"
    )


@pytest.mark.parametrize(
    "overrides",
    [
        ["~cpus", "cpus=1,2"],
        ["~cpus", "cpus=3"],
        ["~cpus", "mitigations=rfc_v2,multi_slot", "cpus=1,2"],
    ],
)
def test_a_deleted_key_set_again_fails_as_every_hydra_job_does(overrides, capsys):
    """``asi-sweep -m '~cpus' cpus=1,2`` silently ran 2 points where Hydra fails every job
    (a deleted key cannot be set, only added back)."""
    assert all(isinstance(job, Exception) for job in hydra_jobs(overrides))
    message = asi_sweep_refuses(overrides, capsys)
    assert message.startswith("~cpus: deletes cpus, and cpus=")
    assert "Hydra fails every job so: cpus: unknown key" in message


@pytest.mark.parametrize(
    ("overrides", "cpus"),
    [
        (["~cpus", "++cpus=1,2"], {1, 2}),  # deleted, then added back by each job
        (["~cpus", "+cpus=3", "cpus=1,2"], {1, 2}),
        (["~cpus", "+cpus=3"], {3}),
        (["cpus=1,2", "~cpus", "++cpus=5"], {5}),
        (["~cpus", "++cpus=4", "cpus=1,2"], {1, 2}),
    ],
)
def test_a_deleted_key_added_back_is_hydras_value(overrides, cpus):
    jobs = hydra_jobs(overrides)
    assert {job.cpus for job in jobs} == cpus
    grid = build_grid(overrides, composer())
    assert {c for c, *_ in grid_points(grid)} == cpus


@pytest.mark.parametrize(
    "overrides",
    [
        ["workload='kernel_compile','fork_exec'"],
        ['workload="kernel_compile",fork_exec'],
        ["workload=kernel_compile,'fork_exec'", "cpu='amd_zen4',sapphire_rapids"],
        ["mitigations=choice('rfc_v2',multi_slot)"],
    ],
)
def test_quoted_group_options_are_the_options_they_spell_as_in_hydra(overrides):
    """``asi-sweep -m "workload='kernel_compile','fork_exec'"`` was refused as an unknown
    option; in Hydra's jobs (and the project's scalar sweeps) a quoted value is what it spells."""
    chosen = {
        (job.workload.name, job.cpu.name, job.mitigations.name) for job in hydra_jobs(overrides)
    }
    grid = build_grid(overrides, composer())
    assert {(p.workload, p.cpu, p.mitigations) for p in grid.profiles} == chosen


REFUSALS = "## What asi-sweep refuses"
"""The section of docs/configuration.md that lists every deliberate refusal, with its reason."""


def documented_refusals() -> str:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    return docs.split(REFUSALS)[1].split("\n## ")[0]


@pytest.mark.parametrize(
    ("overrides", "message", "documented"),
    [
        (["+foo=1,2"], "+foo=1,2: a sweep cannot add, delete or re-package keys", "`+key=a,b`"),
        (["+cpus=1,2"], "+cpus=1,2: a sweep cannot add, delete or re-package keys", "`+key=a,b`"),
        (["~cpus=1,2"], "~cpus=1,2: a sweep cannot add, delete or re-package keys", "`~key=a,b`"),
        (
            ["ephmap={slots:1},{slots:2}"],
            "ephmap: a sweep takes single values, got {'slots': 1}",
            "`ephmap={slots:1},{slots:2}`",
        ),
        (["cpus=[1,2],[4]"], "cpus: a sweep takes single values, got [1, 2]", "`cpus=[1,2],[4]`"),
        (["cpus=interval(1,4)"], "cpus: interval(1,4) is not a list of values", "`interval()`"),
        (
            ["kernel=linux_6_2,linux_6_17"],
            "kernel: this group cannot be swept",
            "`kernel=linux_6_2,linux_6_17`",
        ),
        (["store.part_rows=10,20"], "store.part_rows: cannot be swept", "`store.part_rows=10,20`"),
        (
            ["hydra.sweeper.params={cpus: 1}"],
            "hydra.sweeper.params={cpus: 1}: Hydra cannot",
            "`hydra.sweeper.params={...}`",
        ),
        (["mitigations.ephmap=1,0"], "mitigations.ephmap must be true or false", "boolean"),
        (
            ["cpus=1,2", "ephmap.slots=${cpus}"],
            "ephmap.slots: ${cpus} interpolates",
            "interpolation",
        ),
        (["~cpus"], "~cpus: cpus cannot be deleted", "`~cpus`"),
        (["~cpus", "cpus=1,2"], "~cpus: deletes cpus, and cpus=1,2", "`~cpus cpus=1,2`"),
    ],
)
def test_every_deliberate_refusal_is_one_line_exit_2_and_documented(
    overrides, message, documented, capsys
):
    """What the grid sweeper refuses on purpose: one line naming the override, exit 2,
    nothing run; docs/configuration.md lists each with its reason."""
    assert asi_sweep_refuses(overrides, capsys).startswith(message)
    assert documented in documented_refusals(), overrides
