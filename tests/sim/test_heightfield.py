"""Tests for habitat_fih.sim.navigation.heightfield: Recast-style solid heightfield on meshes we did not
make as closed boxes -- single-sided walls, coincident faces, open-top and 1 cm walls, a table top
and a shelf, stairs and ramps -- and invariance to face order, winding and duplicated faces.

Expected values are closed-form geometry (tangent-and-arc path lengths around an obstacle inflated
by the agent radius, straight lines, clearances), not the code's own output. Where habitat-sim's
Recast rules decide (erosion in whole cells, heights on the 0.2 m voxel grid), the expected values
follow those rules, worked out by hand in each test:

* a face on a cell boundary blocks the cell on its +x / +z side; erosion by ceil(0.1 / 0.05) = 2
  cells then puts the region's edge 0.10 m from such a face on its -x / -z side and 0.15 m on its
  +x / +z side, with square corners (the chamfer distance reaches the diagonal cells);
* heights are voxels of 0.2 m from the mesh's lowest point (span tops rounded up, bottoms down, a
  span at least one voxel, so a flat face exactly on the boundary k spans [k, k + 1]): a floor on
  the mesh's lowest point sits at voxel 1; head room needs more than ceil(1.5 / 0.2) = 8 voxels, a
  step at most floor(0.2 / 0.2) = 1 voxel.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh
from navmeshes import P, box, build

from habitat_fih.sim.navigation import NavGrid

R, H, CLIMB = 0.1, 1.5, 0.2



def quad(corners) -> trimesh.Trimesh:
    """A single-sided quad (two triangles) from four corners in order."""
    return trimesh.Trimesh(np.asarray(corners, dtype=float), [[0, 1, 2], [0, 2, 3]], process=False)


def floor(x0=0.0, z0=0.0, x1=10.0, z1=10.0, y=0.0) -> trimesh.Trimesh:
    return quad([[x0, y, z0], [x0, y, z1], [x1, y, z1], [x1, y, z0]])




def wrap(a, c, r: float, u) -> float:
    """Shortest length from point ``a`` to the point ``c + r u`` of the circle (centre ``c``, radius
    ``r``) going along a tangent and then the arc (``u`` a unit radial direction): tangent length
    ``sqrt(d^2 - r^2)`` plus ``r`` times the arc angle (angle between a - c and u, minus acos(r/d))."""
    v = np.subtract(a, c)
    d = float(np.linalg.norm(v))
    theta = math.acos(float(np.dot(v, u)) / d)
    return math.sqrt(d * d - r * r) + r * (theta - math.acos(r / d))


def around_end(a, c, b, r: float) -> float:
    """Shortest path a -> b around a zero-thickness wall ending at ``c`` (a disk of radius r)."""
    va, vb = np.subtract(a, c), np.subtract(b, c)
    inner = math.acos(np.dot(va, vb) / (np.linalg.norm(va) * np.linalg.norm(vb)))
    da, db = math.dist(a, c), math.dist(b, c)
    sweep = 2 * math.pi - inner
    return math.sqrt(da * da - r * r) + math.sqrt(db * db - r * r) + r * (
        sweep - math.acos(r / da) - math.acos(r / db)
    )


def nearest_to_segment(g: NavGrid, p0, p1) -> float:
    """Smallest x-z distance from a navigable cell centre to the segment p0 -> p1."""
    c = np.stack([g.node_cx, g.node_cz], axis=1)
    a, b = np.asarray(p0, float), np.asarray(p1, float)
    t = np.clip(((c - a) @ (b - a)) / np.dot(b - a, b - a), 0, 1)
    return float(np.min(np.linalg.norm(c - (a + t[:, None] * (b - a)), axis=1)))


# ---------------------------------------------------------------------------- walls
@pytest.fixture(scope="module")
def single_wall() -> NavGrid:
    """Floor 10 x 10 m and ONE vertical single-sided quad at x = 5, z in [0, 8], 2.5 m high."""
    return build([floor(), quad([[5, 0, 0], [5, 0, 8], [5, 2.5, 8], [5, 2.5, 0]])])


def test_single_sided_wall_blocks_and_the_path_goes_around_its_end(single_wall: NavGrid):
    expected = around_end((2, 2), (5, 8), (8, 2), R)  # 13.64 m (habitat-sim's navmesh: 13.76 m)
    d = single_wall.geodesic_distance(P(2, 0, 2), [P(8, 0, 2)])
    assert d == pytest.approx(expected, rel=0.02)
    # every navigable cell centre keeps the agent radius from the wall
    assert nearest_to_segment(single_wall, (5, 0), (5, 8)) >= R - 1e-6
    # ... and the wall is not over-eroded: cells whose whole square is R + one cell away are free
    for x in (5 - R - 0.06, 5 + R + 0.06):
        assert single_wall.is_navigable(P(x, 0, 4.0))
    for x in (5 - R + 0.03, 5.0, 5 + R - 0.03):
        assert not single_wall.is_navigable(P(x, 0, 4.0))


def test_bounded_field_grows_until_the_path_fits(single_wall: NavGrid):
    """Start and goal 1 m apart on either side of the wall: the first field (a square of 2 x 1 + 3
    m around the goal) cannot hold the 12 m way round the wall's end; the answer is still exact."""
    a, b = (4.5, 2.0), (5.5, 2.0)
    expected = around_end(a, (5, 8), b, R)  # 12.0 m
    assert single_wall.geodesic_distance(P(a[0], 0, a[1]), [P(b[0], 0, b[1])]) == pytest.approx(
        expected, rel=0.02
    )
    (_, _, reach), = [v for k, v in single_wall.field_cache._items.items() if k[0] == 5.5]
    assert reach == math.inf or reach >= expected
    # the path's own points agree with it
    pts = single_wall.get_straight_shortest_path_points(P(a[0], 0, a[1]), P(b[0], 0, b[1]))
    length = sum(math.dist(p, q) for p, q in zip(pts[:-1], pts[1:], strict=True))
    assert length == pytest.approx(expected, rel=0.03)


