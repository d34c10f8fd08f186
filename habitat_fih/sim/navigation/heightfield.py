"""Solid heightfield: the navigable cells of a triangle mesh, as Recast (habitat-sim's navmesh) builds them.

Every triangle is rasterised into the grid columns (``cell_size`` squares in x-z) it covers,
whatever its orientation: the triangle is clipped to each column's square (Sutherland-Hodgman on
the x and z slabs) and the clipped polygon's y range becomes a *record* ``[ymin, ymax]``. The
records of a column are merged into *solid spans* (a union of intervals; records closer than
:data:`MERGE_GAP` join). A vertical single-sided wall therefore fills the columns it crosses from
its bottom to its top, exactly as a closed box would.

Rules (each tolerance sits away from values that occur exactly in real geometry, so nothing hinges
on a floating-point tie; every rule is a function of the SET of (oriented) triangles, so face order, a face's first
corner and duplicated faces do not change the result):

* A column square is closed, widened by :data:`CELL_EPS` ``* cell_size``: a face exactly on a
  cell boundary (a wall at x = 5.000 m) covers both cells. A walkable face that only grazes a
  column (its part there is no wider than the widening) is solid there but not floor: a table
  top ending on a cell boundary does not make the next column walkable.
* A triangle is *walkable-sloped* when its front face (counter-clockwise winding, glTF's and
  Recast's convention) points up within ``max_slope``: ``n_y >= cos(max_slope) |n|``. As in
  habitat-sim, the top of a single-sided ceiling (its front faces down) is not walkable -- with the
  winding ignored, every single-storey scan would grow a roof island larger than its floor. A
  double-sided surface (a face and its reverse) is walkable from above.
* A span's top is walkable when a walkable-sloped record of that span has its top within
  ``max_climb`` of the span's top (Recast's flag merge: the column of a stair riser takes the
  tread's flag), or when the span below has a walkable top within ``max_climb`` (Recast's
  low-hanging-obstacle filter: a curb or a step edge).
* A walkable top is a *node* when the free space up to the next span's bottom is at least
  ``agent_height`` (the last span of a column has open sky).
* Nodes in 4-neighbouring columns are *linked* when their heights differ by at most ``max_climb``
  and the space both share is at least ``agent_height`` high (Recast's neighbour connection).
* Islands (link-connected components) of fewer than ``region_min_size**2`` cells are dropped,
  as Recast drops regions smaller than ``minRegionArea`` (habitat-sim's ``region_min_size`` = 20:
  1 m^2 at 5 cm cells -- table tops, chair seats, window sills); 0 keeps every island.
* Clearance: a missing link is an obstacle. Its surface is the neighbour column's steep geometry
  where it is (the x-z extent of the column's wall-like records, steeper than ``max_slope`` both
  ways: a wall face lying on a cell boundary is measured at the boundary, not a cell further in) or, for a drop / void / the
  grid's edge, the shared cell boundary. Nearest obstacle sites propagate along links (a vector
  distance transform), and nodes closer than ``agent_radius`` are removed (Recast's erosion).

Closed solids taller than ``agent_height`` (a wardrobe, the inside of a thick wall) enclose floor
of their own, as in habitat-sim: it is walkable but forms an island of its own, unconnected to the
outside, and is usually eroded away.

Memory is proportional to the records of a band of rows and to the nodes, never to the bounding
box: triangles are rasterised band by band (a band holds at most :data:`BAND_RECORDS` records).
The loops are compiled with numba (``cache=True``; plain IEEE arithmetic, no fast-math, so the
results do not depend on the CPU's SIMD width).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from habitat_fih.sim.navigation.graph import clearance as _clearance
from habitat_fih.sim.navigation.graph import compact as _compact
from habitat_fih.sim.navigation.graph import components
from habitat_fih.sim.navigation.graph import link as _link

__all__ = ["Heightfield", "build_heightfield", "CELL_EPS", "MERGE_GAP", "BAND_RECORDS"]

#: Widening of each column square, as a fraction of ``cell_size`` (faces on a boundary cover both).
CELL_EPS = 1e-4
#: Records of a column whose y ranges are closer than this (metres) merge into one span.
MERGE_GAP = 1e-4
#: Slack (metres) on the climb / height / radius comparisons, in the permissive direction.
TOL = 1e-6
#: Upper bound on the records rasterised at once (one band of rows).
BAND_RECORDS = 1_000_000


@dataclass
class Heightfield:
    """Navigable nodes of a mesh, sorted by (column, height).

    ``col`` int64 [N] = ``iz * nx + ix``; ``y`` float32 [N] floor heights; ``nbr`` int32 [N, 4]
    links (+x, -x, +z, -z; -1 none); ``clearance`` float32 [N] metres from the cell centre to the
    nearest obstacle surface (capped at ``agent_radius + 0.35``); grid ``origin`` (x, z) of cell (0, 0)'s
    corner, ``cell_size``, ``shape`` (nz, nx).
    """

    col: np.ndarray
    y: np.ndarray
    nbr: np.ndarray
    clearance: np.ndarray
    origin: tuple[float, float]
    cell_size: float
    shape: tuple[int, int]


# ---------------------------------------------------------------------------- rasterisation
@nb.njit(cache=True)
def _clip(src, n, axis, bound, keep_above, dst):
    """Sutherland-Hodgman: the part of polygon ``src[:n]`` with ``p[axis] >= bound`` (or ``<=``)."""
    m = 0
    if n == 0:
        return 0
    sign = 1.0 if keep_above else -1.0
    for i in range(n):
        j = i + 1 if i + 1 < n else 0
        da = sign * (src[i, axis] - bound)
        db = sign * (src[j, axis] - bound)
        if da >= 0.0:
            dst[m, 0] = src[i, 0]
            dst[m, 1] = src[i, 1]
            dst[m, 2] = src[i, 2]
            m += 1
        if (da >= 0.0) != (db >= 0.0):
            t = da / (da - db)
            dst[m, 0] = src[i, 0] + t * (src[j, 0] - src[i, 0])
            dst[m, 1] = src[i, 1] + t * (src[j, 1] - src[i, 1])
            dst[m, 2] = src[i, 2] + t * (src[j, 2] - src[i, 2])
            m += 1
    return m


@nb.njit(cache=True)
def _rasterise_band(tris, walk, steep, tri_ids, r0, r1, x0, z0, cs, nx, eps,
                    out_col, out_lo, out_hi, out_walk, out_steep, out_box):
    """Records of the triangles ``tri_ids`` in rows ``[r0, r1)``; returns the count (-1: overflow)."""
    a = np.empty((16, 3))
    b = np.empty((16, 3))
    c = np.empty((16, 3))
    d = np.empty((16, 3))
    cap = out_col.shape[0]
    k = 0
    for t in tri_ids:
        zmin = min(tris[t, 0, 2], tris[t, 1, 2], tris[t, 2, 2])
        zmax = max(tris[t, 0, 2], tris[t, 1, 2], tris[t, 2, 2])
        ra = max(r0, int(math.floor((zmin - eps - z0) / cs)))
        rb = min(r1 - 1, int(math.floor((zmax + eps - z0) / cs)))
        for r in range(ra, rb + 1):
            for v in range(3):
                a[v, 0] = tris[t, v, 0]
                a[v, 1] = tris[t, v, 1]
                a[v, 2] = tris[t, v, 2]
            n = _clip(a, 3, 2, z0 + r * cs - eps, True, b)
            n = _clip(b, n, 2, z0 + (r + 1) * cs + eps, False, a)
            if n == 0:
                continue
            xmin = a[0, 0]
            xmax = a[0, 0]
            for v in range(1, n):
                xmin = min(xmin, a[v, 0])
                xmax = max(xmax, a[v, 0])
            ca = max(0, int(math.floor((xmin - eps - x0) / cs)))
            cb = min(nx - 1, int(math.floor((xmax + eps - x0) / cs)))
            for col in range(ca, cb + 1):
                m = _clip(a, n, 0, x0 + col * cs - eps, True, c)
                m = _clip(c, m, 0, x0 + (col + 1) * cs + eps, False, d)
                if m == 0:
                    continue
                ylo = d[0, 1]
                yhi = d[0, 1]
                bx0 = d[0, 0]
                bx1 = d[0, 0]
                bz0 = d[0, 2]
                bz1 = d[0, 2]
                for v in range(1, m):
                    ylo = min(ylo, d[v, 1])
                    yhi = max(yhi, d[v, 1])
                    bx0 = min(bx0, d[v, 0])
                    bx1 = max(bx1, d[v, 0])
                    bz0 = min(bz0, d[v, 2])
                    bz1 = max(bz1, d[v, 2])
                if k >= cap:
                    return -1
                out_col[k] = r * nx + col
                out_lo[k] = ylo
                out_hi[k] = yhi
                # a face that only grazes the column (within the widening of its square) is
                # solid there but no floor: a floor or table top ending on a cell boundary does
                # not make the next column walkable
                out_walk[k] = walk[t] and bx1 - bx0 > 2.0 * eps and bz1 - bz0 > 2.0 * eps
                out_steep[k] = steep[t]
                out_box[k, 0] = bx0
                out_box[k, 1] = bx1
                out_box[k, 2] = bz0
                out_box[k, 3] = bz1
                k += 1
    return k


@nb.njit(cache=True)
def _column_nodes(order, col, lo, hi, wk, st, box, max_climb, agent_height, merge_gap, tol,
                  out_col, out_y, out_ceil, obs_col, obs_box):
    """Merge each column's records into spans and emit its walkable tops; returns the node count
    and the count of obstacle columns (columns with steep (wall-like) records, with their x-z
    extent)."""
    n = order.shape[0]
    k = 0
    no = 0
    i = 0
    idx = np.empty(64, dtype=np.int64)
    span_lo = np.empty(64)
    span_hi = np.empty(64)
    span_wk = np.zeros(64, dtype=np.bool_)
    while i < n:
        c = col[order[i]]
        j = i
        while j < n and col[order[j]] == c:
            j += 1
        g = j - i
        if g > idx.shape[0]:
            idx = np.empty(2 * g, dtype=np.int64)
            span_lo = np.empty(2 * g)
            span_hi = np.empty(2 * g)
            span_wk = np.zeros(2 * g, dtype=np.bool_)
        # insertion sort of the column's records by lo (the union and the flags below do not
        # depend on the order of records with equal lo)
        for q in range(g):
            r = order[i + q]
            p = q
            while p > 0 and lo[idx[p - 1]] > lo[r]:
                idx[p] = idx[p - 1]
                p -= 1
            idx[p] = r
        steep = False
        ox0 = np.inf
        ox1 = -np.inf
        oz0 = np.inf
        oz1 = -np.inf
        for q in range(g):
            r = idx[q]
            if st[r]:
                steep = True
                ox0 = min(ox0, box[r, 0])
                ox1 = max(ox1, box[r, 1])
                oz0 = min(oz0, box[r, 2])
                oz1 = max(oz1, box[r, 3])
        if steep:
            obs_col[no] = c
            obs_box[no, 0] = ox0
            obs_box[no, 1] = ox1
            obs_box[no, 2] = oz0
            obs_box[no, 3] = oz1
            no += 1
        ns = 0
        s = 0
        while s < g:
            cur_lo = lo[idx[s]]
            cur_hi = hi[idx[s]]
            e = s + 1
            while e < g and lo[idx[e]] <= cur_hi + merge_gap:
                cur_hi = max(cur_hi, hi[idx[e]])
                e += 1
            flag = False
            for q in range(s, e):
                r = idx[q]
                if wk[r] and hi[r] >= cur_hi - max_climb - tol:
                    flag = True
                    break
            span_lo[ns] = cur_lo
            span_hi[ns] = cur_hi
            span_wk[ns] = flag
            ns += 1
            s = e
        prev_own = False
        for q in range(ns):
            own = span_wk[q]
            walkable = own or (prev_own and span_hi[q] - span_hi[q - 1] <= max_climb + tol)
            prev_own = own
            ceil = span_lo[q + 1] if q + 1 < ns else np.inf
            if walkable and ceil - span_hi[q] >= agent_height - tol:
                out_col[k] = c
                out_y[k] = span_hi[q]
                out_ceil[k] = ceil
                k += 1
        i = j
    return k, no


# ---------------------------------------------------------------------------- driver
def _triangles(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(front-face normals [F, 3], triangles [F, 3, 3])``, the same whichever corner a face lists
    first: the normal comes from the file's winding with the corners rotated to start at the
    lexicographically smallest one (a rotation keeps the winding); the triangles have their corners
    sorted lexicographically (x, y, z), so their clipping arithmetic does not depend on winding or
    first corner either."""
    tris = np.asarray(vertices, dtype=np.float64)[np.asarray(faces, dtype=np.int64)]
    order = np.lexsort((tris[:, :, 2], tris[:, :, 1], tris[:, :, 0]), axis=1)  # [F, 3]
    roll = (order[:, :1] + np.arange(3)[None, :]) % 3
    oriented = np.take_along_axis(tris, roll[:, :, None], axis=1)
    normal = np.cross(oriented[:, 1] - oriented[:, 0], oriented[:, 2] - oriented[:, 0])
    return normal, np.take_along_axis(tris, order[:, :, None], axis=1)


