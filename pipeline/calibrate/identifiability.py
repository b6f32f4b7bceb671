"""What the fitted data pin: the independent combinations of costs they determine.

A fit moves a cost when the data are sensitive to it, but several costs often
enter the data only as a sum (``page_walk + ibpb`` per exit pair). The
singular value decomposition of the whitened data Jacobian at the fit's optimum,
in prior standard deviations of log cost, says how many independent directions
the data pin, which costs each is made of, and which observations no cost moves
(they check the model and constrain nothing). :func:`identifiability` computes
it; :class:`Identifiability` words it for the console and the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PINNED_INFORMATION = 1.0 / 0.9**2 - 1.0
"""A direction in cost space counts as pinned by the data when their information
along it (squared singular value of the data Jacobian in prior sds) is at least
this: enough to narrow it to :data:`~asi_slowdown.pipeline.calibrate.fit.NARROWED_RATIO` of the prior sd."""
BLIND_SENSITIVITY = 0.05
"""An observation whose whitened residual moves by less than this per prior sd of
every cost constrains no cost (it only checks the model)."""


@dataclass(frozen=True)
class Identifiability:
    """How many independent combinations of the constrained costs the fitted data pin.

    Attributes
    ----------
    measurements : int
        Fitted observations.
    costs : tuple of str
        The constrained costs (moved or narrowed), most sensitive first.
    pinned : int
        Directions in their (log, prior-sd) space the data pin: singular values
        of the data Jacobian with squared value >= :data:`PINNED_INFORMATION`.
    combinations : tuple of tuple of (str, float)
        Per pinned direction, the unit weights of the costs in it (largest first,
        in prior sds of log cost; weights under 0.05 dropped).
    blind : tuple of str
        Labels of fitted observations that no cost moves (they only check the model).
    """

    measurements: int
    costs: tuple[str, ...]
    pinned: int
    combinations: tuple[tuple[tuple[str, float], ...], ...]
    blind: tuple[str, ...] = ()

    @property
    def degenerate(self) -> bool:
        """Fewer pinned combinations than constrained costs: some are pinned only jointly."""
        return len(self.costs) > self.pinned

    def lines(self) -> list[str]:
        """Plain sentences for the console and the report."""
        out = []
        n, k = self.measurements, len(self.costs)
        noun = "measurement" if n == 1 else "measurements"
        names = ", ".join(self.costs)
        if k == 0:
            out.append(f"{n} {noun}: no cost constrained (every cost keeps its prior).")
        elif self.degenerate and self.pinned <= 1:
            verb = "it pins" if n == 1 else "they pin"
            out.append(
                f"{n} {noun} for {k} costs: {verb} only their sum ({names}), "
                f"as {_combination(self.combinations[0]) if self.combinations else 'one combination'}; "
                "each cost alone is not identified: the fit moved them together along that "
                "sum, and the profile's correlations keep it."
            )
        elif self.degenerate:
            out.append(
                f"{n} {noun} for {k} costs ({names}): they pin only {self.pinned} independent "
                f"combinations of them; the other {k - self.pinned} directions are left to the "
                "priors. Pinned: " + "; ".join(_combination(c) for c in self.combinations) + "."
            )
        elif k == 1:
            out.append(f"{n} {noun} for 1 cost ({names}): it is pinned on its own.")
        else:
            out.append(
                f"{n} {noun} for {k} costs ({names}): each is pinned separately "
                f"({self.pinned} independent combinations)."
            )
        if self.blind:
            out.append(
                f"No cost moves {', '.join(self.blind)}: the model predicts it from the "
                "workload and stage alone, so it only checks the model."
            )
        return out


def _combination(weights: Sequence[tuple[str, float]]) -> str:
    terms = [f"{abs(w):.2f} {n}" for n, w in weights]
    signs = ["-" if w < 0 else "+" for _, w in weights]
    if weights and weights[0][1] < 0:
        signs = ["-" if s == "+" else "+" for s in signs]
    text = terms[0] if terms else "nothing"
    for sign, term in zip(signs[1:], terms[1:], strict=True):
        text += f" {sign} {term}"
    return text + " (log costs, in prior sds)"


def identifiability(
    jacobian: np.ndarray, names: Sequence[str], scales: Sequence[float], constrained, labels
) -> Identifiability:
    """What the data pin, from the whitened data Jacobian ``d r_data / d theta`` at the MAP.

    ``jacobian`` has one row per fitted observation and one column per name of
    ``names`` (log costs); ``scales`` are the prior sds, so ``J * scales`` is the
    data's sensitivity per prior sd.
    """
    sensitivity = np.asarray(jacobian, dtype=np.float64) * np.asarray(scales)[None, :]
    blind = tuple(
        label
        for label, row in zip(labels, sensitivity, strict=True)
        if not np.any(np.abs(row) >= BLIND_SENSITIVITY)
    )
    index = [names.index(n) for n in constrained]
    weight = np.linalg.norm(sensitivity[:, index], axis=0) if index else np.zeros(0)
    order = [index[i] for i in np.argsort(-weight, kind="stable")]
    costs = tuple(names[i] for i in order)
    if not order:
        return Identifiability(len(labels), (), 0, (), blind)
    _, singular, vt = np.linalg.svd(sensitivity[:, order], full_matrices=False)
    pinned = int(np.sum(singular**2 >= PINNED_INFORMATION))
    combinations = []
    for v in vt[:pinned]:
        ranked = sorted(zip(costs, v, strict=True), key=lambda cw: -abs(cw[1]))
        combinations.append(tuple((c, float(w)) for c, w in ranked if abs(w) >= 0.05))
    return Identifiability(len(labels), costs, pinned, tuple(combinations), blind)