def test_wall_flush_with_the_ceiling_coincident_faces():
    """Room 6 x 4 m with a 2.6 m ceiling slab; an inner box wall x in [3, 3.1], z in [0, 3] whose top
    face coincides with the ceiling's underside; the way round is the 1 m gap at z in [3, 4]."""
    parts = [
        box([0, -0.2, 0], [6, 0, 4]),
        box([0, 2.6, 0], [6, 2.8, 4]),
        box([3, 0, 0], [3.1, 2.6, 3]),
        box([-0.1, -0.2, -0.1], [6.1, 2.8, 0]), box([-0.1, -0.2, 4], [6.1, 2.8, 4.1]),
        box([-0.1, -0.2, 0], [0, 2.8, 4]), box([6, -0.2, 0], [6.1, 2.8, 4]),
    ]
    g = build(parts)
    assert not g.is_navigable(P(3.05, 0, 1.5))  # inside the wall
    assert not g.is_navigable(P(3.05, 2.6, 1.5), max_y_delta=0.1)  # nor on its top (no head room)
    assert g.is_navigable(P(3.05, 2.8, 1.5), max_y_delta=0.1)  # the roof (open sky) is walkable
    a, b = (1.5, 1.0), (4.5, 1.0)
    up = np.array([0.0, 1.0])
    del up
    # cell erosion (mesh minimum -0.1: x = 3.0, 3.1 and z = 3.0 are cell boundaries): the wall
    # blocks the columns x in [3.0, 3.15] up to z = 3.05; the region keeps x <= 2.90, x >= 3.25
    # and z >= 3.15 around it, with square corners (2.90, 3.15) and (3.25, 3.15): 5.403 m
    expected = math.dist(a, (2.9, 3.15)) + 0.35 + math.dist((3.25, 3.15), b)
    assert g.geodesic_distance(P(a[0], 0, a[1]), [P(b[0], 0, b[1])]) == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("thickness", [0.1, 0.01])
