"""``asi-validate``: the model against every public measurement, in and out of sample.

:func:`run` composes every case (:mod:`pipeline.calibrate.cases`), predicts it
(:mod:`pipeline.validate.predict`), scores it (:mod:`pipeline.validate.score`) and returns
the text the command prints: a table, or with ``validate.format=json`` one object
``{"cases": [...], "coverage", "mean_abs_loo_error", "profile", "model_version", ...}``
(quantities as fractions, like the rest of the JSON). The figure, predicted against
published with 90 % bands and the diagonal, goes to ``validate.dir``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from asi_slowdown.model import MODEL_VERSION
from asi_slowdown.pipeline.calibrate.cases import CaseSet, read_cases
from asi_slowdown.pipeline.configuration.checks import check_validate
from asi_slowdown.pipeline.configuration.compose import Composer
from asi_slowdown.pipeline.configuration.compose import composer as default_composer
from asi_slowdown.pipeline.configuration.errors import ConfigError
from asi_slowdown.pipeline.projection.answer import SCORE_FILE
from asi_slowdown.pipeline.validate.predict import Profile, case_points, profile_from_config
from asi_slowdown.pipeline.validate.score import ASI_QUANTITIES, Score, score


def score_document(doc: dict) -> dict:
    """What ``asi-answer`` quotes of an ``asi-validate`` JSON: counts, coverage and errors."""
    asi = [c for c in doc["cases"] if c["quantity"] in ASI_QUANTITIES]
    return {
        "model_version": doc["model_version"],
        "profiles": doc["profile"],
        "cases": len(doc["cases"]),
        "inside_band": sum(c["inside_band"] for c in doc["cases"]),
        "coverage": doc["coverage"],
        "mean_abs_loo_error": doc["mean_abs_loo_error"],
        "mean_abs_error_in_sample": (sum(abs(c["error"]) for c in asi) / len(asi) if asi else None),
        "summary": doc["summary"],
        "cases_scored": [{k: c[k] for k in SCORE_KEYS} for c in doc["cases"]],
    }


SCORE_KEYS = (
    "name",
    "source",
    "quantity",
    "role",
    "published",
    "p05",
    "p50",
    "p95",
    "error",
    "inside_band",
    "loo_p50",
    "loo_error",
)
"""What ``score.json`` keeps of each case: enough for the report's table and figure."""


def shipped_or_live(composer: Composer) -> tuple[dict, str]:
    """The cases scored for a report: ``score.json`` when it is of this model (written by
    ``make docs``: in sample and leave one out), else computed now in sample (seconds).
    Returns the rows and where they came from."""
    try:
        score = json.loads(SCORE_FILE.read_text())
    except (OSError, ValueError):
        score = {}
    if score.get("model_version") == MODEL_VERSION and score.get("cases_scored"):
        return score, f"asi-validate, model {MODEL_VERSION} (conf/validation/score.json)"
    doc = in_sample_quick(composer)
    live = score_document(doc)
    return live, f"asi-validate in sample, model {MODEL_VERSION}, computed for this report"


def chosen_profile(cfg, overrides: Sequence[str]) -> tuple[str | None, Profile | None, str]:
    """The profile a ``cpu=NAME`` override asks to validate, and the machine (the shipped
    profile) whose cases it replaces: its ``provenance.base_profile``, or itself."""
    if not any(o.split("=", 1)[0].lstrip("+~") == "cpu" for o in overrides):
        return None, None, ""
    provenance = cfg.cpu.get("provenance") or {}
    machine = str(provenance.get("base_profile") or cfg.cpu.name)
    return machine, profile_from_config(cfg), str(cfg.cpu.name)


def select(case_set: CaseSet, cfg) -> CaseSet:
    """The cases ``validate.cases`` names (checked against the record), or every case."""
    names = list(cfg.validate.cases)
    if not names:
        return case_set
    check_validate(cfg, cases=list(case_set.by_name()))
    chosen = tuple(c for c in case_set.cases if c.name in set(names))
    return CaseSet(chosen, ())


def evaluate_cases(cfg, overrides: Sequence[str], composer: Composer, progress=None):
    """Compose, predict and score every case; returns ``(score, profiles used)``."""
    case_set = select(read_cases(), cfg)
    if not case_set.cases:
        raise ConfigError("no validation case found (conf/validation/*.yaml)")
    base = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in ("cpu",)]
    machine, replacement, replacement_name = chosen_profile(cfg, overrides)
    points, profiles, used = {}, {}, {}
    for case in case_set.cases:
        cp = case_points(case, composer, extra=[o for o in base if not o.startswith("validate.")])
        points[case.name] = cp
        if case.cpu == machine:
            profiles[case.cpu] = replacement
            used[case.cpu] = replacement_name
        else:
            profiles.setdefault(case.cpu, cp.profile)
            used.setdefault(case.cpu, case.cpu)
        if progress:
            progress(f"composed {case.name}")
    result = score(
        case_set,
        points,
        profiles,
        samples=int(cfg.samples),
        seed=int(cfg.seed),
        leave_one_out=bool(cfg.validate.leave_one_out),
        splits=bool(cfg.validate.splits),
        progress=progress,
    )
    result.profiles = used
    return result


