"""Agent motion on a :class:`~habitat_fih.sim.navigation.NavGrid`: habitat-sim's navmesh ``try_step``.

The simulator and the follower call :func:`try_step`; the segment walk through linked cells it
uses lives with the grid (:func:`habitat_fih.sim.navigation.walk_segment`).

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

import math

import numpy as np

from habitat_fih.sim.navigation import NavGrid, walk_segment

__all__ = ["try_step"]

#: Pull-back (m) of a slid position into its cell so it stays navigable under float round-off.
_EDGE_EPS = 1e-5


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
    radius = 0.5 * math.hypot(ex - sx, ez - sz) + 1e-3
    r2 = radius * radius
    nbr, centre = grid.nbr, grid.cell_centre
    best, best_d, best_q = node, np.inf, (sx, sz)
    seen = {node}
    stack = [node]
    while stack:
        n = stack.pop()
        cxn, czn = centre(n)
        qx = min(max(ex, cxn - h), cxn + h)
        qz = min(max(ez, czn - h), czn + h)
        d = (qx - ex) ** 2 + (qz - ez) ** 2
        if d < best_d:
            best, best_d, best_q = n, d, (qx, qz)
            if d == 0.0:
                break
        for m in nbr[n]:
            m = int(m)
            if m < 0 or m in seen:
                continue
            cxm, czm = centre(m)
            px = min(max(mx, cxm - h), cxm + h)
            pz = min(max(mz, czm - h), czm + h)
            if (px - mx) ** 2 + (pz - mz) ** 2 <= r2:
                seen.add(int(m))
                stack.append(int(m))
    if best_d == 0.0:
        return np.array([ex, grid.node_y[best], ez])
    qx, qz = grid.clamp_to_cell(best, best_q[0], best_q[1], eps=_EDGE_EPS)
    return np.array([qx, grid.node_y[best], qz])