def test_open_top_double_sided_and_thin_walls(thickness: float):
    """A closed box wall (double-sided, open sky above) of 10 cm and of 1 cm blocks like a plane."""
    g = build([floor(), box([5, 0, 0], [5 + thickness, 2.5, 8])])
    up = np.array([0.0, 1.0])
    a, b = (2.0, 2.0), (8.0, 2.0)
    expected = wrap(a, (5, 8), R, up) + thickness + wrap(b, (5 + thickness, 8), R, up)
    assert g.geodesic_distance(P(2, 0, 2), [P(8, 0, 2)]) == pytest.approx(expected, rel=0.02)
    assert not g.is_navigable(P(5 + thickness / 2, 0, 4))
    assert not g.is_navigable(P(5 + thickness / 2, 2.5, 4), max_y_delta=0.1)  # top narrower than 2 R
    assert nearest_to_segment(g, (5, 0), (5, 8)) >= R - 1e-6
    assert nearest_to_segment(g, (5 + thickness, 0), (5 + thickness, 8)) >= R - 1e-6


# ---------------------------------------------------------------------------- head room
def test_table_top_blocks_the_floor_under_it():
    """A single quad 0.75 m above the floor over x, z in [4, 6]: no head room under it; its top is
    walkable (an island of its own, as in habitat-sim)."""
    g = build([floor(), quad([[4, 0.75, 4], [4, 0.75, 6], [6, 0.75, 6], [6, 0.75, 4]])])
    assert not g.is_navigable(P(5, 0, 5))
    assert g.is_navigable(P(5, 0.75, 5))
    assert g.island_id(P(5, 0.75, 5)) != g.island_id(P(1, 0, 1))
    down = np.array([0.0, -1.0])
    a, b = (2.0, 5.0), (8.0, 5.0)
    expected = wrap(a, (4, 4), R, down) + 2.0 + wrap(b, (6, 4), R, down)  # 6.57 m
    assert g.geodesic_distance(P(2, 0, 5), [P(8, 0, 5)]) == pytest.approx(expected, rel=0.02)
    # points are sampled on the largest island by default: the floor, not the table top
    assert g.sample_navigable_point(np.random.default_rng(0))[1] == pytest.approx(0.0)


def test_islands_under_region_min_size_are_dropped():
    """A 0.8 x 0.8 m stool top (121 cells after erosion < 20^2) is dropped as Recast drops regions
    under minRegionArea; region_min_size=0 keeps it.

    Its top covers columns [4.0, 4.8) (16 per side). The columns [4.8, 4.85] hold its +x / +z
    faces (on the boundary): solid up to the seat, not walkable. The first column, a 2-voxel drop
    from the floor, is a ledge; the ledge filter removes it, then erosion removes 2 cells from each
    side of the remaining 15: 11 x 11 cells."""
    parts = [floor(), box([4, 0, 4], [4.8, 0.5, 4.8])]
    assert not build(parts).is_navigable(P(4.4, 0.5, 4.4), max_y_delta=0.1)
    kept = build(parts, region_min_size=0)
    assert kept.is_navigable(P(4.4, 0.5, 4.4), max_y_delta=0.1)
    assert len(kept.island_sizes) == 2 and min(kept.island_sizes) == 11 * 11


def test_head_room_is_judged_on_the_voxel_grid():
    """The floor (the mesh's lowest point) is voxel 1; a shelf's underside at 2.0 m is voxel 10:
    9 voxels > 8, the agent passes under it. At 1.8 m (8 voxels, not more than 8) and at 1.6 m
    (7 voxels; habitat-sim's scan_like shelf) it does not, though 1.6 m exceeds the agent's 1.5 m."""
    g = build([floor(), box([4, 2.0, 4], [6, 2.2, 6])])
    assert g.is_navigable(P(5, 0, 5))
    assert g.geodesic_distance(P(2, 0, 5), [P(8, 0, 5)]) == pytest.approx(6.0, rel=0.01)
    for underside in (1.8, 1.6, 1.4):
        low = build([floor(), box([4, underside, 4], [6, underside + 0.2, 6])])
        assert not low.is_navigable(P(5, 0, 5)), underside


# ---------------------------------------------------------------------------- climb and slope
def stairs(rise: float, steps: int, tread: float = 0.3) -> list[trimesh.Trimesh]:
    """Floor 10 x 4 m; steps along +x from x = 3 (z in [0, 4]) up to a platform to x = 10."""
    parts = [floor(0, 0, 3, 4)]
    for k in range(1, steps + 1):
        x0 = 3 + tread * (k - 1)
        parts.append(box([x0, 0, 0], [x0 + tread, rise * k, 4]))
    top = 3 + tread * steps
    parts.append(box([top, 0, 0], [10, rise * steps, 4]))
    return parts


