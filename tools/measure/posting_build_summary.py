"""Summary of posting_build.sh: counts, CPU and wall time per phase of the posting's build.

Usage: python3 posting_build_summary.py OUTDIR     (writes OUTDIR/posting_build.yaml)
"""

import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import measure_common as mc

PHASES = ("untar", "tinyconfig", "vmlinux", "cleanup")
KEEP = (
    "syscalls",
    "read",
    "write",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "page_fault_user",
    "page_fault_user_write",
    "page_fault_user_wp",
    "page_fault_kernel",
    "context-switches",
    "task_newtask",
    "newtask_new_mm",
    "newtask_vfork",
    "sched_process_exec",
    "tlb_full_reason0",
    "tlb_full_reason1",
    "tlb_full_reason2",
    "tlb_full_reason3",
)

out = sys.argv[1]
EV = mc.events("kernel_compile.events", "new_counts.events", "switches.events")


def path(name):
    return os.path.join(out, name)


summary = {"recipe": "tools/measure/posting_build.sh", "machine": {}, "phases": {}}
for line in open(path("machine.txt")):
    key, _, value = line.partition(": ")
    summary["machine"][key.strip()] = value.strip()
for phase in PHASES:
    counts, unsupported = mc.perf(path(f"{phase}.perf-task.csv"), EV)
    tv = mc.time_v(path(f"{phase}.time-v.txt"))
    load = mc.window(
        path(f"{phase}.snap.before"), path(f"{phase}.snap.after"), own_cpu_s=tv["cpu_s"]
    )
    wall_s = int(open(path(f"{phase}.wall_ns")).read()) / 1e9
    summary["phases"][phase] = {
        "wall_s": round(wall_s, 3),
        "user_s": tv["user_s"],
        "sys_s": tv["sys_s"],
        "voluntary_switches": tv["voluntary_ctx_switches"],
        "involuntary_switches": tv["involuntary_ctx_switches"],
        "minor_faults": tv["minor_faults"],
        "counts": {k: int(counts[k]) for k in KEEP if k in counts},
        "unsupported": sorted(unsupported),
        "load": {k: load[k] for k in ("machine_busy_share", "other_cpu_s") if k in load},
    }
with open(path("posting_build.yaml"), "w") as f:
    yaml.safe_dump(summary, f, sort_keys=False, width=110)
print(yaml.safe_dump(summary, sort_keys=False, width=110))
