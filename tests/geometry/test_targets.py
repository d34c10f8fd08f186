"""Tests for habitat_fih.geometry.targets (numpy) against closed-form scenes.

Depth maps are built analytically here (ray / plane intersections written out in this file), and
the expected co-visible regions come from closed forms derived in each test, never from the
module's own output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from habitat_fih.geometry import (
    BEHIND,
    IN_VIEW,
    OCCLUDED,
    OUT_OF_VIEW,
    CameraStatus,
    camera_position_heatmaps,
    covisibility_heatmaps,
)


# --------------------------------------------------------------------------- analytic scenes
def yaw_pose(deg: float, position: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Camera-to-world pose turned left by ``deg`` about +Y (habitat turn_left)."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    pose = np.eye(4)
    pose[:3, :3] = [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
    pose[:3, 3] = position
    return pose


def plane_depth(
    pose: np.ndarray, hfov: float, H: int, W: int, normal: tuple[float, ...], offset: float
) -> np.ndarray:
    """Planar depth of the plane ``normal . X = offset`` (0 where it is not hit in front).

    Pixel (i, j) has the camera-frame ray ``((j + .5 - W/2) / f, (H/2 - i - .5) / f, -1)`` with
    ``f = (W/2) / tan(hfov/2)``; its z component is -1, so the ray parameter IS planar depth.
    """
    f = (W / 2) / math.tan(math.radians(hfov) / 2)
    jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    rays = np.stack([(jj - W / 2) / f, (H / 2 - ii) / f, -np.ones_like(jj)], axis=-1)
    n = np.asarray(normal, dtype=np.float64)
    denom = (rays @ pose[:3, :3].T) @ n
    with np.errstate(divide="ignore"):
        lam = (offset - n @ pose[:3, 3]) / denom
    return np.where(np.isfinite(lam) & (lam > 0), lam, 0.0)


def wall_depth(pose: np.ndarray, hfov: float, H: int, W: int, d: float) -> np.ndarray:
    """Depth of the wall z = -d (facing +Z)."""
    return plane_depth(pose, hfov, H, W, (0.0, 0.0, 1.0), -d)


def ndc(n: int) -> np.ndarray:
    """Pixel-centre coordinate in units of the half image width: (j + .5 - n/2) / (n/2)."""
    return (np.arange(n) + 0.5 - n / 2) / (n / 2)


def block_mean(mask: np.ndarray, k: int) -> np.ndarray:
    H, W = mask.shape
    return mask.reshape(H // k, k, W // k, k).mean(axis=(1, 3))


def assert_matches_except_boundary(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal everywhere except within one cell of the expected map's 0/1 boundary."""
    edge = (expected > 0) & (expected < 1)
    solid = expected > 0.5
    edge |= solid ^ np.roll(solid, 1, 0) | solid ^ np.roll(solid, 1, 1)
    near = edge.copy()
    for axis in (0, 1):
        for shift in (-1, 1):
            near |= np.roll(edge, shift, axis)
    np.testing.assert_allclose(actual[~near], expected[~near], atol=1e-6)


# --------------------------------------------------------------------------- co-visibility
def test_same_pose_twice_is_one_where_depth_is_valid() -> None:
    H = W = 64
    pose = yaw_pose(20.0, (0.5, 1.2, 0.3))
    depth = wall_depth(pose, 90.0, H, W, 3.0)
    depth[10:20, 5:40] = 0.0  # a hole (no hit) in both views
    res = covisibility_heatmaps(depth, pose, depth[None], pose[None], 90.0, (H, W))
    np.testing.assert_array_equal(res.maps[0], (depth > 0).astype(np.float32))
    res16 = covisibility_heatmaps(depth, pose, depth[None], pose[None], 90.0, (16, 16))
    np.testing.assert_allclose(res16.maps[0], block_mean(depth > 0, 4), atol=1e-7)
    assert res16.overlap[0] == 1.0  # every VALID pixel is co-visible
    assert res16.maps[0].mean() == pytest.approx((depth > 0).mean())  # area fraction of all
    assert res16.valid[0]
    assert res.maps.dtype == np.float32 and res.normalized.sum() == pytest.approx(1.0)


