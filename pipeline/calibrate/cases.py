"""The public record as validation cases, and the published runs as they were run.

Two kinds of file, read from the packaged configs (``conf/``) and then the user's config
directory (``$ASI_CONFIG_DIR``), plain YAML (they are data, not Hydra config groups):

``validation/<group>.yaml``::

    cases:
      - name: posting_kernel_build          # unique across every validation file
        benchmark: posting_kernel_build     # conf/benchmark/<name>.yaml, or `workload: NAME`
        cpu: sapphire_rapids                # the CPU profile of the machine
        stage: ephmap_prototype             # the ASI kernel's roadmap stage (mitigations=<stage>)
        cpus: 1                             # optional when the benchmark gives the machine's count
        overrides: [cpu.ibpb=false]         # Hydra overrides of the measured side
        reference_overrides: []             # default_* quantities: the reference side (absent: off)
        quantity: slowdown                  # QUANTITIES
        published: 0.076                    # a fraction (or a count, for exit quantities)
        spread: 0.01                        # one-sigma run-to-run spread: absolute, relative for exits
        source: "lore 20250812173109.295750-1-jackmanb@google.com"
        role: calibration                   # calibration (a fit may use it) | validation (only scored)
    splits:                                 # optional: named out-of-sample checks
      - {name: rfc_v2_predicts_the_posting, calibrate: [rfc_v2_fio], predict: [posting_fio]}

``benchmark/<name>.yaml``, a published run as it was run::

    name: posting_kernel_build
    description: ...
    source: ...
    cpus: {values: [8, 16, 24], weights: [1, 2, 1], source: "..."}   # or one number
    phases:                       # one after another; the run's time is the sum of their wall times
      - {workload: untar_kernel_tmpfs, ops: 1, parallel: 1}
      - {workload: kernel_build_tmpfs, ops: 1, parallel: cpus}   # make -j: one job per CPU

A phase's wall time is its time per op x ``ops`` / ``parallel`` (the CPUs it keeps busy:
a number, or ``cpus`` for one job per CPU of the machine, at which count it is evaluated).
Every problem is a one-line :class:`~pipeline.configuration.errors.ConfigError` naming the
file, the case or phase, and the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from asi_slowdown.pipeline.calibrate.measurements import EXIT_QUANTITIES, QUANTITY_UNITS
from asi_slowdown.pipeline.configuration.compose import CONF_DIR, user_config_dir
from asi_slowdown.pipeline.configuration.errors import ConfigError

TIME_QUANTITIES: dict[str, str] = {
    "slowdown": "t_asi / t_native - 1 of the run's wall time: ASI at the stage against "
    "mitigations=off [fraction]",
    "throughput_loss": "1 - t_native / t_asi [fraction]",
    "default_slowdown": "t_default / t_reference - 1: the kernel's default mitigations as the "
    "case's overrides set them, against the reference_overrides' default (or mitigations=off "
    "without them) [fraction]",
    "default_throughput_loss": "1 - t_reference / t_default [fraction]",
}
"""Quantities of a run's time, each compared absolutely (``spread`` in the same unit)."""

QUANTITIES: dict[str, str] = {
    **TIME_QUANTITIES,
    **{
        q: f"an exit count as the prototype's asi_exit tracepoints count it [{u}]"
        for q, u in QUANTITY_UNITS.items()
        if q in EXIT_QUANTITIES
    },
}
"""Every quantity a case may publish. Exit counts are compared in log space (``spread``
relative) and need a one-phase run at one CPU count."""

ROLES = ("calibration", "validation")
CASE_KEYS = (
    "name",
    "benchmark",
    "workload",
    "cpu",
    "stage",
    "cpus",
    "overrides",
    "reference_overrides",
    "quantity",
    "published",
    "spread",
    "source",
    "role",
    "note",
)
CASE_REQUIRED = ("name", "cpu", "stage", "quantity", "published", "spread", "source", "role")
BENCHMARK_KEYS = ("name", "description", "source", "cpus", "phases", "note")
PHASE_KEYS = ("workload", "ops", "parallel", "overrides", "note")


@dataclass(frozen=True)
class CpuCount:
    """The machine's CPU count: one value, or a distribution over values with its evidence."""

    values: tuple[int, ...]
    weights: tuple[float, ...]
    source: str = ""

    @property
    def probabilities(self) -> tuple[float, ...]:
        total = sum(self.weights)
        return tuple(w / total for w in self.weights)


@dataclass(frozen=True)
class Phase:
    """One step of a run: ``ops`` ops of a workload preset keeping ``parallel`` CPUs busy on
    average (a pipeline of two processes can keep 1.5 busy; ``None``: one job per CPU of the
    machine)."""

    workload: str
    ops: float = 1.0
    parallel: float | None = 1.0
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Benchmark:
    """A published run as it was run (``conf/benchmark/<name>.yaml``)."""

    name: str
    phases: tuple[Phase, ...]
    cpus: CpuCount | None = None
    description: str = ""
    source: str = ""


