"""Geodesic travel-time fields on the sheets of a navigability grid, and their byte-bounded cache.

A target's field is computed with scikit-fmm (second order) on the target's sheet from a small
circle around the target, with the sheet's slope-corrected speed. It is continued into the
overlapping sheets by *level-set restart*: in the overlap band the known times ``D`` define the
front ``{D = T}`` (T a little below the smallest known time on the band's inner edge) and
``T + travel_time(phi = D - T)`` is the arrival time beyond it (Huygens' principle), taking the
minimum with known values; sheets are processed in order of arrival until nothing improves, so
paths that go up one staircase and down another are found too. Unreachable is ``inf``.

*Bounded fields.* A field may be computed only inside the square of half-width ``reach`` around
the target (every sheet cut to it). A path of length L stays within L of the target, so every
value ``<= reach`` of a bounded field is exact (the true path lies in the square); a larger or
infinite value only says "further than reach" and the caller recomputes with a larger square
(:meth:`habitat_fih.sim.navigation.NavGrid.geodesic_distance` doubles it). Per goal, fast marching
then costs the area around the goal that the queries need, not the whole island.

:class:`FieldCache` keeps computed fields (float32, one value per node) up to a byte budget,
least recently used first out.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import scipy.ndimage as ndi
import skfmm

from habitat_fih.sim.navigation.sheets import Sheet, SheetSet

__all__ = ["compute_field", "FieldCache"]

_INF = np.inf


def _travel(s: Sheet, phi: np.ndarray, cell_size: float) -> np.ndarray:
    """Travel time from the zero contour of ``phi [h, w]`` over sheet ``s``; inf where unreached."""
    masked = np.ma.MaskedArray(phi, s.mask)
    speed = s.speed.astype(np.float64)
    try:
        t = skfmm.travel_time(masked, speed, dx=cell_size, order=2)
    except ValueError:  # second order can fail next to masked cells; first order always works
        t = skfmm.travel_time(masked, speed, dx=cell_size, order=1)
    return np.ma.filled(np.ma.masked_invalid(t), _INF).ravel()


def _centres(s: Sheet, x0: float, z0: float, cs: float) -> tuple[np.ndarray, np.ndarray]:
    cx = x0 + (s.ix0 + np.arange(s.w) + 0.5) * cs
    cz = z0 + (s.iz0 + np.arange(s.h) + 0.5) * cs
    return cx[None, :], cz[:, None]


def _restrict(s: Sheet, box: tuple[int, int, int, int] | None) -> Sheet | None:
    """Sheet ``s`` cut to the cell box ``(iz0, ix0, iz1, ix1)`` (inclusive); None when disjoint."""
    if box is None:
        return s
    bz0, bx0, bz1, bx1 = box
    z0, x0 = max(bz0, s.iz0), max(bx0, s.ix0)
    z1, x1 = min(bz1, s.iz0 + s.h - 1), min(bx1, s.ix0 + s.w - 1)
    if z0 > z1 or x0 > x1:
        return None
    if (z0, x0, z1, x1) == (s.iz0, s.ix0, s.iz0 + s.h - 1, s.ix0 + s.w - 1):
        return s
    r, c = np.divmod(s.flat.astype(np.int64), s.w)
    r += s.iz0
    c += s.ix0
    inside = (r >= z0) & (r <= z1) & (c >= x0) & (c <= x1)
    if not inside.any():
        return None
    h, w = z1 - z0 + 1, x1 - x0 + 1
    ry, cx = z0 - s.iz0, x0 - s.ix0
    return Sheet(
        s.island, z0, x0, h, w, s.nodes[inside], (r[inside] - z0) * w + (c[inside] - x0),
        s.mask[ry : ry + h, cx : cx + w], s.speed[ry : ry + h, cx : cx + w],
    )


def compute_field(
    sheets: SheetSet, num_nodes: int, origin: tuple[float, float], cell_size: float,
    tnode: int, tp: np.ndarray, node_centre: Callable[[int], tuple[float, float]],
    reach: float = _INF,
) -> tuple[np.ndarray, bool]:
    """Travel-time field float64 [N] from point ``tp`` (node ``tnode``) over its island, inside the
    square of half-width ``reach`` metres around ``tp`` (module docstring); inf elsewhere.

    Returns ``(field, complete)``: ``complete`` when the square held every sheet of the island
    whole (the field is then exact everywhere).
    """
    cs = cell_size
    x0, z0 = origin
    D = np.full(num_nodes, _INF)
    s0 = int(sheets.node_sheet[tnode])
    island_sheets = sheets.island_sheets[sheets.sheets[s0].island]
    box = None
    if np.isfinite(reach):
        box = (
            int(np.floor((tp[2] - reach - z0) / cs)), int(np.floor((tp[0] - reach - x0) / cs)),
            int(np.floor((tp[2] + reach - z0) / cs)), int(np.floor((tp[0] + reach - x0) / cs)),
        )
    cut = {sid: _restrict(sheets.sheets[sid], box) for sid in island_sheets}
    complete = all(cut[sid] is sheets.sheets[sid] for sid in island_sheets)
    sheet = cut[s0]
    cx, cz = _centres(sheet, x0, z0, cs)
    r0 = cs
    dist = np.hypot(cx - tp[0], cz - tp[2])
    phi = dist - r0
    t = _travel(sheet, phi, cs)
    speed = sheet.speed.ravel().astype(np.float64)
    vals = np.where(phi.ravel() < 0, dist.ravel() / speed, r0 + t)
    D[sheet.nodes] = vals[sheet.flat]
    tcx, tcz = node_centre(tnode)
    D[tnode] = min(D[tnode], math.hypot(tcx - float(tp[0]), tcz - float(tp[2])))
    sheet_ids = [sid for sid in island_sheets if cut[sid] is not None]
    if len(sheet_ids) == 1:
        return D, complete
    last = {sid: np.full(len(cut[sid].nodes), _INF) for sid in sheet_ids}
    last[s0] = D[sheet.nodes].copy()
    tol = 1e-4
    for _ in range(8 * len(sheet_ids)):
        best_sid, best_val = -1, _INF
        for sid in sheet_ids:
            cur = D[cut[sid].nodes]
            imp = cur < last[sid] - tol
            if imp.any():
                v = float(cur[imp].min())
                if v < best_val:
                    best_sid, best_val = sid, v
        if best_sid < 0:
            break
        _continue_into(cut[best_sid], D, last[best_sid], cs)
        last[best_sid] = D[cut[best_sid].nodes].copy()
    return D, complete


def _continue_into(s: Sheet, D: np.ndarray, last: np.ndarray, cs: float) -> None:
    """Level-set restart of the front into sheet ``s`` from the nodes improved since its last run."""
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
    for c in range(1, n_comp + 1):  # each improved patch: its cells touching the rest of the sheet
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
        t = _travel(s, phi, cs)
        new = np.where(neg.ravel(), _INF, t_front + t)[s.flat]
        np.minimum.at(D, s.nodes, new)


class FieldCache:
    """Fields ``(target node, field, reach)`` keyed by target (rounded to 0.1 mm), evicted
    least-recently-used past ``max_bytes``.

    The newest field is always kept, even when it alone exceeds the budget.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"field cache budget must be >= 0 bytes, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[tuple[float, float, float], tuple[int, np.ndarray, float]] = (
            OrderedDict()
        )
        self.nbytes = 0

    @staticmethod
    def key(target: np.ndarray) -> tuple[float, float, float]:
        return (round(float(target[0]), 4), round(float(target[1]), 4), round(float(target[2]), 4))

    def get(self, key):
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
        return hit

    def put(self, key, value: tuple[int, np.ndarray, float]) -> None:
        """Store ``(target node, field, reach)`` (reach inf: a complete field)."""
        old = self._items.pop(key, None)
        if old is not None:
            self.nbytes -= old[1].nbytes
        self._items[key] = value
        self.nbytes += value[1].nbytes
        while self.nbytes > self.max_bytes and len(self._items) > 1:
            _, (_, field, _) = self._items.popitem(last=False)
            self.nbytes -= field.nbytes

    def __len__(self) -> int:
        return len(self._items)
