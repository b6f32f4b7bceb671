"""Summary of kernel_compile.sh: counts per build (one op = one build).

Usage: python3 kernel_compile_summary.py OUTDIR RECIPE BASELINE_S
"""

# ruff: noqa: UP031, E741

import datetime
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import measure_common as mc

out, recipe, baseline_s = sys.argv[1], sys.argv[2], float(sys.argv[3])


def p(f):
    return os.path.join(out, f)


def rd(f):
    return open(p(f)).read()


def time_v(f):
    return mc.time_v(p(f))


EV = mc.events("kernel_compile.events", "new_counts.events", "switches.events")
EV_NEW = mc.events("new_counts.events", "switches.events")
tv, warm = time_v("kc_measured.time-v.txt"), time_v("kc_warm.time-v.txt")
tim = time_v("kc_timing.time-v.txt")
pt, unsup = mc.perf(p("kc_measured.perf-task.csv"), EV)
ps, _ = mc.perf(p("kc_measured.perf-system.csv"), EV)
pb, _ = mc.perf(p("kc_baseline.perf-system.csv"), EV_NEW)
io = dict(
    (k, int(v)) for k, v in (l.split(": ") for l in rd("kc_measured.proc-io.txt").splitlines())
)

load_b, irq_b, soft_b, _ = mc.window(p("kc_baseline.snap.before"), p("kc_baseline.snap.after"), 0.0)
load_t, irq_t, soft_t, vm_t = mc.window(
    p("kc_timing.snap.before"), p("kc_timing.snap.after"), tim["cpu_s"]
)
load_m, irq_m, soft_m, vm = mc.window(
    p("kc_measured.snap.before"), p("kc_measured.snap.after"), tv["cpu_s"]
)

have_bt = os.path.exists(p("kc_bpftrace.txt"))
bt, bt_tlb = {}, {}
if have_bt:
    btv = time_v("kc_bpftrace.time-v.txt")
    load_bt, _, _, btvm = mc.window(
        p("kc_bpftrace.snap.before"), p("kc_bpftrace.snap.after"), btv["cpu_s"]
    )
    for l in rd("kc_bpftrace.txt").splitlines():
        m = re.match(r"^@(\w+)(?:\[(\d+)\])?: (\d+)$", l)
        if m:
            bt[m[1] + ("" if m[2] is None else "_" + m[2])] = int(m[3])
        m = re.match(r"^@tlb\[(\d+), (-?\d+)\]: (\d+)$", l)
        if m:
            bt_tlb[(int(m[1]), int(m[2]))] = int(m[3])

# Background: baseline rate (idle machine, whole machine) x wall time of the measured build.
wall = load_m["wall_s"]
bg = {k: pb[k] / baseline_s * wall for k in pb}
sys_minus_bg = {k: ps[k] - bg[k] for k in pb}

pgalloc = sum(
    vm.get(k, 0) for k in ("pgalloc_dma", "pgalloc_dma32", "pgalloc_normal", "pgalloc_movable")
)
pages_per_alloc = pgalloc / ps["mm_page_alloc_events"]
wp_sys = ps["page_fault_user_wp"] + ps["page_fault_kernel_wp"]
copy_share = 1 - vm["pgreuse"] / wp_sys
wp_task = pt["page_fault_user_wp"] + pt["page_fault_kernel_wp"]
cow_est = wp_task * copy_share
clones = sum(pt[k] for k in ("clone", "clone3", "fork", "vfork"))
reads = pt["read"] + pt["pread64"] + pt["readv"]
writes = pt["write"] + pt["pwrite64"] + pt["writev"]
sh = mc.sh

tlb_task = mc.tlb_summary(pt, digits=1)
tlb_sys = mc.tlb_summary(sys_minus_bg, digits=1)
bt_hist = None
if bt_tlb:
    bt_hist = {
        "{} pages={}".format(mc.TLB_REASONS.get(r, r), "ALL" if n == -1 else n): c
        for (r, n), c in sorted(bt_tlb.items(), key=lambda x: -x[1])[:40]
    }

