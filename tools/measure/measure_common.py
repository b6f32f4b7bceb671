"""Parsers shared by the measurement recipes in tools/measure.

events(files)        labels and perf event names of events files (label|event|filter)
perf(csv, labels)    counts of a `perf stat -x,` file in that order; unsupported events apart
snapshot(file)       sections of a common.sh `snap` file
window(before, after, own_cpu_s)
                     load of the machine between two snapshots: wall time, loadavg,
                     CPU pressure, busy CPU time of the whole machine and of everything
                     but the measured process tree, interrupts and softirqs per kind
machine()            kernel, CPU model, CPU count, VM evidence
"""

# ruff: noqa: UP031, E741

import os
import platform
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
FULL = 0xFFFFFFFFFFFFFFFF
TLB_REASONS = {
    0: "task_switch",
    1: "remote_shootdown",
    2: "local_shootdown",
    3: "local_mm_shootdown",
    4: "remote_ipi_send",
    5: "remote_wrong_cpu",
}


def events(*names):
    out = []
    for n in names:
        for l in open(os.path.join(HERE, "events", n)):
            l = l.rstrip("\n")
            if not l or l.startswith("#"):
                continue
            lab, ev, flt = l.split("|", 2)
            out.append((lab, ev, flt))
    return out


def perf(path, evs):
    rows = [l.split(",") for l in open(path).read().splitlines() if l and not l.startswith("#")]
    assert [r[2] for r in rows] == [e for _, e, _ in evs], path
    res, unsupported = {}, []
    for (lab, ev, _), r in zip(evs, rows, strict=False):
        if r[0].startswith("<"):
            unsupported.append(ev)
            continue
        res[lab] = float(r[0]) if lab == "task-clock" else int(float(r[0]))
    return res, unsupported


def snapshot(path):
    sec, cur = {}, None
    for l in open(path).read().splitlines():
        m = re.match(r"^==> (\w+) <==$", l)
        if m:
            cur = m[1]
            sec[cur] = []
        elif cur:
            sec[cur].append(l)
    return sec


def _irq_table(lines):
    ncpu = len(lines[0].split())
    t = {}
    for l in lines[1:]:
        name, rest = l.split(":", 1)
        f = rest.split()
        vals = [int(x) for x in f[:ncpu] if x.isdigit()]
        if len(vals) < ncpu:  # ERR:, MIS: have one total
            continue
        desc = " ".join(f[ncpu:])
        t[name.strip()] = (vals, desc)
    return ncpu, t


def _stat(lines):
    cpus = {}
    for l in lines:
        f = l.split()
        v = [int(x) for x in f[1:]]
        # user nice system idle iowait irq softirq steal
        cpus[f[0]] = {"busy": v[0] + v[1] + v[2] + v[5] + v[6], "steal": v[7], "idle": v[3] + v[4]}
    return cpus


def _psi(lines):
    if not lines or lines[0] == "none":
        return None
    m = re.search(r"total=(\d+)", lines[0])
    return int(m[1]) if m else None


