"""Every shipped config composes, validates and feeds the model; bad ones fail in one line."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from asi_slowdown.model.costs import COST_NAMES, SHARE_COSTS
from asi_slowdown.model.params import DESIGN_OPTIONS, MITIGATION_FLAGS
from asi_slowdown.pipeline.configuration.compose import CONF_DIR, compose_config
from asi_slowdown.pipeline.configuration.errors import ConfigError
from asi_slowdown.pipeline.configuration.profile import model_profile, point_from_config

WORKLOADS = sorted(p.stem for p in (CONF_DIR / "workload").glob("*.yaml"))
CPUS = sorted(p.stem for p in (CONF_DIR / "cpu").glob("*.yaml"))
STAGES = sorted(p.stem for p in (CONF_DIR / "mitigations").glob("*.yaml"))


@pytest.mark.parametrize(("workload", "cpu"), list(itertools.product(WORKLOADS, CPUS)))
def test_every_workload_and_profile_composes(workload, cpu):
    cfg = compose_config([f"workload={workload}", f"cpu={cpu}"])
    point = point_from_config(cfg)
    assert point["io_size"] > 0
    draws = model_profile(cfg).costs(8)
    assert set(draws) == set(COST_NAMES)
    # every cost is positive but a share, which KVM's code may fix at 0 (cpu.costs.vmexit_share_*)
    assert all(
        v.shape == (8,) and ((v >= 0) if name in SHARE_COSTS else (v > 0)).all()
        for name, v in draws.items()
    )


WIDE_PRIOR = re.compile(r"^no public (?:source|[\w-]+ figure)(?: for [^:]+)?: wide prior")
"""The project's marker for a range with no public number behind it (``conf/cpu/*.yaml``'s header):
"no public source: wide prior", or "no public per-walk figure: wide prior" and the like."""

SOURCE_FORMS: dict[str, re.Pattern] = {
    "URL": re.compile(r"https?://\S+|\b(?:github\.com|lore\.kernel\.org)/\S+"),
    "lore message-id": re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "commit id": re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{12,40}\b"),
    "kernel-tree path": re.compile(
        r"\b(?:Documentation|arch|mm|kernel|include|drivers|fs)/[\w./-]+\.(?:rst|txt|c|h|S)\b"
    ),
    "paper, manual or standard": re.compile(
        r"\b[A-Z]{3,}'\d{2}\b|\bIntel SDM Vol\. \w+|\bJEDEC DDR\d-\d+"
    ),
}
"""What counts as a source in a cost's note: something a reader can look up."""


def cites_a_source(note: str) -> bool:
    """Whether ``note`` starts with the wide-prior marker or names a source of :data:`SOURCE_FORMS`."""
    note = " ".join(str(note).split())
    return bool(WIDE_PRIOR.match(note)) or any(f.search(note) for f in SOURCE_FORMS.values())


@pytest.mark.parametrize(
    ("note", "cites"),
    [
        ("no public source: wide prior", True),
        ("no public per-walk figure: wide prior for a 4-level walk", True),
        ("'about a hundred cycles', kernel Documentation/arch/x86/pti.rst", True),
        ("INVLPG 260 cycles (Ingo Molnar on a5102476a24b, 2015)", True),
        ("RFC v2, lore 20250110-asi-rfc-v2-v2-0-8419288bc805@google.com", True),
        ("a trace (github.com/bjackman/nixos-flake, bpftrace_asi_exits.log)", True),
        ("LATR, ASPLOS'18: -70.8 % munmap latency", True),
        ("1,276 cycles for 1 page (Dave Hansen, 2014)", False),  # a name and a year: not findable
        ("wide prior", False),
        ("an estimate from the mailing list, see there", False),
        ("the source says no public source: wide prior", False),  # the marker opens the note
        ("12 channels at 60-80 % efficiency, 4096 MiB", False),
    ],
)
def test_a_source_is_something_a_reader_can_look_up(note, cites):
    assert cites_a_source(note) is cites


def test_every_cost_cites_a_source():
    """Every cost of every shipped profile names a findable source or says it has none."""
    unsourced = [
        f"{cpu}: {name}: {cfg.cpu.costs[name].source!r}"
        for cpu in CPUS
        for cfg in [compose_config([f"cpu={cpu}"])]
        for name in COST_NAMES
        if not cites_a_source(cfg.cpu.costs[name].source)
    ]
    assert not unsourced, "\n".join(unsourced)


def test_roadmap_lists_every_stage_once_and_stages_are_cumulative():
    cfg = compose_config([])
    stages = list(cfg.roadmap.stages)
    assert sorted(stages) == STAGES and len(set(stages)) == len(stages)
    on_before: set[str] = set()
    for stage in stages:
        flags = compose_config([f"mitigations={stage}"]).mitigations
        on = {f for f in MITIGATION_FLAGS if flags[f]}
        assert on_before <= on, f"{stage} turns off an earlier fix"
        assert len(on - on_before) <= 1, f"{stage} adds more than one fix"
        on_before = on
    assert on_before == set(MITIGATION_FLAGS) - DESIGN_OPTIONS