def test_pure_yaw_columns_match_closed_form() -> None:
    H = W = 128
    hfov, theta, d = 90.0, 30.0, 2.0
    target, source = yaw_pose(0.0), yaw_pose(theta)
    tdepth = wall_depth(target, hfov, H, W, d)
    np.testing.assert_allclose(tdepth, d)  # fronto-parallel wall
    sdepth = wall_depth(source, hfov, H, W, d)
    # Closed form of the source's own depth: d / (cos θ + sin θ · x_ndc · tan(hfov/2)).
    c, s = math.cos(math.radians(theta)), math.sin(math.radians(theta))
    np.testing.assert_allclose(sdepth, np.broadcast_to(d / (c + s * ndc(W)), (H, W)), rtol=1e-12)

    res = covisibility_heatmaps(tdepth, target, sdepth[None], source[None], hfov, (H, W))
    # Target pixel with ndc (x, y) hits the wall at d (x, y, -1); in the source frame its
    # planar depth is d (cos θ - sin θ x) and its ndc is (tan(φ + θ), y / (cos θ - sin θ x)),
    # tan φ = x.  Visible iff both lie in the source image: x in [-1, 1), y in (-1, 1].
    x, y = ndc(W)[None, :], -ndc(H)[:, None]
    xs = (c * x + s) / (c - s * x)
    ys = y / (c - s * x)
    expected = (xs >= -1) & (xs < 1) & (ys > -1) & (ys <= 1)
    assert_matches_except_boundary(res.maps[0], expected.astype(np.float64))

    # Per output column (32 cells, middle row): the source sees horizontal angles within ±45°
    # of its own axis, which points 30° left: target columns with φ + 30° < 45°.
    out = covisibility_heatmaps(tdepth, target, sdepth[None], source[None], hfov, (32, 32))
    phi = np.degrees(np.arctan(ndc(W)))
    visible_cols = np.abs(phi + theta) < 45.0
    expected_cells = visible_cols.reshape(32, 4).mean(axis=1)
    last_expected = np.flatnonzero(expected_cells > 0).max()
    last_actual = np.flatnonzero(out.maps[0, 16] > 0).max()
    assert abs(last_actual - last_expected) <= 1
    np.testing.assert_allclose(out.maps[0, 16, : last_expected - 1], 1.0)
    np.testing.assert_allclose(out.maps[0, 16, last_expected + 2 :], 0.0)


def test_source_occluder_zeroes_that_region() -> None:
    H = W = 64
    pose = yaw_pose(0.0)
    wall = wall_depth(pose, 90.0, H, W, 3.0)
    src = wall.copy()
    src[10:25, 30:50] = 1.0  # a box 1 m away that the source saw instead of the wall
    res = covisibility_heatmaps(wall, pose, src[None], pose[None], 90.0, (H, W))
    expected = np.ones((H, W))
    expected[10:25, 30:50] = 0.0
    # Outside the box region and inside it (one pixel in from its edge) exactly as expected.
    # The ring of edge pixels is the one place where the source's samples cannot place the
    # box's outline; there the target's own view decides, and this target (a changed scene)
    # sees the wall, so the ring may count as seen.
    interior = np.zeros((H, W), dtype=bool)
    interior[11:24, 31:49] = True
    ring = (expected == 0) & ~interior
    np.testing.assert_array_equal(res.maps[0][~ring], expected[~ring])
    # The reverse: the target sees a nearer box where the source saw the wall -> also 0.
    res2 = covisibility_heatmaps(src, pose, wall[None], pose[None], 90.0, (16, 16))
    np.testing.assert_allclose(res2.maps[0], block_mean(expected > 0, 4), atol=1e-7)


