"""User-facing errors: one line naming the bad field, exit code 2."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path

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


def one_line(exc: BaseException, conf_dir: Path | None = None) -> str:
    """The most useful one-line message in a Hydra/OmegaConf exception chain.

    OmegaConf's errors carry the offending key in ``full_key``: the innermost
    one that has it names the field. An unknown config-group option is
    rewritten to list the options that exist under ``conf_dir``.
    """
    chain = _chain(exc)
    for link in chain:
        found = _MISSING_OPTION.search(str(link))
        if found:
            group, option = found.groups()
            allowed = sorted(p.stem for p in (conf_dir / group).glob("*.yaml")) if conf_dir else []
            hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
            return f"{group.replace('/', '.')}: unknown option {option!r}{hint}"
    keyed = [link for link in chain if getattr(link, "full_key", None)]
    if keyed:
        link = keyed[-1]
        return f"{link.full_key}: {_first_line(link)}"
    return _first_line(chain[0])


def exits_cleanly(main: Callable[[list[str]], int | None]) -> Callable[..., int]:
    """Wrap a command-line entry point ``main(argv)``.

    ``argv`` defaults to ``sys.argv[1:]``; ``-h``/``--help`` prints the entry
    point module's docstring; bad input (:class:`ConfigError`) prints
    ``error: ...`` on stderr and exits 2; otherwise the exit code is
    ``main``'s return value.
    """

    @wraps(main)
    def wrapper(argv: Sequence[str] | None = None):
        argv = list(sys.argv[1:] if argv is None else argv)
        try:
            if argv and argv[0] in ("-h", "--help"):
                print((sys.modules[main.__module__].__doc__ or "").strip())
                raise SystemExit(0)
            code = main(argv)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(EXIT_BAD_INPUT) from None
        except BrokenPipeError:
            # the reader went away (`asi-answer | head`): stop quietly, as cat does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(EXIT_BROKEN_PIPE) from None
        raise SystemExit(code or 0)

    return wrapper
