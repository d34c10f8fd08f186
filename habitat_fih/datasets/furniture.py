"""Furniture catalogue of the synthetic houses: what each room type holds and how each piece looks.

A *piece* (one semantic object: ``bed``, ``sofa``, ``fridge``, ...) is a list of primitive parts
(boxes, cylinders, spheres, cones) in a local frame: x along the wall it stands against (width
``w`` centred on x = 0), z from the wall (z = 0) into the room (depth ``d``), y up from the floor.
A *group* is pieces that are placed together (a dining table with its chairs, a bed with its
nightstands); its footprint is ``w x d``. :func:`room_groups` draws the groups of one room.

Every part names a material role: ``("main", kind)`` is coloured with the piece's colour (whose
name goes into the metadata and the instructions: "the green sofa"), ``(fixed, kind)`` uses a fixed
colour (``wood``, ``white``, ``black``, ``metal``, ``leaf``, ``marble``, ``pot``, ``canvas``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "COLORS", "FIXED_COLORS", "LABEL_COLORS", "Part", "Piece", "Group", "room_groups", "painting",
]

#: Colour names used in instructions and their RGB.
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.72, 0.16, 0.13), "green": (0.22, 0.52, 0.27), "blue": (0.16, 0.32, 0.68),
    "grey": (0.52, 0.52, 0.52), "beige": (0.86, 0.78, 0.62), "brown": (0.46, 0.29, 0.16),
    "yellow": (0.9, 0.76, 0.22), "orange": (0.9, 0.46, 0.15), "white": (0.92, 0.92, 0.9),
    "black": (0.14, 0.14, 0.14), "purple": (0.46, 0.26, 0.56), "pink": (0.9, 0.56, 0.66),
}
#: Fixed part colours (not named in instructions).
FIXED_COLORS: dict[str, tuple[float, float, float]] = {
    "wood": (0.55, 0.37, 0.21), "white": (0.93, 0.93, 0.91), "black": (0.12, 0.12, 0.13),
    "metal": (0.7, 0.72, 0.75), "leaf": (0.18, 0.45, 0.16), "marble": (0.88, 0.87, 0.84),
    "pot": (0.72, 0.38, 0.22), "screen": (0.05, 0.06, 0.09), "mattress": (0.95, 0.94, 0.9),
}
#: Colours a label may take (first-listed kind of texture for its main parts).
LABEL_COLORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "bed": ("fabric", ("blue", "white", "red", "green", "beige", "grey", "pink", "purple")),
    "sofa": ("fabric", ("green", "red", "blue", "grey", "beige", "brown", "yellow", "orange")),
    "armchair": ("fabric", ("green", "red", "blue", "grey", "beige", "yellow", "orange", "purple")),
    "coffee table": ("wood", ("brown", "white", "black")),
    "dining table": ("wood", ("brown", "white", "black")),
    "chair": ("wood", ("brown", "white", "black", "red", "blue")),
    "desk": ("wood", ("brown", "white", "black", "grey")),
    "wardrobe": ("wood", ("brown", "white", "black", "grey")),
    "nightstand": ("wood", ("brown", "white", "black")),
    "bookshelf": ("wood", ("brown", "white", "black")),
    "cabinet": ("wood", ("brown", "white", "grey", "blue", "green")),
    "tv": ("plastic", ("black",)),
    "plant": ("plastic", ("white", "orange", "grey", "black")),
    "lamp": ("fabric", ("white", "beige", "yellow", "red")),
    "fridge": ("metal", ("white", "grey", "black")),
    "counter": ("wood", ("white", "grey", "blue", "green", "brown")),
    "stove": ("metal", ("black", "white")),
    "sink": ("plastic", ("white", "grey")),
    "toilet": ("plastic", ("white",)),
    "bathtub": ("plastic", ("white", "blue")),
    "painting": ("canvas", ("red", "blue", "green", "yellow", "orange", "purple")),
}


@dataclass(frozen=True)
class Part:
    """One primitive: ``shape`` in {box, cylinder, sphere, cone}, ``center`` and ``size`` (x, y, z
    extents; a cylinder / cone / sphere fills the box), material ``role`` (main or a fixed colour)
    and texture ``kind``."""

    shape: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    role: str
    kind: str


@dataclass
class Piece:
    """One semantic object: ``label``, colour name and parts (local group frame)."""

    label: str
    color: str
    parts: list[Part] = field(default_factory=list)


@dataclass
class Group:
    """Pieces placed together; ``w x d`` footprint; ``centre`` groups go mid-room, others on a wall.
    ``elevated`` groups hang on the wall above the floor (paintings) and ignore floor overlap."""

    pieces: list[Piece]
    w: float
    d: float
    centre: bool = False
    elevated: bool = False
    required: bool = True


def _box(cx: float, cy: float, cz: float, sx: float, sy: float, sz: float, role: str = "main",
         kind: str = "") -> Part:
    return Part("box", (cx, cy, cz), (sx, sy, sz), role, kind)


def _color(label: str, rng: np.random.Generator) -> tuple[str, str]:
    kind, colors = LABEL_COLORS[label]
    return colors[int(rng.integers(len(colors)))], kind


def _piece(label: str, rng: np.random.Generator, parts_fn) -> Piece:
    color, kind = _color(label, rng)
    parts = parts_fn(kind)
    return Piece(label, color, parts)


def bed(rng: np.random.Generator, x: float = 0.0) -> tuple[Piece, float, float]:
    w, d = float(rng.choice([1.4, 1.6, 1.8])), 2.05
    piece = _piece("bed", rng, lambda k: [
        _box(x, 0.18, d / 2, w, 0.36, d, "wood", "wood"),
        _box(x, 0.45, d / 2 + 0.05, w - 0.06, 0.18, d - 0.12, "mattress", "fabric"),
        _box(x, 0.56, d / 2 + 0.25, w - 0.04, 0.06, d - 0.55, "main", k),  # blanket
        _box(x, 0.6, 0.3, w * 0.7, 0.12, 0.35, "white", "fabric"),  # pillow
        _box(x, 0.6, 0.04, w, 1.2, 0.08, "wood", "wood"),  # headboard
    ])
    return piece, w, d


def simple(label: str, rng: np.random.Generator, x: float = 0.0) -> tuple[Piece, float, float]:
    """A standalone piece against a wall: ``(piece, width, depth)`` in the local frame at ``x``."""
    def make(builder) -> Piece:
        return _piece(label, rng, builder)

    if label == "sofa":
        w, d = float(rng.uniform(1.8, 2.3)), 0.9
        return make(lambda k: [
            _box(x, 0.22, d / 2, w, 0.44, d, "main", k), _box(x, 0.6, 0.12, w, 0.5, 0.24, "main", k),
            _box(x - w / 2 + 0.1, 0.5, d / 2, 0.2, 0.3, d, "main", k),
            _box(x + w / 2 - 0.1, 0.5, d / 2, 0.2, 0.3, d, "main", k)]), w, d
    if label == "armchair":
        w, d = 0.9, 0.85
        return make(lambda k: [
            _box(x, 0.22, d / 2, w, 0.44, d, "main", k), _box(x, 0.62, 0.1, w, 0.5, 0.2, "main", k),
            _box(x - 0.37, 0.5, d / 2, 0.16, 0.28, d, "main", k),
            _box(x + 0.37, 0.5, d / 2, 0.16, 0.28, d, "main", k)]), w, d
    if label == "wardrobe":
        w, d = float(rng.uniform(1.0, 1.6)), 0.6
        return make(lambda k: [
            _box(x, 1.0, d / 2, w, 2.0, d, "main", k),
            _box(x, 1.0, d + 0.005, 0.02, 1.8, 0.01, "black", "metal")]), w, d
    if label == "bookshelf":
        w, d = float(rng.uniform(0.8, 1.2)), 0.35
        parts = [_box(x, 0.95, 0.02, w, 1.9, 0.04, "main", "wood")]
        parts += [_box(x + sx * (w / 2 - 0.02), 0.95, d / 2, 0.04, 1.9, d, "main", "wood") for sx in (-1, 1)]
        for i in range(5):
            parts.append(_box(x, 0.02 + i * 0.45, d / 2, w, 0.04, d, "main", "wood"))
            if i < 4:  # books
                role = ("red", "blue", "green", "yellow")[int(rng.integers(4))]
                parts.append(_box(x, 0.2 + i * 0.45, d / 2, w - 0.15, 0.3, d - 0.08, f"c:{role}", "canvas"))
        color, _ = _color("bookshelf", rng)
        return Piece("bookshelf", color, parts), w, d
    if label == "cabinet":
        w, d = float(rng.uniform(0.9, 1.5)), 0.45
        return make(lambda k: [
            _box(x, 0.42, d / 2, w, 0.84, d, "main", k),
            _box(x, 0.6, d + 0.005, w - 0.2, 0.02, 0.01, "metal", "metal")]), w, d
    if label == "nightstand":
        w, d = 0.45, 0.4
        return make(lambda k: [_box(x, 0.27, d / 2, w, 0.54, d, "main", k)]), w, d
    if label == "tv":
        w, d = float(rng.uniform(1.2, 1.6)), 0.45
        stand_color, _ = _color("cabinet", rng)
        return make(lambda k: [
            _box(x, 0.25, d / 2, w, 0.5, d, f"c:{stand_color}", "wood"),
            _box(x, 0.52, 0.2, 0.3, 0.04, 0.2, "black", "metal"),
            _box(x, 0.95, 0.2, w - 0.1, 0.8, 0.05, "main", k),
            _box(x, 0.95, 0.226, w - 0.16, 0.72, 0.005, "screen", "plastic")]), w, d
    if label == "plant":
        s = float(rng.uniform(0.8, 1.3))
        w = d = 0.5 * s
        return make(lambda k: [
            Part("cylinder", (x, 0.2 * s, d / 2), (0.36 * s, 0.4 * s, 0.36 * s), "main", k),
            Part("sphere", (x, 0.75 * s, d / 2), (0.5 * s, 0.8 * s, 0.5 * s), "leaf", "leaves")]), w, d
    if label == "lamp":
        w = d = 0.45
        return make(lambda k: [
            Part("cylinder", (x, 0.02, d / 2), (0.3, 0.04, 0.3), "black", "metal"),
            Part("cylinder", (x, 0.8, d / 2), (0.04, 1.5, 0.04), "metal", "metal"),
            Part("cone", (x, 1.6, d / 2), (0.42, 0.35, 0.42), "main", k)]), w, d
    if label == "fridge":
        w, d = 0.75, 0.7
        return make(lambda k: [
            _box(x, 0.95, d / 2, w, 1.9, d, "main", k),
            _box(x + 0.28, 1.2, d + 0.02, 0.04, 0.5, 0.04, "metal", "metal")]), w, d
    if label == "toilet":
        w, d = 0.45, 0.7
        return make(lambda k: [
            _box(x, 0.5, 0.1, w, 0.7, 0.2, "main", k),
            Part("cylinder", (x, 0.2, 0.45), (0.4, 0.4, 0.45), "main", k)]), w, d
    if label == "sink":
        w, d = float(rng.uniform(0.6, 0.9)), 0.5
        return make(lambda k: [
            _box(x, 0.4, d / 2, w, 0.8, d, "wood", "wood"),
            _box(x, 0.83, d / 2, w + 0.02, 0.06, d + 0.02, "main", k),
            _box(x, 1.35, 0.02, w * 0.8, 0.7, 0.03, "metal", "metal")]), w, d  # mirror
    if label == "bathtub":
        w, d = 1.6, 0.75
        return make(lambda k: [
            _box(x, 0.27, d / 2, w, 0.54, d, "main", k),
            _box(x, 0.545, d / 2, w - 0.2, 0.01, d - 0.2, "white", "plastic")]), w, d
    if label == "desk":
        w, d = float(rng.uniform(1.1, 1.5)), 0.65
        return make(lambda k: [
            _box(x, 0.73, d / 2, w, 0.04, d, "main", k),
            *[_box(x + sx * (w / 2 - 0.04), 0.36, d / 2 + sz * (d / 2 - 0.04), 0.05, 0.72, 0.05, "main", k)
              for sx in (-1, 1) for sz in (-1, 1)]]), w, d
    raise ValueError(f"unknown furniture label {label!r}")


def chair(rng: np.random.Generator, x: float, z: float, facing: int, color: str | None = None) -> Piece:
    """A chair at ``(x, z)`` facing +z (``facing=1``) or -z (``facing=-1``)."""
    kind = LABEL_COLORS["chair"][0]
    if color is None:
        color, kind = _color("chair", rng)
    back_z = z - facing * 0.2
    parts = [_box(x, 0.45, z, 0.45, 0.05, 0.45, "main", kind),
             _box(x, 0.72, back_z, 0.45, 0.5, 0.05, "main", kind)]
    parts += [_box(x + sx * 0.19, 0.22, z + sz * 0.19, 0.04, 0.44, 0.04, "main", kind)
              for sx in (-1, 1) for sz in (-1, 1)]
    return Piece("chair", color, parts)


def painting(rng: np.random.Generator) -> Group:
    """A framed picture hanging on a wall (bottom edge at 1.2 m)."""
    w, h = float(rng.uniform(0.6, 1.2)), float(rng.uniform(0.5, 0.9))
    color, kind = _color("painting", rng)
    piece = Piece("painting", color, [_box(0.0, 1.2 + h / 2, 0.025, w, h, 0.05, "main", kind)])
    return Group([piece], w, 0.05, elevated=True, required=False)


def _dining(rng: np.random.Generator) -> Group:
    w, d = float(rng.uniform(1.4, 1.8)), float(rng.uniform(0.85, 0.95))
    color, kind = _color("dining table", rng)
    table = Piece("dining table", color, [_box(0.0, 0.74, d / 2 + 0.6, w, 0.05, d, "main", kind)] + [
        _box(sx * (w / 2 - 0.06), 0.36, 0.6 + d / 2 + sz * (d / 2 - 0.06), 0.06, 0.72, 0.06, "main", kind)
        for sx in (-1, 1) for sz in (-1, 1)])
    chair_color, _ = _color("chair", rng)
    n = 2 if w < 1.6 else 3
    xs = np.linspace(-w / 2 + 0.35, w / 2 - 0.35, n)
    chairs = [chair(rng, float(cx), 0.35, 1, chair_color) for cx in xs]
    chairs += [chair(rng, float(cx), d + 0.85, -1, chair_color) for cx in xs]
    return Group([table, *chairs], w + 0.2, d + 1.2, centre=True)


def _single(label: str, rng: np.random.Generator, required: bool = True) -> Group:
    piece, w, d = simple(label, rng)
    return Group([piece], w, d, required=required)


def room_groups(room_type: str, area: float, rng: np.random.Generator) -> list[Group]:
    """Furniture groups for a room of ``room_type`` and floor ``area`` (m^2), required ones first."""
    opt = rng.random
    groups: list[Group] = []
    if room_type == "bedroom":
        b, bw, bd = bed(rng)
        pieces = [b]
        n_stands = 2 if opt() < 0.6 else 1
        color, kind = _color("nightstand", rng)
        for sx in (-1, 1)[:n_stands]:
            pieces.append(Piece("nightstand", color, [_box(sx * (bw / 2 + 0.3), 0.27, 0.2, 0.45, 0.54, 0.4,
                                                          "main", kind)]))
        groups.append(Group(pieces, bw + 0.6 * n_stands + 0.1 * n_stands, bd))
        groups.append(_single("wardrobe", rng, required=opt() < 0.7))
        if area > 11 and opt() < 0.5:
            groups.append(_desk_group(rng))
        for label, p in (("plant", 0.4), ("lamp", 0.4), ("cabinet", 0.3)):
            if opt() < p:
                groups.append(_single(label, rng, required=False))
    elif room_type == "living room":
        sofa, sw, sd = simple("sofa", rng)
        color, kind = _color("coffee table", rng)
        ct = Piece("coffee table", color, [_box(0.0, 0.2, sd + 0.55, 1.0, 0.4, 0.55, "main", kind)])
        groups.append(Group([sofa, ct], sw, sd + 0.85))
        groups.append(_single("tv", rng))
        for label, p in (("armchair", 0.6), ("bookshelf", 0.5), ("plant", 0.7), ("lamp", 0.5), ("cabinet", 0.3)):
            if opt() < p:
                groups.append(_single(label, rng, required=False))
    elif room_type == "kitchen":
        cw = float(rng.uniform(1.8, 2.6))
        color, kind = _color("counter", rng)
        stove_color, skind = _color("stove", rng)
        counter = Piece("counter", color, [_box(0.3, 0.44, 0.3, cw - 0.6, 0.88, 0.6, "main", kind),
                                           _box(0.3, 0.9, 0.3, cw - 0.6, 0.04, 0.62, "marble", "marble")])
        stove = Piece("stove", stove_color, [_box(-cw / 2 + 0.3, 0.45, 0.3, 0.6, 0.9, 0.6, "main", skind),
                                             _box(-cw / 2 + 0.3, 0.91, 0.3, 0.5, 0.02, 0.5, "black", "metal")])
        # shift so the group is centred: counter spans x in [-cw/2, cw/2]
        counter.parts = [Part(p.shape, (p.center[0], p.center[1], p.center[2]), p.size, p.role, p.kind)
                         for p in counter.parts]
        groups.append(Group([counter, stove], cw, 0.62))
        groups.append(_single("fridge", rng))
        if area > 13:
            groups.append(_dining(rng))
        if opt() < 0.5:
            groups.append(_single("plant", rng, required=False))
    elif room_type == "dining room":
        groups.append(_dining(rng))
        for label, p in (("cabinet", 0.7), ("plant", 0.6), ("lamp", 0.3), ("bookshelf", 0.3)):
            if opt() < p:
                groups.append(_single(label, rng, required=False))
    elif room_type == "bathroom":
        groups.append(_single("toilet", rng))
        groups.append(_single("sink", rng))
        groups.append(_single("bathtub", rng, required=False))
        if opt() < 0.4:
            groups.append(_single("plant", rng, required=False))
    elif room_type == "office":
        groups.append(_desk_group(rng))
        for label, p in (("bookshelf", 0.8), ("cabinet", 0.5), ("plant", 0.6), ("armchair", 0.4), ("lamp", 0.3)):
            if opt() < p:
                groups.append(_single(label, rng, required=False))
    elif room_type in ("hallway", "staircase"):
        pass
    else:
        raise ValueError(f"unknown room type {room_type!r}")
    n_paintings = {"hallway": 2, "staircase": 0, "bathroom": 0}.get(room_type, 1)
    for _ in range(n_paintings):
        if opt() < 0.7:
            groups.append(painting(rng))
    return groups


def _desk_group(rng: np.random.Generator) -> Group:
    desk, w, d = simple("desk", rng)
    return Group([desk, chair(rng, 0.0, d + 0.05, -1)], w, d + 0.35, required=False)
