"""Tests for habitat_fih.sim.render: camera model, depth, colours, poses and shared casts.

Every expectation is computed independently in closed form (ray / plane intersections, the
pinhole projection from hfov, texels picked from the texture by hand), never from the code's
own output.
"""

from __future__ import annotations

import io
import json
import math
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from habitat_fih.sim.render import CameraSpec, RayCaster, RenderedView, intrinsics
from habitat_fih.sim.scene import Material, SceneMesh, load_scene

# ---------------------------------------------------------------------- helpers


def quad(center: tuple[float, float, float], half: tuple[float, float], axis: str = "z"):
    """Vertices [4, 3] and faces [2, 3] of an axis-aligned rectangle facing +axis.

    Corner order (for axis z): (-x,-y), (+x,-y), (+x,+y), (-x,+y); faces (0,1,2), (0,2,3).
    """
    cx, cy, cz = center
    a, b = half
    if axis == "z":
        v = [[cx - a, cy - b, cz], [cx + a, cy - b, cz], [cx + a, cy + b, cz], [cx - a, cy + b, cz]]
    elif axis == "x":  # in the y-z plane
        v = [[cx, cy - b, cz + a], [cx, cy - b, cz - a], [cx, cy + b, cz - a], [cx, cy + b, cz + a]]
    else:
        raise ValueError(axis)
    return np.array(v, np.float64), np.array([[0, 1, 2], [0, 2, 3]], np.int64)


def room_box(**kw) -> trimesh.Trimesh:
    """A closed box room facing INWARDS (a room's walls face into it; rendering culls back faces)."""
    box = trimesh.creation.box(**kw)
    box.invert()
    return box


def grey_scene(vertices: np.ndarray, faces: np.ndarray) -> SceneMesh:
    return SceneMesh(
        path="<memory>",
        vertices=vertices,
        faces=faces,
        face_materials=np.zeros(len(faces), np.int32),
        materials=[Material("grey", base_color=np.array([0.5, 0.5, 0.5]))],
    )


def yaw_pitch_pose(position, yaw_deg: float = 0.0, pitch_deg: float = 0.0) -> np.ndarray:
    """camera-to-world: rotate about +Y by yaw (left turn positive), then about local +X."""
    ya, pa = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(ya), 0, math.sin(ya)], [0, 1, 0], [-math.sin(ya), 0, math.cos(ya)]])
    rx = np.array([[1, 0, 0], [0, math.cos(pa), -math.sin(pa)], [0, math.sin(pa), math.cos(pa)]])
    pose = np.eye(4)
    pose[:3, :3] = ry @ rx
    pose[:3, 3] = position
    return pose


def pixel_rays(spec: CameraSpec) -> np.ndarray:
    """float64 [H, W, 3] camera-frame pixel directions with z = -1, from hfov directly."""
    f = (spec.width / 2) / math.tan(math.radians(spec.hfov) / 2)
    cols = (np.arange(spec.width) + 0.5 - spec.width / 2) / f
    rows = -(np.arange(spec.height) + 0.5 - spec.height / 2) / f
    d = np.empty((spec.height, spec.width, 3))
    d[..., 0] = cols[None, :]
    d[..., 1] = rows[:, None]
    d[..., 2] = -1.0
    return d


def project(pose: np.ndarray, point, spec: CameraSpec) -> tuple[float, float]:
    """(col, row) continuous pixel coordinates of a world point (pixel centres at +0.5)."""
    pc = pose[:3, :3].T @ (np.asarray(point, float) - pose[:3, 3])
    f = (spec.width / 2) / math.tan(math.radians(spec.hfov) / 2)
    return spec.width / 2 + f * pc[0] / -pc[2], spec.height / 2 - f * pc[1] / -pc[2]


def write_glb(path: Path, gltf: dict, binary: bytes) -> None:
    """Write a GLB container (JSON chunk + BIN chunk), each padded to 4 bytes."""
    js = json.dumps(gltf).encode()
    js += b" " * (-len(js) % 4)
    binary += b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(js) + 8 + len(binary)
    with open(path, "wb") as f:
        f.write(struct.pack("<4sII", b"glTF", 2, total))
        f.write(struct.pack("<II", len(js), 0x4E4F534A) + js)
        f.write(struct.pack("<II", len(binary), 0x004E4942) + binary)


