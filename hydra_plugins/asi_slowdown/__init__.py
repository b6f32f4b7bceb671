"""Hydra plugin shims for asi-slowdown (the logic is in :mod:`pipeline`)."""
