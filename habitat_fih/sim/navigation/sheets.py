"""Sheets: the navigable graph cut into 2-D grids on which fast marching runs.

A *sheet* is a set of nodes with at most one node per column in which grid-adjacent members are
always linked, so it is an ordinary 2-D grid with a mask. Nodes are binned into height slabs
thinner than ``agent_height`` (cuts at the least-populated heights, i.e. between floors); the
link-connected parts of a slab are the sheets, and a part with an internal cliff (grid-adjacent
members without a link) is re-grown node by node. A single-storey island is one sheet. Sheets
with links leaving them are extended by a band of :data:`BAND_CELLS` link hops into their
neighbours, so neighbouring sheets overlap (on the stairs) and fields can be continued across.
Each sheet also carries the slope-corrected speed ``1/sqrt(1 + |grad y|^2)`` of the floor height
smoothed along links (~0.25 m), so slopes and stairs count their 3-D length.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from habitat_fih.sim.navigation.graph import column_box, components, next_column

__all__ = ["Sheet", "SheetSet", "build_sheets", "BAND_CELLS"]

#: Link hops by which each sheet of a multi-sheet island is extended into its neighbours.
BAND_CELLS = 16


@dataclass
class Sheet:
    """One 2-D sheet: ``nodes`` (its extended node ids) at ``flat`` in an ``h x w`` box at ``(iz0, ix0)``."""

    island: int
    iz0: int
    ix0: int
    h: int
    w: int
    nodes: np.ndarray  # int32/int64 [M] node ids (primary nodes first, then band nodes)
    flat: np.ndarray  # int32/int64 [M] flat index into the h x w box
    mask: np.ndarray  # bool [h, w], True where no node of this sheet
    speed: np.ndarray  # float32 [h, w], slope-corrected speed (1 on flat floor)


@dataclass
class SheetSet:
    sheets: list[Sheet]
    node_sheet: np.ndarray  # int32 [N] primary sheet of each node
    island_sheets: list[list[int]]


@nb.njit(cache=True)
def _cliffs(col, nbr, nx, nz, comp, n_comp):
    """Components holding grid-adjacent members (4-neighbouring columns) that are not linked."""
    n = col.shape[0]
    bad = np.zeros(n_comp, dtype=np.bool_)
    for d in range(2):
        j = 0
        for i in range(n):
            j, tc = next_column(col, i, j, d, nx, nz)
            if tc < 0:
                continue
            q = j
            while q < n and col[q] == tc:
                if comp[q] == comp[i] and nbr[i, 2 * d] != q:
                    bad[comp[i]] = True
                q += 1
    return bad


def _slab_boundaries(y: np.ndarray, agent_height: float) -> np.ndarray:
    """Heights cutting the nodes into slabs thinner than ``agent_height``, at sparse heights."""
    y = np.sort(y.astype(np.float64))
    height = agent_height - 1e-3
    out = []
    b = float(y[0]) - 1e-3
    while y[-1] >= b + height:
        cands = b + 0.5 * height + 0.05 * np.arange(int(np.ceil(0.5 * height / 0.05)))
        counts = np.searchsorted(y, cands + 0.025) - np.searchsorted(y, cands - 0.025)
        best = int(np.flatnonzero(counts == counts.min())[-1])
        b = float(cands[best])
        out.append(b)
    return np.asarray(out)


@nb.njit(cache=True)
def _sloped(y, nbr):
    """Nodes with a link to a node more than 0.1 mm higher or lower."""
    n = y.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        for d in range(4):
            m = nbr[i, d]
            if m >= 0 and abs(np.float64(y[m]) - np.float64(y[i])) > 1e-4:
                out[i] = True
                break
    return out


@nb.njit(cache=True)
def _fill(ext, col, nx, ix0, iz0, w, speed, flat, mask, sp):
    for k in range(ext.shape[0]):
        e = ext[k]
        f = (col[e] // nx - iz0) * w + (col[e] % nx - ix0)
        flat[k] = f
        mask[f] = False
        sp[f] = speed[e]


@nb.njit(cache=True)
def _smoothed_speed(y, nbr, active, dilate, iterations, cs, speed):
    """Dilate ``active`` by ``dilate`` link hops, Jacobi-smooth the heights of the active nodes
    (``iterations`` rounds of the mean over the node and its links), and write
    ``1/sqrt(1 + |grad y|^2)`` (central differences along links) into ``speed`` there."""
    n = y.shape[0]
    for _ in range(dilate):
        grown = active.copy()
        for i in range(n):
            if active[i]:
                for d in range(4):
                    m = nbr[i, d]
                    if m >= 0:
                        grown[m] = True
        active = grown
    idx = np.flatnonzero(active)
    cur = y.astype(np.float64)
    nxt = cur.copy()
    for _ in range(iterations):
        for i in idx:
            acc = cur[i]
            cnt = 1.0
            for d in range(4):
                m = nbr[i, d]
                if m >= 0:
                    acc += cur[m]
                    cnt += 1.0
            nxt[i] = acc / cnt
        for i in idx:
            cur[i] = nxt[i]
    for i in idx:
        g2 = 0.0
        for a, b in ((0, 1), (2, 3)):
            pa = nbr[i, a]
            pb = nbr[i, b]
            ya = cur[pa] if pa >= 0 else cur[i]
            yb = cur[pb] if pb >= 0 else cur[i]
            span = ((1.0 if pa >= 0 else 0.0) + (1.0 if pb >= 0 else 0.0)) * cs
            if span > 0:
                g = (ya - yb) / span
                g2 += g * g
        speed[i] = 1.0 / math.sqrt(1.0 + g2)


def _slope_speed(y: np.ndarray, nbr: np.ndarray, cell_size: float) -> np.ndarray:
    """Per-node speed ``1/sqrt(1 + |grad y|^2)`` of the floor height smoothed along links (~0.25 m)."""
    active = _sloped(y, nbr)
    speed = np.ones(len(y), dtype=np.float32)
    if not active.any():
        return speed
    sigma_cells = 0.25 / cell_size
    iterations = int(np.ceil(sigma_cells**2 / 0.4))
    dilate = int(np.ceil(3 * sigma_cells))  # the smoothing's reach
    _smoothed_speed(y, nbr, active, dilate, iterations, float(cell_size), speed)
    return speed


class _Builder:
    """Re-grows sheets node by node (components with cliffs, overlap bands)."""

    def __init__(self, col, y, nbr, nx, nz):
        self.col, self.y, self.nbr = col, y, nbr
        self.nx, self.nz = nx, nz

    def _neighbour_col(self, c: int, d: int) -> int:
        ix, iz = c % self.nx, c // self.nx
        dx, dz = ((1, 0), (-1, 0), (0, 1), (0, -1))[d]
        jx, jz = ix + dx, iz + dz
        if 0 <= jx < self.nx and 0 <= jz < self.nz:
            return jz * self.nx + jx
        return -1

    def _fits(self, node: int, lookup) -> bool:
        """True if ``node`` joins a sheet (``lookup(column) -> node | None``) without an unlinked grid neighbour."""
        c = int(self.col[node])
        for d in range(4):
            jc = self._neighbour_col(c, d)
            if jc >= 0:
                other = lookup(jc)
                if other is not None and self.nbr[node, d] != other:
                    return False
        return True

    def grow(self, members: np.ndarray) -> list[np.ndarray]:
        """Split a component with cliffs into cliff-free sheets, grown by height difference from seeds."""
        y = self.y
        unassigned = set(members.tolist())
        out = []
        while unassigned:
            seed = min(unassigned, key=lambda i: (float(y[i]), i))
            cols: dict[int, int] = {}
            heap = [(0.0, seed)]
            while heap:
                _, node = heapq.heappop(heap)
                if node not in unassigned or int(self.col[node]) in cols or not self._fits(node, cols.get):
                    continue
                cols[int(self.col[node])] = node
                unassigned.discard(node)
                for m in self.nbr[node]:
                    if m >= 0 and int(m) in unassigned:
                        heapq.heappush(heap, (abs(float(y[m]) - float(y[seed])), int(m)))
            out.append(np.fromiter(cols.values(), dtype=np.int64))
        return out

    def band(self, members: np.ndarray, frontier: np.ndarray) -> np.ndarray:
        """Nodes within :data:`BAND_CELLS` link hops outside a sheet that keep it cliff-free."""
        cols: dict[int, int] = {}
        member_cols = dict(zip(self.col[members].tolist(), members.tolist(), strict=True))

        def lookup(c: int) -> int | None:
            v = cols.get(c)
            return v if v is not None else member_cols.get(c)

        band: list[int] = []
        front = [int(i) for i in frontier]
        for _ in range(BAND_CELLS):
            nxt = []
            for node in front:
                for m in self.nbr[node]:
                    m = int(m)
                    if m < 0 or lookup(int(self.col[m])) is not None or not self._fits(m, lookup):
                        continue
                    cols[int(self.col[m])] = m
                    nxt.append(m)
            band.extend(nxt)
            front = nxt
            if not front:
                break
        return np.asarray(band, dtype=np.int64)


def build_sheets(col, y, nbr, nx, nz, cell_size, agent_height, island, n_islands) -> SheetSet:
    """Cut the graph into sheets (module docstring) and extend them by overlap bands."""
    n = len(col)
    b = _Builder(col, y, nbr, nx, nz)
    speed = _slope_speed(y, nbr, cell_size)
    cuts = _slab_boundaries(y, agent_height)
    if len(cuts):
        slab = np.searchsorted(cuts, y.astype(np.float64), side="right")
        comp, n_comp = components(nbr, slab)  # links inside one slab
        del slab
    else:  # one slab: the sheets' components are the islands
        comp, n_comp = island, int(n_islands)
    bad = _cliffs(col, nbr, nx, nz, comp, n_comp)
    primaries: list[np.ndarray] = []
    if n_comp == 1:
        groups = [np.arange(n, dtype=np.int64)]
    else:
        comp_order = np.argsort(comp, kind="stable")
        bounds = np.searchsorted(comp[comp_order], np.arange(n_comp + 1))
        groups = [comp_order[bounds[c] : bounds[c + 1]] for c in range(n_comp)]
    for c, members in enumerate(groups):
        primaries.extend(b.grow(members) if bad[c] else [members])
    del groups
    node_sheet = np.full(n, -1, dtype=np.int32)
    for sid, members in enumerate(primaries):
        node_sheet[members] = sid
    sheets: list[Sheet] = []
    island_sheets: list[list[int]] = [[] for _ in range(n_islands)]
    multi = np.bincount(island[[int(m[0]) for m in primaries]], minlength=n_islands) > 1
    for sid, members in enumerate(primaries):
        ext = members
        isl = int(island[members[0]])
        if multi[isl]:
            nbm = nbr[members]
            leaving = np.any((nbm >= 0) & (node_sheet[np.maximum(nbm, 0)] != sid), axis=1)
            if leaving.any():
                ext = np.concatenate([members, b.band(members, members[leaving])])
        sheets.append(_make_sheet(isl, ext, col, nx, speed))
        island_sheets[isl].append(sid)
    return SheetSet(sheets, node_sheet, island_sheets)


def _make_sheet(isl: int, ext: np.ndarray, col: np.ndarray, nx: int, speed: np.ndarray) -> Sheet:
    nodes = np.asarray(ext, dtype=np.int32 if len(col) < 2**31 else np.int64)
    ix0, iz0, h, w = (int(v) for v in column_box(col[nodes], nx))
    flat = np.empty(len(nodes), dtype=np.int32 if h * w < 2**31 else np.int64)
    mask = np.ones(h * w, dtype=bool)
    sp = np.ones(h * w, dtype=np.float32)
    _fill(nodes, col, nx, ix0, iz0, w, speed, flat, mask, sp)
    return Sheet(isl, iz0, ix0, h, w, nodes, flat, mask.reshape(h, w), sp.reshape(h, w))
