"""Procedural multi-room houses (one or two storeys) exported as Z-up .glb plus a metadata JSON.

Houses are generated in habitat's world frame (Y-up, metres): ``House.scene`` and the metadata
JSON are in world coordinates. The .glb is written Z-up like an MP3D file (file (x, y, z) =
world (x, -z, y)), because habitat-sim loads a .glb without a stage config as Z-up (gravity -Z);
loading it that way (habitat-sim, or :func:`habitat_fih.sim.scene.load_scene`) gives back the
generator's world coordinates.

Layout (x along the house, z across it, metres, floor of the ground storey at y = 0):

* a west block of two rooms spanning the whole depth — the living room (north, ``z < dn``) and a
  kitchen or dining room (south) joined by a wide opening;
* east of it a hallway (``dn <= z <= dn + cw``) with rooms on both sides (bedrooms, bathrooms, an
  office, the kitchen or dining room), each with a doorway to the hallway, some also to a
  neighbour;
* two-storey houses repeat the east part upstairs (bedrooms, bathroom, office) and have a
  U-shaped staircase in a slot on the north side of the hallway: two flights of 8 treads
  (0.17 m risers, 0.28 m treads, 1.25 m lanes) around a half landing, 18 risers = 3.06 m
  storey height. The upstairs floor is open over the whole stairwell except the top landing, so
  every tread has the full upstairs ceiling height above it.

Surfaces carry procedural textures (:mod:`habitat_fih.datasets.textures`); each room has its own
wall paint and floor (wood, tiles, carpet, marble). Ceilings and roofs are one-sided, downward
facing quads so the roof is not a walkable surface. Furniture comes from
:mod:`habitat_fih.datasets.furniture`, placed against walls (or mid-room for dining tables) clear of
doorways; each piece is one semantic object with a label, a colour name and a 3-D box.

Geometry is merged per material (one glTF mesh per material), so files stay small. Everything is
deterministic from ``HouseSpec.seed``. For benchmarks, ``HouseSpec.subdivisions`` splits every
triangle into 4**n and ``HouseSpec.target_triangles`` subdivides the largest parts until the house
has at least that many triangles (geometry unchanged either way).
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np
import trimesh

from habitat_fih.datasets import furniture as fur
from habitat_fih.datasets.textures import pattern, texture_image
from habitat_fih.sim.frames import Z_UP
from habitat_fih.utils import atomic_write_bytes

__all__ = [
    "CEILING_HEIGHT", "STOREY_HEIGHT", "RISER", "TREAD", "HouseSpec", "House", "Room", "SceneObject",
    "make_house", "export_house", "glb_file_scene", "load_metadata",
]

CEILING_HEIGHT = 2.8
RISER = 0.17
TREAD = 0.28
STEPS_PER_FLIGHT = 8  # treads per flight; 2 flights + landing riser + top riser = 18 risers
STOREY_HEIGHT = round(RISER * (2 * STEPS_PER_FLIGHT + 2), 4)  # 3.06
LANE = 1.25
WALL = 0.12
DOOR_HEIGHT = 2.1
FLOOR_THICKNESS = 0.1
METADATA_VERSION = 1

_FLOOR_KINDS = {
    "bedroom": (("carpet", "wood"), ((0.62, 0.55, 0.5), (0.5, 0.55, 0.62), (0.6, 0.42, 0.3))),
    "living room": (("wood", "carpet"), ((0.6, 0.42, 0.26), (0.7, 0.6, 0.45), (0.45, 0.3, 0.2))),
    "kitchen": (("tiles", "marble"), ((0.85, 0.85, 0.82), (0.7, 0.72, 0.75), (0.8, 0.7, 0.55))),
    "dining room": (("wood", "tiles"), ((0.62, 0.44, 0.28), (0.75, 0.68, 0.55))),
    "bathroom": (("tiles", "marble"), ((0.9, 0.9, 0.92), (0.6, 0.75, 0.8), (0.82, 0.82, 0.78))),
    "office": (("carpet", "wood"), ((0.45, 0.47, 0.5), (0.55, 0.4, 0.25))),
    "hallway": (("wood", "tiles"), ((0.58, 0.4, 0.25), (0.7, 0.7, 0.68))),
    "staircase": (("wood",), ((0.55, 0.38, 0.22),)),
}
_WALL_PAINTS = ((0.93, 0.91, 0.86), (0.85, 0.88, 0.9), (0.9, 0.85, 0.78), (0.8, 0.86, 0.8),
                (0.92, 0.85, 0.85), (0.88, 0.88, 0.88), (0.95, 0.93, 0.8), (0.78, 0.82, 0.9))


@dataclass(frozen=True)
class HouseSpec:
    """Generator parameters. ``storeys`` None draws 1 or 2 (2 with probability ``p_two_storeys``)."""

    seed: int = 0
    storeys: int | None = None
    p_two_storeys: float = 0.4
    texture_size: int = 128
    subdivisions: int = 0
    target_triangles: int = 0

    def __post_init__(self) -> None:
        if self.storeys not in (None, 1, 2):
            raise ValueError(f"HouseSpec.storeys must be None, 1 or 2; got {self.storeys!r}")
        if self.subdivisions < 0:
            raise ValueError(f"HouseSpec.subdivisions must be >= 0; got {self.subdivisions}")


@dataclass
class Room:
    """An axis-aligned room ``rect = (x0, z0, x1, z1)`` on ``level`` with floor height ``floor_y``."""

    id: int
    name: str
    level: int
    rect: tuple[float, float, float, float]
    floor_y: float

    @property
    def polygon(self) -> list[list[float]]:
        x0, z0, x1, z1 = self.rect
        return [[x0, z0], [x1, z0], [x1, z1], [x0, z1]]

    @property
    def area(self) -> float:
        x0, z0, x1, z1 = self.rect
        return (x1 - x0) * (z1 - z0)


@dataclass
class Door:
    """An opening on the wall line ``axis`` ("x": line z = coord, "z": line x = coord) over [a0, a1]."""

    level: int
    axis: str
    coord: float
    a0: float
    a1: float
    rooms: tuple[int, int]
    lintel: bool = True


@dataclass
class SceneObject:
    """A semantic object: label, colour name, room id, level and world box ``bmin``/``bmax`` [3]."""

    id: int
    label: str
    color: str
    room: int
    level: int
    bmin: list[float]
    bmax: list[float]


@dataclass
class House:
    """A generated house: the trimesh scene and its semantics."""

    spec: HouseSpec
    scene: trimesh.Scene
    rooms: list[Room]
    doors: list[Door]
    objects: list[SceneObject]
    levels: list[dict]
    stairs: list[dict] = field(default_factory=list)

    @property
    def num_triangles(self) -> int:
        return int(sum(len(g.faces) for g in self.scene.geometry.values()))

    def metadata(self) -> dict:
        """JSON-serialisable metadata (rooms with polygons, objects with boxes, levels, doors, stairs)."""
        r4 = lambda v: [round(float(x), 4) for x in v]  # noqa: E731
        return {
            "version": METADATA_VERSION,
            "generator": "habitat_fih.datasets.houses",
            "spec": asdict(self.spec),
            "levels": self.levels,
            "rooms": [{"id": r.id, "name": r.name, "level": r.level, "floor_y": r.floor_y,
                       "rect": r4(r.rect), "polygon": [r4(p) for p in r.polygon]} for r in self.rooms],
            "doors": [{"level": d.level, "axis": d.axis, "coord": d.coord, "span": r4((d.a0, d.a1)),
                       "rooms": list(d.rooms)} for d in self.doors],
            "objects": [{"id": o.id, "label": o.label, "color": o.color, "room": o.room, "level": o.level,
                         "bbox": {"min": r4(o.bmin), "max": r4(o.bmax)}} for o in self.objects],
            "stairs": self.stairs,
            "num_triangles": self.num_triangles,
        }


# ----------------------------------------------------------------------------- mesh building
class _Builder:
    """Collects textured parts, merged per material key at the end (deterministic order)."""

    def __init__(self, seed: int, texture_size: int, subdivisions: int) -> None:
        self.seed = seed
        self.size = texture_size
        self.sub = subdivisions
        self.parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        self.textures: dict[str, tuple[str, tuple[float, float, float]]] = {}

    def material(self, kind: str, rgb: tuple[float, float, float]) -> str:
        key = f"{kind}_{int(rgb[0] * 255):02x}{int(rgb[1] * 255):02x}{int(rgb[2] * 255):02x}"
        self.textures.setdefault(key, (kind, tuple(float(c) for c in rgb)))
        return key

    def add(self, key: str, mesh: trimesh.Trimesh, tile: float) -> None:
        v, f = np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)
        for _ in range(self.sub):
            v, f = trimesh.remesh.subdivide(v, f)
        self.parts.setdefault(key, []).append((v, f, tile))

    @staticmethod
    def _uv(v: np.ndarray, f: np.ndarray, tile: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unmerged vertices, faces and planar UVs (projection on each face's dominant axis plane)."""
        tri = v[f.reshape(-1)]  # [3F, 3]
        n = np.cross(tri[1::3] - tri[0::3], tri[2::3] - tri[0::3])
        axis = np.repeat(np.argmax(np.abs(n), axis=1), 3)
        uv = np.where((axis == 0)[:, None], tri[:, [2, 1]],
                      np.where((axis == 1)[:, None], tri[:, [0, 2]], tri[:, [0, 1]])) / tile
        return tri, np.arange(len(tri)).reshape(-1, 3), uv

    def refine_to(self, target: int) -> None:
        """Subdivide parts (largest first, each once per round) until there are ``target`` triangles."""
        count = sum(len(f) for parts in self.parts.values() for _, f, _ in parts)
        while count < target:
            order = sorted(((k, i) for k, parts in self.parts.items() for i in range(len(parts))),
                           key=lambda ki: -_area(*self.parts[ki[0]][ki[1]][:2]))
            for k, i in order:
                v, f, tile = self.parts[k][i]
                self.parts[k][i] = (*trimesh.remesh.subdivide(v, f), tile)
                count += 3 * len(f)
                if count >= target:
                    return

    def box(self, key: str, lo: tuple[float, float, float], hi: tuple[float, float, float], tile: float) -> None:
        lo_a, hi_a = np.asarray(lo, float), np.asarray(hi, float)
        ext = hi_a - lo_a
        if np.any(ext <= 1e-6):
            return
        self.add(key, trimesh.creation.box(extents=ext, transform=trimesh.transformations.translation_matrix(
            (lo_a + hi_a) / 2)), tile)

    def ceiling(self, key: str, rect: tuple[float, float, float, float], y: float, tile: float) -> None:
        x0, z0, x1, z1 = rect
        v = np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]], dtype=np.float64)
        self.add(key, trimesh.Trimesh(v, np.array([[0, 1, 2], [0, 2, 3]]), process=False), tile)

    def scene(self) -> trimesh.Scene:
        scene = trimesh.Scene()
        for key, parts in self.parts.items():
            kind, rgb = self.textures[key]
            rng = np.random.default_rng([self.seed, zlib.crc32(key.encode())])
            image = texture_image(pattern(kind, rng, self.size), rgb)
            verts, faces, uvs, off = [], [], [], 0
            for v0, f0, tile in parts:
                v, f, uv = self._uv(v0, f0, tile)
                verts.append(v)
                faces.append(f + off)
                uvs.append(uv)
                off += len(v)
            material = trimesh.visual.material.PBRMaterial(
                name=key, baseColorTexture=image, metallicFactor=0.0, roughnessFactor=1.0)
            mesh = trimesh.Trimesh(np.concatenate(verts), np.concatenate(faces), process=False,
                                   visual=trimesh.visual.TextureVisuals(uv=np.concatenate(uvs), material=material))
            scene.add_geometry(mesh, geom_name=key, node_name=key)
        return scene


