"""The report's folder and options: claimed before anything is written, listed for ``--help``.

The settings themselves (``report`` and ``dask``) are checked into
:class:`~pipeline.configuration.checks.ReportSettings` by
:func:`pipeline.configuration.checks.check_report`, before any grid is expanded or any
part file read, so bad input is one line.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from asi_slowdown.pipeline.configuration.checks import ReportSettings
from asi_slowdown.pipeline.configuration.errors import ConfigError

Out = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def claim_folder(s: ReportSettings) -> None:
    """Create the report's folder; a folder the report named itself must not exist yet.

    ``report.dir`` given: an existing folder is written into (the caller chose it).
    """
    try:
        s.folder.mkdir(parents=True, exist_ok=not s.fresh)
    except FileExistsError:
        raise ConfigError(
            f"report.dir: {str(s.folder)!r} already exists (another report took it); run again"
        ) from None


def report_options() -> str:
    """``asi-report --help``'s list of every ``report.*`` option: its default and what it does.

    Read from the packaged ``conf/report/default.yaml`` (key, value, comment), so the
    list is the config's own and cannot drift from it.
    """
    from asi_slowdown.pipeline.configuration.compose import CONF_DIR

    entries: list[list[str]] = []
    parents: list[tuple[int, str]] = []
    for line in (CONF_DIR / "report" / "default.yaml").read_text().splitlines():
        found = re.match(r"^(\s*)([A-Za-z_]+):\s*([^#]*?)\s*(?:#\s?(.*))?$", line)
        if found is None:
            comment = re.match(r"^\s+#\s?(.*)$", line)
            if comment and entries:  # a comment continued on the next line
                entries[-1][2] += " " + comment.group(1).strip()
            continue
        indent, key, value, comment = found.groups()
        parents = [(i, k) for i, k in parents if i < len(indent)]
        name = ".".join(["report", *(k for _, k in parents), key])
        if not value:  # a section (focus:): its keys follow, one level deeper
            parents.append((len(indent), key))
            entries.append([name + ".*", "", (comment or "").strip()])
            continue
        entries.append([f"{name}={value}", "", (comment or "").strip()])
    width = max(len(e[0]) for e in entries)
    lines = ["Options (report.*; defaults from conf/report/default.yaml):"]
    lines += [f"  {e[0]:<{width}}  {e[2]}".rstrip() for e in entries]
    return "\n".join(lines)
