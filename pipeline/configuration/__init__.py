"""Configuration: the one schema, composition, every setting's check, the config as model inputs.

* :mod:`.schema`: the structured schema (:class:`~.schema.Config`, every section: the model's
  generated from its tables, each command's), registered in Hydra's ConfigStore;
* :mod:`.compose`: the composer (Hydra initialised once per search path, compositions
  cached and checked);
* :mod:`.checks`: every setting's check, one function per section;
* :mod:`.profile`: :func:`~.profile.model_profile`, the one conversion of a composed config
  into the model's inputs (its point and cost draws), which checks the model's sections;
* :mod:`.sweeps`: sweep overrides in Hydra's grammar, merged as Hydra's jobs apply them,
  classified into a grid's dimensions and checked;
* :mod:`.command`: what every entry point shares (``--cfg``, ``--info``, ``--help``,
  ``--config-dir``);
* :mod:`.errors`: :class:`~.errors.ConfigError`, one-line messages from Hydra's exceptions,
  and :func:`~.errors.exit_codes`, the one mapping of how a command ends to its exit code.
"""
