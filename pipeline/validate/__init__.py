"""Validation: every public measurement as a case, the published runs as they were run, and
how well the model predicts them, in sample and out of sample.

* :mod:`pipeline.validate.cases`    the case set (``conf/validation/``) and the benchmarks as
  they were run (``conf/benchmark/``): reading and checking them
* :mod:`pipeline.validate.predict`  a case's prediction: its benchmark's phases composed, priced
  sample by sample, combined into the published quantity
* :mod:`pipeline.validate.score`    coverage, leave-one-out and named splits with the joint fit
* :mod:`pipeline.validate.run`      ``asi-validate``: the table, the JSON and the figure
"""
