"""Hydra search-path plugin that adds habitat-fih's configs (``configs/habitat/`` in the repo,
installed as the resource package ``habitat_fih.configs``).

Hydra discovers it by itself through the ``hydra_plugins.habitat_fih_plugin`` namespace package,
so ``--config-name=benchmark/nav/fih_vlnce_synthetic`` (and ``fih/...``) resolve in any Hydra app,
including ``habitat_baselines.run`` and ``habitat.get_config``. It appends its own entry with its
own provider name and never replaces habitat's.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

PROVIDER = "habitat_fih"
SEARCH_PATH = "pkg://habitat_fih.configs"


class HabitatFIHConfigPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        for entry in search_path.get_path():
            if entry.provider == PROVIDER:
                return
        search_path.append(provider=PROVIDER, path=SEARCH_PATH)
