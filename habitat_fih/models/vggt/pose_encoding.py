"""VGGT pose encoding `absT_quaR_FoV` and quaternion <-> rotation-matrix conversions.

Pose encoding [..., 9] = translation T (3), rotation quaternion in XYZW order (4), fov_h, fov_w
(radians). Extrinsics [..., 3, 4] = [R | T] are OpenCV camera-from-world (x right, y down,
z forward); intrinsics [..., 3, 3] have fy = (H/2)/tan(fov_h/2), fx = (W/2)/tan(fov_w/2) and the
principal point at the image centre (W/2, H/2).
"""

from __future__ import annotations

import torch
from torch import Tensor


def quat_to_mat(quat: Tensor) -> Tensor:
    """Quaternions [..., 4] (XYZW, any non-zero norm) -> rotation matrices [..., 3, 3]."""
    if quat.shape[-1] != 4:
        raise ValueError(f"quaternions must have shape [..., 4], got {tuple(quat.shape)}")
    x, y, z, w = quat.unbind(-1)
    s = 2.0 / (quat * quat).sum(-1)
    m = torch.stack(
        [
            1 - s * (y * y + z * z),
            s * (x * y - z * w),
            s * (x * z + y * w),
            s * (x * y + z * w),
            1 - s * (x * x + z * z),
            s * (y * z - x * w),
            s * (x * z - y * w),
            s * (y * z + x * w),
            1 - s * (x * x + y * y),
        ],
        dim=-1,
    )
    return m.reshape(*quat.shape[:-1], 3, 3)


def mat_to_quat(mat: Tensor) -> Tensor:
    """Rotation matrices [..., 3, 3] -> unit quaternions [..., 4] (XYZW, w >= 0).

    Shepperd's method: of the four algebraically equivalent formulas, each element uses the
    one whose divisor (2x the largest of |w|, |x|, |y|, |z|) is largest, so no division by a
    small number happens for any rotation.
    """
    if mat.shape[-2:] != (3, 3):
        raise ValueError(f"rotation matrices must have shape [..., 3, 3], got {tuple(mat.shape)}")
    m = mat.unbind(-1)  # columns; m[j][..., i] = mat[..., i, j]
    m00, m10, m20 = m[0].unbind(-1)
    m01, m11, m21 = m[1].unbind(-1)
    m02, m12, m22 = m[2].unbind(-1)
    # 4 * (w^2, x^2, y^2, z^2)
    sq = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22],
        dim=-1,
    )
    root = sq.clamp(min=0).sqrt()  # 2|w|, 2|x|, 2|y|, 2|z|
    # Each candidate row is (x, y, z, w) * 4 * (its pivot component).
    candidates = torch.stack(
        [
            torch.stack([m21 - m12, m02 - m20, m10 - m01, root[..., 0] ** 2], dim=-1),
            torch.stack([root[..., 1] ** 2, m01 + m10, m02 + m20, m21 - m12], dim=-1),
            torch.stack([m01 + m10, root[..., 2] ** 2, m12 + m21, m02 - m20], dim=-1),
            torch.stack([m02 + m20, m12 + m21, root[..., 3] ** 2, m10 - m01], dim=-1),
        ],
        dim=-2,
    )  # [..., 4 candidates, 4]
    candidates = candidates / (2.0 * root.clamp(min=0.1))[..., None]
    best = sq.argmax(dim=-1)  # [...]
    idx = best[..., None, None].expand(*best.shape, 1, 4)
    quat = candidates.gather(-2, idx).squeeze(-2)  # [..., 4]
    quat = quat / quat.norm(dim=-1, keepdim=True)
    return torch.where(quat[..., 3:] < 0, -quat, quat)


def pose_encoding_to_extri_intri(
    pose_enc: Tensor, image_hw: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Decode `pose_enc` [B, S, 9] (any leading dims) for images of size (H, W).

    Returns:
        extrinsics [B, S, 3, 4] (OpenCV camera-from-world [R | T]) and
        intrinsics [B, S, 3, 3].
    """
    if pose_enc.shape[-1] != 9:
        raise ValueError(f"pose_enc must have shape [..., 9], got {tuple(pose_enc.shape)}")
    height, width = image_hw
    t, quat, fov_h, fov_w = (
        pose_enc[..., :3],
        pose_enc[..., 3:7],
        pose_enc[..., 7],
        pose_enc[..., 8],
    )
    extrinsics = torch.cat([quat_to_mat(quat), t[..., None]], dim=-1)  # [..., 3, 4]
    fy = (height / 2.0) / torch.tan(fov_h / 2.0)
    fx = (width / 2.0) / torch.tan(fov_w / 2.0)
    intrinsics = torch.zeros(
        *pose_enc.shape[:-1], 3, 3, dtype=pose_enc.dtype, device=pose_enc.device
    )
    intrinsics[..., 0, 0] = fx
    intrinsics[..., 1, 1] = fy
    intrinsics[..., 0, 2] = width / 2.0
    intrinsics[..., 1, 2] = height / 2.0
    intrinsics[..., 2, 2] = 1.0
    return extrinsics, intrinsics


def extri_intri_to_pose_encoding(
    extrinsics: Tensor, intrinsics: Tensor, image_hw: tuple[int, int]
) -> Tensor:
    """Encode extrinsics [B, S, 3, 4] and intrinsics [B, S, 3, 3] -> pose_enc [B, S, 9]."""
    if extrinsics.shape[-2:] != (3, 4) or intrinsics.shape[-2:] != (3, 3):
        raise ValueError(
            f"need extrinsics [..., 3, 4] and intrinsics [..., 3, 3], got "
            f"{tuple(extrinsics.shape)} and {tuple(intrinsics.shape)}"
        )
    height, width = image_hw
    quat = mat_to_quat(extrinsics[..., :3, :3])
    fov_h = 2.0 * torch.atan((height / 2.0) / intrinsics[..., 1, 1])
    fov_w = 2.0 * torch.atan((width / 2.0) / intrinsics[..., 0, 0])
    return torch.cat([extrinsics[..., :3, 3], quat, fov_h[..., None], fov_w[..., None]], dim=-1)
