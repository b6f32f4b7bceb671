"""asi-answer for a KVM guest: VM exits by reason per stage, and IBPB on every VM exit."""

from __future__ import annotations

import pytest

from asi_slowdown.model.mechanism import GUEST_SOURCES
from asi_slowdown.model.params import VM_EXIT_REASONS
from asi_slowdown.pipeline.projection.answer import evaluate_stages, run

GUEST = ["workload=guest_kernel_compile", "samples=128", "answer.source=model"]


@pytest.fixture(scope="module")
def text():
    return run(GUEST)


def test_the_answer_lists_vm_exits_by_reason_at_every_stage(text):
    block = text.split("VM exits per second per vCPU by reason")[1]
    header = next(line for line in block.splitlines() if line.startswith("stage"))
    assert header.split() == ["stage", *VM_EXIT_REASONS, "all"]
    for stage in ("rfc_v2", "ctxsw_same_mm", "mapping_fastpath", "kvm_vmm_switch"):
        assert any(line.startswith(stage) for line in block.splitlines())
    assert "VM exits/s" in block


def test_the_answer_compares_with_ibpb_on_every_vm_exit(text):
    (line,) = [x for x in text.splitlines() if x.startswith("Against IBPB on every VM exit")]
    assert "VM exits per op" in line and "P(cheaper)" in line


def test_a_workload_without_vm_exits_prints_neither():
    text = run(["workload=fio_randread_tmpfs", "samples=64", "answer.source=model"])
    assert "VM exits per second" not in text and "Against IBPB on every VM exit" not in text


def test_baseline_ibpb_vmexit_makes_the_verdicts_read_it():
    table, _ = evaluate_stages([*GUEST, "baseline=ibpb_vmexit"])
    last = table.iloc[-1]
    assert last.slowdown_vs_ibpb_vmexit_p50 < last.slowdown_vs_default_p50
    text = run([*GUEST, "baseline=ibpb_vmexit"])
    assert "verdicts against the kernel's default plus IBPB on every VM exit" in text


def test_a_blocked_vcpu_stops_exiting_with_ctxsw_same_mm():
    table, _ = evaluate_stages(GUEST)
    by_stage = table.set_index("stage")
    assert by_stage.loc["ctxsw_same_mm"].exits_vmexit_hlt < by_stage.loc["rfc_v2"].exits_vmexit_hlt


def test_the_answer_lists_host_exits_per_second_by_source_at_every_stage(text):
    block = text.split("Host ASI exits per second per vCPU by source")[1]
    lines = block.splitlines()
    header = next(line for line in lines if line.startswith("stage"))
    assert header.split() == ["stage", *(s.removeprefix("vmexit_") for s in GUEST_SOURCES), "all"]
    assert any(line.startswith("host inputs/s") for line in lines)
    # the cover letter's design (the last stage) returns to the VMM without an exit
    final = next(line for line in lines if line.startswith("kvm_vmm_switch"))
    column = ["stage", *(s.removeprefix("vmexit_") for s in GUEST_SOURCES), "all"].index(
        "kvm_run_return"
    )
    assert final.split()[column] == "0"
    prototype = next(line for line in lines if line.startswith("ephmap_prototype"))
    assert float(prototype.split()[column].replace(",", "")) > 0
