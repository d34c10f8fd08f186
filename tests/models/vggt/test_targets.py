"""VGGT training targets from simulator poses and depth: closed-form extrinsics, points, scale."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from habitat_fih.geometry.camera import depth_to_world_points
from habitat_fih.models.vggt.pose_encoding import pose_encoding_to_extri_intri
from habitat_fih.models.vggt.targets import VGGTTargets, stack_targets, vggt_targets


def _rot_y(deg: float) -> np.ndarray:
    """Right-handed rotation about +Y (habitat's turn_left is +angle about +Y)."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _pose(rot: np.ndarray, centre: tuple[float, float, float]) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rot, centre
    return pose


def _forward_then_turn(start: np.ndarray) -> np.ndarray:
    """[3, 4, 4]: ``start``; 1 m forward (local -Z); then a 90-degree left turn in place."""
    step = start @ _pose(np.eye(3), (0.0, 0.0, -1.0))
    turn = step @ _pose(_rot_y(90.0), (0.0, 0.0, 0.0))
    return np.stack([start, step, turn])


# Hand-derived OpenCV camera-from-first-camera extrinsics of `_forward_then_turn` (x right,
# y down, z forward in the first camera): frame 1's centre is 1 m ahead, C1 = (0, 0, 1), so
# t1 = -C1. Frame 2 sits at C1 looking along the first camera's -x (it turned left); its axes
# in the first frame are x2 = (0, 0, 1) (its right is the old forward), y2 = (0, 1, 0),
# z2 = (-1, 0, 0), so R2 has these as rows and t2 = -R2 C1 = (-1, 0, 0).
EXPECTED_EXTRINSICS = np.array(
    [
        [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]],
        [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]],
        [[0.0, 0.0, 1.0, -1.0], [0.0, 1.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0]],
    ]
)


