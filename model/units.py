"""Units and size strings, parsed in one place.

Sizes accept what fio accepts with its default ``kb_base=1024``: an integer
with an optional suffix ``K``, ``M``, ``G``, ``T`` or ``P`` (any case), which
may be followed by ``B`` or ``iB`` (``4k``, ``4K``, ``4KiB``, ``64M``, ``1G``).
All suffixes are powers of 1024, as in fio.
"""

from __future__ import annotations

import re

PAGE_SIZE = 4096
"""Base page size [bytes] on x86-64."""

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_size(value: int | float | str, field: str = "size") -> int:
    """Return a size in bytes from an int or a fio size string.

    Parameters
    ----------
    value : int, float or str
        ``4096``, ``"4K"``, ``"64M"``, ``"1GiB"``.
    field : str
        Name used in the error message.

    Raises
    ------
    ValueError
        One line naming ``field`` and the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(f"{field} must be a size like 4K, 64M or 1G, got {value!r}")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")) or value < 0:
            raise ValueError(f"{field} must be a size like 4K, 64M or 1G, got {value!r}")
        if float(value) != int(value):
            raise ValueError(f"{field} must be a whole number of bytes, got {value!r}")
        return int(value)
    match = _SIZE_RE.match(str(value))
    if match is None:
        raise ValueError(f"{field} must be a size like 4K, 64M or 1G, got {value!r}")
    number, suffix, _ = match.groups()
    size = float(number) * 1024 ** _POWERS[suffix.lower()]
    if size != int(size):
        raise ValueError(f"{field} must be a whole number of bytes, got {value!r}")
    return int(size)


def format_size(size: int) -> str:
    """Shortest fio-style string for ``size`` bytes (``4096`` -> ``"4K"``)."""
    for suffix, power in (("P", 5), ("T", 4), ("G", 3), ("M", 2), ("K", 1)):
        unit = 1024**power
        if size >= unit and size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def cycles_to_ns(cycles, ghz: float):
    """Convert CPU cycles to nanoseconds at a clock of ``ghz`` [GHz]."""
    return cycles / ghz
