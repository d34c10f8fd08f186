"""Frame-indexed heatmap targets on batched torch tensors (training-side, any device).

The same two functions as :mod:`habitat_fih.geometry.targets` (numpy), batched over B target
views, each with its own N source frames (padded slots switched off by ``source_mask``):

* :func:`covisibility_heatmaps_torch` - occlusion-aware co-visibility area fractions;
* :func:`camera_position_heatmaps_torch` - Gaussians at the projected source camera centres.

Conventions, the co-visibility rule (the source depth read as a piecewise-planar surface,
:mod:`habitat_fih.geometry.surface`, tolerance ``max(abs_tol, rel_tol * z)``), the area-fraction
denominator (all pixels of a cell; ``overlap`` over the valid pixels) and the camera status
codes (:class:`~habitat_fih.geometry.targets.CameraStatus`) are exactly those of the numpy
module; see its docstring.  The surface tables come from the same ``surface.build_tables``.  Rigid transforms run in float64, projection and the depth
test in float32 with the same sequence of correctly rounded elementwise operations as numpy, so
per-pixel decisions agree and maps are equal.  Sources are processed in chunks of at most
``_CHUNK_ELEMS`` projected points (about 100 MB of temporaries).  Nothing here is
differentiable (targets, not losses).  Results live on the inputs' device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from habitat_fih.geometry.camera import camera_rays, validate_hfov
from habitat_fih.geometry.surface import (
    ArrayOps,
    agrees,
    build_tables,
    candidate_inverse_depths,
    containing_plane,
    footprint_agrees,
    occludes,
    tolerance,
)
from habitat_fih.geometry.targets import (
    BEHIND,
    IN_VIEW,
    MASKED,
    MIN_DEPTH,
    OCCLUDED,
    OUT_OF_VIEW,
    SAME_POSITION,
    SAME_POSITION_DIST,
    _as_min_overlap,
    _as_nonneg,
    _as_out_size,
    _as_sigma,
    area_resize_weights,
    focal_from_hfov,
)

__all__ = [
    "CameraPositionResultTorch",
    "CovisibilityResultTorch",
    "camera_position_heatmaps_torch",
    "covisibility_heatmaps_torch",
]

#: Max projected points (B x n_chunk x P) per processing chunk over the source axis.
_CHUNK_ELEMS = 1 << 22
_POSE_ATOL = 1e-4


@dataclass(frozen=True)
class CovisibilityResultTorch:
    """Batched :class:`~habitat_fih.geometry.targets.CovisibilityResult`.

    Attributes:
        maps: [B, N, h, w] float32 area fractions in [0, 1] (zero for masked sources).
        normalized: [B, N, h, w] float32, maps divided by their sums (zero maps stay zero).
        valid: [B, N] bool, ``overlap > min_overlap`` (False for masked sources).
        overlap: [B, N] float32 co-visible fraction of the VALID target pixels.
    """

    maps: torch.Tensor
    normalized: torch.Tensor
    valid: torch.Tensor
    overlap: torch.Tensor


@dataclass(frozen=True)
class CameraPositionResultTorch:
    """Batched :class:`~habitat_fih.geometry.targets.CameraPositionResult`.

    Attributes:
        maps: [B, N, h, w] float32 Gaussians (zero unless IN_VIEW, or OCCLUDED when kept).
        uv: [B, N, 2] float64 pixel coordinates in the target image (NaN if BEHIND /
            SAME_POSITION / MASKED).
        depth: [B, N] float64 planar depth of the camera centres (NaN if MASKED).
        status: [B, N] int64 :class:`~habitat_fih.geometry.targets.CameraStatus` codes
            (MASKED = -1 for padded slots).
    """

    maps: torch.Tensor
    uv: torch.Tensor
    depth: torch.Tensor
    status: torch.Tensor


# --------------------------------------------------------------------------- validation
def _require(name: str, value: object, ndim: int, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor {what}, got {type(value).__name__}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must have shape {what}, got shape {tuple(value.shape)}")
    if value.dtype == torch.bool or value.is_complex():
        raise ValueError(f"{name} must be real-valued, got dtype {value.dtype}")
    return value


def _require_shape(name: str, value: torch.Tensor, shape: tuple[int, ...], what: str) -> None:
    if tuple(value.shape) != shape:
        raise ValueError(f"{name} must have shape {what} = {shape}, got {tuple(value.shape)}")


def _bad_depth(depth: torch.Tensor) -> torch.Tensor:
    return ~torch.isfinite(depth) | (depth < 0)


def _bad_pose(pose: torch.Tensor) -> torch.Tensor:
    """[..., 4, 4] -> [...] bool: not finite, not rigid, or a reflection."""
    pose = pose.to(torch.float64)
    rot = pose[..., :3, :3]
    eye = torch.eye(3, dtype=torch.float64, device=pose.device)
    ortho = (rot.transpose(-1, -2) @ rot - eye).abs().amax(dim=(-2, -1))
    bottom_ref = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64, device=pose.device)
    bottom = (pose[..., 3, :] - bottom_ref).abs().amax(dim=-1)
    det = torch.linalg.det(rot) if rot.numel() else torch.ones(rot.shape[:-2], device=pose.device)
    finite = torch.isfinite(pose).all(dim=-1).all(dim=-1)
    return ~finite | ~(ortho <= _POSE_ATOL) | ~(bottom <= _POSE_ATOL) | ~(det > 0)


def _check_values(
    depths: dict[str, torch.Tensor], poses: dict[str, tuple[torch.Tensor, torch.Tensor | None]]
) -> None:
    """Raise ValueError naming the first bad depth / pose value; one host sync when all is well."""
    flags = [_bad_depth(d) for d in depths.values()]
    pose_flags = []
    for pose, mask in poses.values():
        bad = _bad_pose(pose)
        pose_flags.append(bad & mask if mask is not None else bad)
    anys = [f.any() for f in flags + pose_flags]
    if not anys or not bool(torch.stack(anys).any()):
        return
    for (name, depth), bad in zip(depths.items(), flags, strict=True):
        if bool(bad.any()):
            where = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise ValueError(
                f"{name} must be finite planar depths >= 0 in metres (0 = invalid), "
                f"got {depth[where].item()!r} at index {where}"
            )
    for name, bad in zip(poses, pose_flags, strict=True):
        if bool(bad.any()):
            where = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise ValueError(
                f"{name} must be rigid camera-to-world transforms [R | t; 0 0 0 1] with R a "
                f"rotation; pose at index {where} is {poses[name][0][where].tolist()!r}"
            )


def _mask(
    source_mask: torch.Tensor | None, b: int, n: int, device: torch.device
) -> torch.Tensor | None:
    if source_mask is None:
        return None
    if not isinstance(source_mask, torch.Tensor) or tuple(source_mask.shape) != (b, n):
        shape = tuple(source_mask.shape) if isinstance(source_mask, torch.Tensor) else None
        raise ValueError(f"source_mask must be a [B, N] = {(b, n)} tensor, got {shape!r}")
    return source_mask.to(device=device, dtype=torch.bool)


def _invert_pose(pose: torch.Tensor) -> torch.Tensor:
    """Rigid inverse [..., 4, 4] (same arithmetic as ``camera.invert_pose``)."""
    rot_t = pose[..., :3, :3].transpose(-1, -2)
    out = torch.zeros_like(pose)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -(rot_t @ pose[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def _area_average(values: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
    """[..., H, W] float64 -> [..., h, w] area average (reshape-mean when sizes divide)."""
    h, w = out_size
    H, W = values.shape[-2:]
    lead = values.shape[:-2]
    if H % h == 0 and W % w == 0:
        kh, kw = H // h, W // w
        blocks = values.reshape(*lead, h, kh, w, kw)  # [..., h, kh, w, kw]
        return blocks.sum(dim=(-3, -1)) / float(kh * kw)
    wy = torch.from_numpy(np.array(area_resize_weights(H, h))).to(values.device)  # [h, H]
    wx = torch.from_numpy(np.array(area_resize_weights(W, w))).to(values.device)  # [w, W]
    return wy @ values @ wx.T


TORCH_OPS = ArrayOps(
    where=torch.where,
    cat=lambda parts, axis: torch.cat(parts, dim=axis),
    stack=lambda parts, axis: torch.stack(parts, dim=axis),
    fmin=torch.fmin,
    fmax=torch.fmax,
)


def _surface_tables(
    depth: torch.Tensor, abs_tol: torch.Tensor, rel_tol: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Surface tables (``surface.build_tables``) of [B, N, H, W] depths, flattened per source.

    Returns cell [3, B, N, (H+1)(W+1)] and pixel [5, B, N, (H+2)(W+2)] float32.
    """
    b, n, h, w = depth.shape
    d32 = depth.reshape(b * n, h, w).to(torch.float32)
    inner = torch.where(d32 > 0, 1.0 / d32, float("nan"))
    inv = torch.full((b * n, h + 2, w + 2), float("nan"), dtype=torch.float32, device=depth.device)
    inv[:, 1:-1, 1:-1] = inner
    cell, pixel = build_tables(inv, abs_tol, rel_tol, TORCH_OPS)
    return cell.reshape(3, b, n, -1), pixel.reshape(5, b, n, -1)


