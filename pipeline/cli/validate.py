"""``asi-validate``: the model against every public measurement, in and out of sample.

    asi-validate                          # every case of conf/validation, shipped profiles
    asi-validate validate.format=json
    asi-validate cpu=my_calibrated        # that profile for the cases of its base machine

Each case is a published number, the run it was measured on as it was run
(``conf/benchmark``: phases, file system, job count, machine) and its role. Printed per
case: the prediction p50 [p05-p95] against the published value, the error, inside the
90 % band or not; then leave-one-out (the profile calibrated on every other calibration
case of that CPU, the case predicted), the coverage of the band, the mean absolute
leave-one-out error over the ASI cases, and the named splits. Options:

    validate.format=table       table (default) or json: {"cases": [...], "coverage",
                                "mean_abs_loo_error", "profile", "model_version", ...}
    validate.cases=[a,b]        only these cases
    validate.leave_one_out=true false: in-sample predictions only (seconds, not a minute)
    validate.splits=true        the named splits (calibrate on some cases, predict others)
    validate.figure=true        predicted vs published (validation.png) under validate.dir
    validate.dir=DIR            default outputs/validation/<UTC time>

Exit codes: 0 printed, 2 bad input (one ``error:`` line).
"""

from asi_slowdown.pipeline.configuration.command import Invocation, command
from asi_slowdown.pipeline.validate.run import run


@command("asi-validate")
def main(inv: Invocation) -> int:
    print(run(inv.overrides, inv.composer))
    return 0
