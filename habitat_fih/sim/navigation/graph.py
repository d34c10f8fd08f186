"""The node graph of the solid heightfield: links between neighbouring columns (voxel heights),
Recast's erosion by the agent radius in cells (chamfer distance from boundary nodes), the metric
clearance, connected components, compaction -- numba loops over nodes sorted by (column, height),
the order of Recast's raster passes. The rules, and why they follow Recast (habitat-sim parity),
are documented in :mod:`habitat_fih.sim.navigation.heightfield`.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["next_column", "link", "erode", "clearance", "column_box", "components", "compact"]


@nb.njit(cache=True)
def next_column(col, i, j, d, nx, nz):
    """First node ``>= j`` of the column next to node ``i``'s in direction ``d`` (0: +x, 1: +z) and
    that column's id; ``(j, -1)`` at the grid's edge. ``j`` only moves forward as ``i`` does
    (nodes sorted by column), so a sweep over all nodes is linear."""
    c = col[i]
    if d == 0:
        if c % nx + 1 >= nx:
            return j, -1
        tc = c + 1
    else:
        if c // nx + 1 >= nz:
            return j, -1
        tc = c + nx
    n = col.shape[0]
    while j < n and col[j] < tc:
        j += 1
    return j, tc


@nb.njit(cache=True)
def link(col, top, ceil, nx, nz, climb, height, nbr):
    """Fill ``nbr [N, 4]`` (+x, -x, +z, -z) for nodes sorted by (column, height).

    ``top`` / ``ceil`` are the nodes' floor and ceiling in voxels (integers). Two nodes of
    4-neighbouring columns are linked when their floors differ by at most ``climb`` voxels and the
    space both share, ``min(ceil) - max(top)``, is at least ``height`` voxels (Recast's
    compact-heightfield connection). At most one node of a column qualifies (two walkable spans of
    one column are more than ``height`` apart); the lowest one is taken regardless.
    """
    n = col.shape[0]
    for d in range(2):  # +x, +z; the reverse links mirror them
        j = 0
        for i in range(n):
            j, tc = next_column(col, i, j, d, nx, nz)
            if tc < 0:
                continue
            q = j
            while q < n and col[q] == tc:
                dy = abs(np.int64(top[q]) - np.int64(top[i]))
                room = min(np.int64(ceil[i]), np.int64(ceil[q])) - max(np.int64(top[i]), np.int64(top[q]))
                if dy <= climb and room >= height:
                    nbr[i, 2 * d] = q
                    nbr[q, 2 * d + 1] = i
                    break
                q += 1


@nb.njit(cache=True)
def _relax(dist, nbr, i, straight, then):
    """One chamfer step of :func:`erode`: node ``i`` from its neighbour in direction ``straight``
    (+2) and from that neighbour's neighbour in direction ``then`` (a diagonal, +3)."""
    a = nbr[i, straight]
    if a >= 0:
        dist[i] = min(dist[i], dist[a] + 2)
        b = nbr[a, then]
        if b >= 0:
            dist[i] = min(dist[i], dist[b] + 3)


@nb.njit(cache=True)
def erode(nbr, radius_cells):
    """Recast's erosion by the agent radius in cells; returns the mask of the nodes kept.

    A node with fewer than 4 links is a boundary node (distance 0). Distances are chamfer
    distances over links, 2 per orthogonal step and 3 per diagonal step, computed by Recast's two
    raster passes over the nodes in (row, column, height) order: the forward pass takes the -x and
    -z neighbours (+2) and the diagonals (-1, -1) through the -x neighbour and (+1, -1) through
    the -z neighbour (+3); the backward pass takes +x and +z and the diagonals (+1, +1) through +x
    and (-1, +1) through +z. Nodes at a distance below ``2 * radius_cells`` are removed, so with
    2 cells a node survives when no node of its 3 x 3 neighbourhood (reached through links) is a
    boundary node. Integer arithmetic: no ties to break.
    """
    n = nbr.shape[0]
    keep = np.ones(n, dtype=np.bool_)
    if radius_cells <= 0:
        return keep
    big = np.int64(1) << 30
    dist = np.full(n, big, dtype=np.int64)
    for i in range(n):
        if nbr[i, 0] < 0 or nbr[i, 1] < 0 or nbr[i, 2] < 0 or nbr[i, 3] < 0:
            dist[i] = 0
    # forward pass: (-1, 0) then its (0, -1); (0, -1) then its (+1, 0)
    for i in range(n):
        _relax(dist, nbr, i, 1, 3)
        _relax(dist, nbr, i, 3, 0)
    # backward pass: (+1, 0) then its (0, +1); (0, +1) then its (-1, 0)
    for i in range(n - 1, -1, -1):
        _relax(dist, nbr, i, 0, 2)
        _relax(dist, nbr, i, 2, 1)
    thr = 2 * np.int64(radius_cells)
    for i in range(n):
        keep[i] = dist[i] >= thr
    return keep