def _area(v: np.ndarray, f: np.ndarray) -> float:
    tri = v[f]
    return float(np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum() / 2)


# ----------------------------------------------------------------------------- layout
def _snap(v: float) -> float:
    return round(float(v), 2)


def _partition(length: float, n: int, rng: np.random.Generator, min_w: float) -> list[float]:
    """``n`` widths summing to ``length``, each at least ``min_w``."""
    extra = length - n * min_w
    weights = rng.dirichlet(np.full(n, 3.0))
    return [min_w + extra * float(w) for w in weights]


def _layout(spec: HouseSpec, rng: np.random.Generator) -> tuple[list[Room], list[Door], list[dict], list[dict]]:
    storeys = spec.storeys if spec.storeys is not None else (2 if rng.random() < spec.p_two_storeys else 1)
    cw = _snap(rng.uniform(1.35, 1.6))
    dn = _snap(rng.uniform(4.5, 5.0) if storeys == 2 else rng.uniform(3.4, 4.6))
    ds = _snap(rng.uniform(3.3, 4.5))
    depth = _snap(dn + cw + ds)
    lw = _snap(rng.uniform(4.5, 6.0))
    length = _snap(rng.uniform(8.0, 11.5))
    x_end = _snap(lw + length)
    rooms: list[Room] = []
    doors: list[Door] = []

    def room(name: str, level: int, rect: tuple[float, float, float, float]) -> Room:
        r = Room(len(rooms), name, level, tuple(_snap(c) for c in rect), round(level * STOREY_HEIGHT, 4))
        rooms.append(r)
        return r

    def door(level: int, axis: str, coord: float, lo: float, hi: float, a: Room, b: Room, width: float,
             lintel: bool = True) -> None:
        width = min(width, hi - lo - 0.3)
        m0, m1 = lo + 0.15 + width / 2, hi - 0.15 - width / 2
        mid = rng.uniform(m0, m1) if m1 > m0 else (lo + hi) / 2
        doors.append(Door(level, axis, _snap(coord), _snap(mid - width / 2), _snap(mid + width / 2),
                          (a.id, b.id), lintel))

    west_south = "kitchen" if rng.random() < 0.6 else "dining room"
    living = room("living room", 0, (0.0, 0.0, lw, dn))
    ws = room(west_south, 0, (0.0, dn, lw, depth))
    door(0, "x", dn, 0.0, lw, living, ws, float(rng.uniform(1.6, 2.4)), lintel=True)
    stairs: list[dict] = []
    slot_x: tuple[float, float] | None = None
    if storeys == 2:
        room_min = 2.3  # the slot leaves either no room or a full room on each side
        left = 0.0 if rng.random() < 0.3 else float(rng.uniform(room_min, length - 2 * LANE - room_min))
        if length - 2 * LANE - left < room_min:
            left = length - 2 * LANE
        s = _snap(lw + left)
        slot_x = (s, _snap(s + 2 * LANE))
    # room types per level
    if storeys == 1:
        types = ["bathroom", "bedroom", "bedroom"] + (["kitchen"] if west_south == "dining room" else [])
        pool = ["bedroom", "office", "bedroom", "bathroom", "bedroom", "office"]
    else:
        types = ["bathroom"] + (["kitchen"] if west_south == "dining room" else [])
        pool = ["office", "bedroom", "dining room" if west_south == "kitchen" else "bedroom", "office"]
    upper_types = ["bedroom", "bedroom", "bathroom"]
    upper_pool = ["bedroom", "office", "bedroom", "bathroom", "bedroom"]

    def side_rooms(level: int, z0: float, z1: float, with_slot: bool) -> list[tuple[float, float]]:
        spans: list[tuple[float, float]] = []
        segments = [(lw, x_end)]
        if with_slot and slot_x is not None:
            segments = [(lw, slot_x[0]), (slot_x[1], x_end)]
        for a, b in segments:
            seg = b - a
            if seg < 0.5:
                continue
            n = max(1, int(round(seg / float(rng.uniform(3.0, 3.8)))))
            while n > 1 and seg / n < 2.3:
                n -= 1
            x = a
            for w in _partition(seg, n, rng, min(2.3, seg)):
                spans.append((_snap(x), _snap(x + w)))
                x += w
            spans[-1] = (spans[-1][0], _snap(b))
        # absorb slivers next to the slot into the neighbour
        return spans

    hall_rooms: list[Room] = []
    for level in range(storeys):
        hall = room("hallway", level, (lw, dn, x_end, dn + cw))
        hall_rooms.append(hall)
        if level == 0:
            door(0, "z", lw, dn, dn + cw, hall, ws, 1.0)
        north = side_rooms(level, 0.0, dn, storeys == 2)
        south = side_rooms(level, dn + cw, depth, False)
        slots = [("n", a, b) for a, b in north] + [("s", a, b) for a, b in south]
        need, pool_l = (types, pool) if level == 0 else (upper_types, upper_pool)
        names = list(need)
        extra = [pool_l[int(i)] for i in rng.permutation(len(pool_l))]
        while len(names) < len(slots):
            names.append(extra[(len(names) - len(need)) % len(extra)])
        names = names[: len(slots)]
        order = rng.permutation(len(slots))
        side_list: list[tuple[str, Room]] = []
        for idx, (side, a, b) in enumerate(slots):
            name = names[int(np.nonzero(order == idx)[0][0])]
            rect = (a, 0.0, b, dn) if side == "n" else (a, dn + cw, b, depth)
            r = room(name, level, rect)
            side_list.append((side, r))
            zc = dn if side == "n" else dn + cw
            door(level, "x", zc, a, b, r, hall, float(rng.uniform(0.9, 1.0)))
        # occasional doors between neighbours on the same side (en-suite, connected rooms)
        for (sa, ra), (sb, rb) in zip(side_list[:-1], side_list[1:], strict=False):
            if sa == sb and abs(ra.rect[2] - rb.rect[0]) < 1e-6 and rng.random() < 0.25:
                z0, z1 = ra.rect[1], ra.rect[3]
                door(level, "z", ra.rect[2], z0 + 0.3, z1 - 0.3, ra, rb, 0.9)
    if slot_x is not None:
        s0, s1 = slot_x
        low = room("staircase", 0, (s0, 0.0, s1, dn))
        high = room("staircase", 1, (s0, 0.0, s1, dn))
        doors.append(Door(0, "x", dn, _snap(s0 + 0.15), _snap(s0 + LANE - 0.1), (low.id, hall_rooms[0].id)))
        doors.append(Door(1, "x", dn, _snap(s0 + LANE + 0.1), _snap(s1 - 0.15), (high.id, hall_rooms[1].id)))
        stairs.append({"rooms": [low.id, high.id], "rect": [s0, 0.0, s1, dn], "lanes": LANE,
                       "riser": RISER, "tread": TREAD, "bottom_level": 0, "top_level": 1})
    levels = [{"index": i, "floor_y": round(i * STOREY_HEIGHT, 4),
               "ceiling_y": round(i * STOREY_HEIGHT + CEILING_HEIGHT, 4)} for i in range(storeys)]
    return rooms, doors, levels, stairs