# --------------------------------------------------------------------------- output
def value_text(quantity: str, value: float | None, dash: str = "-") -> str:
    """A case's value as people read it: exit counts as numbers, the rest in %."""
    if value is None:
        return dash
    return f"{value:.3g}" if quantity.startswith("exit") else f"{100 * value:.3g} %"


def error_text(quantity: str, error: float | None, dash: str = "-") -> str:
    """A case's error: relative in % for exit counts, in percentage points for the rest."""
    if error is None:
        return dash
    return f"{100 * error:+.0f} %" if quantity.startswith("exit") else f"{100 * error:+.1f} pp"


def fmt(value: float | None, case) -> str:
    return value_text(case.quantity, value)


def fmt_error(value: float | None, case) -> str:
    return error_text(case.quantity, value)


def rows(result: Score) -> list[dict]:
    out = []
    for s in result.cases:
        c, p = s.case, s.prediction
        out.append(
            {
                "name": c.name,
                "source": c.source,
                "quantity": c.quantity,
                "role": c.role,
                "cpu": result.profiles.get(c.cpu, c.cpu),
                "published": c.published,
                "spread": c.spread,
                "p05": p.p05,
                "p50": p.p50,
                "p95": p.p95,
                "error": s.error,
                "inside_band": s.inside,
                "loo_p50": None if s.loo is None else s.loo.p50,
                "loo_p05": None if s.loo is None else s.loo.p05,
                "loo_p95": None if s.loo is None else s.loo.p95,
                "loo_error": s.loo_error,
                "loo_inside_band": None if s.loo is None else s.loo.inside(c.published),
                "fit_at_bound": s.fit_notes,
            }
        )
    return out


def summary_line(result: Score) -> str:
    """One sentence for every answer: how many cases, inside the band, out-of-sample error."""
    n = len(result.cases)
    inside = sum(s.inside for s in result.cases)
    loo = result.mean_abs_loo_error
    text = f"validated on {n} public measurements: {inside} inside the 90 % band"
    if loo is not None:
        text += f", mean out-of-sample error {100 * loo:.1f} pp on the ASI cases"
    return text


def format_json(result: Score) -> str:
    return json.dumps(
        {
            "cases": rows(result),
            "coverage": result.coverage,
            "mean_abs_loo_error": result.mean_abs_loo_error,
            "profile": result.profiles,
            "model_version": MODEL_VERSION,
            "splits": [
                {
                    "name": s.split.name,
                    "calibrate": list(s.split.calibrate),
                    "cases": [
                        {
                            "name": c.name,
                            "quantity": c.quantity,
                            "published": c.published,
                            "p05": p.p05,
                            "p50": p.p50,
                            "p95": p.p95,
                            "inside_band": p.inside(c.published),
                        }
                        for c, p in s.rows
                    ],
                }
                for s in result.splits
            ],
            "summary": summary_line(result),
        },
        indent=2,
    )


