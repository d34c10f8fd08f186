"""Solid heightfield: the navigable cells of a triangle mesh, as Recast (habitat-sim's navmesh) builds them.

habitat-sim 0.2.2 builds its navmesh with Recast from ``NavMeshSettings.set_defaults()``
(``cell_size`` 0.05 m, ``cell_height`` 0.2 m, agent radius 0.1 m, height 1.5 m, max climb 0.2 m,
max slope 45 deg, ``region_min_size`` 20, the three span filters on). Recast judges everything in
whole cells and voxels, so this module does too; that is what puts the edges of the navigable
region where habitat-sim's are (the parity harness ``scripts/parity/compare_navmesh.py`` checks
it). Only the node heights stay exact (metres, not voxels).

Every triangle is rasterised into the grid columns (``cell_size`` squares in x-z) it covers,
whatever its orientation: the triangle is clipped to each column (Sutherland-Hodgman on the x and
z slabs), and the clipped polygon's y range becomes a *record*. The grid starts at the mesh's
minimum x and z and has ``round(extent / cell_size)`` columns and rows (Recast's grid size;
geometry beyond the last column is dropped). A vertical single-sided wall fills the columns it
crosses from its bottom to its top, exactly as a closed box would.

Rules (every rule is a function of the SET of (oriented) triangles, so face order, a face's first
corner and duplicated faces do not change the result; each tolerance sits away from values that
occur exactly in real geometry, so nothing hinges on a floating-point tie):

* Cells: column ``c`` is the closed slab ``[x0 + c cs - e, x0 + (c + 1) cs - e]``, ``e`` =
  :data:`CELL_EPS` ``* cell_size`` (rows likewise in z). A face lying on a cell boundary (within
  ``e``) therefore belongs to the cell on its +x / +z side only, which is what Recast does with a
  face exactly on a boundary (habitat-sim's region between walls at x = 0 and 6 of a mesh starting
  at -0.1 is [0.15, 5.90]). A clipped part no wider than ``2 e`` in x (or z), of a triangle wider
  than that there, is a graze and leaves no record: a table top ending on a boundary does not
  reach into the next column.
* Heights are voxels of ``cell_height`` counted from the mesh's minimum y: a record spans
  ``[floor(ylo), ceil(yhi)]`` voxels, at least one voxel. A value within :data:`HEIGHT_EPS`
  voxels of an integer counts as that integer, so an exact multiple stays put (a bottom at k is
  k, a top at k is k) and a flat face exactly at k spans [k, k + 1]. As in habitat-sim, floors
  therefore sit up to one voxel above their true height (a floor at the mesh's minimum is voxel
  1) -- for the rules below; node heights are the exact tops.
* The agent in voxels / cells, as habitat-sim derives Recast's settings: ``walkable_height =
  ceil(agent_height / cell_height)`` (8), ``walkable_climb = floor(max_climb / cell_height)`` (1),
  ``walkable_radius = ceil(agent_radius / cell_size)`` (2), an exact ratio taken as is.
* A triangle is *walkable-sloped* when its front face (counter-clockwise winding, glTF's and
  Recast's convention) points up within ``max_slope``: ``n_y >= cos(max_slope) |n|``. As in
  habitat-sim, the top of a single-sided ceiling (its front faces down) is not walkable -- with the
  winding ignored, every single-storey scan would grow a roof island larger than its floor. A
  double-sided surface (a face and its reverse) is walkable from above.
* Spans: a column's records whose voxel ranges overlap or touch merge into one solid span. A span
  is walkable when one of its walkable-sloped records has its top within ``walkable_climb`` of the
  span's top (Recast's flag merge: the column of a stair riser takes the tread's flag; Recast's
  own merge depends on the rasterisation order, this rule does not).
* Recast's filters, in habitat-sim's order (:func:`_filter_spans`): low-hanging obstacles (an
  unwalkable span at most ``walkable_climb`` above a walkable one becomes walkable: a curb, a
  step edge), ledges (a walkable span next to a drop of more than ``walkable_climb`` -- a
  neighbour column with a lower floor and room to stand, an empty column, the grid's edge -- is
  removed, as is one among neighbour floors spread over more than ``walkable_climb``), low head
  room (a span whose free space up to the next span's bottom is not more than
  ``walkable_height`` voxels is removed: the test of the Recast releases before 1.6, of
  habitat-sim 0.2.2's time; 1.6 has "less than". A 1.6 m gap over a floor is 7 or 8 voxels, too
  low either way). The remaining walkable spans are the nodes.
* Nodes in 4-neighbouring columns are *linked* when their floors differ by at most
  ``walkable_climb`` voxels and the space both share is at least ``walkable_height`` voxels
  (Recast's compact-heightfield connection).
* Erosion by the agent radius, in cells (:func:`.graph.erode`): a node with fewer than 4 links is
  a boundary node (distance 0); chamfer distances (2 per orthogonal, 3 per diagonal step, two
  raster passes) grow from them, and nodes closer than ``2 walkable_radius`` are removed. With
  2 cells a node survives when its 3 x 3 neighbourhood has no boundary node: the region keeps
  2 cells from the last blocked cell (0.10 m from a face on a boundary on its -x / -z side, 0.15
  m on its +x / +z side, 0.15 m from a drop, whose edge cell the ledge filter removed), with square
  corners.
* Islands (link-connected components) of fewer than ``region_min_size**2`` cells are dropped,
  as Recast drops regions smaller than ``minRegionArea`` (habitat-sim's ``region_min_size`` = 20:
  1 m^2 at 5 cm cells -- table tops, chair seats, window sills); 0 keeps every island.
* Clearance (``Heightfield.clearance``, metric, for ``distance_to_obstacle``; it does not decide
  navigability): a missing link is an obstacle. Its surface is the neighbour column's steep
  geometry where it is (the x-z extent of the column's wall-like records, steeper than
  ``max_slope`` both ways) or, for a drop / void / the grid's edge, the shared cell boundary.
  Nearest obstacle sites propagate along links (a vector distance transform) before erosion.

Not emulated: Recast's contour simplification (``edge_max_error`` 1.3 cells) and polygon mesh,
which move habitat-sim's region edges by up to a cell here and there (a dent of one cell along a
wall is filled, a bump cut), and Detour's path search over those polygons. Node heights are the
exact floor heights, not habitat-sim's voxel-rounded ones.

Closed solids taller than ``agent_height`` (a wardrobe, the inside of a thick wall) enclose floor
of their own, as in habitat-sim: it is walkable but forms an island of its own, unconnected to the
outside, and is usually eroded away.

Memory is proportional to the records of a band of rows and to the solid spans (the columns and
layers the mesh occupies), never to the bounding box: triangles are rasterised band by band (a
band holds at most :data:`BAND_RECORDS` records). The loops are compiled with numba
(``cache=True``; plain IEEE arithmetic, no fast-math, so the results do not depend on the CPU's
SIMD width); the filters, links and erosion work on integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from habitat_fih.sim.navigation.graph import clearance as _clearance
from habitat_fih.sim.navigation.graph import compact as _compact
from habitat_fih.sim.navigation.graph import components
from habitat_fih.sim.navigation.graph import erode as _erode
from habitat_fih.sim.navigation.graph import link as _link

__all__ = ["Heightfield", "build_heightfield", "voxel_settings", "grid_cells", "CELL_EPS",
           "HEIGHT_EPS", "BAND_RECORDS"]

#: Shift of the column / row boundaries towards -x / -z, as a fraction of ``cell_size``: a face on
#: a cell boundary belongs to the cell on its +x / +z side, and a part of a face no wider than
#: twice this is a graze (no record).
CELL_EPS = 1e-4
#: Tolerance, in voxels (cells), of the height quantisation and of the voxel settings: a value
#: within this of an integer counts as that integer.
HEIGHT_EPS = 1e-4
#: Ceiling (voxels) of the last span of a column: open sky (Recast's 0xffff, which its 13-bit
#: span heights never reach).
OPEN_SKY = 1 << 40
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
def _voxels(ylo, yhi, y0, ch, heps):
    """``(smin, smax)`` of a y range on the voxel grid ``y0 + k ch``: bottom floored, top ceiled,
    a value within ``heps`` voxels of a multiple taken as that multiple; at least one voxel."""
    smin = max(0, int(math.floor((ylo - y0) / ch + heps)))
    smax = max(smin + 1, int(math.ceil((yhi - y0) / ch - heps)))
    return smin, smax


@nb.njit(cache=True)
def _rasterise_band(tris, walk, steep, tri_ids, r0, r1, x0, y0, z0, cs, ch, nx, eps, heps,
                    out_col, out_smin, out_smax, out_y, out_walk, out_steep, out_box):
    """Records of the triangles ``tri_ids`` in rows ``[r0, r1)``; returns the count (-1: overflow).

    Column ``c`` is the closed slab ``[x0 + c cs - eps, x0 + (c + 1) cs - eps]`` (rows likewise in
    z). A record whose clipped part is no wider than ``2 eps`` in x (or z) while its triangle is
    wider there is a graze and is dropped."""
    a = np.empty((16, 3))
    b = np.empty((16, 3))
    c = np.empty((16, 3))
    d = np.empty((16, 3))
    cap = out_col.shape[0]
    k = 0
    for t in tri_ids:
        zmin = min(tris[t, 0, 2], tris[t, 1, 2], tris[t, 2, 2])
        zmax = max(tris[t, 0, 2], tris[t, 1, 2], tris[t, 2, 2])
        txmin = min(tris[t, 0, 0], tris[t, 1, 0], tris[t, 2, 0])
        txmax = max(tris[t, 0, 0], tris[t, 1, 0], tris[t, 2, 0])
        wide_x = txmax - txmin > 2.0 * eps
        wide_z = zmax - zmin > 2.0 * eps
        ra = max(r0, int(math.floor((zmin - z0 + eps) / cs)))
        rb = min(r1 - 1, int(math.floor((zmax - z0 + eps) / cs)))
        for r in range(ra, rb + 1):
            for v in range(3):
                a[v, 0] = tris[t, v, 0]
                a[v, 1] = tris[t, v, 1]
                a[v, 2] = tris[t, v, 2]
            n = _clip(a, 3, 2, z0 + r * cs - eps, True, b)
            n = _clip(b, n, 2, z0 + (r + 1) * cs - eps, False, a)
            if n == 0:
                continue
            xmin = a[0, 0]
            xmax = a[0, 0]
            for v in range(1, n):
                xmin = min(xmin, a[v, 0])
                xmax = max(xmax, a[v, 0])
            ca = max(0, int(math.floor((xmin - x0 + eps) / cs)))
            cb = min(nx - 1, int(math.floor((xmax - x0 + eps) / cs)))
            for col in range(ca, cb + 1):
                m = _clip(a, n, 0, x0 + col * cs - eps, True, c)
                m = _clip(c, m, 0, x0 + (col + 1) * cs - eps, False, d)
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
                # a face that only grazes the column (a floor or table top ending on the cell
                # boundary, a wall ending there) leaves no record in it, as in Recast
                if (wide_x and bx1 - bx0 <= 2.0 * eps) or (wide_z and bz1 - bz0 <= 2.0 * eps):
                    continue
                if k >= cap:
                    return -1
                smin, smax = _voxels(ylo, yhi, y0, ch, heps)
                out_col[k] = r * nx + col
                out_smin[k] = smin
                out_smax[k] = smax
                out_y[k] = yhi
                out_walk[k] = walk[t]
                out_steep[k] = steep[t]
                out_box[k, 0] = bx0
                out_box[k, 1] = bx1
                out_box[k, 2] = bz0
                out_box[k, 3] = bz1
                k += 1
    return k


@nb.njit(cache=True)
def _column_spans(order, col, smin, smax, ry, wk, st, box, climb,
                  out_col, out_smin, out_smax, out_y, out_walk, obs_col, obs_box):
    """Merge each column's records into solid spans (voxel intervals that overlap or touch join);
    returns the span count and the count of obstacle columns (columns with steep (wall-like)
    records, with their x-z extent). A span is walkable when one of its walkable records has its
    top within ``climb`` voxels of the span's top; its metric top is its records' highest y."""
    n = order.shape[0]
    k = 0
    no = 0
    i = 0
    idx = np.empty(64, dtype=np.int64)
    while i < n:
        c = col[order[i]]
        j = i
        while j < n and col[order[j]] == c:
            j += 1
        g = j - i
        if g > idx.shape[0]:
            idx = np.empty(2 * g, dtype=np.int64)
        # insertion sort of the column's records by smin (the union and the flags below do not
        # depend on the order of records with equal smin)
        for q in range(g):
            r = order[i + q]
            p = q
            while p > 0 and smin[idx[p - 1]] > smin[r]:
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
        s = 0
        while s < g:
            cur_lo = smin[idx[s]]
            cur_hi = smax[idx[s]]
            cur_y = ry[idx[s]]
            e = s + 1
            while e < g and smin[idx[e]] <= cur_hi:
                cur_hi = max(cur_hi, smax[idx[e]])
                cur_y = max(cur_y, ry[idx[e]])
                e += 1
            flag = False
            for q in range(s, e):
                r = idx[q]
                if wk[r] and smax[r] >= cur_hi - climb:
                    flag = True
                    break
            out_col[k] = c
            out_smin[k] = cur_lo
            out_smax[k] = cur_hi
            out_y[k] = cur_y
            out_walk[k] = flag
            k += 1
            s = e
        i = j
    return k, no


@nb.njit(cache=True)
def _filter_spans(col, smin, smax, walk, nx, nz, climb, height, out):
    """Recast's three span filters, in habitat-sim's order, on spans sorted by (column, smin);
    writes the walkable mask to ``out``. Voxel integers throughout.

    1. Low-hanging obstacles: an unwalkable span right above a span that was walkable (before
       this filter) becomes walkable when its top is at most ``climb`` above that span's top.
    2. Ledges: a walkable span (floor ``bot``, ceiling ``top`` = next span's bottom or open) is
       removed when a neighbour column, or the grid's edge, offers a drop of more than ``climb``:
       for each of the 4 neighbour columns, the floor below its first span (at ``-climb``) and the
       top of each of its spans count when the gap they share with this span,
       ``min(top, their ceiling) - max(bot, their floor)``, exceeds ``height``; it is also removed
       when the floors among those within ``climb`` of ``bot`` (``bot`` included) spread over more
       than ``climb`` (a steep slope).
    3. Low head room: a span with ``ceiling - floor <= height`` is not walkable.
    """
    n = col.shape[0]
    big = np.int64(OPEN_SKY)
    area = walk.copy()
    i = 0
    while i < n:  # 1. low-hanging obstacles
        j = i
        while j < n and col[j] == col[i]:
            j += 1
        prev = False
        for q in range(i, j):
            w = walk[q]
            if not w and prev and smax[q] - smax[q - 1] <= climb:
                area[q] = True
            prev = w
        i = j
    for q in range(n):  # 2. ledges
        out[q] = area[q]
        if not area[q]:
            continue
        c = col[q]
        ix = c % nx
        iz = c // nx
        bot = np.int64(smax[q])
        top = np.int64(smin[q + 1]) if q + 1 < n and col[q + 1] == c else big
        minh = big
        amin = bot
        amax = bot
        for d in range(4):
            jx = ix + (1 if d == 0 else (-1 if d == 1 else 0))
            jz = iz + (1 if d == 2 else (-1 if d == 3 else 0))
            if jx < 0 or jz < 0 or jx >= nx or jz >= nz:
                minh = min(minh, -climb - bot)
                continue
            tc = jz * nx + jx
            lo = np.searchsorted(col, tc, side="left")
            hi = np.searchsorted(col, tc, side="right")
            nbot = -np.int64(climb)
            ntop = np.int64(smin[lo]) if lo < hi else big
            if min(top, ntop) - max(bot, nbot) > height:
                minh = min(minh, nbot - bot)
            for p in range(lo, hi):
                nbot = np.int64(smax[p])
                ntop = np.int64(smin[p + 1]) if p + 1 < hi else big
                if min(top, ntop) - max(bot, nbot) > height:
                    minh = min(minh, nbot - bot)
                    if abs(nbot - bot) <= climb:
                        amin = min(amin, nbot)
                        amax = max(amax, nbot)
        if minh < -climb or amax - amin > climb:
            out[q] = False
    for q in range(n):  # 3. low head room
        if out[q]:
            top = np.int64(smin[q + 1]) if q + 1 < n and col[q + 1] == col[q] else big
            if top - np.int64(smax[q]) <= height:
                out[q] = False


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


def voxel_settings(
    cell_size: float, cell_height: float, agent_height: float, agent_radius: float, max_climb: float
) -> tuple[int, int, int]:
    """``(walkable_height, walkable_climb, walkable_radius)`` in voxels / cells, as habitat-sim
    derives Recast's settings: ``ceil(agent_height / cell_height)``, ``floor(max_climb /
    cell_height)``, ``ceil(agent_radius / cell_size)``. A ratio within :data:`HEIGHT_EPS` of an
    integer counts as that integer (0.2 / 0.2 is 1, 0.1 / 0.05 is 2, whatever the rounding)."""
    height = max(1, math.ceil(agent_height / cell_height - HEIGHT_EPS))
    climb = max(0, math.floor(max_climb / cell_height + HEIGHT_EPS))
    radius = max(0, math.ceil(agent_radius / cell_size - HEIGHT_EPS))
    return int(height), int(climb), int(radius)


def grid_cells(extent: float, cell_size: float) -> int:
    """Columns (or rows) over ``extent`` metres: Recast's ``(int)(extent / cs + 0.5)``, at least 1
    (a ratio within 1e-6 below a half cell rounds up, like one exactly on it)."""
    return max(1, int(math.floor(extent / cell_size + 0.5 + 1e-6)))


def build_heightfield(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    cell_size: float,
    agent_height: float,
    agent_radius: float,
    max_climb: float,
    max_slope: float,
    cell_height: float = 0.2,
    region_min_size: int = 20,
    name: str,
    progress=None,
) -> Heightfield:
    """Rasterise, merge, filter, link and erode (module docstring); ``vertices`` Y-up metres.

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
    for key, value in (("cell_size", cell_size), ("cell_height", cell_height),
                       ("agent_height", agent_height)):
        if not value > 0:
            raise ValueError(f"{key} must be > 0, got {value} ({name})")
    if not 0 <= max_slope < 90:
        raise ValueError(f"max_slope must be in [0, 90) degrees, got {max_slope} ({name})")
    if agent_radius < 0 or max_climb < 0:
        raise ValueError(
            f"agent_radius and max_climb must be >= 0, got {agent_radius}, {max_climb} ({name})"
        )
    cs, ch = float(cell_size), float(cell_height)
    v_height, v_climb, v_radius = voxel_settings(cs, ch, agent_height, agent_radius, max_climb)
    normal, tris = _triangles(vertices, faces)
    used = tris.reshape(-1, 3)
    lo, hi = used.min(axis=0), used.max(axis=0)
    x0, y0, z0 = float(lo[0]), float(lo[1]), float(lo[2])
    nx = grid_cells(float(hi[0] - lo[0]), cs)
    nz = grid_cells(float(hi[2] - lo[2]), cs)
    # elementwise only (no SIMD reductions), so the walkable test is the same on every CPU
    length = np.sqrt(normal[:, 0] * normal[:, 0] + normal[:, 1] * normal[:, 1] + normal[:, 2] * normal[:, 2])
    cos_slope = math.cos(math.radians(float(max_slope)))
    walk = normal[:, 1] >= (cos_slope - 1e-9) * length
    walk &= length > 0
    # steep: a wall-like face (neither a floor nor a ceiling), whose x-z extent locates obstacles
    steep = np.abs(normal[:, 1]) < (cos_slope - 1e-9) * length
    eps = CELL_EPS * cs

    # rows / columns each triangle may touch (the kernel's own bounds, computed the same way)
    tz0 = np.floor((tris[:, :, 2].min(axis=1) - z0 + eps) / cs).astype(np.int64)
    tz1 = np.floor((tris[:, :, 2].max(axis=1) - z0 + eps) / cs).astype(np.int64)
    tx0 = np.floor((tris[:, :, 0].min(axis=1) - x0 + eps) / cs).astype(np.int64)
    tx1 = np.floor((tris[:, :, 0].max(axis=1) - x0 + eps) / cs).astype(np.int64)
    tz0, tz1 = np.clip(tz0, 0, nz), np.clip(tz1, -1, nz - 1)
    width = np.maximum(np.clip(tx1, -1, nx - 1) - np.clip(tx0, 0, nx) + 1, 0)
    rows_hit = tz1 >= tz0
    per_row = np.zeros(nz + 1, dtype=np.int64)  # upper bound of records per row (difference array)
    np.add.at(per_row, tz0[rows_hit], width[rows_hit])
    np.add.at(per_row, tz1[rows_hit] + 1, -width[rows_hit])
    per_row = np.cumsum(per_row[:-1])
    bands = _bands(per_row, BAND_RECORDS)
    tri_order = np.argsort(tz0, kind="stable")
    tz0_sorted = tz0[tri_order]

    cols, s_lo, s_hi, s_y, s_walk, ocols, oboxes = [], [], [], [], [], [], []
    iterator = bands if progress is None else progress(bands)
    for r0, r1 in iterator:
        upto = np.searchsorted(tz0_sorted, r1, side="left")
        cand = tri_order[:upto]
        ids = np.sort(cand[(tz1[cand] >= r0) & rows_hit[cand]])
        capacity = int(per_row[r0:r1].sum())
        out_col = np.empty(capacity, dtype=np.int64)
        out_smin = np.empty(capacity, dtype=np.int64)
        out_smax = np.empty(capacity, dtype=np.int64)
        out_y = np.empty(capacity, dtype=np.float64)
        out_walk = np.empty(capacity, dtype=np.bool_)
        out_steep = np.empty(capacity, dtype=np.bool_)
        out_box = np.empty((capacity, 4), dtype=np.float64)
        k = _rasterise_band(tris, walk, steep, ids, r0, r1, x0, y0, z0, cs, ch, nx, eps, HEIGHT_EPS,
                            out_col, out_smin, out_smax, out_y, out_walk, out_steep, out_box)
        if k < 0:  # cannot happen: the capacity is the kernel's own bound
            raise RuntimeError(f"rasterisation overflow in rows {r0}..{r1} of scene {name!r}")
        order = np.argsort(out_col[:k], kind="stable")
        n_col = np.empty(k, dtype=np.int64)
        n_lo = np.empty(k, dtype=np.int32)
        n_hi = np.empty(k, dtype=np.int32)
        n_y = np.empty(k, dtype=np.float64)
        n_walk = np.empty(k, dtype=np.bool_)
        o_col = np.empty(k, dtype=np.int64)
        o_box = np.empty((k, 4), dtype=np.float64)
        m, mo = _column_spans(order, out_col, out_smin, out_smax, out_y, out_walk, out_steep, out_box,
                              v_climb, n_col, n_lo, n_hi, n_y, n_walk, o_col, o_box)
        cols.append(n_col[:m].copy())
        s_lo.append(n_lo[:m].copy())
        s_hi.append(n_hi[:m].copy())
        s_y.append(n_y[:m].copy())
        s_walk.append(n_walk[:m].copy())
        ocols.append(o_col[:mo].copy())
        oboxes.append(o_box[:mo].copy())
        del out_col, out_smin, out_smax, out_y, out_walk, out_steep, out_box, order
        del n_col, n_lo, n_hi, n_y, n_walk, o_col, o_box
    span_col = np.concatenate(cols)
    span_lo = np.concatenate(s_lo)
    span_hi = np.concatenate(s_hi)
    span_walk = np.concatenate(s_walk)
    del cols, s_lo, s_hi, s_walk
    ok = np.empty(len(span_col), dtype=np.bool_)
    _filter_spans(span_col, span_lo, span_hi, span_walk, nx, nz, v_climb, v_height, ok)
    del span_walk
    # a node's ceiling: the next span's bottom in its column, or open sky
    nxt_same = np.zeros(len(span_col), dtype=bool)
    nxt_same[:-1] = span_col[1:] == span_col[:-1]
    span_ceil = np.full(len(span_col), OPEN_SKY, dtype=np.int64)
    span_ceil[:-1][nxt_same[:-1]] = span_lo[1:][nxt_same[:-1]]
    del nxt_same, span_lo
    col = span_col[ok]
    top = span_hi[ok]
    ceil = span_ceil[ok]
    y64 = np.concatenate(s_y)[ok]
    del s_y, span_col, span_hi, span_ceil, ok
    if len(col) == 0:
        raise ValueError(
            f"scene {name!r} has no walkable surface (bounds {lo.tolist()} .. {hi.tolist()}, "
            f"max_slope {max_slope}, agent_height {agent_height})"
        )
    nbr = np.full((len(col), 4), -1, dtype=np.int32)
    _link(col, top, ceil, nx, nz, v_climb, v_height, nbr)
    del top, ceil
    obs_col = np.concatenate(ocols)
    obs_box = np.concatenate(oboxes)
    del ocols, oboxes
    cap = float(agent_radius) + 0.35
    clearance = np.empty(len(col), dtype=np.float32)
    _clearance(col, nbr, nx, nz, x0, z0, cs, obs_col, obs_box, cap, clearance)
    del obs_col, obs_box
    keep = _erode(nbr, v_radius)
    walkable_cells = len(col)
    if not keep.any():
        raise ValueError(
            f"scene {name!r} has no navigable area after eroding by agent_radius {agent_radius} "
            f"({v_radius} cells; bounds {lo.tolist()} .. {hi.tolist()}, {walkable_cells} walkable cells)"
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