# ----------------------------------------------------------------------------- geometry
def _subtract(intervals: list[tuple[float, float]], cut: tuple[float, float]) -> list[tuple[float, float]]:
    out = []
    for a, b in intervals:
        if cut[1] <= a or cut[0] >= b:
            out.append((a, b))
            continue
        if cut[0] > a:
            out.append((a, cut[0]))
        if cut[1] < b:
            out.append((cut[1], b))
    return [(a, b) for a, b in out if b - a > 1e-6]


def _edges(r: Room) -> list[tuple[str, float, float, float, int]]:
    """(axis, coord, a0, a1, inward sign) of the room's four walls."""
    x0, z0, x1, z1 = r.rect
    return [("x", z0, x0, x1, 1), ("x", z1, x0, x1, -1), ("z", x0, z0, z1, 1), ("z", x1, z0, z1, -1)]


def _wall_box(b: _Builder, key: str, axis: str, coord: float, a0: float, a1: float, t0: float, t1: float,
              y0: float, y1: float) -> None:
    """Wall slab along ``axis`` between offsets ``t0..t1`` across the wall line."""
    if axis == "x":
        b.box(key, (a0, y0, coord + t0), (a1, y1, coord + t1), 1.5)
    else:
        b.box(key, (coord + t0, y0, a0), (coord + t1, y1, a1), 1.5)


