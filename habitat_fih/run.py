"""Hydra entry point of habitat-fih, mirroring ``habitat_baselines.run`` on machines without
habitat-sim (it imports habitat_fih, hence the import compatibility layer, first):

    python -m habitat_fih.run --config-name=fih/synthetic_tiny [overrides]
    python -m habitat_fih.run --config-name=fih/synthetic_tiny habitat_baselines.evaluate=True

Config names resolve in habitat-fih's configs (``configs/habitat/``) and habitat's own.
"""

from __future__ import annotations

import habitat_fih  # noqa: F401  (compat + registrations; must precede habitat_baselines)

# isort: split
import hydra
from habitat.config.default import patch_config
from habitat.config.default_structured_configs import register_hydra_plugin
from habitat_baselines.config.default_structured_configs import HabitatBaselinesConfigPlugin
from habitat_baselines.run import execute_exp
from omegaconf import DictConfig

import habitat_fih.trainers  # noqa: F401  (registers the fih trainer + its config)


@hydra.main(
    version_base=None, config_path="pkg://habitat_fih.configs", config_name="fih/synthetic_tiny"
)
def main(cfg: DictConfig) -> None:
    cfg = patch_config(cfg)
    execute_exp(cfg, "eval" if cfg.habitat_baselines.evaluate else "train")


if __name__ == "__main__":
    register_hydra_plugin(HabitatBaselinesConfigPlugin)
    main()
