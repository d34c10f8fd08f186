"""Backwards-compatible entry points of the first starter generator (one-storey apartment).

``ApartmentSpec`` / ``make_apartment`` / ``export_apartment`` now build a one-storey house of
:mod:`habitat_fih.datasets.houses`; ``procedural_texture`` lives in
:mod:`habitat_fih.datasets.textures`. For a large benchmark scene use
``HouseSpec(seed=..., storeys=2, target_triangles=400_000)`` with
:func:`habitat_fih.datasets.houses.export_house`.
"""

from __future__ import annotations

from dataclasses import dataclass

import trimesh

from habitat_fih.datasets.houses import HouseSpec, export_house, make_house
from habitat_fih.datasets.textures import procedural_texture

__all__ = ["ApartmentSpec", "export_apartment", "make_apartment", "procedural_texture"]


@dataclass(frozen=True)
class ApartmentSpec:
    """A house of :mod:`habitat_fih.datasets.houses` (one storey unless ``storeys`` says otherwise)."""

    seed: int = 0
    subdivisions: int = 0
    storeys: int = 1
    target_triangles: int = 0

    def house_spec(self) -> HouseSpec:
        return HouseSpec(seed=self.seed, storeys=self.storeys, subdivisions=self.subdivisions,
                         target_triangles=self.target_triangles)


def make_apartment(spec: ApartmentSpec) -> trimesh.Scene:
    """The house as a trimesh.Scene (Y-up, metres, floor at y = 0)."""
    return make_house(spec.house_spec()).scene


def export_apartment(spec: ApartmentSpec, path: str) -> int:
    """Write the house to ``path`` (.glb, plus its metadata .json) atomically; returns the triangle count."""
    return export_house(spec.house_spec(), path).num_triangles
