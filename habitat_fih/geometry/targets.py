"""Frame-indexed heatmap targets from simulator geometry (numpy; the simulator-side sensor).

For one TARGET view (the current frame) and N SOURCE frames (past keyframes) this module
derives, from depth + poses + intrinsics only:

* :func:`covisibility_heatmaps` - where in the target view each source frame saw the same
  surface (occlusion-aware co-visibility), as per-cell area fractions;
* :func:`camera_position_heatmaps` - where each source camera stands in the target view, as a
  Gaussian at the projection of its centre, with an in-view / behind / out-of-view / occluded
  status.

Camera conventions are those of :mod:`habitat_fih.geometry.camera` (habitat camera frame +X right,
+Y up, looking down -Z; planar depth in metres, 0 = invalid; camera-to-world 4x4 poses;
``fx = fy = (W/2) / tan(hfov/2)``, pixel centres at +0.5, rows grow along camera -Y).

Co-visibility rule
------------------
A target pixel with valid depth (> 0) is back-projected to its 3-D surface point ``X``.  It is
co-visible with source frame n when ``X`` lies in front of source camera n (planar depth
``z > 1e-6``), projects inside source image n (``0 <= u < Ws``, ``0 <= v < Hs``, continuous
coordinates) and source n saw that same surface there - not an occluder in front of it, nor
something behind it.  "What the source saw at (u, v)" is its depth image read as a surface
(:mod:`habitat_fih.geometry.surface`, in inverse depth ``w = 1/z``, which is affine in the pixel
coordinates on any plane):

* (u, v) falls in a **planar cell** (the 2 x 2 source pixel centres around it lie on one plane,
  checked with second differences): ``X`` is seen iff its depth agrees with that plane at
  (u, v) within ``max(abs_tol, rel_tol * z)``.  Exact for every surface orientation: a floor
  seen at a grazing angle, a wall at 10 degrees.
  In the outer half-pixel ring of the image (outside every cell) the nearest interior cell is
  read, its plane extended to the image edge.
* otherwise (a depth edge, a crease, a surface narrower than a pixel, an invalid neighbour - at
  most one source pixel from such a feature) the samples cannot place the
  feature between two pixel centres, and ``X`` is seen iff its inverse depth lies within the
  span of the four corners' own surfaces at (u, v) (each corner's constant depth and its plane
  extended from its centre), widened by the tolerance - UNLESS the pixel whose square contains
  (u, v) has a surface in front of ``X`` by more than the tolerance (an occluder the source
  saw).  Such an occluder is trusted unless the TARGET's own view shows free space there: the
  target sees, at the occluder point's nearest target pixel, a surface farther than it by more
  than the tolerance (then the occluder does not reach X's ray; after a pure turn this is
  always so, since both views share the centre).

So occlusion is exact away from depth edges, a point hidden behind a surface the source saw is
never co-visible where the target can see that surface, and after a pure turn every valid pixel
whose ray is inside the source frustum is co-visible (tested in closed form: floors, grazing
walls, stairs, translations, occluders).  Invalid target pixels (depth 0) are never co-visible.

Output cells: the target's ``H x W`` pixel grid is area-averaged onto ``out_size = (h, w)``.
Each cell's value is (co-visible target pixels' area inside the cell) / (the cell's WHOLE
area, invalid pixels included), so maps are true area fractions in [0, 1].  The per-source
``overlap`` is instead the co-visible fraction of the VALID target pixels.  When ``H % h == 0``
and ``W % w == 0`` this is a reshape-mean over ``(H/h) x (W/w)`` blocks; otherwise a general
area-weighted resize with fractional pixel overlaps (also used for upsampling).  The sensor
uses multiples.

Precision: the rigid transforms run in float64; projection and the depth test run in float32
as a fixed sequence of correctly rounded elementwise operations that the torch implementation
(:mod:`habitat_fih.geometry.targets_torch`) mirrors op for op, and the free-space check in
float64, so both take the same per-pixel decisions (float32 is ~1e-5 px / ~1e-7 relative depth
here, far below the tolerances).  Performance: one GEMM projects all N x P points at once; only
the points inside a frustum go through the surface lookup, and only those in non-planar cells
(a few per cent) through the corner test.  The sources' surface tables can be passed in
(``source_tables``) so that a caller with a frame memory builds them once per frame, as the FIH
task does (``benchmarks/bench_targets.py``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from habitat_fih.geometry.camera import MIN_DEPTH, camera_rays, invert_pose, validate_hfov
from habitat_fih.geometry.covisible import covisible_points
from habitat_fih.geometry.surface import SurfaceTables, numpy_tables

__all__ = [
    "MIN_DEPTH",
    "BEHIND",
    "IN_VIEW",
    "MASKED",
    "OCCLUDED",
    "OUT_OF_VIEW",
    "SAME_POSITION",
    "CameraPositionResult",
    "CameraStatus",
    "CovisibilityResult",
    "area_average",
    "area_resize_weights",
    "camera_position_heatmaps",
    "covisibility_heatmaps",
]

#: Tolerance on a pose's rotation block (``|R^T R - I|`` and bottom row) in validation.
_POSE_ATOL = 1e-4


class CameraStatus(IntEnum):
    """Where a source camera centre lies relative to the target view."""

    #: Projects inside the target image and nothing visible is in front of it.
    IN_VIEW = 0
    #: Planar depth in the target camera <= 0 (behind or level with the image plane).
    BEHIND = 1
    #: In front, but projects outside the target image.
    OUT_OF_VIEW = 2
    #: Projects inside, but the target's depth there is valid and closer than the camera
    #: centre by more than ``max(abs_tol, rel_tol * depth)`` (e.g. behind a wall).
    OCCLUDED = 3
    #: The source camera centre coincides with the target's (within
    #: :data:`SAME_POSITION_DIST`, e.g. after a pure turn): it has no image position.
    SAME_POSITION = 4
    #: Torch batches only: the source slot is masked out (padding).
    MASKED = -1


IN_VIEW = CameraStatus.IN_VIEW
BEHIND = CameraStatus.BEHIND
OUT_OF_VIEW = CameraStatus.OUT_OF_VIEW
OCCLUDED = CameraStatus.OCCLUDED
MASKED = CameraStatus.MASKED
SAME_POSITION = CameraStatus.SAME_POSITION
#: Camera centres closer than this (metres) are the same position (a turn in place moves the
#: sensor by float rounding only; one forward step is 0.25 m).
SAME_POSITION_DIST = 1e-3


@dataclass(frozen=True)
class CovisibilityResult:
    """Output of :func:`covisibility_heatmaps` for N source frames on an ``h x w`` grid.

    Attributes:
        maps: [N, h, w] float32 in [0, 1], area fraction of co-visible target pixels per cell.
        normalized: [N, h, w] float32, each map divided by its sum (all-zero maps stay zero).
        valid: [N] bool, ``overlap > min_overlap``.
        overlap: [N] float32, fraction of the VALID target pixels (depth > 0) that are
            co-visible (0 when no pixel is valid): sky and beyond-range pixels do not count, so a
            perfect match is 1 on an outdoor view too.  ``maps[n].mean()`` is the fraction of ALL
            pixels.
    """

    maps: np.ndarray
    normalized: np.ndarray
    valid: np.ndarray
    overlap: np.ndarray


@dataclass(frozen=True)
class CameraPositionResult:
    """Output of :func:`camera_position_heatmaps` for N source cameras on an ``h x w`` grid.

    Attributes:
        maps: [N, h, w] float32 Gaussians ``exp(-r^2 / (2 sigma^2))`` around the projected
            camera centre in output-cell units (value 1 at the exact point; the largest cell
            value is <= 1); all zero unless the status is IN_VIEW (or OCCLUDED with
            ``keep_occluded=True``).
        uv: [N, 2] float64 exact continuous pixel coordinates in the target image (NaN where
            BEHIND or SAME_POSITION).
        depth: [N] float64 planar depth of each camera centre in the target camera frame.
        status: [N] int64 :class:`CameraStatus` codes.
    """

    maps: np.ndarray
    uv: np.ndarray
    depth: np.ndarray
    status: np.ndarray


# --------------------------------------------------------------------------- validation
def _as_depth(name: str, value: object, ndim: int, what: str) -> np.ndarray:
    """Validate a depth array; floating input keeps its dtype (no full-size float64 copy)."""
    arr = np.asarray(value)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have shape {what}, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float64)
    elif not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be a real-valued depth array, got dtype {arr.dtype}")
    if arr.size and not (arr.min() >= 0 and np.isfinite(arr.max())):  # fast path: 2 passes
        bad = ~np.isfinite(arr) | (arr < 0)
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} must be finite planar depths >= 0 in metres (0 = invalid), "
            f"got {arr[where]!r} at index {where}"
        )
    return arr


def _as_poses(name: str, value: object, lead: tuple[int, ...], what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != lead + (4, 4):
        raise ValueError(f"{name} must have shape {what}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr[~np.isfinite(arr)][0]!r}")
    rot = arr[..., :3, :3]
    ortho = np.abs(np.matmul(np.swapaxes(rot, -1, -2), rot) - np.eye(3)).max(initial=0.0)
    bottom = np.abs(arr[..., 3, :] - np.array([0.0, 0.0, 0.0, 1.0])).max(initial=0.0)
    det_ok = np.all(np.linalg.det(rot) > 0) if rot.size else True
    if ortho > _POSE_ATOL or bottom > _POSE_ATOL or not det_ok:
        raise ValueError(
            f"{name} must be rigid camera-to-world transforms [R | t; 0 0 0 1] with R a "
            f"rotation; got max |R^T R - I| = {ortho:.3g}, max bottom-row error = {bottom:.3g}"
        )
    return arr


def _as_out_size(out_size: tuple[int, int]) -> tuple[int, int]:
    try:
        h, w = out_size
    except (TypeError, ValueError):
        raise ValueError(f"out_size must be a pair (h, w), got {out_size!r}") from None
    if int(h) != h or int(w) != w or h < 1 or w < 1:
        raise ValueError(f"out_size must be positive integers (h, w), got {out_size!r}")
    return int(h), int(w)


def _as_nonneg(name: str, value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return v


def _as_min_overlap(value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and 0.0 <= v < 1.0):
        raise ValueError(f"min_overlap must be in [0, 1), got {value!r}")
    return v


def _as_sigma(value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"sigma must be finite and > 0 (output cells), got {value!r}")
    return v


def focal_from_hfov(hfov: float, width: int) -> float:
    """``fx = fy = (W / 2) / tan(hfov / 2)`` for ``hfov`` in degrees."""
    return (width / 2.0) / math.tan(math.radians(hfov) / 2.0)


# --------------------------------------------------------------------------- area resize
@functools.lru_cache(maxsize=64)
def _area_weights_cached(n_in: int, n_out: int) -> np.ndarray:
    scale = n_in / n_out  # input pixels per output cell
    edges = np.arange(n_out + 1, dtype=np.float64) * scale
    k = np.arange(n_in, dtype=np.float64)[None, :]
    overlap = np.minimum(edges[1:, None], k + 1.0) - np.maximum(edges[:-1, None], k)
    weights = np.clip(overlap, 0.0, None) / scale
    weights.setflags(write=False)
    return weights


def area_resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """Area-resampling matrix [n_out, n_in] along one axis (rows sum to 1, read-only).

    Entry (a, k) = length of input pixel ``[k, k+1)`` inside output cell ``a`` (the interval
    ``[a, a+1) * n_in / n_out``) divided by the cell length.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"sizes must be >= 1, got n_in={n_in}, n_out={n_out}")
    return _area_weights_cached(int(n_in), int(n_out))


