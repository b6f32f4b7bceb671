"""Hand-computed cases: each expected value is worked out in the comment above it.

Costs are the ``round_costs`` fixture (conftest.py): syscall 100, page_lookup
200, user_fault 500, kernel_rest 2000, fault_entry 250, cr3_write 30,
page_walk 100 (x tlb_working_set 10 = a refill of 1000), ibpb 900, rsb_fill 20,
l1d_flush 400, generation_check 10, smt_stun 1000, ephmap_pte 10,
ephmap_software 40 (fast 5), invlpg 80, psc_rewalk 30, full_flush 50,
shootdown 600 + 100/CPU, asi_mm_setup 1000, ephmap_setup_per_cpu 500 [ns];
copy 16 and memory 64 [bytes/ns]; tick_exits 0 [1/s] unless a test sets it.
An exit/enter pair without the fault entry is 2 x 30 + 1000 + 900 + 20 = 1980 ns.
Both implementations must give them.
"""

from __future__ import annotations

import numpy as np
import pytest

from asi_slowdown.model.evaluate import evaluate
from asi_slowdown.model.mechanism import EXIT_SOURCES
from asi_slowdown.model.reference import reference_op


def run(point, costs):
    """(t_native, t_asi, exits) from both implementations, checked equal."""
    ref = reference_op(point, costs)
    vec = evaluate(point, {k: np.array([v]) for k, v in costs.items()})
    t_native = vec["t_native_mean"][0]
    t_asi = vec["t_asi_mean"][0]
    assert t_native == pytest.approx(ref["t_native"], rel=1e-12)
    assert t_asi == pytest.approx(ref["t_asi"], rel=1e-12)
    exits = {s: vec[f"exits_{s}"][0] for s in EXIT_SOURCES}
    assert exits == pytest.approx(ref["exits"])
    return t_native, t_asi, exits


def test_rfc_v2_tmpfs_read_pays_one_full_exit(base_point, round_costs):
    # native: base 300 + syscall 100 + lookup 200 + 4096 B / 16 B/ns = 856 ns
    # one page-cache exit: fault 250 + 2 x cr3 30 + refill 1000 + ibpb 900 + rsb 20 = 2230 ns
    t_native, t_asi, exits = run(base_point, round_costs)
    assert t_native == pytest.approx(856.0)
    assert t_asi == pytest.approx(856.0 + 2230.0)
    assert exits["page_cache"] == 1.0 and sum(exits.values()) == 1.0


def test_ephmap_replaces_the_exit_by_one_invlpg(base_point, round_costs):
    # no exit; the read maps 1 page (pte 10) in one use of the software path (40) and
    # unmaps it with one INVLPG (80), after which the next misses walk again (30)
    t_native, t_asi, exits = run(base_point | {"ephmap": True}, round_costs)
    assert t_asi - t_native == pytest.approx(160.0)
    assert sum(exits.values()) == 0.0


def test_lazy_flush_amortizes_a_full_flush_over_the_region(base_point, round_costs):
    # multi_slot: pte 10 + software 40, no INVLPG; per wrap of 512 pages a full flush
    # (50) and its refill (1000) through flush_tlb_local, which exits (a pair, 1980)
    point = base_point | {"ephmap": True, "multi_slot": True}
    t_native, t_asi, exits = run(point, round_costs)
    assert t_asi - t_native == pytest.approx(50.0 + 3030.0 / 512)
    assert exits["tlb_flush"] == pytest.approx(1 / 512)


def test_shared_memory_bandwidth_caps_the_copy(base_point, round_costs):
    # 8 CPUs share 64 B/ns: 8 B/ns each < 16 B/ns per core, so 4096 B take 512 ns
    t_native, _, _ = run(base_point | {"cpus": 8}, round_costs)
    assert t_native == pytest.approx(300 + 100 + 200 + 512)


def test_random_misses_block_and_the_switch_exits_first(base_point, round_costs):
    # cache holds 1/4 of the file: miss 0.75; device 80 us + 4096 B at 4.096 B/ns = 1000 ns
    # native: 856 + 0.75 x 81000 wait + 2 switches x 0.75 x 1000 = 63106 ns
    # exits: the blocking switch exits first (0.75, no fault entry), else the copy (0.25)
    # extra: 0.25 x 250 + 1 x (60 + 1000 + 900 + 20) = 2042.5 ns
    point = base_point | {
        "page_cache_size": 1 << 28,
        "device_latency": 80_000.0,
        "device_bandwidth": 4.096e9,
    }
    t_native, t_asi, exits = run(point, round_costs)
    assert t_native == pytest.approx(63106.0)
    assert exits["context_switch"] == pytest.approx(0.75)
    assert exits["page_cache"] == pytest.approx(0.25)
    assert t_asi - t_native == pytest.approx(2042.5)