def window(before, after, own_cpu_s=None):
    """Load and interrupts between two `snap` files; own_cpu_s = CPU time of the measured tree."""
    a, b = snapshot(before), snapshot(after)
    wall = float(b["time"][0]) - float(a["time"][0])
    hz = os.sysconf("SC_CLK_TCK")
    sa, sb = _stat(a["stat"]), _stat(b["stat"])
    ncpu = len([k for k in sa if k != "cpu"])
    busy = (sb["cpu"]["busy"] - sa["cpu"]["busy"]) / hz
    steal = (sb["cpu"]["steal"] - sa["cpu"]["steal"]) / hz
    load = {
        "wall_s": round(wall, 3),
        "loadavg_before": a["loadavg"][0],
        "loadavg_after": b["loadavg"][0],
        "machine_busy_cpu_s": round(busy, 2),
        "machine_busy_share": round(busy / (wall * ncpu), 4),
        "steal_cpu_s": round(steal, 2),
    }
    pa, pb = _psi(a["pressure_cpu"]), _psi(b["pressure_cpu"])
    if pa is not None and pb is not None:
        load["cpu_pressure_some_share"] = round((pb - pa) / 1e6 / wall, 4)
        load["cpu_pressure_note"] = (
            '/proc/pressure/cpu "some" total delta / wall: share of time at least one '
            "runnable task waited for a CPU (the measured tree itself counts when it "
            "has more runnable tasks than CPUs)"
        )
    if own_cpu_s is not None:
        other = busy - own_cpu_s
        load["own_cpu_s"] = round(own_cpu_s, 2)
        load["other_cpu_s"] = round(other, 2)
        load["other_cpu_share_of_machine"] = round(other / (wall * ncpu), 4)
        load["other_note"] = (
            "/proc/stat busy (user nice system irq softirq) of the whole machine minus the "
            "measured tree's user+sys; includes the measuring tools (perf, bpftrace) and "
            "interrupt time"
        )
    load["top_cpu_users_after"] = " | ".join(" ".join(l.split()) for l in b["top"][:6])

    ncpu_i, ia = _irq_table(a["interrupts"])
    _, ib = _irq_table(b["interrupts"])
    kinds = {}
    device_total = [0] * ncpu_i
    device = {}
    for name, (vb, desc) in ib.items():
        va = ia.get(name, ([0] * ncpu_i, ""))[0]
        d = [y - x for x, y in zip(va, vb, strict=False)]
        if name.isdigit():
            device_total = [x + y for x, y in zip(device_total, d, strict=False)]
            if sum(d):
                device[name + " " + desc.split()[-1]] = d
        elif sum(d):
            kinds[name] = d

    def per_s(d):
        return [round(x / wall, 1) for x in d]

    irqs = {
        "note": "/proc/interrupts deltas over the window; per_s_per_cpu lists CPU0, CPU1, ...",
        "ncpu": ncpu_i,
        "per_s_per_cpu": {k: per_s(v) for k, v in sorted(kinds.items())},
        "device_irqs_per_s_per_cpu": per_s(device_total),
        "device_irqs_per_s_mean_cpu": round(sum(device_total) / wall / ncpu_i, 1),
        "device_irqs_by_source_per_s": {
            k: round(sum(v) / wall, 1) for k, v in sorted(device.items())
        },
        "totals": dict({k: sum(v) for k, v in sorted(kinds.items())}, device=sum(device_total)),
    }
    for k in ("LOC", "RES", "CAL", "TLB"):
        if k in kinds:
            irqs[k + "_per_s_mean_cpu"] = round(sum(kinds[k]) / wall / ncpu_i, 1)
    _, qa = _irq_table(a["softirqs"])
    _, qb = _irq_table(b["softirqs"])
    soft = {}
    for name, (vb, _) in qb.items():
        d = [y - x for x, y in zip(qa[name][0], vb, strict=False)]
        if sum(d):
            soft[name] = {"per_s_per_cpu": per_s(d), "total": sum(d)}
    va, vb = dict(l.split() for l in a["vmstat"]), dict(l.split() for l in b["vmstat"])
    vm = {k: int(vb[k]) - int(va[k]) for k in vb if k in va}
    return load, irqs, soft, vm


def tlb_summary(c, per=1.0, digits=3):
    """TLB-flush counts of a perf result dict c (labels of new_counts.events), divided by per."""

    def r(x):
        return round(x / per, digits)

    full = {TLB_REASONS[i]: r(c["tlb_full_reason%d" % i]) for i in range(6)}
    ranged = {TLB_REASONS[i]: r(c["tlb_ranged_reason%d" % i]) for i in (1, 2, 3, 4)}
    return {
        "full_flushes_by_reason": full,
        "full_flushes_native_flush_tlb_local": r(
            sum(c["tlb_full_reason%d" % i] for i in (1, 2, 3))
        ),
        "ranged_flushes_by_reason": ranged,
        "ranged_flushes_by_pages_reasons_1_3": {
            "1": r(c["tlb_ranged_1"]),
            "2-8": r(c["tlb_ranged_2_8"]),
            "9-32": r(c["tlb_ranged_9_32"]),
            "33": r(c["tlb_ranged_33"]),
            ">33": r(c["tlb_ranged_over_33"]),
        },
        "noop_records_by_reason": {TLB_REASONS[i]: r(c["tlb_zero_reason%d" % i]) for i in range(6)},
        "all_tlb_flush_events": r(c["tlb_flush_events"]),
    }


