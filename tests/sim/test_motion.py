"""Tests for habitat_fih.sim.motion (habitat-sim's try_step with and without sliding).

Expected positions come from the geometry and Recast's cell rules (habitat-sim's navmesh): a wall
face lying on a cell boundary blocks the cell on its +z side, and erosion by ``agent_radius`` =
2 cells removes the next two, so the region starts one cell plus the radius from such a face
(0.15 m; habitat-sim's region in the same situation, scripts/parity/README.md); sliding keeps the
full tangential component of a step.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

import habitat_fih  # noqa: F401  (installs the habitat-sim stand-ins)
from habitat_fih.sim.motion import try_step
from habitat_fih.sim.navigation import NavGrid

R = 0.1
CELL = 0.05
#: where the region starts in front of the z = 0 wall face (on a cell boundary: see the docstring)
WALL_EDGE = CELL + R


def box(lo, hi) -> trimesh.Trimesh:
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    b = trimesh.creation.box(extents=hi - lo)
    b.apply_translation((lo + hi) / 2)
    return b


def P(x, y, z) -> np.ndarray:
    return np.array([x, y, z], dtype=np.float64)


@pytest.fixture(scope="module")
def room() -> NavGrid:
    """6 x 4 m room (walls' inner faces at x = 0, 6 and z = 0, 4); a 0.15 m step up for x >= 4,
    a 0.4 m ledge for z >= 3 at x in [1, 3], and a thin wall x in [2.95, 3.05], z in [1.5, 2.5]."""
    parts = [
        box([0, -0.2, 0], [6, 0, 4]),
        box([-0.1, -0.2, -0.1], [6.1, 2.5, 0]),
        box([-0.1, -0.2, 4], [6.1, 2.5, 4.1]),
        box([-0.1, -0.2, 0], [0, 2.5, 4]),
        box([6, -0.2, 0], [6.1, 2.5, 4]),
        box([4, -0.1, 0], [6, 0.15, 4]),
        box([1, -0.1, 3], [3, 0.4, 4]),
        box([2.95, -0.1, 1.5], [3.05, 2.5, 2.5]),
    ]
    m = trimesh.util.concatenate(parts)
    return NavGrid.from_mesh(m.vertices, m.faces)


@pytest.mark.parametrize("sliding", [True, False])
def test_straight_into_wall_stops_at_wall(room: NavGrid, sliding: bool):
    start, end = P(2, 0, 0.4), P(2, 0, -0.2)
    pos, collided = try_step(room, start, end, sliding)
    assert collided
    assert pos[0] == pytest.approx(2.0, abs=1e-4)
    assert pos[2] == pytest.approx(WALL_EDGE, abs=1e-3)
    assert room.is_navigable(pos)
    assert try_step(room, start, end, sliding)[0] == pytest.approx(pos)


def test_unobstructed_step_is_exact(room: NavGrid):
    start, end = P(2, 0, 1.3), P(2.2, 0, 1.15)
    for sliding in (True, False):
        pos, collided = try_step(room, start, end, sliding)
        assert not collided
        np.testing.assert_allclose(pos, end, atol=1e-6)


def test_diagonal_into_wall_slides(room: NavGrid):
    start = P(2, 0, 0.3)
    delta = np.array([0.2, 0.0, -0.4])
    pos, collided = try_step(room, start, start + delta, True)
    assert collided
    assert pos[0] == pytest.approx(2.2, abs=1e-4)  # tangential component kept in full
    assert pos[2] == pytest.approx(WALL_EDGE, abs=1e-3)
    # without sliding the agent stops on the segment where it meets the boundary
    pos2, collided2 = try_step(room, start, start + delta, False)
    assert collided2
    t = (pos2[2] - start[2]) / delta[2]
    assert pos2[0] == pytest.approx(start[0] + t * delta[0], abs=1e-4)
    assert pos2[2] == pytest.approx(WALL_EDGE, abs=1e-3)
    # sliding along a wall repeatedly keeps moving along it
    p = pos
    for _ in range(4):
        p, _ = try_step(room, p, p + delta, True)
    assert p[0] == pytest.approx(2.2 + 4 * 0.2, abs=1e-3)


def test_step_is_climbed_and_height_followed(room: NavGrid):
    start, end = P(3.9, 0, 1.0), P(4.15, 0, 1.0)
    pos, collided = try_step(room, start, end, True)
    assert not collided
    assert pos[0] == pytest.approx(4.15, abs=1e-6)
    assert pos[1] == pytest.approx(0.15, abs=1e-3)
    back, _ = try_step(room, pos, P(3.8, 0.15, 1.0), True)
    assert back[1] == pytest.approx(0.0, abs=1e-3)


def test_high_ledge_blocks(room: NavGrid):
    start, end = P(2, 0, 2.8), P(2, 0, 3.2)  # 0.4 m > max_climb
    pos, collided = try_step(room, start, end, True)
    assert collided
    assert pos[1] == pytest.approx(0.0, abs=1e-3)
    assert pos[2] == pytest.approx(3 - R, abs=CELL / 2 + 1e-3)


def test_never_passes_through_thin_wall(room: NavGrid):
    for sliding in (True, False):
        pos, collided = try_step(room, P(2.8, 0, 2.0), P(3.2, 0, 2.0), sliding)
        assert collided and pos[0] < 2.95
    # diagonal past the wall's end slides around nothing: it must stay on its side or go round
    pos, _ = try_step(room, P(2.84, 0, 2.0), P(3.3, 0, 2.2), True)
    assert pos[0] < 2.95


def test_off_grid_start_is_snapped(room: NavGrid):
    pos, _ = try_step(room, P(2, 0, 0.05), P(2, 0, 0.5), True)  # start inside the clearance band
    assert room.is_navigable(pos)
