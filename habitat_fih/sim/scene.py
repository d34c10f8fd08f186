"""Scene loading for FIHSim-v0: one flat, shade-able triangle soup per scene file.

`load_scene` reads a .glb / .gltf / .obj / .ply file with trimesh, flattens a multi-geometry
`trimesh.Scene` through its scene-graph transforms into ONE triangle soup, rotates it from the
file's frame into habitat's world frame (+Y up, -Z front, metres) the way habitat-sim v0.2.2 does
(:mod:`habitat_fih.sim.frames`: a .glb without a stage config is Z-up like MP3D, other formats
Y-up, and ``*.stage_config.json`` / scene-dataset configs say otherwise), and keeps what is needed
to colour a ray hit: a material per face (base-colour texture times baseColorFactor, or a flat
colour), per-vertex UVs and per-vertex colours.

A glTF / GLB primitive without a material gets glTF's default material (white, baseColorFactor 1;
times its vertex colours if it has any); an OBJ / PLY mesh without materials or colours is neutral
grey (128).

`SceneMesh.shade` colours Embree hits from their barycentrics, unlit (habitat-sim renders MP3D
scenes unlit), fully vectorised: every material is packed into one texel buffer (a flat colour
is a 1x1 texture), the baseColorFactor is pre-multiplied into the texels and the UV-to-texel
mapping is pre-computed per face, so a frame costs a handful of gathers.

Textures stored as KTX2 / Basis Universal (HM3D, `KHR_texture_basisu`) cannot be decoded by
trimesh; such scenes load with those materials untextured and ONE warning naming the file.
"""
from __future__ import annotations

import json
import math
import os
import struct
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import trimesh

from habitat_fih.sim.frames import Y_UP, SceneFrame, resolve_scene

SUPPORTED_EXTENSIONS: tuple[str, ...] = (".glb", ".gltf", ".obj", ".ply")
NEUTRAL_GREY: tuple[int, int, int] = (128, 128, 128)  # OBJ / PLY mesh without materials or colours
GLTF_DEFAULT_COLOR: tuple[int, int, int] = (255, 255, 255)  # glTF's default material

_MAX_TEXELS = 2**24  # per texture (4096 x 4096); larger ones are downscaled on load
_GLB_MAGIC = b"glTF"
_GLB_JSON_CHUNK = 0x4E4F534A  # "JSON" little-endian


@dataclass
class Material:
    """One surface material, unlit.

    Attributes:
        name: material name from the file ("" when none).
        base_color: float32 [3] in [0, 1]: the baseColorFactor of a textured material, or the
            flat colour of an untextured one.
        texture: uint8 [H, W, 3] base-colour texture as stored in the file (row 0 = top of the
            image), or None for a flat colour.
    """

    name: str
    base_color: np.ndarray
    texture: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.base_color = np.asarray(self.base_color, dtype=np.float32).reshape(-1)[:3]
        if self.base_color.shape != (3,):
            raise ValueError(f"Material.base_color must have 3 entries, got {self.base_color}")
        if self.texture is not None:
            tex = np.asarray(self.texture)
            if tex.ndim != 3 or tex.shape[2] != 3 or tex.dtype != np.uint8 or tex.size == 0:
                raise ValueError(
                    f"Material.texture must be uint8 [H, W, 3], got {tex.dtype} {tex.shape}"
                )
            self.texture = np.ascontiguousarray(tex)

    def effective_texels(self) -> np.ndarray:
        """Texels with base_color multiplied in: uint8 [H, W, 3] ([1, 1, 3] for a flat colour)."""
        if self.texture is None:
            return _to_uint8(self.base_color * 255.0).reshape(1, 1, 3)
        if np.all(self.base_color == 1.0):
            return self.texture
        return _to_uint8(self.texture.astype(np.float32) * self.base_color)