def _build_structure(b: _Builder, rooms: list[Room], doors: list[Door], stairs: list[dict],
                     rng: np.random.Generator, storeys: int) -> dict[int, tuple[str, str]]:
    exterior = b.material("paint", (0.78, 0.76, 0.72))
    ceiling = b.material("paint", (0.95, 0.95, 0.94))
    h = WALL / 2
    looks: dict[int, tuple[str, str]] = {}
    for r in rooms:
        kinds, colors = _FLOOR_KINDS[r.name]
        floor_key = b.material(kinds[int(rng.integers(len(kinds)))], colors[int(rng.integers(len(colors)))])
        wall_key = b.material("paint", _WALL_PAINTS[int(rng.integers(len(_WALL_PAINTS)))])
        looks[r.id] = (floor_key, wall_key)
    for r in rooms:
        floor_key, wall_key = looks[r.id]
        y = r.floor_y
        x0, z0, x1, z1 = r.rect
        is_stair = r.name == "staircase"
        top = y + (STOREY_HEIGHT if (is_stair and r.level == 0) else CEILING_HEIGHT)
        # floor
        if is_stair and r.level == 1:
            b.box(floor_key, (x0, y - FLOOR_THICKNESS, z1 - 1.0), (x1, y, z1), 1.0)
        else:
            b.box(floor_key, (x0, y - FLOOR_THICKNESS, z0), (x1, y, z1), 1.0)
        if not (is_stair and r.level == 0):
            b.ceiling(ceiling, r.rect, y + CEILING_HEIGHT, 2.0)
        same_level = [o for o in rooms if o.level == r.level and o.id != r.id]
        for axis, coord, a0, a1, sign in _edges(r):
            pieces = [(a0, a1)]
            lintels = []
            for d in doors:
                if d.level == r.level and d.axis == axis and abs(d.coord - coord) < 1e-6 and d.a1 > a0 and d.a0 < a1:
                    pieces = _subtract(pieces, (d.a0, d.a1))
                    if d.lintel:
                        lintels.append((max(d.a0, a0), min(d.a1, a1)))
            t0, t1 = (0.0, h) if sign > 0 else (-h, 0.0)
            for p0, p1 in pieces:
                _wall_box(b, wall_key, axis, coord, p0 - (h if p0 == a0 else 0), p1 + (h if p1 == a1 else 0),
                          t0, t1, y, top)
            for p0, p1 in lintels:
                _wall_box(b, wall_key, axis, coord, p0, p1, t0, t1, y + DOOR_HEIGHT, top)
            # exterior side: parts of this edge with no room on the other side
            outside = [(a0, a1)]
            for o in same_level:
                for axis2, coord2, b0, b1, sign2 in _edges(o):
                    if axis2 == axis and abs(coord2 - coord) < 1e-6 and sign2 == -sign:
                        outside = _subtract(outside, (b0, b1))
            for p0, p1 in outside:
                _wall_box(b, exterior, axis, coord, p0 - h, p1 + h, -t1, -t0, y, top)
    for st in stairs:
        _build_stairs(b, st, looks)
    return looks


