"""Regenerate the README's model-derived tables (``make docs``).

Each table sits between ``<!-- BEGIN name -->`` and ``<!-- END name -->``
markers in README.md and is written from the current model, never by hand:

* ``short-answer``: the slowdown after the whole roadmap per workload and CPU
  profile, and at RFC v2, with what remains;
* ``what-changed``: the long-term projection of model 0.1.0 (the last README
  it produced, pinned below) against the current model's at the same stage
  and at the end of today's roadmap;
* ``default-cost``: what the kernel's default mitigations themselves cost per workload and
  CPU profile against ``mitigations=off``, and their largest parts;
* ``answer-example``: what ``asi-answer`` prints for the published benchmark;
* ``validation``: ``asi-validate`` on the public record (in sample and leave one out), also
  written to ``conf/validation/score.json``, which ``asi-answer`` quotes;
* ``presets``: each experiment preset's grid (its dimensions and points, from the
  grid expansion alone) and how long ``make bench`` took to sweep it;
* ``benchmarks``: the table of ``benchmarks/results.json``, which ``make bench``
  writes and the repository commits (the numbers are never rerun here).

The same ``presets`` block heads every ``conf/experiment/*.yaml`` as comments
(between ``# BEGIN size`` and ``# END size``).

    python tools/make_docs.py            # rewrite README.md and the presets' headers
    python tools/make_docs.py --check    # exit 1 if any differs (tests use this)
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from asi_slowdown.model import MODEL_VERSION
from asi_slowdown.model.evaluate import OVERHEAD_PARTS
from asi_slowdown.pipeline.configuration.compose import composer
from asi_slowdown.pipeline.configuration.sweeps import classify, merge_by_key, parse
from asi_slowdown.pipeline.projection.answer import default_shares, evaluate_stages, run
from asi_slowdown.pipeline.sweep.grid import MODEL_GROUPS
from asi_slowdown.pipeline.validate.run import SCORE_FILE, error_text, score_document, value_text
from asi_slowdown.pipeline.validate.run import run as validate

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXPERIMENTS = ROOT / "conf" / "experiment"
BENCH_RESULTS = ROOT / "benchmarks" / "results.json"
WORKLOADS = (
    "kernel_compile",
    "fork_exec",
    "fio_randread_tmpfs",
    "fio_seqread_ext4",
    "migrate_secretmem",
)
GUEST_WORKLOADS = ("guest_kernel_compile", "guest_fio_virtio_blk", "guest_netperf_rr")
"""KVM guests seen from the host: their VM exits against IBPB on every VM exit."""
CPUS = ("sapphire_rapids", "skylake_l1tf", "amd_zen4")
CPU_LABELS = {
    "sapphire_rapids": "Sapphire Rapids",
    "skylake_l1tf": "Skylake (L1TF)",
    "amd_zen4": "AMD Zen 4",
}

OLD_MODEL = "0.1.0"
OLD_PROJECTION = {
    "kernel_compile": 0.0043,
    "fork_exec": 0.0063,
    "fio_randread_tmpfs": 0.021,
    "fio_seqread_ext4": 0.021,
    "migrate_secretmem": 0.078,
}
"""Slowdown p50 after ``metadata_mapped`` on Sapphire Rapids, 1 CPU, as model 0.1.0 printed it
(README at commit 3061678)."""

WHY = {
    "kernel_compile": "one op is now a whole build, counted on a quiet machine: more exits per "
    "second of native time than the loaded VM's per-CPU-ms rates said; refill priced by the "
    "build's own working set; a TLB-flush exit per fork and exec; the mermap's wrap flush exits",
    "fork_exec": "about two TLB-flush exits per fork+exec (dup_mmap, exec's stack move), the "
    "mermap's wrap flush, two mms' tables; native time from a quiet run",
    "fio_randread_tmpfs": "the software walk per ephmap use stays until `mapping_fastpath`; "
    "the mermap's wrap flush exits",
    "fio_seqread_ext4": "cheaper refill (fio's small working set); RSB fill on every exit",
    "migrate_secretmem": "a software walk per page mapped, both strategies",
}
"""Why each projection moved: the new mechanism terms that matter for it."""


def pct(x: float) -> str:
    return f"{100 * x:.2f} %" if abs(x) < 0.1 else f"{100 * x:.1f} %"


def stages_with(workload: str, cpu: str, *overrides: str):
    table, _ = evaluate_stages([f"workload={workload}", f"cpu={cpu}", *overrides])
    return table.set_index("stage")


def signed(x: float) -> str:
    return ("+" if x >= 0 else "") + pct(x)


def band(row, metric: str) -> str:
    """``p50 [p05-p95] %`` of a metric."""
    p05, p50, p95 = (pct(row[f"{metric}_{q}"]).removesuffix(" %") for q in ("p05", "p50", "p95"))
    return f"{p50} [{p05}-{p95}] %"


def remains(row) -> str:
    parts = {p: row[f"overhead_ns_{p}"] for p in OVERHEAD_PARTS}
    total = sum(parts.values())
    top = sorted(parts, key=parts.get, reverse=True)[:2]
    return ", ".join(
        f"{p.replace('_', ' ')} ({100 * parts[p] / total:.0f} %)" for p in top if parts[p] > 0
    )


def tables() -> dict[str, str]:
    results = {(w, c): stages_with(w, c) for w in WORKLOADS for c in CPUS}
    final = results[WORKLOADS[0], CPUS[0]].index[-1]
    head = (
        f"After the whole roadmap (`{final}`), one CPU, 1024 cost samples, model "
        f"{MODEL_VERSION}. Per CPU: the slowdown p50 [p05-p95] against `mitigations=off`, "
        "P(meets the 1 % target), and the slowdown p50 against the kernel's default "
        "mitigations on that CPU (negative: ASI is faster than the default). RFC v2 (no "
        "ephmap) for comparison:\n\n"
        "| workload | "
        + " | ".join(f"{CPU_LABELS[c]} vs off | P(<1 %) | vs default" for c in CPUS)
        + " | RFC v2, SPR | what remains (SPR) |\n"
        "|---|" + "---|---|---|" * len(CPUS) + "---|---|"
    )
    lines = [head]
    for w in WORKLOADS:
        cells = []
        for c in CPUS:
            r = results[w, c].loc[final]
            cells += [
                band(r, "slowdown"),
                f"{r.p_meets_target:.2f}",
                signed(r.slowdown_vs_default_p50),
            ]
        spr = results[w, CPUS[0]]
        lines.append(
            f"| `{w}` | " + " | ".join(cells) + f" | {pct(spr.loc['rfc_v2'].slowdown_p50)} | "
            f"{remains(spr.loc[final])} |"
        )
    short = "\n".join(lines)

    changed = [
        f"Slowdown p50, Sapphire Rapids, 1 CPU: model {OLD_MODEL} after `metadata_mapped` "
        f"(the end of its roadmap) against model {MODEL_VERSION} at the same stage and at `{final}`:\n",
        f"| workload | {OLD_MODEL}, `metadata_mapped` | {MODEL_VERSION}, `metadata_mapped` | "
        f"{MODEL_VERSION}, `{final}` | why it moved |",
        "|---|---|---|---|---|",
    ]
    for w in WORKLOADS:
        spr = results[w, CPUS[0]]
        changed.append(
            f"| `{w}` | {pct(OLD_PROJECTION[w])} | {pct(spr.loc['metadata_mapped'].slowdown_p50)} | "
            f"{pct(spr.loc[final].slowdown_p50)} | {WHY[w]} |"
        )
    example = run(
        ["workload=fio_randread_tmpfs", "cpu=sapphire_rapids", "cpus=1", "answer.source=model"]
    )
    answer = (
        "```console\n$ .venv/bin/asi-answer workload=fio_randread_tmpfs cpu=sapphire_rapids cpus=1\n"
        + example
        + "\n```"
    )
    guests = [
        f"KVM guests, host under ASI, one vCPU, model {MODEL_VERSION} (VM-exit rates are "
        "assumptions, see the workload files). Per CPU: the slowdown p50 against "
        "`mitigations=off` at RFC v2 and after the whole roadmap, and the slowdown p50 after "
        "it against the blanket protection of a host without ASI, IBPB on every VM exit (and "
        "an L1D flush on every VM entry on L1TF CPUs) on top of the default, with the share "
        "of cost samples where ASI is cheaper:\n",
        "| workload | "
        + " | ".join(
            f"{CPU_LABELS[c]} RFC v2 / {final} | vs IBPB-on-VM-exit | P(cheaper)" for c in CPUS
        )
        + " |",
        "|---|" + "---|---|---|" * len(CPUS),
    ]
    for w in GUEST_WORKLOADS:
        cells = []
        for c in CPUS:
            t = stages_with(w, c)
            r = t.loc[final]
            cells += [
                f"{pct(t.loc['rfc_v2'].slowdown_p50)} / {pct(r.slowdown_p50)}",
                signed(r.slowdown_vs_ibpb_vmexit_p50),
                f"{r.p_beats_ibpb_vmexit:.2f}",
            ]
        guests.append(f"| `{w}` | " + " | ".join(cells) + " |")
    kernel = composer().compose([]).kernel
    default_cost = [
        f"The kernel's default mitigations themselves under Linux {kernel.release} "
        f"(`kernel={kernel.name}`), against `mitigations=off`, model {MODEL_VERSION}: the "
        "slowdown p50 [p05-p95] and the two largest parts (share of the mean cost):\n",
        "| workload | "
        + " | ".join(f"{CPU_LABELS[c]} default vs off | largest" for c in CPUS)
        + " |",
        "|---|" + "---|---|" * len(CPUS),
    ]
    for w in (*WORKLOADS, *GUEST_WORKLOADS):
        cells = []
        for c in CPUS:
            r = (results[w, c] if (w, c) in results else stages_with(w, c)).loc[final]
            shares = default_shares(r)
            cells += [
                band(r, "default_vs_off"),
                ", ".join(f"{m} ({100 * v:.0f} %)" for m, v in list(shares.items())[:2]) or "none",
            ]
        default_cost.append(f"| `{w}` | " + " | ".join(cells) + " |")
    return {
        "short-answer": short,
        "default-cost": "\n".join(default_cost),
        "guest-workloads": "\n".join(guests),
        "what-changed": "\n".join(changed),
        "answer-example": answer,
    }


def validation() -> tuple[str, str]:
    """The README's validation block and ``conf/validation/score.json``, from one
    ``asi-validate`` run (every case, leave one out, splits)."""
    doc = json.loads(
        validate(["validate.format=json", "validate.figure=false", "validate.progress=false"])
    )

    def frac(c, x):
        return value_text(c["quantity"], x)

    def err(c, x):
        return error_text(c["quantity"], x)

    lines = [
        f"Model {MODEL_VERSION}, shipped profiles ({', '.join(doc['profile'])}: their priors), "
        "1024 cost samples. In sample: the profile as shipped; leave one out: calibrated on "
        "every other calibration case of that CPU, then this one predicted. The band is a "
        "measurement's: the model's 90 % band widened by the published run-to-run spread.\n",
        "| case | quantity | role | published | model p50 [p05-p95] | error | in band | "
        "leave-one-out p50 | its error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in doc["cases"]:
        lines.append(
            f"| `{c['name']}` | {c['quantity']} | {c['role']} | {frac(c, c['published'])} | "
            f"{frac(c, c['p50'])} [{frac(c, c['p05'])}-{frac(c, c['p95'])}] | "
            f"{err(c, c['error'])} | {'yes' if c['inside_band'] else '**no**'} | "
            f"{frac(c, c['loo_p50'])} | {err(c, c['loo_error'])} |"
        )
    lines.append("")
    lines.append(f"{doc['summary'][0].upper()}{doc['summary'][1:]}.")
    for split in doc["splits"]:
        parts = [
            f"`{c['name']}` {frac(c, c['published'])} -> {frac(c, c['p50'])} "
            f"({'inside' if c['inside_band'] else 'outside'} its band)"
            for c in split["cases"]
        ]
        lines.append(
            f"Split `{split['name']}` (calibrated on {', '.join(split['calibrate'])}): "
            + "; ".join(parts)
            + "."
        )
    return "\n".join(lines), json.dumps(score_document(doc), indent=2) + "\n"


# --------------------------------------------------------------------------- presets
DIMENSION_NOUNS = {
    "workload": "workloads",
    "cpu": "CPU profiles",
    "mitigations": "stages",
    "cpus": "CPU counts",
    "workload.file_size": "file sizes",
    "ephmap.slots": "slot counts",
}
"""How a preset's header names each swept dimension (others: ``values of <key>``)."""