@pytest.mark.parametrize("step", [1.5, -2.0])
def test_translation_along_view_axis_window(step: float) -> None:
    """Source moved ``step`` m forward (>0, closer to the wall) or back (<0) from the target."""
    H = W = 64
    d = 4.0
    target = yaw_pose(0.0)
    source = yaw_pose(0.0, (0.0, 0.0, -step))  # forward is -Z
    tdepth = wall_depth(target, 90.0, H, W, d)
    sdepth = wall_depth(source, 90.0, H, W, d)
    np.testing.assert_allclose(sdepth, d - step)
    res = covisibility_heatmaps(tdepth, target, sdepth[None], source[None], 90.0, (H, W))
    # A target pixel at ndc x lands at source ndc x d / (d - step): u' = W/2 (1 + x d/(d-step)).
    ratio = d / (d - step)
    u_src = W / 2 * (1 + ndc(W) * ratio)
    v_src = H / 2 * (1 + ndc(H) * ratio)
    cols = np.flatnonzero((u_src >= 0) & (u_src < W))
    rows = np.flatnonzero((v_src >= 0) & (v_src < H))
    got_rows, got_cols = np.nonzero(res.maps[0])
    assert (got_cols.min(), got_cols.max()) == (cols.min(), cols.max())
    assert (got_rows.min(), got_rows.max()) == (rows.min(), rows.max())
    if step < 0:  # stepped back: the target's view is inside the source's
        np.testing.assert_array_equal(res.maps[0], 1.0)
    else:  # closer: a centred window, e.g. columns [12, 51] for d = 4, step = 1.5
        assert (cols.min(), cols.max()) == (12, 51)
        window = np.zeros((H, W))
        window[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = 1.0
        np.testing.assert_array_equal(res.maps[0], window)
        assert res.overlap[0] == pytest.approx(window.mean())


def test_narrower_source_hfov() -> None:
    H = W = 64
    pose = yaw_pose(0.0)
    tdepth = wall_depth(pose, 90.0, H, W, 3.0)
    sdepth = wall_depth(pose, 60.0, H, W, 3.0)
    res = covisibility_heatmaps(
        tdepth, pose, sdepth[None], pose[None], 90.0, (H, W), source_hfov=60.0
    )
    # Same centre: target ndc x (tan 45° = 1) is inside the source iff -tan 30° <= x < tan 30°.
    t30 = math.tan(math.radians(30))
    inside_x = (ndc(W) >= -t30) & (ndc(W) < t30)
    inside_y = (-ndc(H) > -t30) & (-ndc(H) <= t30)
    np.testing.assert_array_equal(res.maps[0], np.outer(inside_y, inside_x).astype(np.float32))


def test_general_area_resize_is_true_area_fraction() -> None:
    H = W = 10
    pose = yaw_pose(0.0)
    depth = wall_depth(pose, 90.0, H, W, 2.0)
    depth[:, :4] = 0.0  # invalid columns 0..3 count as not co-visible
    res = covisibility_heatmaps(depth, pose, depth[None], pose[None], 90.0, (4, 4))
    # Output columns cover [0, 2.5), [2.5, 5), [5, 7.5), [7.5, 10): valid part 0, 1/2.5, 1, 1.
    np.testing.assert_allclose(res.maps[0], np.tile([0.0, 0.4, 1.0, 1.0], (4, 1)), atol=1e-6)
    np.testing.assert_allclose(res.normalized[0].sum(), 1.0, atol=1e-6)
    assert res.overlap[0] == 1.0  # of the valid pixels, all co-visible
    assert res.maps[0].mean() == pytest.approx(0.6)


def test_batch_equals_single_calls_and_empty() -> None:
    H = W = 32
    target = yaw_pose(10.0, (0.2, 1.0, 0.0))
    tdepth = wall_depth(target, 90.0, H, W, 3.0)
    poses = np.stack([yaw_pose(a, (0.1 * a / 10, 1.0, 0.3)) for a in (-60, -20, 0, 35, 170)])
    depths = np.stack([wall_depth(p, 90.0, H, W, 3.0) for p in poses])
    batch = covisibility_heatmaps(tdepth, target, depths, poses, 90.0, (8, 8))
    for k in range(len(poses)):
        one = covisibility_heatmaps(
            tdepth, target, depths[k : k + 1], poses[k : k + 1], 90.0, (8, 8)
        )
        np.testing.assert_array_equal(batch.maps[k], one.maps[0])
        np.testing.assert_array_equal(batch.normalized[k], one.normalized[0])
        assert batch.valid[k] == one.valid[0] and batch.overlap[k] == one.overlap[0]
    assert not batch.valid[4] and batch.maps[4].sum() == 0  # facing away: no overlap
    assert batch.normalized[4].sum() == 0  # all-zero maps stay zero
    assert batch.valid[:4].all()
    empty = covisibility_heatmaps(tdepth, target, depths[:0], poses[:0], 90.0, (8, 8))
    assert empty.maps.shape == (0, 8, 8) and empty.valid.shape == (0,)


def test_min_overlap_threshold() -> None:
    """A source turned 89.5 deg away shares one column of a 128² view: 1/128 < 0.01."""
    H = W = 128
    target, source = yaw_pose(0.0), yaw_pose(89.5)
    tdepth = wall_depth(target, 90.0, H, W, 3.0)
    sdepth = plane_depth(source, 90.0, H, W, (0.0, 0.0, 1.0), -3.0)
    # Closed form: target column j looks along angle atan(ndc_j) right of -Z; the source's
    # frustum spans 89.5 +- 45 deg to the LEFT, so only columns with atan(ndc_j) < -44.5 deg.
    share = np.degrees(np.arctan(ndc(W))) < -44.5
    assert share.sum() == 1
    res = covisibility_heatmaps(tdepth, target, sdepth[None], source[None], 90.0, (H, W))
    assert res.overlap[0] == pytest.approx(1 / 128) and not res.valid[0]
    np.testing.assert_array_equal(res.maps[0] > 0, np.broadcast_to(share, (H, W)))
    low = covisibility_heatmaps(
        tdepth, target, sdepth[None], source[None], 90.0, (H, W), min_overlap=0.005
    )
    assert low.valid[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_depth": np.full((8, 8), np.nan)}, "target_depth.*nan"),
        ({"source_depths": np.full((1, 8, 8), -1.0)}, "source_depths.*-1.0"),
        ({"source_depths": np.ones((8, 8))}, r"source_depths.*\(8, 8\)"),
        ({"source_poses": np.ones((2, 4, 4))}, r"source_poses.*\(2, 4, 4\)"),
        ({"source_poses": np.diag([2.0, 1, 1, 1])[None]}, "source_poses.*rigid"),
        ({"hfov": 180.0}, "hfov.*180"),
        ({"out_size": (0, 4)}, r"out_size.*\(0, 4\)"),
        ({"abs_tol": -0.1}, "abs_tol.*-0.1"),
    ],
)
def test_bad_input_raises(kwargs: dict, match: str) -> None:
    args = {
        "target_depth": np.ones((8, 8)),
        "target_pose": np.eye(4),
        "source_depths": np.ones((1, 8, 8)),
        "source_poses": np.eye(4)[None],
        "hfov": 90.0,
        "out_size": (4, 4),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        covisibility_heatmaps(
            args["target_depth"],
            args["target_pose"],
            args["source_depths"],
            args["source_poses"],
            args["hfov"],
            args["out_size"],
            abs_tol=args.get("abs_tol", 0.05),
        )


# --------------------------------------------------------------------------- camera positions
def test_camera_position_status_and_gaussian() -> None:
    H = W = 64  # hfov 90 -> f = 32, principal point (32, 32)
    target = yaw_pose(0.0)
    tdepth = wall_depth(target, 90.0, H, W, 5.0)
    centres = [
        (1.125, 0.625, -2.0),  # u = 32 + 32 * 1.125/2 = 50, v = 32 - 32 * .625/2 = 22
        (0.0, 0.0, 1.0),  # behind the camera
        (5.0, 0.0, -1.0),  # in front, far outside the 90° fov
        (0.0, 0.0, -7.0),  # behind the wall at 5 m
        (0.0, 0.3, -4.99),  # in front of the wall, within the tolerance
    ]
    poses = np.stack([yaw_pose(0.0, c) for c in centres])
    sigma = 1.5
    res = camera_position_heatmaps(tdepth, target, poses, 90.0, (16, 16), sigma=sigma)
    assert list(res.status) == [IN_VIEW, BEHIND, OUT_OF_VIEW, OCCLUDED, IN_VIEW]
    assert CameraStatus(res.status[3]) is CameraStatus.OCCLUDED
    np.testing.assert_allclose(res.uv[0], [50.0, 22.0], atol=1e-9)
    np.testing.assert_allclose(res.depth[:4], [2.0, -1.0, 1.0, 7.0], atol=1e-12)
    assert np.isnan(res.uv[1]).all()
    # Output cells are 4 px: (50, 22) -> cell coords (12.5, 5.5) = centre of cell (row 5, col 12).
    assert np.unravel_index(res.maps[0].argmax(), (16, 16)) == (5, 12)
    assert res.maps[0, 5, 12] == pytest.approx(1.0)
    bb, aa = np.meshgrid(np.arange(16) + 0.5, np.arange(16) + 0.5)
    gauss = np.exp(-((bb - 12.5) ** 2 + (aa - 5.5) ** 2) / (2 * sigma**2))
    np.testing.assert_allclose(res.maps[0], gauss, atol=1e-6)
    assert res.maps[1:4].sum() == 0.0
    assert res.maps[4].max() > 0.5
    kept = camera_position_heatmaps(tdepth, target, poses, 90.0, (16, 16), keep_occluded=True)
    assert kept.maps[3].max() > 0.5 and kept.maps[1:3].sum() == 0.0


def test_camera_position_no_surface_is_not_occluded() -> None:
    target = yaw_pose(0.0)
    tdepth = np.zeros((32, 32))  # nothing hit: cannot occlude
    res = camera_position_heatmaps(tdepth, target, yaw_pose(0.0, (0, 0, -9.0))[None], 90.0, (8, 8))
    assert res.status[0] == IN_VIEW


def test_camera_position_rotated_target() -> None:
    # Target turned 90° left looks down world -X; a camera at (-3, 0, 0) is dead ahead.
    target = yaw_pose(90.0)
    res = camera_position_heatmaps(
        np.zeros((48, 64)), target, yaw_pose(0.0, (-3, 0, 0))[None], 90.0, (12, 16)
    )
    np.testing.assert_allclose(res.uv[0], [32.0, 24.0], atol=1e-9)
    assert res.depth[0] == pytest.approx(3.0)


def test_camera_position_bad_input() -> None:
    with pytest.raises(ValueError, match="sigma.*0.0"):
        camera_position_heatmaps(
            np.ones((8, 8)), np.eye(4), np.eye(4)[None], 90.0, (4, 4), sigma=0.0
        )
    with pytest.raises(ValueError, match=r"source_poses.*\(4, 4\)"):
        camera_position_heatmaps(np.ones((8, 8)), np.eye(4), np.eye(4), 90.0, (4, 4))