def _build_stairs(b: _Builder, st: dict, looks: dict[int, tuple[str, str]]) -> None:
    s0, z0, s1, z1 = st["rect"]
    wood = b.material("wood", (0.5, 0.34, 0.2))
    wall_key = looks[st["rooms"][0]][1]
    rail = b.material("metal", (0.3, 0.3, 0.32))
    zb = z1 - 1.0  # end of the bottom landing
    zm = zb - STEPS_PER_FLIGHT * TREAD  # start of the half landing
    for i in range(1, STEPS_PER_FLIGHT + 1):  # flight 1 (lane A, going -z)
        b.box(wood, (s0, 0.0, zb - TREAD * i), (s0 + LANE, RISER * i, zb - TREAD * (i - 1)), 0.5)
    landing_y = RISER * (STEPS_PER_FLIGHT + 1)
    b.box(wood, (s0, 0.0, z0), (s1, landing_y, zm), 0.5)
    for j in range(1, STEPS_PER_FLIGHT + 1):  # flight 2 (lane B, going +z)
        b.box(wood, (s0 + LANE, 0.0, zm + TREAD * (j - 1)), (s1, landing_y + RISER * j, zm + TREAD * j), 0.5)
    # central wall between the flights, rising to a railing above the upstairs floor
    b.box(wall_key, (s0 + LANE - 0.04, 0.0, zm), (s0 + LANE + 0.04, STOREY_HEIGHT + 0.9, zb), 1.5)
    # railing along the top landing's edge over flight 1
    b.box(rail, (s0, STOREY_HEIGHT, zb - 0.03), (s0 + LANE, STOREY_HEIGHT + 0.9, zb + 0.02), 1.0)


