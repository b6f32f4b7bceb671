"""What every entry point shares: Hydra's standard flags, the composer, exit codes.

Each command is ``main(argv)`` decorated with :func:`command`. It accepts
the flags a Hydra user expects (``--help``, ``--hydra-help``, ``--cfg
job|hydra|all`` with ``--package`` and ``--resolve``, ``--info [what]``,
``--config-dir DIR``, ``--config-name NAME``, ``--version``) followed by
overrides, answers the inspection flags itself from the composed config, and
hands the rest to the command as a :class:`Invocation`. Bad input of any kind
(a flag, an override, a value) prints one ``error: ...`` line and exits 2; a
closed pipe (``asi-answer | head``) ends quietly with 141; the one mapping of
how a command ends to its exit code is :func:`pipeline.configuration.errors.exit_codes`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from importlib import metadata

from omegaconf import OmegaConf, open_dict

from asi_slowdown.pipeline.configuration.compose import (
    CONF_DIR,
    USER_CONFIG_ENV,
    Composer,
    composer,
    user_config_dir,
)
from asi_slowdown.pipeline.configuration.errors import ConfigError, exit_codes

INFO_CHOICES = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")
"""``--info`` topics, as Hydra's."""

UNSUPPORTED = {
    "--run": "runs are one process here; drop --run",
    "--shell-completion": "shell completion is not installed by these commands",
    "--config-path": "use --config-dir DIR to add a config directory",
    "--experimental-rerun": "rerun a command with its overrides instead",
}
"""Hydra flags that have no meaning for these commands, and what to do instead."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage and exits 2; we want one line
        raise ConfigError(message)


def parser(prog: str, multirun: bool) -> argparse.ArgumentParser:
    """The flags of Hydra's own command line that apply to ``prog``."""
    p = _Parser(prog=prog, add_help=False)
    p.add_argument("overrides", nargs="*")
    p.add_argument("--help", "-h", action="store_true")
    p.add_argument("--hydra-help", action="store_true")
    p.add_argument("--version", action="store_true")
    p.add_argument("--cfg", "-c", choices=["job", "hydra", "all"])
    p.add_argument("--resolve", action="store_true")
    p.add_argument("--package", "-p")
    p.add_argument("--info", "-i", nargs="?", const="all", choices=INFO_CHOICES)
    p.add_argument("--config-dir", "-cd", action="append", default=[])
    p.add_argument("--config-name", "-cn", default="config")
    p.add_argument("--multirun", "-m", action="store_true")
    for flag in UNSUPPORTED:
        p.add_argument(flag, action="store_true")
    return p


@dataclass(frozen=True)
class Invocation:
    """One command line, parsed: the overrides, the config name and the composer to use."""

    prog: str
    overrides: tuple[str, ...]
    config_name: str
    composer: Composer
    multirun: bool

    def load(self):
        """The composed config with its ``hydra`` node (a sweep's, for ``asi-sweep``)."""
        return self.composer.load(self.overrides, self.config_name, multirun=self.multirun)


def parse(argv: Sequence[str], prog: str, multirun: bool = False):
    """``(args, invocation)`` for ``argv``; one-line :class:`ConfigError` on a bad flag."""
    args, unknown = parser(prog, multirun).parse_known_args(list(argv))
    flags = [a for a in unknown if a.startswith("-")]
    if flags:
        raise ConfigError(f"{flags[0]}: unknown flag (see {prog} --help)")
    for flag, hint in UNSUPPORTED.items():
        if getattr(args, flag.lstrip("-").replace("-", "_")):
            raise ConfigError(f"{flag}: not supported by {prog}; {hint}")
    if args.multirun and not multirun:
        raise ConfigError(f"--multirun: {prog} evaluates one configuration; sweeps are asi-sweep's")
    overrides = (*args.overrides, *unknown)
    chosen = composer(tuple(args.config_dir), args.config_name)
    return args, Invocation(prog, overrides, args.config_name, chosen, multirun)