def _edge_points(
    source: tuple[torch.Tensor, torch.Tensor, torch.Tensor, int],
    cell_lin: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    z: torch.Tensor,
    tol: torch.Tensor,
    x_src: torch.Tensor,
    rel: torch.Tensor,
    target: tuple[torch.Tensor, float, int, int],
    tols: tuple[float, float],
) -> torch.Tensor:
    """The K points in non-planar cells (``covisible._kernel``'s corner test, the same operations).

    ``source`` = (pixel tables [5, B, N, pixels], batch index [K], source index [K], source
    width); ``x_src`` [K, 3] float64; ``rel`` [K, 4, 4] source <- target; ``target`` =
    (target depths [B, H*W], focal, H, W).
    """
    pixel, bi, ni, ws = source
    r, c = torch.div(cell_lin, ws + 1, rounding_mode="floor"), cell_lin % (ws + 1)
    tl = r * (ws + 2) + c  # padded pixel of the top-left corner
    rows = [pixel[:, bi, ni, tl + off] for off in (0, 1, ws + 2, ws + 3)]
    cands = candidate_inverse_depths(rows, a, b)
    seen = footprint_agrees(z, cands, tol, TORCH_OPS)
    w_p = containing_plane(cands, a, b, TORCH_OPS)
    blocked = occludes(z, w_p, tol) & seen
    k = torch.nonzero(blocked, as_tuple=True)[0]
    if k.numel():
        blocked[k] = ~_target_sees_past(x_src[k], w_p[k], z[k], rel[k], bi[k], target, tols)
    return seen & ~blocked