def _place_parts(b: _Builder, piece: fur.Piece, to_world, texture_rng: np.random.Generator,
                 main_color: str) -> tuple[np.ndarray, np.ndarray]:
    lo_all, hi_all = np.full(3, np.inf), np.full(3, -np.inf)
    for part in piece.parts:
        if part.role == "main":
            rgb = fur.COLORS[main_color]
        elif part.role.startswith("c:"):
            rgb = fur.COLORS[part.role[2:]]
        else:
            rgb = fur.FIXED_COLORS[part.role]
        key = b.material(part.kind or "plastic", rgb)
        c, s = to_world(np.asarray(part.center, float), np.asarray(part.size, float))
        lo, hi = c - s / 2, c + s / 2
        lo_all, hi_all = np.minimum(lo_all, lo), np.maximum(hi_all, hi)
        if part.shape == "box":
            b.box(key, tuple(lo), tuple(hi), 0.6)
            continue
        if part.shape == "cylinder":
            mesh = trimesh.creation.cylinder(radius=0.5, height=1.0, sections=12)
            mesh.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (1, 0, 0)))
        elif part.shape == "cone":
            mesh = trimesh.creation.cone(radius=0.5, height=1.0, sections=12)
            mesh.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, (1, 0, 0)))
            mesh.apply_translation((0, -0.5, 0))
        else:
            mesh = trimesh.creation.icosphere(subdivisions=1, radius=0.5)
        mesh.apply_scale(s)
        mesh.apply_translation(c)
        b.add(key, mesh, 0.4)
    return lo_all, hi_all


