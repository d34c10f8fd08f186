"""Frustum prior against closed-form camera geometry (identity, pure yaw, translation along the
optical axis) and against an independent per-pixel projection in numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from habitat_fih.models.geometry_prior import frustum_prior
from habitat_fih.models.vggt.pose_encoding import mat_to_quat

FOV = math.pi / 2  # 90° both ways: tan(fov / 2) = 1


def encode(rotation: np.ndarray, translation, fov: float = FOV) -> torch.Tensor:
    """Pose encoding [9] of an OpenCV camera-from-world [R | t]."""
    r = torch.tensor(rotation, dtype=torch.float64)
    quat = mat_to_quat(r)
    return torch.cat(
        [torch.tensor(translation, dtype=torch.float64), quat, torch.tensor([fov, fov])]
    ).float()


def yaw(theta: float) -> np.ndarray:
    """Camera-from-world rotation of a camera turned by `theta` about the (down) y axis."""
    c, s = math.cos(theta), math.sin(theta)
    # camera-to-world rotation about y; its transpose is camera-from-world
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T


def prior(key: torch.Tensor, cur: torch.Tensor, inv, size=(16, 16), **kw) -> torch.Tensor:
    return frustum_prior(key[None, None], cur[None], size, inv, **kw)[0, 0]  # [P, h, w]


def test_same_camera_sees_everything():
    cam = encode(yaw(0.3), [0.5, 0.0, -1.0])
    out = prior(cam, cam, [2.0, 0.5, 0.0])
    assert torch.allclose(out, torch.ones_like(out))


@pytest.mark.parametrize("theta_deg", [15.0, 30.0, 45.0, -30.0])
def test_pure_yaw(theta_deg):
    """Rotation only, the keyframe turned by theta: ray (x, y, 1) becomes
    (x cos t - sin t, y, x sin t + cos t) in the keyframe, inside iff z' > 0, |x'| <= z' and
    |y| <= z' -- at every depth. Turning right keeps the right part of the current view."""
    theta = math.radians(theta_deg)
    h, w = 10, 32
    out = prior(
        encode(yaw(theta), [0, 0, 0]),
        encode(yaw(0.0), [0, 0, 0]),
        [1.0, 0.0],
        (h, w),
        supersample=1,
    )
    x, y = np.meshgrid((np.arange(w) + 0.5) / w * 2 - 1, (np.arange(h) + 0.5) / h * 2 - 1)
    c, s = math.cos(theta), math.sin(theta)
    xk, zk = x * c - s, x * s + c
    expected = ((zk > 0) & (np.abs(xk) <= zk) & (np.abs(y) <= zk)).astype(np.float32)
    assert 0.2 < expected.mean() < 0.9
    for p in range(2):
        assert np.array_equal(out[p].numpy(), expected)
    assert (out[0, h // 2, -1] > out[0, h // 2, 0]) == (theta_deg > 0)


def test_keyframe_behind_sees_everything_keyframe_ahead_sees_far_points_only():
    """Keyframe 1 m behind on the optical axis: X_k = X_c + (0, 0, 1) has |x/z| < |x_c/z_c|,
    so everything is inside. Keyframe 1 m ahead: points nearer than 1 m are behind it, and a
    point at depth d on ray (x, y, 1) is inside iff |x| d / (d - 1) <= 1 (same for y)."""
    cur = encode(np.eye(3), [0, 0, 0])
    behind = encode(np.eye(3), [0, 0, 1.0])  # camera centre at z = -1 (t = -R c)
    ahead = encode(np.eye(3), [0, 0, -1.0])  # camera centre at z = +1
    inv = [2.0, 0.5, 0.25, 0.0]
    assert torch.allclose(prior(behind, cur, inv), torch.ones(4, 16, 16))
    out = prior(ahead, cur, inv, size=(16, 16), supersample=1)
    assert torch.all(out[0] == 0)  # depth 0.5 m < 1 m: behind the keyframe
    coords = (np.arange(16) + 0.5) / 16 * 2 - 1
    x, y = np.meshgrid(coords, coords)
    for p, d in ((1, 2.0), (2, 4.0)):
        expected = (np.maximum(np.abs(x), np.abs(y)) * d / (d - 1) <= 1).astype(np.float32)
        assert np.array_equal(out[p].numpy(), expected)
    assert torch.all(out[3] == 1)  # infinity: pure translation moves nothing


def test_matches_independent_numpy_projection():
    """A pitched, turned and shifted keyframe, depth 3 m: project every pixel centre in numpy."""
    c, s_ = math.cos(0.2), math.sin(0.2)
    pitch = np.array([[1, 0, 0], [0, c, -s_], [0, s_, c]])
    r_c, t_c = yaw(-0.1), np.array([0.1, 0.0, 0.2])
    r_k, t_k = pitch @ yaw(0.35), np.array([0.3, -0.1, 0.5])
    size, d, fov_k = (12, 20), 3.0, math.radians(70)
    cur = encode(r_c, t_c, FOV)
    key = encode(r_k, t_k, fov_k)
    out = prior(key, cur, [1 / d], size, supersample=1)[0].numpy()
    h, w = size
    u = (np.arange(w) + 0.5) / w * 2 - 1
    v = (np.arange(h) + 0.5) / h * 2 - 1
    uu, vv = np.meshgrid(u, v)
    points_c = np.stack([uu, vv, np.ones_like(uu)], -1) * d  # tan(45°) = 1
    world = (points_c - t_c) @ r_c  # R^T (X - t)
    points_k = world @ r_k.T + t_k
    z = points_k[..., 2]
    lim = math.tan(fov_k / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = (
            (z > 0) & (np.abs(points_k[..., 0] / z) <= lim) & (np.abs(points_k[..., 1] / z) <= lim)
        )
    assert 0 < inside.mean() < 1  # the pose is informative
    assert np.array_equal(out, inside.astype(np.float32))


def test_padding_keyframes_are_zero_and_bad_input_is_named():
    cam = encode(np.eye(3), [0, 0, 0])
    keys = torch.stack([cam, cam])[None]  # [1, 2, 9]
    out = frustum_prior(keys, cam[None], (4, 4), [0.0], key_valid=torch.tensor([[True, False]]))
    assert torch.all(out[0, 0] == 1) and torch.all(out[0, 1] == 0)
    with pytest.raises(ValueError, match="inverse_depths"):
        frustum_prior(keys, cam[None], (4, 4), [-1.0])
    with pytest.raises(ValueError, match="key_poses"):
        frustum_prior(cam[None], cam[None], (4, 4), [0.0])
    with pytest.raises(ValueError, match="current_poses"):
        frustum_prior(keys, cam[None, :8], (4, 4), [0.0])
