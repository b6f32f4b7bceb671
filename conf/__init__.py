"""The packaged Hydra configs (``pkg://pipeline.conf``): this directory ships as ``pipeline.conf``."""
