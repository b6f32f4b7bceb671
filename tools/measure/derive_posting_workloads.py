"""The workloads of the posting's build phases (conf/workload/kbuild_*.yaml) from the
recipe's counts, and each phase's base_time.

Usage: python3 derive_posting_workloads.py RESULTS_DIR [--vm-ghz 2.95] [--cpu conf/cpu/sapphire_rapids.yaml]

RESULTS_DIR holds posting_build.yaml (posting_build.sh) and fd_split.txt
(posting_build_fd_split.sh). Prints, per phase, the workload values; base_time as
derive_workload.py computes it (base_time = T_vm x vm_ghz / model_ghz - P, P the paths the
model prices at the profile's median costs), with T_vm the phase's CPU time from the timing
run given in TIMING (no perf attached) where there is one.
"""

# ruff: noqa: UP031

import argparse
import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from derive_workload import medians  # noqa: E402

PAGE = 4096
REUSE_SHARE = 0.130  # write-protect faults that reuse the page (vmstat pgreuse), kc.yaml


def split(path):
    """Share of read calls that go to pipes, and of write calls that go to files, from
    fd_split.txt (lines: call kind count)."""
    n = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        call, kind, count = line.split()
        n[(call, kind)] = n.get((call, kind), 0) + int(count)
    reads = sum(v for (c, _), v in n.items() if c in ("read", "pread64"))
    pipe_reads = sum(v for (c, k), v in n.items() if c in ("read", "pread64") and k == "pipe")
    file_reads = sum(
        v for (c, k), v in n.items() if c in ("read", "pread64") and k.endswith("file")
    )
    return {"reads": reads, "pipe_reads": pipe_reads, "file_reads": file_reads, "raw": n}


def refill_per_exit(path, rate, cap):
    """Expected TLB entries refilled per exit from fault_gaps.sh's histogram: a task refills
    what it touches before its next exit, ``min(cap, rate x gap)`` [entries], with ``rate``
    the distinct pages it touches per microsecond after a flush [1/us] and ``cap`` its whole
    footprint; each power-of-two bucket at its geometric middle."""
    import math
    import re

    total = weighted = 0
    for line in open(path):
        m = re.match(r"\[(\d+)(K|M)?(?:, (\d+)(K|M)?)?\)?\]?\s+(\d+)", line.strip())
        if not m:
            continue
        unit = {"K": 1024, "M": 1024**2, None: 1}
        lo = int(m.group(1)) * unit[m.group(2)]
        hi = int(m.group(3)) * unit[m.group(4)] if m.group(3) else lo + 1
        n = int(m.group(5))
        total += n
        weighted += n * min(cap, rate * math.sqrt(lo * hi))
    return weighted / total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--vm-ghz", type=float, default=2.95)
    ap.add_argument("--cpu", default="conf/cpu/sapphire_rapids.yaml")
    ap.add_argument("--timing", default="", help="phase=cpu_s,... CPU times of a perf-free run")
    a = ap.parse_args()
    doc = yaml.safe_load(open(os.path.join(a.results, "posting_build.yaml")))
    cpu, m = medians(a.cpu)
    factor = a.vm_ghz / float(cpu["ghz"])
    timing = dict(kv.split("=") for kv in a.timing.split(",") if kv)
    out = {"scaling_factor": round(factor, 4)}
    for phase, p in doc["phases"].items():
        c = p["counts"]
        io = c["read"] + c["pread64"] + c["write"] + c["pwrite64"] + c["readv"] + c["writev"]
        wp = c["page_fault_user_wp"]
        zero = c["page_fault_user_write"] - wp
        cow = wp * (1 - REUSE_SHARE)
        other = c["syscalls"] - io
        ctx = p["voluntary_switches"]
        cpu_s = float(timing.get(phase, p["user_s"] + p["sys_s"]))
        priced = (
            (io + other) * m["syscall"]
            + (zero + cow) * m["user_fault"]
            + ctx * m["context_switch"]
            + (zero + cow) * PAGE / m["copy_bandwidth"]
        )
        out[phase] = {
            "io_per_op": io,
            "reads": c["read"] + c["pread64"],
            "writes": c["write"],
            "syscalls_per_op": other,
            "zero_fill_per_op": zero,
            "cow_per_op": round(cow),
            "ctxsw_per_op": ctx,
            "tlb_flushes_per_op": c["tlb_full_reason3"],
            "mm_setups_per_op": c["newtask_new_mm"] + c["sched_process_exec"],
            "cpu_s_vm": cpu_s,
            "priced_ns_at_medians": round(priced),
            "base_time": round(cpu_s * 1e9 * factor - priced, -6),
        }
    gaps = os.path.join(a.results, "fault_gaps.txt")
    if os.path.exists(gaps):
        out["refill_per_exit"] = {
            f"rate {r}/us, footprint {w}": round(refill_per_exit(gaps, r, w), 1)
            for r in (1.5, 2.5, 4.0)
            for w in (128, 256, 512)
        }
    fd = os.path.join(a.results, "fd_split.txt")
    if os.path.exists(fd):
        out["fd_split"] = split(fd)
    print(yaml.safe_dump(out, sort_keys=False, width=110))


main()
