"""Units and size strings, parsed in one place.

Sizes accept what fio accepts with its default ``kb_base=1024``: an integer
with an optional suffix ``K``, ``M``, ``G``, ``T`` or ``P`` (any case), which
may be followed by ``B`` or ``iB`` (``4k``, ``4K``, ``4KB``, ``64M``, ``1G``).
As in fio, and backwards from the IEC's names, ``K``/``KB`` are powers of
1024 and the IEC spellings ``KiB``, ``MiB``, ... powers of 1000 (fio's HOWTO,
``kb_base``: "unless the suffix is explicitly set to a base 10 value using
'kib', 'mib', 'gib', etc."): ``4K`` is 4096 bytes, ``4KiB`` is 4000.
"""

from __future__ import annotations

import math
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
    number, suffix, unit = match.groups()
    base = 1000 if unit and unit.lower() == "ib" else 1024  # fio's kb_base=1024 quirk
    size = float(number) * base ** _POWERS[suffix.lower()]
    if not math.isfinite(size):  # hundreds of digits: more bytes than a float holds
        raise ValueError(f"{field} must be a size like 4K, 64M or 1G, got {value!r}")
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