def mm_summary(c, per=1.0, digits=3):
    def r(x):
        return round(x / per, digits)

    return {
        "mm_setups": r(c["newtask_new_mm"] + c["sched_process_exec"]),
        "new_mm_by_fork": r(c["newtask_new_mm"]),
        "execs": r(c["sched_process_exec"]),
        "tasks_created": r(c["task_newtask"]),
        "threads_created": r(c["newtask_thread"]),
        "vforks": r(c["newtask_vfork"]),
        "process_exits": r(c["sched_process_exit"]),
    }


def irq_task_summary(c, per=1.0, digits=3):
    def r(x):
        return round(x / per, digits)

    return {
        k: r(c[k])
        for k in (
            "irqv_local_timer",
            "irqv_reschedule",
            "irqv_call_function",
            "irqv_call_function_single",
            "irqv_irq_work",
            "irq_device",
            "softirq",
            "softirq_vec1",
            "softirq_vec3",
            "softirq_vec4",
            "softirq_vec7",
            "softirq_vec9",
        )
    }


def sh(*c):
    return subprocess.run(c, capture_output=True, text=True).stdout.strip()


def machine():
    cpuinfo = open("/proc/cpuinfo").read()

    def m(p):
        return (re.search(p, cpuinfo) or [None, None])[1]

    return {
        "kernel": platform.release(),
        "cpu_model": m(r"model name\s*: (.*)"),
        "cpu_family_model_stepping": "{}/{}/{}".format(
            m(r"cpu family\s*: (\d+)"), m(r"model\s*: (\d+)"), m(r"stepping\s*: (\d+)")
        ),
        "bogomips": m(r"bogomips\s*: ([\d.]+)"),
        "nproc": os.cpu_count(),
        "is_vm": " hypervisor" in cpuinfo,
        "vm_evidence": "cpuinfo hypervisor flag={}; systemd-detect-virt={}".format(
            " hypervisor" in cpuinfo, sh("systemd-detect-virt") or "none"
        ),
        "mitigations_cmdline": " ".join(
            w for w in open("/proc/cmdline").read().split() if w.startswith("mitigations")
        ),
        "mem_total_kb": int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read())[1]),
    }


def time_v(path):
    """The fields of a /usr/bin/time -v file that the summaries use."""
    t = dict(l.strip().rsplit(": ", 1) for l in open(path).read().splitlines() if ": " in l)
    h, m, s = ([0, 0] + t["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":"))[-3:]
    u, s_ = float(t["User time (seconds)"]), float(t["System time (seconds)"])
    return {
        "wall_s": int(h) * 3600 + int(m) * 60 + float(s),
        "user_s": u,
        "sys_s": s_,
        "cpu_s": round(u + s_, 2),
        "voluntary_ctx_switches": int(t["Voluntary context switches"]),
        "involuntary_ctx_switches": int(t["Involuntary context switches"]),
        "minor_faults": int(t["Minor (reclaiming a frame) page faults"]),
        "major_faults": int(t["Major (requiring I/O) page faults"]),
        "max_rss_kb": int(t["Maximum resident set size (kbytes)"]),
    }


def switch_summary(c, wall_s, ncpu):
    """Context switches per second per CPU by kind (labels of switches.events)."""

    def r(x):
        return round(x / wall_s / ncpu, 1)

    kth_to = c["switch_to_kworker"] + c["switch_to_ksoftirqd"] + c["switch_to_other_kthread"]
    kth_from = (
        c["switch_from_kworker"] + c["switch_from_ksoftirqd"] + c["switch_from_other_kthread"]
    )
    return {
        "all": r(c["sched_switch"]),
        "to_kernel_thread": r(kth_to),
        "from_kernel_thread": r(kth_from),
        "to_kworker": r(c["switch_to_kworker"]),
        "to_ksoftirqd": r(c["switch_to_ksoftirqd"]),
        "to_other_kthread": r(c["switch_to_other_kthread"]),
        "to_idle": r(c["switch_to_idle"]),
        "from_idle": r(c["switch_from_idle"]),
        "note": "sched:sched_switch per second per CPU (count / wall / %d CPUs); kernel threads by comm"
        % ncpu,
    }