def _target_sees_past(
    x_src: torch.Tensor,
    w_p: torch.Tensor,
    z: torch.Tensor,
    rel: torch.Tensor,
    bi: torch.Tensor,
    target: tuple[torch.Tensor, float, int, int],
    tols: tuple[float, float],
) -> torch.Tensor:
    """``covisible._target_sees_past`` on tensors (float64, the same elementwise sequence)."""
    tflat, f_t, H, W = target
    abs_tol, rel_tol = tols
    scale = 1.0 / (w_p.double() * z.double())
    o = [x_src[:, i] * scale - rel[:, i, 3] for i in range(3)]
    ot = [rel[:, 0, i] * o[0] + rel[:, 1, i] * o[1] + rel[:, 2, i] * o[2] for i in range(3)]
    d = -ot[2]
    front = d > MIN_DEPTH
    d_safe = torch.where(front, d, 1.0)
    u = W / 2.0 + f_t * (ot[0] / d_safe)
    v = H / 2.0 - f_t * (ot[1] / d_safe)
    inside = front & (u >= 0) & (u < W) & (v >= 0) & (v < H)
    lin = torch.where(inside, torch.floor(v) * W + torch.floor(u), 0.0).long()
    seen = tflat[bi, lin].double()
    rel_d = d * rel_tol
    tol = torch.where(rel_d > abs_tol, rel_d, abs_tol)
    return inside & (seen > d + tol)


