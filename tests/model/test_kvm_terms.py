"""Hand-computed cases for a KVM host running a guest under ASI: VM exits by reason.

Costs are the ``round_costs`` fixture (``test_hand_computed.py``'s docstring): an
exit/enter pair costs 2 x 30 + refill 1000 + ibpb 900 + rsb 20 = 1980 ns, plus the
fault entry 250 where the exit is a page fault, plus l1d_flush 400 on L1TF CPUs. The
guest point does nothing the host sees but its VM exits: no syscalls, no faults (EPT),
1 ms of guest time per op, so a rate of 1e4 VM exits per second is 10 VM exits per op.
Each case is checked on both the vectorized model and the scalar reference (``run``).
"""

from __future__ import annotations

import pytest

from model.mechanism import VM_EXIT_SOURCES
from model.params import VM_EXIT_REASONS

from .test_fidelity_terms import FAULT_PAIR, PAIR, run


@pytest.fixture
def guest(base_point):
    """A guest workload's point: 1 ms of guest time per op and nothing else."""
    return base_point | {"io_per_op": 0.0, "base_time": 1e6}


def extra(ref):
    return ref["t_asi"] - ref["t_native"]


def vm_exits(reason: str, per_s: float) -> dict:
    return {f"vmexits_{reason}_per_s": per_s}


def share(reason: str, value: float) -> dict:
    return {f"vmexit_share_{reason}": value}


def test_every_reason_has_its_source_and_share():
    assert VM_EXIT_SOURCES == tuple(f"vmexit_{r}" for r in VM_EXIT_REASONS)
    assert set(VM_EXIT_REASONS) >= {
        "ept_violation",
        "hlt",
        "external_interrupt",
        "msr",
        "io",
        "preemption_timer",
    }


@pytest.mark.parametrize("reason", [r for r in VM_EXIT_REASONS if r != "hlt"])
def test_a_reason_that_never_touches_sensitive_memory_costs_no_asi_exit(guest, round_costs, reason):
    # 1e4 VM exits per second over 1 ms: 10 VM exits per op, none of them exits ASI
    ref = run(guest | vm_exits(reason, 1e4), round_costs | share(reason, 0.0))
    assert ref["vm_exits"] == pytest.approx(10.0)
    assert sum(ref["exits"].values()) == 0.0
    assert extra(ref) == 0.0


@pytest.mark.parametrize("reason", [r for r in VM_EXIT_REASONS if r != "hlt"])
def test_a_reason_that_always_touches_it_costs_one_pair_and_the_enter_flushes(
    guest, round_costs, reason
):
    # every one of the 10 VM exits per op faults on sensitive memory: a pair with the
    # fault entry each (250 + 1980), IBPB and RSB fill included
    point = guest | vm_exits(reason, 1e4)
    costs = round_costs | share(reason, 1.0)
    ref = run(point, costs)
    assert ref["exits"][f"vmexit_{reason}"] == pytest.approx(10.0)
    assert extra(ref) == pytest.approx(10 * FAULT_PAIR)
    assert ref["extra"]["ibpb"] == pytest.approx(10 * 900) and ref["extra"]["rsb_fill"] == 200
    assert ref["exit_rates"]["page_fault"] == pytest.approx(10 / ref["t_asi"] * 1e9)
    # on an L1TF CPU asi_enter also flushes L1D on the way back into the guest (400)
    l1tf = run(point | {"l1tf": True}, costs)
    assert extra(l1tf) == pytest.approx(10 * (FAULT_PAIR + 400))
    # on an MDS CPU the default's VERW runs on every VM entry (100), with or without ASI
    mds = run(point | {"default_verw": True}, costs)
    assert mds["default_cost"]["verw"] == pytest.approx(10 * 100)
    assert mds["t_default"] - mds["t_native"] == pytest.approx(1000)
    assert mds["t_asi_with_kept"] - mds["t_asi"] == pytest.approx(1000)


def test_a_share_is_a_share(guest, round_costs):
    # a quarter of 10 I/O exits per op touch guest memory through the VMM's mapping
    ref = run(guest | vm_exits("io", 1e4), round_costs | share("io", 0.25))
    assert ref["exits"]["vmexit_io"] == pytest.approx(2.5)
    assert extra(ref) == pytest.approx(2.5 * FAULT_PAIR)


