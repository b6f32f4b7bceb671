"""Hand-computed tests of each default mitigation's terms (model.mechanism.MITIGATION_TERMS).

Costs are the ``round_costs`` fixture (conftest.py): pti 130, spec_ctrl_write 300, bhb_clear 30,
pbrsb 5, verw 100, srso 200, swapgs_fence 10, rsb_fill 20, ibpb 900, l1d_flush 400, page_walk
100 [ns]; factors ibrs 0.25, retpoline 0.1, call_depth 0.05, its 0.02, safe_ret 0.2. The
``base_point`` is one 4 KiB tmpfs read: native 856 ns = base 300 (user) + syscall 100 + page
lookup 200 + 4096 B / 16 B/ns; its kernel time is 100 + 200 + 256 = 556 ns. Every value is
checked against both the reference and the vectorized model.
"""

from __future__ import annotations

import numpy as np
import pytest

from asi_slowdown.model.evaluate import evaluate
from asi_slowdown.model.reference import reference_op


def priced(point, costs) -> dict[str, float]:
    """Per default mitigation its cost per op [ns], from both implementations, checked equal;
    plus ``total``, ``t_native`` and the blanket VM protection's time ``t_blanket``."""
    ref = reference_op(point, costs)
    vec = evaluate(point, {k: np.array([v]) for k, v in costs.items()})
    out = {}
    for m, value in ref["default_cost"].items():
        assert vec[f"default_ns_{m}"][0] == pytest.approx(value, abs=1e-9)
        out[m] = value
    out["total"] = ref["t_default"] - ref["t_native"]
    out["t_native"] = ref["t_native"]
    out["t_blanket"] = ref["t_blanket"]
    assert vec["t_ibpb_vmexit_mean"][0] == pytest.approx(ref["t_blanket"])
    assert vec["default_vs_off_p50"][0] == pytest.approx(out["total"] / ref["t_native"])
    return out


def on(*names, **extra):
    return {f"default_{m}": True for m in names} | extra


def test_pti_pays_its_cr3_pair_and_without_pcid_a_tlb_refill(base_point, round_costs):
    # with PCID: one entry x 130; without: + 10 entries of working set x 100 per entry
    assert priced(base_point | on("pti"), round_costs)["pti"] == pytest.approx(130)
    no_pcid = priced(base_point | on("pti", pcid=False), round_costs)
    assert no_pcid["pti"] == pytest.approx(130 + 1000)


def test_legacy_ibrs_pays_two_msr_writes_per_entry_and_a_share_of_kernel_time(
    base_point, round_costs
):
    # 2 x 300 + 556 x 0.25 = 739; a user page fault is an entry too: 2 entries with 500 more
    # kernel time (the fault) and 256 (the zeroed page) -> 4 x 300 + 1312 x 0.25 = 1528
    assert priced(base_point | on("ibrs"), round_costs)["ibrs"] == pytest.approx(739)
    faulting = base_point | on("ibrs", zero_fill_per_op=1.0)
    assert priced(faulting, round_costs)["ibrs"] == pytest.approx(1200 + 1312 * 0.25)


def test_kernel_time_includes_base_times_kernel_share(base_point, round_costs):
    # retpolines at 0.1 of 556 + 300 x 0.5 = 706 kernel ns
    point = base_point | on("retpoline", base_kernel_share=0.5)
    assert priced(point, round_costs)["retpoline"] == pytest.approx(70.6)


@pytest.mark.parametrize(
    ("version", "ibrs", "retpoline", "call_depth"),
    [
        (518, 0.0, 55.6, 0.0),  # before Retbleed: the retpolines
        (519, 739.0, 0.0, 0.0),  # retbleed=ibrs replaces them
        (601, 739.0, 0.0, 0.0),  # retbleed=stuff does not exist yet
        (602, 0.0, 55.6, 27.8),  # call-depth tracking replaces IBRS, keeps the retpolines
    ],
)
def test_the_kernel_version_picks_the_spectre_v2_and_retbleed_mitigation(
    base_point, round_costs, version, ibrs, retpoline, call_depth
):
    point = base_point | on("ibrs", "retpoline", "call_depth", kernel_version=version)
    cost = priced(point, round_costs)
    assert (cost["ibrs"], cost["retpoline"], cost["call_depth"]) == pytest.approx(
        (ibrs, retpoline, call_depth)
    )


def test_bhi_clears_on_syscall_entry_only_from_6_9(base_point, round_costs):
    # two zero-fill faults: 3 entries, 1 syscall; BHI 1 x 30, VERW 3 x 100, fence 3 x 10
    point = base_point | on("bhi", "verw", "swapgs_fence", zero_fill_per_op=2.0)
    cost = priced(point, round_costs)
    assert (cost["bhi"], cost["verw"], cost["swapgs_fence"]) == pytest.approx((30, 300, 30))
    assert priced(point | {"kernel_version": 608}, round_costs)["bhi"] == 0.0


def test_srso_untrains_per_entry_and_slows_every_return(base_point, round_costs):
    # 1 entry x 200 + 556 x 0.2; ITS 556 x 0.02; neither before its version
    cost = priced(base_point | on("srso", "its"), round_costs)
    assert (cost["srso"], cost["its"]) == pytest.approx((311.2, 11.12))
    old = priced(base_point | on("srso", "its", kernel_version=604), round_costs)
    assert old["srso"] == old["its"] == 0.0


def test_context_switches_pay_the_rsb_fill_and_the_asked_for_ibpb(base_point, round_costs):
    # 4 switches x 20; half switch mm, a quarter of those into a task that asked: 0.5 x 900
    point = base_point | on(
        "rsb_ctxsw", "ibpb_cond", ctxsw_per_op=4.0, ctxsw_mm_change=0.5, ibpb_task_share=0.25
    )
    cost = priced(point, round_costs)
    assert (cost["rsb_ctxsw"], cost["ibpb_cond"]) == pytest.approx((80, 450))


def test_a_guest_pays_per_vm_exit_and_per_return_to_the_vmm(base_point, round_costs):
    # a guest op of 1000 ns with 1e6 I/O exits/s: one VM exit per op; half of the ops return
    # to the VMM. Per op: PBRSB 5, BHI 30 on the exit, VERW 100 on the entry, VMSCAPE 0.5 x 900
    guest = base_point | {
        "io_per_op": 0.0,
        "base_time": 1000.0,
        "vmexits_io_per_s": 1e6,
        "kvm_run_returns_per_s": 5e5,
    }
    point = guest | on("pbrsb_vmexit", "bhi", "verw", "vmscape")
    cost = priced(point, round_costs)
    expected = {"pbrsb_vmexit": 5, "bhi": 30, "verw": 100, "vmscape": 450}
    assert {m: cost[m] for m in expected} == pytest.approx(expected)
    # the blanket protection's IBPB on every exit covers VMSCAPE's: + 900 - 450
    assert cost["t_blanket"] == pytest.approx(1000 + 585 + 900 - 450)
    assert priced(point | {"kernel_version": 616}, round_costs)["vmscape"] == 0.0
