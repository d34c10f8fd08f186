"""Small triangle meshes for the navigation tests (Y-up metres), shared by tests/sim."""

from __future__ import annotations

import numpy as np
import trimesh

from habitat_fih.sim.navigation import NavGrid


def P(x, y, z) -> np.ndarray:
    return np.array([x, y, z], dtype=np.float64)


def box(lo, hi) -> trimesh.Trimesh:
    """A closed axis-aligned box from corner ``lo`` to corner ``hi``."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    b = trimesh.creation.box(extents=hi - lo)
    b.apply_translation((lo + hi) / 2)
    return b


def build(parts, **kw) -> NavGrid:
    """The NavGrid of the concatenated ``parts`` (NavGrid.from_mesh keyword arguments pass on)."""
    m = trimesh.util.concatenate(parts)
    return NavGrid.from_mesh(m.vertices, m.faces, **kw)
