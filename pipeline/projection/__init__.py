"""Projections along the roadmap: how much slowdown remains, and the verdict on it.

* :mod:`.verdicts`: the 1 % target / 5 % threshold vocabulary (a leaf: imports nothing
  from :mod:`pipeline`);
* :mod:`.projection`: per-scenario projections and crossings, store lookups of stages;
* :mod:`.answer`: the answer for one configuration (what ``asi-answer`` prints);
* :mod:`.budget`: what each cost would need for the last stage to meet 1 %;
* :mod:`.text`: percentages and tables as ``asi-answer`` prints them;
* :mod:`.sensitivity`: which uncertain costs drive the final slowdown;
* :mod:`.history`: nightly projections and how they moved.
"""
