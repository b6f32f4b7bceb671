"""Workload values per op (conf/workload) from the measured counts, and base_time.

Usage: python3 derive_workload.py OUT.yaml KC_RESULTS.yaml FE_RESULTS.yaml --vm-ghz G
           [--kc-cpu-s S --kc-ctxsw N] [--fe-cpu-us U --fe-ctxsw N] [--cpu conf/cpu/sapphire_rapids.yaml]

base_time is the native time per op on the modelled machine outside the paths the
model prices itself (model/mechanism.py native_counts): syscalls, page-cache
lookups, user faults, context switches and the bytes they copy or zero. It is
    base_time = T_vm * s - P
T_vm: CPU time (user + sys) per op measured here on a quiet run; s = vm_ghz /
the modelled CPU's ghz (conf/cpu, `ghz`): the same core design at another clock
(see the scaling note written to OUT); P: the priced paths at the modelled CPU's
median costs (loguniform: sqrt(low * high); uniform: (low + high) / 2), with
bytes at the single-core copy bandwidth (cpus = 1).
"""

# ruff: noqa: UP031

import argparse
import math

import yaml

PAGE = 4096


def medians(cpu_yaml):
    c = yaml.safe_load(open(cpu_yaml))
    out = {}
    for k, v in c["costs"].items():
        if not isinstance(v, dict) or "low" not in v:
            continue
        lo, hi = float(v["low"]), float(v["high"])
        out[k] = math.sqrt(lo * hi) if v["dist"] == "loguniform" else (lo + hi) / 2
    return c, out


def priced(m, io, io_size, syscalls_other, zero, cow, ctxsw):
    parts = {
        "syscall": (io + syscalls_other) * m["syscall"],
        "page_lookup": io * math.ceil(io_size / PAGE) * m["page_lookup"],
        "user_fault": (zero + cow) * m["user_fault"],
        "context_switch": ctxsw * m["context_switch"],
        "bytes": (io * io_size + PAGE * (zero + cow)) / m["copy_bandwidth"],
    }
    return sum(parts.values()), {k: round(v) for k, v in parts.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("kc")
    ap.add_argument("fe")
    ap.add_argument("--vm-ghz", type=float, required=True)
    ap.add_argument("--kc-cpu-s", type=float)
    ap.add_argument("--kc-ctxsw", type=float)
    ap.add_argument(
        "--kc-cpu-source", default="kernel_compile.yaml cpu_time_per_build (timing run)"
    )
    ap.add_argument("--fe-cpu-us", type=float)
    ap.add_argument("--fe-ctxsw", type=float)
    ap.add_argument("--fe-cpu-source", default="fork_exec.yaml cpu_time_per_op (median timing run)")
    ap.add_argument("--cpu", default="conf/cpu/sapphire_rapids.yaml")
    a = ap.parse_args()
    cpu, m = medians(a.cpu)
    s = a.vm_ghz / float(cpu["ghz"])

    kc = yaml.safe_load(open(a.kc))
    b = kc["per_build"]
    kc_cpu_s = a.kc_cpu_s or kc["cpu_time_per_build"]["cpu_s"]
    kc_ctx = a.kc_ctxsw or b["voluntary_ctx_switches"] + b["involuntary_ctx_switches"]
    io = b["read_write_calls"]
    p_kc, parts_kc = priced(
        m,
        io,
        b["mean_read_bytes"],
        b["syscalls_other_than_read_write"],
        b["zero_fill_faults"],
        b["cow_copies_estimate"],
        kc_ctx,
    )
    kc_base = kc_cpu_s * 1e9 * s - p_kc

    fe = yaml.safe_load(open(a.fe))
    o = fe["per_op"]
    fe_cpu_us = a.fe_cpu_us or fe["cpu_time_per_op"]["cpu_us"]
    fe_ctx = a.fe_ctxsw or o["voluntary_ctx_switches"] + o["involuntary_ctx_switches"]
    fe_io = o["read_calls"] + o["write_calls"]
    p_fe, parts_fe = priced(
        m,
        fe_io,
        1024,
        o["syscalls_other_than_read_write"],
        o["zero_fill_faults"],
        o["cow_copies_estimate"],
        fe_ctx,
    )
    fe_base = fe_cpu_us * 1e3 * s - p_fe

    out = {
        "note": "workload values written to conf/workload/{kernel_compile,fork_exec}.yaml, derived by "
        "tools/measure/derive_workload.py from the results beside this file",
        "scaling": {
            "vm_ghz": a.vm_ghz,
            "model_ghz": float(cpu["ghz"]),
            "factor": round(s, 4),
            "formula": "base_time = T_vm * factor - priced; factor = vm_ghz / model_ghz",
        },
        "median_costs_ns": {
            k: round(m[k], 2) for k in ("syscall", "page_lookup", "user_fault", "context_switch")
        },
        "copy_bandwidth_bytes_per_ns": m["copy_bandwidth"],
        "kernel_compile": {
            "op": "one build",
            "cpu_s_per_build_vm": kc_cpu_s,
            "cpu_source": a.kc_cpu_source,
            "ctxsw_per_op": kc_ctx,
            "priced_ns": round(p_kc),
            "priced_parts_ns": parts_kc,
            "base_time_ns": round(kc_base, -6),
            "base_time_alt_(T-P)*s_ns": round((kc_cpu_s * 1e9 - p_kc) * s, -6),
            "io_size": round(b["mean_read_bytes"]),
            "io_per_op": io,
            "syscalls_per_op": b["syscalls_other_than_read_write"],
            "zero_fill_per_op": b["zero_fill_faults"],
            "cow_per_op": b["cow_copies_estimate"],
            "tlb_flushes_per_op": b["tlb"]["full_flushes_native_flush_tlb_local"],
            "mm_setups_per_op": b["mm"]["mm_setups"],
        },
        "fork_exec": {
            "op": "one fork + exec + exit + wait of /bin/true",
            "cpu_us_per_op_vm": fe_cpu_us,
            "cpu_source": a.fe_cpu_source,
            "ctxsw_per_op": round(fe_ctx, 3),
            "priced_ns": round(p_fe),
            "priced_parts_ns": parts_fe,
            "base_time_ns": round(fe_base, -3),
            "base_time_alt_(T-P)*s_ns": round((fe_cpu_us * 1e3 - p_fe) * s, -3),
            "io_per_op": round(fe_io, 3),
            "syscalls_per_op": o["syscalls_other_than_read_write"],
            "zero_fill_per_op": o["zero_fill_faults"],
            "cow_per_op": o["cow_copies_estimate"],
            "tlb_flushes_per_op": o["tlb"]["full_flushes_native_flush_tlb_local"],
            "mm_setups_per_op": o["mm"]["mm_setups"],
        },
    }
    with open(a.out, "w") as f:
        yaml.safe_dump(out, f, sort_keys=False, width=120)
    print(yaml.safe_dump(out, sort_keys=False, width=120))


if __name__ == "__main__":
    main()
