"""How well the model predicts the public record: in sample, leave one out, named splits.

* **In sample** (:func:`score`): each case predicted with the profile as it is (its priors, or
  a committed posterior), its p05/p50/p95 against the published value; the 90 % band's
  coverage over all cases.
* **Leave one out**: for each case, the profile is calibrated on every *other* calibration
  case of the same CPU profile (the joint fit of :func:`pipeline.calibrate.fit.fit`, each
  case predicted by its run as it was run: :class:`CaseForward`), then the case is
  predicted. A validation-only case is out of sample for the fit on all calibration cases.
  The mean absolute leave-one-out error is over the ASI cases (``slowdown`` and
  ``throughput_loss``, in percentage points); other quantities report theirs per case.
* **Splits**: calibrate on a named list, predict another (``conf/validation/*.yaml``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from asi_slowdown.model.costs import COST_NAMES
from asi_slowdown.pipeline.calibrate.cases import Case, CaseSet, Split
from asi_slowdown.pipeline.calibrate.fit import POOR_FIT_Z, FitResult, Observation, Problem, fit
from asi_slowdown.pipeline.validate.predict import (
    CasePoints,
    Prediction,
    Profile,
    predict,
    statistic,
)

ASI_QUANTITIES = ("slowdown", "throughput_loss")
"""Quantities of ASI against ``mitigations=off``: the ones the 2 pp acceptance is about."""


class CaseForward:
    """Predictions of cases for :func:`pipeline.calibrate.fit.fit`: each case's
    :func:`~pipeline.validate.predict.statistic` from the cost draws the fit passes. No
    workload's ``base_time`` is fitted (published runs give no native time per op)."""

    groups: tuple[str, ...] = ()

    def __init__(self, points: Sequence[CasePoints]):
        self.points = list(points)

    def __call__(self, costs, base_times):
        predictions = np.array([statistic(cp, costs) for cp in self.points])
        return predictions, np.zeros(len(self.points))


def observation(case: Case) -> Observation:
    """A case as a datum of the joint fit: exit counts in log space, the rest absolutely."""
    return Observation(case.name, case.quantity, case.published, case.spread, point={})


def calibrate(points: Sequence[CasePoints], prior: Profile, *, samples: int, seed: int):
    """The posterior :class:`Profile` of ``prior`` on ``points`` (cases of that profile), and
    the fit. With no case, the prior itself."""
    if not points:
        return prior, None
    problem = Problem([observation(cp.case) for cp in points], prior.specs, prior.ghz)
    result = fit(problem, samples=samples, seed=seed, forward=CaseForward(points))
    return posterior(prior, result), result


def posterior(prior: Profile, result: FitResult) -> Profile:
    specs = {n: result.costs[n].spec if n in result.costs else prior.specs[n] for n in COST_NAMES}
    return Profile(prior.name, specs, prior.ghz, result.correlations)


@dataclass
class CaseScore:
    case: Case
    prediction: Prediction
    loo: Prediction | None = None
    fit_notes: list[str] = field(default_factory=list)

    @property
    def error(self) -> float:
        """p50 - published, in the quantity's unit (relative for exit counts)."""
        return _error(self.case, self.prediction.p50)

    @property
    def loo_error(self) -> float | None:
        return None if self.loo is None else _error(self.case, self.loo.p50)

    @property
    def inside(self) -> bool:
        return self.prediction.inside(self.case.published)


def _error(case: Case, predicted: float) -> float:
    if case.relative:
        return float(predicted / case.published - 1)
    return float(predicted - case.published)


@dataclass
class SplitScore:
    split: Split
    rows: list[tuple[Case, Prediction]]


@dataclass
class Score:
    cases: list[CaseScore]
    splits: list[SplitScore]
    profiles: dict[str, str]  # CPU profile -> what was used ("priors" or a posterior's note)

    @property
    def coverage(self) -> float:
        return float(np.mean([c.inside for c in self.cases])) if self.cases else float("nan")

    @property
    def mean_abs_loo_error(self) -> float | None:
        errors = [
            abs(c.loo_error)
            for c in self.cases
            if c.loo is not None and c.case.quantity in ASI_QUANTITIES
        ]
        return float(np.mean(errors)) if errors else None


def notes(result: FitResult | None, labels: Sequence[str] = ()) -> list[str]:
    """What says a fit could not reproduce its data inside the documented ranges: costs it
    pushed to an end of their range, and data it misses by more than three standard errors
    (:data:`pipeline.calibrate.fit.POOR_FIT_Z`). A misfit is a finding."""
    if result is None:
        return []
    out = [
        f"{c.name} at its {c.bound} bound"
        for c in result.costs.values()
        if c.at_bound and c.bound is not None
    ]
    out += [
        f"{label} missed by {z:+.1f} standard errors"
        for label, z in zip(labels, result.residuals, strict=False)
        if abs(z) > POOR_FIT_Z
    ]
    return out


def score(
    case_set: CaseSet,
    points: Mapping[str, CasePoints],
    profiles: Mapping[str, Profile],
    *,
    samples: int,
    seed: int,
    leave_one_out: bool = True,
    splits: bool = True,
    progress=None,
) -> Score:
    """Score every case of ``case_set`` (its :class:`CasePoints` in ``points``) with the
    ``profiles`` given per CPU profile name; leave-one-out and splits refit those profiles."""
    tick = progress or (lambda _: None)
    costs = {name: p.costs(samples, seed) for name, p in profiles.items()}
    scores = []
    for case in case_set.cases:
        scores.append(CaseScore(case, predict(points[case.name], costs[case.cpu], seed)))
        tick(f"predicted {case.name}")
    if leave_one_out:
        for cpu, prior in profiles.items():
            members = [s for s in scores if s.case.cpu == cpu]
            calibration = [s for s in members if s.case.role == "calibration"]
            shared = None
            for s in members:
                training = [points[c.case.name] for c in calibration if c is not s]
                if s.case.role == "validation" and shared is not None:
                    fitted, result = shared
                else:
                    fitted, result = calibrate(training, prior, samples=samples, seed=seed)
                    if s.case.role == "validation":
                        shared = (fitted, result)
                s.loo = predict(points[s.case.name], fitted.costs(samples, seed), seed)
                trained = [c.case.name for c in calibration if c is not s]
                s.fit_notes = notes(result, trained)
                tick(f"left out {s.case.name}")
    split_scores = []
    if splits:
        by_name = case_set.by_name()
        for split in case_set.splits:
            rows = []
            for cpu, prior in profiles.items():
                training = [points[n] for n in split.calibrate if by_name[n].cpu == cpu]
                targets = [by_name[n] for n in split.predict if by_name[n].cpu == cpu]
                if not targets:
                    continue
                fitted, _ = calibrate(training, prior, samples=samples, seed=seed)
                fitted_costs = fitted.costs(samples, seed)
                rows += [(c, predict(points[c.name], fitted_costs, seed)) for c in targets]
            split_scores.append(SplitScore(split, rows))
            tick(f"split {split.name}")
    return Score(scores, split_scores, {})
