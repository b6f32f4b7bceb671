"""The one way into Hydra: a composer per search path, compositions checked and cached.

Hydra is initialised once per process (:func:`composer`; again only if a
command asks for another ``--config-dir``), from the packaged configs
(``pkg://pipeline.conf``, the repository's ``conf/``) plus the user's own
config directory (:func:`user_config_dir`) and any ``--config-dir``, which a
search-path plugin (``hydra_plugins/asi_slowdown``) appends. Compositions are
cached per override tuple. Composition uses Hydra's own override grammar
(``key=value``, ``group=option``, ``+key=value``), so entry points accept
exactly what ``@hydra.main`` programs accept. Every composition is checked
(:func:`pipeline.configuration.checks.validate`), which converts it into the model's
inputs once (:meth:`Composer.compose_profile`). Every failure becomes a one-line
:class:`ConfigError`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path

from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from asi_slowdown.pipeline.configuration.checks import validate
from asi_slowdown.pipeline.configuration.errors import ConfigError, one_line
from asi_slowdown.pipeline.configuration.profile import ModelProfile
from asi_slowdown.pipeline.configuration.schema import register

CONF_PACKAGE = "asi_slowdown.pipeline.conf"
"""The packaged configs: the repository's ``conf/``, installed as this package."""

CONF_DIR = Path(str(resources.files(CONF_PACKAGE)))
"""Where the packaged configs are on disk (read-only once installed)."""

USER_CONFIG_ENV = "ASI_CONFIG_DIR"
"""Environment variable naming the user's config directory."""

DEFAULT_USER_CONFIG_DIR = "outputs/conf"
"""The user's config directory when :data:`USER_CONFIG_ENV` is unset (relative to the
working directory, like the results store)."""


def packaged_options(group: str) -> list[str]:
    """Options of a config group that ship with the package (``conf/<group>/*.yaml``), without
    the user's own: what the shipped presets list and the shipped docs describe."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def user_config_dir() -> Path:
    """The user's own configs (``cpu/``, ``workload/``, ``experiment/``...), searched after
    the packaged ones; where ``asi-calibrate`` writes. Need not exist."""
    return Path(os.environ.get(USER_CONFIG_ENV) or DEFAULT_USER_CONFIG_DIR).absolute()


_extra_dirs: tuple[str, ...] = ()
_initialised: tuple | None = None


def search_dirs() -> list[str]:
    """The ``file://`` entries the search-path plugin appends: ``--config-dir``s, then the
    user's config directory if it exists (Hydra warns about missing ones)."""
    user = user_config_dir()
    return [f"file://{d}" for d in (*_extra_dirs, *([str(user)] if user.is_dir() else []))]


class Composer:
    """Hydra's config loader for one search path, and cached compositions.

    Obtain one with :func:`composer`. ``config_dirs`` are extra config
    directories (Hydra's ``--config-dir``), searched after the packaged ones.
    """

    def __init__(
        self, config_dirs: tuple[str, ...] = (), *, config_name: str = "config", loader=None
    ) -> None:
        self.config_name = config_name  # the primary config (Hydra's --config-name)
        self._loader = loader  # a running Hydra app's (the sweeper plugin's): used as is
        for d in config_dirs:
            if not Path(d).is_dir():
                raise ConfigError(f"--config-dir: {d!r} is not a directory")
        self.config_dirs = tuple(str(Path(d).absolute()) for d in config_dirs)
        self._cache: dict[tuple, DictConfig] = {}

    def loader(self):
        """Hydra's ``ConfigLoader``, Hydra initialised for this search path if it is not yet."""
        global _extra_dirs, _initialised
        if self._loader is not None:
            return self._loader
        user = user_config_dir()
        key = (*self.config_dirs, str(user), user.is_dir())  # asi-calibrate may create it
        if _initialised != key or not GlobalHydra.instance().is_initialized():
            register()
            _extra_dirs = self.config_dirs
            GlobalHydra.instance().clear()
            # called, not entered: Hydra stays initialised for the rest of the process
            initialize_config_module(CONF_PACKAGE, version_base="1.3")
            _initialised = key
            self._cache.clear()
        return GlobalHydra.instance().config_loader()

    def group_options(self, group: str) -> list[str]:
        """Options of a config group across the search path (``cpu`` -> profile names)."""
        try:
            return sorted(self.loader().get_group_options(group))
        except Exception:  # an unknown group has no options
            return []

    def load(
        self,
        overrides: Sequence[str] = (),
        config_name: str | None = None,
        *,
        multirun: bool = False,
    ) -> DictConfig:
        """Compose with the ``hydra`` node, unvalidated (``--cfg``, the sweeper); cached."""
        config_name = config_name or self.config_name
        check_override_syntax(overrides)
        parsed = OverridesParser.create().parse_overrides(list(overrides))
        # a multirun's own config leaves the sweeps out: its jobs apply them
        check_deleted_keys([o for o in parsed if not (multirun and o.is_sweep_override())])
        key = (config_name, tuple(overrides), multirun)
        if key not in self._cache:
            loader = self.loader()
            try:
                self._cache[key] = loader.load_configuration(
                    config_name=config_name,
                    overrides=list(overrides),
                    run_mode=RunMode.MULTIRUN if multirun else RunMode.RUN,
                )
            except Exception as exc:  # Hydra and OmegaConf raise many types; all are user errors
                raise ConfigError(one_line(exc, self.group_options)) from None
        return copy.deepcopy(self._cache[key])

    def compose_profile(
        self, overrides: Sequence[str] = (), config_name: str | None = None
    ) -> tuple[DictConfig, ModelProfile]:
        """One validated configuration (no sweeps), without the ``hydra`` node, and the
        model's inputs its validation made (:func:`~pipeline.configuration.checks.validate`)."""
        check_override_syntax(overrides)
        check_no_sweeps(overrides)
        cfg = self.load(overrides, config_name)
        with open_dict(cfg):
            del cfg["hydra"]
        check_strict_bools(cfg, overrides)
        return cfg, validate(cfg)

    def compose(self, overrides: Sequence[str] = (), config_name: str | None = None) -> DictConfig:
        """One validated configuration (no sweeps), without the ``hydra`` node."""
        return self.compose_profile(overrides, config_name)[0]

    def variant(
        self, base: Sequence[str], overrides: Sequence[str]
    ) -> tuple[DictConfig, ModelProfile]:
        """:meth:`compose_profile` of ``base`` with ``overrides`` in place of those of ``base``
        for the same keys (``workload=a`` replaces a ``workload=b`` of ``base``, which Hydra
        would refuse as a second choice of the group)."""
        keys = {override_key(o) for o in overrides}
        return self.compose_profile([*(o for o in base if override_key(o) not in keys), *overrides])


