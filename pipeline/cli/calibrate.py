"""``asi-calibrate``: fit a CPU profile's uncertain costs to fio measurements.

    asi-calibrate measurements=DIR [cpu=PROFILE] [workload=NAME] [calibrate.name=NAME]
    asi-calibrate measurements=rfc_v2_anchor          # conf/measurements/rfc_v2_anchor.csv

``measurements`` is a directory with a manifest and fio JSON files and/or a
``published.csv`` of reported throughput losses (``pipeline/calibrate/measurements.py``
describes the formats). Other overrides are the project's Hydra overrides:
``cpu=`` picks the base profile (the prior), ``workload=`` the default
workload for untagged runs, ``seed=``/``samples=`` the Monte Carlo draws the
fit reproduces. Options of the calibration itself:

    calibrate.name=NAME        calibrated profile name (default: <base>_calibrated)
    calibrate.conf_dir=DIR     config root to write into (default: $ASI_CONFIG_DIR, else outputs/conf)
    calibrate.report_dir=DIR   report root (default: outputs/calibration)
    calibrate.time_sigma=0.02  relative standard error of a fio time per op
    calibrate.loss_sigma=0.02  standard error of a published loss (unless its row has sigma)
    calibrate.sys_sigma=0.1    softness of the system-CPU-time bound on kernel time

Writes:

* ``<conf_dir>/cpu/<name>.yaml``: the calibrated profile, with
  ``correlations`` (the posterior's, between the costs the data constrained
  and those linked to them) and ``provenance`` (inputs and their sha256,
  date, base profile, residuals, which costs moved). Use it as ``cpu=<name>``.
* ``<conf_dir>/workload/<workload>_<name>.yaml`` for every workload measured
  natively: the base workload with the event rates measured on this machine
  (``base_time`` fitted; ``ctxsw_per_op`` and ``zero_fill_per_op`` from fio's
  ``ctx`` and ``minf``; ``io_size``/``file_size``/``sequential`` from the fio
  job). Native calibration lands here, not in the CPU profile: ``base_time``
  is fio's own per-I/O work on this machine, a property of the workload run
  there, while the CPU profile keeps per-operation kernel costs.
* ``<report_dir>/<name>/report.md``: measured vs predicted per input,
  residuals, which costs the data constrained and which kept their priors.

The method is in :mod:`pipeline.calibrate.fit`; the written profile is composed back
through the normal config path and evaluated, and the report shows those
predictions, i.e. exactly what ``asi-answer cpu=<name>`` computes. The default
``conf_dir`` is on every command's search path, so ``cpu=<name>`` works at once.
"""

from pipeline.calibrate.run import run
from pipeline.configuration.command import Invocation, command


@command("asi-calibrate")
def main(inv: Invocation) -> int:
    outcome = run(inv.overrides, inv.composer)
    print(outcome.report)
    for path in (outcome.profile_path, *outcome.workload_paths.values(), outcome.report_path):
        print(f"wrote {path}")
    return 0
