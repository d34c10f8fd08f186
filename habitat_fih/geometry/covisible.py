"""The co-visibility decision for every (source, target pixel) pair (numpy side, compiled).

:func:`covisible_points` implements the rule stated in :mod:`habitat_fih.geometry.targets`
(whose :func:`~habitat_fih.geometry.targets.covisibility_heatmaps` validates the inputs and turns
the per-pixel decisions into maps) on the sources' surface tables
(:mod:`habitat_fih.geometry.surface`).  After one float64 GEMM that moves every target point into
every source camera, a compiled loop takes each decision with the float32 / float64 operations
of :mod:`habitat_fih.geometry.targets_torch` (the batched array version) in the same order -
numba adds no fused multiply-add unless asked - so the two agree bit for bit (tested on every
closed-form scene).  A per-point loop skips everything after the frustum test for the points
outside a source (most of them) and the corner test for points in planar cells.
"""

from __future__ import annotations

import threading

import numba
import numpy as np

from habitat_fih.geometry.camera import MIN_DEPTH
from habitat_fih.geometry.surface import SurfaceTables

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
    """Co-visibility [n, P] bool of target-camera points ``pts`` [P, 3] with n sources.

    ``rel`` [n, 4, 4]: source camera <- target camera; ``tables`` / ``slots``: the sources'
    surface tables and each source's index in them; ``f``: source focal length; ``target`` =
    (target depth [H, W], target focal length) for the free-space check.  The result is a
    per-thread buffer reused by the next call (fresh multi-MB arrays cost page faults).
    """
    n, num = rel.shape[0], pts.shape[0]
    q64 = _workspace("q64", (n, 3, num), np.float64)
    # One GEMM for all n rotations: [3n, 3] @ [3, P] -> [n, 3, P] in the source camera frames.
    np.matmul(rel[:, :3, :3].reshape(3 * n, 3), pts.T, out=q64.reshape(3 * n, num))
    q64 += rel[:, :3, 3:4]
    tdepth, f_t = target
    out = _workspace("out", (n, num), np.bool_)
    _kernel(
        q64,
        np.ascontiguousarray(rel),
        np.ascontiguousarray(tables.cell.reshape(3, -1)),
        np.ascontiguousarray(tables.pixel.reshape(5, -1)),
        np.asarray(slots, dtype=np.int64),
        tables.pixel.shape[2] - 2,
        tables.pixel.shape[3] - 2,
        np.float32(f),
        np.float32(abs_tol),
        np.float32(rel_tol),
        np.ascontiguousarray(tdepth.reshape(-1)),
        tdepth.shape[0],
        tdepth.shape[1],
        float(f_t),
        float(abs_tol),
        float(rel_tol),
        out,
    )
    return out


_WORKSPACE = threading.local()


