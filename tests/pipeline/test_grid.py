"""Grid expansion: override grammar, dimensions, point ids, validation (no Ray)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml

from asi_slowdown.model.evaluate import evaluate
from asi_slowdown.model.params import POINT_PARAMS
from asi_slowdown.pipeline.configuration.compose import (
    CONF_DIR,
    USER_CONFIG_ENV,
    compose_config,
    composer,
    packaged_options,
)
from asi_slowdown.pipeline.configuration.errors import ConfigError
from asi_slowdown.pipeline.configuration.profile import model_profile, point_from_config
from asi_slowdown.pipeline.configuration.sweeps import dimensions_text
from asi_slowdown.pipeline.store.identity import point_ids
from asi_slowdown.pipeline.store.schema import METRIC_COLUMNS
from asi_slowdown.pipeline.sweep.chunks import (
    ROW_SCHEMA,
    chunk_size,
    evaluate_chunk,
    iter_batches,
    iter_chunks,
)
from asi_slowdown.pipeline.sweep.grid import build_grid

STAGES = sorted(p.stem for p in (CONF_DIR / "mitigations").glob("*.yaml"))
VALIDATION_LOOPS = {"lseek1_loop", "sys_time_loop", "outl_to_kernel"}
"""Single-mechanism loops of conf/validation/default_mitigations.yaml: the experiment grids
leave them out (``glob(*,exclude=[...])``), as they leave out the phases of published runs."""
NOT_SWEPT_PREFIXES = ("kbuild_", "guest_posting_")
ALL_WORKLOADS = sorted(p.stem for p in (CONF_DIR / "workload").glob("*.yaml"))
WORKLOADS = [
    w for w in ALL_WORKLOADS if w not in VALIDATION_LOOPS and not w.startswith(NOT_SWEPT_PREFIXES)
]
SWEPT_WORKLOADS = WORKLOADS
"""What the presets sweep: neither the phases of published runs nor the validation loops."""


@pytest.fixture
def loader():
    """The process's composer (Hydra's config loader over the packaged conf/, cached)."""
    return composer()


def grid_frame(grid):
    return grid.points.to_pandas()


def test_acceptance_grid_has_every_combination_once(loader):
    grid = build_grid(
        ["cpus=1,2,4,8", "workload.file_size=64M,1G", "ephmap.slots=1,2", "mitigations=glob(*)"],
        loader,
    )
    assert len(grid) == 4 * 2 * 2 * len(STAGES)
    assert sorted(p.mitigations for p in grid.profiles) == STAGES
    assert set(grid.swept) == {"cpus", "file_size", "ephmap_slots"}
    frame = grid_frame(grid)
    assert frame["point_id"].is_unique
    assert sorted(frame["file_size"].unique()) == [64 << 20, 1 << 30]
    combos = frame.groupby("profile")[["cpus", "file_size", "ephmap_slots"]].apply(
        lambda g: len(g.drop_duplicates())
    )
    assert (combos == 16).all()


def test_point_ids_ignore_override_order_and_spelling(loader):
    a = build_grid(["cpus=1,2", "workload.io_size=4K,8K"], loader)
    b = build_grid(["workload.io_size=8192,4096", "cpus=2,1"], loader)
    assert set(a.points["point_id"].to_pylist()) == set(b.points["point_id"].to_pylist())


def test_same_size_twice_is_one_point(loader):
    grid = build_grid(["workload.file_size=1G,1024M,1073741824"], loader)
    assert len(grid) == 1


def test_point_id_depends_on_seed_samples_and_model_version(loader):
    ids = {
        tuple(build_grid(["cpus=1,2", *extra], loader).points["point_id"].to_pylist())
        for extra in ([], ["seed=1"], ["samples=64"])
    }
    assert len(ids) == 3
    profile = build_grid([], loader).profiles[0]
    bumped = dataclasses.replace(profile, model_version="999")
    record = np.ones((1, len(POINT_PARAMS)))
    assert point_ids(profile.id_prefix(), record) != point_ids(bumped.id_prefix(), record)


def test_range_choice_and_glob_exclude(loader):
    grid = build_grid(
        ["cpus=range(1,4)", "ephmap.slots=choice(1,3)", "mitigations=glob(*,exclude=rfc*)"], loader
    )
    assert len(grid) == 3 * 2 * (len(STAGES) - 1)
    assert "rfc_v2" not in {p.mitigations for p in grid.profiles}


def test_each_mitigation_flag_alone(loader):
    grid = build_grid(["mitigations=rfc_v2", "mitigations.cr3_noflush=true,false"], loader)
    assert sorted(grid_frame(grid)["cr3_noflush"]) == [False, True]
    assert {p.mitigations for p in grid.profiles} == {"rfc_v2"}


def test_correlations_are_part_of_the_cost_profile(loader):
    plain = build_grid(["cpus=1,2"], loader)
    correlated = build_grid(
        ["cpus=1,2", "cpu.correlations=[{a: page_walk, b: ibpb, rho: -0.7}]"], loader
    )
    (p,), (c,) = plain.profiles, correlated.profiles
    assert p.correlations == () and c.correlations == (("page_walk", "ibpb", -0.7),)
    assert p.cost_profile != c.cost_profile
    assert set(grid_frame(plain).point_id).isdisjoint(grid_frame(correlated).point_id)
    drawn, before = c.costs(), p.costs()
    np.testing.assert_array_equal(drawn["invlpg"], before["invlpg"])
    assert not np.array_equal(drawn["ibpb"], before["ibpb"])
    zero = build_grid(["cpus=1,2", "cpu.correlations=[{a: page_walk, b: ibpb, rho: 0}]"], loader)
    assert zero.profiles[0].cost_profile == p.cost_profile  # a zero changes nothing


def test_group_dimensions_compose_each_combination(loader):
    grid = build_grid(["workload=glob(*)", "cpu=glob(*)", "cpus=1,2"], loader)
    cpus = sorted(p.stem for p in (CONF_DIR / "cpu").glob("*.yaml"))
    assert len(grid.profiles) == len(ALL_WORKLOADS) * len(cpus)
    assert {(p.workload, p.cpu) for p in grid.profiles} == {
        (w, c) for w in ALL_WORKLOADS for c in cpus
    }
    assert len(grid) == 2 * len(grid.profiles)


def test_cost_distribution_overrides_make_their_own_profiles(loader):
    grid = build_grid(["cpu.costs.ibpb.high=20000,40000", "cpu.ibpb=true,false"], loader)
    assert len(grid.profiles) == 2 and len(grid) == 4
    assert len({p.cost_profile for p in grid.profiles}) == 2
    assert {p.profile_overrides for p in grid.profiles} == {
        "cpu.costs.ibpb.high=20000.0",
        "cpu.costs.ibpb.high=40000.0",
    }
    assert grid.profiles[0].costs()["ibpb"].max() < grid.profiles[1].costs()["ibpb"].max()


def test_sweeper_params_then_command_line_win(loader):
    params = ["cpus=1,2,4", "ephmap.slots=1,2"]
    grid = build_grid([*params, "cpus=8"], loader)
    assert sorted(set(grid_frame(grid)["ephmap_slots"])) == [1, 2]
    assert len(grid) == 2
    assert grid.profiles[0].base_point["cpus"] == 8


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["cpus=0,1"], "cpus must be an integer >= 1, got 0"),
        (["cpus=a,b"], "cpus must be an integer, got 'a'"),
        (["ephmap.slots=0,2"], "ephmap.slots must be an integer >= 1"),
        (["workload.file_size=64X,1G"], "workload.file_size must be a size like 4K, 64M or 1G"),
        (
            ["workload.nope=1,2"],
            "workload.nope: unknown key; allowed: workload.base_kernel_share, workload.base_time",
        ),
        (["bogus=1,2"], "bogus: cannot be swept"),
        (["store.path=a,b"], "store.path: cannot be swept"),
        (["workload=nope,fio_randread_tmpfs"], "workload: unknown option 'nope'; allowed: "),
        (["mitigations=glob(zz*)"], "mitigations: glob(zz*) gives no value: the grid is empty"),
        (["cpus=range(4,1)"], "cpus: range(4,1) gives no value"),
        (["mitigations.ephmap=maybe,true"], "mitigations.ephmap must be true or false"),
        (["workload.io_fault_fraction=0.5,2"], "must be a number between 0 and 1, got 2"),
        (["cpu.costs.ibpb.high=1,2"], "cpu.costs.ibpb.high must be >= low"),
        (["cpu.costs.ibpb=1,2"], "cpu.costs.ibpb: a section, not a value"),
        (["cpus=interval(1,2)"], "cpus: interval(1,2) is not a list of values"),
        (["seed=-1,2"], "seed must be an integer >= 0, got -1"),
        (["roadmap=default,default"], "roadmap: this group cannot be swept"),
        (["cpus=[1,2"], "override 'cpus=[1,2' is malformed"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(loader, overrides, message):
    with pytest.raises(ConfigError) as info:
        build_grid(overrides, loader)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_chunks_cover_every_row_once_and_never_span_profiles(loader):
    grid = build_grid(["cpus=1,2,3", "mitigations=rfc_v2,multi_slot,cr3_noflush"], loader)
    for size in (1, 2, 4, 100):
        chunks = list(iter_chunks(grid.points, size))
        ids = [pid for c in chunks for pid in c.point_ids]
        assert sorted(ids) == sorted(grid.points["point_id"].to_pylist())
        for c in chunks:
            assert c.points.num_rows <= size
            assert set(c.points["profile"].to_pylist()) == {c.profile}


def test_batches_gather_whole_chunks_in_order_up_to_the_size(loader):
    """A task's batch: consecutive chunks, none split, at most `size` points unless one chunk
    is larger; small profiles share a task (9 profiles of 3 points here)."""
    grid = build_grid(["cpus=1,2,3", "mitigations=glob(*)"], loader)
    assert len(grid.profiles) == 9
    for chunk_rows, size in ((1, 1), (2, 5), (3, 7), (3, 27), (100, 4)):
        chunks = list(iter_chunks(grid.points, chunk_rows))
        batches = list(iter_batches(iter(chunks), size))
        assert [c for b in batches for c in b.chunks] == chunks
        for b in batches:
            assert b.num_rows <= size or len(b.chunks) == 1
            assert b.point_ids == [pid for c in b.chunks for pid in c.point_ids]
            assert b.profiles == list(dict.fromkeys(c.profile for c in b.chunks))
        # greedy: a batch is cut only when the next chunk would not fit
        for b, after in zip(batches, batches[1:], strict=False):
            assert b.num_rows + after.chunks[0].points.num_rows > size
    assert len(list(iter_batches(iter(iter_chunks(grid.points, 3)), 27))) == 1


@pytest.mark.parametrize(
    ("n", "workers", "pps", "seconds", "cap", "expected"),
    [
        (10**6, 2, 10_000, 1.0, 20_000, 10_000),  # time-bound
        (100, 2, 10_000, 1.0, 20_000, 13),  # balance-bound: 4 chunks per worker
        (10**6, 2, 1e6, 1.0, 20_000, 20_000),  # memory cap
        (5, 8, 1.0, 0.1, 20_000, 1),  # never 0
    ],
)
def test_chunk_size(n, workers, pps, seconds, cap, expected):
    assert chunk_size(n, workers, pps, seconds, cap) == expected


def test_chunk_rows_match_the_model_on_the_composed_config(loader):
    """The grid's rows agree with composing each point alone (asi-answer's path)."""
    grid = build_grid(["cpus=1,4", "mitigations=rfc_v2,multi_slot", "samples=64"], loader)
    for chunk in iter_chunks(grid.points, 1000):
        profile = grid.profiles[chunk.profile]
        rows = evaluate_chunk(chunk.points, profile, profile.costs())
        assert rows.schema == ROW_SCHEMA
        for row in rows.to_pylist():
            cfg = compose_config(
                [f"mitigations={row['mitigations']}", f"cpus={row['cpus']}", "samples=64"]
            )
            expected = evaluate(
                {k: np.array([v]) for k, v in point_from_config(cfg).items()},
                model_profile(cfg).costs(),
            )
            for name in METRIC_COLUMNS:
                assert row[name] == expected[name][0], name


@pytest.mark.parametrize(
    ("preset", "low", "high"), [("default", 5_000, 50_000), ("nightly", 10**5, 10**6)]
)
def test_experiment_presets_are_valid_grids_of_the_promised_size(loader, preset, low, high):
    """Counts points from the preset's dimensions (composing all 84 combinations takes ~30 s)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    from asi_slowdown.pipeline.configuration.sweeps import (
        classify,
        merge_by_key,
        parse,
        point_dimensions,
        sweeper_params,
    )
    from asi_slowdown.pipeline.sweep.grid import MODEL_GROUPS

    cfg = loader.loader().load_configuration(
        "config", [f"experiment={preset}"], run_mode=RunMode.MULTIRUN
    )
    params = sweeper_params(cfg.hydra.sweeper.params)
    overrides = merge_by_key(parse(params, OverridesParser.create(config_loader=loader.loader())))
    dims = classify(overrides, loader.loader().get_group_options, MODEL_GROUPS)
    assert set(dims.groups) == {"workload", "cpu", "mitigations"}
    assert dims.groups["workload"] == SWEPT_WORKLOADS and dims.groups["mitigations"] == STAGES
    columns = point_dimensions(cfg.copy(), dims)  # validates every value once
    combos = np.prod([len(v) for v in dims.groups.values()])
    points = combos * np.prod([len(c) for c in columns.values()])
    assert low <= points <= high


