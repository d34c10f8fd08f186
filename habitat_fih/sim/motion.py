"""Agent motion on a :class:`~habitat_fih.sim.navigation.NavGrid`: habitat-sim's navmesh ``try_step``.

* With sliding (Detour ``moveAlongSurface``): breadth-first search over linked cells whose squares
  meet the circle having the step as diameter; the agent ends at the point of the visited cells
  closest to the target, so it slides along walls (the projection of the target onto a straight
  wall lies on that circle, so a diagonal step into a wall keeps its full tangential component).
* Without sliding (Detour ``raycast``): walk the segment cell by cell through the links; the agent
  stops where the segment leaves the last reachable cell.

Cells are only entered through links, so a move never passes a wall and changes level only over
connected cells (stairs, steps within ``max_climb``). The returned y is the floor height of the cell
the agent ends in. ``collided`` follows habitat-sim: ``|filtered - start|^2 + 1e-5 < |end - start|^2``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from habitat_fih.sim.navigation import NavGrid

__all__ = ["try_step", "walk_segment", "segment_clear"]

#: Pull-back (m) of a slid position into its cell so it stays navigable under float round-off.
_EDGE_EPS = 1e-5


def walk_segment(grid: NavGrid, node: int, a: np.ndarray, b: np.ndarray) -> tuple[int, float, bool]:
    """Walk from ``a`` (inside ``node``'s cell) toward ``b`` in x-z through linked cells.

    Returns ``(last node, t, reached)``: ``t`` in [0, 1] is where the segment leaves the last
    reachable cell (1 when ``b`` is reached). A corner crossing takes either side that is linked.
    """
    cs = grid.cell_size
    ax, az = grid.clamp_to_cell(node, float(a[0]), float(a[2]))
    dx, dz = float(b[0]) - ax, float(b[2]) - az
    ix, iz = int(grid.node_ix[node]), int(grid.node_iz[node])
    sx = 1 if dx > 0 else (-1 if dx < 0 else 0)
    sz = 1 if dz > 0 else (-1 if dz < 0 else 0)
    tmx = ((grid.x0 + (ix + (sx > 0)) * cs) - ax) / dx if sx else np.inf
    tmz = ((grid.z0 + (iz + (sz > 0)) * cs) - az) / dz if sz else np.inf
    tdx = cs / abs(dx) if sx else np.inf
    tdz = cs / abs(dz) if sz else np.inf
    dir_x = 0 if sx > 0 else 1
    dir_z = 2 if sz > 0 else 3
    cur = node
    while True:
        t = min(tmx, tmz)
        if t >= 1.0 - 1e-12:
            return cur, 1.0, True
        if abs(tmx - tmz) <= 1e-12:  # exact corner: either linked side will do
            nxt = -1
            m = grid.nbr[cur, dir_x]
            if m >= 0:
                nxt = grid.nbr[m, dir_z]
            if nxt < 0:
                m = grid.nbr[cur, dir_z]
                if m >= 0:
                    nxt = grid.nbr[m, dir_x]
            if nxt < 0:
                return cur, max(t, 0.0), False
            tmx += tdx
            tmz += tdz
        elif tmx < tmz:
            nxt = grid.nbr[cur, dir_x]
            if nxt < 0:
                return cur, max(t, 0.0), False
            tmx += tdx
        else:
            nxt = grid.nbr[cur, dir_z]
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
        and abs(grid.node_y[last] - grid.node_y[node_b]) <= grid.max_climb
    )


def try_step(
    grid: NavGrid, start: np.ndarray, end: np.ndarray, allow_sliding: bool = True
) -> tuple[np.ndarray, bool]:
    """habitat-sim's ``pathfinder.try_step`` / ``try_step_no_sliding`` on the grid.

    Args:
        grid: the navigability grid.
        start: float [3] current position (on the floor; snapped to the grid if slightly off).
        end: float [3] desired position (only x and z matter).
        allow_sliding: slide along walls (habitat's ``allow_sliding``) or stop at them.

    Returns:
        ``(filtered float64 [3], collided)`` with the filtered y on the floor of its cell and
        ``collided = |filtered - start|^2 + 1e-5 < |end - start|^2``.
    """
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    node = grid.locate(start)
    if node < 0:
        snapped = grid.snap_point(start)
        if np.any(np.isnan(snapped)):
            return start.copy(), bool(np.sum((end - start) ** 2) > 1e-5)
        node = grid.locate(snapped.astype(np.float64))
        start_xz = snapped.astype(np.float64)
    else:
        start_xz = start
    if allow_sliding:
        out = _slide(grid, node, start_xz, end)
    else:
        last, t, reached = walk_segment(grid, node, start_xz, end)
        if reached:
            out = np.array([end[0], grid.node_y[last], end[2]])
        else:
            ax, az = grid.clamp_to_cell(node, float(start_xz[0]), float(start_xz[2]))
            px, pz = ax + t * (end[0] - ax), az + t * (end[2] - az)
            px, pz = grid.clamp_to_cell(last, px, pz, eps=_EDGE_EPS)
            out = np.array([px, grid.node_y[last], pz])
    collided = bool(np.sum((out - start) ** 2) + 1e-5 < np.sum((end - start) ** 2))
    return out, collided


def _slide(grid: NavGrid, node: int, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Closest point to ``end`` among cells reachable from ``node`` inside the step's Thales circle."""
    h = 0.5 * grid.cell_size
    ex, ez = float(end[0]), float(end[2])
    sx, sz = grid.clamp_to_cell(node, float(start[0]), float(start[2]))
    mx, mz = 0.5 * (sx + ex), 0.5 * (sz + ez)
    radius = 0.5 * float(np.hypot(ex - sx, ez - sz)) + 1e-3
    r2 = radius * radius
    cx, cz, nbr = grid.node_cx, grid.node_cz, grid.nbr
    best, best_d, best_q = node, np.inf, (sx, sz)
    seen = {node}
    stack = [node]
    while stack:
        n = stack.pop()
        qx = min(max(ex, cx[n] - h), cx[n] + h)
        qz = min(max(ez, cz[n] - h), cz[n] + h)
        d = (qx - ex) ** 2 + (qz - ez) ** 2
        if d < best_d:
            best, best_d, best_q = n, d, (qx, qz)
            if d == 0.0:
                break
        for m in nbr[n]:
            if m < 0 or m in seen:
                continue
            px = min(max(mx, cx[m] - h), cx[m] + h)
            pz = min(max(mz, cz[m] - h), cz[m] + h)
            if (px - mx) ** 2 + (pz - mz) ** 2 <= r2:
                seen.add(int(m))
                stack.append(int(m))
    if best_d == 0.0:
        return np.array([ex, grid.node_y[best], ez])
    qx, qz = grid.clamp_to_cell(best, best_q[0], best_q[1], eps=_EDGE_EPS)
    return np.array([qx, grid.node_y[best], qz])
