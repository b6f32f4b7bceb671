"""Uncertain per-operation costs and their Monte Carlo draws.

A CPU cost profile (``conf/cpu/*.yaml``) gives, for every name in
:data:`COST_NAMES`, a distribution with its source. Sampling turns a profile
into arrays of ``n`` draws per cost, in [ns] (bandwidths in [bytes/ns], which
is GB/s; the rates of :data:`RATE_COSTS` in [1/s], the shares of :data:`SHARE_COSTS` in
[0-1]).

Draws are *common random numbers*: the uniform behind draw ``k`` of cost ``c``
depends only on ``(seed, c, k)``, not on the CPU profile. Every point sees the
same uniforms for sample ``k``, whatever its profile, so stage-to-stage,
point-to-point, CPU-to-CPU and prior-to-calibrated differences are all paired
(a profile changes a draw only through its own distribution of that cost), and
the draws never depend on how points are batched or how many samples are taken
(the first ``n`` draws of a longer run are the same numbers).

A profile may also correlate some costs (``cpu.correlations``): a Gaussian
copula over the normal scores of those streams (:func:`correlate_uniforms`).
Each cost keeps its own distribution; only the pairing of draws changes, and
draw ``k`` still depends only on ``(seed, cost names, correlations, k)``. Costs in no correlation are drawn exactly as without any.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from .params import VM_EXIT_REASONS

NATIVE_COSTS: dict[str, str] = {
    "syscall": "syscall entry + exit without PTI [ns]",
    "page_lookup": "page-cache lookup, folio ref and bookkeeping per page read [ns]",
    "user_fault": "handling a user page fault, excluding zeroing or copying the page [ns]",
    "context_switch": "one context_switch() including the scheduler's pick [ns]",
    "copy_bandwidth": "single-core memory copy/zero bandwidth [bytes/ns = GB/s]",
    "mem_bandwidth": "whole-socket memory bandwidth shared by all CPUs [bytes/ns = GB/s]",
    "kernel_rest": "the rest of a kernel entry after an exit where the model does not count the "
    "path (an interrupt handler, a syscall after a TLB-flush exit, the switched-to task's kernel "
    "path): how long the CPU stays unrestricted [ns]",
}
"""Costs of the native (ASI off) kernel paths the model counts."""

ASI_COSTS: dict[str, str] = {
    "fault_entry": "kernel-mode fault on an unmapped physmap page up to asi_exit [ns]",
    "cr3_write": "one CR3 write [ns]",
    "page_walk": "refilling one TLB entry by a page walk after a flushing CR3 switch or a full "
    "local flush [ns]; a refill costs the workload's tlb_working_set of these",
    "ibpb": "indirect branch prediction barrier (write to MSR_IA32_PRED_CMD) [ns]",
    "rsb_fill": "return stack buffer stuffing (fill_return_buffer) [ns]",
    "l1d_flush": "L1D flush via MSR_IA32_FLUSH_CMD plus L1D refill [ns]",
    "generation_check": "asi_enter's TLB-generation bookkeeping when CR3 writes keep NOFLUSH [ns]",
    "smt_stun": "stunning and releasing the SMT sibling around one unrestricted period "
    "(IPI and handshake), excluding the sibling's lost time [ns]",
    "ephmap_pte": "setting and clearing one ephmap PTE (or direct-map PTE) [ns]",
    "ephmap_software": "the prototype ephmap's software path per use (map + unmap): page-table "
    "allocation walk, slot xchg, migrate/preempt disable, huge-entry and table checks [ns]",
    "ephmap_software_fast": "the optimised mapping path per use: a cached PTE pointer into "
    "preallocated tables, no walk; priced at most at ephmap_software [ns]",
    "invlpg": "one INVLPG of an ephmap page [ns]",
    "psc_rewalk": "the extra page-walk work after one INVLPG, which drops every paging-structure "
    "cache entry of the PCID (Intel SDM Vol. 3A 4.10.4.1) [ns]",
    "full_flush": "a full local TLB flush (invpcid_flush_all), excluding the refill [ns]",
    "shootdown_base": "a TLB shootdown to other CPUs: the initiator's fixed IPI cost, excluding its local flush [ns]",
    "shootdown_per_cpu": "a TLB shootdown: CPU time per remote CPU (IPI send, remote interrupt and flush) [ns]",
    "asi_mm_setup": "creating and freeing one mm's restricted address space (its own PGD) [ns]",
    "ephmap_setup_per_cpu": "ephmap_setup's page tables for one possible CPU, per mm, allocated "
    "at mm creation and freed at teardown [ns]",
}
"""Costs that ASI and the ephmap add. Their per-op counts come from :mod:`model.mechanism`."""

MITIGATION_COSTS: dict[str, str] = {
    "pti": "PTI's CR3 switch pair (with PCID) per kernel entry and exit [ns]",
    "spec_ctrl_write": "one write of MSR_IA32_SPEC_CTRL (legacy IBRS sets it on kernel entry and "
    "clears it on exit: two per entry) [ns]",
    "bhb_clear": "the BHB clearing sequence (clear_bhb_loop) on one syscall entry or VM exit [ns]",
    "verw": "one VERW buffer clear on return to user [ns]",
    "srso": "SRSO return untraining on one kernel entry [ns]",
    "swapgs_fence": "the LFENCE after SWAPGS per kernel entry [ns]",
    "pbrsb": "the one-entry RSB fill after a VM exit (PBRSB) [ns]",
}
"""Per-event costs of the kernel's default mitigations (:data:`model.params.DEFAULT_MITIGATIONS`;
the RSB fill on context switch is priced with ``rsb_fill``, the conditional IBPBs with ``ibpb``,
the TLB refill of PTI without PCID with ``page_walk``)."""

KERNEL_TIME_FACTORS: dict[str, str] = {
    "ibrs_factor": "how much slower the kernel's own execution is while legacy IBRS is set: "
    "extra time per unit of kernel time [fraction]",
    "retpoline_factor": "extra kernel time per unit of kernel time from retpoline thunks on "
    "every indirect call and jump [fraction]",
    "call_depth_factor": "extra kernel time per unit of kernel time from call-depth tracking's "
    "accounting thunks and RSB refills (retbleed=stuff) [fraction]",
    "its_factor": "extra kernel time per unit of kernel time from ITS's thunks for indirect "
    "branches and returns in the lower half of a cacheline [fraction]",
    "safe_ret_factor": "extra kernel time per unit of kernel time from SRSO's safe-RET thunk on "
    "every kernel return [fraction]",
}
"""Mitigations whose cost is proportional to the time the CPU spends in the kernel: the extra
time per unit of it, in ``unit: fraction``. What they slow is every indirect branch, call or
return the kernel executes, so a count per op does not exist; the kernel time per op does."""

RATE_COSTS: dict[str, str] = {
    "tick_exits": "ASI exits per second per CPU from the timer tick and the work it runs "
    "(timekeeping, scheduler tick, softirqs) touching sensitive data [1/s]",
}
"""Uncertain rates of the CPU profile (kernel and machine, not workload): events per second."""

SHARE_COSTS: dict[str, str] = {
    f"vmexit_share_{reason}": f"share of {reason} VM exits whose handling touches sensitive "
    "data (guest or VMM memory through the VMM's mappings, instruction emulation, a host "
    "schedule), so exits ASI; the rest go back to the guest restricted [0-1]"
    for reason in VM_EXIT_REASONS
}
SHARE_COSTS.update(KERNEL_TIME_FACTORS)
"""Uncertain shares and factors of the CPU profile, in ``unit: fraction`` (at most 1): what
KVM's exit handlers do (the one input a VM exit's ASI cost depends on besides its rate), and
the kernel-time factors of :data:`KERNEL_TIME_FACTORS`."""

COST_NAMES: tuple[str, ...] = (
    *NATIVE_COSTS,
    *ASI_COSTS,
    *MITIGATION_COSTS,
    *RATE_COSTS,
    *SHARE_COSTS,
)

DISTRIBUTIONS = ("fixed", "uniform", "loguniform", "lognormal")
UNITS = ("ns", "cycles", "GB/s", "1/s", "fraction")
UNIT_ONLY_FOR = {"1/s": RATE_COSTS, "fraction": SHARE_COSTS}
"""Units reserved for one group of costs, and only for it."""

_Z95 = float(ndtri(0.95))

MAX_COST = 1e9
"""Bound on any cost in its unit: one second per event, or 1e9 GB/s, is a typo."""


@dataclass(frozen=True)
class CostSpec:
    """One uncertain cost.

    Parameters
    ----------
    dist : {"fixed", "uniform", "loguniform", "lognormal"}
        ``fixed`` uses ``value``; ``uniform`` and ``loguniform`` span
        ``[low, high]``; ``lognormal`` has ``low`` and ``high`` as its 5th and
        95th percentiles.
    low, high, value : float
        In ``unit``.
    unit : {"ns", "cycles", "GB/s", "1/s", "fraction"}
        Cycles are converted with the profile's clock; ``1/s`` is for the
        rates of :data:`RATE_COSTS` and only for them, ``fraction`` (at most
        1) for the shares of :data:`SHARE_COSTS` and only for them.
    """

    dist: str = "loguniform"
    low: float | None = None
    high: float | None = None
    value: float | None = None
    unit: str = "ns"

    def check(self, name: str) -> None:
        """Raise ``ValueError`` (one line, naming the cost) if the spec is unusable."""
        where = f"cpu.costs.{name}"
        if self.dist not in DISTRIBUTIONS:
            raise ValueError(
                f"{where}.dist must be one of {', '.join(DISTRIBUTIONS)}, got {self.dist!r}"
            )
        if self.unit not in UNITS:
            raise ValueError(f"{where}.unit must be one of {', '.join(UNITS)}, got {self.unit!r}")
        reserved = next((u for u, group in UNIT_ONLY_FOR.items() if name in group), None)
        if self.unit != reserved and (reserved or self.unit in UNIT_ONLY_FOR):
            allowed = reserved or "ns, cycles or GB/s"
            raise ValueError(f"{where}.unit must be {allowed}, got {self.unit!r}")
        top = 1.0 if self.unit == "fraction" else MAX_COST
        if self.dist == "fixed":
            if self.value is None or not np.isfinite(self.value) or not 0 <= self.value <= top:
                raise ValueError(
                    f"{where}.value must be a number between 0 and {top:g}, got {self.value!r}"
                )
            return
        for bound in ("low", "high"):
            v = getattr(self, bound)
            if v is None or not np.isfinite(v) or v <= 0:
                raise ValueError(f"{where}.{bound} must be a finite number > 0, got {v!r}")
            if v > top:
                raise ValueError(f"{where}.{bound} must be <= {top:g}, got {v!r}")
        if self.high < self.low:
            raise ValueError(f"{where}.high must be >= low ({self.low}), got {self.high}")

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Quantile function: map uniforms ``u`` in (0, 1) to values in ``unit``."""
        if self.dist == "fixed":
            return np.full_like(u, float(self.value))
        low, high = float(self.low), float(self.high)
        if self.dist == "uniform":
            return low + (high - low) * u
        if self.dist == "loguniform":
            return low * (high / low) ** u
        # lognormal with low/high at the 5th/95th percentiles
        mu = 0.5 * (np.log(low) + np.log(high))
        sigma = (np.log(high) - np.log(low)) / (2 * _Z95)
        return np.exp(mu + sigma * ndtri(u))

    def median(self) -> float:
        """The distribution's median in ``unit`` (used for reports and as a fit start)."""
        return float(self.ppf(np.array([0.5]))[0])