@dataclass(frozen=True)
class Case:
    """One published number, the run it was measured on, and its role."""

    name: str
    benchmark: Benchmark
    cpu: str
    stage: str
    cpus: CpuCount
    quantity: str
    published: float
    spread: float
    source: str
    role: str
    overrides: tuple[str, ...] = ()
    reference_overrides: tuple[str, ...] | None = None
    group: str = ""

    @property
    def relative(self) -> bool:
        """Compared in log space (an exit count), not absolutely."""
        return self.quantity in EXIT_QUANTITIES


@dataclass(frozen=True)
class Split:
    """A named out-of-sample check: calibrate on some cases, predict others."""

    name: str
    calibrate: tuple[str, ...]
    predict: tuple[str, ...]


@dataclass(frozen=True)
class CaseSet:
    cases: tuple[Case, ...]
    splits: tuple[Split, ...] = ()

    def by_name(self) -> dict[str, Case]:
        return {c.name: c for c in self.cases}


# --------------------------------------------------------------------------- parsing
def _keys(row: object, allowed: Sequence[str], where: str) -> Mapping:
    if not isinstance(row, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(row).__name__}")
    unknown = [k for k in row if k not in allowed]
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; allowed: {', '.join(allowed)}")
    return row


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a non-empty string, got {value!r}")
    return value.strip()


def _number(value: object, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ConfigError(f"{where} must be a number > 0, got {value!r}")
    return float(value)


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 8192:
        raise ConfigError(f"{where} must be an integer between 1 and 8192, got {value!r}")
    return int(value)


def _overrides(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where} must be a list of Hydra overrides (strings), got {value!r}")
    return tuple(v.strip() for v in value)


def parse_cpus(value: object, where: str) -> CpuCount:
    """``cpus``: an integer, or ``{values, weights, source}``."""
    if isinstance(value, Mapping):
        _keys(value, ("values", "weights", "source"), where)
        values = value.get("values")
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"{where}.values must be a non-empty list of CPU counts, got {values!r}"
            )
        counts = tuple(_count(v, f"{where}.values[{i}]") for i, v in enumerate(values))
        if len(set(counts)) != len(counts):
            raise ConfigError(f"{where}.values lists a CPU count twice: {list(counts)}")
        weights = value.get("weights", [1] * len(counts))
        if not isinstance(weights, list) or len(weights) != len(counts):
            raise ConfigError(
                f"{where}.weights must be a list of {len(counts)} numbers, got {weights!r}"
            )
        w = tuple(_number(x, f"{where}.weights[{i}]", positive=True) for i, x in enumerate(weights))
        return CpuCount(counts, w, str(value.get("source", "")))
    return CpuCount((_count(value, where),), (1.0,))


def parse_phase(row: object, where: str) -> Phase:
    row = _keys(row, PHASE_KEYS, where)
    parallel = row.get("parallel", 1)
    if parallel == "cpus":
        busy = None
    else:
        busy = _number(parallel, f"{where}.parallel (busy CPUs, or 'cpus')", positive=True)
        if busy < 1:
            raise ConfigError(f"{where}.parallel must be >= 1 (busy CPUs) or 'cpus', got {busy!r}")
    return Phase(
        workload=_text(row.get("workload"), f"{where}.workload"),
        ops=_number(row.get("ops", 1), f"{where}.ops", positive=True),
        parallel=busy,
        overrides=_overrides(row.get("overrides"), f"{where}.overrides"),
    )


def parse_benchmark(doc: object, where: str) -> Benchmark:
    doc = _keys(doc, BENCHMARK_KEYS, where)
    phases = doc.get("phases")
    if not isinstance(phases, list) or not phases:
        raise ConfigError(f"{where}.phases must be a non-empty list of phases, got {phases!r}")
    return Benchmark(
        name=_text(doc.get("name"), f"{where}.name"),
        phases=tuple(parse_phase(p, f"{where}.phases[{i}]") for i, p in enumerate(phases)),
        cpus=None if doc.get("cpus") is None else parse_cpus(doc["cpus"], f"{where}.cpus"),
        description=str(doc.get("description", "")),
        source=str(doc.get("source", "")),
    )