def preset_names() -> list[str]:
    """The shipped experiment presets (``conf/experiment/*.yaml``), by name."""
    return sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))


def preset_dimensions(name: str) -> list[tuple[str, int]]:
    """``(key, number of values)`` of each dimension preset ``name`` sweeps, from Hydra's
    override grammar alone (``glob()`` over a group resolved, nothing composed)."""
    params = OmegaConf.load(EXPERIMENTS / f"{name}.yaml").hydra.sweeper.params
    overrides = [f"{key}={value}" for key, value in params.items()]
    loader = composer().loader()
    parsed = merge_by_key(parse(overrides, OverridesParser.create(config_loader=loader)))
    dims = classify(parsed, loader.get_group_options, MODEL_GROUPS)
    return [(k, len(v)) for k, v in {**dims.groups, **dims.profiles, **dims.points}.items()]


def preset_points(name: str) -> int:
    """Points in preset ``name``'s grid: the product of its dimensions' sizes."""
    return math.prod(n for _, n in preset_dimensions(name))


def bench_results(path: Path = BENCH_RESULTS) -> dict:
    """``benchmarks/results.json`` as ``make bench`` wrote it."""
    return json.loads(path.read_text())


def machine_text(bench: dict) -> str:
    m = bench["machine"]
    return f"{m['cores']}-core {m['cpu']} ({m['memory_gib']:g} GiB, Python {m['python']})"