def _flags_help() -> str:
    return (
        "Hydra flags: --cfg job|hydra|all [--package KEY] [--resolve] (print the composed "
        "config), --info [all|config|defaults|defaults-tree|plugins|searchpath], "
        "--config-dir DIR (search DIR too), --config-name NAME, --hydra-help, --version.\n"
        f"Your own configs: {USER_CONFIG_ENV} (now {user_config_dir()}) holds cpu/, "
        "workload/, mitigations/, experiment/... searched after the packaged ones."
    )


def config_groups() -> list[str]:
    """The config groups the primary config's defaults list chooses (``conf/config.yaml``),
    in its order: what ``--help`` lists, so a group added there is listed too."""
    groups = []
    for entry in OmegaConf.load(CONF_DIR / "config.yaml").defaults:
        key = next(iter(entry)) if OmegaConf.is_dict(entry) else None
        if key and not key.startswith("override ") and "/" not in key:
            groups.append(str(key))
    return groups


def _groups(inv: Invocation) -> str:
    lines = ["Config groups (choose with group=option):"]
    for group in config_groups():
        lines.append(f"  {group}: {', '.join(inv.composer.group_options(group))}")
    return "\n".join(lines)


def inspect(args, inv: Invocation, doc: str) -> bool:
    """Answer ``--help``, ``--version``, ``--cfg`` and ``--info``; whether one was asked."""
    if args.help or args.hydra_help:
        print("\n\n".join([doc.strip(), _flags_help(), _groups(inv)]))
    elif args.version:
        from asi_slowdown.model import MODEL_VERSION

        # the model version is what users compare: it names every stored result
        print(
            f"{inv.prog} {metadata.version('asi-slowdown')}, model {MODEL_VERSION} "
            f"(hydra-core {metadata.version('hydra-core')})"
        )
    elif args.cfg:
        cfg = inv.load()
        if args.cfg == "job":
            with open_dict(cfg):
                del cfg["hydra"]
        elif args.cfg == "hydra":
            cfg = cfg.hydra
        if args.package:
            cfg = OmegaConf.select(cfg, args.package)
            if cfg is None:
                raise ConfigError(f"--package: {args.package!r} is not in the config")
        print(OmegaConf.to_yaml(cfg, resolve=args.resolve) if OmegaConf.is_config(cfg) else cfg)
    elif args.info:
        inv.load()  # a bad override is one line, not Hydra's traceback
        from hydra.core.global_hydra import GlobalHydra
        from hydra.types import RunMode

        # No public API prints Hydra's --info; its Hydra object does, exactly as hydra.main.
        GlobalHydra.instance().hydra.show_info(
            args.info,
            inv.config_name,
            list(inv.overrides),
            RunMode.MULTIRUN if inv.multirun else RunMode.RUN,
        )
    else:
        return False
    return True


def command(
    prog: str,
    *,
    multirun: bool = False,
    interrupted: Callable[[BaseException], str] | None = None,
) -> Callable:
    """Make ``body(invocation) -> exit code`` the entry point ``main(argv=None)`` of ``prog``.

    ``argv`` defaults to ``sys.argv[1:]``; the help text is the docstring of the
    module that defines ``body``. How the command ends maps to its exit code in
    :func:`~pipeline.configuration.errors.exit_codes`; ``interrupted(exc)`` is its last
    line on Ctrl-C (default: ``<prog>: interrupted``).
    """

    def decorate(body: Callable[[Invocation], int | None]) -> Callable[..., int]:
        @wraps(body)
        def main(argv: Sequence[str] | None = None):
            argv = list(sys.argv[1:] if argv is None else argv)
            with exit_codes(interrupted or (lambda exc: f"{prog}: interrupted")):
                args, inv = parse(argv, prog, multirun)
                doc = sys.modules[body.__module__].__doc__ or ""
                code = 0 if inspect(args, inv, doc) else body(inv)
            raise SystemExit(code or 0)

        return main

    return decorate
