"""The grid sweeper: Hydra's sweep overrides in, one grid table on Ray out.

Unlike Hydra's BasicSweeper, which composes a full config per job (~50 ms
each) and launches one job per point, this sweeper composes once per
combination of config-group options, expands scalar values into columns
(:mod:`pipeline.sweep.grid`) and evaluates chunks of points as Ray tasks
(:mod:`pipeline.sweep.run`). Hydra registers it through the shim in
``hydra_plugins/asi_slowdown``; ``conf/config.yaml`` makes it the default.

Heavy imports (Ray, pyarrow, the model) happen in :meth:`sweep`, not at
import: Hydra imports every plugin whenever any app starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from asi_slowdown.pipeline.configuration.errors import exit_codes


@dataclass
class GridSweeperConf:
    """``hydra/sweeper: grid``; ``params`` maps a key to its sweep (``cpus: 1,2,4``)."""

    _target_: str = "hydra_plugins.asi_slowdown.grid_sweeper.GridSweeper"
    params: dict[str, Any] = field(default_factory=dict)  # +hydra.sweeper.params.k=... adds


class GridSweeperImpl(Sweeper):
    """Validate and expand the whole grid, then run it on Ray into the results store.

    Exits (``SystemExit``) with 2 on bad input, before anything is written,
    with 1 if some chunks failed and with 130 if interrupted; returns the
    :class:`pipeline.sweep.SweepResult` otherwise.
    """

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        # No launcher: points run as Ray tasks, not as Hydra jobs (sweep() refuses
        # hydra/launcher=... with one line).
        self.hydra_context = hydra_context
        self.config = config

    def sweep(self, arguments: list[str]) -> Any:
        from asi_slowdown.pipeline.configuration.checks import check_launcher
        from asi_slowdown.pipeline.configuration.compose import Composer
        from asi_slowdown.pipeline.configuration.sweeps import sweeper_params
        from asi_slowdown.pipeline.sweep.run import EXIT_FAILED_POINTS, interrupted_line, run

        assert self.config is not None and self.hydra_context is not None
        # Ray is already stopped in order (raysession.stop) when an interrupt gets here
        with exit_codes(interrupted_line):
            check_launcher(self.config)
            result = run(
                [*sweeper_params(self.params), *arguments],
                Composer(loader=self.hydra_context.config_loader),
                self.config,
                config_name=self.config.hydra.job.config_name,
                sweep_dir=Path(self.config.hydra.sweep.dir),
            )
        if not result.ok:
            raise SystemExit(EXIT_FAILED_POINTS)
        return result
