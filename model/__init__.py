"""The ASI slowdown model: pure, vectorized numpy, no I/O.

* :mod:`model.params`    the point parameters (glossary, units, range checks)
* :mod:`model.costs`     uncertain per-operation costs and their draws
* :mod:`model.mechanism` exits and ephmap work per op, by source
* :mod:`model.evaluate`  pricing over (points x samples) and summaries
* :mod:`model.reference` a slow scalar reference for one point and one sample
"""

MODEL_VERSION = "0.7.0"
"""Bumped whenever a change alters any result; part of every point id."""