def test_stairs_within_max_climb_connect_and_higher_steps_do_not():
    g = build(stairs(0.15, 5))
    top = 0.15 * 5
    a, b = P(1, 0, 2), P(8, top, 2)
    assert g.island_id(a) == g.island_id(b) >= 0
    d = g.geodesic_distance(a, [b])
    assert math.dist((1, 0), (8, top)) <= d <= 7.0 + 5 * 0.15 + 0.05  # between the slope and the staircase's own length
    # the climb is counted in voxels, as in habitat-sim: with the floor on the mesh's lowest point
    # (voxel 1), 0.25 m risers top out at voxels 2, 3, 4 -- one voxel each, climbable ...
    aligned = build(stairs(0.25, 3))
    assert aligned.geodesic_distance(P(1, 0, 2), [P(8, 0.75, 2)]) < math.inf
    # ... but over a 0.18 m slab (floor 0.9 voxels up: voxel 1; first step 2.15: voxel 3) they
    # are not (the later steps, 3.4 and 4.65: voxels 4 and 5, are)
    slab = build([box([0, -0.18, 0], [10, 0, 4]), *stairs(0.25, 3)])
    assert slab.island_id(P(1, 0, 2)) != slab.island_id(P(8, 0.75, 2))
    assert slab.geodesic_distance(P(1, 0, 2), [P(8, 0.75, 2)]) == math.inf
    steep = build(stairs(0.45, 2))  # voxels 1, 3, 5: two voxels a step
    assert steep.geodesic_distance(P(1, 0, 2), [P(8, 0.9, 2)]) == math.inf


@pytest.mark.parametrize("degrees, walkable", [(20.0, True), (40.0, True), (50.0, False)])
def test_ramp_within_max_slope(degrees: float, walkable: bool):
    """A 1 m high ramp along +x from x = 2 (z in [0, 4]) to a platform; floor before it."""
    run = 1.0 / math.tan(math.radians(degrees))
    parts = [
        floor(0, 0, 2, 4),
        quad([[2, 0, 0], [2, 0, 4], [2 + run, 1, 4], [2 + run, 1, 0]]),
        box([2 + run, 0, 0], [2 + run + 4, 1, 4]),
    ]
    g = build(parts)
    a, b = P(1, 0, 2), P(2 + run + 2, 1, 2)
    d = g.geodesic_distance(a, [b])
    if walkable:
        expected = 1.0 + math.hypot(run, 1.0) + 2.0  # along the floor, up the ramp, on the platform
        assert d == pytest.approx(expected, rel=0.03)
    else:
        assert d == math.inf
        assert not g.is_navigable(P(2 + run / 2, 0.5, 2), max_y_delta=0.1)


# ---------------------------------------------------------------------------- orientation
def test_the_top_of_a_single_sided_ceiling_is_not_a_floor():
    """Front faces are counter-clockwise (glTF, Recast): a ceiling quad facing down is not walkable
    from above (no roof island, as in habitat-sim); the same quad facing up is a floor."""
    down = quad([[0, 3, 0], [10, 3, 0], [10, 3, 10], [0, 3, 10]])  # normal -y
    assert down.face_normals[0, 1] < 0
    g = build([floor(), down])
    assert g.is_navigable(P(5, 0, 5)) and not g.is_navigable(P(5, 3, 5), max_y_delta=0.1)
    up = quad([[0, 3, 0], [0, 3, 10], [10, 3, 10], [10, 3, 0]])
    assert up.face_normals[0, 1] > 0
    assert build([floor(), up]).is_navigable(P(5, 3, 5), max_y_delta=0.1)
    with pytest.raises(ValueError, match="no walkable surface"):  # the floor upside down
        NavGrid.from_mesh(floor().vertices, floor().faces[:, ::-1], name="flipped")


# ---------------------------------------------------------------------------- invariance
def test_open_floor_edges_erode_by_the_ledge_cell_and_two_more():
    """A bare 10 x 10 m floor: its edge cells are ledges (a drop off the grid), then erosion takes
    2 more cells: the region is [0.15, 9.85] both ways, as habitat-sim's (single_wall scene)."""
    g = NavGrid.from_mesh(floor().vertices, floor().faces)
    lo, hi = g.get_bounds()
    np.testing.assert_allclose([lo[0], lo[2], hi[0], hi[2]], [0.15, 0.15, 9.85, 9.85], atol=1e-5)
    assert g.num_nodes == 194 * 194


