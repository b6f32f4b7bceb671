"""User-facing errors: one line naming the bad field, exit code 2."""

from __future__ import annotations

import re
from collections.abc import Callable

EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a killed writer

_MISSING_OPTION = re.compile(r"Could not find '([\w/]+)/([^'/]+)'")


class ConfigError(ValueError):
    """A configuration or input the user can fix; its message is one line."""


def _chain(exc: BaseException | None) -> list[BaseException]:
    chain = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "msg", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def one_line(exc: BaseException, group_options: Callable[[str], list[str]] | None = None) -> str:
    """The most useful one-line message in a Hydra/OmegaConf exception chain.

    OmegaConf's errors carry the offending key in ``full_key``: the innermost
    one that has it names the field. An unknown config-group option is
    rewritten to list the options ``group_options(group)`` gives (the search path's).
    """
    chain = _chain(exc)
    for link in chain:
        found = _MISSING_OPTION.search(str(link))
        if found:
            group, option = found.groups()
            allowed = group_options(group) if group_options else []
            hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
            return f"{group.replace('/', '.')}: unknown option {option!r}{hint}"
    keyed = [link for link in chain if getattr(link, "full_key", None)]
    if keyed:
        link = keyed[-1]
        return f"{link.full_key}: {_first_line(link)}"
    return _first_line(chain[0])
