"""``summary.md``: the report's short Markdown summary, from the page's context."""

from asi_slowdown.pipeline.projection import history as hist
from asi_slowdown.pipeline.report.collection import Report


def markdown(report: Report, context: dict) -> str:
    """The short Markdown summary (``summary.md``)."""
    lines = [
        f"# {context['title']}",
        "",
        f"Generated {context['generated_at']} ({context['mode']}), experiment `{context['experiment']}`, "
        f"store `{context['store']}`, Dask {context['scheduler']}, git `{context['git']}`.",
        "",
    ]
    lines += ["## The answer", "", context["headline"]["sentence"], ""]
    if context["hint"]:
        lines += [context["hint"], ""]
    if context["grid_points"]:
        lines.append(
            f"Coverage: {context['stored']:,} of {context['grid_points']:,} grid points "
            f"({context['coverage_pct']} %); {context['missing']:,} missing."
        )
    else:
        lines.append(
            f"Points: {context['stored']:,} (whole store; no grid to measure coverage against)."
        )
    if context["kept_out"]:
        lines += ["", context["kept_out"]]
    lines += ["", f"## Projection at the focus point ({' → '.join(context['stages'])})", ""]
    lines.append(
        "| workload | cpu | focus | "
        + " | ".join(context["stages"])
        + " | verdict | P(<1 %) | P(<5 %) |"
    )
    lines.append("|" + "---|" * (len(context["stages"]) + 6))
    for row in context["matrix"]:
        focus = (
            f"{row['focus']} (not stored: {row['replaced']})" if row["replaced"] else row["focus"]
        )
        cells = " | ".join(
            f"{c['text']} ({c['versus']} vs default)" if c.get("versus") else c["text"]
            for c in row["cells"]
        )
        lines.append(
            f"| {row['workload']} | {row['cpu']} | {focus} | {cells} | {row['verdict']} "
            f"| {row['p_meets']} | {row['p_under']} |"
        )
    if context["focus_replaced"]:
        lines += ["", context["focus_replaced"]]
    lines += [
        "",
        "Slowdown p50 against mitigations=off (in brackets: against the kernel's default "
        "mitigations, negative = ASI faster); P(<1 %), P(<5 %) after the whole roadmap; crossings:",
        "",
    ]
    for row in context["matrix"]:
        remaining = (
            f"remaining mostly {row['dominant']}"
            if row["dominant"]
            else f"{context['final']} not stored at the focus point"
        )
        lines.append(
            f"- {row['workload']} on {row['cpu']}: {row['threshold']}; {row['target']}; "
            f"{row['beats_default']}; {remaining}."
        )
    if context["conditions"]:
        lines += ["", "Probabilities are conditional on:", ""]
        lines += [f"- {c['cpu']}: {c['text']}" for c in context["conditions"]]
    if context["budget"]:
        lines += ["", f"## What it would take at {context['final']}", ""]
        for entry in context["budget"]:
            lines.append(f"- {entry['sentence']}")
    if context["top_costs"]:
        lines += ["", f"## What drives the spread at {context['final']}", ""]
        for row in context["top_costs"]:
            lines.append(f"- {row['workload']} on {row['cpu']}: {row['costs']}")
    if context["comparison"] is not None:
        comp = context["comparison"]
        lines += ["", f"## Compared with {comp['previous']}", ""]
        if comp["flagged"]:
            for f in comp["flagged"]:
                lines.append(
                    f"- **{f['status']}**: {f['workload']} / {f['cpu']} / {f['stage']}: "
                    f"{f['before']} % → {f['now']} % ({f['delta']} points), P(<1 %) "
                    f"{f['p_meets_before']} → {f['p_meets_now']}, vs default "
                    f"{f['versus_before']} % → {f['versus_now']} %"
                )
        elif comp["compared"]:
            lines.append(
                f"Of the {comp['compared']} projection(s) compared, none moved by more than "
                f"{context['threshold_points']} points, no verdict changed, no probability "
                f"moved by more than {context['probability_move']}."
            )
        else:
            lines.append(f"Nothing compared: {comp['outcome']}.")
        for u in comp["unmatched"]:
            lines.append(
                f"- **{hist.NO_PREVIOUS}**: {u['workload']} / {u['cpu']} / {u['stage']} at "
                f"{u['focus']}: {u['now']} % ({u['verdict']}); on {comp['previous']}: {u['before']}"
            )
    elif context["comparison_note"]:
        lines += [
            "",
            "## Compared with the previous night",
            "",
            f"{context['comparison_note']}.",
        ]
    history = [context["history_error"], context["history_replaced"], *context["history_warnings"]]
    if any(history):
        lines += ["", "## History", ""]
        lines += [f"- {line}" for line in filter(None, history)]
    lines += ["", "## Figures", ""]
    for fig in context["figures"]:
        lines.append(f"- [{fig.title}]({fig.path}): {fig.caption}")
    return "\n".join(lines) + "\n"