def parse_case(row: object, where: str, benchmarks: Mapping[str, Benchmark], group: str) -> Case:
    row = _keys(row, CASE_KEYS, where)
    for key in CASE_REQUIRED:
        if row.get(key) is None:
            raise ConfigError(f"{where}.{key} is required")
    name = _text(row["name"], f"{where}.name")
    where = f"{where} ({name})"
    if ("benchmark" in row) == ("workload" in row):
        raise ConfigError(f"{where}: give exactly one of benchmark (conf/benchmark) or workload")
    if "benchmark" in row:
        key = _text(row["benchmark"], f"{where}.benchmark")
        if key not in benchmarks:
            raise ConfigError(
                f"{where}.benchmark: unknown benchmark {key!r}; allowed: {', '.join(sorted(benchmarks))}"
            )
        bench = benchmarks[key]
    else:
        bench = Benchmark(
            name=_text(row["workload"], f"{where}.workload"), phases=(Phase(row["workload"]),)
        )
    if "cpus" in row:
        cpus = parse_cpus(row["cpus"], f"{where}.cpus")
    elif bench.cpus is not None:
        cpus = bench.cpus
    else:
        raise ConfigError(
            f"{where}.cpus is required (its benchmark does not give the machine's CPU count)"
        )
    quantity = _text(row["quantity"], f"{where}.quantity")
    if quantity not in QUANTITIES:
        raise ConfigError(
            f"{where}.quantity: unknown quantity {quantity!r}; allowed: {', '.join(QUANTITIES)}"
        )
    exits = quantity in EXIT_QUANTITIES
    if exits and (len(bench.phases) != 1 or len(cpus.values) != 1):
        raise ConfigError(f"{where}.quantity: an exit count needs a one-phase run at one CPU count")
    published = _number(row["published"], f"{where}.published", positive=exits)
    if quantity.endswith("throughput_loss") and not 0 <= published < 1:
        raise ConfigError(f"{where}.published must be a fraction in [0, 1), got {published!r}")
    role = _text(row["role"], f"{where}.role")
    if role not in ROLES:
        raise ConfigError(f"{where}.role must be one of {', '.join(ROLES)}, got {role!r}")
    reference = row.get("reference_overrides")
    if reference is not None and not quantity.startswith("default_"):
        raise ConfigError(f"{where}.reference_overrides: only for default_* quantities")
    return Case(
        name=name,
        benchmark=bench,
        cpu=_text(row["cpu"], f"{where}.cpu"),
        stage=_text(row["stage"], f"{where}.stage"),
        cpus=cpus,
        quantity=quantity,
        published=published,
        spread=_number(row["spread"], f"{where}.spread", positive=True),
        source=_text(row["source"], f"{where}.source"),
        role=role,
        overrides=_overrides(row.get("overrides"), f"{where}.overrides"),
        reference_overrides=None
        if reference is None
        else _overrides(reference, f"{where}.reference_overrides"),
        group=group,
    )


def parse_split(row: object, where: str, names: set[str]) -> Split:
    row = _keys(row, ("name", "calibrate", "predict", "note"), where)
    name = _text(row.get("name"), f"{where}.name")
    out = {}
    for key in ("calibrate", "predict"):
        value = row.get(key)
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{where} ({name}).{key} must be a non-empty list of case names")
        unknown = [v for v in value if v not in names]
        if unknown:
            raise ConfigError(f"{where} ({name}).{key}: unknown case {unknown[0]!r}")
        out[key] = tuple(value)
    return Split(name, out["calibrate"], out["predict"])


# --------------------------------------------------------------------------- reading
def config_roots(extra: Sequence[str] = ()) -> list[Path]:
    """Where cases and benchmarks are read from: the packaged configs, ``--config-dir``s, then
    the user's config directory."""
    return [CONF_DIR, *(Path(d) for d in extra), user_config_dir()]


def _yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read it as YAML: {str(exc).splitlines()[0]}") from None


def read_benchmarks(roots: Sequence[Path]) -> dict[str, Benchmark]:
    """Every ``benchmark/*.yaml`` on the roots, by name (a name defined twice is an error)."""
    out: dict[str, Benchmark] = {}
    for root in roots:
        for path in sorted((root / "benchmark").glob("*.yaml")):
            bench = parse_benchmark(_yaml(path), str(path))
            if bench.name != path.stem:
                raise ConfigError(
                    f"{path}.name must be the file's name {path.stem!r}, got {bench.name!r}"
                )
            if bench.name in out:
                raise ConfigError(f"{path}: benchmark {bench.name!r} is defined twice")
            out[bench.name] = bench
    return out


def read_group(
    path: Path, benchmarks: Mapping[str, Benchmark]
) -> tuple[list[Case], list[tuple[object, str]]]:
    """The cases of one ``validation/<group>.yaml``, and its splits unparsed (they name cases
    of any group)."""
    doc = _keys(_yaml(path) or {}, ("cases", "splits"), str(path))
    rows = doc.get("cases") or []
    if not isinstance(rows, list):
        raise ConfigError(f"{path}.cases must be a list of cases")
    cases = [
        parse_case(row, f"{path}: cases[{i}]", benchmarks, path.stem) for i, row in enumerate(rows)
    ]
    splits = [(row, f"{path}: splits[{i}]") for i, row in enumerate(doc.get("splits") or [])]
    return cases, splits


def read_cases(roots: Sequence[Path] | None = None) -> CaseSet:
    """Every case and split of ``validation/*.yaml`` on the roots (names unique)."""
    roots = config_roots() if roots is None else roots
    benchmarks = read_benchmarks(roots)
    cases: list[Case] = []
    raw_splits: list[tuple[object, str]] = []
    for root in roots:
        for path in sorted((root / "validation").glob("*.yaml")):
            group_cases, group_splits = read_group(path, benchmarks)
            cases += group_cases
            raw_splits += group_splits
    seen: set[str] = set()
    for case in cases:
        if case.name in seen:
            raise ConfigError(f"validation case {case.name!r} is defined twice")
        seen.add(case.name)
    splits = tuple(parse_split(row, where, seen) for row, where in raw_splits)
    return CaseSet(tuple(cases), splits)
