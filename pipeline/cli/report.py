"""``asi-report``: the long-term projection from the results store, as a report folder.

    asi-report                                  # after `asi-sweep experiment=default`
    asi-report report.mode=nightly              # after `asi-sweep experiment=nightly`
    asi-report dask=ray                         # aggregate with Dask-on-Ray
    asi-report report.whole_store=true          # every stored point, whatever grid made it

The page opens with the answer: per workload and CPU profile, the slowdown left
after the whole roadmap, P(<1 %), the comparison with today's default (and, for
guests, with IBPB on every VM exit) and what remains; then what moved since the
previous night, the figures, and the stage-by-stage tables.

The report covers the grid of an experiment (``report.experiment``; null:
``default``, or ``nightly`` in nightly mode), re-expanded with
:mod:`pipeline.sweep.grid` exactly as ``asi-sweep`` expands it (model overrides
on this command line, e.g. ``samples=256``, apply to it as they would to
the sweep). Points the store lacks (a sweep that failed halfway) are counted
as missing: the report says how much of the grid it covers.

Writes ``report.dir`` (default: a new ``outputs/reports/<UTC time>-<random suffix>``,
created exclusively): ``index.html``
(opens offline: inline CSS, relative image links), ``summary.md``, PNG
figures under ``figures/`` and the tables as CSV under ``data/``. In nightly
mode the focus projection is appended to the history (``report.history``) and
compared with the previous night; a recording of the history that fails its
check is moved to that night's ``_quarantine/`` with a warning, and the report
is drawn without it. Exit codes: 0 report written, 1 report written but
tonight could not be recorded in the history (disk full...), 2 bad input.
"""

from asi_slowdown.pipeline.configuration.command import Invocation, command
from asi_slowdown.pipeline.configuration.errors import EXIT_FAILED
from asi_slowdown.pipeline.report.build import announce, build
from asi_slowdown.pipeline.report.settings import report_options

__doc__ = f"{__doc__}\n{report_options()}"  # --help lists every report.* option

EXIT_NOT_RECORDED = EXIT_FAILED
"""The report is written, but nightly mode could not record tonight in the history."""


@command("asi-report")
def main(inv: Invocation) -> int:
    index, report = build(inv.overrides, composer=inv.composer)
    announce(index, report)
    return EXIT_NOT_RECORDED if report.history_error else 0