@nb.njit(cache=True)
def _initial_site(i, col, nbr, nx, nz, x0, z0, cs, obs_col, obs_box):
    """Nearest obstacle site ``(x, z, distance)`` of node ``i`` over its missing links (inf if none)."""
    ix = col[i] % nx
    iz = col[i] // nx
    cx = x0 + (ix + 0.5) * cs
    cz = z0 + (iz + 0.5) * cs
    bx = 0.0
    bz = 0.0
    best = np.inf
    for d in range(4):
        if nbr[i, d] >= 0:
            continue
        dx = 1 if d == 0 else (-1 if d == 1 else 0)
        dz = 1 if d == 2 else (-1 if d == 3 else 0)
        sx = cx + 0.5 * cs * dx
        sz = cz + 0.5 * cs * dz
        jx = ix + dx
        jz = iz + dz
        if 0 <= jx < nx and 0 <= jz < nz:
            tc = jz * nx + jx
            q = np.searchsorted(obs_col, tc)
            if q < obs_col.shape[0] and obs_col[q] == tc:
                sx = min(max(cx, obs_box[q, 0]), obs_box[q, 1])
                sz = min(max(cz, obs_box[q, 2]), obs_box[q, 3])
        dist = math.hypot(sx - cx, sz - cz)
        if dist < best:
            best = dist
            bx = sx
            bz = sz
    return bx, bz, best


@nb.njit(cache=True)
def clearance(col, nbr, nx, nz, x0, z0, cs, obs_col, obs_box, cap, out):
    """Distance (metres) from each node centre to the nearest obstacle site, capped at ``cap``,
    written to ``out`` (float32). It measures, it does not erode (:func:`erode` does).

    Each missing link is an obstacle. Its site is the point of the neighbour column's steep
    geometry (its x-z extent, ``obs_box``) nearest to the node centre -- so a wall face lying on
    a cell boundary is measured where it is -- or, for a column without steep geometry (a drop, a
    void, the grid's edge), the shared cell boundary. The nearest site propagates along links
    (FIFO, nodes in index order, so the result is deterministic).
    """
    n = col.shape[0]
    n_sites = 0
    for i in range(n):
        for d in range(4):
            if nbr[i, d] < 0:
                n_sites += 1
                break
    sites_x = np.empty(n_sites)
    sites_z = np.empty(n_sites)
    site = np.full(n, -1, dtype=np.int32)
    best = np.full(n, np.inf)
    queue = np.empty(max(n, 1), dtype=np.int32)
    inq = np.zeros(n, dtype=np.bool_)
    head = 0
    tail = 0
    count = 0
    k = 0
    for i in range(n):
        sx, sz, dist = _initial_site(i, col, nbr, nx, nz, x0, z0, cs, obs_col, obs_box)
        if dist < np.inf:
            sites_x[k] = sx
            sites_z[k] = sz
            site[i] = k
            best[i] = dist
            k += 1
            queue[tail] = i
            tail = (tail + 1) % n
            count += 1
            inq[i] = True
    while count > 0:
        i = queue[head]
        head = (head + 1) % n
        count -= 1
        inq[i] = False
        sx = sites_x[site[i]]
        sz = sites_z[site[i]]
        for d in range(4):
            m = nbr[i, d]
            if m < 0:
                continue
            mx = x0 + (col[m] % nx + 0.5) * cs
            mz = z0 + (col[m] // nx + 0.5) * cs
            dist = math.hypot(sx - mx, sz - mz)
            if dist < best[m] - 1e-12 and dist <= cap:
                best[m] = dist
                site[m] = site[i]
                if not inq[m]:
                    queue[tail] = m
                    tail = (tail + 1) % n
                    count += 1
                    inq[m] = True
    for i in range(n):
        out[i] = min(best[i], cap)


@nb.njit(cache=True)
def column_box(col, nx):
    """``(ix0, iz0, h, w)`` of the cells holding the columns ``col``."""
    ix0 = iz0 = 2**62
    ix1 = iz1 = -1
    for c in col:
        ix = c % nx
        iz = c // nx
        ix0 = min(ix0, ix)
        ix1 = max(ix1, ix)
        iz0 = min(iz0, iz)
        iz1 = max(iz1, iz)
    return ix0, iz0, iz1 - iz0 + 1, ix1 - ix0 + 1


@nb.njit(cache=True)
def _find(parent, i):
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


@nb.njit(cache=True)
def components(nbr, group):
    """Connected components over links whose two ends share ``group``; labels in order of first node."""
    n = nbr.shape[0]
    parent = np.arange(n).astype(np.int32)
    for i in range(n):
        for d in (0, 2):
            m = nbr[i, d]
            if m >= 0 and group[m] == group[i]:
                ra = _find(parent, i)
                rb = _find(parent, m)
                if ra != rb:
                    if ra < rb:
                        parent[rb] = ra
                    else:
                        parent[ra] = rb
    label = np.full(n, -1, dtype=np.int32)
    nlab = 0
    for i in range(n):
        r = _find(parent, i)
        if label[r] < 0:
            label[r] = nlab
            nlab += 1
        label[i] = label[r]
    return label, nlab


@nb.njit(cache=True)
def compact(keep, col, y, nbr, clearance):
    """Drop the nodes not kept, in place (links renumbered, -1 where the neighbour went); returns
    the number kept (the arrays' first entries)."""
    n = keep.shape[0]
    remap = np.full(n, -1, dtype=np.int32)
    m = 0
    for i in range(n):
        if keep[i]:
            remap[i] = m
            m += 1
    for i in range(n):
        if keep[i]:
            r = remap[i]
            col[r] = col[i]
            y[r] = y[i]
            clearance[r] = clearance[i]
            for d in range(4):
                q = nbr[i, d]
                nbr[r, d] = remap[q] if q >= 0 else -1
    return m