@cache
def composer(config_dirs: tuple[str, ...] = (), config_name: str = "config") -> Composer:
    """The process's composer for a search path and primary config (``--config-dir``,
    ``--config-name``)."""
    return Composer(config_dirs, config_name=config_name)


def override_key(override: str) -> str:
    """The key an override sets, without its ``+``/``++``/``~`` (``+cpu.x=1`` -> ``cpu.x``)."""
    return override.split("=", 1)[0].lstrip("+~")


def compose_config(overrides: Sequence[str] = (), config_name: str | None = None) -> DictConfig:
    """Compose ``config_name`` with ``overrides`` on the default search path; validated."""
    return composer().compose(overrides, config_name)


def check_strict_bools(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """Reject numbers given for booleans: OmegaConf turns any integer into a bool
    (``mitigations.ephmap=2`` would silently mean true)."""
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.is_sweep_override() or override.is_delete():
            continue
        key = override.key_or_group
        value = override.value()
        if isinstance(OmegaConf.select(cfg, key, default=None), bool) and not isinstance(
            value, bool | str
        ):
            raise ConfigError(f"{key} must be true or false, got {value!r}")


def check_override_syntax(overrides: Sequence[str]) -> None:
    """Parse each override alone with Hydra's grammar, so an error names the override."""
    parser = OverridesParser.create()
    for override in overrides:
        try:
            (parsed,) = parser.parse_overrides([override])
        except Exception as exc:
            raise ConfigError(f"override {override!r} is malformed: {one_line(exc)}") from None
        if not parsed.key_or_group:
            raise ConfigError(f"override {override!r} is malformed: it names no key")


def check_deleted_keys(overrides: Sequence[Override]) -> None:
    """Refuse setting a key after deleting it (``~cpus cpus=3``; ``~cpus cpus=1,2`` for a
    sweep's jobs), in one line naming the deletion: Hydra fails there (``cpus: unknown
    key``), as a deleted key can only be added back (``+cpus=3``, ``++cpus=3``)."""
    deleted: dict[tuple, Override] = {}
    for op in overrides:
        key = (op.key_or_group, op.package)
        if op.is_delete():
            deleted[key] = op
        elif op.is_add() or op.is_force_add():
            deleted.pop(key, None)
        elif key in deleted:
            name = op.key_or_group
            raise ConfigError(
                f"{deleted[key].input_line}: deletes {name}, and {op.input_line} after it cannot "
                f"set a deleted key (Hydra fails every job so: {name}: unknown key); drop one "
                f"of them, or add it back with ++{name}=..."
            )


def check_no_sweeps(overrides: Sequence[str]) -> None:
    """One configuration takes one value per key: reject ``a=1,2``, ``range()``, ``glob()``."""
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.is_sweep_override():
            raise ConfigError(
                f"{override.key_or_group}: one value expected, got the sweep "
                f"{override.input_line!r} (sweeps are for asi-sweep -m)"
            )
