"""User-facing errors and every command's exit codes: one line naming the bad field, exit 2.

:func:`exit_codes` is the one mapping from how a command ended to its exit code, for
the entry points (:func:`pipeline.configuration.command.command`) and for the grid
sweeper inside any Hydra app (:mod:`pipeline.sweep.sweeper`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import fields, is_dataclass

EXIT_OK = 0
EXIT_FAILED = 1
"""Done, but part of it failed: a sweep's failed points (rerun to retry), a report whose
night could not be recorded, a calibration that does not reproduce a fitted datum; also
a store or folder that cannot be written (:func:`exit_codes`)."""
EXIT_BAD_INPUT = 2
"""Bad input of any kind (a flag, an override, a value, an input file): one ``error:`` line,
nothing run or written."""
EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT
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


_TYPE_RULES = (
    (re.compile(r"could not be converted to Integer"), "an integer"),
    (re.compile(r"could not be converted to Float"), "a number"),
    (re.compile(r"is not a valid bool|could not be converted to Boolean"), "true or false"),
    (re.compile(r"Cannot convert '\w+' to string"), "a string"),
)
"""OmegaConf's type errors, and what the schema allows instead (as the grid says it)."""

_ALREADY_THERE = re.compile(r"Could not append to config\. An item is already at '([^']+)'")
_ALREADY_CHOSEN = re.compile(
    r"Multiple values for ([\w/]+)\. To override a value use 'override [\w/]+: ([^']+)'"
)


def _keys_of(link: BaseException) -> list[str]:
    """The keys allowed where an OmegaConf error happened: the schema's fields there."""
    schema = getattr(link, "object_type", None)
    if is_dataclass(schema):
        return [f.name for f in fields(schema)]
    parent = getattr(link, "parent_node", None)
    keys = parent.keys() if hasattr(parent, "keys") else ()
    return [k for k in keys if isinstance(k, str) and k != "hydra"]


def _keyed(link: BaseException) -> str:
    """One line for an OmegaConf error at ``link.full_key``, in the project's words: an unknown
    key lists the allowed ones, a wrong type says what the field takes, no class names."""
    key = link.full_key
    text = _first_line(link)
    parent = key.rpartition(".")[0]
    prefix = f"{parent}." if parent else ""
    if "not in '" in text and text.startswith("Key "):  # ConfigKeyError/ConfigAttributeError
        allowed = ", ".join(f"{prefix}{k}" for k in _keys_of(link))
        return f"{key}: unknown key" + (f"; allowed: {allowed}" if allowed else "")
    if "does not support deletion" in text:
        return cannot_delete(key)
    if "is not a subclass of" in text:  # a value given for a whole section
        inner = ", ".join(f"{key}.{k}" for k in _keys_of_section(link))
        return f"{key}: a section, not a value" + (f"; set one of {inner}" if inner else "")
    for pattern, rule in _TYPE_RULES:
        if pattern.search(text):
            return f"{key} must be {rule}, got {getattr(link, 'value', None)!r}"
    return f"{key}: {text}"


def cannot_delete(key: str) -> str:
    """What ``~key`` gets for a key of the schema: every command needs every one of them."""
    return f"~{key}: {key} cannot be deleted, every command needs it; set it with {key}=VALUE"


def _keys_of_section(link: BaseException) -> list[str]:
    parent = getattr(link, "parent_node", None)
    try:
        section = parent._get_node(link.key)  # the node the value was assigned to
        return [k for k in section.keys() if isinstance(k, str)]
    except Exception:  # no node to describe: the message stands without the list
        return []


def one_line(exc: BaseException, group_options: Callable[[str], list[str]] | None = None) -> str:
    """The most useful one-line message in a Hydra/OmegaConf exception chain.

    OmegaConf's errors carry the offending key in ``full_key``: the innermost
    one that has it names the field, and its message is said in the project's
    words (:func:`_keyed`). An unknown config-group option is rewritten to list
    the options ``group_options(group)`` gives (the search path's); ``+key=...``
    for a key already there says to set it instead.
    """
    chain = _chain(exc)
    for link in chain:
        found = _MISSING_OPTION.search(str(link))
        if found:
            group, option = found.groups()
            allowed = group_options(group) if group_options else []
            hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
            return f"{group.replace('/', '.')}: unknown option {option!r}{hint}"
        there = _ALREADY_THERE.search(str(link))
        if there:
            key = there.group(1)
            return (
                f"+{key}: {key} is already in the config, and + only adds keys that are not; "
                f"set it with {key}=VALUE (or ++{key}=VALUE, which adds or sets)"
            )
        chosen = _ALREADY_CHOSEN.search(str(link))
        if chosen:
            group, option = chosen.group(1).replace("/", "."), chosen.group(2)
            return (
                f"+{group}={option}: {group} has an option already, and + only adds groups "
                f"that have none; choose it with {group}={option}"
            )
    keyed = [link for link in chain if getattr(link, "full_key", None)]
    if keyed:
        return _keyed(keyed[-1])
    return _first_line(chain[0])


def _interrupted_line(exc: BaseException) -> str:
    return str(exc) or "interrupted"


@contextlib.contextmanager
def exit_codes(interrupted: Callable[[BaseException], str] = _interrupted_line) -> Iterator[None]:
    """Map how the block ended to an exit code (``SystemExit``): the one mapping.

    :class:`ConfigError`: its ``error:`` line on stderr, :data:`EXIT_BAD_INPUT`;
    ``KeyboardInterrupt``: the line ``interrupted(exc)`` says (a sweep's: what stays in the
    store) last on stderr, :data:`EXIT_INTERRUPTED`; a closed pipe (``asi-answer | head``):
    quietly, as ``cat`` does, :data:`EXIT_BROKEN_PIPE`; any other ``OSError`` (a store or
    folder that cannot be written): its ``error:`` line, :data:`EXIT_FAILED`. What the block
    returns is its own business (a command's exit code).
    """
    try:
        yield
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None
    except KeyboardInterrupt as exc:
        print(interrupted(exc), file=sys.stderr, flush=True)
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        raise SystemExit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(EXIT_BROKEN_PIPE) from None
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_FAILED) from None
