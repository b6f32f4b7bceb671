"""The packaged Hydra configs (``pkg://asi_slowdown.pipeline.conf``): this directory ships as ``asi_slowdown.pipeline.conf``."""
