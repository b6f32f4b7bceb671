"""Numbers and tables as ``asi-answer`` prints them (and the report's budget, the same way).

A percentage never appears on the other side of the 1 % target or the 5 % threshold than
its value (:func:`pct`); a table is left-aligned columns under a rule (:func:`fixed_width`).
"""

from __future__ import annotations

from asi_slowdown.model.evaluate import TARGET, THRESHOLD

BOUNDARIES = (TARGET, THRESHOLD)
"""The lines a printed percentage must never appear to cross: the 1 % target and the 5 % threshold."""
MAX_DECIMALS = 6
"""Decimals :func:`pct` stops adding at (a value this close to a line is on it for any purpose)."""


def pct(x: float) -> str:
    """A fraction as a percentage [%]: two decimals under 10 %, one above, and more when
    fewer would show it on the other side of the 1 % target or the 5 % threshold, or on
    the line (0.9996 % prints ``0.9996``, not ``1.00``; verdicts test ``< line``)."""
    decimals = 2 if abs(100 * x) < 10 else 1
    while True:
        text = f"{100 * x:.{decimals}f}"
        shown = float(text) / 100
        if decimals >= MAX_DECIMALS or all((shown < b) == (x < b) for b in BOUNDARIES):
            return text
        decimals += 1


def signed(x: float) -> str:
    return ("+" if x >= 0 else "") + pct(x)


def fixed_width(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as left-aligned columns two spaces apart, a rule under the first (the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines
