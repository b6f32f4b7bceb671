"""Hand-computed cases for the costs and exits the prototype pays beyond exits of ops.

Costs are the ``round_costs`` fixture (see ``test_hand_computed.py``'s docstring);
the base point is a 4 KiB tmpfs read with a native time of 856 ns. An exit/enter
pair costs 2 x 30 + refill 1000 + ibpb 900 + rsb 20 = 1980 ns, plus 250 for the
fault entry where the exit is a page fault. Each case is checked on both the
vectorized model and the scalar reference (``run``).
"""

from __future__ import annotations

import numpy as np
import pytest

from asi_slowdown.model.evaluate import evaluate, overhead_split
from asi_slowdown.model.mechanism import EXIT_REASONS, EXIT_SOURCES
from asi_slowdown.model.reference import reference_op

PAIR = 1980.0
FAULT_PAIR = PAIR + 250.0
EPHMAP_READ = 10.0 + 40.0 + 80.0 + 30.0  # pte, software path, INVLPG, re-walk


def run(point, costs):
    """Per-op results of the scalar reference, checked against the vectorized model
    (its results under ``"vec"``); shared with the KVM terms' tests."""
    ref = reference_op(point, costs)
    vec = evaluate(point, {k: np.array([v]) for k, v in costs.items()})
    assert vec["t_native_mean"][0] == pytest.approx(ref["t_native"], rel=1e-12)
    assert vec["t_asi_mean"][0] == pytest.approx(ref["t_asi"], rel=1e-12)
    for source in EXIT_SOURCES:
        assert vec[f"exits_{source}"][0] == pytest.approx(
            ref["exits"][source], rel=1e-12, abs=1e-15
        )
        assert vec[f"extra_ns_exit_{source}"][0] == pytest.approx(ref["by_source"][source])
    for reason in EXIT_REASONS:
        assert vec[f"exit_rate_{reason}"][0] == pytest.approx(ref["exit_rates"][reason])
    assert vec["vm_exits_per_op"][0] == pytest.approx(ref["vm_exits"])
    assert vec["t_default_mean"][0] == pytest.approx(ref["t_default"])
    assert vec["t_ibpb_vmexit_mean"][0] == pytest.approx(ref["t_blanket"])
    versus = ref["t_asi_with_kept"] / ref["t_blanket"] - 1
    assert vec["slowdown_vs_ibpb_vmexit_p50"][0] == pytest.approx(versus, rel=1e-12, abs=1e-15)
    ref["vec"] = vec
    return ref


def extra(ref):
    return ref["t_asi"] - ref["t_native"]


def test_the_optimised_path_replaces_the_software_walk(base_point, round_costs):
    # multi_slot: no INVLPG; wrap 3030 / 512 (see the lazy-flush case); the software
    # path per use is 40 on the prototype, 5 with mapping_fastpath
    point = base_point | {"ephmap": True, "multi_slot": True}
    assert extra(run(point, round_costs)) == pytest.approx(10 + 40 + 3030 / 512)
    fast = run(point | {"mapping_fastpath": True}, round_costs)
    assert extra(fast) == pytest.approx(10 + 5 + 3030 / 512)
    assert fast["extra"]["ephmap_software"] == 0.0
    assert fast["extra"]["ephmap_software_fast"] == pytest.approx(5.0)


def test_each_invlpg_unmap_pays_one_re_walk(base_point, round_costs):
    # a 16 KiB read of 4-page folios: 4 pages in one mapping, 4 INVLPGs, one re-walk
    point = base_point | {"ephmap": True, "io_size": 16384, "folio_pages": 4}
    ref = run(point, round_costs)
    assert ref["extra"]["invlpg"] == pytest.approx(4 * 80)
    assert ref["extra"]["psc_rewalk"] == pytest.approx(30)


