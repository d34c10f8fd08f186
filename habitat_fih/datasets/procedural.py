"""A small procedural apartment (textured walls, floors, furniture) exported as a Y-up .glb.

This is the bundled starter scene of habitat-fih and the scene of the simulator benchmark. It is
deliberately simple — one storey, axis-aligned rooms joined by doorways, box furniture — and
deterministic from its seed. Surfaces carry procedural textures (wood, tiles, carpet, paint with
noise) mapped by planar projection, so rendered frames have real visual structure.

``subdivisions`` splits every triangle into 4**n (Loop-free midpoint subdivision, geometry
unchanged) to reach realistic triangle counts (n=4 gives ~400k triangles) for benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import trimesh
from PIL import Image

__all__ = ["ApartmentSpec", "export_apartment", "make_apartment", "procedural_texture"]

WALL_HEIGHT = 2.8
WALL_THICKNESS = 0.12
DOOR_WIDTH = 1.0
DOOR_HEIGHT = 2.1


def procedural_texture(kind: str, rng: np.random.Generator, size: int = 128) -> Image.Image:
    """An RGB texture of ``kind`` in {"wood", "tiles", "carpet", "paint", "fabric"}."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    noise = rng.random((size, size), dtype=np.float32)
    base = rng.uniform(0.35, 0.85, size=3).astype(np.float32)
    if kind == "wood":
        plank = np.floor(xx * 6)
        grain = 0.5 + 0.5 * np.sin(40 * yy + 7 * plank + 3 * noise)
        shade = 0.75 + 0.15 * grain + 0.1 * ((plank % 2) - 0.5)
        base = np.array([0.55, 0.36, 0.2], np.float32) * rng.uniform(0.8, 1.2)
    elif kind == "tiles":
        grout = (np.mod(xx * 8, 1.0) < 0.06) | (np.mod(yy * 8, 1.0) < 0.06)
        shade = np.where(grout, 0.45, 0.95 + 0.05 * noise)
    elif kind == "carpet":
        shade = 0.8 + 0.2 * noise
    elif kind == "fabric":
        weave = 0.5 + 0.5 * np.sin(60 * xx) * np.sin(60 * yy)
        shade = 0.75 + 0.2 * weave + 0.05 * noise
    elif kind == "paint":
        blur = (noise + np.roll(noise, 1, 0) + np.roll(noise, 1, 1) + np.roll(noise, 2, 0)) / 4
        stripe = 0.04 * np.sin(2 * np.pi * 4 * xx)
        shade = 0.9 + 0.08 * blur + stripe
    else:
        raise ValueError(f"unknown texture kind {kind!r}; expected wood, tiles, carpet, paint, fabric")
    rgb = np.clip(base[None, None, :] * shade[..., None], 0, 1)
    return Image.fromarray((rgb * 255).astype(np.uint8), mode="RGB")


def _planar_uv(mesh: trimesh.Trimesh, tile: float) -> np.ndarray:
    """Per-vertex UV by projecting each face on the plane of its dominant normal axis.

    The mesh must have unmerged vertices (each vertex belongs to one face)."""
    normals = np.abs(mesh.face_normals)
    axis = np.argmax(normals, axis=1)  # [F]
    vertex_axis = np.repeat(axis, 3)
    v = mesh.vertices[mesh.faces.reshape(-1)]
    uv = np.where(
        (vertex_axis == 0)[:, None],
        v[:, [2, 1]],
        np.where((vertex_axis == 1)[:, None], v[:, [0, 2]], v[:, [0, 1]]),
    )
    out = np.zeros((len(mesh.vertices), 2))
    out[mesh.faces.reshape(-1)] = uv / tile
    return out


def _textured_box(
    extents, center, texture: Image.Image, tile: float, subdivisions: int
) -> trimesh.Trimesh:
    box = trimesh.creation.box(extents=extents)
    box.apply_translation(center)
    for _ in range(subdivisions):
        box = box.subdivide()
    box.unmerge_vertices()
    uv = _planar_uv(box, tile)
    material = trimesh.visual.material.PBRMaterial(
        baseColorTexture=texture, metallicFactor=0.0, roughnessFactor=1.0
    )
    box.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    return box


@dataclass(frozen=True)
class ApartmentSpec:
    """Room layout: a 3 x 2 grid of rooms of ``room_size`` metres with doorways between them."""

    seed: int = 0
    room_size: tuple[float, float] = (4.0, 3.5)
    grid: tuple[int, int] = (3, 2)
    subdivisions: int = 0
    room_names: tuple[str, ...] = field(
        default=("bedroom", "hallway", "kitchen", "living room", "bathroom", "office")
    )


