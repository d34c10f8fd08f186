"""Tests for habitat_fih.sim.frames and the frames load_scene applies (habitat-sim v0.2.2 rules).

Fixtures are tiny meshes written with trimesh into tmp_path. Expected world coordinates are
written out by hand from the rule under test, never taken from the code: for a Z-up file
(up (0, 0, 1), front (0, 1, 0)) world (x, y, z) = (file x, file z, -file y).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from habitat_fih.sim.frames import Y_UP, Z_UP, SceneFrame, name_based_frame, resolve_scene
from habitat_fih.sim.scene import load_scene

# an asymmetric tetrahedron in habitat's world frame (Y-up): apex up at y = 2
WORLD = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.5, 2.0, -0.25]])
# the same points in a Z-up file, by hand: file (x, y, z) = world (x, -z, y)
ZUP_FILE = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.25, 2.0]])
FACES = np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [2, 0, 3]])


def write(path, vertices, **kw):
    trimesh.Trimesh(vertices, FACES, process=False, **kw).export(path)
    return path


def rows(a):
    """Vertices as a sorted list of rounded rows (order-free comparison)."""
    return sorted(map(tuple, np.round(np.asarray(a, float), 6).tolist()))


def write_json(path, doc):
    path.write_text(json.dumps(doc))
    return path


# ---------------------------------------------------------------------- rotations
def test_z_up_rotation_in_closed_form():
    np.testing.assert_array_equal(Z_UP.rotation, [[1, 0, 0], [0, 0, 1], [0, -1, 0]])
    np.testing.assert_array_equal(Y_UP.rotation, np.eye(3))
    m = Z_UP.matrix()
    assert m.shape == (4, 4) and np.array_equal(m[:3, 3], [0, 0, 0]) and m[3, 3] == 1
    np.testing.assert_array_equal(Z_UP.to_world(ZUP_FILE), WORLD)


def test_general_frame_maps_up_to_plus_y_and_front_to_minus_z():
    # up = file +X, front = file -Z: world = (-file y, file x, file z)
    f = SceneFrame(up=(1, 0, 0), front=(0, 0, -1))
    np.testing.assert_array_equal(f.rotation @ [1, 0, 0], [0, 1, 0])
    np.testing.assert_array_equal(f.rotation @ [0, 0, -1], [0, 0, -1])
    np.testing.assert_array_equal(f.to_world([[1.0, 2.0, 3.0]]), [[-2.0, 1.0, 3.0]])
    assert np.linalg.det(f.rotation) == pytest.approx(1.0)


@pytest.mark.parametrize("name, z_up", [
    ("a/b/scene.glb", True), ("scene.GLB", False), ("scene.gltf", False), ("scene.obj", False),
    ("scene.ply", False), ("apartment_0/mesh.ply", True), ("x/house_semantic.ply", False),
])
def test_name_based_defaults(name, z_up):
    f = name_based_frame(name)
    assert (f.up, f.front) == (((0, 0, 1), (0, 1, 0)) if z_up else ((0, 1, 0), (0, 0, -1)))
    assert name in f.source


# ---------------------------------------------------------------------- load_scene frames
def test_z_up_glb_and_y_up_obj_twin_give_the_same_world(tmp_path):
    glb = load_scene(write(tmp_path / "tet.glb", ZUP_FILE))
    obj = load_scene(write(tmp_path / "tet.obj", WORLD))
    assert rows(glb.vertices) == rows(obj.vertices) == rows(WORLD)
    np.testing.assert_allclose(glb.bounds, [[0, 0, -1], [3, 2, 0]], atol=1e-7)
    np.testing.assert_allclose(obj.bounds, glb.bounds, atol=1e-7)
    assert glb.frame.up == (0, 0, 1) and "tet.glb" in glb.frame.source
    assert obj.frame.up == (0, 1, 0)
    # the same Z-up file as .gltf is NOT rotated: habitat-sim's rule is the .glb name only
    gltf = load_scene(write(tmp_path / "tet.gltf", ZUP_FILE))
    assert rows(gltf.vertices) == rows(ZUP_FILE)


def test_node_transforms_apply_before_the_frame(tmp_path):
    sc = trimesh.Scene()
    t = np.eye(4)
    t[:3, 3] = [1.0, 2.0, 3.0]  # file translation; world = (1, 3, -2) after Z-up
    sc.add_geometry(trimesh.Trimesh(ZUP_FILE, FACES, process=False), transform=t)
    sc.export(tmp_path / "moved.glb")
    mesh = load_scene(tmp_path / "moved.glb")
    assert rows(mesh.vertices) == rows(WORLD + [1.0, 3.0, -2.0])


def test_sibling_stage_config_makes_a_glb_y_up(tmp_path):
    write(tmp_path / "room.glb", WORLD)
    cfg = write_json(tmp_path / "room.stage_config.json",
                     {"render_asset": "room.glb", "up": [0, 1, 0], "front": [0, 0, -1]})
    mesh = load_scene(tmp_path / "room.glb")
    assert rows(mesh.vertices) == rows(WORLD)
    assert mesh.frame.up == (0, 1, 0) and str(cfg) in mesh.frame.source


def test_stage_config_without_up_front_is_y_up_even_for_a_glb(tmp_path):
    # configs get the attributes' constructor defaults, not the .glb name rule
    write(tmp_path / "room.glb", WORLD)
    write_json(tmp_path / "room.stage_config.json", {"render_asset": "room.glb"})
    assert rows(load_scene(tmp_path / "room.glb").vertices) == rows(WORLD)


def test_scene_path_that_is_a_stage_config(tmp_path):
    (tmp_path / "meshes").mkdir()
    write(tmp_path / "meshes" / "tet.obj", ZUP_FILE)
    cfg = write_json(tmp_path / "tet.stage_config.json",
                     {"render_asset": "meshes/tet.obj", "up": [0, 0, 1], "front": [0, 1, 0]})
    mesh = load_scene(cfg)
    assert rows(mesh.vertices) == rows(WORLD)
    assert mesh.path == str(tmp_path / "meshes" / "tet.obj")
    r = resolve_scene(cfg)
    assert r.config == str(cfg) and r.asset == str(tmp_path / "meshes" / "tet.obj")


def test_scene_dataset_default_attributes_are_honoured(tmp_path):
    write(tmp_path / "a.glb", [[1.0, 2.0, 3.0], [0, 0, 0], [0, 0, 1], [0, 1, 0]])
    ds = write_json(tmp_path / "x.scene_dataset_config.json",
                    {"stages": {"default_attributes": {"up": [1, 0, 0], "front": [0, 0, -1]}}})
    # up = file +X, front = file -Z: world = (-file y, file x, file z)
    mesh = load_scene(tmp_path / "a.glb", scene_dataset=ds)
    assert rows(mesh.vertices) == rows([[-2, 1, 3], [0, 0, 0], [0, 0, 1], [-1, 0, 0]])
    assert str(ds) in mesh.frame.source
    # "default" is habitat's name for no dataset: the .glb rule (Z-up) applies
    assert load_scene(tmp_path / "a.glb", scene_dataset="default").frame.up == (0, 0, 1)
    # the dataset name may omit the extension, as in habitat-sim
    assert resolve_scene(tmp_path / "a.glb", tmp_path / "x").frame.up == (1, 0, 0)


def test_dataset_defaults_replace_the_glb_rule(tmp_path):
    write(tmp_path / "a.glb", WORLD)
    # default_attributes present but silent on up / front: constructor defaults, i.e. Y-up
    ds = write_json(tmp_path / "y.scene_dataset_config.json",
                    {"stages": {"default_attributes": {"origin": [1, 2, 3]}}})
    assert rows(load_scene(tmp_path / "a.glb", scene_dataset=ds).vertices) == rows(WORLD)
    # no default_attributes at all: the .glb name rule (Z-up) applies
    ds2 = write_json(tmp_path / "z.scene_dataset_config.json", {"stages": {"paths": {}}})
    assert resolve_scene(tmp_path / "a.glb", ds2).frame.up == (0, 0, 1)


def test_dataset_stage_configs_under_paths_match_by_substring(tmp_path):
    (tmp_path / "meshes").mkdir()
    (tmp_path / "stages").mkdir()
    write(tmp_path / "meshes" / "kitchen.glb", WORLD)
    cfg = write_json(tmp_path / "stages" / "kitchen.stage_config.json",
                     {"render_asset": "../meshes/kitchen.glb", "up": [0, 1, 0],
                      "front": [0, 0, -1]})
    defaults = {"up": [0, 0, 1], "front": [0, 1, 0]}
    ds = write_json(tmp_path / "d.scene_dataset_config.json", {"stages": {
        "default_attributes": defaults, "paths": {".json": ["stages"]}}})
    # "KITCHEN" is a substring of the config's handle (case-insensitive): its render asset, Y-up
    r = resolve_scene("KITCHEN", ds)
    assert r.config == str(cfg) and r.frame.up == (0, 1, 0)
    assert r.asset == str(tmp_path / "stages" / ".." / "meshes" / "kitchen.glb")
    assert rows(load_scene("KITCHEN", scene_dataset=ds).vertices) == rows(WORLD)
    # with the meshes registered too, the first handle in sorted order wins: .../meshes/kitchen.glb
    # (no sibling config), which takes the dataset defaults (Z-up)
    ds2 = write_json(tmp_path / "d2.scene_dataset_config.json", {"stages": {
        "default_attributes": defaults, "paths": {".json": ["stages"], ".glb": ["meshes/*.glb"]}}})
    r = resolve_scene("kitchen", ds2)
    assert r.config is None and r.asset == str(tmp_path / "meshes" / "kitchen.glb")
    assert r.frame.up == (0, 0, 1)


def test_origin_and_units_are_recorded_but_not_applied(tmp_path):
    # habitat-sim v0.2.2 stores origin / units_to_meters but never applies them to the stage mesh
    write(tmp_path / "s.glb", WORLD)
    write_json(tmp_path / "s.stage_config.json", {
        "render_asset": "s.glb", "up": [0, 1, 0], "front": [0, 0, -1],
        "origin": [10, 20, 30], "units_to_meters": 0.01})
    mesh = load_scene(tmp_path / "s.glb")
    assert mesh.frame.origin == (10, 20, 30) and mesh.frame.units_to_meters == 0.01
    assert rows(mesh.vertices) == rows(WORLD)
    np.testing.assert_array_equal(mesh.frame.matrix(), np.eye(4))


# ---------------------------------------------------------------------- errors
ASSET = {"render_asset": "m.glb"}


@pytest.mark.parametrize("doc, match", [
    ({**ASSET, "up": [0, 0, 1], "front": [0, 0, -1]},
     r"'up' \[0, 0, 1\] is parallel to 'front' \[0, 0, -1\]"),
    ({**ASSET, "up": [0, 1, 0], "front": [0, 1, 1]},
     r"'front' must be a unit vector, got \[0, 1, 1\]"),
    ({**ASSET, "up": [0, 0, 0]}, r"'up' must be a non-zero unit vector, got \[0, 0, 0\]"),
    ({**ASSET, "up": [0, 1]}, r"'up' must be a list of 3 finite numbers, got \[0, 1\]"),
    ({**ASSET, "origin": "here"}, r"'origin' must be a list of 3 finite numbers, got 'here'"),
    ({**ASSET, "units_to_meters": 0}, r"'units_to_meters' must be a positive number, got 0"),
    ({"render_asset": "nope.glb"}, r"render_asset 'nope.glb' not found"),
    ({"up": [0, 1, 0]}, r"'render_asset' must name the scene's mesh file"),
])
def test_bad_stage_config_is_one_clear_value_error(tmp_path, doc, match):
    write(tmp_path / "m.glb", WORLD)
    cfg = write_json(tmp_path / "m.stage_config.json", doc)
    with pytest.raises(ValueError, match=match) as err:
        load_scene(tmp_path / "m.glb")
    assert str(cfg) in str(err.value) and "\n" not in str(err.value)


def test_bad_json_and_bad_dataset(tmp_path):
    write(tmp_path / "m.glb", WORLD)
    cfg = tmp_path / "m.stage_config.json"
    cfg.write_text("{not json")
    with pytest.raises(ValueError, match=r"m\.stage_config\.json is not valid json"):
        load_scene(tmp_path / "m.glb")
    cfg.unlink()
    ds = tmp_path / "bad.scene_dataset_config.json"
    for doc, match in [({"stages": []}, r"'stages' must be an object"),
                       ({"stages": {"default_attributes": {"front": [0, 0, 2]}}},
                        r"'front' must be a unit vector, got \[0, 0, 2\]"),
                       ({"stages": {"paths": {".glb": "*.glb"}}}, r"'stages.paths\['.glb'\]'")]:
        write_json(ds, doc)
        with pytest.raises(ValueError, match=match) as err:
            load_scene(tmp_path / "m.glb", scene_dataset=ds)
        assert "bad.scene_dataset_config.json" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match=r"missing\.scene_dataset_config\.json"):
        load_scene(tmp_path / "m.glb", scene_dataset=tmp_path / "missing.scene_dataset_config.json")
    with pytest.raises(FileNotFoundError, match=r"absent\.stage_config\.json"):
        load_scene(tmp_path / "absent.stage_config.json")


def test_scene_frame_validates_directly():
    with pytest.raises(ValueError, match=r"mine: 'up' \[0, 1, 0\] is not perpendicular"):
        SceneFrame(up=(0, 1, 0), front=(0, 0.6, -0.8), source="mine")


# ---------------------------------------------------------------------- default material
def test_gltf_primitive_without_material_is_white_obj_stays_grey(tmp_path):
    for ext, expected in [(".glb", 255), (".gltf", 255), (".obj", 128), (".ply", 128)]:
        mesh = load_scene(write(tmp_path / f"plain{ext}", WORLD))
        out = mesh.shade(np.arange(4), np.full(4, 0.2), np.full(4, 0.3))
        np.testing.assert_array_equal(out, np.full((4, 3), expected), err_msg=ext)


def test_z_up_glb_and_y_up_obj_twin_navigate_the_same(tmp_path):
    """A room (floor + a single-sided wall quad) written Z-up as .glb and Y-up as .obj: FIHSim-v0's
    grid has the same navigable set and geodesics in world coordinates; the wall blocks in both."""
    from habitat_fih.sim.navigation import NavGrid

    world = np.array([[0, 0, 0], [0, 0, 8], [8, 0, 8], [8, 0, 0],  # floor, front face up
                      [4, 0, 0], [4, 0, 6], [4, 2.5, 6], [4, 2.5, 0]], float)  # wall at x = 4
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    zup = world[:, [0, 2, 1]] * np.array([1.0, -1.0, 1.0])  # file (x, y, z) = world (x, -z, y)
    trimesh.Trimesh(zup, faces, process=False).export(tmp_path / "room.glb")
    trimesh.Trimesh(world, faces, process=False).export(tmp_path / "room.obj")
    grids = []
    for name in ("room.glb", "room.obj"):
        mesh = load_scene(tmp_path / name)
        grids.append(NavGrid.from_mesh(mesh.vertices, mesh.faces, name=name))
    a, b = grids
    assert np.array_equal(a.node_col, b.node_col) and (a.x0, a.z0) == (b.x0, b.z0)
    np.testing.assert_allclose(a.node_y, b.node_y, atol=1e-6)
    start, goal = np.array([2.0, 0, 2]), np.array([6.0, 0, 2])
    da, db = a.geodesic_distance(start, [goal]), b.geodesic_distance(start, [goal])
    assert da == pytest.approx(db, abs=1e-6) and da > 2 * np.hypot(2, 4)  # round the wall's end