def test_the_expansion_says_what_it_expands_before_composing_then_counts_every_step(
    loader, monkeypatch, capsys
):
    """``asi-sweep experiment=default`` printed nothing for its first 12-19 s: composing.
    The planner hears the dimensions once the first combination is composed (every value is
    checked on it, so bad input is refused before anything is said); every step is counted."""
    import io

    import asi_slowdown.pipeline.sweep.grid as grid_module
    from asi_slowdown.pipeline.execution.progress import LineProgress
    from asi_slowdown.pipeline.sweep.grid import expansion_steps

    composed: list[tuple] = []
    real = grid_module.validated

    def counting(*args):
        compose = real(*args)
        return lambda overrides: composed.append(tuple(overrides)) or compose(overrides)

    monkeypatch.setattr(grid_module, "validated", counting)
    log = io.StringIO()
    planned = []

    def planner(dims, steps):
        planned.append((dimensions_text(dims), steps, len(composed)))
        return LineProgress(steps, log, desc="asi-sweep: grid", unit="steps", percent=50)

    overrides = ["workload=fio_randread_tmpfs,kernel_compile", "mitigations=rfc_v2,multi_slot",
                 "cpu.costs.ibpb.high=5000,20000", "cpus=1,2,4"]  # fmt: skip
    grid = build_grid(overrides, loader, planner=planner)
    ((said, steps, before),) = planned
    assert said == (
        "workload (2) x mitigations (2) x cpu.costs.ibpb.high (2) x cpus (3) = 24 points"
    )
    assert before == 1 and len(grid) == 24
    assert steps == 3 + 4 + 8  # 3 compositions, 4 combinations assembled, 8 profiles' points
    lines = log.getvalue().splitlines()
    assert lines[-1].startswith(f"asi-sweep: grid: {steps}/{steps} steps (100 %)"), lines
    assert expansion_steps(grid_module.Dimensions((), {"cpu": ["a", "b"]}, {}, {})) == 4


