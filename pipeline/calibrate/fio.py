"""Read ``fio --output-format=json`` results into per-op event rates.

One fio JSON file is one *run*: all its jobs together, each job on its own
CPU (the model's ``cpus``: one job per CPU). Accepted: fio 3.x JSON or JSON+
output, one or many jobs, with or without ``group_reporting`` (then fio
reports one job whose counters are summed over ``numjobs`` jobs), reads and
writes. Text that fio prints before the JSON on the same stream (``fio:
pid=..., err=...`` notes) is skipped.

Per-op rates are over all I/Os of the run (reads and writes):

* ``time_per_op`` [ns]: wall time per I/O of one job, ``jobs * 1e9 / IOPS``;
  it includes fio's own user-space work between I/Os, which is what the
  model's ``base_time`` stands for. Throughput loss is defined on it.
* ``usr_per_op``, ``sys_per_op`` [ns]: fio's ``usr_cpu`` and ``sys_cpu`` are
  percentages of one CPU over a job's ``job_runtime`` [ms] (summed over the
  jobs with ``group_reporting``), so CPU time per I/O is
  ``cpu% / 100 * job_runtime * 1e6 / total_ios``.
* ``ctx_per_op``, ``majf_per_op``, ``minf_per_op`` [1/op]: context switches
  (voluntary and involuntary, from ``getrusage``), major and minor faults.

Every problem is a one-line :class:`~pipeline.configuration.errors.ConfigError` naming the
file and, where it applies, the job.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from asi_slowdown.model.units import parse_size
from asi_slowdown.pipeline.configuration.errors import ConfigError

MAX_JOBS = 8192
"""More fio jobs than this in one run is not a measurement: the model's ``cpus`` stop here."""

MAX_SIZE = 1 << 60
"""A ``bs`` or ``size`` option above this (1 EiB) is a typo, not a job."""

_DIGITS_ONLY = re.compile(r"^\s*\d+\s*[kmgtp]?(i?b)?\s*$", re.IGNORECASE)
_VERSION = re.compile(r"^fio-(\d+)\.(\d+)")

DIRECTIONS = ("read", "write")
"""The I/O sections whose I/Os count as ops (``trim`` is ignored)."""

SEQUENTIAL_RW = frozenset({"read", "write", "rw", "readwrite", "trim", "trimwrite"})
RANDOM_RW = frozenset({"randread", "randwrite", "randrw", "randtrim"})


@dataclass(frozen=True)
class FioRun:
    """Per-op event rates of one fio run (one JSON file).

    Attributes
    ----------
    path : str
        The file the run was read from.
    sha256 : str
        Hex digest of the file's bytes (provenance).
    fio_version : str
        As fio reports it, e.g. ``"fio-3.33"``.
    jobs : int
        Jobs in the run (see :func:`jobs_per_record`).
    total_ios : int
        I/Os completed by all jobs (reads + writes).
    iops : float
        I/Os per second, all jobs together [1/s].
    time_per_op : float
        Wall time per I/O of one job [ns].
    lat_mean : float or None
        Mean I/O latency, submission to completion [ns]; ``None`` if absent.
    usr_per_op, sys_per_op : float
        User and system CPU time per I/O [ns].
    ctx_per_op, majf_per_op, minf_per_op : float
        Context switches, major and minor faults per I/O [1/op].
    block_size : int or None
        ``bs`` of the job options [bytes], if given.
    file_size : int or None
        ``size`` of the job options [bytes], if given.
    sequential : bool or None
        From ``rw``: ``False`` for random patterns, ``True`` for sequential ones.
    """

    path: str
    sha256: str
    fio_version: str
    jobs: int
    total_ios: int
    iops: float
    time_per_op: float
    lat_mean: float | None
    usr_per_op: float
    sys_per_op: float
    ctx_per_op: float
    majf_per_op: float
    minf_per_op: float
    block_size: int | None
    file_size: int | None
    sequential: bool | None


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def decode_fio_json(text: str, where: str) -> dict:
    """Parse fio's JSON output, skipping any text fio printed before it.

    Raises :class:`ConfigError` ``"<where>: ..."`` for empty, truncated or
    malformed output.
    """
    start = text.find("{")
    if start < 0:
        raise ConfigError(
            f"{where}: no JSON object found (is this fio --output-format=json output?)"
        )
    try:
        doc, _ = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as exc:
        at_end = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        cause = "truncated" if at_end else "malformed"
        raise ConfigError(
            f"{where}: fio JSON is {cause} at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: fio JSON must be an object, got {type(doc).__name__}")
    return doc


