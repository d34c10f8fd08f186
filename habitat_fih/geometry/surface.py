"""A planar-depth image as a piecewise-planar surface: the model behind the co-visibility rule.

A depth image only samples the scene at pixel centres.  To ask "what did this camera see at the
sub-pixel location (u, v)?" (:mod:`habitat_fih.geometry.targets`) the samples are read as a
surface, in INVERSE depth ``w = 1 / z``: on any plane ``w`` is an affine function of the pixel
coordinates, whatever the plane's orientation, so a floor seen at a grazing angle is
reproduced exactly by linear interpolation, where nearest-pixel lookup is off by many per cent
(a floor's depth changes by a factor of up to 3 from one 64² pixel row to the next near the
horizon).

Local planes
------------
Pixels are grouped into planes by second differences.  With ``e(p) = max(abs_tol * w², rel_tol *
w) / 4`` - a quarter of the depth tolerance ``max(abs_tol, rel_tol * z)`` expressed in inverse
depth at pixel p - three consecutive pixels of a row (or column) are *collinear* when their
second difference is at most ``e`` of the middle one, and the segment between two neighbours is
*on a plane* when it belongs to a collinear triple on either side.  A step edge (one side near,
the other far) is never on a plane, however it is aligned with the grid, because neither triple
that contains the step is collinear; a plane meeting another plane (a crease) leaves the segment
across the crease off-plane too.

* A **planar cell** is a 2 x 2 block of pixel centres whose four sides are on a plane and whose
  corners fit one plane (``|w00 + w11 - w01 - w10| <= e(p00)``).  Inside it the surface is that
  plane: ``w = w00 + a * (w01 - w00) + b * (w10 - w00)`` at fractional position (a, b).
* In every other cell (a depth edge, a crease, an invalid corner, the image border) each valid
  corner offers its constant depth and its OWN plane extended over the cell: corner p gives
  ``w_p + gx * du + gy * dv`` with ``(du, dv)`` the offset from its centre and ``gx`` p's
  gradient on the side facing the point if that segment is on a plane, else on its other side
  if that one is, else the raw difference to a valid neighbour (facing side first), else 0 -
  the "essentially non-oscillatory" choice: a pixel next to an edge takes its slope from the
  side that continues its own surface.  How :mod:`~habitat_fih.geometry.targets` uses these
  candidates (their span, the occluder test) is described there.

Invalid depth (``z <= 0``) is NaN in inverse depth, so every comparison involving it is false;
the image is padded with one ring of NaN pixels so that the border needs no special case.

Arithmetic
----------
The tables are defined by :func:`build_tables`, written once with operators that numpy arrays
and torch tensors share (``+ - * abs``, comparisons, ``& |`` and a ``where``) and run as is by
:mod:`~habitat_fih.geometry.targets_torch`; the numpy side runs a compiled loop with the same
float32 operations (:func:`numpy_tables`, checked bit for bit against :func:`reference_tables`),
so both see the same surface.  :func:`resample_depth` evaluates the same rules per output pixel
in a compiled loop (checked bit for bit against :func:`reference_resample_depth`).  numba adds
no fused multiply-add unless asked (``fastmath``), so the compiled loops round like numpy.  No decision depends on an exact floating-point tie: every test compares a
residual with a tolerance that is orders of magnitude above float32 rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

__all__ = [
    "NUMPY_OPS",
    "ArrayOps",
    "SurfaceTables",
    "agrees",
    "build_tables",
    "candidate_inverse_depths",
    "containing_plane",
    "occludes",
    "footprint_agrees",
    "numpy_tables",
    "padded_inverse_depth",
    "reference_resample_depth",
    "working_depth",
    "reference_tables",
    "resample_depth",
    "tolerance",
]

#: The planarity tolerance is this fraction of the depth tolerance (in inverse depth).
PLANE_FRACTION = 0.25


@dataclass(frozen=True)
class SurfaceTables:
    """Lookup tables of N depth images [N, H, W] seen as surfaces (NaN-padded by one pixel).

    Attributes (numpy arrays or torch tensors, float32, component first):
        cell: [3, N, H+1, W+1] per padded cell (corners at padded pixels (r, c) .. (r+1, c+1)):
            ``(w00, gx, gy)`` of its plane; ``w00`` is NaN unless the cell is planar.
        pixel: [5, N, H+2, W+2] per padded pixel: ``(w, gx_right, gx_left, gy_down, gy_up)`` -
            inverse depth (NaN if invalid) and the gradient to use towards each side (per pixel,
            along +column and +row).
    """

    cell: Any
    pixel: Any


@dataclass(frozen=True)
class ArrayOps:
    """The few functions numpy and torch spell differently (everything else is an operator)."""

    where: Callable  # where(cond, a, b); a / b may be python scalars
    cat: Callable  # cat(list, axis)
    stack: Callable  # stack(list, axis)
    fmin: Callable  # elementwise min ignoring NaN
    fmax: Callable  # elementwise max ignoring NaN


NUMPY_OPS = ArrayOps(
    where=np.where,
    cat=lambda parts, axis: np.concatenate(parts, axis=axis),
    stack=lambda parts, axis: np.stack(parts, axis=axis),
    fmin=np.fmin,
    fmax=np.fmax,
)


def tolerance(z: Any, abs_tol: Any, rel_tol: Any, ops: ArrayOps) -> Any:
    """``max(abs_tol, rel_tol * z)`` in float32 (``abs_tol`` / ``rel_tol`` float32 scalars)."""
    rel = z * rel_tol
    return ops.where(rel > abs_tol, rel, abs_tol)


def agrees(z: Any, w: Any, tol: Any) -> Any:
    """Point depth ``z`` agrees with surface inverse depth ``w``: ``|z * w - 1| <= tol * w``.

    Equivalent to ``|z - 1/w| <= tol`` for ``w > 0`` without a division; false when ``w <= 0``
    (a plane extended past its horizon) or NaN.
    """
    return abs(z * w - 1) <= tol * w


def footprint_agrees(z: Any, cands: list[Any], tol: Any, ops: ArrayOps) -> Any:
    """A point at depth ``z`` in a NON-planar cell is seen when it lies within the span of the
    corners' candidate surfaces there, widened by the tolerance.

    ``cands``: the corners' inverse depths at the point (:func:`candidate_inverse_depths`);
    a non-positive one (a plane extended past its horizon) counts as infinitely far (0), a NaN
    one (an invalid corner: no hit or beyond the depth range, so unknown) is ignored.  Between the nearest and the farthest candidate - ``lo <= 1/z <= hi`` - is
    accepted: a surface narrower than a pixel (a stair tread seen edge-on) lies between its
    neighbours' samples, and at a depth edge the source's samples cannot place the silhouette
    between two pixel centres (see the module docstring).
    """
    lo = hi = ops.where(cands[0] > 0, cands[0], cands[0] * 0)  # NaN stays NaN
    for c in cands[1:]:
        c = ops.where(c > 0, c, c * 0)
        lo, hi = ops.fmin(lo, c), ops.fmax(hi, c)
    return ((z * lo <= 1) & (z * hi >= 1)) | agrees(z, lo, tol) | agrees(z, hi, tol)


def containing_plane(cands: list[Any], a: Any, b: Any, ops: ArrayOps) -> Any:
    """Inverse depth, at the point, of the plane of the pixel whose square contains the point.

    That is the cell corner nearest to the point: right when ``a >= 0.5``, bottom when
    ``b >= 0.5`` (``cands[:4]`` are the corners' planes, :func:`candidate_inverse_depths`).
    """
    where = ops.where
    top = where(a >= 0.5, cands[1], cands[0])
    bottom = where(a >= 0.5, cands[3], cands[2])
    return where(b >= 0.5, bottom, top)


def occludes(z: Any, w: Any, tol: Any) -> Any:
    """The surface at inverse depth ``w`` lies in front of depth ``z`` by more than ``tol``."""
    return (w > 0) & (z * w - 1 > tol * w)


def build_tables(w: Any, abs_tol: Any, rel_tol: Any, ops: ArrayOps) -> tuple[Any, Any]:
    """(cell, pixel) tables (:class:`SurfaceTables`) from NaN-padded inverse depth [N, H+2, W+2].

    ``w`` float32; ``abs_tol`` / ``rel_tol`` float32 scalars of the same library.  Written once
    for numpy and torch (see the module docstring).
    """
    where, cat = ops.where, ops.cat
    e_abs = w * w * abs_tol
    e_rel = w * rel_tol
    e = where(e_abs > e_rel, e_abs, e_rel) * PLANE_FRACTION  # [N, H+2, W+2], NaN if invalid

    def axis_tables(d: Any, e_mid: Any, ax: int) -> tuple[Any, Any, Any]:
        """Segments on a plane and the gradients towards +/- ``ax`` per pixel, one axis.

        ``d`` = forward differences along ``ax`` (one shorter than the padded image).
        """
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        first = [slice(None)] * 3
        lo[ax], hi[ax], first[ax] = slice(None, -1), slice(1, None), slice(0, 1)
        lo, hi, first = tuple(lo), tuple(hi), tuple(first)
        flat = abs(d[hi] - d[lo]) <= e_mid  # collinear triple centred on padded pixel 1..n
        off = flat[first] & False
        flat = cat([off, flat, off], ax)  # indexed by padded pixel
        seg = flat[lo] | flat[hi]  # segment k..k+1 on a plane
        off = seg[first] & False
        seg_b, seg_f = cat([off, seg], ax), cat([seg, off], ax)  # per pixel: -side / +side
        zero = d[first] * 0
        d_b, d_f = cat([zero, d], ax), cat([d, zero], ax)
        raw_f = where(d_f == d_f, d_f, where(d_b == d_b, d_b, 0.0))  # not NaN: neighbour valid
        raw_b = where(d_b == d_b, d_b, where(d_f == d_f, d_f, 0.0))
        g_f = where(seg_f, d_f, where(seg_b, d_b, raw_f))
        g_b = where(seg_b, d_b, where(seg_f, d_f, raw_b))
        return seg, g_f, g_b

    dx = w[:, :, 1:] - w[:, :, :-1]  # [N, H+2, W+1]
    dy = w[:, 1:, :] - w[:, :-1, :]  # [N, H+1, W+2]
    seg_x, gx_r, gx_l = axis_tables(dx, e[:, :, 1:-1], 2)
    seg_y, gy_d, gy_u = axis_tables(dy, e[:, 1:-1, :], 1)

    # planar cells: four sides on a plane and the four corners on one plane
    top, bottom = dx[:, :-1, :], dx[:, 1:, :]  # [N, H+1, W+1]
    planar = seg_x[:, :-1, :] & seg_x[:, 1:, :] & seg_y[:, :, :-1] & seg_y[:, :, 1:]
    planar = planar & (abs(top - bottom) <= e[:, :-1, :-1])
    cell = ops.stack([where(planar, w[:, :-1, :-1], float("nan")), top, dy[:, :, :-1]], 0)
    pixel = ops.stack([w, gx_r, gx_l, gy_d, gy_u], 0)
    return cell, pixel


def candidate_inverse_depths(rows: list[Any], a: Any, b: Any) -> list[Any]:
    """Inverse depths that the four corners' own planes give at cell position (a, b).

    ``rows`` = the corners' gathered pixel-table entries (top-left, top-right, bottom-left,
    bottom-right), each a sequence of the 5 components; ``a`` / ``b`` in [0, 1) along columns /
    rows.
    """
    tl, tr, bl, br = rows
    a1, b1 = a - 1, b - 1
    return [
        tl[0] + tl[1] * a + tl[3] * b,
        tr[0] + tr[2] * a1 + tr[3] * b,
        bl[0] + bl[1] * a + bl[4] * b1,
        br[0] + br[2] * a1 + br[4] * b1,
        tl[0],
        tr[0],
        bl[0],
        br[0],
    ]


# --------------------------------------------------------------------------- numpy front end
def padded_inverse_depth(depth: np.ndarray) -> np.ndarray:
    """Depth [N, H, W] -> float32 inverse depth [N, H+2, W+2], NaN where invalid and around."""
    depth = np.asarray(depth)
    n, h, w = depth.shape
    inv = np.full((n, h + 2, w + 2), np.nan, dtype=np.float32)
    d32 = depth.astype(np.float32, copy=False)
    with np.errstate(divide="ignore"):
        inner = np.float32(1.0) / d32
    inner[~(d32 > 0)] = np.nan
    inv[:, 1:-1, 1:-1] = inner
    return inv


def numpy_tables(depth: np.ndarray, abs_tol: float, rel_tol: float) -> SurfaceTables:
    """:class:`SurfaceTables` of depth images [N, H, W] (metres, 0 = invalid), numpy float32.

    Runs :func:`_tables_kernel`, a compiled loop with the same float32 operations as
    :func:`build_tables` (only subtractions, products, ``abs`` and comparisons, so no
    contraction into fused multiply-adds can change a bit; tests compare the two bit for bit),
    about 30x faster than the array version.
    """
    inv = padded_inverse_depth(depth)
    n, h2, w2 = inv.shape
    cell = np.empty((3, n, h2 - 1, w2 - 1), dtype=np.float32)
    pixel = np.empty((5, n, h2, w2), dtype=np.float32)
    _tables_kernel(inv, np.array([abs_tol, rel_tol], dtype=np.float32), cell, pixel)
    return SurfaceTables(cell=cell, pixel=pixel)


def reference_tables(depth: np.ndarray, abs_tol: float, rel_tol: float) -> SurfaceTables:
    """:func:`numpy_tables` through the array version :func:`build_tables` (the reference)."""
    inv = padded_inverse_depth(depth)
    with np.errstate(invalid="ignore"):
        cell, pixel = build_tables(inv, np.float32(abs_tol), np.float32(rel_tol), NUMPY_OPS)
    return SurfaceTables(
        cell=np.ascontiguousarray(cell, dtype=np.float32),
        pixel=np.ascontiguousarray(pixel, dtype=np.float32),
    )


# --------------------------------------------------------------------------- compiled helpers
# One pixel / segment at a time, the same float32 operations as build_tables (w: one padded
# inverse-depth image [H+2, W+2]; out-of-range indices behave as the padding / the False
# borders of build_tables).
@numba.njit(cache=True, inline="always")
def _e(w, i, j, tols):  # tols = (abs_tol, rel_tol) float32
    x = w[i, j]
    ea = x * x * tols[0]
    er = x * tols[1]
    return (ea if ea > er else er) * np.float32(PLANE_FRACTION)


@numba.njit(cache=True, inline="always")
def _dx(w, i, k):  # w[i, k+1] - w[i, k], NaN outside
    if 0 <= k < w.shape[1] - 1:
        return w[i, k + 1] - w[i, k]
    return np.float32(np.nan)


@numba.njit(cache=True, inline="always")
def _dy(w, k, j):
    if 0 <= k < w.shape[0] - 1:
        return w[k + 1, j] - w[k, j]
    return np.float32(np.nan)


@numba.njit(cache=True)
def _flat_x(w, i, c, tols):  # pixels c-1, c, c+1 of row i collinear
    if 1 <= c < w.shape[1] - 1:
        return abs(_dx(w, i, c) - _dx(w, i, c - 1)) <= _e(w, i, c, tols)
    return False


@numba.njit(cache=True)
def _flat_y(w, r, j, tols):
    if 1 <= r < w.shape[0] - 1:
        return abs(_dy(w, r, j) - _dy(w, r - 1, j)) <= _e(w, r, j, tols)
    return False


@numba.njit(cache=True)
def _seg_x(w, i, k, tols):  # segment k..k+1 of row i on a plane
    if 0 <= k < w.shape[1] - 1:
        return _flat_x(w, i, k, tols) or _flat_x(w, i, k + 1, tols)
    return False


@numba.njit(cache=True)
def _seg_y(w, k, j, tols):
    if 0 <= k < w.shape[0] - 1:
        return _flat_y(w, k, j, tols) or _flat_y(w, k + 1, j, tols)
    return False


@numba.njit(cache=True)
def _eno(seg_b, seg_f, d_b, d_f):
    """Gradients towards + and - (``build_tables.axis_tables``'s where-chains, one pixel)."""
    zero = np.float32(0.0)
    raw_f = d_f if d_f == d_f else (d_b if d_b == d_b else zero)
    raw_b = d_b if d_b == d_b else (d_f if d_f == d_f else zero)
    g_f = d_f if seg_f else (d_b if seg_b else raw_f)
    g_b = d_b if seg_b else (d_f if seg_f else raw_b)
    return g_f, g_b


@numba.njit(cache=True)
def _gradients(w, i, j, tols):
    """(gx_right, gx_left, gy_down, gy_up) of padded pixel (i, j)."""
    gx_r, gx_l = _eno(
        _seg_x(w, i, j - 1, tols), _seg_x(w, i, j, tols), _dx(w, i, j - 1), _dx(w, i, j)
    )
    gy_d, gy_u = _eno(
        _seg_y(w, i - 1, j, tols), _seg_y(w, i, j, tols), _dy(w, i - 1, j), _dy(w, i, j)
    )
    return gx_r, gx_l, gy_d, gy_u


@numba.njit(cache=True)
def _planar(w, r, c, tols):
    """Cell (r, c) planar: four sides on a plane, corners on one plane."""
    if not (
        _seg_x(w, r, c, tols)
        and _seg_x(w, r + 1, c, tols)
        and _seg_y(w, r, c, tols)
        and _seg_y(w, r, c + 1, tols)
    ):
        return False
    return abs(_dx(w, r, c) - _dx(w, r + 1, c)) <= _e(w, r, c, tols)


@numba.njit(cache=True)
def _tables_kernel(w, tols, cell, pixel) -> None:  # pragma: no cover (compiled)
    """All pixels and cells at once (array passes; the same operations as the helpers)."""
    abs_tol, rel_tol = tols[0], tols[1]
    n_img, h2, w2 = w.shape
    quarter = np.float32(PLANE_FRACTION)
    nan = np.float32(np.nan)
    e = np.empty((h2, w2), dtype=np.float32)
    dx = np.empty((h2, w2 - 1), dtype=np.float32)
    dy = np.empty((h2 - 1, w2), dtype=np.float32)
    seg_x = np.empty((h2, w2 - 1), dtype=np.bool_)
    seg_y = np.empty((h2 - 1, w2), dtype=np.bool_)
    flat = np.empty(max(h2, w2), dtype=np.bool_)
    for n in range(n_img):
        for i in range(h2):
            for j in range(w2):
                x = w[n, i, j]
                ea = x * x * abs_tol
                er = x * rel_tol
                e[i, j] = (ea if ea > er else er) * quarter
        for i in range(h2):
            for j in range(w2 - 1):
                dx[i, j] = w[n, i, j + 1] - w[n, i, j]
        for i in range(h2 - 1):
            for j in range(w2):
                dy[i, j] = w[n, i + 1, j] - w[n, i, j]
        for i in range(h2):  # segments along rows
            flat[0] = False
            flat[w2 - 1] = False
            for c in range(1, w2 - 1):
                flat[c] = abs(dx[i, c] - dx[i, c - 1]) <= e[i, c]
            for k in range(w2 - 1):
                seg_x[i, k] = flat[k] or flat[k + 1]
        for j in range(w2):  # segments along columns
            flat[0] = False
            flat[h2 - 1] = False
            for r in range(1, h2 - 1):
                flat[r] = abs(dy[r, j] - dy[r - 1, j]) <= e[r, j]
            for k in range(h2 - 1):
                seg_y[k, j] = flat[k] or flat[k + 1]
        for i in range(h2):
            for j in range(w2):
                sb = seg_x[i, j - 1] if j > 0 else False
                sf = seg_x[i, j] if j < w2 - 1 else False
                db = dx[i, j - 1] if j > 0 else nan
                df = dx[i, j] if j < w2 - 1 else nan
                gx_r, gx_l = _eno(sb, sf, db, df)
                sb = seg_y[i - 1, j] if i > 0 else False
                sf = seg_y[i, j] if i < h2 - 1 else False
                db = dy[i - 1, j] if i > 0 else nan
                df = dy[i, j] if i < h2 - 1 else nan
                gy_d, gy_u = _eno(sb, sf, db, df)
                pixel[0, n, i, j] = w[n, i, j]
                pixel[1, n, i, j] = gx_r
                pixel[2, n, i, j] = gx_l
                pixel[3, n, i, j] = gy_d
                pixel[4, n, i, j] = gy_u
        for r in range(h2 - 1):
            for c in range(w2 - 1):
                planar = seg_x[r, c] and seg_x[r + 1, c] and seg_y[r, c] and seg_y[r, c + 1]
                planar = planar and abs(dx[r, c] - dx[r + 1, c]) <= e[r, c]
                cell[0, n, r, c] = w[n, r, c] if planar else nan
                cell[1, n, r, c] = dx[r, c]
                cell[2, n, r, c] = dy[r, c]


@numba.njit(cache=True)
def _resample_kernel(w, tols, t, s, out) -> None:  # pragma: no cover (compiled)
    """``resample_depth`` at padded-cell coordinates t [h] (rows), s [w] (columns)."""
    zero = np.float32(0.0)
    for i in range(t.size):
        r = int(np.floor(t[i]))
        b = np.float32(t[i] - r)
        for j in range(s.size):
            c = int(np.floor(s[j]))
            a = np.float32(s[j] - c)
            if _planar(w, r, c, tols):
                best = w[r, c] + _dx(w, r, c) * a + _dy(w, r, c) * b
            else:
                best = np.float32(-np.inf)
                for dr in range(2):
                    for dc in range(2):
                        x = w[r + dr, c + dc]
                        gx_r, gx_l, gy_d, gy_u = _gradients(w, r + dr, c + dc, tols)
                        gx = gx_r if dc == 0 else gx_l
                        gy = gy_d if dr == 0 else gy_u
                        aa = a if dc == 0 else a - np.float32(1.0)
                        bb = b if dr == 0 else b - np.float32(1.0)
                        for cand in (x + gx * aa + gy * bb, x):
                            if cand > 0 and cand > best:
                                best = cand
            out[i, j] = np.float32(1.0) / best if (best > 0 and best < np.inf) else zero


def resample_depth(
    depth: np.ndarray, out_size: tuple[int, int], abs_tol: float, rel_tol: float
) -> np.ndarray:
    """Depth [H, W] -> [h, w] sampled on the surface at the centres of the ``h x w`` pixels.

    The exact depth along each output pixel's centre ray when the surface there is planar
    (nearest-pixel striding is off by up to half an input pixel, i.e. by 1/8 of an output pixel
    for a 4x reduction, which on a grazing floor is a depth error of many per cent).  In a
    non-planar cell (a depth edge, a crease) the NEAREST candidate surface wins: the largest
    valid inverse depth among the corners' own planes (no value is blended across an edge; a
    foreground object keeps its silhouette to within half an input pixel).  0 where no corner is
    valid.  ``abs_tol`` / ``rel_tol`` set the planarity tolerance (:data:`PLANE_FRACTION`).
    """
    depth = np.asarray(depth)
    H, W = depth.shape
    h, w = out_size
    if (H, W) == (h, w):
        return depth.astype(np.float32, copy=True)
    t, s = _centres(H, h), _centres(W, w)
    out = np.empty((h, w), dtype=np.float32)
    tols = np.array([abs_tol, rel_tol], dtype=np.float32)
    _resample_kernel(padded_inverse_depth(depth[None])[0], tols, t, s, out)
    return out


def working_depth(
    depth: np.ndarray,
    out_size: tuple[int, int],
    abs_tol: float,
    rel_tol: float,
    max_depth: float,
) -> np.ndarray:
    """Metric depth [H, W] (0 = invalid) -> the FIH task's working-resolution depth [h, w]:
    :func:`resample_depth`, then 0 where the result is at or beyond ``max_depth`` (a plane
    extended past the sensor's range). The FIH task and ``fih-infer --geometry-from`` both
    compute their targets on this depth."""
    small = resample_depth(depth, out_size, abs_tol, rel_tol)
    small[small >= max_depth - 1e-4] = 0.0
    return small


def _centres(n_in: int, n_out: int) -> np.ndarray:
    """Output pixel centres ``(i + .5) * n_in / n_out`` in padded-cell coordinates (+0.5)."""
    return (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) + 0.5


def reference_resample_depth(
    depth: np.ndarray, out_size: tuple[int, int], abs_tol: float, rel_tol: float
) -> np.ndarray:
    """:func:`resample_depth` through the array tables (:func:`reference_tables`; tests)."""
    depth = np.asarray(depth)
    H, W = depth.shape
    h, w = out_size
    if (H, W) == (h, w):
        return depth.astype(np.float32, copy=True)
    tables = reference_tables(depth[None], abs_tol, rel_tol)
    # output centre (i + .5) * H / h in input pixel units; +0.5 -> padded cell coordinates
    t = (np.arange(h, dtype=np.float64) + 0.5) * (H / h) + 0.5
    s = (np.arange(w, dtype=np.float64) + 0.5) * (W / w) + 0.5
    r, c = np.floor(t).astype(np.intp), np.floor(s).astype(np.intp)
    b = (t - r).astype(np.float32)[:, None]
    a = (s - c).astype(np.float32)[None, :]
    rr, cc = r[:, None], c[None, :]
    cell = tables.cell[:, 0, rr, cc]  # [3, h, w]
    with np.errstate(invalid="ignore"):
        planar = cell[0] + cell[1] * a + cell[2] * b
        px = tables.pixel[:, 0]
        rows = [px[:, rr, cc], px[:, rr, cc + 1], px[:, rr + 1, cc], px[:, rr + 1, cc + 1]]
        cands = np.stack(candidate_inverse_depths(rows, a, b))  # [4, h, w]
        cands[~(cands > 0)] = -np.inf
        best = np.where(np.isnan(cell[0]), cands.max(axis=0), planar)
        out = np.zeros((h, w), dtype=np.float32)
        ok = np.isfinite(best) & (best > 0)
        out[ok] = np.float32(1.0) / best[ok]
    return out
