"""The co-visibility decision for every (source, target pixel) pair (numpy kernel).

:func:`covisible_points` implements the rule stated in :mod:`habitat_fih.geometry.targets`
(whose :func:`~habitat_fih.geometry.targets.covisibility_heatmaps` validates the inputs and turns
the per-pixel decisions into maps) on the sources' surface tables
(:mod:`habitat_fih.geometry.surface`).  :mod:`habitat_fih.geometry.targets_torch` repeats the same
operations on tensors.
"""

from __future__ import annotations

import threading

import numpy as np

from habitat_fih.geometry.camera import MIN_DEPTH
from habitat_fih.geometry.surface import (
    NUMPY_OPS,
    SurfaceTables,
    agrees,
    candidate_inverse_depths,
    containing_plane,
    footprint_agrees,
    occludes,
    tolerance,
)

__all__ = ["covisible_points"]


def covisible_points(
    rel: np.ndarray,
    pts: np.ndarray,
    tables: SurfaceTables,
    slots: np.ndarray,
    f: float,
    abs_tol: float,
    rel_tol: float,
    target: tuple[np.ndarray, float],
) -> np.ndarray:
    """Co-visibility [n, P] of target-camera points ``pts`` [P, 3] with n sources.

    ``rel`` [n, 4, 4]: source camera <- target camera; ``tables``: the sources' surfaces
    (:func:`~habitat_fih.geometry.surface.numpy_tables`); ``f``: source focal length.  The rigid
    transform runs in float64; everything after it in float32 with a fixed sequence of
    correctly rounded elementwise operations that the torch version mirrors op for op, so both
    take identical per-pixel decisions.  Points in planar cells are decided by one plane; the
    few in other cells (edges, creases, borders) by the four corners' own planes.  All
    intermediates live in a per-thread workspace reused across calls (fresh multi-MB arrays
    cost page faults that double the run time); the returned bool array is such a buffer, valid
    until the next call.
    """
    n = rel.shape[0]
    hs, ws = tables.pixel.shape[2] - 2, tables.pixel.shape[3] - 2
    num = pts.shape[0]
    q64 = _workspace("q64", (n, 3, num), np.float64)
    q = _workspace("q32", (n, 3, num), np.float32)
    scale = _workspace("scale", (n, num), np.float32)
    covis = _workspace("covis", (n, num), np.bool_)
    tmp = _workspace("tmp", (n, num), np.bool_)
    f32 = np.float32

    # One GEMM for all n rotations: [3n, 3] @ [3, P] -> [n, 3, P] in the source camera frames.
    np.matmul(rel[:, :3, :3].reshape(3 * n, 3), pts.T, out=q64.reshape(3 * n, num))
    q64 += rel[:, :3, 3:4]
    np.copyto(q, q64, casting="same_kind")
    x, y, zc = q[:, 0], q[:, 1], q[:, 2]  # views [n, P]; zc = camera z = -planar depth
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        np.divide(f32(-f), zc, out=scale)  # f / depth
        u = np.multiply(x, scale, out=x)  # u = ws/2 + f x / depth (continuous column)
        u += f32(ws / 2.0)
        v = np.multiply(y, scale, out=y)  # v = hs/2 - f y / depth (continuous row)
        np.subtract(f32(hs / 2.0), v, out=v)
        inside = np.less(zc, f32(-MIN_DEPTH), out=covis)
        inside &= np.greater_equal(u, 0, out=tmp)
        inside &= np.less(u, ws, out=tmp)
        inside &= np.greater_equal(v, 0, out=tmp)
        inside &= np.less(v, hs, out=tmp)
    # From here on only the points inside a source frustum (typically a third of them).
    pick = np.flatnonzero(inside)
    inside[...] = False
    src, pt = np.divmod(pick, num)
    a = u[src, pt] + f32(0.5)  # padded-cell coordinates: cell c spans padded pixel centres
    b = v[src, pt] + f32(0.5)  # c .. c+1
    # the outer half-pixel ring reads the nearest interior cell (extended to the image edge)
    col = np.clip(np.floor(a), f32(1), f32(max(ws - 1, 1)))
    row = np.clip(np.floor(b), f32(1), f32(max(hs - 1, 1)))
    a -= col  # position in the cell: [0, 1), or down to -0.5 / up to 1.5 in the outer ring
    b -= row
    lin_f = row * f32(ws + 1)
    lin_f += col
    lin = lin_f.astype(np.intp)
    lin += slots[src] * ((hs + 1) * (ws + 1))
    z = -zc[src, pt]  # planar depth in the source
    tol = tolerance(z, f32(abs_tol), f32(rel_tol), NUMPY_OPS)
    cell = tables.cell.reshape(3, -1)
    with np.errstate(invalid="ignore"):
        w_hat = cell[0].take(lin)  # w00 (NaN: not a planar cell)
        edge = np.flatnonzero(np.isnan(w_hat))
        w_hat += cell[1].take(lin) * a
        w_hat += cell[2].take(lin) * b
        ok = agrees(z, w_hat, tol)
        if edge.size:
            ok[edge] = _edge_points(
                tables,
                lin[edge],
                a[edge],
                b[edge],
                z[edge],
                tol[edge],
                q64[src[edge], :, pt[edge]],
                rel[src[edge]],
                target,
                (abs_tol, rel_tol),
            )
    inside.reshape(-1)[pick[ok]] = True
    return inside