def priced_draws(costs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The draws as the model prices them: the optimised mapping path does a subset of the
    walk's work, so ``ephmap_software_fast`` is never dearer than ``ephmap_software`` in the
    same sample. Both engines (:mod:`model.evaluate`, :mod:`model.kernel`) price these."""
    out = {name: np.asarray(values, dtype=np.float64) for name, values in costs.items()}
    out["ephmap_software_fast"] = np.minimum(out["ephmap_software_fast"], out["ephmap_software"])
    return out


def stream_uniforms(n: int, *, seed: int, cost: str) -> np.ndarray:
    """The first ``n`` uniforms of the stream for ``(seed, cost)``.

    Each cost has its own stream, keyed by its name and not by the profile's,
    so adding a cost never shifts the draws of the others, and two profiles
    (two CPUs, or a prior and its calibration) are compared sample by sample.
    """
    key = int.from_bytes(hashlib.sha256(f"cost/{cost}".encode()).digest()[:8], "little")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), key])))
    # random() yields values in [0, 1); reflect 0 to keep ppf finite.
    u = rng.random(n)
    return np.where(u == 0.0, U_MIN, u)


U_MIN = 0.5 / 2**53
U_MAX = 1.0 - 2.0**-53
"""The open interval uniforms are kept in, so every ``ppf`` stays finite."""

Correlation = tuple[str, str, float]
"""``(a, b, rho)``: the correlation ``rho`` in [-1, 1] between the normal scores of costs ``a`` and ``b``."""


def canonical_correlations(pairs: Sequence[Correlation]) -> tuple[Correlation, ...]:
    """``pairs`` validated and in canonical form: ``a`` before ``b`` in :data:`COST_NAMES`,
    sorted, ``rho == 0`` dropped (it changes nothing). One-line ``ValueError`` on a bad entry.
    """
    out: dict[tuple[str, str], float] = {}
    for i, (a, b, rho) in enumerate(pairs):
        where = f"cpu.correlations[{i}]"
        for field_, name in (("a", a), ("b", b)):
            if name not in COST_NAMES:
                raise ValueError(
                    f"{where}.{field_}: unknown cost {name!r}; allowed: {', '.join(COST_NAMES)}"
                )
        if a == b:
            raise ValueError(f"{where}: a cost is not correlated with itself ({a}:{b})")
        rho = float(rho)
        if not -1.0 <= rho <= 1.0:  # also false for NaN
            raise ValueError(f"{where}.rho ({a}:{b}) must be in [-1, 1], got {rho}")
        key = tuple(sorted((a, b), key=COST_NAMES.index))
        if key in out:
            raise ValueError(f"cpu.correlations lists the pair {key[0]}:{key[1]} twice")
        out[key] = rho
    return tuple((a, b, rho) for (a, b), rho in sorted(out.items(), key=_pair_order) if rho != 0)


def _pair_order(item: tuple[tuple[str, str], float]) -> tuple[int, int]:
    (a, b), _ = item
    return COST_NAMES.index(a), COST_NAMES.index(b)


def correlation_matrix(pairs: Sequence[Correlation]) -> tuple[tuple[str, ...], np.ndarray]:
    """``(names, R)``: the costs involved (in :data:`COST_NAMES` order) and their correlation
    matrix (unit diagonal, unlisted pairs 0). Validated by :func:`cholesky_factor`'s rules."""
    pairs = canonical_correlations(pairs)
    involved = {name for a, b, _ in pairs for name in (a, b)}
    names = tuple(n for n in COST_NAMES if n in involved)
    matrix = np.eye(len(names))
    for a, b, rho in pairs:
        i, j = names.index(a), names.index(b)
        matrix[i, j] = matrix[j, i] = rho
    return names, matrix


def cholesky_factor(matrix: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Lower Cholesky factor ``L`` of a correlation matrix over ``names`` (``R = L L^T``).

    Raises a one-line ``ValueError`` (naming the pair, or ``cpu.correlations``)
    unless ``matrix`` is symmetric with a unit diagonal, entries in [-1, 1]
    and positive definite.
    """
    matrix = np.asarray(matrix, dtype=float)
    m = len(names)
    if matrix.shape != (m, m):
        raise ValueError(f"cpu.correlations: a {m}x{m} matrix expected, got shape {matrix.shape}")
    for i in range(m):
        if matrix[i, i] != 1.0:
            raise ValueError(
                f"cpu.correlations: {names[i]}:{names[i]} must be 1, got {matrix[i, i]}"
            )
        for j in range(i):
            rho = matrix[i, j]
            if not -1.0 <= rho <= 1.0:
                raise ValueError(
                    f"cpu.correlations: {names[j]}:{names[i]} must be in [-1, 1], got {rho}"
                )
            if rho != matrix[j, i]:
                raise ValueError(
                    f"cpu.correlations: not symmetric: {names[j]}:{names[i]} is {matrix[j, i]} "
                    f"but {names[i]}:{names[j]} is {rho}"
                )
    try:
        factor = np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        factor = None
    if factor is None or np.any(np.diag(factor) < 1e-6):
        raise ValueError(
            f"cpu.correlations over {', '.join(names)} is not positive definite "
            "(inconsistent pairs, or |rho| = 1; use at most 0.999)"
        )
    return factor


def check_correlations(pairs: Sequence[Correlation]) -> None:
    """Raise a one-line ``ValueError`` unless ``pairs`` make a valid correlation matrix."""
    names, matrix = correlation_matrix(pairs)
    cholesky_factor(matrix, names)


def correlate_uniforms(
    uniforms: Mapping[str, np.ndarray], pairs: Sequence[Correlation]
) -> dict[str, np.ndarray]:
    """Uniform draws of each cost, paired by a Gaussian copula with correlations ``pairs``.

    For the costs involved, ``z = ndtri(u)``, ``z' = L z`` with ``L`` the
    Cholesky factor of their correlation matrix, ``u' = ndtr(z')``: each cost
    stays uniform (so keeps its distribution through its ``ppf``) and the
    normal scores get correlation ``R``. Other costs are returned as given.
    Draw ``k`` of the result depends only on draw ``k`` of the inputs: ``L z``
    is summed elementwise in a fixed order, never by a BLAS product.
    """
    out = dict(uniforms)
    names, matrix = correlation_matrix(pairs)
    if not names:
        return out
    factor = cholesky_factor(matrix, names)
    z = [ndtri(uniforms[n]) for n in names]
    for i, name in enumerate(names):
        acc = factor[i, 0] * z[0]
        for j in range(1, i + 1):
            acc = acc + factor[i, j] * z[j]
        out[name] = np.clip(ndtr(acc), U_MIN, U_MAX)
    return out


def to_model_units(values: np.ndarray, unit: str, ghz: float) -> np.ndarray:
    """Convert draws to the model's units: [ns] for times, [bytes/ns] for bandwidths."""
    if unit == "cycles":
        return values / ghz
    return values  # ns stay ns; GB/s == bytes/ns; rates stay [1/s]


def sample_costs(
    specs: Mapping[str, CostSpec],
    n: int,
    *,
    seed: int,
    ghz: float,
    correlations: Sequence[Correlation] = (),
) -> dict[str, np.ndarray]:
    """Draw ``n`` samples of every cost in :data:`COST_NAMES`.

    Parameters
    ----------
    specs : mapping of cost name to :class:`CostSpec`
        Must hold exactly the names in :data:`COST_NAMES`.
    n : int
        Number of Monte Carlo samples.
    seed : int
        Sweep seed: with the cost's name, the only key of its stream.
    ghz : float
        Clock [GHz] converting cycle costs to ns.
    correlations : sequence of (a, b, rho)
        Correlations [-1, 1] between the normal scores of pairs of costs
        (:func:`correlate_uniforms`); unlisted pairs are independent.

    Returns
    -------
    dict of str to ndarray of shape (n,)
        Costs in [ns]; ``copy_bandwidth`` and ``mem_bandwidth`` in [bytes/ns].
    """
    missing = sorted(set(COST_NAMES) - set(specs))
    if missing:
        raise ValueError(f"cpu.costs is missing {', '.join(missing)}")
    unknown = sorted(set(specs) - set(COST_NAMES))
    if unknown:
        raise ValueError(
            f"cpu.costs has unknown cost {unknown[0]!r}; allowed: {', '.join(COST_NAMES)}"
        )
    for name in COST_NAMES:
        specs[name].check(name)
    uniforms = {name: stream_uniforms(n, seed=seed, cost=name) for name in COST_NAMES}
    uniforms = correlate_uniforms(uniforms, correlations)
    return {
        name: to_model_units(specs[name].ppf(uniforms[name]), specs[name].unit, ghz)
        for name in COST_NAMES
    }
