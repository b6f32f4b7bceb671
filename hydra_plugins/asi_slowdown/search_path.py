"""Appends the user's config directory (and ``--config-dir``s) to Hydra's search path.

The directories come from :func:`pipeline.configuration.compose.search_dirs`;
Hydra discovers search-path plugins only under ``hydra_plugins``.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class AsiSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from asi_slowdown.pipeline.configuration.compose import search_dirs

        for path in search_dirs():
            search_path.append(provider="asi-slowdown", path=path)