def test_profile_flags():
    assert compose_config(["cpu=skylake_l1tf"]).cpu.l1tf
    assert not compose_config(["cpu=sapphire_rapids"]).cpu.l1tf
    assert not compose_config(["cpu=sapphire_rapids", "cpu.ibpb=false"]).cpu.ibpb


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["cpus=0"], "cpus must be an integer >= 1, got 0"),
        (["cpus=abc"], "cpus must be an integer, got 'abc'"),
        (["cpus=eight"], "cpus must be an integer, got 'eight'"),
        (["samples=1e3"], "samples must be an integer, got 1000.0"),
        (["cpu.ghz=fast"], "cpu.ghz must be a number, got 'fast'"),
        (["ray.address=[1]"], "ray.address must be a string, got [1]"),
        (["answer.vs_cpus=[2,x]"], "answer.vs_cpus[1] must be an integer, got 'x'"),
        (["ephmap.slots=0"], "ephmap.slots must be an integer >= 1, got 0"),
        (
            ["workload.file_size=1Q"],
            "workload.file_size must be a size like 4K, 64M or 1G, got '1Q'",
        ),
        (
            ["workload.io_sizee=4K"],
            "workload.io_sizee: unknown key; allowed: workload.name, workload.description, "
            "workload.io_size, ",
        ),
        (["foo=1"], "foo: unknown key; allowed: workload, cpu, mitigations, roadmap, baseline, "),
        (
            ["answer.bugdet=true"],
            "answer.bugdet: unknown key; allowed: answer.format, answer.vs_cpus, "
            "answer.vs_slots, answer.source, answer.budget",
        ),
        (["cpu.costs.ibpb.hi=3"], "cpu.costs.ibpb.hi: unknown key; allowed: cpu.costs.ibpb.dist"),
        (["store={a:1}"], "store.a: unknown key; allowed: store.path, store.part_rows, "),
        (["answer=3"], "answer: a section, not a value; set one of answer.format, "),
        (
            ["+cpus=2"],
            "+cpus: cpus is already in the config, and + only adds keys that are not; set it "
            "with cpus=VALUE (or ++cpus=VALUE, which adds or sets)",
        ),
        (
            ["+cpu=amd_zen4"],
            "+cpu=amd_zen4: cpu has an option already, and + only adds groups that have none; "
            "choose it with cpu=amd_zen4",
        ),
        (["~cpus"], "~cpus: cpus cannot be deleted, every command needs it; set it with cpus="),
        (["~cpu"], "~cpu: cpu cannot be deleted, every command needs it; set it with cpu="),
        (["~answer.format"], "~answer.format: answer.format cannot be deleted, every command "),
        (["workload=nope"], "workload: unknown option 'nope'; allowed: "),
        (["mitigations.ephmap=maybe"], "mitigations.ephmap must be true or false, got 'maybe'"),
        (
            ["workload.ctxsw_mm_change=2"],
            "workload.ctxsw_mm_change must be a number between 0 and 1, got 2",
        ),
        (["cpu.costs.ibpb.low=-1"], "cpu.costs.ibpb.low must be a finite number > 0, got -1.0"),
        (["cpu.ghz=0"], "cpu.ghz must be a number > 0 and <= 10, got 0"),
        (["samples=0"], "samples must be an integer >= 1, got 0"),
        (["+foo=1"], "foo: unknown key; allowed: "),
        (["cpus=[1"], "override 'cpus=[1' is malformed"),
        (["answer.format=xml"], "answer.format must be one of table, json, got 'xml'"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(overrides, message):
    with pytest.raises(ConfigError) as info:
        compose_config(overrides)
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text
    assert not re.search(r"\b\w+Conf\b|'Config'|Integer|DictConfig", text), "no class names"


def test_cost_specs_drop_sources_and_keep_distributions():
    specs = model_profile(compose_config([])).cost_specs
    assert set(specs) == set(COST_NAMES)
    assert specs["cr3_write"].unit == "cycles"


def test_correlations_compose_and_change_the_draws():
    plain = compose_config([])
    assert list(plain.cpu.correlations) == []
    cfg = compose_config(["cpu.correlations=[{a: ibpb, b: page_walk, rho: -0.8}]"])
    drawn, before = model_profile(cfg).costs(4096), model_profile(plain).costs(4096)
    assert (drawn["invlpg"] == before["invlpg"]).all()  # in no pair: untouched
    assert np.corrcoef(np.log(drawn["ibpb"]), np.log(drawn["page_walk"]))[0, 1] < -0.6


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "cpu.correlations=[{a: tlb, b: ibpb, rho: 0.5}]",
            "cpu.correlations[0].a: unknown cost 'tlb'",
        ),
        ("cpu.correlations=[{a: page_walk, b: ibpb}]", "cpu.correlations[0].rho is required"),
        ("cpu.correlations=[{a: page_walk, b: ibpb, rho: 2}]", "must be in [-1, 1], got 2.0"),
        ("cpu.correlations=[{a: page_walk, b: ibpb, rho: 1}]", "is not positive definite"),
    ],
)
def test_bad_correlations_fail_at_composition_in_one_line(override, message):
    with pytest.raises(ConfigError) as err:
        compose_config([override])
    assert message in str(err.value) and "\n" not in str(err.value)
