"""Hypothesis settings profiles, and how many examples generated bad input gets.

Profiles (registered by ``tests/conftest.py``; chosen with ``HYPOTHESIS_PROFILE``,
else ``ci`` when ``CI`` is set, else ``dev``):

* ``dev`` (the default) and ``ci``: the everyday counts, so ``make test`` stays fast;
  each generated-bad-input test runs its own default (:func:`bad_input_settings`).
* ``exhaustive`` (``make test-exhaustive``): every generated-bad-input test runs at
  least :data:`EXHAUSTIVE_EXAMPLES` examples; CI never selects it.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXHAUSTIVE = "exhaustive"
EXHAUSTIVE_EXAMPLES = 1000
"""The floor of examples per generated-bad-input test in the exhaustive profile."""


def register() -> str:
    """Register the profiles, load the chosen one and return its name."""
    settings.register_profile("ci", max_examples=300, deadline=None, derandomize=True)
    settings.register_profile("dev", max_examples=100, deadline=None)
    settings.register_profile(
        EXHAUSTIVE, max_examples=EXHAUSTIVE_EXAMPLES, deadline=None, print_blob=True
    )
    name = chosen()
    settings.load_profile(name)
    return name


def chosen() -> str:
    """The profile this run uses: ``$HYPOTHESIS_PROFILE`` if set, else ``ci`` under CI, else ``dev``."""
    return os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")


def exhaustive() -> bool:
    return chosen() == EXHAUSTIVE


def bad_input_examples(default: int) -> int:
    """Examples for one generated-bad-input test: ``default``, or at least
    :data:`EXHAUSTIVE_EXAMPLES` in the exhaustive profile."""
    return max(default, EXHAUSTIVE_EXAMPLES) if exhaustive() else default


def bad_input_settings(default: int) -> settings:
    """Settings of a generated-bad-input test whose everyday count is ``default``.

    No deadline (composition may take a second on a loaded machine); the
    health check on slow generation is off for the same reason.
    """
    return settings(
        max_examples=bad_input_examples(default),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
