"""Point identity (:mod:`pipeline.store.identity`): pinned encodings, one id for sweep and answer."""

from __future__ import annotations

import numpy as np

from asi_slowdown.pipeline.configuration.compose import composer
from asi_slowdown.pipeline.projection.answer import stage_points
from asi_slowdown.pipeline.projection.projection import stage_point_ids
from asi_slowdown.pipeline.store.identity import point_id, point_ids, point_record
from asi_slowdown.pipeline.sweep.grid import build_grid


def test_point_ids_are_pinned_blake2b_of_prefix_and_float64_rows():
    """Pinned: changing the encoding silently breaks resume of every store (bump MODEL_VERSION instead).

    Expected value: ``hashlib.blake2b(b"prefix" + np.arange(4, dtype="<f8").tobytes(),
    digest_size=16).hexdigest()``, computed once by hand.
    """
    rows = np.array([[0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 4.0]])
    ids = point_ids(b"prefix", rows)
    assert ids[0] == "a2bcfeefe720936c5a93542b01c46388"
    assert ids[1] != ids[0]
    assert point_ids(b"prefix2", rows[:1]) != ids[:1]


def test_asi_answer_names_each_stage_as_the_sweep_stores_it():
    """The ids asi-answer looks up are the ids a sweep of the same configuration writes."""
    loader = composer()
    cfg = loader.compose(["cpus=3"])
    stages = list(cfg.roadmap.stages)
    looked_up = stage_point_ids(cfg, stage_points(cfg, ["cpus=3"], loader), stages)
    grid = build_grid([f"mitigations={','.join(stages)}", "cpus=3"], loader)
    points = grid.points.to_pydict()
    swept = {
        grid.profiles[i].mitigations: pid
        for i, pid in zip(points["profile"], points["point_id"], strict=True)
    }
    assert looked_up == [swept[stage] for stage in stages]
    profile = grid.profiles[0]
    assert point_id(profile.id_prefix(), profile.base_point) == swept[profile.mitigations]
    assert point_record(profile.base_point).dtype == np.float64
