"""Page migration of direct-map-removed pages, and fork-heavy copy-on-write.

Hand-computed with the ``round_costs`` fixture: ephmap_pte 10, ephmap_software 40,
invlpg 80, psc_rewalk 30, cr3_write 30, shootdown_base 600, shootdown_per_cpu 100 [ns].
"""

from __future__ import annotations

import numpy as np
import pytest

from asi_slowdown.model.evaluate import evaluate
from asi_slowdown.model.reference import reference_op

DIRECT_MAP = {"ephmap": False, "multi_slot": False}
EPHMAP = {"ephmap": True, "multi_slot": True, "ephmap_slots": 2}


@pytest.fixture
def migration(base_point):
    """One op = one page migrated by a kernel thread, nothing else."""
    return base_point | {
        "io_per_op": 0.0,
        "migrations_per_op": 1.0,
        "migration_temporary_mm": True,
        "kernel_thread": True,
    }


def extra_per_page(point, costs):
    ref = reference_op(point, costs)
    vec = evaluate(point, {k: np.array([v]) for k, v in costs.items()})
    assert vec["t_asi_mean"][0] - vec["t_native_mean"][0] == pytest.approx(
        ref["t_asi"] - ref["t_native"]
    )
    assert vec["exits_per_op"][0] == 0.0  # a kernel thread stays unrestricted
    return ref["t_asi"] - ref["t_native"]


@pytest.mark.parametrize(
    ("cpus", "direct", "ephmap"),
    [
        # direct map: 2 PTEs (20) + 2 software walks (80) + 2 local INVLPGs in one unmap
        # (160) and its re-walk (30) + a shootdown to the others (600 + 100 per other CPU,
        # none with 1 CPU); ephmap: 290 + 2 CR3 writes (60)
        (1, 290.0, 350.0),
        (2, 290.0 + 600 + 100, 350.0),
        (8, 290.0 + 600 + 700, 350.0),
        (64, 290.0 + 600 + 6300, 350.0),
        (256, 290.0 + 600 + 25500, 350.0),
    ],
)
def test_migration_cost_per_page_by_strategy(migration, round_costs, cpus, direct, ephmap):
    assert extra_per_page(migration | DIRECT_MAP | {"cpus": cpus}, round_costs) == pytest.approx(
        direct
    )
    assert extra_per_page(migration | EPHMAP | {"cpus": cpus}, round_costs) == pytest.approx(ephmap)


def test_crossover_direct_map_wins_alone_ephmap_wins_from_two_cpus(migration, round_costs):
    cpus = [1, 2, 4, 16, 256]
    direct = [extra_per_page(migration | DIRECT_MAP | {"cpus": n}, round_costs) for n in cpus]
    ephmap = [extra_per_page(migration | EPHMAP | {"cpus": n}, round_costs) for n in cpus]
    assert np.all(np.diff(direct) > 0), "the shootdown grows with the CPU count"
    assert np.ptp(ephmap) == 0, "the ephmap path is CPU-local"
    assert direct[0] < ephmap[0] and all(d > e for d, e in zip(direct[1:], ephmap[1:], strict=True))


def test_borrowing_the_active_mm_saves_the_cr3_writes(migration, round_costs):
    point = migration | EPHMAP | {"migration_temporary_mm": False}
    assert extra_per_page(point, round_costs) == pytest.approx(290.0)


def test_one_slot_falls_back_to_the_direct_map(migration, round_costs):
    point = migration | EPHMAP | {"ephmap_slots": 1, "cpus": 8}
    assert extra_per_page(point, round_costs) == pytest.approx(290.0 + 600 + 700)


@pytest.fixture
def forking(base_point):
    """Fork-heavy op: 30 CoW faults and 10 zero-fill faults, no I/O."""
    return base_point | {"io_per_op": 0.0, "cow_per_op": 30.0, "zero_fill_per_op": 10.0}


def exits(point, costs):
    ref = reference_op(point, costs)
    vec = evaluate(point, {k: np.array([v]) for k, v in costs.items()})
    assert vec["exits_cow"][0] == pytest.approx(ref["exits"]["cow"])
    assert vec["exits_zeroing"][0] == pytest.approx(ref["exits"]["zeroing"])
    return ref["exits"]


@pytest.mark.parametrize("slots", [1, 2, 3, 8])
def test_cow_falls_back_to_exits_with_one_slot_only(forking, round_costs, slots):
    stage = {"ephmap": True, "ephmap_zeroing": True, "multi_slot": True, "ephmap_slots": slots}
    result = exits(forking | stage, round_costs)
    assert result["cow"] == (30.0 if slots == 1 else 0.0)
    assert result["zeroing"] == 0.0  # zeroing needs one slot only


def test_zeroing_exits_until_ephmap_zeroing(forking, round_costs):
    assert exits(forking | {"ephmap": True}, round_costs)["zeroing"] == 10.0
    assert exits(forking | {"ephmap": True, "ephmap_zeroing": True}, round_costs)["zeroing"] == 0.0