def test_ticks_exit_over_the_restricted_time_only(base_point, round_costs):
    # one tick exit per microsecond. With the ephmap nothing else exits: 856 ns
    # restricted per op -> 0.856 tick exits, each a page-fault pair (2230)
    costs = round_costs | {"tick_exits": 1e6}
    ref = run(base_point | {"ephmap": True}, costs)
    assert ref["exits"]["tick"] == pytest.approx(0.856)
    assert extra(ref) == pytest.approx(EPHMAP_READ + 0.856 * FAULT_PAIR)
    # rfc_v2: the page-cache exit leaves the rest of the read unrestricted: half a
    # syscall 50 + lookup 200 + copy 256 = 506 ns, so ticks land in 350 ns of the 856
    ref = run(base_point, costs)
    assert ref["exits"]["tick"] == pytest.approx(0.350)
    assert extra(ref) == pytest.approx(1.350 * FAULT_PAIR)
    assert ref["exit_rates"]["page_fault"] == pytest.approx(1.350 / ref["t_asi"] * 1e9)
    # a kernel thread that stays unrestricted (kcompactd) takes none
    ref = run(base_point | {"ephmap": True, "kernel_thread": True}, costs)
    assert ref["exits"]["tick"] == 0.0


def test_device_interrupts_and_kthread_switches_are_rates_too(base_point, round_costs):
    # 1e6 device-interrupt exits/s (page faults) and 2e6 kthread switches/s (direct
    # asi_exit calls) over the 856 restricted ns of an ephmap read
    point = base_point | {"ephmap": True, "irq_exits_per_s": 1e6, "kthread_switches_per_s": 2e6}
    ref = run(point, round_costs)
    assert ref["exits"]["interrupt"] == pytest.approx(0.856)
    assert ref["exits"]["kthread_switch"] == pytest.approx(1.712)
    assert extra(ref) == pytest.approx(EPHMAP_READ + 0.856 * FAULT_PAIR + 1.712 * PAIR)
    # a switch to a kernel thread keeps the mm: it stops exiting with ctxsw_same_mm
    ref = run(point | {"ctxsw_same_mm": True}, round_costs)
    assert ref["exits"]["kthread_switch"] == 0.0


def test_every_full_tlb_flush_exits(base_point, round_costs):
    # native_flush_tlb_local() calls asi_exit(): two full flushes per op, two pairs
    point = base_point | {"ephmap": True, "tlb_flushes_per_op": 2.0}
    ref = run(point, round_costs)
    assert ref["exits"]["tlb_flush"] == 2.0
    assert extra(ref) == pytest.approx(EPHMAP_READ + 2 * PAIR)
    assert ref["exit_rates"]["tlb_flush"] == pytest.approx(2 / ref["t_asi"] * 1e9)
    assert ref["exit_rates"]["page_fault"] == 0.0


def test_rsb_fill_runs_without_ibpb(base_point, round_costs):
    # clearcpuid=ibpb drops the IBPB (900) but not fill_return_buffer() (20)
    ref = run(base_point | {"ibpb": False}, round_costs)
    assert extra(ref) == pytest.approx(FAULT_PAIR - 900)
    assert ref["extra"]["rsb_fill"] == pytest.approx(20.0)


def test_the_refill_is_the_workloads_working_set(base_point, round_costs):
    # 50 entries x 100 ns instead of 10 x 100
    ref = run(base_point | {"tlb_working_set": 50.0}, round_costs)
    assert extra(ref) == pytest.approx(FAULT_PAIR - 1000 + 5000)


@pytest.mark.parametrize(("ephmap", "per_mm"), [(False, 1000.0), (True, 1000.0 + 4 * 500.0)])
def test_each_new_mm_pays_its_restricted_tables(base_point, round_costs, ephmap, per_mm):
    # 2 mms per op on 4 CPUs: a restricted PGD each, and with the ephmap page tables for
    # every possible CPU's region
    point = base_point | {"io_per_op": 0.0, "mm_setups_per_op": 2.0, "cpus": 4, "ephmap": ephmap}
    assert extra(run(point, round_costs)) == pytest.approx(2 * per_mm)


def test_noflush_refills_after_an_invalidation_the_other_space_may_hold(base_point, round_costs):
    # an ephmap read (one unmap: one invalidation) and one context switch (one exit)
    # per op: with NOFLUSH kept the refill happens with probability 1 - exp(-1/1), and
    # every enter checks the TLB generation (10)
    point = base_point | {"ephmap": True, "ctxsw_per_op": 1.0, "ctxsw_mm_change": 1.0}
    flushing = run(point, round_costs)
    assert extra(flushing) == pytest.approx(EPHMAP_READ + PAIR)
    kept = run(point | {"cr3_noflush": True}, round_costs)
    refill = 1000 * (1 - np.exp(-1.0))
    assert extra(kept) == pytest.approx(EPHMAP_READ + PAIR - 1000 + refill + 10)
    # without the ephmap nothing needs invalidating: no refill at all
    alone = run(
        base_point | {"io_per_op": 0.0, "ctxsw_per_op": 1.0, "cr3_noflush": True}, round_costs
    )
    assert extra(alone) == pytest.approx(PAIR - 1000 + 10)


