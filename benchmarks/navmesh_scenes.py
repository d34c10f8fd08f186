"""Scenes for the navigability benchmark (bench_navmesh.py) and for tests that want the same meshes.

Every generator returns ``(vertices float64 [V, 3], faces int64 [F, 3])``, Y-up, metres, and is
deterministic (the random one is seeded):

- `bundled_house`: a bundled synthetic house (``data/scene_datasets/fih_synthetic/house_000.glb``),
  loaded as FIHSim-v0 loads it (`habitat_fih.sim.scene.load_scene`).
- `house_20m`: the "20 m test house" of tests/sim/test_navigation.py: a 20 x 20 m floor slab,
  0.1 m outer walls, a ceiling slab and 4 x 4 rooms of 5 m with a 1 m door in every inner wall.
- `flat_plane`: a 200 x 200 m plane of 2,048 triangles (32 x 32 quads at y = 0).
- `scan_like`: a large third-party-style scene (~125 x 120 m, ~125k triangles) made like a scan
  rather than like our closed-box houses: a noisy, finely triangulated floor with gentle slopes,
  single-sided wall quads (no thickness) forming rooms and corridors with door gaps, no ceiling
  over most of it, scattered (some open-bottom, some rotated) furniture and tables, a raised
  platform reached by a ramp and by stairs, and a small stage with steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUNDLED_HOUSE = ROOT / "data" / "scene_datasets" / "fih_synthetic" / "house_000.glb"

Mesh = tuple[np.ndarray, np.ndarray]


def _as_mesh(vertices, faces) -> Mesh:
    return np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)


def _concat(parts: list[Mesh]) -> Mesh:
    verts, faces, n = [], [], 0
    for v, f in parts:
        verts.append(np.asarray(v, dtype=np.float64))
        faces.append(np.asarray(f, dtype=np.int64) + n)
        n += len(v)
    return _as_mesh(np.concatenate(verts), np.concatenate(faces))


def _box(lo, hi) -> Mesh:
    """Closed axis-aligned box (trimesh.creation.box, outward normals) from corner lo to hi."""
    import trimesh

    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    b = trimesh.creation.box(extents=hi - lo)
    b.apply_translation((lo + hi) / 2)
    return _as_mesh(b.vertices, b.faces)


# ---------------------------------------------------------------------------------------- 1 - 3
def bundled_house(path: str | Path = BUNDLED_HOUSE) -> Mesh:
    """A bundled house as FIHSim-v0 sees it (all sub-meshes in one triangle soup)."""
    from habitat_fih.sim.scene import load_scene

    mesh = load_scene(str(path))
    return _as_mesh(mesh.vertices, mesh.faces)


def house_20m() -> Mesh:
    """20 x 20 m house, 4 x 4 rooms of 5 m, a 1 m door in the middle of every inner wall (closed
    boxes: floor slab, 0.1 m outer walls from y = -0.1 to 2.5, ceiling slab at 2.6 - 2.8)."""
    t, y0, y1 = 0.1, -0.1, 2.5
    parts = [
        _box([0, -0.2, 0], [20, 0, 20]),
        # outer walls around the slab (as tests/sim/test_navigation.py's walls_around)
        _box([-t, y0, -t], [20 + t, y1, 0]),
        _box([-t, y0, 20], [20 + t, y1, 20 + t]),
        _box([-t, y0, 0], [0, y1, 20]),
        _box([20, y0, 0], [20 + t, y1, 20]),
        _box([0, 2.6, 0], [20, 2.8, 20]),
    ]
    for k in range(1, 4):
        for j in range(4):
            parts.append(_box([5 * k, -0.1, 5 * j], [5 * k + 0.1, 2.6, 5 * j + 2]))
            parts.append(_box([5 * k, -0.1, 5 * j + 3], [5 * k + 0.1, 2.6, 5 * j + 5]))
            parts.append(_box([5 * j, -0.1, 5 * k], [5 * j + 2, 2.6, 5 * k + 0.1]))
            parts.append(_box([5 * j + 3, -0.1, 5 * k], [5 * j + 5, 2.6, 5 * k + 0.1]))
    return _concat(parts)


def _grid(x0: float, z0: float, x1: float, z1: float, nx: int, nz: int, height=None) -> Mesh:
    """Up-facing grid of nx x nz quads (2 triangles each) over [x0, x1] x [z0, z1];
    ``height(x, z) -> y`` (arrays), 0 if None."""
    xs, zs = np.linspace(x0, x1, nx + 1), np.linspace(z0, z1, nz + 1)
    gx, gz = np.meshgrid(xs, zs)  # [nz+1, nx+1]
    gy = np.zeros_like(gx) if height is None else height(gx, gz)
    verts = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)
    idx = np.arange((nz + 1) * (nx + 1)).reshape(nz + 1, nx + 1)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()  # (x, z), (x+1, z)
    c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()  # (x, z+1), (x+1, z+1)
    # (a, c, b): (+z) x (+x) = +y, i.e. facing up
    faces = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
    return _as_mesh(verts, faces)


def flat_plane(size: float = 200.0, quads: int = 32) -> Mesh:
    """``size`` x ``size`` m plane at y = 0 of ``quads`` x ``quads`` quads (2,048 triangles)."""
    return _grid(0.0, 0.0, size, size, quads, quads)


# ---------------------------------------------------------------------------------------- 4
def _smoothstep(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _scan_floor_height(x, z):
    """Gentle large-scale floor shape of `scan_like` (no jitter): a 0.3 m rise over 12 m of x
    (<= 4 % grade) in the east half, a 0.2 m dip over 10 m of z in the north-west, a 3 cm wave."""
    x, z = np.asarray(x, dtype=np.float64), np.asarray(z, dtype=np.float64)
    h = 0.3 * _smoothstep((x - 50.0) / 12.0)
    h = h - 0.2 * _smoothstep((z - 95.0) / 10.0) * (1.0 - _smoothstep((x - 30.0) / 8.0))
    return h + 0.03 * np.sin(2 * np.pi * z / 37.0) * np.cos(2 * np.pi * x / 53.0)


def _quad(p0, p1, p2, p3) -> Mesh:
    """One single-sided quad p0 p1 p2 p3 (counter-clockwise seen from its front)."""
    return _as_mesh([p0, p1, p2, p3], [[0, 1, 2], [0, 2, 3]])


def _wall(a, b, rng: np.random.Generator, seg: float = 1.0, top: float = 2.5) -> Mesh | None:
    """Single-sided vertical wall quads from (x, z) a to b, split every ~``seg`` m (a scan's
    triangulation), from 0.1 m under the floor to ``top`` above it, facing a random side."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    length = float(np.linalg.norm(b - a))
    if length < 1e-6:
        return None
    n = max(1, int(np.ceil(length / seg)))
    ts = np.linspace(0.0, 1.0, n + 1)
    pts = a[None] + ts[:, None] * (b - a)[None]
    h = _scan_floor_height(pts[:, 0], pts[:, 1])
    bottom = np.stack([pts[:, 0], h - 0.1, pts[:, 1]], 1)
    upper = np.stack([pts[:, 0], h + top, pts[:, 1]], 1)
    verts = np.concatenate([bottom, upper])
    i = np.arange(n)
    f = np.concatenate([np.stack([i, i + 1, n + 2 + i], 1), np.stack([i, n + 2 + i, n + 1 + i], 1)])
    if rng.random() < 0.5:
        f = f[:, ::-1]
    return _as_mesh(verts, f)