def format_table(result: Score, cfg) -> str:
    header = (
        f"Validation: the model {MODEL_VERSION} against {len(result.cases)} public measurements, "
        f"{cfg.samples} cost samples, seed {cfg.seed}; profiles: "
        + ", ".join(f"{m} as {p}" if m != p else m for m, p in result.profiles.items())
        + "."
    )
    lines = [
        header,
        "",
        "| case | quantity | role | published | p50 [p05-p95] | error | in band | "
        "leave-one-out p50 | LOO error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result.cases:
        c, p = s.case, s.prediction
        lines.append(
            f"| `{c.name}` | {c.quantity} | {c.role} | {fmt(c.published, c)} | "
            f"{fmt(p.p50, c)} [{fmt(p.p05, c)} - {fmt(p.p95, c)}] | {fmt_error(s.error, c)} | "
            f"{'yes' if s.inside else '**no**'} | {fmt(None if s.loo is None else s.loo.p50, c)} | "
            f"{fmt_error(s.loo_error, c)} |"
        )
    lines += [
        "",
        f"Coverage of the 90 % band: {100 * result.coverage:.0f} % ({summary_line(result)}).",
    ]
    for s in result.splits:
        parts = [
            f"{c.name} {fmt(c.published, c)} -> {fmt(p.p50, c)} [{fmt(p.p05, c)} - {fmt(p.p95, c)}]"
            f" {'inside' if p.inside(c.published) else 'OUTSIDE'}"
            for c, p in s.rows
        ]
        lines.append(
            f"Split {s.split.name} (calibrated on {', '.join(s.split.calibrate)}): "
            + "; ".join(parts)
            + "."
        )
    misfits = [s for s in result.cases if s.fit_notes]
    for s in misfits:
        lines.append(
            f"Misfit: leaving out {s.case.name}, the fit stopped with {', '.join(s.fit_notes)}."
        )
    return "\n".join(lines)


def figure(cases: Sequence[dict], path: Path) -> Path:
    """Predicted (p50 with the 90 % band) against published for ``cases`` (rows of the JSON,
    :func:`rows`), log axes, and the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    # the axes span the published values and the medians; a band reaching zero or below (a
    # slowdown can be negative) is drawn to the bottom edge of a log axis
    shown = [v for c in cases for v in (c["published"], c["p50"], c["p95"]) if v > 0]
    low, high = min(shown) / 3, max(shown) * 2
    for c in cases:
        colour = (
            "tab:blue"
            if c["quantity"] in ASI_QUANTITIES
            else "tab:purple"
            if c["quantity"].startswith("exit")
            else "tab:green"
        )
        p50, p05 = max(c["p50"], low), max(c["p05"], low)
        ax.errorbar(
            c["published"],
            p50,
            yerr=[[max(p50 - p05, 0)], [max(c["p95"] - p50, 0)]],
            fmt="o" if c["inside_band"] else "x",
            color=colour,
            capsize=3,
        )
        ax.annotate(
            c["name"], (c["published"], p50), fontsize=7, xytext=(4, 3), textcoords="offset points"
        )
    ax.plot([low, high], [low, high], color="0.5", lw=1, ls="--", label="predicted = published")
    ax.set(
        xscale="log",
        yscale="log",
        xlim=(low, high),
        ylim=(low, high),
        xlabel="published (fraction, or exits)",
        ylabel="model p50 with its 90 % band",
    )
    ax.set_title(f"Model {MODEL_VERSION} against the public record", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def output_dir(cfg) -> Path:
    if cfg.validate.dir:
        return Path(cfg.validate.dir)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S-%f")
    return Path("outputs/validation") / stamp


def run(argv: Sequence[str], composer: Composer | None = None) -> str:
    """The text ``asi-validate`` prints for command-line overrides ``argv``."""
    composer = composer or default_composer()
    cfg = composer.compose(argv)
    check_validate(cfg)
    progress = (
        (lambda line: print(f"asi-validate: {line}", file=sys.stderr))
        if cfg.validate.progress
        else None
    )
    result = evaluate_cases(cfg, argv, composer, progress)
    if cfg.validate.figure:
        path = figure(rows(result), output_dir(cfg) / "validation.png")
        print(f"figure: {path}", file=sys.stderr)
    return format_json(result) if cfg.validate.format == "json" else format_table(result, cfg)


# --------------------------------------------------------------------------- the report
NIGHTS_FOLDER = "validation"
"""Beside the nightly history (``report.history``): one JSON per night, ``<date>.json``, the
in-sample score of every case, so the next night can say which case left its band."""


def in_sample_quick(composer: Composer) -> dict:
    """Every case in sample under the shipped profiles (no refit, no splits: seconds), as the
    JSON of ``asi-validate``, for a report whose ``score.json`` is of another model."""
    cfg = composer.compose(
        ["validate.leave_one_out=false", "validate.splits=false", "validate.progress=false"]
    )
    return json.loads(format_json(evaluate_cases(cfg, [], composer)))


def left_their_band(previous: dict | None, current: dict) -> list[str]:
    """Cases inside their band in ``previous`` (a night's scored cases) and outside it
    in ``current``: one sentence each, for the nightly report's flags."""
    if not previous:
        return []
    before = {c["name"]: c for c in previous.get("cases_scored", ())}
    out = []
    for c in current["cases_scored"]:
        old = before.get(c["name"])
        if old and old["inside_band"] and not c["inside_band"]:
            out.append(
                f"{c['name']} left its band: published {c['published']:.4g}, model "
                f"{c['p50']:.4g} [{c['p05']:.4g}-{c['p95']:.4g}] (the night before "
                f"{old['p50']:.4g} [{old['p05']:.4g}-{old['p95']:.4g}])"
            )
    return out


def save_night(history: Path, date: str, doc: dict) -> Path:
    """Commit a night's validation beside the history (all or nothing, as every part)."""
    from asi_slowdown.pipeline.store.parts import commit_bytes

    return commit_bytes(history / NIGHTS_FOLDER, f"{date}.json", json.dumps(doc).encode())


def previous_night(history: Path, date: str) -> dict | None:
    """The latest night's validation before ``date``, or None (first night, or unreadable:
    a damaged file is skipped, the flags then compare with nothing)."""
    folder = history / NIGHTS_FOLDER
    nights = sorted(p for p in folder.glob("*.json") if p.stem < date) if folder.is_dir() else []
    for path in reversed(nights):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return None