def test_stunning_the_sibling_costs_the_handshake_and_the_unrestricted_time(
    base_point, round_costs
):
    # rfc_v2 read: one page-cache exit, then 506 ns unrestricted (see the tick case)
    ref = run(base_point | {"smt_stun": True}, round_costs)
    assert extra(ref) == pytest.approx(FAULT_PAIR + 1000 + 506)
    assert ref["extra"]["smt_stun"] == pytest.approx(1506)


def test_the_overhead_split_adds_up_and_names_each_part(base_point, round_costs):
    # an ephmap read (pte 10, software 40, INVLPG 80, re-walk 30), ticks at 1e6/s over
    # its 856 restricted ns (0.856 x 2230) and a new mm per op on 1 CPU (1000 + 500)
    point = base_point | {"ephmap": True, "mm_setups_per_op": 1.0}
    costs = {k: np.array([v]) for k, v in (round_costs | {"tick_exits": 1e6}).items()}
    result = evaluate(point, costs)
    parts = {k: v[0] for k, v in overhead_split(result).items()}
    assert parts == pytest.approx(
        {
            "op_exits": 0.0,
            "time_exits": 0.856 * FAULT_PAIR,
            "pte_writes": 10.0,
            "software_path": 40.0,
            "invlpg": 80.0,
            "rewalk": 30.0,
            "flushes": 0.0,
            "mm_setup": 1500.0,
        },
        abs=1e-9,
    )
    assert sum(parts.values()) == pytest.approx(
        result["t_asi_mean"][0] - result["t_native_mean"][0]
    )


def test_against_the_default_mitigations_asi_drops_only_what_it_replaces(base_point, round_costs):
    # a Skylake-like kernel: PTI (130 per entry), legacy IBRS (two SPEC_CTRL writes of 300, and
    # the read's kernel time 100 + 200 + 4096 / 16 = 556 slowed by 0.25: 139), VERW (100), the
    # SWAPGS fence (10): 979 per read; ASI turns PTI off and keeps the other 849.
    # rfc_v2 read: native 856, ASI extra 2230: default 856 + 979 = 1835; with ASI
    # 856 + 2230 + 849 = 3935 -> 3935 / 1835 - 1
    flags = {f"default_{m}": True for m in ("pti", "ibrs", "verw", "swapgs_fence")}
    point = base_point | flags | {"asi_keeps_pti": False}
    ref = run(point, round_costs)
    assert ref["t_default"] == pytest.approx(856 + 979)
    assert ref["t_asi_with_kept"] == pytest.approx(856 + 2230 + 849)
    result = evaluate(point, {k: np.array([v]) for k, v in round_costs.items()})
    assert result["slowdown_vs_default_p50"][0] == pytest.approx(3935 / 1835 - 1)
    assert result["default_ns_pti"][0] == pytest.approx(130)
    assert result["default_ns_ibrs"][0] == pytest.approx(739)
    assert result["default_vs_off_p50"][0] == pytest.approx(979 / 856)
    costs = {k: np.array([v]) for k, v in round_costs.items()}
    # with the prototype ephmap (160 extra) ASI still loses: 856 + 160 + 849 > 1835
    ephmap = evaluate(point | {"ephmap": True}, costs)
    assert ephmap["slowdown_vs_default_p50"][0] == pytest.approx((856 + 160 + 849) / 1835 - 1)
    assert ephmap["p_beats_default"][0] == 0.0
    # the mermap with the fast path (10 + 5 + 3030 / 512 extra) beats it
    fast = {"ephmap": True, "multi_slot": True, "mapping_fastpath": True}
    final = evaluate(point | fast, costs)
    expected = (856 + 15 + 3030 / 512 + 849) / 1835 - 1
    assert final["slowdown_vs_default_p50"][0] == pytest.approx(expected) and expected < 0
    assert final["p_beats_default"][0] == 1.0


def test_a_cpu_without_meltdown_pays_no_pti(base_point, round_costs):
    ref = run(base_point | {"default_pti": False, "asi_keeps_pti": False}, round_costs)
    assert ref["default_cost"]["pti"] == 0.0 and ref["t_default"] == ref["t_native"]