def _wall_with_doors(a, b, doors: list[float], rng, width: float = 1.0) -> list[Mesh]:
    """Wall from a to b with door gaps of ``width`` centred at the given distances along it."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    length = float(np.linalg.norm(b - a))
    u = (b - a) / length
    cuts, s = [], 0.0
    for d in sorted(doors):
        lo, hi = max(d - width / 2, 0.0), min(d + width / 2, length)
        if lo > s:
            cuts.append((s, lo))
        s = max(s, hi)
    if s < length:
        cuts.append((s, length))
    return [w for s0, s1 in cuts if (w := _wall(a + s0 * u, a + s1 * u, rng)) is not None]


def _furniture(rng: np.random.Generator, x0, z0, x1, z1) -> Mesh | None:
    """A piece inside [x0, x1] x [z0, z1]: a yawed box (40 % open at the bottom, as scans
    are) or a table (top slab on four legs), standing 2 cm into the floor."""
    w, d = rng.uniform(0.4, 2.0), rng.uniform(0.4, 1.6)
    yaw = rng.uniform(-np.pi, np.pi) if rng.random() < 0.5 else 0.0
    c, s = np.cos(yaw), np.sin(yaw)
    hw = 0.5 * (abs(c) * w + abs(s) * d)  # half extents of the yawed footprint
    hd = 0.5 * (abs(s) * w + abs(c) * d)
    if x1 - x0 < 2 * hw + 0.6 or z1 - z0 < 2 * hd + 0.6:
        return None
    cx, cz = rng.uniform(x0 + 0.3 + hw, x1 - 0.3 - hw), rng.uniform(z0 + 0.3 + hd, z1 - 0.3 - hd)
    base = float(_scan_floor_height(cx, cz)) - 0.02
    kind = rng.random()
    if kind < 0.15:  # table
        th = rng.uniform(0.7, 0.8)
        parts = [_box([-w / 2, th - 0.04, -d / 2], [w / 2, th, d / 2])]
        for sx in (-1, 1):
            for sz in (-1, 1):
                lx, lz = sx * (w / 2 - 0.05), sz * (d / 2 - 0.05)
                parts.append(_box([lx - 0.03, 0.0, lz - 0.03], [lx + 0.03, th - 0.04, lz + 0.03]))
        v, f = _concat(parts)
    else:
        v, f = _box([-w / 2, 0.0, -d / 2], [w / 2, rng.uniform(0.4, 1.2), d / 2])
        if kind < 0.55:  # open bottom: drop the two down-facing triangles
            n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
            f = f[n[:, 1] > -0.5]
    v = v @ np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]]) + np.array([cx, base, cz])
    return _as_mesh(v, f)


def _split_rooms(rng, x0, z0, x1, z1, lo=4.0, hi=11.0, depth=0):
    """Binary space partition of a block into rooms; returns (rooms, inner walls with a door)."""
    w, d = x1 - x0, z1 - z0
    if (w <= hi and d <= hi and (rng.random() < 0.5 or max(w, d) < 2 * lo)) or max(w, d) < 2 * lo:
        return [(x0, z0, x1, z1)], []
    if w >= d:
        s = rng.uniform(x0 + lo, x1 - lo)
        wall = ((s, z0), (s, z1), [rng.uniform(0.8, d - 0.8)])
        ra, wa = _split_rooms(rng, x0, z0, s, z1, lo, hi, depth + 1)
        rb, wb = _split_rooms(rng, s, z0, x1, z1, lo, hi, depth + 1)
    else:
        s = rng.uniform(z0 + lo, z1 - lo)
        wall = ((x0, s), (x1, s), [rng.uniform(0.8, w - 0.8)])
        ra, wa = _split_rooms(rng, x0, z0, x1, s, lo, hi, depth + 1)
        rb, wb = _split_rooms(rng, x0, s, x1, z1, lo, hi, depth + 1)
    return ra + rb, [wall, *wa, *wb]


def _block_perimeter(rng, x0, z0, x1, z1, rooms, p_door=0.5) -> list[Mesh]:
    """The block's four sides, with a door from each room to the corridor with probability
    ``p_door`` (at least one per block)."""
    sides = {  # side -> (a, b, [(start, end) of each room's edge along it])
        "s": ((x0, z0), (x1, z0), [(r[0] - x0, r[2] - x0) for r in rooms if r[1] == z0]),
        "n": ((x0, z1), (x1, z1), [(r[0] - x0, r[2] - x0) for r in rooms if r[3] == z1]),
        "w": ((x0, z0), (x0, z1), [(r[1] - z0, r[3] - z0) for r in rooms if r[0] == x0]),
        "e": ((x1, z0), (x1, z1), [(r[1] - z0, r[3] - z0) for r in rooms if r[2] == x1]),
    }
    doors = {k: [] for k in sides}
    for k, (_, _, edges) in sides.items():
        for s0, s1 in edges:
            if s1 - s0 > 2.0 and rng.random() < p_door:
                doors[k].append(rng.uniform(s0 + 1.0, s1 - 1.0))
    if not any(doors.values()):
        k = "s" if sides["s"][2] else "n"
        s0, s1 = max(sides[k][2], key=lambda e: e[1] - e[0])
        doors[k].append(0.5 * (s0 + s1))
    out = []
    for k, (a, b, _) in sides.items():
        out += _wall_with_doors(a, b, doors[k], rng)
    return out


def scan_like(
    seed: int = 0, size: tuple[float, float] = (125.0, 120.0), floor_cell: float = 0.53
) -> Mesh:
    """Large third-party-style scene (~125 x 120 m, ~125k triangles), deterministic in ``seed``.

    Layout: 2.5 m corridors at z = 28, 58, 88 and x = 40, 80 cut the site into 12 blocks; 11
    are split into rooms (binary partition, 4 - 11 m) by single-sided walls with a 1 m door each,
    with doors to the corridors; the south-east block is an open hall holding a 15 x 12 m platform
    1 m up, reached by a 12 m ramp (4.8 degrees) and by 6 stairs of 1/6 m, and a 0.45 m stage
    with 3 steps. Only the south-west block has a (single-sided, down-facing) ceiling.
    """
    rng = np.random.default_rng(seed)
    sx, sz = size
    parts: list[Mesh] = []

    # floor: ~0.5 m quads, gentle shape + a few mm of scanner noise
    nx, nz = int(round(sx / floor_cell)), int(round(sz / floor_cell))
    fv, ff = _grid(0.0, 0.0, sx, sz, nx, nz, _scan_floor_height)
    fv[:, 1] += np.clip(rng.normal(0.0, 0.003, len(fv)), -0.01, 0.01)
    parts.append((fv, ff))

    # outer walls
    corners = [(0.0, 0.0), (sx, 0.0), (sx, sz), (0.0, sz)]
    for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
        parts.append(_wall(a, b, rng))

    xs = [(0.0, 40.0), (42.5, 80.0), (82.5, sx)]
    zs = [(0.0, 28.0), (30.5, 58.0), (60.5, 88.0), (90.5, sz)]
    for bx0, bx1 in xs:
        for bz0, bz1 in zs:
            if bx0 == xs[-1][0] and bz0 == zs[0][0]:
                continue  # the hall
            rooms, inner = _split_rooms(rng, bx0, bz0, bx1, bz1)
            for a, b, doors in inner:
                parts += _wall_with_doors(a, b, doors, rng)
            parts += _block_perimeter(rng, bx0, bz0, bx1, bz1, rooms)
            for r in rooms:
                for _ in range(int(rng.integers(0, 4))):
                    if (piece := _furniture(rng, *r)) is not None:
                        parts.append(piece)

    # the hall (x 82.5 - 125, z 0 - 28): perimeter with two 3 m openings
    hx0, hz0, hx1, hz1 = xs[-1][0], zs[0][0], xs[-1][1], zs[0][1]
    parts += _wall_with_doors((hx0, hz0), (hx0, hz1), [14.0], rng, width=3.0)
    parts += _wall_with_doors((hx0, hz1), (hx1, hz1), [10.0, 30.0], rng, width=3.0)
    hh = float(_scan_floor_height(110.0, 10.0))  # flat there (past the rise)
    top = hh + 1.0
    # platform: open-bottom box (a scan sees only its top and sides)
    pv, pf = _box([105.0, hh - 0.05, 4.0], [120.0, top, 16.0])
    n = np.cross(pv[pf[:, 1]] - pv[pf[:, 0]], pv[pf[:, 2]] - pv[pf[:, 0]])
    parts.append((pv, pf[n[:, 1] > -0.5]))
    # ramp up its west side: x 93 -> 105, z 6 - 8.5; a sloped top and two side triangles
    r0, r1, za, zb = 93.0, 105.0, 6.0, 8.5
    parts.append(_quad((r0, hh, za), (r0, hh, zb), (r1, top, zb), (r1, top, za)))
    parts.append(_as_mesh([(r0, hh, za), (r1, top, za), (r1, hh - 0.05, za)], [[0, 1, 2]]))
    parts.append(_as_mesh([(r0, hh, zb), (r1, hh - 0.05, zb), (r1, top, zb)], [[0, 1, 2]]))
    # stairs down its north side: 5 steps (0.3 m run) + the floor = 6 rises of 1/6 m
    for k in range(5):
        parts.append(
            _box([110.0, hh - 0.05, 16.0 + 0.3 * k], [112.0, top - (k + 1) / 6, 16.3 + 0.3 * k])
        )
    # a 0.45 m stage with 3 steps of 0.15 m
    parts.append(_box([88.0, hh - 0.05, 20.0], [94.0, hh + 0.45, 24.0]))
    for k in range(2):
        parts.append(
            _box([90.0, hh - 0.05, 19.4 + 0.3 * k], [92.0, hh + 0.15 * (k + 1), 19.7 + 0.3 * k])
        )
    for _ in range(25):  # loose furniture in the hall, off the platform
        if (piece := _furniture(rng, 95.0, 18.0, 124.0, 27.5)) is not None:
            parts.append(piece)

    # a ceiling only over the south-west block (down-facing, single-sided, 4 x 4 m tiles)
    cv, cf = _grid(0.0, 0.0, 40.0, 28.0, 10, 7, lambda x, z: _scan_floor_height(x, z) + 2.6)
    parts.append((cv, cf[:, ::-1]))
    return _concat([p for p in parts if p is not None])


SCENES = {
    "house": bundled_house,
    "house20": house_20m,
    "plane200": flat_plane,
    "scan": scan_like,
}


def make_scene(name: str) -> Mesh:
    """One of `SCENES` by name."""
    return SCENES[name]()
