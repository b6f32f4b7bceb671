"""Read ``perf kvm stat report --event=vmexit`` text into a guest's VM exits per second.

On a KVM host, around the guest workload::

    perf kvm stat record -a sleep 30            # every VM, every vCPU, for 30 s
    perf kvm stat report --event=vmexit > vmexit.txt

``perf kvm stat report`` prints a title (``Analyze events for all VMs, all VCPUs:``,
or one VM's or vCPU's), a column header starting ``VM-EXIT``, one row per exit
reason (its name, the number of samples, their share, the share of the handling
time, and the minimum, maximum and mean handling time in us, the mean with its
``( +- x% )`` spread) and a ``Total Samples:N, Total events handled time:Tus.``
line. Lines before the column header (the title, a shell prompt) and lines
starting with ``#`` are skipped.

The report has no recording time and no vCPU count, so the manifest gives both
(``seconds``: the ``sleep`` of the record; ``vcpus``: the vCPUs that ran in it).
Each reason's samples, over ``seconds x vcpus``, is its rate per second per vCPU;
Intel's and AMD's names map onto :data:`model.params.VM_EXIT_REASONS`
(:data:`PERF_NAMES`), and rows of other reasons (``CPUID``, ``PAUSE_INSTRUCTION``,
``VMCALL``, ...) are kept as ``other`` and reported, not modelled.

Every problem is a one-line :class:`~pipeline.configuration.errors.ConfigError`
naming the file, the line and what was expected there.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from asi_slowdown.model.params import VM_EXIT_REASONS
from asi_slowdown.pipeline.configuration.errors import ConfigError

PERF_NAMES: dict[str, str] = {
    # Intel (VMX_EXIT_REASONS in arch/x86/include/uapi/asm/vmx.h)
    "EPT_VIOLATION": "ept_violation",
    "HLT": "hlt",
    "EXTERNAL_INTERRUPT": "external_interrupt",
    "MSR_READ": "msr",
    "MSR_WRITE": "msr",
    "IO_INSTRUCTION": "io",
    "EPT_MISCONFIG": "io",
    "PREEMPTION_TIMER": "preemption_timer",
    # AMD (SVM_EXIT_REASONS in arch/x86/include/uapi/asm/svm.h)
    "npf": "ept_violation",
    "hlt": "hlt",
    "interrupt": "external_interrupt",
    "msr": "msr",
    "io": "io",
}
"""perf's VM-exit names (as ``perf kvm stat`` prints them) -> the model's reason."""

HEADER = re.compile(r"^\s*VM-EXIT\s+Samples\s+Samples%\s+Time%", re.IGNORECASE)
ROW = re.compile(
    r"^\s*(?P<name>\S+)\s+(?P<samples>\d+)\s+(?P<share>[\d.]+)%\s+(?P<time>[\d.]+)%"
    r"\s+(?P<min>[\d.]+)us\s+(?P<max>[\d.]+)us\s+(?P<avg>[\d.]+)us"
    r"(?:\s+\(\s*\+-\s*[\d.]+%\s*\))?\s*$"
)
TOTAL = re.compile(
    r"^\s*Total Samples:\s*(?P<samples>\d+),\s*Total events handled time:\s*"
    r"(?P<time>[\d.]+)us\.?\s*$"
)
ROW_FORM = "a row 'NAME SAMPLES SAMPLES% TIME% MINus MAXus AVGus ( +- X% )'"


@dataclass(frozen=True)
class KvmStat:
    """One ``perf kvm stat report --event=vmexit``: samples by reason, over a recording."""

    path: str
    samples: dict[str, int]
    """Samples per model reason (:data:`model.params.VM_EXIT_REASONS`), zero if absent."""
    other: dict[str, int]
    """Samples of the reasons the model does not price, by perf's name."""
    total_samples: int
    seconds: float
    vcpus: int

    def rates(self) -> dict[str, float]:
        """VM exits per second per vCPU by model reason [1/s]."""
        span = self.seconds * self.vcpus
        return {reason: self.samples[reason] / span for reason in VM_EXIT_REASONS}

    def overrides(self) -> tuple[str, ...]:
        """The rates as workload overrides (``workload.vmexits_<reason>_per_s=...``)."""
        return tuple(
            f"workload.vmexits_{reason}_per_s={float(f'{rate:.6g}')!r}"
            for reason, rate in self.rates().items()
        )


def parse_kvm_stat(text: str, path: str, *, seconds: float, vcpus: int) -> KvmStat:
    """Parse the report ``text`` (read from ``path``); see the module notes."""
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
        raise ConfigError(
            f"{path}: seconds must be a number > 0 (the record's duration), got {seconds!r}"
        )
    if isinstance(vcpus, bool) or not isinstance(vcpus, int) or vcpus < 1:
        raise ConfigError(f"{path}: vcpus must be an integer >= 1, got {vcpus!r}")
    samples = dict.fromkeys(VM_EXIT_REASONS, 0)
    other: dict[str, int] = {}
    seen: set[str] = set()
    header = total = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if header is None:
            if HEADER.match(line):
                header = number
            continue
        found = TOTAL.match(line)
        if found:
            total = (number, int(found["samples"]))
            break
        row = ROW.match(line)
        if row is None:
            raise ConfigError(
                f"{path}: line {number}: expected {ROW_FORM} or the 'Total Samples:' line, "
                f"got {line.strip()!r}"
            )
        name, count = row["name"], int(row["samples"])
        if name in seen:
            raise ConfigError(f"{path}: line {number}: reason {name} appears twice")
        seen.add(name)
        reason = PERF_NAMES.get(name)
        if reason is None:
            other[name] = count
        else:
            samples[reason] += count
    if header is None:
        raise ConfigError(
            f"{path}: no 'VM-EXIT Samples Samples% Time% ...' header line: expected the output "
            "of perf kvm stat report --event=vmexit"
        )
    if total is None:
        raise ConfigError(
            f"{path}: no 'Total Samples:N, Total events handled time:Tus.' line after the "
            f"header at line {header} (a truncated report?)"
        )
    counted = sum(samples.values()) + sum(other.values())
    if counted != total[1]:
        raise ConfigError(
            f"{path}: line {total[0]}: Total Samples:{total[1]} but the rows add up to {counted}"
        )
    return KvmStat(path, samples, other, total[1], float(seconds), vcpus)


def read_kvm_stat(path: str | Path, *, seconds: float, vcpus: int) -> KvmStat:
    """Read and parse one report file (see the module notes)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the perf kvm stat report: {exc}") from None
    return parse_kvm_stat(text, str(path), seconds=seconds, vcpus=vcpus)