def _workspace(name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A per-thread scratch array, reused while the shape and dtype stay the same."""
    cache: dict[str, np.ndarray] = _WORKSPACE.__dict__.setdefault("arrays", {})
    arr = cache.get(name)
    if arr is None or arr.shape != shape or arr.dtype != dtype:
        arr = np.empty(shape, dtype=dtype)
        cache[name] = arr
    return arr


@numba.njit(cache=True, inline="always")
def _agrees(z, w, tol):
    return abs(z * w - np.float32(1.0)) <= tol * w


@numba.njit(cache=True, inline="always")
def _nonneg(c):  # where(c > 0, c, c * 0): NaN stays NaN, non-positive -> 0 (infinitely far)
    return c if c > 0 else c * np.float32(0.0)


@numba.njit(cache=True, inline="always")
def _fmin(a, b):
    if a != a:
        return b
    if b != b:
        return a
    return a if a <= b else b


@numba.njit(cache=True, inline="always")
def _fmax(a, b):  # negation is exact: the same value (and the same pick on a tie) as a >= b
    return -_fmin(-a, -b)


@numba.njit(cache=True)
def _kernel(  # noqa: PLR0913 - a compiled loop takes its arrays flat
    q64,
    rel,
    cell,
    pixel,
    slots,
    hs,
    ws,
    f,
    abs_t,
    rel_t,
    tdepth,
    th,
    tw,
    f_t,
    abs_d,
    rel_d,
    out,
) -> None:  # pragma: no cover (compiled)
    n, _, num = q64.shape
    one = np.float32(1.0)
    half = np.float32(0.5)
    half_w, half_h = np.float32(ws / 2.0), np.float32(hs / 2.0)
    neg_f = -f
    min_z = np.float32(-MIN_DEPTH)
    col_hi, row_hi = np.float32(max(ws - 1, 1)), np.float32(max(hs - 1, 1))
    cols_f = np.float32(ws + 1)
    per_cell, per_pix = (hs + 1) * (ws + 1), (hs + 2) * (ws + 2)
    for k in range(n):
        slot = slots[k]
        for p in range(num):
            out[k, p] = False
            x, y, zc = np.float32(q64[k, 0, p]), np.float32(q64[k, 1, p]), np.float32(q64[k, 2, p])
            scale = neg_f / zc
            u = x * scale + half_w
            v = half_h - y * scale
            if not (zc < min_z and u >= 0 and u < ws and v >= 0 and v < hs):
                continue
            a = u + half
            b = v + half
            col = min(max(np.floor(a), one), col_hi)
            row = min(max(np.floor(b), one), row_hi)
            a = a - col
            b = b - row
            lin = int(row * cols_f + col)
            z = -zc
            rz = z * rel_t
            tol = rz if rz > abs_t else abs_t
            ci = slot * per_cell + lin
            w00 = cell[0, ci]
            if w00 == w00:  # a planar cell
                w_hat = w00 + cell[1, ci] * a
                w_hat = w_hat + cell[2, ci] * b
                out[k, p] = _agrees(z, w_hat, tol)
                continue
            # a non-planar cell: the corners' own surfaces
            r, c = lin // (ws + 1), lin % (ws + 1)
            tl = slot * per_pix + r * (ws + 2) + c
            tr, bl, br = tl + 1, tl + (ws + 2), tl + (ws + 3)
            a1, b1 = a - one, b - one
            c0 = pixel[0, tl] + pixel[1, tl] * a + pixel[3, tl] * b
            c1 = pixel[0, tr] + pixel[2, tr] * a1 + pixel[3, tr] * b
            c2 = pixel[0, bl] + pixel[1, bl] * a + pixel[4, bl] * b1
            c3 = pixel[0, br] + pixel[2, br] * a1 + pixel[4, br] * b1
            lo = hi = _nonneg(c0)
            for cand in (c1, c2, c3, pixel[0, tl], pixel[0, tr], pixel[0, bl], pixel[0, br]):
                cand = _nonneg(cand)
                lo, hi = _fmin(lo, cand), _fmax(hi, cand)
            seen = (z * lo <= one and z * hi >= one) or _agrees(z, lo, tol) or _agrees(z, hi, tol)
            if not seen:
                continue
            top = c1 if a >= half else c0
            bottom = c3 if a >= half else c2
            w_p = bottom if b >= half else top
            if not (w_p > 0 and z * w_p - one > tol * w_p):
                out[k, p] = True
                continue
            # an occluder the source saw; trusted unless the target sees free space there
            out[k, p] = _target_sees_past(q64, rel, k, p, w_p, z, tdepth, th, tw, f_t, abs_d, rel_d)


@numba.njit(cache=True)
def _target_sees_past(q64, rel, k, p, w_p, z, tdepth, th, tw, f_t, abs_d, rel_d):
    """``targets_torch._target_sees_past`` for one point (float64, the same sequence).

    The occluder candidate O is the point on X's source ray at the containing pixel's plane
    depth ``1 / w_p``; when the target sees, at O's nearest pixel, a surface farther than O by
    more than the tolerance, O is empty space and X stays seen.
    """
    scale = 1.0 / (np.float64(w_p) * np.float64(z))
    o0 = q64[k, 0, p] * scale - rel[k, 0, 3]  # O - t, source frame
    o1 = q64[k, 1, p] * scale - rel[k, 1, 3]
    o2 = q64[k, 2, p] * scale - rel[k, 2, 3]
    ot0 = rel[k, 0, 0] * o0 + rel[k, 1, 0] * o1 + rel[k, 2, 0] * o2  # R^T (O - t)
    ot1 = rel[k, 0, 1] * o0 + rel[k, 1, 1] * o1 + rel[k, 2, 1] * o2
    ot2 = rel[k, 0, 2] * o0 + rel[k, 1, 2] * o1 + rel[k, 2, 2] * o2
    d = -ot2
    if not d > MIN_DEPTH:
        return False
    u = tw / 2.0 + f_t * (ot0 / d)
    v = th / 2.0 - f_t * (ot1 / d)
    if not (u >= 0 and u < tw and v >= 0 and v < th):
        return False
    seen = np.float64(tdepth[int(np.floor(v) * tw + np.floor(u))])
    rd = d * rel_d
    tol = rd if rd > abs_d else abs_d
    return seen > d + tol