def _furnish(b: _Builder, rooms: list[Room], doors: list[Door], rng: np.random.Generator,
             skip_optional: bool) -> list[SceneObject]:
    objects: list[SceneObject] = []
    for r in rooms:
        x0, z0, x1, z1 = r.rect
        ix0, iz0, ix1, iz1 = x0 + WALL / 2, z0 + WALL / 2, x1 - WALL / 2, z1 - WALL / 2
        if r.name == "staircase":
            continue
        blocked: list[tuple[float, float, float, float]] = []
        for d in doors:
            if d.level != r.level or r.id not in d.rooms:
                continue
            if d.axis == "x":
                blocked.append((d.a0 - 0.25, d.coord - 1.1, d.a1 + 0.25, d.coord + 1.1))
            else:
                blocked.append((d.coord - 1.1, d.a0 - 0.25, d.coord + 1.1, d.a1 + 0.25))
        if r.name == "hallway":  # keep the hallway floor clear: wall-mounted things only
            blocked.append((ix0, iz0 + 0.06, ix1, iz1 - 0.06))
        placed: list[tuple[float, float, float, float]] = []
        wall_placed: list[tuple[float, float, float, float]] = []
        for group in fur.room_groups(r.name, r.area, rng):
            if skip_optional and not group.required:
                continue
            spot = _find_spot(group, (ix0, iz0, ix1, iz1), blocked, wall_placed if group.elevated else placed,
                              rng)
            if spot is None:
                continue
            rect, local_to_world = spot

            def to_world(c: np.ndarray, s: np.ndarray, f=local_to_world, y=r.floor_y):
                wc, ws = f(c, s)
                return wc + np.array([0.0, y, 0.0]), ws

            (wall_placed if group.elevated else placed).append(rect)
            for piece in group.pieces:
                lo, hi = _place_parts(b, piece, to_world, rng, piece.color)
                objects.append(SceneObject(len(objects), piece.label, piece.color, r.id, r.level,
                                           [float(v) for v in lo], [float(v) for v in hi]))
    return objects