@dataclass
class SceneMesh:
    """A whole scene as one triangle soup plus what is needed to colour its hits.

    Attributes:
        path: mesh file the scene was loaded from (the render asset a stage config names, when
            the scene path is a stage config).
        vertices: float32 [V, 3] world positions (habitat's frame: +Y up, metres).
        faces: int32 [F, 3] vertex indices.
        face_materials: int32 [F] index into `materials` per face.
        materials: the materials (at least one). A texture whose base_color is 1 is re-pointed
            at its slice of the packed texel buffer, so it is stored once.
        uv: float32 [V, 2] texture coordinates in trimesh's convention (origin bottom-left,
            i.e. glTF's V flipped), 0 for vertices of sub-meshes without UVs; None when no
            sub-mesh has UVs.
        vertex_colors: uint8 [V, 3] per-vertex colours multiplied into the material colour,
            255 for vertices of sub-meshes without colours; None when no sub-mesh has any.
        frame: the file frame that was rotated into the world frame (its ``source`` says which
            rule or config chose it); habitat's own frame for meshes built in memory.
    """

    path: str
    vertices: np.ndarray
    faces: np.ndarray
    face_materials: np.ndarray
    materials: list[Material]
    uv: np.ndarray | None = None
    vertex_colors: np.ndarray | None = None
    frame: SceneFrame = Y_UP
    # packed shading tables, built once in __post_init__
    _texels: np.ndarray = field(init=False, repr=False)  # uint8 [T, 3], all materials
    _mat_offset: np.ndarray = field(init=False, repr=False)  # int64 [M] first texel
    _face_offset: np.ndarray = field(init=False, repr=False)  # int32/64 [F] first texel
    _face_tex: np.ndarray | None = field(init=False, repr=False)  # float32 [F, 8]
    _face_colors: np.ndarray | None = field(init=False, repr=False)  # float32 [F, 9]

    def __post_init__(self) -> None:
        self.path = str(self.path)
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float32)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int32)
        self.face_materials = np.ascontiguousarray(self.face_materials, dtype=np.int32)
        n_v, n_f, n_m = len(self.vertices), len(self.faces), len(self.materials)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"vertices must be [V, 3], got {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or n_f == 0:
            raise ValueError(f"faces must be a non-empty [F, 3], got {self.faces.shape}")
        if self.faces.min() < 0 or self.faces.max() >= n_v:
            raise ValueError(f"face indices must lie in [0, {n_v}), got "
                             f"[{self.faces.min()}, {self.faces.max()}]")
        if self.face_materials.shape != (n_f,):
            raise ValueError(f"face_materials must be [{n_f}], got {self.face_materials.shape}")
        if n_m == 0 or self.face_materials.min() < 0 or self.face_materials.max() >= n_m:
            raise ValueError(f"face_materials must index {n_m} materials, got "
                             f"[{self.face_materials.min()}, {self.face_materials.max()}]")
        if self.uv is not None:
            self.uv = np.ascontiguousarray(self.uv, dtype=np.float32)
            if self.uv.shape != (n_v, 2):
                raise ValueError(f"uv must be [{n_v}, 2], got {self.uv.shape}")
        if self.vertex_colors is not None:
            self.vertex_colors = np.ascontiguousarray(self.vertex_colors, dtype=np.uint8)
            if self.vertex_colors.shape != (n_v, 3):
                raise ValueError(f"vertex_colors must be [{n_v}, 3], got "
                                 f"{self.vertex_colors.shape}")
        self._build_shading_tables()

    # ------------------------------------------------------------------ properties
    @cached_property
    def bounds(self) -> np.ndarray:
        """float32 [2, 3]: per-axis minimum (row 0) and maximum (row 1) of the vertices."""
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)])

    @property
    def num_faces(self) -> int:
        return len(self.faces)

    # ------------------------------------------------------------------ shading
    def _build_shading_tables(self) -> None:
        texels = [m.effective_texels() for m in self.materials]
        heights = np.array([t.shape[0] for t in texels], dtype=np.int32)
        widths = np.array([t.shape[1] for t in texels], dtype=np.int32)
        sizes = heights.astype(np.int64) * widths
        self._mat_offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        if np.any(sizes > _MAX_TEXELS):
            raise ValueError(f"a texture may have at most 2**24 texels, got {sizes.max()}")
        self._texels = np.concatenate([t.reshape(-1, 3) for t in texels])
        for m, tex, off in zip(self.materials, texels, self._mat_offset, strict=True):
            if m.texture is tex:  # factor 1: keep one copy, the texture views the packed buffer
                m.texture = self._texels[off : off + tex.shape[0] * tex.shape[1]].reshape(tex.shape)

        # per-face texel index of the material's first texel (int32 unless the atlas is huge)
        index_dtype = np.int32 if len(self._texels) < 2**31 else np.int64
        self._face_offset = self._mat_offset[self.face_materials].astype(index_dtype)

        textured = np.array([m.texture is not None for m in self.materials])
        face_textured = textured[self.face_materials]
        if self.uv is not None and face_textured.any():
            # per face [s0, s1 - s0, s2 - s0, t0, t1 - t0, t2 - t0, W, H] with s = uv_u and
            # t = 1 - uv_v (trimesh's V origin is the image bottom, texel rows run top-down);
            # untextured faces keep s = t = 0 and W = H = 1, i.e. their single texel
            fm = self.face_materials[face_textured]
            uvf = self.uv[self.faces[face_textured]].astype(np.float64)  # [Ft, 3 corners, 2]
            s = uvf[..., 0]  # [Ft, 3]
            t = 1.0 - uvf[..., 1]  # [Ft, 3]
            table = np.zeros((len(self.faces), 8), dtype=np.float32)
            table[:, 6:8] = 1.0
            table[face_textured, 0] = s[:, 0]
            table[face_textured, 1] = s[:, 1] - s[:, 0]
            table[face_textured, 2] = s[:, 2] - s[:, 0]
            table[face_textured, 3] = t[:, 0]
            table[face_textured, 4] = t[:, 1] - t[:, 0]
            table[face_textured, 5] = t[:, 2] - t[:, 0]
            table[face_textured, 6] = widths[fm]
            table[face_textured, 7] = heights[fm]
            self._face_tex = table
        else:
            self._face_tex = None

        if self.vertex_colors is not None:
            vc = self.vertex_colors[self.faces].astype(np.float32)  # [F, 3 corners, 3 rgb]
            vc /= 255.0
            # c = c0 + u*(c1 - c0) + v*(c2 - c0), stored as [c0, c1 - c0, c2 - c0] -> [F, 9]
            self._face_colors = np.concatenate(
                [vc[:, 0], vc[:, 1] - vc[:, 0], vc[:, 2] - vc[:, 0]], axis=1
            )
        else:
            self._face_colors = None

    def shade(self, prim_ids: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Unlit colour of hits given Embree's face ids and barycentrics.

        The hit point is (1-u-v)·v0 + u·v1 + v·v2 of face `prim_ids`. Textures are sampled at
        the nearest texel with repeat addressing and multiplied by the baseColorFactor, then by
        the interpolated vertex colour where the scene has vertex colours.

        Args:
            prim_ids: int [N] face indices, all valid (>= 0; filter misses first).
            u, v: float [N] barycentric coordinates.

        Returns:
            uint8 [N, 3] RGB.
        """
        prim_ids = np.asarray(prim_ids)
        if prim_ids.ndim != 1 or np.shape(u) != prim_ids.shape or np.shape(v) != prim_ids.shape:
            raise ValueError(f"prim_ids, u, v must be equal-length 1-D arrays, got "
                             f"{prim_ids.shape}, {np.shape(u)}, {np.shape(v)}")
        idx = np.take(self._face_offset, prim_ids)  # [N] first texel of each hit's material
        if self._face_tex is not None:
            u = np.asarray(u, dtype=np.float32)
            v = np.asarray(v, dtype=np.float32)
            ft = np.take(self._face_tex, prim_ids, axis=0)  # [N, 8]
            width, height = ft[:, 6], ft[:, 7]
            col = _texel_coord(ft[:, 0], ft[:, 1], ft[:, 2], u, v, width)  # [N] float
            row = _texel_coord(ft[:, 3], ft[:, 4], ft[:, 5], u, v, height)  # [N] float
            row *= width
            row += col  # exact in float32: a texture has at most 2**24 texels
            idx += row.astype(idx.dtype)
        rgb = np.take(self._texels, idx, axis=0)  # [N, 3] uint8
        if self._face_colors is None:
            return rgb
        fc = np.take(self._face_colors, prim_ids, axis=0)  # [N, 9]
        u = np.asarray(u, dtype=np.float32)[:, None]
        v = np.asarray(v, dtype=np.float32)[:, None]
        color = fc[:, 0:3] + u * fc[:, 3:6] + v * fc[:, 6:9]  # [N, 3] in [0, 1]
        color *= rgb
        return _to_uint8(color)


def _texel_coord(
    c0: np.ndarray, c1: np.ndarray, c2: np.ndarray, u: np.ndarray, v: np.ndarray, size: np.ndarray
) -> np.ndarray:
    """Nearest texel index (as float) along one axis with repeat addressing.

    x = c0 + u*c1 + v*c2 in texture units is wrapped to [0, 1), scaled by `size` and floored;
    the clamp guards x - floor(x) rounding up to 1.0 in float32. All arrays [N].
    """
    x = c1 * u
    x += c0
    x += c2 * v
    x -= np.floor(x)
    x *= size
    np.floor(x, out=x)
    return np.minimum(x, size - 1.0, out=x)


# ---------------------------------------------------------------------- loading
def load_scene(
    path: str | os.PathLike,
    max_texture_size: int | None = None,
    *,
    scene_dataset: str | os.PathLike | None = None,
) -> SceneMesh:
    """Load a .glb / .gltf / .obj / .ply scene into one shade-able triangle soup in world frame.

    Args:
        path: the scene (habitat's ``habitat.simulator.scene``): a mesh file, or a
            ``*.stage_config.json`` naming one; with ``scene_dataset``, also any stage that
            dataset registers (habitat-sim matches the scene string as a substring).
        max_texture_size: if given, textures larger than this on a side are downscaled
            (nearest) to fit, to bound memory on texture-heavy scenes. Textures over 2**24
            texels are always downscaled to fit that.
        scene_dataset: habitat's ``habitat.simulator.scene_dataset``: a
            ``*.scene_dataset_config.json`` whose stage defaults / configs apply; None or
            "default" for none.

    The mesh is rotated from its file frame (:func:`habitat_fih.sim.frames.resolve_scene`: a
    .glb without a stage config is Z-up, other files Y-up unless a config says otherwise) into
    habitat's world frame; ``SceneMesh.frame`` records which frame that was.

    Raises:
        FileNotFoundError: the scene file (or the scene dataset config) does not exist.
        ValueError: unsupported extension, a file trimesh cannot parse, no triangles, or a bad
            stage / scene-dataset config.
    """
    resolved = resolve_scene(path, scene_dataset)
    p = Path(resolved.asset)
    if not p.is_file():
        raise FileNotFoundError(f"scene file not found: {p}")
    ext = p.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        named = f" (named by {resolved.config})" if resolved.config else ""
        raise ValueError(
            f"unsupported scene file {p}{named}: expected one of {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    if max_texture_size is not None and max_texture_size < 1:
        raise ValueError(f"max_texture_size must be a positive int, got {max_texture_size}")
    try:
        loaded = trimesh.load_scene(str(p), file_type=ext[1:], process=False)
    except Exception as e:  # trimesh raises many kinds of errors on malformed input
        raise ValueError(
            f"could not parse scene file {p} as {ext[1:]} ({type(e).__name__}: {e})"
        ) from e

    if ext in (".glb", ".gltf") and _uses_ktx2(p):
        msg = (f"scene {p} has KTX2/Basis (KHR_texture_basisu) textures, which cannot be "
               f"decoded; those materials render untextured")
        warnings.warn(msg, stacklevel=2)

    untextured = GLTF_DEFAULT_COLOR if ext in (".glb", ".gltf") else NEUTRAL_GREY
    mesh = _flatten(loaded, p, max_texture_size, resolved.frame, untextured)
    if mesh is None:
        raise ValueError(f"scene file {p} has no triangles: expected at least one triangle mesh")
    return mesh


def _flatten(
    scene: trimesh.Scene,
    path: Path,
    max_texture_size: int | None,
    frame: SceneFrame,
    untextured: tuple[int, int, int],
) -> SceneMesh | None:
    """Concatenate every triangle geometry instance of `scene` in world coordinates.

    Node transforms are applied first, then `frame`'s rotation (habitat-sim's order). Geometry
    with no material and no colours gets the flat colour `untextured`.
    """
    materials: list[Material] = []
    material_index: dict[int, int] = {}  # id(trimesh material) -> index in `materials`
    flat_index: dict[tuple[int, int, int], int] = {}  # flat RGB -> index in `materials`

    def add_material(mat: object) -> int:
        key = id(mat)
        if key not in material_index:
            material_index[key] = len(materials)
            materials.append(_convert_material(mat, max_texture_size))
        return material_index[key]

    def add_flat(rgb: tuple[int, int, int]) -> int:
        if rgb not in flat_index:
            flat_index[rgb] = len(materials)
            materials.append(Material(name="", base_color=np.array(rgb, np.float32) / 255.0))
        return flat_index[rgb]

    verts, faces, face_mats, uvs, colors = [], [], [], [], []
    has_uv = has_color = False
    offset = 0
    for node in scene.graph.nodes_geometry:
        transform, geom_name = scene.graph[node]
        geom = scene.geometry.get(geom_name)
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue
        n_v = len(geom.vertices)
        v = frame.to_world(
            trimesh.transform_points(np.asarray(geom.vertices, np.float64), transform)
        )
        vis = geom.visual
        uv = None
        vcol = None
        if isinstance(vis, trimesh.visual.TextureVisuals):
            mat = vis.material
            if isinstance(mat, trimesh.visual.material.MultiMaterial):
                sub = np.array([add_material(m) for m in mat.materials], dtype=np.int32)
                fmat = sub[np.asarray(vis.face_materials, dtype=np.int64)]
            else:
                fmat = np.full(len(geom.faces), add_material(mat), dtype=np.int32)
            if vis.uv is not None and len(vis.uv) == n_v:
                uv = np.asarray(vis.uv, dtype=np.float32)
            c = vis.vertex_attributes.get("color")
            if c is not None and len(c) == n_v:
                vcol = _colors_to_uint8(c)
        elif isinstance(vis, trimesh.visual.ColorVisuals) and vis.kind == "vertex":
            fmat = np.full(len(geom.faces), add_flat((255, 255, 255)), dtype=np.int32)
            vcol = _colors_to_uint8(vis.vertex_colors)
        elif isinstance(vis, trimesh.visual.ColorVisuals) and vis.kind == "face":
            fc = _colors_to_uint8(vis.face_colors)
            uniq, inverse = np.unique(fc, axis=0, return_inverse=True)
            ids = np.array([add_flat(tuple(int(x) for x in c)) for c in uniq], dtype=np.int32)
            fmat = ids[inverse.reshape(-1)]
        else:
            fmat = np.full(len(geom.faces), add_flat(untextured), dtype=np.int32)

        verts.append(v.astype(np.float32))
        faces.append(np.asarray(geom.faces, dtype=np.int64) + offset)
        face_mats.append(fmat)
        uvs.append(uv)
        colors.append(vcol)
        has_uv |= uv is not None
        has_color |= vcol is not None
        offset += n_v

    if not faces:
        return None
    uv_all = None
    if has_uv:
        uv_all = np.concatenate([
            u if u is not None else np.zeros((len(v), 2), np.float32)
            for u, v in zip(uvs, verts, strict=True)
        ])
    color_all = None
    if has_color:
        color_all = np.concatenate([
            c if c is not None else np.full((len(v), 3), 255, np.uint8)
            for c, v in zip(colors, verts, strict=True)
        ])
    all_faces = np.concatenate(faces)
    if offset > np.iinfo(np.int32).max:
        raise ValueError(f"scene file {path} has {offset} vertices: more than int32 indices allow")
    return SceneMesh(
        path=str(path),
        vertices=np.concatenate(verts),
        faces=all_faces.astype(np.int32),
        face_materials=np.concatenate(face_mats),
        materials=materials,
        uv=uv_all,
        vertex_colors=color_all,
        frame=frame,
    )


def _convert_material(mat: object, max_texture_size: int | None) -> Material:
    """trimesh PBRMaterial / SimpleMaterial -> Material (texture + factor, or flat colour)."""
    name = str(getattr(mat, "name", None) or "")
    image = None
    factor = np.ones(3, np.float32)
    if isinstance(mat, trimesh.visual.material.PBRMaterial):
        image = mat.baseColorTexture
        if mat.baseColorFactor is not None:
            factor = _colors_to_uint8(np.asarray(mat.baseColorFactor)[None])[0] / np.float32(255)
    elif isinstance(mat, trimesh.visual.material.SimpleMaterial):
        # OBJ: map_Kd replaces Kd (Kd only colours untextured materials)
        image = mat.image
        if image is None and mat.diffuse is not None:
            factor = _colors_to_uint8(np.asarray(mat.diffuse)[None])[0] / np.float32(255)
    else:
        main = getattr(mat, "main_color", None)
        rgb = NEUTRAL_GREY if main is None else _colors_to_uint8(np.asarray(main)[None])[0]
        factor = np.asarray(rgb, np.float32) / 255.0
    texture = None
    if image is not None:
        img = image
        w, h = img.size
        scale = 1.0
        if max_texture_size is not None and max(w, h) > max_texture_size:
            scale = max_texture_size / max(w, h)
        if w * h * scale * scale > _MAX_TEXELS:  # shading indexes texels exactly in float32
            scale = math.sqrt(_MAX_TEXELS / (w * h))
        if scale < 1.0:
            size = (max(1, math.floor(w * scale)), max(1, math.floor(h * scale)))
            img = img.resize(size, resample=0)  # nearest
        texture = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return Material(name=name, base_color=factor, texture=texture)


def _colors_to_uint8(colors: np.ndarray) -> np.ndarray:
    """[N, 3 or 4] colours (uint8 0-255 or float 0-1) -> uint8 [N, 3]."""
    c = np.asarray(colors)
    if c.ndim != 2 or c.shape[1] < 3:
        raise ValueError(f"colours must be [N, 3 or 4], got {c.shape}")
    c = c[:, :3]
    if np.issubdtype(c.dtype, np.floating):
        return _to_uint8(c * 255.0)
    if c.dtype == np.uint16:  # glTF normalised unsigned short
        return _to_uint8(c / 257.0)
    return c.astype(np.uint8)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Round and clip to uint8."""
    x = np.asarray(x, dtype=np.float32)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _uses_ktx2(path: Path) -> bool:
    """True when the glTF / GLB file declares KTX2 / Basis Universal images."""
    try:
        header = _read_gltf_json(path)
    except (OSError, ValueError, struct.error):
        return False
    used = set(header.get("extensionsUsed", [])) | set(header.get("extensionsRequired", []))
    if "KHR_texture_basisu" in used:
        return True
    for img in header.get("images", []):
        if img.get("mimeType") == "image/ktx2" or str(img.get("uri", "")).endswith(".ktx2"):
            return True
    return any("KHR_texture_basisu" in t.get("extensions", {}) for t in header.get("textures", []))


def _read_gltf_json(path: Path) -> dict:
    """The JSON header of a .gltf file or the JSON chunk of a .glb file."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != _GLB_MAGIC:
            return json.loads(head + f.read())
        length, chunk_type = struct.unpack("<II", f.read(8))
        if chunk_type != _GLB_JSON_CHUNK:
            raise ValueError(f"{path}: first GLB chunk is not JSON")
        return json.loads(f.read(length))