def build_heightfield(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    cell_size: float,
    agent_height: float,
    agent_radius: float,
    max_climb: float,
    max_slope: float,
    region_min_size: int = 20,
    name: str,
    progress=None,
) -> Heightfield:
    """Rasterise, merge, link and erode (module docstring); ``vertices`` Y-up metres.

    Raises ValueError naming ``name`` when the mesh is malformed or nothing is navigable.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(
            f"expected vertices [V, 3] and faces [F, 3]; got {vertices.shape} and {faces.shape} ({name})"
        )
    if len(faces) == 0:
        raise ValueError(f"scene {name!r} has no faces; nothing is navigable")
    if not np.isfinite(vertices).all():
        raise ValueError(f"scene {name!r} has non-finite vertex coordinates")
    for key, value in (("cell_size", cell_size), ("agent_height", agent_height)):
        if not value > 0:
            raise ValueError(f"{key} must be > 0, got {value} ({name})")
    if not 0 <= max_slope < 90:
        raise ValueError(f"max_slope must be in [0, 90) degrees, got {max_slope} ({name})")
    if agent_radius < 0 or max_climb < 0:
        raise ValueError(
            f"agent_radius and max_climb must be >= 0, got {agent_radius}, {max_climb} ({name})"
        )
    cs = float(cell_size)
    normal, tris = _triangles(vertices, faces)
    used = tris.reshape(-1, 3)
    lo, hi = used.min(axis=0), used.max(axis=0)
    x0, z0 = float(lo[0]), float(lo[2])
    nx = max(1, int(np.ceil((hi[0] - lo[0]) / cs)))
    nz = max(1, int(np.ceil((hi[2] - lo[2]) / cs)))
    # elementwise only (no SIMD reductions), so the walkable test is the same on every CPU
    length = np.sqrt(normal[:, 0] * normal[:, 0] + normal[:, 1] * normal[:, 1] + normal[:, 2] * normal[:, 2])
    cos_slope = math.cos(math.radians(float(max_slope)))
    walk = normal[:, 1] >= (cos_slope - 1e-9) * length
    walk &= length > 0
    # steep: a wall-like face (neither a floor nor a ceiling), whose x-z extent locates obstacles
    steep = np.abs(normal[:, 1]) < (cos_slope - 1e-9) * length
    eps = CELL_EPS * cs

    # rows / columns each triangle may touch (the kernel's own bounds, computed the same way)
    tz0 = np.floor((tris[:, :, 2].min(axis=1) - eps - z0) / cs).astype(np.int64)
    tz1 = np.floor((tris[:, :, 2].max(axis=1) + eps - z0) / cs).astype(np.int64)
    tx0 = np.floor((tris[:, :, 0].min(axis=1) - eps - x0) / cs).astype(np.int64)
    tx1 = np.floor((tris[:, :, 0].max(axis=1) + eps - x0) / cs).astype(np.int64)
    tz0, tz1 = np.clip(tz0, 0, nz - 1), np.clip(tz1, 0, nz - 1)
    width = np.clip(tx1, 0, nx - 1) - np.clip(tx0, 0, nx - 1) + 1
    per_row = np.zeros(nz + 1, dtype=np.int64)  # upper bound of records per row (difference array)
    np.add.at(per_row, tz0, width)
    np.add.at(per_row, tz1 + 1, -width)
    per_row = np.cumsum(per_row[:-1])
    bands = _bands(per_row, BAND_RECORDS)
    tri_order = np.argsort(tz0, kind="stable")
    tz0_sorted = tz0[tri_order]

    cols, ys, ceils, ocols, oboxes = [], [], [], [], []
    iterator = bands if progress is None else progress(bands)
    for r0, r1 in iterator:
        upto = np.searchsorted(tz0_sorted, r1, side="left")
        cand = tri_order[:upto]
        ids = np.sort(cand[tz1[cand] >= r0])
        capacity = int(per_row[r0:r1].sum())
        out_col = np.empty(capacity, dtype=np.int64)
        out_lo = np.empty(capacity, dtype=np.float64)
        out_hi = np.empty(capacity, dtype=np.float64)
        out_walk = np.empty(capacity, dtype=np.bool_)
        out_steep = np.empty(capacity, dtype=np.bool_)
        out_box = np.empty((capacity, 4), dtype=np.float64)
        k = _rasterise_band(tris, walk, steep, ids, r0, r1, x0, z0, cs, nx, eps,
                            out_col, out_lo, out_hi, out_walk, out_steep, out_box)
        if k < 0:  # cannot happen: the capacity is the kernel's own bound
            raise RuntimeError(f"rasterisation overflow in rows {r0}..{r1} of scene {name!r}")
        order = np.argsort(out_col[:k], kind="stable")
        n_col = np.empty(k, dtype=np.int64)
        n_y = np.empty(k, dtype=np.float64)
        n_ceil = np.empty(k, dtype=np.float64)
        o_col = np.empty(k, dtype=np.int64)
        o_box = np.empty((k, 4), dtype=np.float64)
        m, mo = _column_nodes(order, out_col, out_lo, out_hi, out_walk, out_steep, out_box,
                              float(max_climb),
                              float(agent_height), MERGE_GAP, TOL, n_col, n_y, n_ceil, o_col, o_box)
        cols.append(n_col[:m].copy())
        ys.append(n_y[:m].copy())
        ceils.append(n_ceil[:m].copy())
        ocols.append(o_col[:mo].copy())
        oboxes.append(o_box[:mo].copy())
        del out_col, out_lo, out_hi, out_walk, out_steep, out_box, order, n_col, n_y, n_ceil, o_col, o_box
    col = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    del cols
    y64 = np.concatenate(ys) if ys else np.zeros(0)
    del ys
    ceil = np.concatenate(ceils) if ceils else np.zeros(0)
    del ceils
    if len(col) == 0:
        raise ValueError(
            f"scene {name!r} has no walkable surface (bounds {lo.tolist()} .. {hi.tolist()}, "
            f"max_slope {max_slope}, agent_height {agent_height})"
        )
    nbr = np.full((len(col), 4), -1, dtype=np.int32)
    _link(col, y64, ceil, nx, nz, float(max_climb), float(agent_height), TOL, nbr)
    del ceil
    obs_col = np.concatenate(ocols)
    obs_box = np.concatenate(oboxes)
    del ocols, oboxes
    cap = float(agent_radius) + 0.35
    clearance = np.empty(len(col), dtype=np.float32)
    keep = _clearance(col, nbr, nx, nz, x0, z0, cs, obs_col, obs_box, cap, float(agent_radius),
                      TOL, clearance)
    del obs_col, obs_box
    walkable_cells = len(col)
    if not keep.any():
        raise ValueError(
            f"scene {name!r} has no navigable area after eroding by agent_radius {agent_radius} "
            f"(bounds {lo.tolist()} .. {hi.tolist()}, {walkable_cells} walkable cells)"
        )
    m = _compact(keep, col, y64, nbr, clearance)
    del keep
    if region_min_size > 0:  # Recast's minRegionArea: islands of fewer cells are dropped
        label, n_islands = components(nbr[:m], np.zeros(m, dtype=np.int64))
        sizes = np.bincount(label, minlength=n_islands)
        min_cells = int(region_min_size) ** 2
        if sizes.max() < min_cells:
            raise ValueError(
                f"scene {name!r}: every navigable island is smaller than region_min_size^2 = "
                f"{min_cells} cells ({sizes.max()} at most; bounds {lo.tolist()} .. {hi.tolist()})"
            )
        small = sizes < min_cells
        if small.any():
            keep = ~small[label]
            m = _compact(keep, col[:m], y64[:m], nbr[:m], clearance[:m])
        del label
    y = y64[:m].astype(np.float32)
    del y64
    return Heightfield(
        col=_shrink(col, m),
        y=y,
        nbr=_shrink(nbr, m),
        clearance=_shrink(clearance, m),
        origin=(x0, z0),
        cell_size=cs,
        shape=(nz, nx),
    )


def _shrink(a: np.ndarray, m: int) -> np.ndarray:
    """``a[:m]``, copied when that frees a tenth of the buffer or more."""
    return a[:m].copy() if m < 0.9 * len(a) else a[:m]


def _bands(per_row: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive row ranges whose record upper bounds stay within ``budget`` (at least one row)."""
    bands = []
    start, acc = 0, 0
    for r, count in enumerate(per_row.tolist()):
        if acc and acc + count > budget:
            bands.append((start, r))
            start, acc = r, 0
        acc += count
    bands.append((start, len(per_row)))
    return bands
