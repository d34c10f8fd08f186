"""Configuration: habitat-fih's Hydra search-path plugin and config helpers.

Importing :mod:`habitat_fih` registers :class:`HabitatFIHConfigPlugin` with Hydra (as habitat
registers its own), so config names under ``configs/habitat/`` resolve in any Hydra compose call.
A regular (non-editable) install also ships ``hydra_plugins/habitat_fih_plugin`` which Hydra
discovers without importing habitat_fih first.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence

from habitat_fih.config.search_path import HabitatFIHConfigPlugin

__all__ = ["HabitatFIHConfigPlugin", "config_path", "get_config", "register"]


def register() -> None:
    """Register the search-path plugin with Hydra (idempotent)."""
    from habitat.config.default_structured_configs import register_hydra_plugin

    register_hydra_plugin(HabitatFIHConfigPlugin)


def config_path(name: str) -> str:
    """Absolute path of a packaged config, e.g. ``benchmark/nav/fih_vlnce_synthetic``."""
    rel = name if name.endswith(".yaml") else f"{name}.yaml"
    path = importlib.resources.files("habitat_fih.configs").joinpath(rel)
    if not path.is_file():
        raise FileNotFoundError(
            f"config {name!r} not found in habitat_fih's configs (looked for {path})"
        )
    return str(path)


def get_config(name: str, overrides: Sequence[str] | None = None):
    """``habitat.get_config`` for a config shipped by habitat-fih (by name, with overrides).

    NDTW's ``split`` (which picks ``{split}_gt.json.gz``) is set to the dataset's split, since
    habitat hands each measure its config node alone (an interpolation cannot reach the dataset).
    """
    from habitat.config import read_write
    from habitat.config.default import get_config as habitat_get_config

    cfg = habitat_get_config(config_path(name), list(overrides or []))
    ndtw = cfg.habitat.task.measurements.get("ndtw")
    if ndtw is not None and ndtw.split != cfg.habitat.dataset.split:
        with read_write(cfg):
            ndtw.split = cfg.habitat.dataset.split
    return cfg
