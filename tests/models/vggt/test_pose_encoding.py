"""Pose encoding absT_quaR_FoV <-> OpenCV extrinsics / intrinsics, quaternion conversions."""

from __future__ import annotations

import math

import pytest
import torch

from habitat_fih.models.vggt import (
    extri_intri_to_pose_encoding,
    mat_to_quat,
    pose_encoding_to_extri_intri,
    quat_to_mat,
)


def _random_quats(n: int, seed: int = 0) -> torch.Tensor:
    q = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[:, 3:] < 0, -q, q)  # w >= 0


def test_known_rotation_90_degree_yaw() -> None:
    s = math.sqrt(0.5)
    q = torch.tensor([0.0, s, 0.0, s], dtype=torch.float64)  # XYZW: +90 deg about +y
    expected = torch.tensor(
        [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]], dtype=torch.float64
    )
    torch.testing.assert_close(quat_to_mat(q), expected)
    torch.testing.assert_close(mat_to_quat(expected), q)
    # Rotating the camera's forward axis (z) by it gives +x.
    torch.testing.assert_close(
        expected @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64),
        torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
    )


def test_known_intrinsics() -> None:
    H, W = 480, 640
    fov_h, fov_w = 2 * math.atan(240 / 500), 2 * math.atan(320 / 400)
    enc = torch.tensor([[[1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 1.0, fov_h, fov_w]]], dtype=torch.float64)
    extr, intr = pose_encoding_to_extri_intri(enc, (H, W))
    assert extr.shape == (1, 1, 3, 4) and intr.shape == (1, 1, 3, 3)
    torch.testing.assert_close(
        intr[0, 0], torch.tensor([[400.0, 0, 320], [0, 500.0, 240], [0, 0, 1]], dtype=torch.float64)
    )
    torch.testing.assert_close(
        extr[0, 0],
        torch.tensor([[1.0, 0, 0, 1], [0, 1.0, 0, 2], [0, 0, 1.0, 3]], dtype=torch.float64),
    )


def test_round_trip_random_poses() -> None:
    g = torch.Generator().manual_seed(3)
    B, S, H, W = 2, 5, 294, 518
    q = _random_quats(B * S).reshape(B, S, 4)
    t = torch.randn(B, S, 3, generator=g, dtype=torch.float64) * 3
    fov = torch.rand(B, S, 2, generator=g, dtype=torch.float64) * 2.0 + 0.3
    enc = torch.cat([t, q, fov], dim=-1)
    extr, intr = pose_encoding_to_extri_intri(enc, (H, W))
    R = extr[..., :3]
    torch.testing.assert_close(
        R @ R.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(B, S, 3, 3)
    )
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(B, S, dtype=torch.float64))
    torch.testing.assert_close(extri_intri_to_pose_encoding(extr, intr, (H, W)), enc)


def test_mat_to_quat_is_stable_near_180_degrees() -> None:
    # w ~ 0 and single dominant axes: the cases where a naive trace formula divides by ~0.
    axes = torch.eye(3, dtype=torch.float64)
    angles = torch.tensor([math.pi, math.pi - 1e-7, math.pi - 1e-3], dtype=torch.float64)
    q = torch.cat(
        [
            axes[:, None] * torch.sin(angles / 2)[None, :, None],
            torch.cos(angles / 2)[None, :, None].expand(3, -1, 1),
        ],
        dim=-1,
    ).reshape(-1, 4)
    q = torch.cat([q, _random_quats(200, seed=9)])
    back = mat_to_quat(quat_to_mat(q))
    assert torch.isfinite(back).all()
    # q and -q are the same rotation; compare up to sign.
    torch.testing.assert_close(back.abs(), q.abs(), atol=1e-9, rtol=0)
    torch.testing.assert_close(quat_to_mat(back), quat_to_mat(q), atol=1e-9, rtol=0)
    assert (back[:, 3] >= 0).all()


def test_quat_to_mat_ignores_quaternion_scale() -> None:
    q = _random_quats(4, seed=2)
    torch.testing.assert_close(quat_to_mat(3.0 * q), quat_to_mat(q))


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match=r"\[\.\.\., 9\]"):
        pose_encoding_to_extri_intri(torch.zeros(1, 2, 8), (10, 10))
    with pytest.raises(ValueError, match="3, 4"):
        extri_intri_to_pose_encoding(torch.zeros(1, 3, 3), torch.zeros(1, 3, 3), (10, 10))
    with pytest.raises(ValueError, match="4"):
        quat_to_mat(torch.zeros(3))
