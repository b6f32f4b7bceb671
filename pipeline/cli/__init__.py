"""The four entry points (``asi-answer``, ``asi-sweep``, ``asi-report``, ``asi-calibrate``).

Each is a few lines over :func:`pipeline.configuration.command.command`; its
module docstring is its ``--help``.
"""