def _shown(value: object, limit: int = 40) -> str:
    """``repr(value)``, cut short: a counter of hundreds of digits stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _number(section: dict, key: str, where: str) -> float:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: {key!r} must be a number, got {_shown(value)}")
    try:
        number = float(value)  # JSON integers are unbounded: 10**400 does not fit a float
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"{where}: {key!r} must be a finite number >= 0, got {_shown(value)}")
    return number


def _job_where(where: str, index: int, job: dict) -> str:
    return f"{where}: job {index} ({job.get('jobname', '?')!r})"


def check_job(job: object, index: int, where: str) -> dict:
    """Return ``job`` if it is a usable fio job record, else raise :class:`ConfigError`."""
    if not isinstance(job, dict):
        raise ConfigError(f"{where}: job {index} is not a JSON object")
    here = _job_where(where, index, job)
    error = job.get("error", 0)
    if error:
        known = isinstance(error, int) and 0 < error < 4096  # errno values
        detail = os.strerror(error) if known else "unknown"
        raise ConfigError(
            f"{here} failed with error {error} ({detail}); rerun fio and check its stderr"
        )
    for direction in DIRECTIONS:
        if not isinstance(job.get(direction), dict):
            raise ConfigError(f"{here} has no {direction!r} section (fio 3.x JSON expected)")
    return job


def job_options(doc: dict, job: dict, where: str = "fio JSON") -> dict:
    """The job's effective options: ``global options`` overridden by ``job options``."""
    options = {}
    for key, section in (("global options", doc), ("job options", job)):
        value = section.get(key) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key!r} must be a JSON object, got {type(value).__name__}")
        options.update(value)
    return options


def _option_size(options: dict, key: str, where: str) -> int | None:
    if key not in options:
        return None
    value = str(options[key])
    # bs may give read,write sizes ("4k,8k") or ranges; keep the first, plain one.
    first = value.split(",")[0].split(":")[0]
    try:
        size = parse_size(first, f"{where}: option {key}")
    except ValueError:
        if _DIGITS_ONLY.match(first):  # digits but no size: too many of them for a float
            raise ConfigError(
                f"{where}: option {key} is not a plausible size, got {_shown(value)}"
            ) from None
        return None  # a range or percentage: not a single size
    if size > MAX_SIZE:
        raise ConfigError(f"{where}: option {key} is not a plausible size, got {_shown(value)}")
    return size


def _pattern(options: dict) -> bool | None:
    rw = str(options.get("rw", options.get("readwrite", "read"))).split(":")[0]
    if rw in RANDOM_RW:
        return False
    if rw in SEQUENTIAL_RW:
        return True
    return None


def _latency_mean(jobs: list[dict]) -> float | None:
    """Mean I/O latency over jobs and directions, weighted by I/O counts [ns]."""
    total, weight = 0.0, 0
    for job in jobs:
        for direction in DIRECTIONS:
            section = job[direction]
            ios = section.get("total_ios", 0)
            lat, scale = section.get("lat_ns"), 1.0
            if not isinstance(lat, dict):  # before fio 3.0: microseconds
                lat, scale = section.get("lat"), 1e3
            if ios and isinstance(lat, dict) and isinstance(lat.get("mean"), int | float):
                total += ios * lat["mean"] * scale
                weight += ios
    return total / weight if weight else None


def _numjobs(options: dict, where: str) -> int:
    raw = options.get("numjobs", 1)
    try:
        jobs = int(raw)
        whole = not isinstance(raw, bool) and jobs == float(raw)  # 1.5 is not a job count
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:
        raise ConfigError(f"{where}: numjobs must be an integer, got {_shown(raw)}")
    if not 1 <= jobs <= MAX_JOBS:
        raise ConfigError(f"{where}: numjobs must be between 1 and {MAX_JOBS}, got {_shown(raw)}")
    return jobs