def test_a_blocked_vcpu_exits_in_the_context_switch(guest, round_costs):
    # half of 10 HLT exits per op block and schedule: a direct asi_exit (no fault entry)
    point = guest | vm_exits("hlt", 1e4)
    costs = round_costs | share("hlt", 0.5)
    ref = run(point, costs)
    assert ref["exits"]["vmexit_hlt"] == pytest.approx(5.0)
    assert extra(ref) == pytest.approx(5 * PAIR)
    assert ref["exit_rates"]["context_switch"] == pytest.approx(5 / ref["t_asi"] * 1e9)
    # with ctxsw_same_mm only a switch to another mm exits (a fifth of them here)
    same_mm = run(point | {"ctxsw_same_mm": True, "ctxsw_mm_change": 0.2}, costs)
    assert same_mm["exits"]["vmexit_hlt"] == pytest.approx(1.0)
    assert extra(same_mm) == pytest.approx(PAIR)


def test_the_ibpb_on_vm_exit_baseline_priced_by_hand(guest, round_costs):
    # 10 VM exits per op: IBPB on each (900) -> 9000 ns; without L1TF no L1D flush
    point = guest | vm_exits("msr", 1e4)
    costs = round_costs | share("msr", 0.5)
    ref = run(point, costs)
    assert ref["baseline_cost"] == pytest.approx({"ibpb_vmexit": 9000.0, "l1d_always": 0.0})
    assert ref["t_blanket"] == pytest.approx(1e6 + 9000)
    # ASI: 5 of them exit (5 x 2230 = 11150): dearer than IBPB on every exit here
    assert extra(ref) == pytest.approx(5 * FAULT_PAIR)
    assert ref["vec"]["slowdown_vs_ibpb_vmexit_p50"][0] == pytest.approx(
        (1e6 + 5 * FAULT_PAIR) / (1e6 + 9000) - 1
    )
    assert ref["vec"]["p_beats_ibpb_vmexit"][0] == 0.0
    # with 1 in 10 exiting, ASI (2230) beats the blanket IBPB (9000)
    cheap = run(point, round_costs | share("msr", 0.1))
    assert extra(cheap) == pytest.approx(FAULT_PAIR)
    assert cheap["vec"]["p_beats_ibpb_vmexit"][0] == 1.0


def test_on_l1tf_cpus_the_blanket_flush_replaces_the_conditional_one(guest, round_costs):
    # Skylake-like: the default flushes L1D on the 5 VM entries after an unsafe exit
    # (5 x 400 = 2000); the blanket baseline flushes on all 10 (4000) and adds IBPB (9000)
    point = guest | vm_exits("msr", 1e4) | {"l1tf": True, "default_l1d_vmentry": True}
    ref = run(point, round_costs | share("msr", 0.5))
    assert ref["default_cost"]["l1d_vmentry"] == pytest.approx(2000.0)
    assert ref["t_default"] == pytest.approx(1e6 + 2000)
    assert ref["baseline_cost"] == pytest.approx({"ibpb_vmexit": 9000.0, "l1d_always": 4000.0})
    assert ref["t_blanket"] == pytest.approx(1e6 + 9000 + 4000)
    # ASI as posted keeps KVM's conditional flush (asi_keeps_l1d_vmentry) and flushes on
    # each of its own 5 enters too: 5 x (2230 + 400) + the kept 2000
    assert ref["t_asi_with_kept"] - ref["t_native"] == pytest.approx(5 * (FAULT_PAIR + 400) + 2000)


def test_no_guest_no_vm_exits_and_the_blanket_baseline_is_the_default(base_point, round_costs):
    ref = run(base_point | {"default_verw": True}, round_costs | share("io", 1.0))
    assert ref["vm_exits"] == 0.0
    assert ref["t_blanket"] == pytest.approx(ref["t_default"])


def test_a_kernel_thread_runs_no_guest(guest, round_costs):
    ref = run(guest | vm_exits("io", 1e4) | {"kernel_thread": True}, round_costs | share("io", 1))
    assert ref["vm_exits"] == 0.0 and extra(ref) == 0.0
