"""Validation: every public measurement as a case, the published runs as they were run, and
how well the model predicts them, in sample and out of sample.

The case set (``conf/validation/``) and the benchmarks as they were run (``conf/benchmark/``)
are read by :mod:`pipeline.calibrate.cases`: they are the public record, which ``asi-calibrate``
also takes as input.

* :mod:`pipeline.validate.predict`  a case's prediction: its benchmark's phases composed, priced
  sample by sample, combined into the published quantity
* :mod:`pipeline.validate.score`    coverage, leave-one-out and named splits with the joint fit
* :mod:`pipeline.validate.run`      ``asi-validate``: the table, the JSON and the figure
"""
