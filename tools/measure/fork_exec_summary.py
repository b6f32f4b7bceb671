"""Summary of fork_exec.sh: counts per op (one op = one fork + exec + exit + wait of /bin/true).

Usage: python3 fork_exec_summary.py OUTDIR ITERATIONS REPS BASELINE_S
"""

# ruff: noqa: UP031, E741

import datetime
import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import measure_common as mc

out, n, reps, baseline_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])


def p(f):
    return os.path.join(out, f)


EV = mc.events("fork_exec.events", "new_counts.events", "switches.events")
EV_NEW = mc.events("new_counts.events", "switches.events")
pt, unsup = mc.perf(p("fe_measured.perf-task.csv"), EV)
ps, _ = mc.perf(p("fe_measured.perf-system.csv"), EV)
pb, _ = mc.perf(p("fe_baseline.perf-system.csv"), EV_NEW)
tv = mc.time_v(p("fe_measured.time-v.txt"))
load_b, irq_b, soft_b, _ = mc.window(p("fe_baseline.snap.before"), p("fe_baseline.snap.after"), 0.0)
load_m, irq_m, soft_m, vm = mc.window(
    p("fe_measured.snap.before"), p("fe_measured.snap.after"), tv["cpu_s"]
)

timing = []
for r in range(1, reps + 1):
    t = mc.time_v(p("fe_timing%d.time-v.txt" % r))
    load, irqs, soft, _ = mc.window(
        p("fe_timing%d.snap.before" % r), p("fe_timing%d.snap.after" % r), t["cpu_s"]
    )
    timing.append(
        {
            "time_v": t,
            "load": load,
            "interrupts": irqs,
            "softirqs": soft,
            "cpu_us_per_op": round(t["cpu_s"] / n * 1e6, 1),
            "user_us_per_op": round(t["user_s"] / n * 1e6, 1),
            "sys_us_per_op": round(t["sys_s"] / n * 1e6, 1),
            "wall_us_per_op": round(t["wall_s"] / n * 1e6, 1),
        }
    )
