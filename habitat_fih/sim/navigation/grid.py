"""``NavGrid``: FIHSim-v0's navigability grid with habitat-sim's ``PathFinder`` queries.

Built by :meth:`NavGrid.from_mesh` from a triangle mesh (Y-up metres) through the solid heightfield
of :mod:`.heightfield`; geodesics come from :mod:`.fields` on the sheets of :mod:`.sheets`.

Node arrays (sorted by column, then height): ``node_col`` int64 (``iz * nx + ix``), ``node_y``
float32 floor heights, ``nbr`` int32 [N, 4] links (+x, -x, +z, -z), ``clearance`` float32 metres
from the cell centre to the nearest obstacle surface (capped), ``node_island`` int32.
``node_ix`` / ``node_iz`` / ``node_cx`` / ``node_cz`` are computed on access (not stored).
Columns are found by binary search in ``node_col``: nothing is stored per cell of the bounding box.

Positions are ``np.ndarray [3]`` world coordinates of the point on the floor at the agent's feet.
The segment walk through linked cells (:func:`walk_segment`, :func:`segment_clear`) lives here;
agent motion (``try_step``) is :mod:`habitat_fih.sim.motion`, which uses it.

Choices: ``sample_navigable_point`` samples the largest island unless told otherwise (habitat-sim
samples every island, roofs and furniture tops included; ``island="all"`` does that here);
``geodesic_distance`` is never below the 3-D straight-line distance (the fast-marching field is
clamped to it, so the start circle and the smoothed slope speed cannot make a path look shorter
than the straight line).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from habitat_fih.sim.navigation.fields import FieldCache, compute_field
from habitat_fih.sim.navigation.graph import column_box, components
from habitat_fih.sim.navigation.heightfield import Heightfield, build_heightfield
from habitat_fih.sim.navigation.sheets import build_sheets

__all__ = ["NavGrid", "walk_segment", "segment_clear", "DEFAULT_FIELD_CACHE_BYTES"]

#: habitat-sim's snap search half-extents (x, y, z) in metres.
_SNAP_EXTENTS = np.array([2.0, 4.0, 2.0])
#: Default byte budget of the geodesic field cache.
DEFAULT_FIELD_CACHE_BYTES = 256 * 2**20
_INF = np.inf


class NavGrid:
    """2.5-D navigability grid with cached scikit-fmm geodesics (habitat-sim ``PathFinder`` API)."""

    def __init__(
        self,
        hf: Heightfield,
        *,
        agent_radius: float,
        agent_height: float,
        max_climb: float,
        max_slope: float,
        name: str = "<mesh>",
        field_cache_bytes: int = DEFAULT_FIELD_CACHE_BYTES,
    ) -> None:
        self.name = name
        self.x0, self.z0 = float(hf.origin[0]), float(hf.origin[1])
        self.cell_size = float(hf.cell_size)
        self.nz, self.nx = int(hf.shape[0]), int(hf.shape[1])
        self.agent_radius = float(agent_radius)
        self.agent_height = float(agent_height)
        self.max_climb = float(max_climb)
        self.max_slope = float(max_slope)
        self.node_col = hf.col
        self.node_y = hf.y
        self.nbr = hf.nbr
        self.clearance = hf.clearance
        self.num_nodes = len(hf.y)
        labels, n_islands = components(self.nbr, np.zeros(self.num_nodes, dtype=np.int64))
        self.node_island = labels
        self.island_sizes = np.bincount(labels, minlength=n_islands)
        self._largest_island = int(np.argmax(self.island_sizes))
        self._sheets = build_sheets(
            self.node_col, self.node_y, self.nbr, self.nx, self.nz, self.cell_size,
            self.agent_height, labels, n_islands,
        )
        self._fields = FieldCache(field_cache_bytes)
        ix0, iz0, h, w = (int(v) for v in column_box(self.node_col, self.nx))
        cs = self.cell_size
        self._bounds = (
            np.array([self.x0 + ix0 * cs, self.node_y.min(), self.z0 + iz0 * cs], np.float32),
            np.array(
                [self.x0 + (ix0 + w) * cs, self.node_y.max(), self.z0 + (iz0 + h) * cs], np.float32
            ),
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_mesh(
        cls,
        vertices: np.ndarray,
        faces: np.ndarray,
        *,
        agent_height: float = 1.5,
        agent_radius: float = 0.1,
        max_climb: float = 0.2,
        max_slope: float = 45.0,
        cell_size: float = 0.05,
        cell_height: float = 0.2,
        region_min_size: int = 20,
        name: str = "<mesh>",
        field_cache_bytes: int = DEFAULT_FIELD_CACHE_BYTES,
        progress=None,
    ) -> NavGrid:
        """Build the grid from ``vertices float [V, 3]`` and ``faces int [F, 3]`` (Y-up, metres).

        Names follow habitat-sim's ``NavMeshSettings``; islands under ``region_min_size**2``
        cells are dropped (see :mod:`.heightfield`). ``cell_height`` is Recast's vertical voxel
        size: head room and climb are judged on that grid, as in habitat-sim; node heights stay
        exact. ``progress``: optional wrapper for the band iterator (e.g. ``tqdm``). Raises
        ValueError naming ``name`` when nothing is navigable or the input is malformed.
        """
        hf = build_heightfield(
            vertices, faces, cell_size=cell_size, cell_height=cell_height,
            agent_height=agent_height, agent_radius=agent_radius, max_climb=max_climb,
            max_slope=max_slope, region_min_size=region_min_size, name=name, progress=progress,
        )
        return cls(
            hf, agent_radius=agent_radius, agent_height=agent_height, max_climb=max_climb,
            max_slope=max_slope, name=name, field_cache_bytes=field_cache_bytes,
        )

    # ------------------------------------------------------------------ node geometry
    @property
    def node_ix(self) -> np.ndarray:
        return self.node_col % self.nx

    @property
    def node_iz(self) -> np.ndarray:
        return self.node_col // self.nx

    def _centres(self, ids: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """x and z of the cell centres of nodes ``ids`` (all nodes by default)."""
        col = self.node_col[ids]
        return (
            self.x0 + (col % self.nx + 0.5) * self.cell_size,
            self.z0 + (col // self.nx + 0.5) * self.cell_size,
        )

    @property
    def node_cx(self) -> np.ndarray:
        return self._centres()[0]

    @property
    def node_cz(self) -> np.ndarray:
        return self._centres()[1]

    def node_ixz(self, node: int) -> tuple[int, int]:
        iz, ix = divmod(int(self.node_col[node]), self.nx)
        return ix, iz

    def cell_centre(self, node: int) -> tuple[float, float]:
        ix, iz = self.node_ixz(node)
        return self.x0 + (ix + 0.5) * self.cell_size, self.z0 + (iz + 0.5) * self.cell_size

    def clamp_to_cell(self, node: int, x: float, z: float, eps: float = 0.0) -> tuple[float, float]:
        """Closest point of ``node``'s cell square (shrunk by ``eps``) to ``(x, z)``."""
        h = 0.5 * self.cell_size - eps
        cx, cz = self.cell_centre(node)
        return min(max(x, cx - h), cx + h), min(max(z, cz - h), cz + h)

    # ------------------------------------------------------------------ point <-> node
    def _cell_of(self, x: float, z: float) -> tuple[int, int]:
        return (
            int(np.floor((x - self.x0) / self.cell_size)),
            int(np.floor((z - self.z0) / self.cell_size)),
        )

    def _column_nodes(self, ix: int, iz: int) -> range:
        if not (0 <= ix < self.nx and 0 <= iz < self.nz):
            return range(0)
        c = iz * self.nx + ix
        lo = int(np.searchsorted(self.node_col, c, side="left"))
        hi = lo
        while hi < self.num_nodes and self.node_col[hi] == c:
            hi += 1
        return range(lo, hi)

    def locate(self, point: np.ndarray, max_y_delta: float = 0.5, tol: float = 1e-3) -> int:
        """Node whose cell contains ``point`` (x-z) with the nearest height within ``max_y_delta``; -1 if none.

        Points within ``tol`` metres of a navigable cell (float round-off at region edges) count too.
        """
        x, y, z = float(point[0]), float(point[1]), float(point[2])
        ix, iz = self._cell_of(x, z)
        best, best_dy = -1, max_y_delta
        for i in self._column_nodes(ix, iz):
            dy = abs(float(self.node_y[i]) - y)
            if dy < best_dy:
                best, best_dy = i, dy
        if best >= 0 or tol <= 0:
            return best
        h = 0.5 * self.cell_size
        for jz in (iz - 1, iz, iz + 1):
            for jx in (ix - 1, ix, ix + 1):
                for i in self._column_nodes(jx, jz):
                    cx, cz = self.cell_centre(i)
                    dx = max(abs(x - cx) - h, 0.0)
                    dz = max(abs(z - cz) - h, 0.0)
                    dy = abs(float(self.node_y[i]) - y)
                    if dx <= tol and dz <= tol and dy < best_dy:
                        best, best_dy = i, dy
        return best

    def _locate_or_snap(self, point: np.ndarray) -> tuple[int, np.ndarray]:
        p = np.asarray(point, dtype=np.float64)
        node = self.locate(p)
        if node >= 0:
            return node, p
        snapped = self.snap_point(p)
        if np.any(np.isnan(snapped)):
            return -1, p
        snapped = snapped.astype(np.float64)
        return self.locate(snapped, tol=1e-3), snapped

    def _nodes_in_box(self, x: float, z: float, half: float) -> np.ndarray:
        """Ids of the nodes whose columns lie within ``half`` metres (x-z box) of ``(x, z)``."""
        cs = self.cell_size
        ix0 = max(int(np.floor((x - half - self.x0) / cs)), 0)
        ix1 = min(int(np.floor((x + half - self.x0) / cs)), self.nx - 1)
        iz0 = max(int(np.floor((z - half - self.z0) / cs)), 0)
        iz1 = min(int(np.floor((z + half - self.z0) / cs)), self.nz - 1)
        if ix0 > ix1 or iz0 > iz1:
            return np.zeros(0, dtype=np.int64)
        rows = np.arange(iz0, iz1 + 1, dtype=np.int64) * self.nx
        lo = np.searchsorted(self.node_col, rows + ix0, side="left")
        hi = np.searchsorted(self.node_col, rows + ix1, side="right")
        counts = hi - lo
        if counts.sum() == 0:
            return np.zeros(0, dtype=np.int64)
        return np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())

    # ------------------------------------------------------------------ habitat PathFinder API
    def is_navigable(self, point: np.ndarray, max_y_delta: float = 0.5) -> bool:
        """habitat-sim ``is_navigable``: a navigable cell at (x, z) with a floor within ``max_y_delta``."""
        return self.locate(point, max_y_delta=max_y_delta, tol=0.0) >= 0

    def snap_point(self, point: np.ndarray) -> np.ndarray:
        """Nearest navigable point (float32 [3]); NaNs if none within habitat's (2, 4, 2) m search box.

        Searched in growing x-z boxes (0.25, 1, 2 m); ties go to the lower node id.
        """
        p = np.asarray(point, dtype=np.float64)
        h = 0.5 * self.cell_size - 1e-5
        for half in (0.25, 1.0, float(_SNAP_EXTENTS[0])):
            ids = self._nodes_in_box(p[0], p[2], half)
            if len(ids) == 0:
                continue
            cx, cz = self._centres(ids)
            qx = np.clip(p[0], cx - h, cx + h)
            qz = np.clip(p[2], cz - h, cz + h)
            qy = self.node_y[ids].astype(np.float64)
            ok = (np.abs(qx - p[0]) <= _SNAP_EXTENTS[0]) & (np.abs(qy - p[1]) <= _SNAP_EXTENTS[1])
            ok &= np.abs(qz - p[2]) <= _SNAP_EXTENTS[2]
            if not ok.any():
                continue
            d2 = np.where(ok, (qx - p[0]) ** 2 + (qy - p[1]) ** 2 + (qz - p[2]) ** 2, _INF)
            k = int(np.argmin(d2))
            if np.sqrt(d2[k]) <= half - self.cell_size or half >= _SNAP_EXTENTS[0]:
                return np.array([qx[k], qy[k], qz[k]], dtype=np.float32)
        return np.full(3, np.nan, dtype=np.float32)

    def sample_navigable_point(
        self, rng: np.random.Generator, *, island: int | str | None = None
    ) -> np.ndarray:
        """Uniform random navigable point (float32 [3]).

        ``island``: an island index, ``"all"`` (every island, as habitat-sim's
        ``get_random_navigable_point``) or None: the largest island (the default, see the module
        docstring).
        """
        if island is None:
            island = self._largest_island
        if island == "all":
            node = int(rng.integers(self.num_nodes))
        else:
            members = np.flatnonzero(self.node_island == int(island))
            if len(members) == 0:
                raise ValueError(f"island {island} does not exist in scene {self.name!r}")
            node = int(members[rng.integers(len(members))])
        off = (rng.random(2) - 0.5) * self.cell_size * (1.0 - 1e-3)
        cx, cz = self.cell_centre(node)
        return np.array([cx + off[0], self.node_y[node], cz + off[1]], dtype=np.float32)

    def island_id(self, point: np.ndarray) -> int:
        """Island (connected component) index of ``point``; -1 if not navigable."""
        node = self.locate(point)
        return int(self.node_island[node]) if node >= 0 else -1

    def floor_height(self, point: np.ndarray) -> float:
        """Height of the navigable floor at (x, z) nearest to ``point``'s y (snapped if off the grid); NaN if none."""
        node = self.locate(point, max_y_delta=np.inf)
        if node >= 0:
            return float(self.node_y[node])
        return float(self.snap_point(point)[1])

    def get_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds ``(lower [3], upper [3])`` of the navigable cells (x-z squares and floor heights); O(1)."""
        return self._bounds[0].copy(), self._bounds[1].copy()

    def get_topdown_view(self, meters_per_pixel: float, height: float) -> np.ndarray:
        """habitat-sim's top-down map: bool ``[z_res, x_res]``, pixel ``(h, w)`` samples
        ``(min_x + w * mpp, height, min_z + h * mpp)`` with ``is_navigable(point, 0.5)``."""
        lower, upper = self._bounds
        mpp = float(meters_per_pixel)
        if not mpp > 0:
            raise ValueError(f"meters_per_pixel must be > 0, got {meters_per_pixel}")
        xres = int(abs(float(upper[0]) - float(lower[0])) / mpp)
        zres = int(abs(float(upper[2]) - float(lower[2])) / mpp)
        ix = np.floor((float(lower[0]) + np.arange(xres) * mpp - self.x0) / self.cell_size).astype(np.int64)
        iz = np.floor((float(lower[2]) + np.arange(zres) * mpp - self.z0) / self.cell_size).astype(np.int64)
        out = np.zeros((zres, xres), dtype=bool)
        okx, okz = (ix >= 0) & (ix < self.nx), (iz >= 0) & (iz < self.nz)
        for r in np.flatnonzero(okz):  # one row of pixels at a time: memory ~ x_res
            cols = iz[r] * self.nx + ix[okx]
            lo = np.searchsorted(self.node_col, cols, side="left")
            hi = np.searchsorted(self.node_col, cols, side="right")
            hit = np.zeros(len(cols), dtype=bool)
            k = 0
            while True:
                idx = lo + k
                valid = idx < hi
                if not valid.any():
                    break
                yk = self.node_y[np.minimum(idx, self.num_nodes - 1)]
                hit |= valid & (np.abs(yk - float(height)) < 0.5)
                k += 1
            out[r, okx] = hit
        return out

    def distance_to_obstacle(self, point: np.ndarray) -> float:
        """Approximate distance from ``point`` to the edge of the navigable region (capped); 0 if off it."""
        node = self.locate(point)
        if node < 0:
            return 0.0
        return max(float(self.clearance[node]) - self.agent_radius, 0.0)

    # ------------------------------------------------------------------ geodesics
    def geodesic_distance(self, start: np.ndarray, targets: Sequence[np.ndarray] | np.ndarray) -> float:
        """Shortest walking distance (3-D length along the floor) from ``start`` to the nearest target.

        ``inf`` when no target is reachable or ``start`` is off the grid. Off-grid targets are
        snapped. Never below the 3-D straight-line distance to the (snapped) target. Fields are
        bounded around each target and grown until the start's value is exact (:mod:`.fields`).
        """
        tgts = np.asarray(targets, dtype=np.float64)
        if tgts.ndim == 1:
            tgts = tgts[None]
        node, p = self._locate_or_snap(start)
        if node < 0:
            return _INF
        best = _INF
        for t in tgts:
            tnode, field, tp = self._field_valid_at(t, node, p)
            if tnode < 0:  # off the grid or on another island
                continue
            value = self._interp(field, node, p, tnode, tp)
            ty = float(self.node_y[tnode])
            straight = min(_dist3(p, (tp[0], ty, tp[2])), _dist3(p, tp))
            best = min(best, max(value, straight))
        return float(best)

    def distance_field(self, target: np.ndarray) -> tuple[int, np.ndarray]:
        """``(target node, travel-time per node float32 [N])`` over the target's whole island
        (cached; node -1 if off-grid)."""
        tnode, field, _ = self._field_for(np.asarray(target, dtype=np.float64), _INF)
        return tnode, field

    @property
    def field_cache(self) -> FieldCache:
        return self._fields

    #: First bound of a field: twice the straight distance to the query plus this (metres).
    FIELD_MARGIN = 3.0

    def _field_valid_at(self, target: np.ndarray, node: int, p: np.ndarray):
        """``(target node, field, snapped target)`` whose value at ``node`` is exact: a bounded
        field is grown (doubled) until the value is within its bound."""
        t = np.asarray(target, dtype=np.float64)
        tnode, tp = self._locate_or_snap(t)
        if tnode < 0 or self.node_island[tnode] != self.node_island[node]:
            return -1, np.zeros(0, dtype=np.float32), t  # unreachable: no field needed
        reach = 2.0 * math.hypot(float(p[0]) - float(t[0]), float(p[2]) - float(t[2])) + self.FIELD_MARGIN
        while True:
            _, field, freach = self._field_for(t, reach, (tnode, tp))
            value = float(field[node])
            # exact when within the bound (a cell's interpolation reaches one cell further)
            if freach == _INF or value <= freach - 2.0 * self.cell_size:
                return tnode, field, tp
            reach = 2.0 * freach if not np.isfinite(value) else max(2.0 * freach, 1.5 * value)

    def _field_for(
        self, target: np.ndarray, reach: float, located: tuple[int, np.ndarray] | None = None
    ) -> tuple[int, np.ndarray, float]:
        """Cached ``(target node, field, reach)`` with a bound of at least ``reach`` (inf: complete);
        ``located``: the target's ``(node, snapped point)`` when the caller has it already."""
        key = FieldCache.key(target)
        hit = self._fields.get(key)
        if hit is not None and hit[2] >= reach:
            return hit
        tnode, tp = located if located is not None else self._locate_or_snap(target)
        if tnode < 0:
            result = (-1, np.zeros(0, dtype=np.float32), _INF)
        else:
            field, complete = compute_field(
                self._sheets, self.num_nodes, (self.x0, self.z0), self.cell_size, tnode, tp,
                self.cell_centre, reach,
            )
            result = (tnode, field.astype(np.float32), _INF if complete else float(reach))
        self._fields.put(key, result)
        return result

    def _interp(self, field: np.ndarray, node: int, p: np.ndarray, tnode: int, tp: np.ndarray) -> float:
        """Field value at ``p`` (inside ``node``'s cell): bilinear over the linked neighbouring cell centres."""
        cs = self.cell_size
        ncx, ncz = self.cell_centre(node)
        fx = (p[0] - ncx) / cs
        fz = (p[2] - ncz) / cs
        dx_dir = 0 if fx >= 0 else 1
        dz_dir = 2 if fz >= 0 else 3
        ax, az = min(abs(fx), 0.5), min(abs(fz), 0.5)
        nx_ = int(self.nbr[node, dx_dir])
        nz_ = int(self.nbr[node, dz_dir])
        diag = -1
        if nx_ >= 0:
            diag = int(self.nbr[nx_, dz_dir])
        if diag < 0 and nz_ >= 0:
            diag = int(self.nbr[nz_, dx_dir])
        corners = ((node, (1 - ax) * (1 - az)), (nx_, ax * (1 - az)), (nz_, (1 - ax) * az), (diag, ax * az))
        num = den = 0.0
        for c, w in corners:
            if c >= 0 and np.isfinite(field[c]) and w > 0:
                num += w * float(field[c])
                den += w
        value = num / den if den > 0 else float(field[node])
        euclid = math.hypot(float(p[0]) - float(tp[0]), float(p[2]) - float(tp[2]))
        if euclid < 4 * cs and value < 8 * cs and segment_clear(self, node, p, tnode, tp):
            value = min(value, _dist3(p, tp))
        return value

    def get_straight_shortest_path_points(self, start: np.ndarray, end: np.ndarray) -> list[np.ndarray]:
        """Polyline (float32 [3] points, start..end) along the geodesic; empty if unreachable.

        Steepest descent over linked cells on the end's field, then line-of-sight simplification.
        """
        node, p = self._locate_or_snap(start)
        if node < 0:
            return []
        tnode, field, tp = self._field_valid_at(np.asarray(end, dtype=np.float64), node, p)
        if tnode < 0 or not np.isfinite(field[node]):
            return []
        chain = [node]
        seen = {node}
        cur = node
        while cur != tnode and len(chain) <= self.num_nodes:
            best, best_v = -1, float(field[cur])
            for m in self.nbr[cur]:
                m = int(m)
                if m >= 0 and m not in seen and field[m] <= best_v:
                    best, best_v = m, float(field[m])
            if best < 0:
                break
            chain.append(best)
            seen.add(best)
            cur = best
        pts = [np.array([p[0], self.node_y[node], p[2]], dtype=np.float64)]
        nodes = [node]
        for c in chain[1:-1]:
            cx, cz = self.cell_centre(c)
            pts.append(np.array([cx, self.node_y[c], cz], dtype=np.float64))
            nodes.append(c)
        pts.append(np.array([tp[0], self.node_y[tnode], tp[2]], dtype=np.float64))
        nodes.append(tnode)
        out = [pts[0]]
        i = 0
        while i < len(pts) - 1:
            j = i + 1
            while j + 1 < len(pts) and segment_clear(self, nodes[i], pts[i], nodes[j + 1], pts[j + 1]):
                j += 1
            out.append(pts[j])
            i = j
        return [q.astype(np.float32) for q in out]