def run_text(bench: dict, module: str) -> str:
    r = bench["runs"][module]
    return f"{r['date'][:10]}, 1-min load {r['load_avg_1m']:.1f}, model {r['model_version']}"


def preset_summary(name: str, bench: dict) -> tuple[str, str]:
    """The grid line and the measured line of preset ``name``."""
    dims = preset_dimensions(name)
    sizes = " x ".join(f"{n} {DIMENSION_NOUNS.get(k, f'values of {k}')}" for k, n in dims)
    points = math.prod(n for _, n in dims)
    results = bench["results"]
    samples = results.get(f"preset_{name}_samples")
    wall = results.get(f"preset_{name}_wall_s")
    grid = f"{sizes} = {points:,} points"
    if wall is None:
        return grid, "not measured yet: run `make bench`"
    measured = (
        f"at {samples} samples `make bench` swept it into an empty store in {wall:.0f} s "
        f"on a {machine_text(bench)}, {run_text(bench, 'bench_presets')}"
    )
    return grid, measured


def preset_header(name: str, bench: dict) -> str:
    """The generated comment lines at the top of ``conf/experiment/<name>.yaml``."""
    grid, measured = preset_summary(name, bench)
    words = f"{grid}; {measured}.".split()
    lines, line = [], "#"
    for word in words:  # wrapped at 88 columns, as the rest of the repository
        if len(line) + 1 + len(word) > 88:
            lines.append(line)
            line = "#"
        line += " " + word
    return "\n".join([*lines, line])


