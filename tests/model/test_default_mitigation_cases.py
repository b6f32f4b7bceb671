"""The single-mechanism microbenchmarks of the default mitigations, inside the shipped priors.

Each case of ``conf/validation/default_mitigations.yaml`` is composed here without
``asi-validate`` (plain YAML, :mod:`tests.model.shipped`): the measured side is the case's
workload on its CPU profile with its ``overrides`` (``kernel=``, ``cpu.<flag>=``), the
reference side ``mitigations=off`` or its ``reference_overrides``, both priced with the same
cost draws. The published value must lie inside the 5-95 % band of the shipped priors: if
it does not, the mechanism or the workload-as-run is wrong (docs/mechanism.md), never the prior.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from asi_slowdown.model.evaluate import sample_default_times
from tests.model.shipped import CONF, DEFAULT_KERNEL, point, profile_costs

CASES = yaml.safe_load((CONF / "validation" / "default_mitigations.yaml").read_text())["cases"]
SAMPLES = 4096


def parse_overrides(overrides: list[str]) -> tuple[str, dict]:
    """``kernel=NAME`` and ``cpu.<flag>=true|false`` overrides: (kernel, point overrides)."""
    kernel, flags = DEFAULT_KERNEL, {}
    for override in overrides:
        key, value = override.split("=", 1)
        if key == "kernel":
            kernel = value
        elif key.startswith("cpu."):
            flags[key.removeprefix("cpu.")] = yaml.safe_load(value)
        else:
            raise ValueError(f"unsupported override {override!r} in a default-mitigation case")
    return kernel, flags


def case_point(case: dict, overrides: list[str]) -> dict:
    kernel, flags = parse_overrides(overrides)
    return (
        point(case["workload"], case["stage"], case["cpu"], cpus=case.get("cpus", 1), kernel=kernel)
        | flags
    )


def columns(rows: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def quantity_samples(case: dict, samples: int = SAMPLES) -> np.ndarray:
    """The case's quantity for every cost sample of its CPU profile's shipped priors."""
    measured = case_point(case, case.get("overrides", []))
    rows = [measured]
    if "reference_overrides" in case:
        rows.append(case_point(case, case["reference_overrides"]))
    t_native, t_default = sample_default_times(columns(rows), profile_costs(case["cpu"], samples))
    t_reference = t_default[1] if len(rows) == 2 else t_native[0]
    if case["quantity"] == "default_slowdown":
        return t_default[0] / t_reference - 1.0
    if case["quantity"] == "default_throughput_loss":
        return 1.0 - t_reference / t_default[0]
    raise ValueError(f"{case['name']}: quantity {case['quantity']!r} is not a default_* quantity")


def test_the_cases_are_well_formed():
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
    for case in CASES:
        assert case["role"] in ("calibration", "validation")
        assert case["quantity"] in ("default_slowdown", "default_throughput_loss")
        assert case["source"] and case["spread"] > 0


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_published_value_is_inside_the_priors_band(case):
    low, high = np.quantile(quantity_samples(case), [0.05, 0.95])
    assert low <= case["published"] <= high, (
        f"{case['name']}: published {case['published']} outside the 5-95 % band [{low:.4g}, {high:.4g}]"
    )


def test_the_defaults_change_with_the_kernel_version():
    # sys_time on Skylake: 5.18 runs the retpolines, 5.19 legacy IBRS in their place, 6.9 adds
    # the BHI clearing loop on syscall entry; the measured loop sees each step
    costs = profile_costs("skylake_l1tf", 256)
    rows = [
        point("sys_time_loop", "rfc_v2", "skylake_l1tf", kernel=k)
        for k in ("linux_5_18", "linux_5_19", "linux_6_9")
    ]
    t_native, t_default = sample_default_times(columns(rows), costs)
    cost = (t_default - t_native).mean(axis=1)
    assert cost[0] < cost[1] < cost[2]
