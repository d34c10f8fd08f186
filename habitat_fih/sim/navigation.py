"""Navigability grid, geodesic distances and shortest paths for FIHSim-v0 (habitat-sim's PathFinder).

:class:`NavGrid` is a 2.5-D navigation map built straight from a triangle mesh (Y-up, metres):

1. **Surfaces.** One downward ray per grid column (cell centres, ``cell_size`` apart) collects every
   surface layer of the column (the ray is re-cast from just below each hit). A hit is a *walkable
   surface* if its face normal points up within ``max_slope`` and the space above it is air of at
   least ``agent_height``: the surface hit just before it (above it) must face down (a ceiling,
   whose distance is the headroom) -- an up-facing or vertical face directly above means the hit
   lies inside a solid (a wall sitting on the floor, interpenetrating boxes) and is not walkable.
2. **Graph.** Each walkable surface is a node; nodes in 4-neighbouring columns are linked when their
   heights differ by at most ``max_climb``. Walkable surfaces of one column are at least
   ``agent_height`` apart, so a node has at most one link per direction: the nodes form a
   multi-layer grid (two storeys overlapping in x-z are different nodes, joined only by stairs).
3. **Clearance.** A missing link is an obstacle (wall, drop, unwalkable cell); its wall surface is
   estimated half a cell beyond the node. The nearest obstacle of each node is found by propagating
   nearest-site vectors along the links (an in-layer vector distance transform), and nodes closer
   than ``agent_radius`` are removed. The navigable region is the union of the remaining cells'
   squares (``cell_size`` wide) at their node heights.
4. **Sheets.** The navigable graph is cut into *sheets*: sets with at most one node per column in
   which grid-adjacent members are always linked, so each sheet is an ordinary 2-D grid with a mask.
   Nodes are binned into height slabs thinner than ``agent_height`` (cuts at the least-populated
   heights, i.e. between floors); the link-connected parts of a slab are the sheets (a part with an
   internal cliff is re-grown node by node). A single-storey island is one sheet. Sheets with links
   leaving them are extended by a band of :data:`BAND_CELLS` link hops into their neighbours, so
   neighbouring sheets overlap (on the stairs).
5. **Geodesics.** A target's travel-time field is computed with scikit-fmm (second order) on the
   target's sheet from a small circle around the target, with speed ``1/sqrt(1 + |grad y|^2)`` of
   the smoothed floor height so slopes and stairs count their 3-D length. It is continued into the
   overlapping sheets by *level-set restart*: in the overlap band the known times ``D`` define the
   front ``{D = T}`` (T a little below the smallest known time on the band's inner edge) and
   ``T + travel_time(phi = D - T)`` is the arrival time beyond it (Huygens' principle), taking the
   minimum with known values; sheets are processed in order of arrival until nothing improves, so
   paths that go up one staircase and down another are found too. Each target's field is cached
   (one float per node, LRU); a look-up is O(1) plus bilinear interpolation between cell centres.
   Unreachable (another island, off the grid) is ``inf``.

Positions are ``np.ndarray [3]`` world coordinates of the point on the floor at the agent's feet.
Motion (``try_step``) lives in :mod:`habitat_fih.sim.motion` and is exposed as
:meth:`NavGrid.try_step`.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp
import skfmm
from scipy.sparse.csgraph import connected_components

__all__ = ["NavGrid", "BAND_CELLS"]

#: Link hops by which each sheet of a multi-sheet island is extended into its neighbours.
BAND_CELLS = 16
#: Directions of the link array ``nbr[:, d]``: +x, -x, +z, -z (cell offsets ``(dix, diz)``).
_DIRS = ((1, 0), (-1, 0), (0, 1), (0, -1))
#: habitat-sim's snap search half-extents (x, y, z) in metres.
_SNAP_EXTENTS = np.array([2.0, 4.0, 2.0])
_MAX_RAY_LAYERS = 64
_INF = np.inf


@dataclass
class _Sheet:
    """One 2-D sheet: ``nodes`` (its extended node ids) at ``flat`` in an ``h x w`` box at ``(iz0, ix0)``."""

    island: int
    iz0: int
    ix0: int
    h: int
    w: int
    nodes: np.ndarray  # int64 [M] node ids (primary nodes and band nodes)
    flat: np.ndarray  # int64 [M] flat index into the h x w box
    mask: np.ndarray  # bool [h, w], True where no node of this sheet
    speed: np.ndarray  # float64 [h, w], slope-corrected speed (1 on flat floor)


def _face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


def _link(
    ix: np.ndarray, iz: np.ndarray, y: np.ndarray, nx: int, nz: int, max_climb: float
) -> np.ndarray:
    """Links ``nbr [N, 4]`` (-1 = none) between 4-neighbouring columns within ``max_climb``."""
    n = len(y)
    col = iz * nx + ix
    order = np.lexsort((y, col))
    sorted_col = col[order]
    start = np.searchsorted(sorted_col, sorted_col, side="left")
    layer = np.empty(n, dtype=np.int64)
    layer[order] = np.arange(n) - start
    k = int(layer.max()) + 1 if n else 1
    ids = np.full((k, nz, nx), -1, dtype=np.int64)
    ids[layer, iz, ix] = np.arange(n)
    ys = np.full((k, nz, nx), np.nan)
    ys[layer, iz, ix] = y
    nbr = np.full((n, 4), -1, dtype=np.int64)
    for d, (dix, diz) in enumerate(_DIRS):
        jx, jz = ix + dix, iz + diz
        inside = (jx >= 0) & (jx < nx) & (jz >= 0) & (jz < nz)
        best = np.full(n, np.inf)
        src = np.nonzero(inside)[0]
        for kk in range(k):
            cand = ids[kk, jz[src], jx[src]]
            dy = np.abs(ys[kk, jz[src], jx[src]] - y[src])
            ok = (cand >= 0) & (dy <= max_climb + 1e-6) & (dy < best[src])
            nbr[src[ok], d] = cand[ok]
            best[src[ok]] = dy[ok]
    return nbr


class NavGrid:
    """2.5-D navigability grid with cached scikit-fmm geodesics (habitat-sim ``PathFinder`` API).

    Build with :meth:`from_mesh`. Node arrays: ``node_ix``, ``node_iz`` (cell indices), ``node_y``
    (floor height), ``nbr [N, 4]`` links (+x, -x, +z, -z), ``clearance`` (metres from the node centre
    to the nearest obstacle surface, capped), ``node_island``.
    """

    def __init__(
        self,
        *,
        origin: tuple[float, float],
        cell_size: float,
        shape: tuple[int, int],
        node_ix: np.ndarray,
        node_iz: np.ndarray,
        node_y: np.ndarray,
        clearance: np.ndarray,
        nbr: np.ndarray | None = None,
        agent_radius: float,
        agent_height: float,
        max_climb: float,
        name: str = "<mesh>",
        field_cache_size: int = 64,
    ) -> None:
        self.name = name
        self.x0, self.z0 = float(origin[0]), float(origin[1])
        self.cell_size = float(cell_size)
        self.nz, self.nx = int(shape[0]), int(shape[1])
        self.agent_radius = float(agent_radius)
        self.agent_height = float(agent_height)
        self.max_climb = float(max_climb)
        col = node_iz * self.nx + node_ix
        order = np.lexsort((node_y, col))
        if nbr is not None:  # links given for nodes already sorted by (column, height)
            if not np.array_equal(order, np.arange(len(order))):
                raise ValueError("nbr given for nodes not sorted by (column, height)")
        self.node_ix = node_ix[order].astype(np.int64)
        self.node_iz = node_iz[order].astype(np.int64)
        self.node_y = node_y[order].astype(np.float64)
        self.clearance = clearance[order].astype(np.float64)
        self.num_nodes = len(self.node_y)
        self.node_col = self.node_iz * self.nx + self.node_ix
        self.col_start = np.searchsorted(self.node_col, np.arange(self.nx * self.nz + 1))
        self.node_cx = self.x0 + (self.node_ix + 0.5) * self.cell_size
        self.node_cz = self.z0 + (self.node_iz + 0.5) * self.cell_size
        if nbr is None:
            nbr = _link(self.node_ix, self.node_iz, self.node_y, self.nx, self.nz, self.max_climb)
        self.nbr = np.asarray(nbr, dtype=np.int64)
        self._layers = self._dense_layers()
        # islands
        src = np.repeat(np.arange(self.num_nodes), 4)
        dst = self.nbr.ravel()
        ok = dst >= 0
        adj = sp.coo_matrix(
            (np.ones(int(ok.sum()), dtype=np.int8), (src[ok], dst[ok])), shape=(self.num_nodes,) * 2
        )
        n_islands, labels = connected_components(adj, directed=False)
        self.node_island = labels.astype(np.int64)
        self.island_sizes = np.bincount(labels, minlength=n_islands)
        self._build_sheets()
        self._fields: OrderedDict[tuple[float, float, float], tuple[int, np.ndarray]] = (
            OrderedDict()
        )
        self._field_cache_size = int(field_cache_size)
        self._kdtree = None

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
        name: str = "<mesh>",
        field_cache_size: int = 64,
    ) -> NavGrid:
        """Build the grid from ``vertices float [V, 3]`` and ``faces int [F, 3]`` (Y-up, metres).

        ``cell_height`` (recast's vertical voxel size) is accepted for config compatibility; heights
        here are exact ray hits, so it is unused. Raises ValueError when nothing is navigable.
        """
        from embreex import rtcore_scene as rtcs
        from embreex.mesh_construction import TriangleMesh

        del cell_height
        vertices = np.asarray(vertices, dtype=np.float64)
        faces = np.asarray(faces, dtype=np.int64)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(
                f"expected vertices [V, 3] and faces [F, 3]; got {vertices.shape} and {faces.shape} ({name})"
            )
        if len(faces) == 0:
            raise ValueError(f"scene {name!r} has no faces; nothing is navigable")
        lo, hi = vertices.min(axis=0), vertices.max(axis=0)
        cs = float(cell_size)
        nx = max(1, int(np.ceil((hi[0] - lo[0]) / cs)))
        nz = max(1, int(np.ceil((hi[2] - lo[2]) / cs)))
        normals = _face_normals(vertices, faces)

        scene = rtcs.EmbreeScene()
        TriangleMesh(scene, vertices[faces].astype(np.float32))
        iz_all, ix_all = np.divmod(np.arange(nx * nz), nx)
        cx = lo[0] + (ix_all + 0.5) * cs
        cz = lo[2] + (iz_all + 0.5) * cs
        ray_y = np.full(nx * nz, hi[1] + 1.0)
        prev_y = np.full(nx * nz, np.inf)  # surface hit just above (inf: open sky)
        prev_ny = np.full(nx * nz, -1.0)  # its normal's y (treat the sky as a ceiling)
        active = np.arange(nx * nz)
        cos_slope = float(np.cos(np.deg2rad(max_slope)))
        walk_col: list[np.ndarray] = []
        walk_y: list[np.ndarray] = []
        for _ in range(_MAX_RAY_LAYERS):
            if len(active) == 0:
                break
            origins = np.stack([cx[active], ray_y[active], cz[active]], axis=1).astype(np.float32)
            dirs = np.tile(np.array([[0.0, -1.0, 0.0]], dtype=np.float32), (len(active), 1))
            res = scene.run(origins, dirs, output=1)
            prim = res["primID"]
            hit = prim >= 0
            active = active[hit]
            prim = prim[hit]
            hy = ray_y[active] - res["tfar"][hit].astype(np.float64)
            ny = normals[prim, 1]
            air_above = np.isinf(prev_y[active]) | (
                (prev_ny[active] < -1e-3) & (prev_y[active] - hy >= agent_height - 1e-6)
            )
            walkable = (ny >= cos_slope - 1e-6) & air_above
            walk_col.append(active[walkable])
            walk_y.append(hy[walkable])
            prev_y[active] = hy
            prev_ny[active] = ny
            ray_y[active] = hy - 1e-4
        cols = np.concatenate(walk_col) if walk_col else np.zeros(0, np.int64)
        ys = np.concatenate(walk_y) if walk_y else np.zeros(0)
        if len(cols) == 0:
            raise ValueError(
                f"scene {name!r} has no walkable surface (bounds {lo.tolist()} .. {hi.tolist()}, "
                f"max_slope {max_slope}, agent_height {agent_height})"
            )
        order = np.lexsort((ys, cols))
        cols, ys = cols[order], ys[order]
        iz, ix = np.divmod(cols, nx)
        nbr, clearance = cls._clearance(ix, iz, ys, nx, nz, cs, max_climb, agent_radius)
        keep = clearance >= agent_radius - 1e-6
        remap = np.where(keep, np.cumsum(keep) - 1, -1)
        nbr = np.where(nbr >= 0, remap[np.maximum(nbr, 0)], -1)[keep]
        if not keep.any():
            raise ValueError(
                f"scene {name!r} has no navigable area after eroding by agent_radius {agent_radius} "
                f"(bounds {lo.tolist()} .. {hi.tolist()}, {len(cols)} walkable cells)"
            )
        return cls(
            origin=(float(lo[0]), float(lo[2])),
            cell_size=cs,
            shape=(nz, nx),
            node_ix=ix[keep],
            node_iz=iz[keep],
            node_y=ys[keep],
            clearance=clearance[keep],
            nbr=nbr,
            agent_radius=agent_radius,
            agent_height=agent_height,
            max_climb=max_climb,
            name=name,
            field_cache_size=field_cache_size,
        )

    @staticmethod
    def _clearance(
        ix: np.ndarray,
        iz: np.ndarray,
        y: np.ndarray,
        nx: int,
        nz: int,
        cs: float,
        max_climb: float,
        radius: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(links [N, 4], distance (m) from each walkable cell centre to the nearest obstacle surface, capped)``.

        Obstacle cells are missing links; the surface is taken half a cell in front of the blocked
        cell's centre. Nearest blocked centres propagate along links (vector distance transform).
        """
        nbr = _link(ix, iz, y, nx, nz, max_climb)
        centre = np.stack([ix + 0.5, iz + 0.5], axis=1) * cs
        site = np.full_like(centre, np.inf)
        best = np.full(len(y), np.inf)
        for d, (dix, diz) in enumerate(_DIRS):
            miss = (nbr[:, d] < 0) & ~np.isfinite(best)
            site[miss] = centre[miss] + np.array([dix, diz]) * cs
            best[miss] = cs
        iterations = int(np.ceil((radius + 0.3) / cs)) + 2
        updated = np.flatnonzero(np.isfinite(best))
        for _ in range(iterations):  # push nearest sites from the nodes updated last round
            if len(updated) == 0:
                break
            dst = nbr[updated].ravel()
            src = np.repeat(updated, 4)
            ok = dst >= 0
            src, dst = src[ok], dst[ok]
            cand = site[src]
            dist = np.hypot(*(cand - centre[dst]).T)
            better = dist < best[dst] - 1e-12
            src, dst, cand, dist = src[better], dst[better], cand[better], dist[better]
            order = np.argsort(-dist, kind="stable")  # the smallest distance is written last
            site[dst[order]] = cand[order]
            best[dst[order]] = dist[order]
            updated = np.unique(dst)
        best = np.minimum(best, iterations * cs)
        return nbr, np.minimum(best - 0.5 * cs, iterations * cs)

    def _dense_layers(self) -> np.ndarray:
        """Navigable heights ``[K, nz, nx]`` (NaN where none), layer 0 lowest."""
        layer = np.arange(self.num_nodes) - self.col_start[self.node_col]
        k = int(layer.max()) + 1
        dense = np.full((k, self.nz, self.nx), np.nan)
        dense[layer, self.node_iz, self.node_ix] = self.node_y
        return dense

    def _build_sheets(self) -> None:
        """Cut the graph into sheets (module docstring, step 4) and extend them by overlap bands.

        Nodes are binned into height slabs thinner than ``agent_height`` (boundaries placed at the
        least-populated heights, i.e. between floors), so a slab holds at most one node per column;
        the link-connected components of a slab are the sheets. A component with an internal cliff
        (grid-adjacent members without a link) is re-grown node by node (:meth:`_grow`).
        """
        n = self.num_nodes
        ncols = self.nx * self.nz
        self.node_sheet = np.full(n, -1, dtype=np.int64)
        self.sheets: list[_Sheet] = []
        self.island_sheets: list[list[int]] = [[] for _ in range(len(self.island_sizes))]
        self._speed = self._slope_speed()
        slab = np.searchsorted(self._slab_boundaries(), self.node_y, side="right")
        src = np.repeat(np.arange(n), 4)
        dst = self.nbr.ravel()
        ok = (dst >= 0) & (slab[src] == slab[np.maximum(dst, 0)])
        adj = sp.coo_matrix((np.ones(int(ok.sum()), np.int8), (src[ok], dst[ok])), shape=(n, n))
        n_comp, comp = connected_components(adj, directed=False)
        # cliff check: grid-adjacent members of one component without a link
        key = comp * ncols + self.node_col
        order = np.argsort(key, kind="stable")
        sk = key[order]
        bad = np.zeros(n_comp, dtype=bool)
        for d, (dix, diz) in enumerate(_DIRS):
            jx, jz = self.node_ix + dix, self.node_iz + diz
            inside = (jx >= 0) & (jx < self.nx) & (jz >= 0) & (jz < self.nz)
            qk = comp * ncols + jz * self.nx + jx
            pos = np.clip(np.searchsorted(sk, qk), 0, n - 1)
            there = inside & (sk[pos] == qk)
            bad[comp[there & (self.nbr[:, d] != order[pos])]] = True
        comp_order = np.argsort(comp, kind="stable")
        bounds = np.searchsorted(comp[comp_order], np.arange(n_comp + 1))
        primaries: list[np.ndarray] = []
        for c in range(n_comp):
            members = comp_order[bounds[c] : bounds[c + 1]]
            primaries.extend(self._grow(members) if bad[c] else [members])
        for sid, members in enumerate(primaries):
            self.node_sheet[members] = sid
        for sid, members in enumerate(primaries):
            leaving = np.any(
                (self.nbr[members] >= 0)
                & (self.node_sheet[np.maximum(self.nbr[members], 0)] != sid),
                axis=1,
            )
            ext = members
            if leaving.any():
                ext = np.concatenate([members, self._band(members, members[leaving])])
            self._add_sheet(int(self.node_island[members[0]]), ext, len(members))

    def _slab_boundaries(self) -> np.ndarray:
        """Heights cutting the nodes into slabs thinner than ``agent_height``, at sparse heights."""
        y = np.sort(self.node_y)
        height = self.agent_height - 1e-3
        out = []
        b = float(y[0]) - 1e-3
        while y[-1] >= b + height:
            cands = np.arange(b + 0.5 * height, b + height, 0.05)
            counts = np.searchsorted(y, cands + 0.025) - np.searchsorted(y, cands - 0.025)
            best = int(np.flatnonzero(counts == counts.min())[-1])
            b = float(cands[best])
            out.append(b)
        return np.asarray(out)

    def _slope_speed(self) -> np.ndarray:
        """Per-node speed ``1/sqrt(1 + |grad y|^2)`` of the floor height smoothed along links (~0.25 m)."""
        n = self.num_nodes
        valid = self.nbr >= 0
        dy = np.where(
            valid, np.abs(self.node_y[np.maximum(self.nbr, 0)] - self.node_y[:, None]), 0.0
        )
        active = np.any(dy > 1e-4, axis=1)
        if not active.any():
            return np.ones(n)
        sigma_cells = 0.25 / self.cell_size
        iterations = int(np.ceil(sigma_cells**2 / 0.4))
        for _ in range(
            int(np.ceil(3 * sigma_cells))
        ):  # dilate the sloped set by the smoothing reach
            grown = active.copy()
            for d in range(4):
                m = self.nbr[:, d]
                grown[m[(m >= 0) & active]] = True
            active = grown
        idx = np.flatnonzero(active)
        nb = self.nbr[idx]
        nbv = nb >= 0
        nbi = np.maximum(nb, 0)
        count = 1.0 + nbv.sum(axis=1)
        ys = self.node_y.copy()
        for _ in range(iterations):
            ys[idx] = (ys[idx] + np.where(nbv, ys[nbi], 0.0).sum(axis=1)) / count
        grads = []
        for a, b in ((0, 1), (2, 3)):
            pa, pb = nb[:, a], nb[:, b]
            ya = np.where(pa >= 0, ys[np.maximum(pa, 0)], ys[idx])
            yb = np.where(pb >= 0, ys[np.maximum(pb, 0)], ys[idx])
            span = ((pa >= 0).astype(float) + (pb >= 0)) * self.cell_size
            grads.append(np.divide(ya - yb, span, out=np.zeros(len(idx)), where=span > 0))
        speed = np.ones(n)
        speed[idx] = 1.0 / np.sqrt(1.0 + grads[0] ** 2 + grads[1] ** 2)
        return speed

    def _grow(self, members: np.ndarray) -> list[np.ndarray]:
        """Split a component with cliffs into cliff-free sheets, grown by height difference from seeds."""
        y = self.node_y
        unassigned = set(members.tolist())
        out = []
        while unassigned:
            seed = min(unassigned, key=lambda i: (y[i], i))
            cols: dict[int, int] = {}
            heap = [(0.0, seed)]
            while heap:
                _, node = heapq.heappop(heap)
                if (
                    node not in unassigned
                    or self.node_col[node] in cols
                    or not self._fits(node, cols.get)
                ):
                    continue
                cols[int(self.node_col[node])] = node
                unassigned.discard(node)
                for m in self.nbr[node]:
                    if m >= 0 and int(m) in unassigned:
                        heapq.heappush(heap, (abs(y[m] - y[seed]), int(m)))
            out.append(np.fromiter(cols.values(), dtype=np.int64))
        return out

    def _band(self, members: np.ndarray, frontier: np.ndarray) -> np.ndarray:
        """Nodes within :data:`BAND_CELLS` link hops outside a sheet that keep it cliff-free."""
        cols: dict[int, int] = {}
        colmap = np.full(self.nx * self.nz, -1, dtype=np.int64)
        colmap[self.node_col[members]] = members

        def lookup(c: int) -> int | None:
            v = cols.get(c)
            if v is not None:
                return v
            v = int(colmap[c])
            return v if v >= 0 else None

        band: list[int] = []
        front = [int(i) for i in frontier]
        for _ in range(BAND_CELLS):
            nxt = []
            for node in front:
                for m in self.nbr[node]:
                    m = int(m)
                    if (
                        m < 0
                        or lookup(int(self.node_col[m])) is not None
                        or not self._fits(m, lookup)
                    ):
                        continue
                    cols[int(self.node_col[m])] = m
                    nxt.append(m)
            band.extend(nxt)
            front = nxt
            if not front:
                break
        return np.asarray(band, dtype=np.int64)

    def _fits(self, node: int, lookup) -> bool:
        """True if ``node`` joins a sheet (``lookup(column) -> node | None``) without an unlinked grid neighbour."""
        ix, iz = self.node_ix[node], self.node_iz[node]
        for d, (dix, diz) in enumerate(_DIRS):
            jx, jz = ix + dix, iz + diz
            if 0 <= jx < self.nx and 0 <= jz < self.nz:
                other = lookup(int(jz * self.nx + jx))
                if other is not None and self.nbr[node, d] != other:
                    return False
        return True

    def _add_sheet(self, isl: int, ext: np.ndarray, n_primary: int) -> None:
        ext = np.asarray(ext, dtype=np.int64)
        sid = len(self.sheets)
        ix, iz = self.node_ix[ext], self.node_iz[ext]
        ix0, iz0 = int(ix.min()), int(iz.min())
        h, w = int(iz.max()) - iz0 + 1, int(ix.max()) - ix0 + 1
        flat = (iz - iz0) * w + (ix - ix0)
        mask = np.ones(h * w, dtype=bool)
        mask[flat] = False
        speed = np.ones(h * w)
        speed[flat] = self._speed[ext]
        self.sheets.append(
            _Sheet(isl, iz0, ix0, h, w, ext, flat, mask.reshape(h, w), speed.reshape(h, w))
        )
        self.island_sheets[isl].append(sid)

    # ------------------------------------------------------------------ point <-> node
    def _cell_of(self, x: float, z: float) -> tuple[int, int]:
        return int(np.floor((x - self.x0) / self.cell_size)), int(
            np.floor((z - self.z0) / self.cell_size)
        )

    def _column_nodes(self, ix: int, iz: int) -> range:
        if not (0 <= ix < self.nx and 0 <= iz < self.nz):
            return range(0)
        c = iz * self.nx + ix
        return range(int(self.col_start[c]), int(self.col_start[c + 1]))

    def locate(self, point: np.ndarray, max_y_delta: float = 0.5, tol: float = 1e-3) -> int:
        """Node whose cell contains ``point`` (x-z) with the nearest height within ``max_y_delta``; -1 if none.

        Points within ``tol`` metres of a navigable cell (float round-off at region edges) count too.
        """
        x, y, z = float(point[0]), float(point[1]), float(point[2])
        ix, iz = self._cell_of(x, z)
        best, best_dy = -1, max_y_delta
        for i in self._column_nodes(ix, iz):
            dy = abs(self.node_y[i] - y)
            if dy < best_dy:
                best, best_dy = i, dy
        if best >= 0 or tol <= 0:
            return best
        h = 0.5 * self.cell_size
        for jz in (iz - 1, iz, iz + 1):
            for jx in (ix - 1, ix, ix + 1):
                for i in self._column_nodes(jx, jz):
                    dx = max(abs(x - self.node_cx[i]) - h, 0.0)
                    dz = max(abs(z - self.node_cz[i]) - h, 0.0)
                    dy = abs(self.node_y[i] - y)
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

    def clamp_to_cell(self, node: int, x: float, z: float, eps: float = 0.0) -> tuple[float, float]:
        """Closest point of ``node``'s cell square (shrunk by ``eps``) to ``(x, z)``."""
        h = 0.5 * self.cell_size - eps
        cx, cz = self.node_cx[node], self.node_cz[node]
        return min(max(x, cx - h), cx + h), min(max(z, cz - h), cz + h)

    # ------------------------------------------------------------------ habitat PathFinder API
    def is_navigable(self, point: np.ndarray, max_y_delta: float = 0.5) -> bool:
        """habitat-sim ``is_navigable``: a navigable cell at (x, z) with a floor within ``max_y_delta``."""
        return self.locate(point, max_y_delta=max_y_delta, tol=0.0) >= 0

    def snap_point(self, point: np.ndarray) -> np.ndarray:
        """Nearest navigable point (float32 [3]); NaNs if none within habitat's (2, 4, 2) m search box."""
        p = np.asarray(point, dtype=np.float64)
        if self._kdtree is None:
            from scipy.spatial import cKDTree

            self._kdtree = cKDTree(np.stack([self.node_cx, self.node_y, self.node_cz], axis=1))
        k = min(16, self.num_nodes)
        _, idx = self._kdtree.query(p, k=k)
        best, best_d = None, np.inf
        for i in np.atleast_1d(idx):
            if i >= self.num_nodes:
                continue
            qx, qz = self.clamp_to_cell(int(i), p[0], p[2], eps=1e-5)
            q = np.array([qx, self.node_y[i], qz])
            if np.any(np.abs(q - p) > _SNAP_EXTENTS):
                continue
            d = float(np.sum((q - p) ** 2))
            if d < best_d:
                best, best_d = q, d
        if best is None:
            return np.full(3, np.nan, dtype=np.float32)
        return best.astype(np.float32)

    def sample_navigable_point(
        self, rng: np.random.Generator, *, island: int | None = None, largest_island: bool = False
    ) -> np.ndarray:
        """Uniform random navigable point (float32 [3]) over all cells, one island, or the largest one."""
        if largest_island:
            island = int(np.argmax(self.island_sizes))
        if island is None:
            node = int(rng.integers(self.num_nodes))
        else:
            members = np.nonzero(self.node_island == island)[0]
            if len(members) == 0:
                raise ValueError(f"island {island} does not exist in scene {self.name!r}")
            node = int(members[rng.integers(len(members))])
        off = (rng.random(2) - 0.5) * self.cell_size * (1.0 - 1e-3)
        return np.array(
            [self.node_cx[node] + off[0], self.node_y[node], self.node_cz[node] + off[1]],
            dtype=np.float32,
        )

    def island_id(self, point: np.ndarray) -> int:
        """Island (connected component) index of ``point``; -1 if not navigable."""
        node = self.locate(point)
        return int(self.node_island[node]) if node >= 0 else -1

    def floor_height(self, point: np.ndarray) -> float:
        """Height of the navigable floor at (x, z) nearest to ``point``'s y (snapped if off the grid); NaN if none."""
        node = self.locate(point, max_y_delta=np.inf)
        if node >= 0:
            return float(self.node_y[node])
        snapped = self.snap_point(point)
        return float(snapped[1])

    def get_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds ``(lower [3], upper [3])`` of the navigable cells (x-z squares and floor heights)."""
        cs = self.cell_size
        lower = np.array(
            [
                self.x0 + self.node_ix.min() * cs,
                self.node_y.min(),
                self.z0 + self.node_iz.min() * cs,
            ],
            dtype=np.float32,
        )
        upper = np.array(
            [
                self.x0 + (self.node_ix.max() + 1) * cs,
                self.node_y.max(),
                self.z0 + (self.node_iz.max() + 1) * cs,
            ],
            dtype=np.float32,
        )
        return lower, upper

    def get_topdown_view(self, meters_per_pixel: float, height: float) -> np.ndarray:
        """habitat-sim's top-down map: bool ``[z_res, x_res]``, pixel ``(h, w)`` samples
        ``(min_x + w * mpp, height, min_z + h * mpp)`` with ``is_navigable(point, 0.5)``."""
        lower, upper = self.get_bounds()
        mpp = float(meters_per_pixel)
        xres = int(abs(float(upper[0]) - float(lower[0])) / mpp)
        zres = int(abs(float(upper[2]) - float(lower[2])) / mpp)
        xs = float(lower[0]) + np.arange(xres) * mpp
        zs = float(lower[2]) + np.arange(zres) * mpp
        ix = np.floor((xs - self.x0) / self.cell_size).astype(np.int64)
        iz = np.floor((zs - self.z0) / self.cell_size).astype(np.int64)
        okx = (ix >= 0) & (ix < self.nx)
        okz = (iz >= 0) & (iz < self.nz)
        out = np.zeros((zres, xres), dtype=bool)
        sub = self._layers[:, iz[okz]][:, :, ix[okx]]  # [K, zr, xr]
        with np.errstate(invalid="ignore"):
            hit = np.any(np.abs(sub - float(height)) < 0.5, axis=0)
        out[np.ix_(okz, okx)] = hit
        return out

    # ------------------------------------------------------------------ geodesics
    def geodesic_distance(
        self, start: np.ndarray, targets: Sequence[np.ndarray] | np.ndarray
    ) -> float:
        """Shortest walking distance (3-D length along the floor) from ``start`` to the nearest target.

        ``inf`` when no target is reachable or ``start`` is off the grid. Off-grid targets are snapped.
        """
        tgts = np.asarray(targets, dtype=np.float64)
        if tgts.ndim == 1:
            tgts = tgts[None]
        node, p = self._locate_or_snap(start)
        if node < 0:
            return _INF
        best = _INF
        for t in tgts:
            tnode, field = self._field_for(t)
            if tnode < 0 or self.node_island[tnode] != self.node_island[node]:
                continue
            best = min(best, self._interp(field, node, p, tnode, t))
        return float(best)

    def distance_field(self, target: np.ndarray) -> tuple[int, np.ndarray]:
        """``(target node, travel-time per node float32 [N])`` for ``target`` (cached; node -1 if off-grid)."""
        return self._field_for(np.asarray(target, dtype=np.float64))

    def _field_for(self, target: np.ndarray) -> tuple[int, np.ndarray]:
        key = (round(float(target[0]), 4), round(float(target[1]), 4), round(float(target[2]), 4))
        hit = self._fields.get(key)
        if hit is not None:
            self._fields.move_to_end(key)
            return hit
        tnode, tp = self._locate_or_snap(target)
        if tnode < 0:
            result = (-1, np.zeros(0, dtype=np.float32))
        else:
            result = (tnode, self._compute_field(tnode, tp).astype(np.float32))
        self._fields[key] = result
        while len(self._fields) > self._field_cache_size:
            self._fields.popitem(last=False)
        return result

    def _sheet_centres(self, s: _Sheet) -> tuple[np.ndarray, np.ndarray]:
        cx = self.x0 + (s.ix0 + np.arange(s.w) + 0.5) * self.cell_size
        cz = self.z0 + (s.iz0 + np.arange(s.h) + 0.5) * self.cell_size
        return cx[None, :], cz[:, None]

    def _travel(self, s: _Sheet, phi: np.ndarray) -> np.ndarray:
        """Travel time from the zero contour of ``phi [h, w]`` over sheet ``s``; inf where unreached."""
        try:
            t = skfmm.travel_time(
                np.ma.MaskedArray(phi, s.mask), s.speed, dx=self.cell_size, order=2
            )
        except ValueError:
            t = skfmm.travel_time(
                np.ma.MaskedArray(phi, s.mask), s.speed, dx=self.cell_size, order=1
            )
        return np.ma.filled(np.ma.masked_invalid(t), _INF).ravel()

    def _compute_field(self, tnode: int, tp: np.ndarray) -> np.ndarray:
        """Travel-time field of the whole island of ``tnode`` (inf elsewhere); see the module docstring."""
        cs = self.cell_size
        D = np.full(self.num_nodes, _INF)
        s0 = int(self.node_sheet[tnode])
        sheet = self.sheets[s0]
        cx, cz = self._sheet_centres(sheet)
        r0 = cs
        dist = np.hypot(cx - tp[0], cz - tp[2])
        phi = dist - r0
        t = self._travel(sheet, phi)
        speed = sheet.speed.ravel()
        vals = np.where(phi.ravel() < 0, dist.ravel() / speed, r0 + t)
        D[sheet.nodes] = vals[sheet.flat]
        D[tnode] = min(
            D[tnode], float(np.hypot(self.node_cx[tnode] - tp[0], self.node_cz[tnode] - tp[2]))
        )
        sheet_ids = self.island_sheets[self.sheets[s0].island]
        if len(sheet_ids) == 1:
            return D
        last = {sid: np.full(len(self.sheets[sid].nodes), _INF) for sid in sheet_ids}
        last[s0] = D[sheet.nodes].copy()
        tol = 1e-4
        for _ in range(8 * len(sheet_ids)):
            best_sid, best_val = -1, _INF
            for sid in sheet_ids:
                cur = D[self.sheets[sid].nodes]
                imp = cur < last[sid] - tol
                if imp.any():
                    v = float(cur[imp].min())
                    if v < best_val:
                        best_sid, best_val = sid, v
            if best_sid < 0:
                break
            self._continue_into(best_sid, D, last[best_sid])
            last[best_sid] = D[self.sheets[best_sid].nodes].copy()
        return D

    def _continue_into(self, sid: int, D: np.ndarray, last: np.ndarray) -> None:
        """Level-set restart of the front into sheet ``sid`` from the nodes improved since its last run."""
        s = self.sheets[sid]
        cs = self.cell_size
        cur = D[s.nodes]
        improved = cur < last - 1e-4
        grid_imp = np.zeros(s.h * s.w, dtype=bool)
        grid_imp[s.flat[improved]] = True
        grid_imp = grid_imp.reshape(s.h, s.w)
        dgrid = np.full(s.h * s.w, _INF)
        dgrid[s.flat] = cur
        dgrid = dgrid.reshape(s.h, s.w)
        labels, n_comp = ndi.label(grid_imp)
        inside = ~s.mask
        # comp cells adjacent (4-neighbour) to sheet cells outside the component
        for c in range(1, n_comp + 1):
            comp = labels == c
            outside = inside & ~comp
            touch = np.zeros_like(comp)
            touch[1:, :] |= outside[:-1, :]
            touch[:-1, :] |= outside[1:, :]
            touch[:, 1:] |= outside[:, :-1]
            touch[:, :-1] |= outside[:, 1:]
            edge = comp & touch
            if not edge.any():
                continue
            t_front = float(dgrid[edge].min()) - 2.0 * cs
            dmin = float(dgrid[comp].min())
            if t_front <= dmin:
                t_front = dmin + 0.5 * cs
            phi = np.ones((s.h, s.w))
            phi[comp] = dgrid[comp] - t_front
            neg = phi < 0
            if not neg.any():
                continue
            t = self._travel(s, phi)
            new = np.where(neg.ravel(), _INF, t_front + t)[s.flat]
            np.minimum.at(D, s.nodes, new)

    def _interp(
        self, field: np.ndarray, node: int, p: np.ndarray, tnode: int, tp: np.ndarray
    ) -> float:
        """Field value at ``p`` (inside ``node``'s cell): bilinear over the linked neighbouring cell centres."""
        cs = self.cell_size
        fx = (p[0] - self.node_cx[node]) / cs
        fz = (p[2] - self.node_cz[node]) / cs
        dx_dir = 0 if fx >= 0 else 1
        dz_dir = 2 if fz >= 0 else 3
        ax, az = min(abs(fx), 0.5), min(abs(fz), 0.5)
        nx_ = self.nbr[node, dx_dir]
        nz_ = self.nbr[node, dz_dir]
        diag = -1
        if nx_ >= 0:
            diag = self.nbr[nx_, dz_dir]
        if diag < 0 and nz_ >= 0:
            diag = self.nbr[nz_, dx_dir]
        corners = (
            (node, (1 - ax) * (1 - az)),
            (nx_, ax * (1 - az)),
            (nz_, (1 - ax) * az),
            (diag, ax * az),
        )
        num = den = 0.0
        for c, w in corners:
            if c >= 0 and np.isfinite(field[c]) and w > 0:
                num += w * float(field[c])
                den += w
        value = num / den if den > 0 else float(field[node])
        if tnode >= 0 and self.node_island[tnode] == self.node_island[node]:
            euclid = float(np.hypot(p[0] - tp[0], p[2] - tp[2]))
            if euclid < 4 * cs and value < 8 * cs:
                from habitat_fih.sim.motion import segment_clear

                if segment_clear(self, node, p, tnode, tp):
                    value = min(value, float(np.linalg.norm(p - np.asarray(tp, dtype=np.float64))))
        return value

    def get_straight_shortest_path_points(
        self, start: np.ndarray, end: np.ndarray
    ) -> list[np.ndarray]:
        """Polyline (float32 [3] points, start..end) along the geodesic; empty if unreachable.

        Steepest descent over linked cells on the end's field, then line-of-sight simplification.
        """
        from habitat_fih.sim.motion import segment_clear

        node, p = self._locate_or_snap(start)
        tnode, field = self._field_for(np.asarray(end, dtype=np.float64))
        if node < 0 or tnode < 0 or not np.isfinite(field[node]):
            return []
        _, tp = self._locate_or_snap(end)
        chain = [node]
        seen = {node}
        cur = node
        while cur != tnode and len(chain) <= self.num_nodes:
            best, best_v = -1, float(field[cur])
            for m in self.nbr[cur]:
                if m >= 0 and m not in seen and field[m] <= best_v:
                    best, best_v = int(m), float(field[m])
            if best < 0:
                break
            chain.append(best)
            seen.add(best)
            cur = best
        pts = [np.array([p[0], self.node_y[node], p[2]])]
        nodes = [node]
        for c in chain[1:-1]:
            pts.append(np.array([self.node_cx[c], self.node_y[c], self.node_cz[c]]))
            nodes.append(c)
        pts.append(np.array([tp[0], self.node_y[tnode], tp[2]]))
        nodes.append(tnode)
        out = [pts[0]]
        i = 0
        while i < len(pts) - 1:
            j = i + 1
            while j + 1 < len(pts) and segment_clear(
                self, nodes[i], pts[i], nodes[j + 1], pts[j + 1]
            ):
                j += 1
            out.append(pts[j])
            i = j
        return [q.astype(np.float32) for q in out]

    # ------------------------------------------------------------------ motion
    def try_step(
        self, start: np.ndarray, end: np.ndarray, allow_sliding: bool = True
    ) -> tuple[np.ndarray, bool]:
        """habitat-sim ``try_step``: ``(filtered end float64 [3], collided)``; see :func:`habitat_fih.sim.motion.try_step`."""
        from habitat_fih.sim.motion import try_step

        return try_step(self, start, end, allow_sliding)

    def distance_to_obstacle(self, point: np.ndarray) -> float:
        """Approximate distance from ``point`` to the edge of the navigable region (capped); 0 if off it."""
        node = self.locate(point)
        if node < 0:
            return 0.0
        return max(float(self.clearance[node]) - self.agent_radius, 0.0)