def test_lazy_flush_needs_a_shootdown_per_reclaim_batch(base_point, round_costs):
    # as above with ephmap + ctxsw_same_mm (switch to idle: no mm change) + multi_slot:
    # 0.75 evictions/op / 32 per batch shootdowns of 600 + 3 x 100 (4 CPUs), the
    # initiator's full flush (50), a refill on each of the 4 CPUs (4000) and a TLB-flush
    # exit on each (4 x 1980); pte 10 + software 40; the wrap as above (3030 / 512)
    point = base_point | {
        "page_cache_size": 1 << 28,
        "device_latency": 80_000.0,
        "device_bandwidth": 4.096e9,
        "cpus": 4,
        "ephmap": True,
        "ctxsw_same_mm": True,
        "multi_slot": True,
    }
    t_native, t_asi, exits = run(point, round_costs)
    assert sum(exits.values()) == pytest.approx(exits["tlb_flush"])
    assert exits["tlb_flush"] == pytest.approx(0.75 / 32 * 4 + 1 / 512)
    per_shootdown = 900 + 50 + 4000 + 4 * 1980
    assert t_asi - t_native == pytest.approx(0.75 / 32 * per_shootdown + 50 + 3030 / 512)


def test_fault_under_the_held_slot_needs_a_second_slot(base_point, round_costs):
    # half the reads take a zero-fill fault while holding the ephmap;
    # with ephmap_zeroing but one slot, that fault exits (nested_slot):
    # 0.5 x (250 + 60 + 1000 + 920) = 1115, plus the read's pte 10 + software 40 +
    # invlpg 80 + re-walk 30
    point = base_point | {"ephmap": True, "ephmap_zeroing": True, "io_fault_fraction": 0.5}
    t_native, t_asi, exits = run(point, round_costs)
    assert exits["nested_slot"] == pytest.approx(0.5)
    # native adds the fault: 0.5 x (500 + 4096 / 16) = 378
    assert t_native == pytest.approx(856 + 378)
    assert t_asi - t_native == pytest.approx(1115 + 160)
    # two slots (multi_slot, lazy flush): no exit but the wraps; 1.5 pages mapped per op
    # in 1.5 uses: pte 15 + software 60 + 1.5 / 512 wraps of 3030
    t_native, t_asi, exits = run(point | {"multi_slot": True, "ephmap_slots": 2}, round_costs)
    assert sum(exits.values()) == pytest.approx(1.5 / 512)
    assert t_asi - t_native == pytest.approx(75 + 1.5 * 3030 / 512)


@pytest.mark.parametrize(
    ("ephmap", "multi_slot", "slots", "cow_exits"),
    [
        (False, False, 1, 1.0),
        (True, False, 4, 1.0),
        (True, True, 1, 1.0),
        (True, True, 2, 0.0),
        (True, True, 8, 0.0),
    ],
)
def test_copy_on_write_needs_two_slots(
    base_point, round_costs, ephmap, multi_slot, slots, cow_exits
):
    point = base_point | {
        "io_per_op": 0.0,
        "cow_per_op": 1.0,
        "ephmap": ephmap,
        "multi_slot": multi_slot,
        "ephmap_slots": slots,
    }
    _, _, exits = run(point, round_costs)
    assert exits["cow"] == cow_exits


def test_l1tf_flushes_l1d_and_noflush_keeps_the_tlb(base_point, round_costs):
    # + L1D flush 400; - TLB refill 1000 (no kernel invalidation to reach the other
    # address space without the ephmap) + the enter's generation check 10
    _, t_asi, _ = run(base_point | {"l1tf": True, "cr3_noflush": True}, round_costs)
    assert t_asi == pytest.approx(856 + 2230 + 400 - 1000 + 10)


def test_context_switch_exits_only_on_mm_change_once_fixed(base_point, round_costs):
    # 2 switches/op outside I/O, 30 % to another mm: 2 exits -> 0.6 exits (no fault entry)
    point = base_point | {"io_per_op": 0.0, "ctxsw_per_op": 2.0, "ctxsw_mm_change": 0.3}
    _, _, exits = run(point, round_costs)
    assert exits["context_switch"] == pytest.approx(2.0)
    _, _, exits = run(point | {"ctxsw_same_mm": True}, round_costs)
    assert exits["context_switch"] == pytest.approx(0.6)


def test_invlpg_ceiling_switches_to_a_full_flush(base_point, round_costs):
    # a 256 KiB read = 64 pages; folios of 64 pages: one mapping >= 33 pages -> a full
    # flush (invpcid_flush_all: no exit): 64 x pte 10 + one use 40 + flush 50 + refill 1000
    point = base_point | {"io_size": 256 * 1024, "folio_pages": 64, "ephmap": True}
    t_native, t_asi, exits = run(point, round_costs)
    assert t_asi - t_native == pytest.approx(640 + 40 + 1050)
    assert sum(exits.values()) == 0.0
    # folios of 16 pages: 4 mappings of 16 < 33 -> 4 uses, 64 INVLPGs, 4 re-walks
    t_native, t_asi, _ = run(point | {"folio_pages": 16}, round_costs)
    assert t_asi - t_native == pytest.approx(640 + 4 * 40 + 64 * 80 + 4 * 30)


def test_metadata_exit_comes_first_in_the_syscall(base_point, round_costs):
    # 40 % of reads touch metadata: that exit takes the syscall out before the copy would
    _, _, exits = run(base_point | {"metadata_per_io": 0.4}, round_costs)
    assert exits["metadata"] == pytest.approx(0.4)
    assert exits["page_cache"] == pytest.approx(0.6)
    _, _, exits = run(base_point | {"metadata_per_io": 0.4, "metadata_mapped": True}, round_costs)
    assert exits["metadata"] == 0.0 and exits["page_cache"] == 1.0
