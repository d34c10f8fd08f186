"""Tests for habitat_fih.sim.navigation: navigability, clearance, levels, geodesics, paths.

Scenes are built from trimesh boxes; expected values are analytic (geometry), not the code's output.
Where Recast's cell rules decide (see tests/sim/test_heightfield.py): a face on a cell boundary
blocks the cell on its +x / +z side, and the region's edge is then 0.10 m from it on its -x / -z
side and 0.15 m on its +x / +z side; head room needs more than 8 voxels of 0.2 m.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh
from navmeshes import P, box, build

import habitat_fih  # noqa: F401  (installs the habitat-sim stand-ins)
from habitat_fih.sim.navigation import NavGrid

R = 0.1  # agent radius (habitat default)
NEAR, FAR = 0.10, 0.15  # region edge from a face on a cell boundary: its -x / -z side, +x / +z side




def walls_around(x0, z0, x1, z1, y0=-0.1, y1=2.5, t=0.1) -> list[trimesh.Trimesh]:
    return [
        box([x0 - t, y0, z0 - t], [x1 + t, y1, z0]),
        box([x0 - t, y0, z1], [x1 + t, y1, z1 + t]),
        box([x0 - t, y0, z0], [x0, y1, z1]),
        box([x1, y0, z0], [x1 + t, y1, z1]),
    ]



def _angle(v) -> float:
    return math.atan2(v[1], v[0])


def tangent_arc(a, c, r: float, sweep: float) -> float:
    """Length from point ``a`` to a disk (centre ``c``, radius ``r``) wrapped by ``sweep`` radians
    (the angle from ``a``'s direction seen from ``c`` to the leaving direction): tangent + arc."""
    d = math.dist(a, c)
    return math.sqrt(d * d - r * r) + r * (sweep - math.acos(r / d))


def around_corner(a, c, b, r: float) -> float:
    """Shortest path a -> b around a convex corner ``c`` inflated to a disk of radius ``r``."""
    va, vb = np.subtract(a, c), np.subtract(b, c)
    inner = math.acos(np.dot(va, vb) / (np.linalg.norm(va) * np.linalg.norm(vb)))
    sweep = 2 * math.pi - inner  # the path passes on the free side of the corner
    da, db = math.dist(a, c), math.dist(b, c)
    return (
        math.sqrt(da * da - r * r)
        + math.sqrt(db * db - r * r)
        + r * (sweep - math.acos(r / da) - math.acos(r / db))
    )


@pytest.fixture(scope="module")
def corridor() -> NavGrid:
    """10 x 2 m corridor with a 1 x 1 m box obstacle against the z=0 wall at x in [4, 5]."""
    parts = [
        box([0, -0.2, 0], [10, 0, 2]),
        *walls_around(0, 0, 10, 2),
        box([4, -0.1, 0], [5, 1.0, 1]),
    ]
    return build(parts)


@pytest.fixture(scope="module")
def l_corridor() -> NavGrid:
    """L-shaped corridor 1 m wide: leg A x in [0, 6], z in [0, 1]; leg B x in [5, 6], z in [0, 6]."""
    parts = [
        box([0, -0.2, 0], [6, 0, 1]),
        box([5, -0.2, 1], [6, 0, 6]),
        box([-0.1, -0.1, -0.1], [6.1, 2.5, 0]),  # south wall
        box([-0.1, -0.1, 0], [0, 2.5, 1]),  # west end
        box([-0.1, -0.1, 1], [5, 2.5, 1.1]),  # north wall of leg A (inner side)
        box([4.9, -0.1, 1.1], [5, 2.5, 6.1]),  # west wall of leg B (inner side)
        box([6, -0.1, -0.1], [6.1, 2.5, 6.1]),  # east wall
        box([4.9, -0.1, 6], [6.1, 2.5, 6.1]),  # north end
    ]
    return build(parts)


# Two-storey building: ground floor y=0 and upper floor y=3 over x in [0, 10], z in [0, 4]; a straight
# flight of 20 steps (0.15 m rise, 0.2 m tread) climbs along +x from x=2 to x=6 in z in [0, 1.2]
# under a stairwell opening; a wall at z in [1.2, 1.3] closes the flight's side on both floors.
def two_storey_parts() -> list[trimesh.Trimesh]:
    parts = [box([0, -0.2, 0], [10, 0, 4])]
    parts += [
        box([0, 2.8, 1.2], [10, 3.0, 4]),
        box([0, 2.8, 0], [2, 3.0, 1.2]),
        box([6, 2.8, 0], [10, 3.0, 1.2]),
    ]
    for k in range(1, 21):
        parts.append(box([2 + 0.2 * (k - 1), 0.0, 0.0], [2 + 0.2 * k, 0.15 * k, 1.2]))
    parts.append(box([2, -0.1, 1.2], [6, 5.5, 1.3]))
    parts += walls_around(0, 0, 10, 4, y0=-0.1, y1=5.5)
    return parts


@pytest.fixture(scope="module")
def two_storey() -> NavGrid:
    return build(two_storey_parts())


# ---------------------------------------------------------------------------- basics
def test_empty_scene_raises_with_name():
    wall = box([0, 0, 0], [0.1, 2.0, 5.0])  # only a thin wall: its top is narrower than 2 * radius
    with pytest.raises(ValueError, match="thin-wall"):
        NavGrid.from_mesh(wall.vertices, wall.faces, name="thin-wall")


def test_bounds_and_topdown(corridor: NavGrid):
    lo, hi = corridor.get_bounds()
    np.testing.assert_allclose(lo[[0, 2]], [FAR, FAR], atol=1e-4)  # faces x = 0, z = 0
    np.testing.assert_allclose(hi[[0, 2]], [10 - NEAR, 2 - NEAR], atol=1e-4)  # faces x = 10, z = 2
    view = corridor.get_topdown_view(0.1, 0.0)
    assert view.shape == (int((hi[2] - lo[2]) / 0.1), int((hi[0] - lo[0]) / 0.1))
    # pixel (h, w) is at (lo.x + w * 0.1, lo.z + h * 0.1): the obstacle x in [4, 5], z < 1 (+ radius)
    w = int(round((4.5 - lo[0]) / 0.1))
    h = int(round((0.5 - lo[2]) / 0.1))
    assert not view[h, w]
    assert view[int(round((1.6 - lo[2]) / 0.1)), w]
    assert view[h, int(round((2.0 - lo[0]) / 0.1))]
    assert not corridor.get_topdown_view(0.1, 2.0).any()  # no level near y=2


def test_clearance_from_walls(corridor: NavGrid):
    # inner face of the wall at z = 0, on a cell boundary (mesh minimum -0.1): the wall blocks the
    # cell z in [0, 0.05]; erosion by 2 cells leaves the floor from z = 0.15
    assert not corridor.is_navigable(P(2, 0, 0.04))
    assert not corridor.is_navigable(P(2, 0, FAR - 0.02))
    assert corridor.is_navigable(P(2, 0, FAR + 0.02))
    assert corridor.is_navigable(P(2, 0, 1.0))
    # the wall at z = 2 (face on a boundary, on its +z side): floor up to z = 1.90
    assert corridor.is_navigable(P(2, 0, 2 - NEAR - 0.02))
    assert not corridor.is_navigable(P(2, 0, 2 - NEAR + 0.02))
    assert not corridor.is_navigable(P(4.5, 0, 0.5))  # inside the obstacle
    assert not corridor.is_navigable(P(4.5, 0, 1.0 + FAR - 0.02))
    assert corridor.is_navigable(P(4.5, 0, 1.0 + FAR + 0.02))
    assert corridor.is_navigable(P(4 - NEAR - 0.02, 0, 0.5))  # the obstacle's faces x = 4 and 5
    assert not corridor.is_navigable(P(4 - NEAR + 0.02, 0, 0.5))
    assert not corridor.is_navigable(P(5 + FAR - 0.02, 0, 0.5))
    assert corridor.is_navigable(P(5 + FAR + 0.02, 0, 0.5))
    # the metric clearance is kept: distance to the obstacle surface minus the radius
    assert corridor.distance_to_obstacle(P(2, 0, 0.3)) == pytest.approx(0.3 - R, abs=0.03)
    assert not corridor.is_navigable(P(2, 1.0, 1.0))  # 1 m above the floor: beyond max_y_delta
    assert corridor.is_navigable(P(2, 0.4, 1.0))


def test_low_ceiling_and_steep_slope_not_navigable():
    parts = [box([0, -0.2, 0], [12, 0, 3]), *walls_around(0, 0, 12, 3)]
    parts.append(box([2, 1.2, 0], [4, 1.4, 3]))  # ceiling at 1.2 m < agent height over x in [2, 4]
    # voxels from the mesh minimum y = -0.2: the floor (a flat face on the boundary of voxel 1)
    # spans voxel [1, 2]; head room needs more than 8 voxels
    parts.append(box([6, 2.0, 0], [8, 2.2, 3]))  # ceiling at 2.0 m over x in [6, 8]: voxel 11, 9 free
    parts.append(box([4.5, 1.6, 0], [5.5, 1.8, 3]))  # 1.6 m: voxel 9, 7 free: too low
    ramp = box(
        [-1.0, -0.05, 0.5], [1.0, 0.05, 2.5]
    )  # 2 m ramp tilted 50 deg (> max_slope) at x ~ 10
    ramp.apply_transform(trimesh.transformations.rotation_matrix(np.deg2rad(50), [0, 0, 1]))
    ramp.apply_translation([10.0, 0.5, 0.0])
    parts.append(ramp)
    g = build(parts)
    assert not g.is_navigable(P(3, 0, 1.5))
    assert not g.is_navigable(P(5, 0, 1.5))
    assert g.is_navigable(P(7, 0, 1.5))
    assert g.is_navigable(P(1, 0, 1.5))
    # no navigable surface on the steep ramp (its surface at x=10 is ~0.5 m up)
    for x in (9.8, 10.0, 10.2):
        y = 0.5 + (x - 10.0) * math.tan(np.deg2rad(50))
        assert not g.is_navigable(P(x, y, 1.5), max_y_delta=0.3)
    # a gentle 20-degree ramp is navigable
    ramp2 = box([-1.0, -0.05, 0.0], [1.0, 0.05, 2.0])
    ramp2.apply_transform(trimesh.transformations.rotation_matrix(np.deg2rad(20), [0, 0, 1]))
    g2 = build([ramp2])
    assert g2.is_navigable(P(0.0, 0.05 / math.cos(np.deg2rad(20)), 1.0), max_y_delta=0.1)


# ---------------------------------------------------------------------------- geodesics
def test_geodesic_straight_and_around_obstacle(corridor: NavGrid):
    a, b = P(1, 0, 1), P(9, 0, 1)
    assert corridor.geodesic_distance(a, [b]) == pytest.approx(8.0, rel=0.01)
    # start/goal at z=0.5 behind the obstacle (x in [4, 5], z < 1): detour over its inflated corners
    a2, b2 = P(2, 0, 0.5), P(7, 0, 0.5)
    # wrap the disks at the corners (4, 1) and (5, 1), run 1 m along z = 1 + R in between
    sweep = _angle(np.subtract((2, 0.5), (4, 1))) % (2 * math.pi) - math.pi / 2
    expected = 2 * tangent_arc((2, 0.5), (4, 1), R, sweep) + 1.0
    assert corridor.geodesic_distance(a2, [b2]) == pytest.approx(expected, rel=0.02)
    # min over targets
    assert corridor.geodesic_distance(a, [b, P(3, 0, 1)]) == pytest.approx(2.0, rel=0.02)


def test_geodesic_l_corridor(l_corridor: NavGrid):
    a, b = P(1, 0, 0.5), P(5.5, 0, 5)
    expected = around_corner((1, 0.5), (5, 1), (5.5, 5), R)  # inner corner of the L at (5, 1)
    assert l_corridor.geodesic_distance(a, [b]) == pytest.approx(expected, rel=0.02)
    assert l_corridor.geodesic_distance(b, [a]) == pytest.approx(expected, rel=0.02)


def test_geodesic_is_continuous(l_corridor: NavGrid):
    b = P(5.5, 0, 5)
    xs = np.linspace(1.0, 1.3, 31)
    d = np.array([l_corridor.geodesic_distance(P(x, 0, 0.5), [b]) for x in xs])
    assert np.all(np.abs(np.diff(d)) < 0.012)  # steps of 0.01 m
    assert np.all(np.diff(d) < 0)


def test_islands_unreachable_is_inf():
    parts = [box([0, -0.2, 0], [4, 0, 4]), *walls_around(0, 0, 4, 4)]
    parts += [box([6, -0.2, 0], [10, 0, 4]), *walls_around(6, 0, 10, 4)]
    g = build(parts)
    a, b = P(2, 0, 2), P(8, 0, 2)
    assert g.island_id(a) != g.island_id(b) and g.island_id(a) >= 0
    assert g.geodesic_distance(a, [b]) == math.inf
    assert g.geodesic_distance(a, [b, P(3, 0, 2)]) == pytest.approx(
        math.dist((2, 2), (3, 2)), rel=0.02
    )
    assert g.geodesic_distance(P(50, 0, 50), [a]) == math.inf
    assert g.get_straight_shortest_path_points(a, b) == []
    rng = np.random.default_rng(0)
    pts = [g.sample_navigable_point(rng, island="all") for _ in range(200)]
    assert all(g.is_navigable(p) for p in pts)
    xs = np.array([p[0] for p in pts])
    assert 0.3 < np.mean(xs < 5) < 0.7  # uniform over both rooms
    default = [g.sample_navigable_point(rng) for _ in range(50)]  # the largest island only
    assert len({g.island_id(p) for p in default}) == 1
    big = [g.sample_navigable_point(rng, island=g.island_id(a)) for _ in range(20)]
    assert all(p[0] < 5 for p in big)


def test_snap_point(corridor: NavGrid):
    s = corridor.snap_point(P(2, 0.3, -0.5))  # outside the wall: nearest navigable point
    assert s[0] == pytest.approx(2, abs=0.03) and s[2] == pytest.approx(FAR, abs=1e-3)
    assert s[1] == pytest.approx(0, abs=1e-3)
    assert np.all(np.isnan(corridor.snap_point(P(50, 0, 50))))


def _assert_path_navigable(g: NavGrid, pts: list[np.ndarray]) -> None:
    for p, q in zip(pts[:-1], pts[1:], strict=True):
        for t in np.linspace(0, 1, 50):
            x = (1 - t) * np.asarray(p, dtype=float) + t * np.asarray(q, dtype=float)
            assert g.is_navigable(x, max_y_delta=0.6), (p, q, t)


def test_shortest_path_points(l_corridor: NavGrid):
    a, b = P(1, 0, 0.5), P(5.5, 0, 5)
    pts = l_corridor.get_straight_shortest_path_points(a, b)
    assert len(pts) >= 3
    np.testing.assert_allclose(pts[0], a, atol=1e-4)
    np.testing.assert_allclose(pts[-1], b, atol=1e-4)
    _assert_path_navigable(l_corridor, pts)
    length = sum(np.linalg.norm(np.subtract(q, p)) for p, q in zip(pts[:-1], pts[1:], strict=True))
    assert length == pytest.approx(l_corridor.geodesic_distance(a, [b]), rel=0.02)


# ---------------------------------------------------------------------------- levels
def test_two_storey_levels(two_storey: NavGrid):
    up, down = P(8, 3.0, 2.5), P(8, 0.0, 2.5)
    assert two_storey.is_navigable(up) and two_storey.is_navigable(down)
    assert two_storey.locate(up) != two_storey.locate(down)
    assert two_storey.floor_height(P(8, 2.9, 2.5)) == pytest.approx(3.0, abs=1e-3)
    assert two_storey.floor_height(P(8, 0.5, 2.5)) == pytest.approx(0.0, abs=1e-3)
    assert two_storey.island_id(up) == two_storey.island_id(down)
    # under the flight (solid steps) is not navigable; on the 10th step it is
    assert not two_storey.is_navigable(P(4.1, 0.0, 0.6), max_y_delta=0.3)
    assert two_storey.is_navigable(P(3.9, 1.5, 0.6), max_y_delta=0.05)
    top_ground = two_storey.get_topdown_view(0.1, 0.0)
    top_upper = two_storey.get_topdown_view(0.1, 3.0)
    assert top_ground.any() and top_upper.any() and not np.array_equal(top_ground, top_upper)


def test_two_storey_geodesic_via_stairs(two_storey: NavGrid):
    a, b = P(1, 0, 0.6), P(8, 3.0, 0.6)
    # flat 1 m, flight sqrt(4^2 + 3^2) = 5 m (3-D length), flat 2 m, all along z = 0.6
    assert two_storey.geodesic_distance(a, [b]) == pytest.approx(8.0, rel=0.03)
    assert two_storey.geodesic_distance(b, [a]) == pytest.approx(8.0, rel=0.03)
    # directly below b: around the flight's side wall (corners (6, 1.3), (2, 1.3)), round the wall's
    # west end (quarter arc, 0.1 m, quarter arc) onto the first step at z = 1.1, then a straight
    # line to b: 3-D length over the flight (slope 0.75 along x) plus the flat upper floor.
    below = P(8, 0.0, 0.6)
    sweep = math.pi / 2 - math.atan2(0.6 - 1.3, 8 - 6)  # from b' direction round to heading -x
    ground = tangent_arc((8, 0.6), (6, 1.3), R, sweep) + 4.0 + math.pi * R + 0.1
    dz = 0.5 * 4 / 6  # z drops 0.5 m over the 6 m from (2, 1.1) to (8, 0.6)
    upper = math.sqrt(4**2 * (1 + 0.75**2) + dz**2) + math.sqrt(2**2 + (0.5 - dz) ** 2)
    assert two_storey.geodesic_distance(below, [b]) == pytest.approx(ground + upper, rel=0.04)
    pts = two_storey.get_straight_shortest_path_points(a, b)
    assert (
        pts
        and pts[-1][1] == pytest.approx(3.0, abs=1e-3)
        and pts[0][1] == pytest.approx(0.0, abs=1e-3)
    )


def test_field_is_cached(l_corridor: NavGrid):
    b = P(5.5, 0, 4.0)
    t1, f1 = l_corridor.distance_field(b)
    t2, f2 = l_corridor.distance_field(b)
    assert f1 is f2 and t1 == t2


def test_house_20m_rooms_and_doors():
    """A 20 x 20 m house of 4 x 4 rooms joined by 1 m doors (its build time is measured by
    benchmarks/bench_navmesh.py, not asserted here)."""
    parts = [
        box([0, -0.2, 0], [20, 0, 20]),
        *walls_around(0, 0, 20, 20),
        box([0, 2.6, 0], [20, 2.8, 20]),
    ]
    for k in range(1, 4):  # 4 x 4 rooms of 5 m with a 1 m door in the middle of every inner wall
        for j in range(4):
            parts.append(box([5 * k, -0.1, 5 * j], [5 * k + 0.1, 2.6, 5 * j + 2]))
            parts.append(box([5 * k, -0.1, 5 * j + 3], [5 * k + 0.1, 2.6, 5 * j + 5]))
            parts.append(box([5 * j, -0.1, 5 * k], [5 * j + 2, 2.6, 5 * k + 0.1]))
            parts.append(box([5 * j + 3, -0.1, 5 * k], [5 * j + 5, 2.6, 5 * k + 0.1]))
    g = build(parts)
    assert not g.is_navigable(P(5.05, 0, 1.0))  # inside an inner wall
    assert not g.is_navigable(P(5.05, 0, 2.0 + 0.05))  # the door post's wall end
    assert g.is_navigable(P(5.05, 0, 2.5))  # the door
    # room centre to room centre through the doors in a straight line along z = 2.5
    assert g.geodesic_distance(P(2.5, 0, 2.5), [P(17.5, 0, 2.5)]) == pytest.approx(15.0, rel=0.01)
    d = g.geodesic_distance(P(2, 0, 2), [P(18, 0, 18)])
    assert math.dist((2, 2), (18, 18)) < d < 1.2 * math.dist((2, 2), (18, 18))
