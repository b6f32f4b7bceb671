"""``perf kvm stat report --event=vmexit`` into VM-exit rates, and asi-calibrate reading it.

The sample (``tests/data/kvmstat/sysbench_cpu.txt``, provenance in its README) is a
published report of a CPU-bound guest over about 22.66 s on one busy vCPU.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from asi_slowdown.pipeline.calibrate.kvmstat import parse_kvm_stat, read_kvm_stat
from asi_slowdown.pipeline.calibrate.measurements import load_inputs
from asi_slowdown.pipeline.calibrate.run import run
from asi_slowdown.pipeline.configuration.compose import CONF_DIR
from asi_slowdown.pipeline.configuration.errors import ConfigError

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "kvmstat" / "sysbench_cpu.txt"


def test_the_sample_reads_into_rates_by_reason():
    stat = read_kvm_stat(SAMPLE, seconds=22.66, vcpus=1)
    assert stat.total_samples == 25898
    assert stat.samples == {
        "ept_violation": 0,
        "hlt": 2232,
        "external_interrupt": 5877,
        "msr": 9167,
        "io": 303,  # EPT_MISCONFIG: MMIO
        "preemption_timer": 5728,
    }
    assert stat.other == {
        "CPUID": 2160,
        "PAUSE_INSTRUCTION": 390,
        "EOI_INDUCED": 37,
        "EXCEPTION_NMI": 4,
    }
    rates = stat.rates()
    assert rates["msr"] == pytest.approx(9167 / 22.66)
    assert rates["hlt"] == pytest.approx(98.5, abs=0.1)
    # two vCPUs share the same samples: half the rate per vCPU
    assert read_kvm_stat(SAMPLE, seconds=22.66, vcpus=2).rates()["msr"] == pytest.approx(
        rates["msr"] / 2
    )
    assert "workload.vmexits_msr_per_s=404.545" in stat.overrides()


def test_amd_names_map_to_the_same_reasons():
    text = (
        "Analyze events for all VMs, all VCPUs:\n\n"
        "             VM-EXIT    Samples  Samples%     Time%    Min Time    Max Time"
        "         Avg time\n\n"
        "                 npf        10    50.00%    50.00%      1.00us      2.00us"
        "      1.50us ( +-   1.00% )\n"
        "                 msr        10    50.00%    50.00%      1.00us      2.00us"
        "      1.50us ( +-   1.00% )\n\n"
        "Total Samples:20, Total events handled time:30.00us.\n"
    )
    stat = parse_kvm_stat(text, "amd.txt", seconds=1.0, vcpus=1)
    assert stat.samples["ept_violation"] == 10 and stat.samples["msr"] == 10


def sample_lines() -> list[str]:
    return SAMPLE.read_text().splitlines()


def with_line(number: int, text: str | None) -> str:
    lines = sample_lines()
    if text is None:
        del lines[number - 1]
    else:
        lines[number - 1] = text
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            with_line(7, "           MSR_WRITE       lots    35.40%"),
            "x.txt: line 7: expected a row",
        ),
        (
            with_line(8, "  EXTERNAL_INTERRUPT  5877 22.69% 0.02% 0.37 1175.48 2.43"),
            "x.txt: line 8",
        ),
        (with_line(17, "Total Samples:25899, Total events handled time:1.0us."), "line 17: Total"),
        (with_line(17, None), "x.txt: no 'Total Samples:N"),
        (with_line(5, "             VM EXITS"), "x.txt: no 'VM-EXIT Samples"),
        ("", "x.txt: no 'VM-EXIT Samples"),
        (with_line(9, sample_lines()[6]), "x.txt: line 9: reason MSR_WRITE appears twice"),
    ],
)
def test_malformed_reports_fail_in_one_line_naming_file_and_line(text, message):
    with pytest.raises(ConfigError, match=message) as error:
        parse_kvm_stat(text, "x.txt", seconds=10.0, vcpus=1)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("seconds", "vcpus", "message"), [(0, 1, "seconds must be"), (1.0, 0, "vcpus must be")]
)
def test_the_recording_needs_its_length_and_vcpus(seconds, vcpus, message):
    with pytest.raises(ConfigError, match=message):
        read_kvm_stat(SAMPLE, seconds=seconds, vcpus=vcpus)


def manifest(tmp_path: Path, entry: dict, published: list | None = None) -> Path:
    shutil.copy(SAMPLE, tmp_path / "vmexit.txt")
    doc = {"workload": "guest_kernel_compile", "profile": "sapphire_rapids", "kvm_stat": [entry]}
    if published is not None:
        doc["published"] = published
    (tmp_path / "manifest.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


def test_a_manifest_lists_perf_kvm_stat_reports(tmp_path):
    inputs = load_inputs(
        str(manifest(tmp_path, {"file": "vmexit.txt", "seconds": 22.66, "vcpus": 1})), CONF_DIR
    )
    (vm,) = inputs.vm_exits
    assert vm.workload == "guest_kernel_compile"
    assert vm.stat.samples["msr"] == 9167
    assert [f.kind for f in inputs.files] == ["manifest", "perf_kvm_stat"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"file": "vmexit.txt", "vcpus": 1}, "kvm_stat 1: 'seconds' is required"),
        ({"file": "nope.txt", "seconds": 1, "vcpus": 1}, "kvm_stat 1: perf kvm stat report"),
        ({"file": "vmexit.txt", "seconds": 1, "vcpus": 1, "cpus": 2}, "unknown column 'cpus'"),
        ({"file": "vmexit.txt", "seconds": -1, "vcpus": 1}, "seconds must be a number > 0"),
    ],
)
def test_bad_kvm_stat_entries_fail_in_one_line(tmp_path, entry, message):
    with pytest.raises(ConfigError, match=message) as error:
        load_inputs(str(manifest(tmp_path, entry)), CONF_DIR)
    assert "\n" not in str(error.value)


def test_asi_calibrate_applies_the_reports_rates_to_its_workload(tmp_path):
    entry = {"file": "vmexit.txt", "seconds": 22.66, "vcpus": 1}
    published = [{"stage": "rfc_v2", "cpus": 1, "throughput_loss": 0.001, "sigma": 0.01}]
    (tmp_path / "m").mkdir()
    path = manifest(tmp_path / "m", entry, published)
    outcome = run(
        [
            f"measurements={path}",
            "calibrate.name=sr_guest",
            f"calibrate.conf_dir={tmp_path / 'conf'}",
            f"calibrate.report_dir={tmp_path / 'reports'}",
            "samples=64",
        ]
    )
    assert "## VM exits (perf kvm stat)" in outcome.report
    assert "vmexit.txt" in outcome.report
    # the datum's point carries the measured rates, not the preset's assumptions
    (row,) = outcome.verified
    assert row["t_asi_mean"] > row["t_native_mean"]


def test_reports_alone_are_not_enough_to_fit(tmp_path):
    path = manifest(tmp_path, {"file": "vmexit.txt", "seconds": 22.66, "vcpus": 1})
    with pytest.raises(ConfigError, match="perf kvm stat reports only set VM-exit rates"):
        run([f"measurements={path}", f"calibrate.conf_dir={tmp_path / 'conf'}"])