def presets_table(bench: dict) -> str:
    lines = [
        "| preset | grid | time to sweep (`make bench`) |",
        "|---|---|---|",
    ]
    for name in preset_names():
        grid, measured = preset_summary(name, bench)
        lines.append(f"| `experiment={name}` | {grid} | {measured} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- benchmarks
BENCH_ROWS: tuple[tuple[str, str, str], ...] = (
    ("model_point_samples_per_s", "one core, compiled engine (`model/kernel.py`)", ">= 5e7"),
    (
        "model_compiled_vs_numpy_ratio",
        "compiled / the numpy engine, same points, same run",
        ">= 3 (numba's worth)",
    ),
    (
        "model_vs_floor_ratio",
        "floor (flops per point-sample at this core's multiply-add rate) / model",
        "",
    ),
    ("model_vs_scalar_ratio", "vs `model/reference.py`, same inputs", ">= 100"),
    (
        "model_vs_memcopy_ratio",
        "model time / a numpy copy of its inputs + outputs",
        "compute-bound: 1024 samples and four selections per point",
    ),
    (
        "model_select_vs_ladder_ratio",
        "`model/select.py` over the frozen selection of model 0.6.0, same arrays, same run",
        "",
    ),
    ("model_select_share", "the selection's share of the compiled pass's time", ""),
    ("model_peak_rss_mb_1e5x1024", "", "< 2048"),
    ("model_answer_s", "asi-answer's model time: 9 stages x 1024 samples, fresh process", "< 1"),
    (
        "sweep_all_in_us_per_point_1e5",
        "wall per point, Ray start/stop and the model included, 135,000 points",
        "< 100",
    ),
    ("sweep_overhead_us_per_point_1e5", "wall - Ray start/stop - model time", "<= 50"),
    ("hydra_basic_overhead_us_per_point", "BasicSweeper + BasicLauncher, 200 jobs", ""),
    ("sweep_vs_hydra_basic_ratio", "", ">= 1000"),
    ("sweep_driver_peak_rss_mb_1e6", "", "< 2048"),
    (
        "sweep_resume_s_1e6",
        "the same 1.15e6-point sweep again into the full store, fresh process",
        "",
    ),
    ("aggregate_rows_per_s", "Dask threads, 10^7-row store, compacted", ""),
    (
        "aggregate_vs_plain_dask_ratio",
        "plain `dd.read_parquet` + the same reductions / ours",
        ">= 0.7",
    ),
    (
        "aggregate_first_read_s",
        "the first aggregation after a sweep: every part hashed once",
        "",
    ),
    ("aggregate_compact_s", "compacting 10^7 rows with 0.1 % duplicates", ""),
    (
        "report_peak_mb_626688",
        "aggregation + projection above a warm start, 626,688 points (nightly + a calibrated CPU)",
        "",
    ),
    (
        "report_peak_vs_gathered_ratio",
        "the rows gathered as one pandas frame, the cube kept beside its projection / ours",
        ">= 1.5",
    ),
)
"""The README's benchmark rows: key of ``benchmarks/results.json``, what it measures, target."""


def number(x: float) -> str:
    """A measured number as the README prints it: 9.0e6, 13,435, 124, 32.8, 0.89."""
    if abs(x) >= 1e6:
        exponent = int(math.floor(math.log10(abs(x))))
        return f"{x / 10**exponent:.1f}e{exponent}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2g}"


def benchmarks_table(bench: dict) -> str:
    results = bench["results"]
    modules = ", ".join(f"`{module}` {run_text(bench, module)}" for module in sorted(bench["runs"]))
    lines = [
        f"From `benchmarks/results.json` (`make bench` on a {machine_text(bench)}; {modules}):",
        "",
        "| key | measured | target |",
        "|---|---|---|",
    ]
    for key, what, target in BENCH_ROWS:
        value = results.get(key)
        label = f"`{key}`" + (f" ({what})" if what else "")
        lines.append(f"| {label} | {'-' if value is None else number(value)} | {target} |")
    notes = []
    if "sweep_resume_grid_s_1e6" in results and "sweep_resume_s_1e6" in results:
        notes.append(
            f"Of the {number(results['sweep_resume_s_1e6'])} s resume, the grid's expansion "
            f"took {number(results['sweep_resume_grid_s_1e6'])} s (`sweep_resume_grid_s_1e6`)."
        )
    if "sweep_ray_start_stop_s_1e5" in results:
        notes.append(
            "`sweep_overhead` excludes Ray's fixed start-up and shutdown "
            f"(`sweep_ray_start_stop_s_1e5`: {number(results['sweep_ray_start_stop_s_1e5'])} s)."
        )
    return "\n".join([*lines, *(["", " ".join(notes)] if notes else [])])


def cheap_tables(bench: dict | None = None) -> dict[str, str]:
    """The README blocks that need no model evaluation: presets and benchmarks."""
    bench = bench_results() if bench is None else bench
    return {"presets": presets_table(bench), "benchmarks": benchmarks_table(bench)}


# --------------------------------------------------------------------------- writing
README_MARKERS = ("<!-- BEGIN {name} -->", "<!-- END {name} -->")
YAML_MARKERS = ("# BEGIN {name} (tools/make_docs.py)", "# END {name}")


def render(text: str, generated: dict[str, str], markers=README_MARKERS, where="README.md") -> str:
    """``text`` with each ``name``'s block between its markers replaced by ``generated[name]``."""
    for name, body in generated.items():
        begin, end = (re.escape(m.format(name=name)) for m in markers)
        pattern = re.compile(rf"({begin}\n)(?:.*?\n)?({end})", re.S)
        if not pattern.search(text):
            raise SystemExit(
                f"{where} has no {markers[0].format(name=name)} ... "
                f"{markers[1].format(name=name)} block"
            )
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def generated_files(cheap_only: bool = False, write_score: bool = False) -> dict[Path, str]:
    """Every generated file's new text (``cheap_only``: without the model-derived blocks).

    ``write_score``: write ``score.json`` before the tables, which quote it (``asi-answer``'s
    confidence line in the answer example)."""
    bench = bench_results()
    blocks = cheap_tables(bench)
    out = {}
    if not cheap_only:
        table, score = validation()
        if write_score and (not SCORE_FILE.exists() or SCORE_FILE.read_text() != score):
            SCORE_FILE.write_text(score)
        blocks = tables() | {"validation": table} | blocks
        out[SCORE_FILE] = score
    out[README] = render(README.read_text(), blocks)
    for name in preset_names():
        path = EXPERIMENTS / f"{name}.yaml"
        out[path] = render(
            path.read_text(), {"size": preset_header(name, bench)}, YAML_MARKERS, str(path)
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if any file is stale")
    args = parser.parse_args(argv)
    stale = {
        path: text
        for path, text in generated_files(write_score=not args.check).items()
        if not path.exists() or path.read_text() != text
    }
    if args.check:
        if stale:
            names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
            print(f"generated text differs in {names}: run `make docs`", file=sys.stderr)
            return 1
        return 0
    for path, text in stale.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