def jobs_per_record(doc: dict, jobs: list[dict], where: str) -> list[int]:
    """How many jobs each record stands for.

    fio's JSON does not say whether ``group_reporting`` was on. Without it,
    a job section with ``numjobs=N`` gives N records of the same name and
    group; with it, one record whose counters are summed over the N jobs.
    """
    names = [(job.get("jobname"), job.get("groupid")) for job in jobs]
    counts = []
    for i, job in enumerate(jobs):
        here = _job_where(where, i, job)
        numjobs = _numjobs(job_options(doc, job, here), here)
        counts.append(numjobs if names.count(names[i]) == 1 else 1)
    return counts


def fio_version(doc: dict, where: str) -> str:
    """``fio version`` as fio 3.x writes it (``"fio-3.33"``); ``"unknown"`` if absent.

    fio 2.x JSON has other units and fields, and a later major version may too:
    anything but ``fio-3.*`` is refused rather than misread.
    """
    if "fio version" not in doc:
        return "unknown"
    version = doc["fio version"]
    found = _VERSION.match(version) if isinstance(version, str) else None
    if found is None:
        raise ConfigError(
            f"{where}: 'fio version' must be like \"fio-3.33\", got {_shown(version)}"
        )
    if found.group(1) != "3":
        raise ConfigError(
            f"{where}: 'fio version' {version!r} is not supported (fio 3.x JSON expected)"
        )
    return version


def summarize(doc: dict, where: str, sha256: str = "") -> FioRun:
    """Per-op rates of a decoded fio JSON document (see the module notes)."""
    version = fio_version(doc, where)
    raw_jobs = doc.get("jobs")
    if not isinstance(raw_jobs, list) or not raw_jobs:
        raise ConfigError(f"{where}: fio JSON has no 'jobs' list (truncated or not fio output?)")
    jobs = [check_job(job, i, where) for i, job in enumerate(raw_jobs)]
    n_jobs = sum(jobs_per_record(doc, jobs, where))
    ios = 0
    iops = cpu_usr = cpu_sys = ctx = majf = minf = 0.0
    for i, job in enumerate(jobs):
        here = _job_where(where, i, job)
        for direction in DIRECTIONS:
            ios += int(_number(job[direction], "total_ios", f"{here} {direction}"))
            iops += _number(job[direction], "iops", f"{here} {direction}")
        if "job_runtime" in job:
            runtime_ns = _number(job, "job_runtime", here) * 1e6
        else:  # older fio 3.x: per-direction runtimes [ms]
            runtime_ns = max(_number(job[d], "runtime", here) for d in DIRECTIONS) * 1e6
        cpu_usr += _number(job, "usr_cpu", here) / 100.0 * runtime_ns
        cpu_sys += _number(job, "sys_cpu", here) / 100.0 * runtime_ns
        ctx += _number(job, "ctx", here)
        majf += _number(job, "majf", here)
        minf += _number(job, "minf", here)
    if ios == 0 or iops <= 0:
        raise ConfigError(f"{where}: fio completed no I/O (total_ios = 0); nothing to calibrate on")
    totals = {"iops": iops, "usr_cpu": cpu_usr, "sys_cpu": cpu_sys, "ctx": ctx}
    totals |= {"majf": majf, "minf": minf}
    for key, total in totals.items():  # each finite, their sum over jobs too large for a float
        if not math.isfinite(total):
            raise ConfigError(f"{where}: {key!r} summed over the jobs is too large to be a count")
    if n_jobs > MAX_JOBS:
        raise ConfigError(
            f"{where}: {n_jobs} fio jobs in one run; at most {MAX_JOBS} (one per CPU)"
        )
    options = job_options(doc, jobs[0], where)
    return FioRun(
        path=where,
        sha256=sha256,
        fio_version=version,
        jobs=n_jobs,
        total_ios=ios,
        iops=iops,
        time_per_op=n_jobs * 1e9 / iops,
        lat_mean=_latency_mean(jobs),
        usr_per_op=cpu_usr / ios,
        sys_per_op=cpu_sys / ios,
        ctx_per_op=ctx / ios,
        majf_per_op=majf / ios,
        minf_per_op=minf / ios,
        block_size=_option_size(options, "bs", where) or _option_size(options, "blocksize", where),
        file_size=_option_size(options, "size", where),
        sequential=_pattern(options),
    )


def read_fio(path: str | os.PathLike) -> FioRun:
    """Read one fio JSON file; raise :class:`ConfigError` naming it on any problem."""
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read fio output: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not text (byte {exc.start} is not UTF-8)") from None
    return summarize(decode_fio_json(text, where), where, hashlib.sha256(data).hexdigest())
