"""``hydra/sweeper: grid``: registers :class:`pipeline.sweep.sweeper.GridSweeperImpl` with Hydra.

Hydra instantiates sweepers only from classes defined under the
``hydra_plugins`` namespace package, so this module holds a named subclass
and the config-store entry, nothing else.
"""

from hydra.core.config_store import ConfigStore

from asi_slowdown.pipeline.sweep.sweeper import GridSweeperConf, GridSweeperImpl


class GridSweeper(GridSweeperImpl):
    """See :class:`pipeline.sweep.sweeper.GridSweeperImpl`."""


ConfigStore.instance().store(
    group="hydra/sweeper", name="grid", node=GridSweeperConf, provider="asi-slowdown"
)
