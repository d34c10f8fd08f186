"""Frustum prior: where, on the current view, could keyframe ``k`` have seen anything?

The covisibility target of keyframe ``k`` is, per current-view pixel, "was this surface point
inside keyframe ``k``'s view and not occluded". Given the two cameras (relative pose and field
of view) but no depth, the part that geometry alone decides is the frustum test: a current
pixel's ray, followed to depth ``d``, lands inside keyframe ``k``'s image or not. This module
computes that test for a fixed set of depth hypotheses (given as inverse depths, ``0`` = a point
at infinity, i.e. the rotation-only homography) as area fractions per output cell. The heatmap
head receives the maps as extra input channels (`FIHModelConfig.geometry_prior`) and learns
how to weigh them and where occlusion breaks them.

Cameras come as VGGT pose encodings ``[..., 9]`` (``absT_quaR_FoV``: OpenCV camera-from-world
translation, XYZW quaternion, vertical and horizontal FoV in radians; principal point at the
image centre), either predicted by VGGT or computed from the simulator's cameras (the
``frame_geometry`` sensor). Only the relative pose matters, so any common world frame works;
translations are in the encoding's units (metres for the sensor, VGGT's normalised scale for
its predictions), and so are the depth hypotheses.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from habitat_fih.models.vggt.pose_encoding import quat_to_mat

__all__ = ["frustum_prior"]


def frustum_prior(
    key_poses: Tensor,
    current_poses: Tensor,
    out_size: tuple[int, int],
    inverse_depths: Sequence[float],
    key_valid: Tensor | None = None,
    supersample: int = 4,
) -> Tensor:
    """Per keyframe and depth hypothesis, the fraction of each current-view cell whose ray
    point at that depth projects inside the keyframe's image.

    Args:
        key_poses: ``[B, K, 9]`` keyframe pose encodings.
        current_poses: ``[B, 9]`` current-view pose encodings.
        out_size: ``(h, w)`` of the maps (cells of the current view).
        inverse_depths: ``P`` values ``>= 0`` (``0`` = infinity), in the poses' units.
        key_valid: optional ``[B, K]`` bool; invalid (padding) keyframes get all-zero maps.
        supersample: rays per cell side; a cell's value is the fraction of its
            ``supersample²`` rays that pass the test.

    Returns:
        ``[B, K, P, h, w]`` float32 maps in ``[0, 1]``.

    Raises:
        ValueError: wrong shapes, a negative inverse depth or an empty hypothesis list.
    """
    if key_poses.dim() != 3 or key_poses.shape[-1] != 9:
        raise ValueError(f"key_poses must be [B, K, 9], got {tuple(key_poses.shape)}")
    b, k = key_poses.shape[:2]
    if tuple(current_poses.shape) != (b, 9):
        raise ValueError(f"current_poses must be [B={b}, 9], got {tuple(current_poses.shape)}")
    inv = [float(x) for x in inverse_depths]
    if not inv or any(not x >= 0.0 for x in inv):
        raise ValueError(f"inverse_depths must be a non-empty list of values >= 0, got {inv}")
    h, w = int(out_size[0]), int(out_size[1])
    if h < 1 or w < 1 or supersample < 1:
        raise ValueError(f"need out_size >= 1 and supersample >= 1, got {out_size}, {supersample}")
    if key_valid is not None and tuple(key_valid.shape) != (b, k):
        raise ValueError(f"key_valid must be [B={b}, K={k}], got {tuple(key_valid.shape)}")

    key_poses = key_poses.detach().float()
    current_poses = current_poses.detach().float()
    device = key_poses.device
    sh, sw = h * supersample, w * supersample
    # current-view rays (z = 1) through the centres of the supersampled cells
    tan_h = torch.tan(current_poses[:, 7] / 2)  # [B]
    tan_w = torch.tan(current_poses[:, 8] / 2)  # [B]
    ys = (torch.arange(sh, device=device, dtype=torch.float32) + 0.5) / sh * 2 - 1  # [sh]
    xs = (torch.arange(sw, device=device, dtype=torch.float32) + 0.5) / sw * 2 - 1  # [sw]
    ray_x = xs[None, None, :] * tan_w[:, None, None]  # [B, 1, sw]
    ray_y = ys[None, :, None] * tan_h[:, None, None]  # [B, sh, 1]
    rays = torch.stack(
        torch.broadcast_tensors(ray_x, ray_y, torch.ones_like(ray_x)), dim=-1
    )  # [B, sh, sw, 3]

    r_c = quat_to_mat(current_poses[:, 3:7])  # [B, 3, 3] camera-from-world
    t_c = current_poses[:, :3]  # [B, 3]
    r_k = quat_to_mat(key_poses[..., 3:7])  # [B, K, 3, 3]
    t_k = key_poses[..., :3]  # [B, K, 3]
    # X_k = R_k R_c^T (X_c - t_c) + t_k with X_c = ray / s (s = inverse depth); scaled by s
    # (s >= 0 keeps the sign of z): s X_k = R_rel ray + s (t_k - R_rel t_c)
    r_rel = r_k @ r_c.transpose(-1, -2)[:, None]  # [B, K, 3, 3]
    t_rel = t_k - (r_rel @ t_c[:, None, :, None])[..., 0]  # [B, K, 3]
    rotated = torch.einsum("bkij,bhwj->bkhwi", r_rel, rays)  # [B, K, sh, sw, 3]
    key_tan_h = torch.tan(key_poses[..., 7] / 2)[:, :, None, None]  # [B, K, 1, 1]
    key_tan_w = torch.tan(key_poses[..., 8] / 2)[:, :, None, None]
    maps = []
    for s in inv:
        p = rotated + s * t_rel[:, :, None, None, :]  # [B, K, sh, sw, 3]
        z = p[..., 2]
        zs = z.clamp_min(1e-9)
        inside = (
            (z > 1e-9)
            & ((p[..., 0] / zs).abs() <= key_tan_w)
            & ((p[..., 1] / zs).abs() <= key_tan_h)
        )  # [B, K, sh, sw]
        maps.append(inside.float())
    out = torch.stack(maps, dim=2)  # [B, K, P, sh, sw]
    if supersample > 1:
        out = F.avg_pool2d(out.reshape(b * k * len(inv), 1, sh, sw), supersample)
        out = out.reshape(b, k, len(inv), h, w)
    if key_valid is not None:
        out = out * key_valid[:, :, None, None, None].to(out.dtype)
    return out