# --------------------------------------------------------------------------- co-visibility
@torch.no_grad()
def covisibility_heatmaps_torch(
    target_depth: torch.Tensor,
    target_pose: torch.Tensor,
    source_depths: torch.Tensor,
    source_poses: torch.Tensor,
    hfov: float,
    out_size: tuple[int, int] = (64, 64),
    *,
    source_mask: torch.Tensor | None = None,
    abs_tol: float = 0.05,
    rel_tol: float = 0.02,
    min_overlap: float = 0.01,
    source_hfov: float | None = None,
    check_values: bool = True,
) -> CovisibilityResultTorch:
    """Batched occlusion-aware co-visibility maps (see ``targets.covisibility_heatmaps``).

    Args:
        target_depth: [B, H, W] planar depth of the target views (metres, 0 = invalid).
        target_pose: [B, 4, 4] camera-to-world poses of the target cameras.
        source_depths: [B, N, Hs, Ws] planar depths of the source frames.
        source_poses: [B, N, 4, 4] camera-to-world poses of the source cameras.
        hfov: target horizontal fov in degrees (shared by the batch).
        out_size: (h, w) output grid.
        source_mask: [B, N] bool, False for padded source slots (zero maps, not valid; their
            poses are not validated).
        abs_tol, rel_tol, min_overlap, source_hfov: as in the numpy version.
        check_values: validate depth / pose values (costs one host sync).

    Returns:
        :class:`CovisibilityResultTorch` (maps / normalized [B, N, h, w], valid / overlap [B, N]).
    """
    hfov = validate_hfov(hfov)
    src_hfov = hfov if source_hfov is None else validate_hfov(source_hfov, "source_hfov")
    h, w = _as_out_size(out_size)
    abs_tol = _as_nonneg("abs_tol", abs_tol)
    rel_tol = _as_nonneg("rel_tol", rel_tol)
    min_overlap = _as_min_overlap(min_overlap)
    tdepth = _require("target_depth", target_depth, 3, "[B, H, W]")
    sdepth = _require("source_depths", source_depths, 4, "[B, N, Hs, Ws]")
    b, H, W = tdepth.shape
    n, hs, ws = sdepth.shape[1:]
    _require_shape("source_depths", sdepth, (b, n, hs, ws), "[B, N, Hs, Ws]")
    tpose = _require("target_pose", target_pose, 3, "[B, 4, 4]")
    _require_shape("target_pose", tpose, (b, 4, 4), "[B, 4, 4]")
    spose = _require("source_poses", source_poses, 4, "[B, N, 4, 4]")
    _require_shape("source_poses", spose, (b, n, 4, 4), "[B, N, 4, 4]")
    device = tdepth.device
    mask = _mask(source_mask, b, n, device)
    if check_values:
        _check_values(
            {"target_depth": tdepth, "source_depths": sdepth},
            {"target_pose": (tpose, None), "source_poses": (spose, mask)},
        )

    f64 = torch.float64
    if b == 0 or n == 0:
        empty = torch.zeros((b, n, h, w), dtype=torch.float32, device=device)
        return CovisibilityResultTorch(
            maps=empty,
            normalized=empty.clone(),
            valid=torch.zeros((b, n), dtype=torch.bool, device=device),
            overlap=torch.zeros((b, n), dtype=torch.float32, device=device),
        )

    rays = torch.from_numpy(np.array(camera_rays(hfov, H, W))).to(device).reshape(-1, 3)
    tflat = tdepth.reshape(b, H * W)  # [B, P]
    tvalid = tflat > 0  # [B, P]
    pts = rays[None] * tflat.to(f64)[..., None]  # [B, P, 3] target camera frame
    rel = _invert_pose(spose.to(f64)) @ tpose.to(f64)[:, None]  # [B, N, 4, 4] source <- target
    f = focal_from_hfov(src_hfov, ws)
    pts_t = pts.transpose(1, 2)[:, None]  # [B, 1, 3, P]

    f32 = torch.float32
    abs_t = torch.tensor(abs_tol, dtype=f32, device=device)
    rel_t = torch.tensor(rel_tol, dtype=f32, device=device)
    cell, pixel = _surface_tables(sdepth, abs_t, rel_t)  # [3, B, N, cells], [5, B, N, pixels]
    neg_f = torch.tensor(-f, dtype=f32, device=device)
    half_w = torch.tensor(ws / 2.0, dtype=f32, device=device)
    half_h = torch.tensor(hs / 2.0, dtype=f32, device=device)
    min_z = torch.tensor(-MIN_DEPTH, dtype=f32, device=device)
    cols_f = torch.tensor(float(ws + 1), dtype=f32, device=device)
    half = torch.tensor(0.5, dtype=f32, device=device)
    covis = torch.empty((b, n, H * W), dtype=torch.bool, device=device)  # [B, N, P]
    step = max(1, _CHUNK_ELEMS // (b * H * W))
    for start in range(0, n, step):
        sl = slice(start, min(n, start + step))
        # Same op sequence as covisible._kernel: float64 transform, then float32.
        q64 = rel[:, sl, :3, :3] @ pts_t + rel[:, sl, :3, 3:4]  # [B, n_c, 3, P]
        q = q64.to(f32)
        x, y, zc = q[:, :, 0], q[:, :, 1], q[:, :, 2]  # zc = camera z = -planar depth
        scale = torch.div(neg_f, zc)  # f / depth
        u = x * scale + half_w  # continuous column
        v = half_h - y * scale  # continuous row
        inside = (zc < min_z) & (u >= 0) & (u < ws) & (v >= 0) & (v < hs)
        u = u + half  # padded-cell coordinates
        v = v + half
        # the outer half-pixel ring reads the nearest interior cell (targets: the same)
        col = torch.clamp(torch.floor(u), 1, max(ws - 1, 1))
        row = torch.clamp(torch.floor(v), 1, max(hs - 1, 1))
        a, bb = u - col, v - row  # fractional cell position
        lin = torch.where(inside, row * cols_f + col, torch.zeros_like(u)).long()
        z = -zc
        tol = tolerance(z, abs_t, rel_t, TORCH_OPS)
        w00 = torch.gather(cell[0][:, sl], 2, lin)
        w_hat = w00 + torch.gather(cell[1][:, sl], 2, lin) * a
        w_hat = w_hat + torch.gather(cell[2][:, sl], 2, lin) * bb
        edge = torch.isnan(w00) & inside
        ok = inside & agrees(z, w_hat, tol)
        bi, ni, pi = torch.nonzero(edge, as_tuple=True)
        if bi.numel():
            ok[bi, ni, pi] = _edge_points(
                (pixel, bi, ni + start, ws),
                lin[bi, ni, pi],
                a[bi, ni, pi],
                bb[bi, ni, pi],
                z[bi, ni, pi],
                tol[bi, ni, pi],
                q64[bi, ni, :, pi],
                rel[bi, ni + start],
                (tdepth.reshape(b, H * W), focal_from_hfov(hfov, W), H, W),
                (abs_tol, rel_tol),
            )
        covis[:, sl] = ok & tvalid[:, None]
    if mask is not None:
        covis &= mask[..., None]

    counts = covis.sum(dim=-1)  # [B, N]
    if H % h == 0 and W % w == 0:
        kh, kw = H // h, W // w
        cells = covis.reshape(b, n, h, kh, w, kw).sum(dim=(3, 5)).to(f32)  # [B, N, h, w]
        maps = cells / float(kh * kw)  # reshape-mean
        totals = counts.to(f32)[..., None, None]
        normalized = cells / torch.where(totals > 0, totals, torch.ones_like(totals))
    else:
        maps64 = _area_average(covis.reshape(b, n, H, W).to(f64), (h, w))  # [B, N, h, w]
        totals64 = maps64.sum(dim=(-2, -1), keepdim=True)
        maps = maps64.to(f32)
        normalized = (maps64 / torch.where(totals64 > 0, totals64, torch.ones_like(totals64))).to(
            f32
        )
    overlap64 = counts.to(f64) / tvalid.sum(dim=-1, keepdim=True).clamp(min=1).to(f64)
    return CovisibilityResultTorch(
        maps=maps,
        normalized=normalized,
        valid=overlap64 > min_overlap,
        overlap=overlap64.to(f32),
    )


# --------------------------------------------------------------------------- camera positions
@torch.no_grad()
def camera_position_heatmaps_torch(
    target_depth: torch.Tensor,
    target_pose: torch.Tensor,
    source_poses: torch.Tensor,
    hfov: float,
    out_size: tuple[int, int] = (64, 64),
    *,
    source_mask: torch.Tensor | None = None,
    sigma: float = 2.0,
    abs_tol: float = 0.05,
    rel_tol: float = 0.02,
    keep_occluded: bool = False,
    check_values: bool = True,
) -> CameraPositionResultTorch:
    """Batched source-camera position Gaussians (see ``targets.camera_position_heatmaps``).

    Args:
        target_depth: [B, H, W] planar depth of the target views (metres, 0 = invalid).
        target_pose: [B, 4, 4] camera-to-world poses of the target cameras.
        source_poses: [B, N, 4, 4] camera-to-world poses of the source cameras.
        hfov: target horizontal fov in degrees.
        out_size: (h, w) output grid (Gaussian in output-cell units).
        source_mask: [B, N] bool, False for padded slots (status MASKED, zero maps).
        sigma, abs_tol, rel_tol, keep_occluded: as in the numpy version.
        check_values: validate depth / pose values (costs one host sync).

    Returns:
        :class:`CameraPositionResultTorch` (maps [B, N, h, w], uv [B, N, 2], depth / status
        [B, N]).
    """
    hfov = validate_hfov(hfov)
    h, w = _as_out_size(out_size)
    sigma = _as_sigma(sigma)
    abs_tol = _as_nonneg("abs_tol", abs_tol)
    rel_tol = _as_nonneg("rel_tol", rel_tol)
    tdepth = _require("target_depth", target_depth, 3, "[B, H, W]")
    b, H, W = tdepth.shape
    tpose = _require("target_pose", target_pose, 3, "[B, 4, 4]")
    _require_shape("target_pose", tpose, (b, 4, 4), "[B, 4, 4]")
    spose = _require("source_poses", source_poses, 4, "[B, N, 4, 4]")
    n = spose.shape[1]
    _require_shape("source_poses", spose, (b, n, 4, 4), "[B, N, 4, 4]")
    device = tdepth.device
    mask = _mask(source_mask, b, n, device)
    if check_values:
        _check_values(
            {"target_depth": tdepth},
            {"target_pose": (tpose, None), "source_poses": (spose, mask)},
        )

    f64 = torch.float64
    inv_t = _invert_pose(tpose.to(f64))  # [B, 4, 4] target camera <- world
    centres = spose.to(f64)[..., :3, 3]  # [B, N, 3]
    q = centres @ inv_t[:, :3, :3].transpose(-1, -2) + inv_t[:, None, :3, 3]  # [B, N, 3]
    depth = -q[..., 2]
    f = focal_from_hfov(hfov, W)
    front = depth > MIN_DEPTH
    u = W / 2.0 + f * (q[..., 0] / depth)
    v = H / 2.0 - f * (q[..., 1] / depth)
    inside = front & (u >= 0) & (u < W) & (v >= 0) & (v < H)
    lin = torch.where(inside, torch.floor(v) * W + torch.floor(u), torch.zeros_like(u)).long()
    seen = torch.gather(tdepth.reshape(b, H * W), 1, lin).to(f64)  # [B, N]
    limit = depth - torch.clamp(rel_tol * depth, min=abs_tol)
    occluded = inside & (seen > 0) & (seen < limit)

    status = torch.full((b, n), int(IN_VIEW), dtype=torch.int64, device=device)
    status[~inside] = int(OUT_OF_VIEW)
    status[~front] = int(BEHIND)
    status[occluded] = int(OCCLUDED)
    same = torch.linalg.vector_norm(q, dim=-1) <= SAME_POSITION_DIST
    status[same] = int(SAME_POSITION)
    uv = torch.stack([u, v], dim=-1)
    uv[~front | same] = math.nan
    if mask is not None:
        status[~mask] = int(MASKED)
        uv[~mask] = math.nan
        depth = torch.where(mask, depth, torch.full_like(depth, math.nan))

    show = status == int(IN_VIEW)
    if keep_occluded:
        show |= status == int(OCCLUDED)
    uc = uv[..., 0] * (w / W)  # [B, N] output-cell units
    vc = uv[..., 1] * (h / H)
    xs = torch.arange(w, dtype=f64, device=device) + 0.5
    ys = torch.arange(h, dtype=f64, device=device) + 0.5
    gx = torch.exp(-((xs - uc[..., None]) ** 2) / (2.0 * sigma**2))  # [B, N, w]
    gy = torch.exp(-((ys - vc[..., None]) ** 2) / (2.0 * sigma**2))  # [B, N, h]
    maps = (gy[..., :, None] * gx[..., None, :]).float()  # [B, N, h, w]
    maps = torch.where(show[..., None, None], maps, torch.zeros_like(maps))
    return CameraPositionResultTorch(maps=maps, uv=uv, depth=depth, status=status)
