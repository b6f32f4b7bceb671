"""Hydra plugin shim for asi-sweep's grid sweeper (the logic is in :mod:`pipeline.sweeper`)."""