def test_faces_a_micrometre_off_a_cell_or_voxel_boundary_give_the_same_grid():
    """No rule hinges on an exact tie: a wall at x = 5 +- 1e-6 m (a cell boundary) and a shelf
    whose underside is 2.0 +- 1e-6 m (a voxel boundary over the floor at the mesh minimum) give
    the grid of the exact values."""
    def scene(dx: float, dy: float) -> NavGrid:
        wall = quad([[5 + dx, 0, 0], [5 + dx, 0, 8], [5 + dx, 2.5, 8], [5 + dx, 2.5, 0]])
        return build([floor(), wall, box([1, 2.0 + dy, 1], [3, 2.2, 3])])

    ref = scene(0.0, 0.0)
    assert ref.is_navigable(P(2, 0, 2))  # 9 voxels under the shelf
    for dx, dy in ((1e-6, 1e-6), (-1e-6, -1e-6), (1e-6, -1e-6)):
        g = scene(dx, dy)
        assert np.array_equal(g.node_col, ref.node_col) and np.array_equal(g.nbr, ref.nbr), (dx, dy)


def test_face_order_corners_and_duplicates_do_not_change_the_grid():
    parts = [
        floor(), quad([[5, 0, 0], [5, 0, 8], [5, 2.5, 8], [5, 2.5, 0]]),
        box([1, 0, 6], [2, 0.75, 7]), box([7, 1.6, 6], [8, 1.8, 7]),
        box([0, 2.6, 0], [10, 2.8, 10]), box([2, 0, 2], [2.1, 2.6, 4]),  # flush with the ceiling
        *stairs(0.15, 4)[1:],
    ]
    m = trimesh.util.concatenate(parts)
    v, f = np.asarray(m.vertices), np.asarray(m.faces)
    ref = NavGrid.from_mesh(v, f)
    rng = np.random.default_rng(3)
    steep = np.abs(m.face_normals[:, 1]) < 0.5
    walls_reversed = f.copy()
    walls_reversed[steep] = f[steep][:, ::-1]
    variants = {
        "shuffled": f[rng.permutation(len(f))],
        "rotated corners": np.roll(f, 1, axis=1),
        "every face twice": np.concatenate([f, f[rng.permutation(len(f))]]),
        "double-sided (every face and its reverse)": np.concatenate([f, f[:, ::-1]]),
        "walls' winding reversed": walls_reversed,
    }
    for name, faces in variants.items():
        g = NavGrid.from_mesh(v, faces)
        for attr in ("node_col", "node_y", "nbr", "clearance"):
            assert np.array_equal(getattr(g, attr), getattr(ref, attr)), (name, attr)
    # vertices renumbered (a different vertex order describing the same triangles)
    perm = rng.permutation(len(v))
    inv = np.argsort(perm)
    g = NavGrid.from_mesh(v[perm], inv[f])
    assert np.array_equal(g.node_col, ref.node_col) and np.array_equal(g.node_y, ref.node_y)


def test_bad_settings_name_the_value():
    m = floor()
    with pytest.raises(ValueError, match="cell_size must be > 0, got 0"):
        NavGrid.from_mesh(m.vertices, m.faces, cell_size=0.0, name="x")
    with pytest.raises(ValueError, match="max_slope"):
        NavGrid.from_mesh(m.vertices, m.faces, max_slope=95.0, name="x")
    with pytest.raises(ValueError, match="non-finite"):
        NavGrid.from_mesh(np.array([[0, 0, 0], [1, 0, 0], [np.nan, 0, 1]]), [[0, 1, 2]], name="x")


def test_cell_size_is_honoured():
    g = build([floor(0, 0, 4, 4)], cell_size=0.1)
    assert g.cell_size == 0.1
    # 4 x 4 m eroded by R: (4 - 2 R)^2 within one cell of rounding per side
    assert g.num_nodes * 0.01 == pytest.approx((4 - 2 * R) ** 2, abs=4 * 4 * 0.1)
