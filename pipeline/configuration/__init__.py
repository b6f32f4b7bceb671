"""Configuration: the structured-config schemas, the one Hydra composer, errors, Hydra's flags.

* :mod:`.schema`: dataclasses generated from the model's parameter tables, registered in
  Hydra's ConfigStore;
* :mod:`.compose`: the composer (Hydra initialised once per search path, compositions
  cached) and the conversion of a composed config into model inputs;
* :mod:`.command`: what every entry point shares (``--cfg``, ``--info``, ``--help``,
  ``--config-dir``; one-line errors, exit codes);
* :mod:`.errors`: :class:`~.errors.ConfigError` and one-line messages from Hydra's exceptions.
"""