def block_sum(values: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """Sums over non-overlapping ``kh x kw`` blocks: [..., H, W] -> [..., H/kh, W/kw].

    Bool input is counted into int32; other dtypes keep their own.  Implemented with strided
    slice additions, which numpy runs much faster than a reduction over small inner axes.
    """
    values = np.asarray(values)
    H, W = values.shape[-2:]
    if H % kh or W % kw:
        raise ValueError(f"block ({kh}, {kw}) must divide the size ({H}, {W})")
    lead = values.shape[:-2]
    if values.dtype == bool:
        values = values.view(np.uint8)
        acc_dtype: np.dtype = np.dtype(np.int32)
    else:
        acc_dtype = values.dtype
    cols = values.reshape(*lead, H, W // kw, kw)  # [..., H, w, kw]
    x = cols[..., 0].astype(acc_dtype)  # [..., H, w]
    for k in range(1, kw):
        x += cols[..., k]
    rows = x.reshape(*lead, H // kh, kh, W // kw)  # [..., h, kh, w]
    y = rows[..., 0, :].copy()  # [..., h, w]
    for k in range(1, kh):
        y += rows[..., k, :]
    return y


def area_average(values: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """Area-average [..., H, W] onto [..., h, w] (float64; see the module docstring).

    A reshape-mean over ``(H/h) x (W/w)`` blocks when both divide; otherwise the general
    area-weighted resize ``Wy @ values @ Wx^T`` (:func:`area_resize_weights`).
    """
    values = np.asarray(values)
    h, w = _as_out_size(out_size)
    H, W = values.shape[-2:]
    if H % h == 0 and W % w == 0:
        kh, kw = H // h, W // w
        return block_sum(values.astype(np.float64, copy=False), kh, kw) / float(kh * kw)
    wy = area_resize_weights(H, h)  # [h, H]
    wx = area_resize_weights(W, w)  # [w, W]
    return np.matmul(np.matmul(wy, values.astype(np.float64, copy=False)), wx.T)


# --------------------------------------------------------------------------- co-visibility
def covisibility_heatmaps(
    target_depth: np.ndarray,
    target_pose: np.ndarray,
    source_depths: np.ndarray,
    source_poses: np.ndarray,
    hfov: float,
    out_size: tuple[int, int] = (64, 64),
    *,
    abs_tol: float = 0.05,
    rel_tol: float = 0.02,
    min_overlap: float = 0.01,
    source_hfov: float | None = None,
    source_tables: tuple[SurfaceTables, np.ndarray] | None = None,
) -> CovisibilityResult:
    """Per-source co-visibility maps of the target view (occlusion-aware).

    Args:
        target_depth: [H, W] planar depth of the target view in metres (0 = invalid).
        target_pose: [4, 4] camera-to-world pose of the target camera.
        source_depths: [N, Hs, Ws] planar depths of the N source frames (N may be 0).
        source_poses: [N, 4, 4] camera-to-world poses of the source cameras.
        hfov: horizontal field of view of the target camera in degrees, in (0, 180).
        out_size: (h, w) output grid; any size (area-averaged, see the module docstring).
        abs_tol, rel_tol: depth agreement tolerance ``max(abs_tol, rel_tol * z)`` in metres.
        min_overlap: a source is ``valid`` when its co-visible fraction exceeds this.
        source_hfov: hfov of the source cameras (defaults to ``hfov``).
        source_tables: optional ``(tables, slots)``: the sources' surface tables computed
            beforehand (``surface.numpy_tables`` of these depths with the same tolerances, e.g.
            cached per frame as the FIH task does) and, per source, its index in them.

    Returns:
        :class:`CovisibilityResult` with maps / normalized [N, h, w], valid / overlap [N].

    Raises:
        ValueError: bad shapes, NaN / infinite / negative depths, non-rigid poses, hfov outside
            (0, 180), negative tolerances; the message names the offending value.
    """
    hfov = validate_hfov(hfov)
    src_hfov = hfov if source_hfov is None else validate_hfov(source_hfov, "source_hfov")
    h, w = _as_out_size(out_size)
    abs_tol = _as_nonneg("abs_tol", abs_tol)
    rel_tol = _as_nonneg("rel_tol", rel_tol)
    min_overlap = _as_min_overlap(min_overlap)
    tdepth = _as_depth("target_depth", target_depth, 2, "[H, W]")
    sdepth = _as_depth("source_depths", source_depths, 3, "[N, Hs, Ws]")
    n, hs, ws = sdepth.shape
    tpose = _as_poses("target_pose", target_pose, (), "[4, 4]")
    spose = _as_poses("source_poses", source_poses, (n,), f"[N={n}, 4, 4]")
    H, W = tdepth.shape
    if n == 0:
        empty = np.zeros((0, h, w), dtype=np.float32)
        return CovisibilityResult(
            maps=empty,
            normalized=empty.copy(),
            valid=np.zeros(0, dtype=bool),
            overlap=np.zeros(0, dtype=np.float32),
        )

    flat_depth = tdepth.reshape(-1)  # [H*W]
    valid_idx = np.flatnonzero(flat_depth > 0)  # [P]
    num_valid = valid_idx.size
    rays = camera_rays(hfov, H, W).reshape(-1, 3)  # [H*W, 3]
    pts = rays[valid_idx] * flat_depth[valid_idx, None].astype(np.float64)  # [P, 3] target cam

    rel = np.matmul(invert_pose(spose), tpose)  # [N, 4, 4] source camera <- target camera
    f = focal_from_hfov(src_hfov, ws)
    if source_tables is None:
        tables, slots = numpy_tables(sdepth, abs_tol, rel_tol), np.arange(n, dtype=np.intp)
    else:
        tables, slots = _as_tables(source_tables, n, hs, ws)
    target = (tdepth, focal_from_hfov(hfov, W))
    covis = covisible_points(rel, pts, tables, slots, f, abs_tol, rel_tol, target)  # [N, P]

    counts = np.count_nonzero(covis, axis=1)  # [N]
    if num_valid == H * W:
        full = covis.reshape(n, H, W)
    else:
        full = np.zeros((n, H * W), dtype=bool)
        full[:, valid_idx] = covis
        full = full.reshape(n, H, W)
    if H % h == 0 and W % w == 0:
        kh, kw = H // h, W // w
        cell_counts = block_sum(full, kh, kw) if kh * kw > 1 else full  # [N, h, w]
        maps = cell_counts.astype(np.float32)
        maps /= np.float32(kh * kw)  # reshape-mean
        totals = counts.astype(np.float32)[:, None, None]  # = maps[n].sum() * kh * kw exactly
        normalized = cell_counts.astype(np.float32)
        normalized /= np.where(totals > 0, totals, np.float32(1.0))
    else:
        maps64 = area_average(full, (h, w))
        totals64 = maps64.sum(axis=(1, 2), keepdims=True)
        maps = maps64.astype(np.float32)
        normalized = (maps64 / np.where(totals64 > 0, totals64, 1.0)).astype(np.float32)
    overlap64 = counts / float(max(num_valid, 1))  # of the VALID target pixels
    return CovisibilityResult(
        maps=maps,
        normalized=normalized,
        valid=overlap64 > min_overlap,
        overlap=overlap64.astype(np.float32),
    )


def _as_tables(
    source_tables: tuple[SurfaceTables, np.ndarray], n: int, hs: int, ws: int
) -> tuple[SurfaceTables, np.ndarray]:
    tables, slots = source_tables
    slots = np.asarray(slots, dtype=np.intp)
    shape = tables.pixel.shape
    if tables.pixel.ndim != 4 or shape[0] != 5 or shape[2:] != (hs + 2, ws + 2):
        raise ValueError(
            f"source_tables must hold the tables of [*, {hs}, {ws}] depths (pixel table "
            f"[5, *, {hs + 2}, {ws + 2}]), got pixel table shape {shape}"
        )
    if slots.shape != (n,) or (n and not (0 <= slots.min() and slots.max() < shape[1])):
        raise ValueError(
            f"source_tables slots must be {n} indices in [0, {shape[1]}), got {slots.tolist()}"
        )
    return tables, slots


# --------------------------------------------------------------------------- camera positions
def camera_position_heatmaps(
    target_depth: np.ndarray,
    target_pose: np.ndarray,
    source_poses: np.ndarray,
    hfov: float,
    out_size: tuple[int, int] = (64, 64),
    *,
    sigma: float = 2.0,
    abs_tol: float = 0.05,
    rel_tol: float = 0.02,
    keep_occluded: bool = False,
) -> CameraPositionResult:
    """Gaussian maps at the projection of each source camera centre into the target view.

    Args:
        target_depth: [H, W] planar depth of the target view (metres, 0 = invalid); used for
            the occlusion test at the nearest pixel.
        target_pose: [4, 4] camera-to-world pose of the target camera.
        source_poses: [N, 4, 4] camera-to-world poses of the source cameras (their centres are
            ``source_poses[:, :3, 3]``).
        hfov: target horizontal fov in degrees.
        out_size: (h, w) output grid.  The Gaussian is evaluated at output-cell centres in cell
            units: ``uc = u * w / W``, ``vc = v * h / H``; cell (a, b) has centre (b+.5, a+.5).
        sigma: Gaussian standard deviation in output cells.
        abs_tol, rel_tol: the camera is OCCLUDED when the target depth at its pixel is valid
            and ``< depth - max(abs_tol, rel_tol * depth)``.
        keep_occluded: keep the Gaussian for OCCLUDED cameras (default: zero map).

    Returns:
        :class:`CameraPositionResult` (maps [N, h, w], uv [N, 2], depth [N], status [N]).
    """
    hfov = validate_hfov(hfov)
    h, w = _as_out_size(out_size)
    sigma = _as_sigma(sigma)
    abs_tol = _as_nonneg("abs_tol", abs_tol)
    rel_tol = _as_nonneg("rel_tol", rel_tol)
    tdepth = _as_depth("target_depth", target_depth, 2, "[H, W]")
    tpose = _as_poses("target_pose", target_pose, (), "[4, 4]")
    spose = np.asarray(source_poses, dtype=np.float64)
    if spose.ndim != 3:
        raise ValueError(f"source_poses must have shape [N, 4, 4], got shape {spose.shape}")
    spose = _as_poses("source_poses", spose, (spose.shape[0],), "[N, 4, 4]")
    n = spose.shape[0]
    H, W = tdepth.shape

    inv_t = invert_pose(tpose)  # [4, 4] target camera <- world
    centres = spose[:, :3, 3]  # [N, 3] world
    q = np.matmul(centres, inv_t[:3, :3].T) + inv_t[:3, 3]  # [N, 3] target camera frame
    depth = -q[:, 2]
    f = focal_from_hfov(hfov, W)
    front = depth > MIN_DEPTH
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        u = W / 2.0 + f * (q[:, 0] / depth)
        v = H / 2.0 - f * (q[:, 1] / depth)
        inside = front & (u >= 0) & (u < W) & (v >= 0) & (v < H)
        lin = np.where(inside, np.floor(v) * W + np.floor(u), 0.0).astype(np.intp)
    seen = tdepth.reshape(-1)[lin]  # [N] target depth at the camera's pixel
    occluded = inside & (seen > 0) & (seen < depth - np.maximum(abs_tol, rel_tol * depth))

    status = np.full(n, int(IN_VIEW), dtype=np.int64)
    status[~inside] = int(OUT_OF_VIEW)
    status[~front] = int(BEHIND)
    status[occluded] = int(OCCLUDED)
    same = np.linalg.norm(q, axis=1) <= SAME_POSITION_DIST
    status[same] = int(SAME_POSITION)
    uv = np.stack([u, v], axis=-1)
    uv[~front | same] = np.nan

    show = status == int(IN_VIEW)
    if keep_occluded:
        show |= status == int(OCCLUDED)
    maps = _gaussian_maps(uv, show, (H, W), (h, w), sigma)
    return CameraPositionResult(maps=maps, uv=uv, depth=depth, status=status)


def _gaussian_maps(
    uv: np.ndarray,
    show: np.ndarray,
    image_size: tuple[int, int],
    out_size: tuple[int, int],
    sigma: float,
) -> np.ndarray:
    (H, W), (h, w) = image_size, out_size
    n = uv.shape[0]
    maps = np.zeros((n, h, w), dtype=np.float32)
    if not show.any():
        return maps
    uc = uv[show, 0] * (w / W)  # [M] output-cell units
    vc = uv[show, 1] * (h / H)
    xs = np.arange(w, dtype=np.float64) + 0.5
    ys = np.arange(h, dtype=np.float64) + 0.5
    gx = np.exp(-((xs[None, :] - uc[:, None]) ** 2) / (2.0 * sigma**2))  # [M, w]
    gy = np.exp(-((ys[None, :] - vc[:, None]) ** 2) / (2.0 * sigma**2))  # [M, h]
    maps[show] = (gy[:, :, None] * gx[:, None, :]).astype(np.float32)
    return maps
