"""Tests for habitat_fih.sim.scene: loading, flattening, errors and vectorised shading.

Fixtures are tiny meshes built with trimesh in tmp_path; expected values are computed by hand.
A .glb without a stage config is loaded Z-up, as habitat-sim does: world (x, y, z) = (file x,
file z, -file y); .gltf / .obj / .ply are Y-up (file = world). Frames are tested in
test_frames.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from PIL import Image

from habitat_fih.sim.scene import Material, SceneMesh, load_scene


def box_mesh() -> trimesh.Trimesh:
    return trimesh.creation.box(bounds=[[-1.0, 0.0, -2.0], [3.0, 2.5, 1.0]])


@pytest.mark.parametrize("ext", [".obj", ".ply", ".glb", ".gltf"])
def test_round_trip_formats(tmp_path, ext):
    path = tmp_path / f"box{ext}"
    box_mesh().export(path)
    scene = load_scene(path)
    assert scene.path == str(path)
    assert scene.vertices.dtype == np.float32 and scene.vertices.shape[1] == 3
    assert scene.faces.dtype == np.int32 and scene.faces.shape == (12, 3)
    assert scene.face_materials.shape == (12,) and scene.face_materials.dtype == np.int32
    # file bounds [[-1, 0, -2], [3, 2.5, 1]]; a .glb is Z-up: world = (x, z, -y)
    expected = [[-1, -2, -2.5], [3, 1, 0]] if ext == ".glb" else [[-1, 0, -2], [3, 2.5, 1]]
    np.testing.assert_allclose(scene.bounds, expected, atol=1e-6)
    assert scene.bounds.shape == (2, 3)
    # same surface: total area of a 4 x 2.5 x 3 box
    tris = scene.vertices[scene.faces].astype(float)
    area = 0.5 * np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1)
    assert area.sum() == pytest.approx(2 * (4 * 2.5 + 4 * 3 + 2.5 * 3))


def test_scene_graph_transforms_are_applied(tmp_path):
    a = trimesh.creation.box(extents=[1, 1, 1])
    b = trimesh.creation.box(extents=[1, 1, 1])
    b.visual.face_colors = [200, 10, 10, 255]
    sc = trimesh.Scene()
    sc.add_geometry(a, node_name="a")
    t = trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0])
    t[:3, 3] = [10.0, 2.0, -4.0]
    sc.add_geometry(b, node_name="b", transform=t)
    # an instance of the same geometry at a second node
    t2 = np.eye(4)
    t2[:3, 3] = [0.0, 0.0, 5.0]
    sc.add_geometry(a, node_name="a2", geom_name="geometry_0", transform=t2)
    path = tmp_path / "multi.glb"
    sc.export(path)
    scene = load_scene(path)
    assert scene.faces.shape == (36, 3)
    # file bounds [[-0.5, -0.5, -4.5], [10.5, 2.5, 5.5]], then Z-up: world = (x, z, -y)
    np.testing.assert_allclose(scene.bounds, [[-0.5, -4.5, -2.5], [10.5, 5.5, 0.5]], atol=1e-6)
    # the red box's faces are the ones around x = 10 and carry its colour
    centres = scene.vertices[scene.faces].mean(axis=1)
    red = centres[:, 0] > 5
    assert red.sum() == 12
    shaded = scene.shade(np.arange(36), np.full(36, 0.25), np.full(36, 0.25))
    assert (shaded[red] == [200, 10, 10]).all()
    assert not (shaded[~red] == [200, 10, 10]).all(axis=1).any()


def test_missing_file(tmp_path):
    path = tmp_path / "nope.glb"
    with pytest.raises(FileNotFoundError, match="nope.glb"):
        load_scene(path)


def test_unsupported_extension(tmp_path):
    path = tmp_path / "scene.fbx"
    path.write_bytes(b"whatever")
    with pytest.raises(ValueError, match=r"scene\.fbx.*\.glb, \.gltf, \.obj, \.ply"):
        load_scene(path)


@pytest.mark.parametrize("ext", [".glb", ".ply", ".gltf"])
def test_garbage_file(tmp_path, ext):
    path = tmp_path / f"garbage{ext}"
    path.write_bytes(b"\x00\x13 this is not a mesh \xff" * 8)
    with pytest.raises(ValueError, match=f"garbage\\{ext}"):
        load_scene(path)


def test_file_without_triangles(tmp_path):
    path = tmp_path / "points.ply"
    trimesh.PointCloud(np.random.default_rng(0).random((20, 3))).export(path)
    with pytest.raises(ValueError, match=r"points\.ply has no triangles"):
        load_scene(path)
    obj = tmp_path / "empty.obj"
    obj.write_text("# nothing here\n")
    with pytest.raises(ValueError, match=r"empty\.obj"):
        load_scene(obj)


def test_ply_vertex_colors_round_trip(tmp_path):
    mesh = trimesh.Trimesh(
        vertices=[[0, 0, 0], [1, 0, 0], [0, 1, 0]], faces=[[0, 1, 2]],
        vertex_colors=[[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255]], process=False,
    )
    path = tmp_path / "tri.ply"
    mesh.export(path)
    scene = load_scene(path)
    np.testing.assert_array_equal(scene.vertex_colors, [[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    # corners and centroid: (1-u-v)*c0 + u*c1 + v*c2
    out = scene.shade(np.zeros(4, int), np.array([0, 1, 0, 1 / 3]), np.array([0, 0, 1, 1 / 3]))
    np.testing.assert_array_equal(out, [[255, 0, 0], [0, 255, 0], [0, 0, 255], [85, 85, 85]])


def test_obj_texture_round_trip(tmp_path):
    texels = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    uv = v[:, :2].copy()  # trimesh convention: (0, 0) = image bottom-left
    mat = trimesh.visual.material.SimpleMaterial(image=Image.fromarray(texels))
    mesh = trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], process=False,
                           visual=trimesh.visual.TextureVisuals(uv=uv, material=mat))
    path = tmp_path / "quad.obj"
    mesh.export(path)
    scene = load_scene(path)
    assert scene.uv is not None and any(m.texture is not None for m in scene.materials)
    # points near each corner of the quad -> the texel at that corner of the image
    prims, us, vs, expected = [], [], [], []
    for (x, y), texel in [((0.1, 0.1), texels[1, 0]), ((0.9, 0.1), texels[1, 1]),
                          ((0.9, 0.9), texels[0, 1]), ((0.1, 0.9), texels[0, 0])]:
        # barycentrics in face 0 (0,1,2) if y <= x else face 1 (0,2,3), from the loaded mesh
        face = 0 if y <= x else 1
        tri = scene.vertices[scene.faces[face], :2].astype(float)
        m = np.stack([tri[1] - tri[0], tri[2] - tri[0]], 1)
        bu, bv = np.linalg.solve(m, np.array([x, y]) - tri[0])
        prims.append(face)
        us.append(bu)
        vs.append(bv)
        expected.append(texel)
    out = scene.shade(np.array(prims), np.array(us), np.array(vs))
    np.testing.assert_array_equal(out, np.array(expected))


def test_shade_texture_repeat_and_factor():
    # one triangle spanning uv (0,0), (3,0), (0,3): repeat addressing over a 2 x 4 texture
    texels = np.arange(24, dtype=np.uint8).reshape(2, 4, 3) * 10
    scene = SceneMesh(
        path="<memory>",
        vertices=np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], float),
        faces=np.array([[0, 1, 2]]),
        face_materials=np.array([0]),
        materials=[Material("t", base_color=np.array([0.5, 1.0, 1.0]), texture=texels)],
        uv=np.array([[0, 0], [3, 0], [0, 3]], float),
    )
    u = np.array([0.1, 0.3, 0.5, 0.05, 0.2])
    v = np.array([0.1, 0.2, 0.1, 0.6, 0.45])
    s, t = 3 * u, 3 * v  # texture coordinates (trimesh convention, origin bottom-left)
    cols = np.floor((s % 1) * 4).astype(int)
    rows = np.floor(((1 - t) % 1) * 2).astype(int)
    expected = np.rint(texels[rows, cols] * np.array([0.5, 1.0, 1.0]))
    np.testing.assert_array_equal(scene.shade(np.zeros(5, int), u, v), expected)


def test_shade_mixed_materials_and_negative_uv():
    tex = np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8)  # 1 x 2
    scene = SceneMesh(
        path="<memory>",
        vertices=np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 0, 0]], float),
        faces=np.array([[0, 1, 2], [1, 3, 2]]),
        face_materials=np.array([1, 0]),
        materials=[Material("flat", base_color=np.array([1.0, 0.0, 0.2])),
                   Material("tex", base_color=np.ones(3), texture=tex)],
        uv=np.array([[-0.25, 0], [-0.75, 0], [-0.25, 0], [0, 0]], float),
    )
    # face 0 hit at u = 0: s = -0.25 -> wraps to 0.75 -> column 1; u = 1: s = -0.75 -> column 0
    out = scene.shade(np.array([0, 0, 1]), np.array([0.0, 0.9, 0.3]), np.array([0.0, 0.0, 0.3]))
    np.testing.assert_array_equal(out, [[4, 5, 6], [1, 2, 3], [255, 0, 51]])


def test_scene_mesh_validation_names_bad_shapes():
    ok = dict(path="p", vertices=np.zeros((3, 3)), faces=np.array([[0, 1, 2]]),
              face_materials=np.array([0]), materials=[Material("m", np.ones(3))])
    SceneMesh(**ok)
    with pytest.raises(ValueError, match=r"vertices must be \[V, 3\], got \(3, 2\)"):
        SceneMesh(**{**ok, "vertices": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="face indices"):
        SceneMesh(**{**ok, "faces": np.array([[0, 1, 3]])})
    with pytest.raises(ValueError, match="face_materials"):
        SceneMesh(**{**ok, "face_materials": np.array([1])})
    with pytest.raises(ValueError, match=r"uv must be \[3, 2\]"):
        SceneMesh(**{**ok, "uv": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="texture"):
        Material("bad", np.ones(3), texture=np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="shape|equal-length"):
        SceneMesh(**ok).shade(np.array([0, 0]), np.zeros(3), np.zeros(2))


def test_max_texture_size_downscales(tmp_path):
    texels = np.zeros((64, 32, 3), np.uint8)
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0]], float)
    mat = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(texels))
    mesh = trimesh.Trimesh(v, [[0, 1, 2]], process=False,
                           visual=trimesh.visual.TextureVisuals(uv=v[:, :2], material=mat))
    path = tmp_path / "big.glb"
    mesh.export(path)
    full = load_scene(path)
    small = load_scene(path, max_texture_size=16)
    assert [m.texture.shape for m in full.materials if m.texture is not None] == [(64, 32, 3)]
    assert [m.texture.shape for m in small.materials if m.texture is not None] == [(16, 8, 3)]
