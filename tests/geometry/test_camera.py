"""Tests for habitat_fih.geometry.camera: conventions checked against closed forms."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import quaternion  # noqa: F401

from habitat_fih.geometry.camera import (
    backproject_depth,
    camera_to_world,
    depth_to_world_points,
    euler_to_rotation_matrix,
    habitat_pose_to_opencv_extrinsic,
    intrinsics_from_hfov,
    invert_pose,
    opencv_extrinsic_to_habitat_pose,
    pose_from_agent_state,
    project_points,
    quat_from_angle_axis,
    quat_from_coeffs,
    quat_to_coeffs,
    quat_to_rotation_matrix,
    resize_intrinsics,
    rotation_matrix_to_quat,
    world_to_camera,
)

UP = np.array([0.0, 1.0, 0.0])
FORWARD = np.array([0.0, 0.0, -1.0])  # habitat camera looks down -Z
RIGHT = np.array([1.0, 0.0, 0.0])


def yaw_quat(deg: float) -> np.quaternion:
    """Habitat turn_left by deg: +deg about world +Y, written out by hand (w, x, y, z)."""
    half = math.radians(deg) / 2
    return np.quaternion(math.cos(half), 0.0, math.sin(half), 0.0)


def test_intrinsics_closed_form() -> None:
    K = intrinsics_from_hfov(90.0, 64, 48)
    # tan(45°) = 1 -> f = W / 2
    np.testing.assert_allclose(K, [[32, 0, 32], [0, 32, 24], [0, 0, 1]], atol=1e-12)
    K60 = intrinsics_from_hfov(60.0, 100, 100)
    assert K60[0, 0] == pytest.approx(50 / math.tan(math.radians(30)))


@pytest.mark.parametrize("bad", [0.0, 180.0, -5.0, float("nan"), 200.0])
def test_bad_hfov_raises_with_value(bad: float) -> None:
    with pytest.raises(ValueError, match="hfov"):
        intrinsics_from_hfov(bad, 64, 64)
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        intrinsics_from_hfov(bad, 64, 64)


def test_turn_left_90_points_forward_to_world_minus_x() -> None:
    q = quat_from_angle_axis(math.pi / 2, UP)
    assert np.allclose(quaternion.as_float_array(q), quaternion.as_float_array(yaw_quat(90)))
    pose = pose_from_agent_state([0.0, 0.0, 0.0], q)
    np.testing.assert_allclose(pose[:3, :3] @ FORWARD, [-1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(pose[:3, :3] @ RIGHT, [0.0, 0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(pose[:3, :3] @ UP, UP, atol=1e-12)


def test_sensor_offset_and_orientation() -> None:
    yaw, pitch = 90.0, -30.0
    agent_pos = np.array([1.0, 0.0, 2.0])
    pose = pose_from_agent_state(
        agent_pos, yaw_quat(yaw), [0.0, 1.25, -1.0], [math.radians(pitch), 0.0, 0.0]
    )
    # Sensor offset rotates with the agent: local -Z (1 m ahead) becomes world -X after the turn.
    np.testing.assert_allclose(pose[:3, 3], [0.0, 1.25, 2.0], atol=1e-12)
    # Pitched down 30° then yawed 90° left: (-cos 30°, -sin 30°, 0).
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    np.testing.assert_allclose(pose[:3, :3] @ FORWARD, [-c, -s, 0.0], atol=1e-12)
    np.testing.assert_allclose(pose[3], [0, 0, 0, 1])


def test_euler_order_is_x_then_y_then_z() -> None:
    ax, ay = math.radians(20), math.radians(50)
    R = euler_to_rotation_matrix([ax, ay, 0.0])
    # Rx first, then Ry (habitat-sim rotateX/rotateY on a TRS node): closed form of R @ -Z.
    expected = [-math.sin(ay) * math.cos(ax), math.sin(ax), -math.cos(ay) * math.cos(ax)]
    np.testing.assert_allclose(R @ FORWARD, expected, atol=1e-12)
    az = math.radians(90)
    Rz = euler_to_rotation_matrix([0.0, 0.0, az])
    np.testing.assert_allclose(Rz @ RIGHT, UP, atol=1e-12)  # roll left: right -> up


def test_quaternion_helpers_round_trip() -> None:
    q = quat_from_angle_axis(0.7, [0.3, -1.0, 0.2])
    coeffs = quat_to_coeffs(q)
    assert coeffs[3] == pytest.approx(q.w)
    q2 = quat_from_coeffs(coeffs)
    assert np.allclose(quaternion.as_float_array(q), quaternion.as_float_array(q2))
    R = quat_to_rotation_matrix(q)
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(R, quaternion.as_rotation_matrix(q), atol=1e-12)
    q3 = rotation_matrix_to_quat(R)
    assert abs(abs(np.dot(quaternion.as_float_array(q3), quaternion.as_float_array(q))) - 1) < 1e-12
    # [..., 4] (w, x, y, z) arrays are accepted and vectorised.
    arr = np.stack([quaternion.as_float_array(q)] * 3)
    np.testing.assert_allclose(quat_to_rotation_matrix(arr), np.stack([R] * 3), atol=1e-12)


def test_backproject_closed_form() -> None:
    depth = np.full((4, 4), 2.0)
    pts = backproject_depth(depth, 90.0)  # f = 2, cx = cy = 2
    # pixel (0, 0): centre (0.5, 0.5) -> x = (0.5 - 2) / 2 * 2, y = -(0.5 - 2) / 2 * 2, z = -2
    np.testing.assert_allclose(pts[0, 0], [-1.5, 1.5, -2.0])
    np.testing.assert_allclose(pts[3, 2], [0.5, -1.5, -2.0])
    assert np.all(pts[..., 2] == -2.0)  # planar depth, not ray length


def test_backproject_project_round_trip() -> None:
    rng = np.random.default_rng(0)
    H, W, hfov = 12, 20, 75.0
    depth = rng.uniform(0.5, 8.0, (H, W))
    pose = pose_from_agent_state(rng.normal(size=3), quat_from_angle_axis(1.1, [0.2, 1, 0.1]))
    world = depth_to_world_points(depth, pose, hfov)  # [H, W, 3]
    cam = world_to_camera(world.reshape(-1, 3), pose)
    uv, d, front = project_points(cam, intrinsics_from_hfov(hfov, W, H))
    jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    np.testing.assert_allclose(uv[:, 0], jj.ravel(), atol=1e-9)
    np.testing.assert_allclose(uv[:, 1], ii.ravel(), atol=1e-9)
    np.testing.assert_allclose(d, depth.ravel(), atol=1e-9)
    assert front.all()
    np.testing.assert_allclose(camera_to_world(cam, pose), world.reshape(-1, 3), atol=1e-9)


def test_project_behind_is_nan() -> None:
    uv, d, front = project_points(np.array([[0.0, 0.0, 1.0], [1.0, 1.0, -1.0]]), np.eye(3))
    assert not front[0] and front[1]
    assert np.isnan(uv[0]).all()
    np.testing.assert_allclose(uv[1], [1.0, -1.0])  # v = cy - fy * y / d
    assert d[0] == -1.0


def test_invert_pose() -> None:
    pose = pose_from_agent_state([1.0, 2.0, 3.0], quat_from_angle_axis(0.4, [1, 1, 0]))
    np.testing.assert_allclose(invert_pose(pose) @ pose, np.eye(4), atol=1e-12)


def test_opencv_extrinsic_reference_is_identity() -> None:
    ref = pose_from_agent_state([1.0, 0.0, -2.0], yaw_quat(37.0), [0, 1.25, 0])
    E = habitat_pose_to_opencv_extrinsic(ref, reference_pose=ref)
    np.testing.assert_allclose(E, np.hstack([np.eye(3), np.zeros((3, 1))]), atol=1e-12)


def test_opencv_extrinsic_forward_step_and_projection() -> None:
    ref = pose_from_agent_state([1.0, 0.0, -2.0], yaw_quat(37.0))
    # 1 m forward along the reference's view axis: OpenCV z forward -> centre (0, 0, 1).
    step = ref.copy()
    step[:3, 3] += ref[:3, :3] @ FORWARD
    E = habitat_pose_to_opencv_extrinsic(step, reference_pose=ref)
    np.testing.assert_allclose(E, np.hstack([np.eye(3), [[0.0], [0.0], [-1.0]]]), atol=1e-12)
    # Same pixel through OpenCV (K [R|t] X, divide by z) as through habitat projection.
    K = intrinsics_from_hfov(90.0, 64, 48)
    pose = pose_from_agent_state([0.3, 1.2, 0.5], yaw_quat(-20.0), [0, 0, 0], [-0.3, 0, 0])
    X = pose[:3, :3] @ np.array([0.4, -0.2, -3.0]) + pose[:3, 3]  # in front of pose
    E_world = habitat_pose_to_opencv_extrinsic(pose)
    x = K @ (E_world[:, :3] @ X + E_world[:, 3])
    uv_cv = x[:2] / x[2]
    uv_hab, _, _ = project_points(world_to_camera(X[None], pose), K)
    np.testing.assert_allclose(uv_cv, uv_hab[0], atol=1e-9)
    # Round trip back to habitat poses, with and without a reference.
    np.testing.assert_allclose(opencv_extrinsic_to_habitat_pose(E_world), pose, atol=1e-12)
    E_rel = habitat_pose_to_opencv_extrinsic(np.stack([pose, step]), reference_pose=ref)
    back = opencv_extrinsic_to_habitat_pose(E_rel, reference_pose=ref)
    np.testing.assert_allclose(back, np.stack([pose, step]), atol=1e-12)


def test_resize_intrinsics() -> None:
    K = intrinsics_from_hfov(90.0, 64, 48)
    K2 = resize_intrinsics(K, (48, 64), (24, 32))
    np.testing.assert_allclose(K2, intrinsics_from_hfov(90.0, 32, 24), atol=1e-12)
    p = np.array([[0.3, -0.2, -2.0]])
    uv, _, _ = project_points(p, K)
    uv2, _, _ = project_points(p, K2)
    np.testing.assert_allclose(uv2, uv / 2)
