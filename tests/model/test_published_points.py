"""The model against public measurements it was not calibrated on.

The shipped profiles are priors narrowed by nothing but their sources and the
RFC v2 anchor. These checks compare their predictive 5-95 % bands with numbers
published after RFC v2, which no cost was fitted to (``asi-calibrate
measurements=ephmap_posting`` would fit them; the shipped profiles never do):

* the ephmap posting (lore ``20250812173109.295750-1-jackmanb@google.com``,
  Sapphire Rapids, IBPB in ``asi_exit``): fio 4 KiB random reads on tmpfs,
  1,003,102 -> 871,928 IOPS (throughput loss 13.1 %); a native kernel build,
  34.84 -> 37.50 s (slowdown 7.6 %);
* the reply ``DC83J9RSZZ0E.3VKGEVIDMSA2R@google.com``: the same build with
  ``clearcpuid=ibpb``, 35.10 -> 36.85 s (5.0 %).

The build's CPU count is not published; the model's compile slowdown barely
depends on it (per-mm tables per possible CPU), so it is checked at 1 and 16.
A failure here means the mechanism or a prior moved away from what the
prototype was measured to do: look at the mechanism before any prior.
"""

from __future__ import annotations

import numpy as np
import pytest

from model.evaluate import evaluate, sample_times
from tests.model.shipped import point, profile_costs

SAMPLES = 1024


def band(metric: str, **point_args) -> tuple[float, float, float]:
    result = evaluate(point(**point_args), profile_costs(point_args["cpu"], SAMPLES))
    return tuple(float(result[f"{metric}_{q}"][0]) for q in ("p05", "p50", "p95"))


def test_fio_on_tmpfs_at_the_ephmap_prototype_is_inside_the_band():
    low, _, high = band(
        "throughput_loss",
        workload="fio_randread_tmpfs",
        stage="ephmap_prototype",
        cpu="sapphire_rapids",
    )
    assert low <= 1 - 871_928 / 1_003_102 <= high


@pytest.mark.parametrize("cpus", [1, 16])
@pytest.mark.parametrize(
    ("ibpb", "published"), [(True, 37.50 / 34.84 - 1), (False, 36.85 / 35.10 - 1)]
)
def test_a_kernel_build_at_the_ephmap_prototype_is_inside_the_band(cpus, ibpb, published):
    low, _, high = band(
        "slowdown",
        workload="kernel_compile",
        stage="ephmap_prototype",
        cpu="sapphire_rapids",
        cpus=cpus,
        ibpb=ibpb,
    )
    assert low <= published <= high


def test_what_ibpb_adds_to_the_build_matches_the_on_off_difference():
    """The paired (common random number) difference IBPB makes, against 7.6 % - 5.0 %."""
    base = point(workload="kernel_compile", stage="ephmap_prototype", cpu="sapphire_rapids")
    columns = {k: np.array([base[k], base[k]]) for k in base}
    columns["ibpb"] = np.array([True, False])
    costs = profile_costs("sapphire_rapids", SAMPLES)
    t_native, t_asi = sample_times(columns, costs)
    difference = (t_asi[0] - t_asi[1]) / t_native[0]
    published = (37.50 / 34.84 - 1) - (36.85 / 35.10 - 1)
    low, high = np.quantile(difference, [0.05, 0.95])
    assert low <= published <= high