def _dist3(a, b) -> float:
    """3-D distance in plain scalar arithmetic (no BLAS: the same bits on every CPU)."""
    dx, dy, dz = float(a[0]) - float(b[0]), float(a[1]) - float(b[1]), float(a[2]) - float(b[2])
    return math.sqrt(dx * dx + dy * dy + dz * dz)


# ---------------------------------------------------------------------- segment walking
def walk_segment(grid: NavGrid, node: int, a: np.ndarray, b: np.ndarray) -> tuple[int, float, bool]:
    """Walk from ``a`` (inside ``node``'s cell) toward ``b`` in x-z through linked cells.

    Returns ``(last node, t, reached)``: ``t`` in [0, 1] is where the segment leaves the last
    reachable cell (1 when ``b`` is reached). A corner crossing takes either side that is linked.
    """
    cs = grid.cell_size
    ax, az = grid.clamp_to_cell(node, float(a[0]), float(a[2]))
    dx, dz = float(b[0]) - ax, float(b[2]) - az
    ix, iz = grid.node_ixz(node)
    sx = 1 if dx > 0 else (-1 if dx < 0 else 0)
    sz = 1 if dz > 0 else (-1 if dz < 0 else 0)
    tmx = ((grid.x0 + (ix + (sx > 0)) * cs) - ax) / dx if sx else np.inf
    tmz = ((grid.z0 + (iz + (sz > 0)) * cs) - az) / dz if sz else np.inf
    tdx = cs / abs(dx) if sx else np.inf
    tdz = cs / abs(dz) if sz else np.inf
    dir_x = 0 if sx > 0 else 1
    dir_z = 2 if sz > 0 else 3
    nbr = grid.nbr
    cur = node
    while True:
        t = min(tmx, tmz)
        if t >= 1.0 - 1e-12:
            return cur, 1.0, True
        if abs(tmx - tmz) <= 1e-12:  # exact corner: either linked side will do
            nxt = -1
            m = nbr[cur, dir_x]
            if m >= 0:
                nxt = nbr[m, dir_z]
            if nxt < 0:
                m = nbr[cur, dir_z]
                if m >= 0:
                    nxt = nbr[m, dir_x]
            if nxt < 0:
                return cur, max(t, 0.0), False
            tmx += tdx
            tmz += tdz
        elif tmx < tmz:
            nxt = nbr[cur, dir_x]
            if nxt < 0:
                return cur, max(t, 0.0), False
            tmx += tdx
        else:
            nxt = nbr[cur, dir_z]
            if nxt < 0:
                return cur, max(t, 0.0), False
            tmz += tdz
        cur = int(nxt)


def segment_clear(grid: NavGrid, node_a: int, a: np.ndarray, node_b: int, b: np.ndarray) -> bool:
    """True if the straight segment ``a -> b`` stays in navigable cells and ends in ``node_b``'s cell."""
    last, _, reached = walk_segment(grid, node_a, a, b)
    if not reached:
        return False
    if last == node_b:
        return True
    # ``b`` on the shared edge of two cells: accept the cell the walk ended in if it touches ``b``
    qx, qz = grid.clamp_to_cell(last, float(b[0]), float(b[2]))
    return (
        abs(qx - float(b[0])) + abs(qz - float(b[2])) < 1e-6
        and abs(float(grid.node_y[last]) - float(grid.node_y[node_b])) <= grid.max_climb
    )