@pytest.mark.parametrize(
    "start",
    [np.eye(4), _pose(_rot_y(30.0), (3.0, 1.25, -2.0))],
    ids=["at-origin", "rotated-and-shifted-start"],
)
def test_pose_encoding_round_trips_to_hand_derived_extrinsics(start: np.ndarray) -> None:
    H, W, hfov = 4, 6, 90.0
    targets = vggt_targets(
        _forward_then_turn(start), hfov, np.full((3, H, W), 2.0), normalize=False
    )
    ext, intr = pose_encoding_to_extri_intri(targets.pose_enc.double(), (H, W))
    np.testing.assert_allclose(ext.numpy(), EXPECTED_EXTRINSICS, atol=1e-6)
    np.testing.assert_allclose(targets.extrinsics.numpy(), EXPECTED_EXTRINSICS, atol=1e-6)
    # hfov 90 at width 6: fx = fy = 3 / tan(45 deg) = 3, principal point at the centre.
    K = np.array([[3.0, 0.0, 3.0], [0.0, 3.0, 2.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(intr.numpy(), np.stack([K] * 3), atol=1e-5)
    np.testing.assert_allclose(targets.pose_enc[:, 8].numpy(), math.pi / 2, atol=1e-6)
    np.testing.assert_allclose(targets.pose_enc[:, 7].numpy(), 2 * math.atan(2 / 3), atol=1e-6)
    # Quaternions XYZW: identity, identity, +90 deg about the OpenCV y axis.
    s = math.sqrt(0.5)
    np.testing.assert_allclose(
        targets.pose_enc[:, 3:7].numpy(),
        [[0, 0, 0, 1], [0, 0, 0, 1], [0, s, 0, s]],
        atol=1e-6,
    )


def test_first_frame_is_identity_and_translations_scale() -> None:
    rng = np.random.default_rng(0)
    poses = []
    for _ in range(4):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        poses.append(_pose(q * np.sign(np.linalg.det(q)), tuple(rng.normal(size=3))))
    depth = rng.uniform(0.5, 5.0, (4, 3, 5))
    metric = vggt_targets(np.stack(poses), 70.0, depth, normalize=False)
    normed = vggt_targets(np.stack(poses), 70.0, depth)
    np.testing.assert_allclose(metric.pose_enc[0, :7].numpy(), [0, 0, 0, 0, 0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(metric.extrinsics[0].numpy(), EXPECTED_EXTRINSICS[0], atol=1e-6)
    assert float(metric.scale) == 1.0
    s = float(normed.scale)
    # Only translations, depth and points are divided by the scale.
    torch.testing.assert_close(
        normed.pose_enc[:, :3] * s, metric.pose_enc[:, :3], atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(normed.pose_enc[:, 3:], metric.pose_enc[:, 3:])
    torch.testing.assert_close(normed.depth * s, metric.depth, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(normed.world_points * s, metric.world_points, atol=1e-5, rtol=1e-5)


def test_scale_is_the_mean_point_distance_hand_case() -> None:
    # 1x1 images: the only pixel centre is the principal point, so the point lies on the axis.
    # Frame 0 sees depth 2 -> (0, 0, 2); frame 1, 1 m ahead, sees depth 3 -> (0, 0, 4).
    # Mean distance to the first camera = (2 + 4) / 2 = 3.
    poses = _forward_then_turn(np.eye(4))[:2]
    t = vggt_targets(poses, 90.0, np.array([[[2.0]], [[3.0]]]))
    assert float(t.scale) == pytest.approx(3.0)
    np.testing.assert_allclose(t.depth.numpy().ravel(), [2 / 3, 1.0], rtol=1e-6)
    np.testing.assert_allclose(
        t.world_points.numpy().reshape(2, 3), [[0, 0, 2 / 3], [0, 0, 4 / 3]], atol=1e-6
    )
    np.testing.assert_allclose(t.pose_enc[1, :3].numpy(), [0, 0, -1 / 3], atol=1e-6)
    # 1x2 image, hfov 90: f = 1, cx = 1, centres u = 0.5, 1.5 -> x = -0.5 d, +0.5 d; d = 2 gives
    # (-1, 0, 2) and (1, 0, 2), both at distance sqrt(5).
    t2 = vggt_targets(np.eye(4)[None], 90.0, np.full((1, 1, 2), 2.0))
    assert float(t2.scale) == pytest.approx(math.sqrt(5.0))


def test_floor_points_lie_on_the_floor_plane() -> None:
    # Level cameras 1.25 m above a floor: OpenCV y points down, so the floor is y = +1.25 in
    # every level camera's frame and in the first camera's. H = 6, W = 8, hfov 90: f = 4,
    # cx = 4, cy = 3; a pixel of row r (v = r + 0.5 > cy) sees the floor at planar depth
    # d = 1.25 f / (v - cy): rows 3, 4, 5 -> 10, 10/3, 2; rows 0-2 see nothing (0).
    H, W, h, f = 6, 8, 1.25, 4.0
    v = np.arange(H) + 0.5
    row_depth = np.where(v > 3.0, h * f / np.maximum(v - 3.0, 1e-9), 0.0)
    depth = np.broadcast_to(row_depth[:, None], (H, W))
    poses = _forward_then_turn(_pose(_rot_y(-40.0), (1.0, 0.3, 5.0)))[[0, 2]]
    t = vggt_targets(poses, 90.0, np.stack([depth, depth]), max_depth=10.0, normalize=False)
    # Depth 10 = the range: invalid; so only rows 4 and 5 are valid.
    expected_valid = np.zeros((H, W), bool)
    expected_valid[4:] = True
    np.testing.assert_array_equal(t.valid.numpy(), np.stack([expected_valid] * 2))
    pts = t.world_points.numpy()
    np.testing.assert_allclose(pts[t.valid.numpy()][:, 1], h, atol=1e-5)
    assert np.all(pts[~t.valid.numpy()] == 0) and np.all(t.depth.numpy()[~t.valid.numpy()] == 0)
    np.testing.assert_allclose(t.depth.numpy()[0, 5], 2.0, atol=1e-6)
    # Pixel (5, 0), u = 0.5, v = 5.5, d = 2: camera point (2 (0.5 - 4) / 4, 2 (5.5 - 3) / 4, 2)
    # = (-1.75, 1.25, 2). Frame 0 is the first camera. Frame 1 (1 m ahead, turned left) has
    # axes x = (0, 0, 1), y = (0, 1, 0), z = (-1, 0, 0) and centre (0, 0, 1) in the first frame:
    # (a, b, c) -> (-c, b, 1 + a) = (-2, 1.25, -0.75).
    np.testing.assert_allclose(pts[0, 5, 0], [-1.75, 1.25, 2.0], atol=1e-5)
    np.testing.assert_allclose(pts[1, 5, 0], [-2.0, 1.25, -0.75], atol=1e-5)


def test_points_agree_with_the_habitat_back_projection() -> None:
    rng = np.random.default_rng(1)
    poses = _forward_then_turn(_pose(_rot_y(15.0), (0.5, 1.0, 0.0)))
    depth = rng.uniform(0.5, 6.0, (3, 5, 7))
    t = vggt_targets(poses, 80.0, depth, normalize=False)
    world = depth_to_world_points(depth, poses, 80.0)  # habitat world, [3, 5, 7, 3]
    # To the first camera's OpenCV frame: inverse of pose 0, then flip y and z.
    first = (world - poses[0, :3, 3]) @ poses[0, :3, :3] * np.array([1.0, -1.0, -1.0])
    np.testing.assert_allclose(t.world_points.numpy(), first, atol=1e-5)


def test_validity_mask_and_invalid_pixels() -> None:
    depth = np.array([[[0.0, np.nan, np.inf, -1.0, 10.0, 9.99, 3.0]]])
    t = vggt_targets(np.eye(4)[None], 90.0, depth, max_depth=10.0, normalize=False)
    np.testing.assert_array_equal(t.valid.numpy()[0, 0], [0, 0, 0, 0, 0, 1, 1])
    np.testing.assert_allclose(t.depth.numpy()[0, 0], [0, 0, 0, 0, 0, 9.99, 3.0], rtol=1e-6)
    assert np.all(np.isfinite(t.world_points.numpy()))
    # Without a range, 10 counts.
    t2 = vggt_targets(np.eye(4)[None], 90.0, depth, normalize=False)
    np.testing.assert_array_equal(t2.valid.numpy()[0, 0], [0, 0, 0, 0, 1, 1, 1])


def test_resized_sensor_intrinsics() -> None:
    # Sensor 2 x 4 (H0, W0), hfov 90: f0 = 2, cx = 2, cy = 1. Depth given at 4 x 4 (rows
    # stretched 2x): fx = 2, fy = 4, cx = cy = 2; fov_h stays the sensor's 2 atan(1 / 2).
    t = vggt_targets(
        np.eye(4)[None], 90.0, np.full((1, 4, 4), 2.0), sensor_size=(2, 4), normalize=False
    )
    np.testing.assert_allclose(
        t.intrinsics[0].numpy(), [[2.0, 0, 2.0], [0, 4.0, 2.0], [0, 0, 1]], atol=1e-6
    )
    np.testing.assert_allclose(
        t.pose_enc[0, 7:].numpy(), [2 * math.atan(0.5), math.pi / 2], atol=1e-6
    )
    # Output pixel (0, 0) centre = sensor coordinates (0.5, 0.25): x = 2 (0.5 - 2) / 2 = -1.5,
    # y = 2 (0.25 - 1) / 2 = -0.75.
    np.testing.assert_allclose(t.world_points[0, 0, 0].numpy(), [-1.5, -0.75, 2.0], atol=1e-6)


def test_per_frame_hfov() -> None:
    t = vggt_targets(np.stack([np.eye(4)] * 2), [90.0, 60.0], np.ones((2, 2, 2)), normalize=False)
    np.testing.assert_allclose(t.pose_enc[:, 8].numpy(), [math.pi / 2, math.pi / 3], atol=1e-6)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="no valid depth"):
        vggt_targets(np.eye(4)[None], 90.0, np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="poses must be"):
        vggt_targets(np.eye(4), 90.0, np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="depth must be"):
        vggt_targets(np.eye(4)[None], 90.0, np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="hfov"):
        vggt_targets(np.eye(4)[None], [90.0, 80.0, 70.0], np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="hfov"):
        vggt_targets(np.eye(4)[None], 180.0, np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="max_depth"):
        vggt_targets(np.eye(4)[None], 90.0, np.ones((1, 2, 2)), max_depth=0.0)


def test_stack_targets_batches_every_field() -> None:
    a = vggt_targets(np.eye(4)[None], 90.0, np.ones((1, 2, 3)))
    b = vggt_targets(np.eye(4)[None], 90.0, np.full((1, 2, 3), 2.0))
    batch = stack_targets([a, b])
    assert isinstance(batch, VGGTTargets)
    assert batch.pose_enc.shape == (2, 1, 9) and batch.world_points.shape == (2, 1, 2, 3, 3)
    assert batch.valid.shape == (2, 1, 2, 3) and batch.scale.shape == (2,)
    assert batch.scale[1] == pytest.approx(2 * float(batch.scale[0]))
    with pytest.raises(ValueError, match="share"):
        stack_targets([a, vggt_targets(np.eye(4)[None], 90.0, np.ones((1, 3, 3)))])
