"""Test scenes for the FIHSim-v0 / habitat-sim navmesh parity harness (world frame: Y-up, metres).

Every generator returns a :class:`ParityScene`: world-frame ``vertices float64 [V, 3]``,
``faces int64 [F, 3]``, the floor heights at which the dense is_navigable grid and the top-down
views are taken (``levels``), and optional named query pairs with known answers.

Faces are oriented explicitly (``_Builder.quad(..., normal=...)``): floors and tops face +Y, the
single-sided wall quads face into their room, boxes face outwards. habitat-sim's Recast
rasterises every triangle whatever its winding (only walkability looks at the normal), FIHSim-v0
classifies surfaces by their normal, so the orientation is part of the scene.

Scenes:

- ``single_wall``: 10 x 10 m floor (2 triangles) and one single-sided vertical quad at x = 5,
  z in [0, 8], y in [0, 2.5]. habitat-sim answer: (2,0,2) -> (8,0,2) = 13.76 m, area 92.1 m^2.
- ``scan_like``: 12 x 10 m finely triangulated floor with +-5 mm height jitter, single-sided wall
  quads forming 4 rooms joined by 1 m doors, no ceiling; a table (one top quad at 0.75 m on four
  open-bottom 5 cm legs), a wall shelf (open-bottom box from 1.6 m to 2.0 m, so an agent of
  height 1.5 m fits under it), a 0.5 m platform (open-bottom box) reached by a 20 deg ramp and by
  3 stairs of 0.15 m (plus a 0.05 m last riser).
- ``simple_room_like``: closed 6 x 4 x 2.5 m room, floor / ceiling / 4 walls as closed 0.1 m
  thick boxes, a closed table box (0.75 m) and a closed couch box (0.45 m).
- ``house_000``: the bundled synthetic house, world-frame vertices exactly as
  :func:`habitat_fih.sim.scene.load_scene` returns them (whatever frame that loader applies).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
HOUSE_000 = REPO / "data" / "scene_datasets" / "fih_synthetic" / "house_000.glb"

SCENE_NAMES = ("single_wall", "scan_like", "simple_room_like", "house_000")


@dataclass
class ParityScene:
    name: str
    vertices: np.ndarray  # float64 [V, 3], world frame (Y-up, metres)
    faces: np.ndarray  # int64 [F, 3]
    levels: list[float]  # floor heights for the dense grid and the top-down views
    named_pairs: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    known: dict[str, float] = field(default_factory=dict)  # known habitat-sim answers
    note: str = ""


class _Builder:
    """Accumulates triangles; every primitive is oriented by an explicit normal direction."""

    def __init__(self) -> None:
        self.v: list[np.ndarray] = []
        self.f: list[np.ndarray] = []
        self.n = 0

    def add(self, verts: np.ndarray, faces: np.ndarray, normal=None) -> None:
        verts = np.asarray(verts, dtype=np.float64)
        faces = np.asarray(faces, dtype=np.int64).copy()
        if normal is not None:
            tri = verts[faces]
            nrm = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            flip = nrm @ np.asarray(normal, dtype=np.float64) < 0
            faces[flip] = faces[flip][:, ::-1]
        self.v.append(verts)
        self.f.append(faces + self.n)
        self.n += len(verts)

    def quad(self, p0, p1, p2, p3, normal) -> None:
        """Planar quad p0-p1-p2-p3 (in order around it), two triangles facing ``normal``."""
        self.add(np.array([p0, p1, p2, p3]), np.array([[0, 1, 2], [0, 2, 3]]), normal)

    def tri(self, p0, p1, p2, normal) -> None:
        self.add(np.array([p0, p1, p2]), np.array([[0, 1, 2]]), normal)

    def box(self, lo, hi, skip: tuple[str, ...] = ()) -> None:
        """Axis-aligned box with outward faces; ``skip`` drops faces ("top", "bottom", "-x", "+x", "-z", "+z")."""
        (x0, y0, z0), (x1, y1, z1) = lo, hi
        sides = {
            "top": ([(x0, y1, z0), (x1, y1, z0), (x1, y1, z1), (x0, y1, z1)], (0, 1, 0)),
            "bottom": ([(x0, y0, z0), (x1, y0, z0), (x1, y0, z1), (x0, y0, z1)], (0, -1, 0)),
            "-x": ([(x0, y0, z0), (x0, y1, z0), (x0, y1, z1), (x0, y0, z1)], (-1, 0, 0)),
            "+x": ([(x1, y0, z0), (x1, y1, z0), (x1, y1, z1), (x1, y0, z1)], (1, 0, 0)),
            "-z": ([(x0, y0, z0), (x1, y0, z0), (x1, y1, z0), (x0, y1, z0)], (0, 0, -1)),
            "+z": ([(x0, y0, z1), (x1, y0, z1), (x1, y1, z1), (x0, y1, z1)], (0, 0, 1)),
        }
        for key, (pts, nrm) in sides.items():
            if key not in skip:
                self.quad(*pts, normal=nrm)

    def wall_x(self, x: float, z0: float, z1: float, h: float, facing: float) -> None:
        """Single-sided vertical quad at ``x`` over z in [z0, z1], y in [0, h], normal (facing, 0, 0)."""
        self.quad((x, 0, z0), (x, 0, z1), (x, h, z1), (x, h, z0), normal=(facing, 0, 0))

    def wall_z(self, z: float, x0: float, x1: float, h: float, facing: float) -> None:
        self.quad((x0, 0, z), (x1, 0, z), (x1, h, z), (x0, h, z), normal=(0, 0, facing))

    def mesh(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.v), np.concatenate(self.f)


def single_wall() -> ParityScene:
    b = _Builder()
    b.quad((0, 0, 0), (10, 0, 0), (10, 0, 10), (0, 0, 10), normal=(0, 1, 0))
    b.wall_x(5.0, 0.0, 8.0, 2.5, facing=1.0)
    v, f = b.mesh()
    return ParityScene(
        "single_wall",
        v,
        f,
        levels=[0.0],
        named_pairs={"around_wall": ([2.0, 0.0, 2.0], [8.0, 0.0, 2.0])},
        known={"around_wall_geodesic": 13.76, "navigable_area": 92.1},
    )


def scan_like(seed: int = 0) -> ParityScene:
    rng = np.random.default_rng(seed)
    b = _Builder()
    # floor: 12 x 10 m grid of 0.1 m squares, each split into 2 triangles, y jittered by +-5 mm
    sx, sz, step = 12.0, 10.0, 0.1
    nx, nz = round(sx / step), round(sz / step)
    gx, gz = np.meshgrid(np.linspace(0, sx, nx + 1), np.linspace(0, sz, nz + 1))
    gy = rng.uniform(-0.005, 0.005, gx.shape)
    verts = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)
    idx = np.arange((nz + 1) * (nx + 1)).reshape(nz + 1, nx + 1)
    a, bb, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]
    diag = rng.random(a.shape) < 0.5  # random diagonal direction, like a scan's mesh
    t1 = np.where(diag[..., None], np.stack([a, bb, c], -1), np.stack([a, bb, d], -1))
    t2 = np.where(diag[..., None], np.stack([a, c, d], -1), np.stack([bb, c, d], -1))
    b.add(verts, np.concatenate([t1.reshape(-1, 3), t2.reshape(-1, 3)]), normal=(0, 1, 0))
    # walls: single-sided quads, 2.5 m, facing into the rooms; 4 rooms, 1 m doors
    h = 2.5
    b.wall_x(0.0, 0.0, sz, h, facing=1.0)
    b.wall_x(sx, 0.0, sz, h, facing=-1.0)
    b.wall_z(0.0, 0.0, sx, h, facing=1.0)
    b.wall_z(sz, 0.0, sx, h, facing=-1.0)
    for z0, z1 in ((0.0, 2.0), (3.0, 7.0), (8.0, 10.0)):  # x = 6, doors z 2-3 and 7-8
        b.wall_x(6.0, z0, z1, h, facing=-1.0)
    for x0, x1 in ((0.0, 2.0), (3.0, 9.0), (10.0, 12.0)):  # z = 5, doors x 2-3 and 9-10
        b.wall_z(5.0, x0, x1, h, facing=-1.0)
    # room A (x 0-6, z 0-5): table, a single top quad at 0.75 m on 4 open-bottom 5 cm legs
    tx0, tx1, tz0, tz1, th = 2.4, 3.6, 2.1, 2.9, 0.75
    b.quad((tx0, th, tz0), (tx1, th, tz0), (tx1, th, tz1), (tx0, th, tz1), normal=(0, 1, 0))
    for lx in (tx0 + 0.05, tx1 - 0.10):
        for lz in (tz0 + 0.05, tz1 - 0.10):
            b.box((lx, 0.0, lz), (lx + 0.05, th, lz + 0.05), skip=("top", "bottom"))
    # room C (x 0-6, z 5-10): wall shelf, open-bottom box y 1.6-2.0 (agent height 1.5 passes under)
    b.box((1.0, 1.6, 9.4), (3.0, 2.0, 9.9), skip=("bottom",))
    # room B (x 6-12, z 0-5): 0.5 m platform, 20 deg ramp up to it along +x, 3 stairs along -z
    px0, px1, pz0, pz1, ph = 9.0, 11.0, 1.0, 3.5, 0.5
    b.box((px0, 0.0, pz0), (px1, ph, pz1), skip=("bottom",))
    rx0 = px0 - ph / math.tan(math.radians(20.0))
    rz0, rz1 = 1.0, 2.0
    b.quad((rx0, 0, rz0), (px0, ph, rz0), (px0, ph, rz1), (rx0, 0, rz1), normal=(-1, 2.7, 0))
    b.tri((rx0, 0, rz0), (px0, 0, rz0), (px0, ph, rz0), normal=(0, 0, -1))
    b.tri((rx0, 0, rz1), (px0, 0, rz1), (px0, ph, rz1), normal=(0, 0, 1))
    sx0, sx1, tread = 9.5, 10.5, 0.3
    for k, top in enumerate((0.45, 0.30, 0.15)):
        z0 = pz1 + k * tread
        b.box((sx0, 0.0, z0), (sx1, top, z0 + tread), skip=("bottom",))
    v, f = b.mesh()
    return ParityScene(
        "scan_like",
        v,
        f,
        levels=[0.0, 0.5],
        named_pairs={
            "room_A_to_D": ([1.0, 0.0, 1.0], [11.0, 0.0, 9.0]),
            "floor_to_platform": ([7.0, 0.0, 0.5], [10.5, 0.5, 2.5]),
            "under_shelf": ([2.0, 0.0, 9.65], [4.5, 0.0, 7.0]),
        },
    )


def simple_room_like() -> ParityScene:
    b = _Builder()
    t, w, d, h = 0.1, 6.0, 4.0, 2.5
    b.box((-t, -t, -t), (w + t, 0.0, d + t))  # floor slab
    b.box((-t, h, -t), (w + t, h + t, d + t))  # ceiling slab
    b.box((-t, 0.0, -t), (0.0, h, d + t))  # walls
    b.box((w, 0.0, -t), (w + t, h, d + t))
    b.box((0.0, 0.0, -t), (w, h, 0.0))
    b.box((0.0, 0.0, d), (w, h, d + t))
    b.box((1.0, 0.0, 1.5), (2.2, 0.75, 2.3))  # table
    b.box((3.5, 0.0, 3.0), (5.5, 0.45, 3.9))  # couch
    v, f = b.mesh()
    return ParityScene(
        "simple_room_like",
        v,
        f,
        levels=[0.0],
        named_pairs={"across_room": ([0.5, 0.0, 0.5], [5.5, 0.0, 2.5])},
    )


def floor_levels(v: np.ndarray, f: np.ndarray, hints: list[float] | None = None) -> list[float]:
    """Floor heights: the ``hints`` (e.g. a scene's metadata) that carry at least 20 % of the
    mesh's up-facing area within +-5 cm; otherwise the height with the most up-facing area."""
    tri = v[f]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(n, axis=1)
    up = n[:, 1] > 0.9 * 2 * np.maximum(area, 1e-12)
    y, a = tri[up][:, :, 1].mean(axis=1), area[up]
    ok = [h for h in hints or [] if a[np.abs(y - h) <= 0.05].sum() >= 0.2 * a.sum()]
    if ok:
        return ok
    bins = np.round(y / 0.05) * 0.05
    uniq, inv = np.unique(bins, return_inverse=True)
    return [float(uniq[np.argmax(np.bincount(inv, weights=a))])]


def house_000(path: Path = HOUSE_000) -> ParityScene:
    from habitat_fih.sim.scene import load_scene

    mesh = load_scene(path)
    v = np.asarray(mesh.vertices, dtype=np.float64)
    f = np.asarray(mesh.faces, dtype=np.int64)
    hints = []
    meta = path.with_suffix(".json")
    if meta.is_file():
        hints = [float(x["floor_y"]) for x in json.loads(meta.read_text()).get("levels") or []]
    levels = floor_levels(v, f, hints)
    src = f"{meta.name} floor_y" if levels == hints else "the mesh's largest up-facing area"
    lo, hi = v.min(axis=0), v.max(axis=0)
    return ParityScene(
        "house_000",
        v,
        f,
        levels=levels,
        note=(
            f"vertices from habitat_fih.sim.scene.load_scene; bounds {np.round(lo, 3).tolist()} .. "
            f"{np.round(hi, 3).tolist()}; levels {levels} from {src}"
        ),
    )


def make_scene(name: str) -> ParityScene:
    gens = {
        "single_wall": single_wall,
        "scan_like": scan_like,
        "simple_room_like": simple_room_like,
        "house_000": house_000,
    }
    if name not in gens:
        raise ValueError(f"unknown scene {name!r}; expected one of {', '.join(gens)}")
    return gens[name]()