def textured_quad_glb(
    path: Path,
    positions: np.ndarray,
    uvs: np.ndarray,
    image: bytes | None,
    factor: list[float],
    ktx2: bool = False,
) -> None:
    """A one-primitive GLB: a quad with glTF-convention UVs (origin top-left) and a texture.

    With ktx2=True the texture is declared the HM3D way: an image/ktx2 image reached through
    the KHR_texture_basisu extension (payload bytes are not a decodable image).
    """
    idx = np.array([0, 1, 2, 0, 2, 3], np.uint16)
    pos = positions.astype(np.float32).tobytes()
    uv = uvs.astype(np.float32).tobytes()
    ind = idx.tobytes() + b"\0\0"
    img = image if image is not None else b"\xabKTX 20\xbb\r\n\x1a\n" + bytes(64)
    img += b"\0" * (-len(img) % 4)
    offs = np.cumsum([0, len(pos), len(uv), len(ind)])
    gltf: dict = {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{
            "attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "indices": 2, "material": 0}]}],
        "materials": [{"pbrMetallicRoughness": {
            "baseColorTexture": {"index": 0}, "baseColorFactor": factor}}],
        "buffers": [{"byteLength": int(offs[3] + len(img))}],
        "bufferViews": [
            {"buffer": 0, "byteOffset": int(offs[0]), "byteLength": len(pos)},
            {"buffer": 0, "byteOffset": int(offs[1]), "byteLength": len(uv)},
            {"buffer": 0, "byteOffset": int(offs[2]), "byteLength": 12},
            {"buffer": 0, "byteOffset": int(offs[3]), "byteLength": len(img)},
        ],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 4, "type": "VEC3",
             "min": positions.min(0).tolist(), "max": positions.max(0).tolist()},
            {"bufferView": 1, "componentType": 5126, "count": 4, "type": "VEC2"},
            {"bufferView": 2, "componentType": 5123, "count": 6, "type": "SCALAR"},
        ],
    }
    if ktx2:
        gltf["extensionsUsed"] = ["KHR_texture_basisu"]
        gltf["extensionsRequired"] = ["KHR_texture_basisu"]
        gltf["images"] = [{"bufferView": 3, "mimeType": "image/ktx2"}]
        gltf["textures"] = [{"extensions": {"KHR_texture_basisu": {"source": 0}}}]
    else:
        gltf["images"] = [{"bufferView": 3, "mimeType": "image/png"}]
        gltf["textures"] = [{"source": 0}]
    write_glb(path, gltf, pos + uv + ind + img)


def y_up(path):
    """A Y-up stage config next to a fixture .glb (habitat-sim loads a bare .glb Z-up)."""
    path = Path(path)
    path.with_name(path.stem + ".stage_config.json").write_text(
        json.dumps({"render_asset": path.name, "up": [0, 1, 0], "front": [0, 0, -1]}))
    return path