summary = {
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    "unit_of_work": f"one build: `{recipe}` (page cache warm); every count below is a total per build",
    "machine": mc.machine(),
    "recipe": {
        "command": recipe,
        "script": "tools/measure/kernel_compile.sh (summary: kernel_compile_summary.py, events: events/*.events)",
        "source": "Debian linux-source-6.1 "
        + sh("dpkg-query", "-W", "-f=${Version}", "linux-source-6.1"),
        "config": "tinyconfig (x86_64)",
        "compiler": sh("gcc", "--version").splitlines()[0],
        "perf": sh("perf", "--version"),
        "runs": f"baseline (idle, {baseline_s:g} s) -> warm build -> timing build (nothing attached) -> measured build (perf stat "
        "per command and -a) -> bpftrace build",
        "counters_scope": "time -v, perf-task, proc-io: the build process tree only (perf counts tracepoints that "
        "fire while a task of the tree is current, including interrupts and IPIs taken in its "
        "context); /proc snapshots, perf-system and bpftrace: whole machine",
    },
    "unsupported": {
        "perf_events": unsup,
        "other": [
            "kprobes: none on this kernel, so no probe on do_wp_page/wp_page_copy or native_flush_tlb_local",
            "bpftrace 0.17: tracepoints only",
        ],
    },
    "load": {
        "quiet_gate": rd("kc_quiet.log").splitlines(),
        "clock_probe": rd("kc_clock.txt").splitlines(),
        "note": "common.sh snapshots before and after each run; other_cpu_* = whole-machine busy CPU minus the "
        "build tree (the machine is shared with other work)",
        "baseline_idle": load_b,
        "timing_run": load_t,
        "measured_run": load_m,
    },
    "cpu_time_per_build": {
        "source": "timing run (nothing attached), /usr/bin/time -v of make and all its children",
        "user_s": tim["user_s"],
        "sys_s": tim["sys_s"],
        "cpu_s": tim["cpu_s"],
        "wall_s": tim["wall_s"],
        "cpu_utilisation": round(tim["cpu_s"] / tim["wall_s"], 3),
        "measured_run_with_perf": {k: tv[k] for k in ("user_s", "sys_s", "cpu_s", "wall_s")},
        "warm_up_run": {k: warm[k] for k in ("user_s", "sys_s", "cpu_s", "wall_s")},
    },
    "per_build": {
        "note": "measured run, perf stat per command (build tree), unless said otherwise",
        "syscalls": pt["syscalls"],
        "syscalls_other_than_read_write": pt["syscalls"] - reads - writes,
        "read_write_calls": reads + writes,
        "read_calls": reads,
        "write_calls": writes,
        "read_calls_by_kind": {k: pt[k] for k in ("read", "pread64", "readv")},
        "write_calls_by_kind": {k: pt[k] for k in ("write", "pwrite64", "writev")},
        "mean_read_bytes": round(io["rchar"] / io["syscr"], 1),
        "mean_write_bytes": round(io["wchar"] / io["syscw"], 1),
        "mean_bytes_note": "/proc/<wrapper>/io rchar/syscr and wchar/syscw (all read-/write-family calls incl. "
        "0-byte reads)"
        + (
            "; bpftrace run: mean positive read/pread64 = {}, write/pwrite64 = {}".format(
                round(bt["read_bytes"] / bt["read_calls_positive"], 1),
                round(bt["write_bytes"] / bt["write_calls_positive"], 1),
            )
            if bt
            else ""
        ),
        "read_bytes": io["rchar"],
        "write_bytes": io["wchar"],
        "voluntary_ctx_switches": tim["voluntary_ctx_switches"],
        "involuntary_ctx_switches": tim["involuntary_ctx_switches"],
        "ctx_switches_note": "timing run (time -v, the tree); measured run: %d voluntary + %d involuntary, perf "
        "context-switches %d"
        % (tv["voluntary_ctx_switches"], tv["involuntary_ctx_switches"], pt["context-switches"]),
        "cpu_migrations": pt["cpu-migrations"],
        "page_faults": pt["page-faults"],
        "major_faults": pt["major-faults"],
        "user_faults": pt["page_fault_user"],
        "user_write_faults": pt["page_fault_user_write"],
        "zero_fill_faults": pt["page_fault_user_write"] - pt["page_fault_user_wp"],
        "zero_fill_note": "absent-page user write faults (user write faults minus write-protect ones); a few are "
        "private copies of file pages (do_cow_fault)",
        "write_protect_faults": wp_task,
        "write_protect_faults_kernel": pt["page_fault_kernel_wp"],
        "cow_copies_estimate": round(cow_est),
        "cow_method": "ESTIMATE: write-protect faults of the tree (user+kernel, %d) x share not reused, whole machine: "
        "1 - vmstat pgreuse / wp faults = %.4f%s"
        % (
            wp_task,
            copy_share,
            (
                "; bpftrace cross-check: share of wp faults followed by an order-0 allocation = %.4f"
                % (bt["fault_then_alloc_3"] / bt["faults_3"])
            )
            if bt.get("faults_3")
            else "",
        ),
        "page_allocations": round(pt["mm_page_alloc_events"] * pages_per_alloc),
        "clone_fork_syscalls": clones,
        "clone_syscalls_by_kind": {k: pt[k] for k in ("clone", "clone3", "fork", "vfork")},
        "forks_sched_process_fork": pt["sched_process_fork"],
        "execs_sched_process_exec": pt["sched_process_exec"],
        "execve_calls": pt["execve"] + pt["execveat"],
        "mm": mc.mm_summary(pt, digits=0),
        "mm_note": "mm_setups = task:task_newtask without CLONE_VM (a fork that copies the mm; vfork and threads "
        "share it) + sched_process_exec (exec builds a new mm)",
        "tlb": tlb_task,
        "tlb_note": "tlb:tlb_flush in the tree's context. full_flushes_native_flush_tlb_local = pages == "
        "TLB_FLUSH_ALL with reason remote shootdown, local shootdown or local MM shootdown: the "
        "flush_tlb_func full-flush path that calls flush_tlb_local() (native_flush_tlb_local). "
        "task_switch full flushes are CR3 writes without NOFLUSH in switch_mm_irqs_off, not "
        "native_flush_tlb_local; remote_ipi_send is the sender's record of an IPI. Ranged = "
        "INVLPG per page (flush_tlb_one_user); above tlb_single_page_flush_ceiling (33) the "
        "kernel does a full flush instead",
        "tlb_whole_machine_minus_background": tlb_sys,
        "tlb_whole_machine_note": "perf -a during the measured build minus the idle baseline rate x wall time: "
        "includes IPIs the build sent that landed on other tasks or idle",
        "interrupts_in_tree_context": mc.irq_task_summary(pt, digits=0),
        "interrupts_in_tree_context_note": "irq_vectors:*_entry, irq:irq_handler_entry (device), irq:softirq_entry "
        "(vec 1 TIMER, 3 NET_RX, 4 BLOCK, 7 SCHED, 9 RCU) while a task of the tree "
        "was current",
    },
    "context_switches_per_s_per_cpu": {
        "measured_run_whole_machine": mc.switch_summary(ps, wall, os.cpu_count()),
        "baseline_idle_whole_machine": mc.switch_summary(pb, baseline_s, os.cpu_count()),
        "measured_run_tree_per_build": {k: pt[k] for k, _, _ in mc.events("switches.events")},
    },
    "interrupts_per_s_per_cpu": {
        "timing_run": irq_t,
        "timing_run_softirqs": soft_t,
        "measured_run": irq_m,
        "measured_run_softirqs": soft_m,
        "baseline_idle": irq_b,
        "baseline_idle_softirqs": soft_b,
    },
    "raw": {
        "perf_task": pt,
        "perf_system": ps,
        "perf_baseline_system": pb,
        "proc_io": io,
        "vmstat_delta_measured": {
            k: vm[k]
            for k in (
                "pgfault",
                "pgmajfault",
                "pgalloc_normal",
                "pgfree",
                "pgreuse",
                "thp_fault_alloc",
            )
            if k in vm
        },
        "time_v_measured": tv,
        "time_v_timing": tim,
        "time_v_warm": warm,
    },
}
if have_bt:
    summary["bpftrace_run"] = {
        "note": "separate build with bpftrace attached (slower); whole machine",
        "time_v": btv,
        "load": load_bt,
        "counts": {k: v for k, v in bt.items()},
        "vmstat_pgreuse": btvm.get("pgreuse"),
        "fault_type_key": "0=read not-present, 1=read protection, 2=write not-present, 3=write protection",
        "tlb_flush_by_reason_pages_top40": bt_hist,
    }
with open(p("kernel_compile.yaml"), "w") as f:
    yaml.safe_dump(summary, f, sort_keys=False, width=120)
print(
    yaml.safe_dump(
        {k: summary[k] for k in ("load", "cpu_time_per_build", "per_build")},
        sort_keys=False,
        width=120,
    )
)