def _find_spot(group: fur.Group, interior: tuple[float, float, float, float],
               blocked: list[tuple[float, float, float, float]], placed: list[tuple[float, float, float, float]],
               rng: np.random.Generator, tries: int = 40):
    ix0, iz0, ix1, iz1 = interior
    w, d = group.w, group.d

    def overlaps(rect, others, margin: float) -> bool:
        return any(rect[0] < o[2] + margin and rect[2] > o[0] - margin and rect[1] < o[3] + margin
                   and rect[3] > o[1] - margin for o in others)

    for _ in range(tries):
        if group.centre:
            rot = int(rng.integers(2)) * 2  # 0: along x, 2: rotated 90 deg ... encoded as side below
            side = ("n", "w")[rot // 2]
            gw, gd = (w, d) if side == "n" else (d, w)
            if ix1 - ix0 < gw + 1.2 or iz1 - iz0 < gd + 1.2:
                continue
            cx = rng.uniform(ix0 + 0.6 + gw / 2, ix1 - 0.6 - gw / 2)
            cz = rng.uniform(iz0 + 0.6 + gd / 2, iz1 - 0.6 - gd / 2)
            rect = (cx - gw / 2, cz - gd / 2, cx + gw / 2, cz + gd / 2)
            origin = (cx, cz)
        else:
            side = ("n", "s", "w", "e")[int(rng.integers(4))]
            along = ix1 - ix0 if side in ("n", "s") else iz1 - iz0
            if along < w + 0.1:
                continue
            t = rng.uniform(w / 2 + 0.05, along - w / 2 - 0.05)
            if side == "n":
                rect = (ix0 + t - w / 2, iz0, ix0 + t + w / 2, iz0 + d)
                origin = (ix0 + t, iz0)
            elif side == "s":
                rect = (ix0 + t - w / 2, iz1 - d, ix0 + t + w / 2, iz1)
                origin = (ix0 + t, iz1)
            elif side == "w":
                rect = (ix0, iz0 + t - w / 2, ix0 + d, iz0 + t + w / 2)
                origin = (ix0, iz0 + t)
            else:
                rect = (ix1 - d, iz0 + t - w / 2, ix1, iz0 + t + w / 2)
                origin = (ix1, iz0 + t)
        if rect[0] < ix0 - 1e-6 or rect[2] > ix1 + 1e-6 or rect[1] < iz0 - 1e-6 or rect[3] > iz1 + 1e-6:
            continue
        if overlaps(rect, blocked, 0.0):
            continue
        if overlaps(rect, placed, 0.15 if not group.elevated else 0.1):
            continue
        ox, oz = origin
        gd_local = d if not group.centre else d

        def to_world(c: np.ndarray, s: np.ndarray, side=side, ox=ox, oz=oz, gdl=gd_local):
            lx, ly, lz = c
            if group.centre:
                lz = lz - gdl / 2  # centre groups: local z measured from the group's back edge
            if side == "n":  # wall at z = iz0, room towards +z
                return np.array([ox + lx, ly, oz + lz]), s
            if side == "s":  # wall at z = iz1, room towards -z
                return np.array([ox - lx, ly, oz - lz]), s
            if side == "w":  # wall at x = ix0, room towards +x
                return np.array([ox + lz, ly, oz - lx]), s[[2, 1, 0]]
            return np.array([ox - lz, ly, oz + lx]), s[[2, 1, 0]]

        return rect, to_world
    return None


def make_house(spec: HouseSpec, check_navigable: bool = True) -> House:
    """Generate the house of ``spec`` (deterministic). With ``check_navigable`` every room is checked to
    hold navigable floor connected to the rest (furniture is re-drawn, then reduced, if not)."""
    rng = np.random.default_rng(spec.seed)
    rooms, doors, levels, stairs = _layout(spec, rng)
    storeys = len(levels)
    attempts = 6 if check_navigable else 1
    for attempt in range(attempts):
        b = _Builder(spec.seed, spec.texture_size, spec.subdivisions)
        frng = np.random.default_rng([spec.seed, 7, attempt])
        _build_structure(b, rooms, doors, stairs, np.random.default_rng([spec.seed, 3]), storeys)
        objects = _furnish(b, rooms, doors, frng, skip_optional=attempt == attempts - 1)
        if spec.target_triangles:
            b.refine_to(spec.target_triangles)
        house = House(spec, b.scene(), rooms, doors, objects, levels, stairs)
        if not check_navigable or _rooms_connected(house):
            return house
    raise RuntimeError(f"house seed {spec.seed}: some room is not reachable even without optional furniture")


def _rooms_connected(house: House) -> bool:
    from habitat_fih.sim.navigation import NavGrid

    verts, faces = _soup(house.scene)
    nav = NavGrid.from_mesh(verts, faces)
    big = int(np.argmax(nav.island_sizes))
    member = nav.node_island == big
    for r in house.rooms:
        x0, z0, x1, z1 = r.rect
        inside = ((nav.node_cx > x0) & (nav.node_cx < x1) & (nav.node_cz > z0) & (nav.node_cz < z1)
                  & (np.abs(nav.node_y - r.floor_y) < 0.05) & member)
        need = 0.3 if r.name == "staircase" else 1.0
        if inside.sum() * nav.cell_size**2 < need:
            return False
    return True


def _soup(scene: trimesh.Scene) -> tuple[np.ndarray, np.ndarray]:
    verts, faces, off = [], [], 0
    for g in scene.geometry.values():
        verts.append(np.asarray(g.vertices))
        faces.append(np.asarray(g.faces) + off)
        off += len(g.vertices)
    return np.concatenate(verts), np.concatenate(faces)


def glb_file_scene(scene: trimesh.Scene) -> trimesh.Scene:
    """A copy of the world-frame (Y-up) ``scene`` rotated into habitat-sim's frame for a .glb
    without a stage config (Z-up, :data:`habitat_fih.sim.frames.Z_UP`): geometry rotated by
    the inverse of that frame's rotation, node transforms conjugated by it."""
    to_file = Z_UP.matrix().T  # inverse of file -> world (a rotation)
    out = scene.copy()
    for geom in out.geometry.values():
        geom.apply_transform(to_file)
    for node in out.graph.nodes_geometry:
        matrix, _ = out.graph[node]
        if not np.array_equal(matrix, np.eye(4)):
            out.graph.update(frame_to=node, matrix=to_file @ matrix @ to_file.T)
    return out


def export_house(spec: HouseSpec, glb_path: str, metadata_path: str | None = None,
                 check_navigable: bool = True) -> House:
    """Write the house as ``glb_path`` (.glb, Z-up as habitat-sim expects, see the module
    docstring) and its metadata JSON (default: same stem + ``.json``, world coordinates),
    atomically and deterministically; returns the :class:`House` (world frame)."""
    house = make_house(spec, check_navigable=check_navigable)
    atomic_write_bytes(glb_path, glb_file_scene(house.scene).export(file_type="glb"))
    if metadata_path is None:
        metadata_path = os.path.splitext(glb_path)[0] + ".json"
    atomic_write_bytes(metadata_path, (json.dumps(house.metadata(), indent=1, sort_keys=True) + "\n").encode())
    return house


def load_metadata(scene_path: str) -> dict:
    """Metadata JSON of a generated scene (``house_003.glb`` -> ``house_003.json``); a clear error if missing."""
    path = os.path.splitext(scene_path)[0] + ".json"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"scene metadata not found: {path} (expected next to {scene_path})")
    with open(path) as f:
        meta = json.load(f)
    if not isinstance(meta, dict) or "rooms" not in meta or "objects" not in meta:
        raise ValueError(f"malformed scene metadata {path}: expected a dict with 'rooms' and 'objects'")
    return meta