def make_apartment(spec: ApartmentSpec) -> trimesh.Scene:
    """Build the apartment as a trimesh.Scene (Y-up, metres, floor at y = 0)."""
    rng = np.random.default_rng(spec.seed)
    nx, nz = spec.grid
    sx, sz = spec.room_size
    width, depth = nx * sx, nz * sz
    sub = spec.subdivisions
    scene = trimesh.Scene()
    wall_tex = procedural_texture("paint", rng)
    ceiling_tex = procedural_texture("paint", rng)
    floor_kinds = ["wood", "tiles", "carpet"]

    def add(name: str, mesh: trimesh.Trimesh) -> None:
        scene.add_geometry(mesh, geom_name=name, node_name=name)

    for i in range(nx):
        for k in range(nz):
            kind = floor_kinds[int(rng.integers(len(floor_kinds)))]
            cx, cz = (i + 0.5) * sx, (k + 0.5) * sz
            add(f"floor_{i}_{k}", _textured_box((sx, 0.1, sz), (cx, -0.05, cz),
                                                procedural_texture(kind, rng), 1.0, sub))
    add("ceiling", _textured_box((width, 0.1, depth), (width / 2, WALL_HEIGHT + 0.05, depth / 2),
                                 ceiling_tex, 2.0, sub))

    def wall_segment(name: str, x0: float, x1: float, z0: float, z1: float, y0: float, y1: float):
        ext = (max(x1 - x0, WALL_THICKNESS), y1 - y0, max(z1 - z0, WALL_THICKNESS))
        add(name, _textured_box(ext, ((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2),
                                wall_tex, 1.5, sub))

    def wall_with_door(name: str, along_x: bool, fixed: float, a0: float, a1: float, door: bool):
        pieces = [(a0, a1)]
        if door:
            mid = rng.uniform(a0 + 0.4 + DOOR_WIDTH / 2, a1 - 0.4 - DOOR_WIDTH / 2)
            d0, d1 = mid - DOOR_WIDTH / 2, mid + DOOR_WIDTH / 2
            pieces = [(a0, d0), (d1, a1)]
            lintel = (d0, d1, DOOR_HEIGHT, WALL_HEIGHT)
        for j, (p0, p1) in enumerate(pieces):
            if along_x:
                wall_segment(f"{name}_{j}", p0, p1, fixed, fixed, 0.0, WALL_HEIGHT)
            else:
                wall_segment(f"{name}_{j}", fixed, fixed, p0, p1, 0.0, WALL_HEIGHT)
        if door:
            l0, l1, y0, y1 = lintel
            if along_x:
                wall_segment(f"{name}_lintel", l0, l1, fixed, fixed, y0, y1)
            else:
                wall_segment(f"{name}_lintel", fixed, fixed, l0, l1, y0, y1)

    # outer walls
    wall_with_door("outer_n", True, 0.0, 0.0, width, False)
    wall_with_door("outer_s", True, depth, 0.0, width, False)
    wall_with_door("outer_w", False, 0.0, 0.0, depth, False)
    wall_with_door("outer_e", False, width, 0.0, depth, False)
    # interior walls, each with a doorway so every room is reachable
    for i in range(1, nx):
        for k in range(nz):
            wall_with_door(f"wall_x{i}_{k}", False, i * sx, k * sz, (k + 1) * sz, True)
    for k in range(1, nz):
        for i in range(nx):
            wall_with_door(f"wall_z{k}_{i}", True, k * sz, i * sx, (i + 1) * sx, True)

    # furniture: a few boxes per room, away from doorways (placed near room centres / corners)
    furniture = [("table", (1.2, 0.75, 0.8), "wood"), ("cabinet", (0.8, 1.6, 0.45), "wood"),
                 ("sofa", (1.8, 0.8, 0.8), "fabric"), ("bed", (1.6, 0.5, 2.0), "fabric")]
    for i in range(nx):
        for k in range(nz):
            label, ext, kind = furniture[int(rng.integers(len(furniture)))]
            cx = (i + 0.5) * sx + rng.uniform(-0.4, 0.4)
            cz = (k + 0.5) * sz + rng.uniform(-0.3, 0.3)
            add(f"{label}_{i}_{k}", _textured_box(ext, (cx, ext[1] / 2, cz),
                                                  procedural_texture(kind, rng), 0.5, sub))
    return scene


def export_apartment(spec: ApartmentSpec, path: str) -> int:
    """Write the apartment to ``path`` (.glb) atomically; returns the triangle count."""
    import os
    import tempfile

    scene = make_apartment(spec)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".glb", dir=directory)
    os.close(fd)
    try:
        scene.export(tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return int(sum(len(g.faces) for g in scene.geometry.values()))