def png_bytes(texels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(texels).save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------- camera spec


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [
        ({"width": 0, "height": 10}, "0"),
        ({"width": 10, "height": -3}, "-3"),
        ({"width": 10.5, "height": 10}, "10.5"),
        ({"width": 10, "height": 10, "hfov": 0.0}, "0.0"),
        ({"width": 10, "height": 10, "hfov": 180}, "180"),
        ({"width": 10, "height": 10, "hfov": -20.0}, "-20.0"),
    ],
)
def test_camera_spec_validation_names_bad_value(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        CameraSpec(**kwargs)


def test_intrinsics_closed_form():
    k = intrinsics(CameraSpec(100, 60, 90.0))
    np.testing.assert_allclose(k, [[50, 0, 50], [0, 50, 30], [0, 0, 1]], atol=1e-12)
    k = intrinsics(CameraSpec(200, 100, 60.0))
    f = 100 / math.tan(math.radians(30))
    np.testing.assert_allclose(k, [[f, 0, 100], [0, f, 50], [0, 0, 1]], atol=1e-9)


# ---------------------------------------------------------------------- depth


@pytest.mark.parametrize("d", [0.5, 2.0, 7.25])
def test_depth_of_frontal_plane_is_constant(d):
    v, f = quad((0.0, 0.0, -d), (500.0, 500.0))
    caster = RayCaster(grey_scene(v, f))
    view = caster.render_view(np.eye(4), CameraSpec(64, 48, 100.0))
    assert view.depth.shape == (48, 64) and view.depth.dtype == np.float32
    np.testing.assert_allclose(view.depth, d, atol=1e-3, rtol=0)
    assert view.rgb.shape == (48, 64, 3) and view.rgb.dtype == np.uint8
    assert (view.rgb == 128).all()


def test_depth_of_frontal_plane_at_shifted_pose():
    # camera at (3, 1, 5) looking -Z; plane z = 1 -> planar distance 4 everywhere
    v, f = quad((3.0, 1.0, 1.0), (500.0, 500.0))
    pose = np.eye(4)
    pose[:3, 3] = [3, 1, 5]
    depth = RayCaster(grey_scene(v, f)).render_view(pose, CameraSpec(40, 40, 90.0)).depth
    np.testing.assert_allclose(depth, 4.0, atol=1e-3, rtol=0)


def test_depth_of_tilted_plane_matches_planar_z():
    # plane through q with normal n; camera at the origin pitched and yawed
    n = np.array([0.3, 0.2, 1.0])
    n /= np.linalg.norm(n)
    q = np.array([0.0, 0.0, -3.0])
    t1 = np.cross(n, [0.0, 1.0, 0.0])
    t1 /= np.linalg.norm(t1)
    t2 = np.cross(n, t1)
    verts = np.array([q - 100 * t1 - 100 * t2, q + 100 * t1 - 100 * t2,
                      q + 100 * t1 + 100 * t2, q - 100 * t1 + 100 * t2])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    spec = CameraSpec(48, 32, 75.0)
    pose = yaw_pitch_pose([0.2, -0.1, 0.4], yaw_deg=10.0, pitch_deg=-8.0)
    depth = RayCaster(grey_scene(verts, faces)).render_view(pose, spec, rgb=False).depth
    # ray o + s * R d (d has z = -1, so s is the planar depth): s = n.(q - o) / n.(R d)
    dw = pixel_rays(spec) @ pose[:3, :3].T
    expected = (n @ (q - pose[:3, 3])) / (dw @ n)
    assert (expected > 0).all()
    np.testing.assert_allclose(depth, expected, atol=1e-3, rtol=0)


def test_depth_inside_box_room_matches_closed_form():
    lo, hi = np.array([-2.0, 0.0, -3.0]), np.array([2.5, 2.8, 1.5])
    room = room_box(bounds=[lo, hi])
    spec = CameraSpec(64, 40, 90.0)
    pose = yaw_pitch_pose([0.3, 1.25, -0.4], yaw_deg=33.0, pitch_deg=12.0)
    caster = RayCaster(grey_scene(room.vertices, room.faces))
    view = caster.render_view(pose, spec)
    dw = pixel_rays(spec) @ pose[:3, :3].T  # [H, W, 3]
    o = pose[:3, 3]
    with np.errstate(divide="ignore"):
        t_axes = np.where(dw > 0, (hi - o) / dw, (lo - o) / dw)  # exit distance per axis
    t_axes[dw == 0] = np.inf
    expected = t_axes.min(axis=-1)
    np.testing.assert_allclose(view.depth, expected, atol=1e-3, rtol=0)
    assert (view.rgb == 128).all()


def test_misses_give_zero_depth_and_black_rgb():
    v, f = quad((0.0, 0.0, -2.0), (1.0, 1.0))  # covers only the middle of a 90 deg view
    spec = CameraSpec(40, 40, 90.0)  # plane spans |x| <= 1 at distance 2: half the image
    view = RayCaster(grey_scene(v, f)).render_view(np.eye(4), spec)
    hit = np.zeros((40, 40), bool)
    hit[10:30, 10:30] = True
    assert (view.depth[~hit] == 0).all() and (view.rgb[~hit] == 0).all()
    np.testing.assert_allclose(view.depth[hit], 2.0, atol=1e-3)
    assert (view.rgb[hit] == 128).all()


# ---------------------------------------------------------------------- intrinsics


@pytest.mark.parametrize(
    ("spec", "point"),
    [
        (CameraSpec(64, 64, 90.0), (0.9, 0.55, -3.0)),
        (CameraSpec(96, 40, 70.0), (-1.3, -0.35, -4.0)),
        (CameraSpec(30, 80, 50.0), (0.4, 1.7, -5.0)),
    ],
)
def test_marker_lands_on_predicted_pixel(spec, point):
    pose = yaw_pitch_pose([0.1, 0.2, 0.3], yaw_deg=-7.0, pitch_deg=4.0)
    point = np.asarray(point) + pose[:3, 3]
    # a background wall far behind and a tiny marker facing the camera at `point`
    wv, wf = quad((0.0, 0.0, -50.0), (1e3, 1e3))
    half = 0.004 * np.linalg.norm(point - pose[:3, 3])  # well under a pixel
    mv, mf = quad(tuple(point), (half, half))
    mv = (mv - point) @ pose[:3, :3].T + point  # marker plane faces the camera
    scene = SceneMesh(
        path="<memory>",
        vertices=np.concatenate([wv, mv]),
        faces=np.concatenate([wf, mf + 4]),
        face_materials=np.array([0, 0, 1, 1], np.int32),
        materials=[Material("wall", np.array([0.0, 0.0, 1.0])),
                   Material("marker", np.array([1.0, 0.0, 0.0]))],
    )
    col, row = project(pose, point, spec)
    # place the marker at a pixel centre so a sub-pixel marker is still sampled
    col_i, row_i = math.floor(col), math.floor(row)
    assert 0 <= col_i < spec.width and 0 <= row_i < spec.height
    f = intrinsics(spec)[0, 0]
    pc = pose[:3, :3].T @ (point - pose[:3, 3])
    z = -pc[2]
    centre_c = np.array([(col_i + 0.5 - spec.width / 2) * z / f,
                         -(row_i + 0.5 - spec.height / 2) * z / f, -z])
    centre_w = pose[:3, :3] @ centre_c + pose[:3, 3]
    scene.vertices[4:] += (centre_w - point).astype(np.float32)
    rgb = RayCaster(scene).render_view(pose, spec, depth=False).rgb
    red = np.argwhere((rgb == [255, 0, 0]).all(axis=-1))
    assert red.tolist() == [[row_i, col_i]]


def test_marker_pixel_shift_matches_focal_length():
    # moving a point sideways by dx at depth z moves it by f * dx / z pixels
    spec = CameraSpec(120, 50, 80.0)
    f = (spec.width / 2) / math.tan(math.radians(40.0))
    z, dx = 5.0, 1.5
    edge_x = dx + 1e-6
    # a wall whose left edge is at x = edge_x: columns right of f*edge_x/z past centre hit it
    v, fc = quad((edge_x + 500.0, 0.0, -z), (500.0, 500.0))
    rgb = RayCaster(grey_scene(v, fc)).render_view(np.eye(4), spec, depth=False).rgb
    hit_cols = np.flatnonzero((rgb[spec.height // 2] > 0).any(axis=-1))
    # pixel c hits iff (c + 0.5 - W/2) / f * z > edge_x
    expected_first = math.floor(spec.width / 2 + f * edge_x / z - 0.5) + 1
    assert hit_cols[0] == expected_first
    assert hit_cols[-1] == spec.width - 1


# ---------------------------------------------------------------------- colours


def hit_on_plane_z(pose, spec, z_plane):
    """World hit points [H, W, 3] of every pixel ray with the plane z = z_plane."""
    dw = pixel_rays(spec) @ pose[:3, :3].T
    s = (z_plane - pose[:3, 3][2]) / dw[..., 2]
    return pose[:3, 3] + s[..., None] * dw


def test_vertex_colored_quad_interpolates_barycentrically(tmp_path):
    v, f = quad((0.0, 0.0, -2.0), (1.0, 1.0))
    corner = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], np.uint8)
    mesh = trimesh.Trimesh(v, f, vertex_colors=corner, process=False)
    path = tmp_path / "vc.ply"
    mesh.export(path)
    spec = CameraSpec(40, 40, 90.0)  # quad covers pixels 10..29
    pose = np.eye(4)
    rgb = RayCaster(load_scene(path)).render_view(pose, spec, depth=False).rgb
    pts = hit_on_plane_z(pose, spec, -2.0)
    for r, c in [(12, 12), (15, 25), (20, 11), (27, 27), (11, 28), (25, 14), (19, 20)]:
        x, y = pts[r, c, 0], pts[r, c, 1]
        s, t = (x + 1) / 2, (y + 1) / 2  # quad-local coordinates in [0, 1]
        # triangle (0,1,2) below the diagonal y = x, else triangle (0,2,3)
        if t <= s:
            w = np.array([1 - s, s - t, t, 0.0])
        else:
            w = np.array([1 - t, 0.0, s, t - s])
        expected = w @ corner.astype(float)
        np.testing.assert_allclose(rgb[r, c].astype(float), expected, atol=1.01)


def test_textured_quad_handcrafted_glb_samples_expected_texel(tmp_path):
    # 8 x 4 texture with a unique colour per texel: (row, col) -> (30*row, 30*col, 200)
    th, tw = 4, 8
    rr, cc = np.meshgrid(np.arange(th), np.arange(tw), indexing="ij")
    texels = np.stack([30 * rr, 30 * cc, np.full_like(rr, 200)], -1).astype(np.uint8)
    # quad x, y in [-1, 1] at z = -2; glTF UV origin is the image's TOP-left:
    # u = (x + 1) (repeats twice across), v = (1 - y) / 2 (top of quad = top of image)
    pos = np.array([[-1, -1, -2], [1, -1, -2], [1, 1, -2], [-1, 1, -2]], np.float64)
    uvs = np.stack([pos[:, 0] + 1, (1 - pos[:, 1]) / 2], -1)
    factor = [1.0, 0.5, 1.0, 1.0]
    path = tmp_path / "tex.glb"
    textured_quad_glb(path, pos, uvs, png_bytes(texels), factor)
    scene = load_scene(y_up(path))
    spec = CameraSpec(64, 64, 90.0)
    rgb = RayCaster(scene).render_view(np.eye(4), spec, depth=False).rgb
    pts = hit_on_plane_z(np.eye(4), spec, -2.0)
    checked = 0
    for r in range(17, 48, 3):
        for c in range(17, 48, 3):
            x, y = pts[r, c, 0], pts[r, c, 1]
            uf = ((x + 1) % 1.0) * tw
            vf = ((1 - y) / 2) * th
            if min(abs(uf - round(uf)), abs(vf - round(vf))) < 1e-3:
                continue  # too close to a texel border to call
            texel = texels[int(vf), int(uf)].astype(float)
            expected = np.rint(texel * np.array(factor[:3]))
            np.testing.assert_array_equal(rgb[r, c], expected, err_msg=f"pixel {(r, c)}")
            checked += 1
    assert checked > 50


def test_textured_mesh_exported_by_trimesh(tmp_path):
    # trimesh UVs have their origin at the image's bottom-left: texel row = floor((1-v) * H)
    th, tw = 6, 5
    rng = np.random.default_rng(3)
    texels = rng.integers(0, 256, (th, tw, 3), dtype=np.uint8)
    v, f = quad((0.0, 0.0, -1.0), (1.0, 1.0))
    uv = np.stack([(v[:, 0] + 1) / 2, (v[:, 1] + 1) / 2], -1)  # bottom-left corner -> (0, 0)
    mat = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(texels))
    mesh = trimesh.Trimesh(v, f, visual=trimesh.visual.TextureVisuals(uv=uv, material=mat),
                           process=False)
    path = tmp_path / "tm.glb"
    mesh.export(path)
    scene = load_scene(y_up(path))
    spec = CameraSpec(50, 50, 100.0)
    rgb = RayCaster(scene).render_view(np.eye(4), spec, depth=False).rgb
    pts = hit_on_plane_z(np.eye(4), spec, -1.0)
    for r, c in [(20, 20), (25, 30), (30, 18), (18, 31), (24, 24), (29, 29)]:
        tu, tv = (pts[r, c, 0] + 1) / 2, (pts[r, c, 1] + 1) / 2
        expected = texels[math.floor((1 - tv) * th), math.floor(tu * tw)]
        np.testing.assert_array_equal(rgb[r, c], expected, err_msg=f"pixel {(r, c)}")


def test_flat_color_fallbacks(tmp_path):
    # left: PBR material without texture -> baseColorFactor; middle: face colours;
    # right: no visual at all -> neutral grey
    lv, lf = quad((-2.0, 0.0, -3.0), (0.9, 0.9))
    mv, mf = quad((0.0, 0.0, -3.0), (0.9, 0.9))
    rv, rf = quad((2.0, 0.0, -3.0), (0.9, 0.9))
    mat = trimesh.visual.material.PBRMaterial(baseColorFactor=[0.2, 0.4, 0.6, 1.0])
    left = trimesh.Trimesh(lv, lf, visual=trimesh.visual.TextureVisuals(material=mat),
                           process=False)
    middle = trimesh.Trimesh(mv, mf, face_colors=[[10, 20, 30, 255], [10, 20, 30, 255]],
                             process=False)
    right = trimesh.Trimesh(rv, rf, process=False)
    path = tmp_path / "flat.glb"
    trimesh.Scene([left, middle, right]).export(path)
    rc = RayCaster(load_scene(y_up(path)))
    spec = CameraSpec(90, 30, 90.0)  # x range at z=-3 is [-3, 3]: 15 px per metre
    rgb = rc.render_view(np.eye(4), spec, depth=False).rgb
    np.testing.assert_array_equal(rgb[15, 15], [51, 102, 153])
    np.testing.assert_array_equal(rgb[15, 45], [10, 20, 30])
    np.testing.assert_array_equal(rgb[15, 75], [255, 255, 255])  # glTF's default material


def test_ktx2_texture_renders_untextured_with_one_warning(tmp_path):
    pos = np.array([[-1, -1, -2], [1, -1, -2], [1, 1, -2], [-1, 1, -2]], np.float64)
    uvs = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float64)
    path = tmp_path / "hm3d_like.glb"
    textured_quad_glb(y_up(path), pos, uvs, None, [0.8, 0.6, 0.4, 1.0], ktx2=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scene = load_scene(path)
    ours = [w for w in caught if "KTX2" in str(w.message)]
    assert len(ours) == 1 and str(path) in str(ours[0].message)
    assert all(m.texture is None for m in scene.materials)
    rgb = RayCaster(scene).render_view(np.eye(4), CameraSpec(20, 20, 90.0), depth=False).rgb
    np.testing.assert_array_equal(rgb[5:15, 5:15].reshape(-1, 3),
                                  np.tile([204, 153, 102], (100, 1)))


# ---------------------------------------------------------------------- pose


def test_turning_left_brings_left_wall_to_front():
    # box room, walls coloured by which way they face the camera
    room = room_box(extents=[6.0, 3.0, 6.0])
    centres = room.triangles_center
    colours = {"front": (255, 0, 0), "left": (0, 255, 0), "right": (0, 0, 255), "back": (255, 255, 0)}
    which = np.full(len(room.faces), 4)  # floor / ceiling
    which[centres[:, 2] < -2.9] = 0  # -Z: in front of an unrotated camera
    which[centres[:, 0] < -2.9] = 1  # -X: on its left
    which[centres[:, 0] > 2.9] = 2
    which[centres[:, 2] > 2.9] = 3
    mats = [Material(k, np.array(c) / 255.0) for k, c in colours.items()]
    mats.append(Material("floor", np.array([0.5, 0.5, 0.5])))
    scene = SceneMesh("<memory>", room.vertices, room.faces, which, mats)
    rc = RayCaster(scene)
    spec = CameraSpec(32, 32, 60.0)
    front = rc.render_view(yaw_pitch_pose([0, 0, 0]), spec, depth=False).rgb
    assert tuple(front[16, 16]) == colours["front"]
    assert tuple(front[16, 0]) == colours["front"]  # 60 deg view sees only the front wall
    turned = rc.render_view(yaw_pitch_pose([0, 0, 0], yaw_deg=90.0), spec).rgb
    assert tuple(turned[16, 16]) == colours["left"]
    right = rc.render_view(yaw_pitch_pose([0, 0, 0], yaw_deg=-90.0), spec).rgb
    assert tuple(right[16, 16]) == colours["right"]
    # looking left, the camera's right-hand side (+X cam) is world -Z (the old front)
    wide = rc.render_view(yaw_pitch_pose([0, 0, 0], yaw_deg=45.0), CameraSpec(32, 32, 60.0)).rgb
    assert tuple(wide[16, 31]) == colours["front"] and tuple(wide[16, 0]) == colours["left"]


# ---------------------------------------------------------------------- casting


def test_equal_specs_share_one_cast_and_match_separate_calls():
    room = room_box(extents=[5.0, 3.0, 4.0])
    rc = RayCaster(grey_scene(room.vertices, room.faces))
    calls = []
    run = rc._run

    def counting_run(origins, dirs):
        calls.append(len(dirs))
        return run(origins, dirs)

    rc._run = counting_run
    pose = yaw_pitch_pose([0.5, 0.2, -0.3], yaw_deg=20.0)
    rgb_spec, depth_spec = CameraSpec(24, 16, 90.0), CameraSpec(24, 16, 90.0)
    both = rc.render(pose, [rgb_spec, depth_spec], [True, False], [False, True])
    assert calls == [24 * 16]
    assert both[0].depth is None and both[1].rgb is None
    rgb_only = rc.render_view(pose, rgb_spec, depth=False)
    depth_only = rc.render_view(pose, depth_spec, rgb=False)
    np.testing.assert_array_equal(both[0].rgb, rgb_only.rgb)
    np.testing.assert_array_equal(both[1].depth, depth_only.depth)
    # a different spec casts separately
    calls.clear()
    views = rc.render(pose, [rgb_spec, CameraSpec(8, 8, 90.0)])
    assert sorted(calls) == [64, 24 * 16]
    assert isinstance(views[1], RenderedView) and views[1].rgb.shape == (8, 8, 3)


def test_render_sensors_returns_one_array_per_sensor():
    room = room_box(extents=[5.0, 3.0, 4.0])
    rc = RayCaster(grey_scene(room.vertices, room.faces))
    pose = yaw_pitch_pose([0.5, 0.2, -0.3], yaw_deg=20.0)
    rgb_spec, depth_spec = CameraSpec(24, 16, 90.0), CameraSpec(32, 32, 90.0)
    rgb, depth = rc.render_sensors(pose, [(rgb_spec, "rgb"), (depth_spec, "depth")])
    assert rgb.shape == (16, 24, 3) and rgb.dtype == np.uint8
    assert depth.shape == (32, 32) and depth.dtype == np.float32
    np.testing.assert_array_equal(depth, rc.render_view(pose, depth_spec, rgb=False).depth)
    with pytest.raises(ValueError, match="semantic"):
        rc.render_sensors(pose, [(rgb_spec, "semantic")])


def test_equal_outputs_are_separate_buffers():
    v, f = quad((0.0, 0.0, -2.0), (50.0, 50.0))
    rc = RayCaster(grey_scene(v, f))
    spec = CameraSpec(8, 8, 90.0)
    a, b = rc.render(np.eye(4), [spec, spec])
    a.depth[:] = -1
    a.rgb[:] = 0
    np.testing.assert_allclose(b.depth, 2.0, atol=1e-3)
    assert (b.rgb == 128).all()


def test_cast_reports_hits_misses_and_normals():
    v, f = quad((0.0, 0.0, -2.0), (1.0, 1.0))
    rc = RayCaster(grey_scene(v, f))
    origins = np.array([[0, 0, 0], [0.5, 0.5, 0], [5, 0, 0], [0, 0, -5]], np.float32)
    dirs = np.array([[0, 0, -2], [0, 0, -1], [0, 0, -1], [0, 0, 1]], np.float32)
    hits = rc.cast(origins, dirs)
    np.testing.assert_array_equal(hits.hit, [True, True, False, True])
    np.testing.assert_allclose(hits.t, [1.0, 2.0, np.inf, 3.0], atol=1e-5)
    assert hits.prim_ids[2] == -1 and (hits.normals[2] == 0).all()
    # the quad's corners run counter-clockwise seen from +Z, so its normal is +Z either side
    np.testing.assert_allclose(hits.normals[[0, 1, 3]], [[0, 0, 1]] * 3, atol=1e-6)
    # barycentrics reproduce the hit point
    for i in (0, 1, 3):
        tri = v[f[hits.prim_ids[i]]]
        p = (1 - hits.u[i] - hits.v[i]) * tri[0] + hits.u[i] * tri[1] + hits.v[i] * tri[2]
        np.testing.assert_allclose(p, origins[i] + hits.t[i] * dirs[i], atol=1e-5)
    one_origin = rc.cast(np.zeros(3), dirs[:2])
    np.testing.assert_allclose(one_origin.t, [1.0, 2.0], atol=1e-5)
    with pytest.raises(ValueError, match="dirs"):
        rc.cast(origins, dirs[:, :2])


def test_threads_give_identical_results():
    room = room_box(extents=[5.0, 3.0, 4.0])
    v, f = trimesh.remesh.subdivide(room.vertices, room.faces)
    scene = grey_scene(v, f)
    pose = yaw_pitch_pose([0.5, 0.2, -0.3], yaw_deg=20.0, pitch_deg=5.0)
    spec = CameraSpec(96, 80, 90.0)
    one = RayCaster(scene).render_view(pose, spec)
    threaded = RayCaster(scene, num_threads=2)
    two = threaded.render_view(pose, spec)
    threaded.close()
    robust = RayCaster(scene, robust=True).render_view(pose, spec)
    np.testing.assert_array_equal(one.depth, two.depth)
    np.testing.assert_array_equal(one.rgb, two.rgb)
    np.testing.assert_allclose(one.depth, robust.depth, atol=1e-5)
    np.testing.assert_array_equal(one.rgb, robust.rgb)
    with pytest.raises(ValueError, match="num_threads"):
        RayCaster(scene, num_threads=0)


def test_render_rejects_bad_pose_and_flags():
    v, f = quad((0.0, 0.0, -2.0), (1.0, 1.0))
    rc = RayCaster(grey_scene(v, f))
    spec = CameraSpec(8, 8, 90.0)
    with pytest.raises(ValueError, match="camera_to_world"):
        rc.render(np.eye(3), [spec])
    with pytest.raises(ValueError, match="want_rgb"):
        rc.render(np.eye(4), [spec, spec], want_rgb=[True])


def test_back_faces_are_culled_as_habitat_sim_draws():
    """A single-sided quad seen from behind is invisible (habitat-sim 0.2.2 culls back faces);
    the wall behind it shows at its closed-form depth; seen from the front the quad shows."""
    front = quad((0.0, 1.0, -2.0), (1.0, 1.0))  # faces +Z, towards a camera at the origin
    back_wall = quad((0.0, 1.0, -5.0), (3.0, 3.0))
    v = np.concatenate([front[0], back_wall[0]])
    f = np.concatenate([front[1], back_wall[1] + len(front[0])])
    spec = CameraSpec(32, 32, 90.0)
    caster = RayCaster(grey_scene(v, f))
    seen = caster.render_view(yaw_pitch_pose([0.0, 1.0, 0.0]), spec, rgb=False).depth
    assert np.allclose(seen[16, 16], 2.0, atol=1e-4)
    # the reversed quad (its front now faces -Z, away from the camera) is culled
    f_rev = f.copy()
    f_rev[:2] = f_rev[:2, ::-1]
    hidden = RayCaster(grey_scene(v, f_rev)).render_view(yaw_pitch_pose([0.0, 1.0, 0.0]), spec, rgb=False).depth
    assert np.allclose(hidden[16, 16], 5.0, atol=1e-4)
    # geometry queries (cast) do not cull
    hits = RayCaster(grey_scene(v, f_rev)).cast(np.array([0.0, 1.0, 0.0]), np.array([[0.0, 0.0, -1.0]]))
    assert np.allclose(hits.t, 2.0, atol=1e-4)