med = sorted(timing, key=lambda x: x["cpu_us_per_op"])[len(timing) // 2]

wall = load_m["wall_s"]
sys_minus_bg = {k: ps[k] - pb[k] / baseline_s * wall for k in pb}


def per(x, d=3):
    return round(x / n, d)


wp = pt["page_fault_user_wp"] + pt["page_fault_kernel_wp"]
wp_sys = ps["page_fault_user_wp"] + ps["page_fault_kernel_wp"]
copy_share = 1 - vm["pgreuse"] / wp_sys if wp_sys else None
reads = pt["read"] + pt["pread64"] + pt["readv"]
writes = pt["write"] + pt["pwrite64"] + pt["writev"]

summary = {
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    "unit_of_work": "one op = one fork + exec + exit + wait of /bin/true from a bash loop; %d ops per run"
    % n,
    "machine": mc.machine(),
    "recipe": {
        "script": "tools/measure/fork_exec.sh (summary: fork_exec_summary.py, events: events/*.events)",
        "loop": "for ((i = 0; i < %d; i++)); do /bin/true; done" % n,
        "runs": "warm loop -> baseline (idle, %g s) -> %d timing runs (nothing attached) -> measured run "
        "(perf stat per command and -a)" % (baseline_s, reps),
        "perf": mc.sh("perf", "--version"),
    },
    "unsupported_perf_events": unsup,
    "load": {
        "quiet_gate": open(p("fe_quiet.log")).read().splitlines(),
        "clock_probe": open(p("fe_clock.txt")).read().splitlines(),
        "baseline_idle": load_b,
        "timing_runs": [t["load"] for t in timing],
        "measured_run": load_m,
    },
    "cpu_time_per_op": {
        "source": "median of %d timing runs (nothing attached), /usr/bin/time -v of the loop and its children"
        % reps,
        "cpu_us": med["cpu_us_per_op"],
        "user_us": med["user_us_per_op"],
        "sys_us": med["sys_us_per_op"],
        "wall_us": med["wall_us_per_op"],
        "all_timing_runs_cpu_us": [t["cpu_us_per_op"] for t in timing],
        "measured_run_with_perf_cpu_us": round(tv["cpu_s"] / n * 1e6, 1),
    },
    "per_op": {
        "note": "measured run, perf stat per command (the loop tree) / %d, unless said otherwise"
        % n,
        "syscalls": per(pt["syscalls"]),
        "syscalls_other_than_read_write": per(pt["syscalls"] - reads - writes),
        "read_calls": per(reads),
        "write_calls": per(writes),
        "read_calls_by_kind": {k: per(pt[k]) for k in ("read", "pread64", "readv")},
        "clone_calls_by_kind": {k: per(pt[k]) for k in ("clone", "clone3", "fork", "vfork")},
        "execve_calls": per(pt["execve"] + pt["execveat"]),
        "voluntary_ctx_switches": per(med["time_v"]["voluntary_ctx_switches"]),
        "involuntary_ctx_switches": per(med["time_v"]["involuntary_ctx_switches"]),
        "ctx_switches_note": "median timing run (time -v); measured run perf context-switches = {} per op".format(
            per(pt["context-switches"])
        ),
        "cpu_migrations": per(pt["cpu-migrations"]),
        "page_faults": per(pt["page-faults"]),
        "user_faults": per(pt["page_fault_user"]),
        "user_write_faults": per(pt["page_fault_user_write"]),
        "zero_fill_faults": per(pt["page_fault_user_write"] - pt["page_fault_user_wp"]),
        "zero_fill_note": "absent-page user write faults; a few are private copies of file pages (do_cow_fault)",
        "write_protect_faults": per(wp),
        "write_protect_faults_kernel": per(pt["page_fault_kernel_wp"]),
        "cow_copies_estimate": per(wp * copy_share) if copy_share is not None else None,
        "cow_method": "ESTIMATE: write-protect faults (user+kernel) x (1 - vmstat pgreuse / wp faults of the whole "
        "machine = %s)" % (round(copy_share, 4) if copy_share is not None else None),
        "page_allocations_events": per(pt["mm_page_alloc_events"]),
        "mm": mc.mm_summary(pt, n),
        "mm_note": "mm_setups = task:task_newtask without CLONE_VM + sched_process_exec",
        "tlb": mc.tlb_summary(pt, n),
        "tlb_note": "tlb:tlb_flush in the tree's context; full_flushes_native_flush_tlb_local = pages == "
        "TLB_FLUSH_ALL with reason 1-3 (flush_tlb_func full flush -> flush_tlb_local()); task_switch "
        "= CR3 write in switch_mm_irqs_off (not native_flush_tlb_local)",
        "tlb_whole_machine_minus_background": mc.tlb_summary(sys_minus_bg, n),
        "interrupts_in_tree_context": mc.irq_task_summary(pt, n, 4),
    },
    "context_switches_per_s_per_cpu": {
        "measured_run_whole_machine": mc.switch_summary(ps, wall, mc.os.cpu_count()),
        "baseline_idle_whole_machine": mc.switch_summary(pb, baseline_s, mc.os.cpu_count()),
        "measured_run_tree_per_op": {k: per(pt[k]) for k, _, _ in mc.events("switches.events")},
    },
    "interrupts_per_s_per_cpu": {
        "timing_run_median": med["interrupts"],
        "timing_run_median_softirqs": med["softirqs"],
        "measured_run": irq_m,
        "baseline_idle": irq_b,
        "baseline_idle_softirqs": soft_b,
    },
    "raw": {
        "perf_task": pt,
        "perf_system": ps,
        "perf_baseline_system": pb,
        "time_v_measured": tv,
        "time_v_timing": [t["time_v"] for t in timing],
        "vmstat_delta_measured": {
            k: vm[k] for k in ("pgfault", "pgalloc_normal", "pgreuse") if k in vm
        },
    },
}
with open(p("fork_exec.yaml"), "w") as f:
    yaml.safe_dump(summary, f, sort_keys=False, width=120)
print(
    yaml.safe_dump(
        {k: summary[k] for k in ("load", "cpu_time_per_op", "per_op")}, sort_keys=False, width=120
    )
)