def preset_dimensions(loader, preset: str, *command_line: str):
    """The dimensions ``asi-sweep experiment=<preset> <command_line>`` sweeps (nothing composed
    but the run's config)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from asi_slowdown.pipeline.configuration.sweeps import (
        classify,
        merge_by_key,
        parse,
        sweeper_params,
    )
    from asi_slowdown.pipeline.sweep.grid import MODEL_GROUPS

    wanted = [f"experiment={preset}", *command_line]
    cfg = loader.load(wanted, multirun=True)
    params = sweeper_params(cfg.hydra.sweeper.params)
    parser = OverridesParser.create(config_loader=loader.loader())
    overrides = merge_by_key(parse([*params, *wanted], parser))
    return classify(overrides, loader.group_options, MODEL_GROUPS)


@pytest.mark.parametrize("preset", ["default", "nightly"])
def test_a_calibrated_profile_of_ones_own_leaves_the_shipped_grids_alone(
    loader, preset, tmp_path, monkeypatch
):
    """After ``asi-calibrate`` (a CPU profile and a workload in ASI_CONFIG_DIR) the shipped
    presets sweep the shipped options, as before; ``glob(*)`` typed on the command line
    takes one's own too."""
    shipped = preset_dimensions(loader, preset)
    for group in ("cpu", "workload"):
        (tmp_path / group).mkdir()
        own = compose_config([]).get(group)
        doc = {**loader_yaml(own), "name": "lab"}
        (tmp_path / group / "lab.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setenv(USER_CONFIG_ENV, str(tmp_path))
    assert "lab" in loader.group_options("cpu") and "lab" in loader.group_options("workload")
    calibrated = preset_dimensions(loader, preset)
    assert calibrated == shipped
    assert calibrated.groups["workload"] == SWEPT_WORKLOADS
    for group in ("cpu", "mitigations"):  # every shipped option, nothing else
        assert calibrated.groups[group] == packaged_options(group)
    assert "lab" in preset_dimensions(loader, preset, "cpu=glob(*)").groups["cpu"]


def loader_yaml(node) -> dict:
    from omegaconf import OmegaConf

    return yaml.safe_load(OmegaConf.to_yaml(node))


def test_assembled_combinations_equal_hydras_own_composition(loader):
    """Multi-group grids compose each option once; the profiles must match composing each combination."""
    from asi_slowdown.pipeline.configuration.checks import validate
    from asi_slowdown.pipeline.sweep.grid import (
        Dimensions,
        compose_each,
        compose_groups,
        expand_profiles,
        validated,
    )

    dims = Dimensions(
        fixed=("workload.io_size=8K", "cpus=3"),
        groups={
            "workload": ["fio_randread_tmpfs", "fio_seqread_ext4"],
            "cpu": ["skylake_l1tf", "amd_zen4"],
            "mitigations": ["rfc_v2", "multi_slot", "metadata_mapped"],
        },
        points={},
        profiles={},
    )
    compose = validated(loader)
    fast, slow = compose_groups(dims, compose), compose_each(dims, compose)
    assert len(fast) == len(slow) == 12
    probe = fast[0][0].copy()
    assert expand_profiles(fast, dims, probe) == expand_profiles(slow, dims, probe)
    for cfg, model in fast:
        assert validate(cfg) == model
        assert cfg.workload.io_size == "8K" and cfg.cpus == 3


def test_an_option_reaching_outside_its_group_falls_back_to_full_composition(loader):
    from asi_slowdown.pipeline.sweep.grid import Dimensions, compose_groups, validated

    calls = []
    compose = validated(loader)

    def counting(overrides):
        calls.append(overrides)
        cfg, model = compose(overrides)
        if "cpu=amd_zen4" in overrides:  # as if amd_zen4 also set a top-level key
            cfg.cpus = 7
        return cfg, model

    dims = Dimensions(
        fixed=(),
        groups={"cpu": ["skylake_l1tf", "amd_zen4"], "mitigations": ["rfc_v2", "multi_slot"]},
        points={},
        profiles={},
    )
    configs = compose_groups(dims, counting)
    assert len(configs) == 4
    assert [c.cpus for c, _ in configs] == [1, 1, 7, 7]  # Hydra's own composition of each


def test_the_run_config_hydra_composed_is_reused_for_its_own_combination(loader):
    from hydra.types import RunMode

    overrides = ["cpus=4", "mitigations=rfc_v2,ephmap_prototype", "workload.io_size=8K,16K"]
    base = loader.loader().load_configuration("config", overrides, run_mode=RunMode.MULTIRUN)
    reused = build_grid(overrides, loader, base=base)
    fresh = build_grid(overrides, loader)
    assert reused.profiles == fresh.profiles
    assert reused.points.equals(fresh.points)
    assert base.hydra.runtime.choices["mitigations"] == "ephmap_prototype"
    from asi_slowdown.pipeline.configuration.sweeps import dimensions
    from asi_slowdown.pipeline.sweep.grid import MODEL_GROUPS, validated

    class Refusing:
        def load(self, overrides, config_name):
            pytest.fail(f"composed {overrides}")

    dims = dimensions(overrides, loader.loader(), MODEL_GROUPS)
    compose = validated(Refusing(), base=base, dims=dims)
    assert compose([*dims.fixed, "mitigations=ephmap_prototype"])[0] is base
