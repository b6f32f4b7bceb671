"""``asi-calibrate``: fit a CPU profile's uncertain costs to measurements.

    asi-calibrate measurements=DIR [cpu=PROFILE] [workload=NAME] [calibrate.name=NAME]
    asi-calibrate measurements=rfc_v2                 # conf/validation/rfc_v2.yaml
    asi-calibrate measurements=ephmap_posting calibrate.name=sr_ephmap

``measurements`` is a directory with a manifest and fio JSON files and/or a
``published.csv`` of reported numbers, or such a CSV itself
(``pipeline/calibrate/measurements.py`` describes the formats). Kinds of measurement,
fitted together in any mix (one residual each):

* fio runs (manifest): native (``asi: false``) and ASI time per op [ns],
  compared in log space (``calibrate.time_sigma`` relative);
* published throughput losses (column ``throughput_loss``), compared
  absolutely (``sigma`` or ``calibrate.loss_sigma``);
* published exit counts (columns ``quantity,value``), as the prototype's
  ``asi_exit`` tracepoints count them: ``exit_rate_<reason>`` [1/s per CPU]
  for reasons page_fault, context_switch, tlb_flush (e.g. ``exit_rate_page_fault``
  from ``asi:asi_exit_pf``), ``exits_reason_<reason>`` [1/op],
  ``exits_<source>`` [1/op] and ``exit_rate_source_<source>`` [1/s per CPU]
  for the model's exit sources (page_cache, ..., tick, interrupt,
  kthread_switch), ``exits_per_op``; compared in log space (``sigma``
  relative, or ``calibrate.exit_sigma``);
* ``perf kvm stat report --event=vmexit`` outputs of a guest workload (a YAML
  manifest's ``kvm_stat: [{file, seconds, vcpus}]``): not fitted themselves,
  their VM exits per second per vCPU by reason set the workload's
  ``vmexits_<reason>_per_s`` in every datum of it (``pipeline/calibrate/kvmstat.py``);
* IBPB on/off pairs: runs or rows at the same point with ``ibpb: true`` and
  ``ibpb: false`` (booted with ``clearcpuid=ibpb``) are fitted jointly: their
  difference pins the IBPB cost, their level the rest of the exit pair.

A row with ``fit: false`` is predicted and reported, not fitted. When the
data cannot separate the costs they move (one throughput loss for several
costs), the console and the report say which costs moved and that only
their sum is pinned. Shipped inputs, groups of the public record in
``conf/validation`` (one format with ``asi-validate``; their one-point cases are
fitted, ``validation`` cases reported, runs of several phases left to
``asi-validate``): ``rfc_v2`` (the default calibration), ``ephmap_posting`` (the
ephmap posting's fio run; its builds are scored by ``asi-validate``),
``asi_exit_trace`` (exit counts from a public
``asi_exit_pf`` trace). Other overrides are the project's Hydra overrides:
``cpu=`` picks the base profile (the prior), ``workload=`` the default
workload for untagged runs, ``seed=``/``samples=`` the Monte Carlo draws the
fit reproduces. Options of the calibration itself:

    calibrate.name=NAME        calibrated profile name (default: <base>_calibrated)
    calibrate.conf_dir=DIR     config root to write into (default: $ASI_CONFIG_DIR, else outputs/conf)
    calibrate.report_dir=DIR   report root (default: outputs/calibration)
    calibrate.time_sigma=0.02  relative standard error of a fio time per op
    calibrate.loss_sigma=0.02  standard error of a published loss (unless its row has sigma)
    calibrate.exit_sigma=0.1   relative standard error of a published exit count (unless its row has sigma)
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
  residuals, IBPB on/off differences, which costs the data constrained and
  which kept their priors, and what combinations of costs the data pin.

The method is in :mod:`pipeline.calibrate.fit`; the written profile is composed back
through the normal config path and evaluated, and the report shows those
predictions, i.e. exactly what ``asi-answer cpu=<name>`` computes. The default
``conf_dir`` is on every command's search path, so ``cpu=<name>`` works at once.

A cost the fit stopped at an end of its documented range is reported with the
direction the data push it (``wants less than its low end``, ``wants more than
its high end``). Each datum whose residual is beyond three standard errors
(|z| > 3: by chance fewer than 3 in 1000) gets a ``warning:`` line on stderr
naming it, its file and row: the profile does not reproduce it, which more
likely means a wrong tag, unit or sigma, or a measurement the model has no
mechanism for, than noise.

Exit codes: 0 written, every fitted datum within |z| <= 3; 1 written, but some
fitted datum beyond it (a ``fit: false`` check that far off is warned about and
exits 0: it tests the model, it is not an input of the fit); 2 bad input (one
``error:`` line naming the file, the row and the field; nothing written).
"""

import sys

from asi_slowdown.pipeline.calibrate.run import EXIT_POOR_FIT, run
from asi_slowdown.pipeline.configuration.command import Invocation, command


@command("asi-calibrate")
def main(inv: Invocation) -> int:
    outcome = run(inv.overrides, inv.composer)
    print(outcome.report)
    for line in outcome.result.identifiability.lines() if outcome.result.identifiability else ():
        print(f"identifiability: {line}")
    for path in (outcome.profile_path, *outcome.workload_paths.values(), outcome.report_path):
        print(f"wrote {path}")
    for line in outcome.warnings:
        print(f"warning: {line}", file=sys.stderr)
    return EXIT_POOR_FIT if outcome.poor_fit else 0
