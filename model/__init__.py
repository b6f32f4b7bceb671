"""The ASI slowdown model: pure, no I/O (numba's own cache aside); numpy, and numba for the
compiled evaluation.

* :mod:`model.params`    the point parameters (glossary, units, range checks)
* :mod:`model.costs`     uncertain per-operation costs and their draws
* :mod:`model.mechanism` exits and ephmap work per op, by source
* :mod:`model.evaluate`  pricing over (points x samples) in numpy, and the metrics
* :mod:`model.kernel`    the compiled evaluation: each point's samples in one pass
* :mod:`model.select`    exact order statistics by selection
* :mod:`model.jitcache`  numba's cached machine code dropped when any source here changes
* :mod:`model.reference` a slow scalar reference for one point and one sample
"""

MODEL_VERSION = "0.7.0"
"""Bumped whenever a change alters any result; part of every point id."""
