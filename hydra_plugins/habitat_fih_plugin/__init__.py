"""Hydra plugin discovery entry for habitat-fih (see ``habitat_fih.config.search_path``)."""

from habitat_fih.config.search_path import HabitatFIHConfigPlugin

__all__ = ["HabitatFIHConfigPlugin"]