def _edge_points(
    tables: SurfaceTables,
    cell_lin: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    z: np.ndarray,
    tol: np.ndarray,
    x_src: np.ndarray,
    rel: np.ndarray,
    target: tuple[np.ndarray, float],
    tols: tuple[float, float],
) -> np.ndarray:
    """Decide the K points that fall in non-planar cells (see the module docstring).

    ``cell_lin`` [K] flat cell index over all sources; ``a`` / ``b`` / ``z`` / ``tol`` [K]
    float32; ``x_src`` [K, 3] float64 points in their source camera; ``rel`` [K, 4, 4] source
    <- target; ``target`` = (target depth [H, W], target focal length).
    """
    hs, ws = tables.pixel.shape[2] - 2, tables.pixel.shape[3] - 2
    src, rest = np.divmod(cell_lin, (hs + 1) * (ws + 1))
    r, c = np.divmod(rest, ws + 1)
    tl = src * ((hs + 2) * (ws + 2)) + r * (ws + 2) + c  # padded pixel of the top-left corner
    pixel = tables.pixel.reshape(5, -1)
    rows = [pixel[:, tl], pixel[:, tl + 1], pixel[:, tl + (ws + 2)], pixel[:, tl + (ws + 3)]]
    cands = candidate_inverse_depths(rows, a, b)
    seen = footprint_agrees(z, cands, tol, NUMPY_OPS)
    w_p = containing_plane(cands, a, b, NUMPY_OPS)
    blocked = occludes(z, w_p, tol) & seen
    if blocked.any():
        k = np.flatnonzero(blocked)
        tdepth, f_t = target
        blocked[k] = ~_target_sees_past(x_src[k], w_p[k], z[k], rel[k], tdepth, f_t, tols)
    return seen & ~blocked


def _target_sees_past(
    x_src: np.ndarray,
    w_p: np.ndarray,
    z: np.ndarray,
    rel: np.ndarray,
    tdepth: np.ndarray,
    f_t: float,
    tols: tuple[float, float],
) -> np.ndarray:
    """Whether the target's own view shows free space where the source's occluder would be.

    The occluder candidate O is the point on X's source ray at the containing pixel's plane
    depth ``1 / w_p``.  When the target sees, at O's nearest pixel, a surface farther than O by
    more than the tolerance, O is empty space - the source's occluder does not reach this ray -
    and X stays seen.  Float64 elementwise; ``targets_torch`` repeats the same sequence.
    """
    abs_tol, rel_tol = tols
    H, W = tdepth.shape
    scale = 1.0 / (w_p.astype(np.float64) * z.astype(np.float64))
    o = [x_src[:, i] * scale - rel[:, i, 3] for i in range(3)]  # O - t, source frame
    ot = [rel[:, 0, i] * o[0] + rel[:, 1, i] * o[1] + rel[:, 2, i] * o[2] for i in range(3)]
    d = -ot[2]  # R^T (O - t): O in the target camera frame; d = planar depth
    front = d > MIN_DEPTH
    d_safe = np.where(front, d, 1.0)
    u = W / 2.0 + f_t * (ot[0] / d_safe)
    v = H / 2.0 - f_t * (ot[1] / d_safe)
    inside = front & (u >= 0) & (u < W) & (v >= 0) & (v < H)
    lin = np.where(inside, np.floor(v) * W + np.floor(u), 0.0).astype(np.intp)
    seen = tdepth.reshape(-1)[lin].astype(np.float64)
    rel_d = d * rel_tol
    tol = np.where(rel_d > abs_tol, rel_d, abs_tol)
    return inside & (seen > d + tol)


_WORKSPACE = threading.local()


def _workspace(name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A per-thread scratch array, reused while the shape and dtype stay the same."""
    cache: dict[str, np.ndarray] = _WORKSPACE.__dict__.setdefault("arrays", {})
    arr = cache.get(name)
    if arr is None or arr.shape != shape or arr.dtype != dtype:
        arr = np.empty(shape, dtype=dtype)
        cache[name] = arr
    return arr
