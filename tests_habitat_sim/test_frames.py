"""Agent, sensor and scene frames agree between FIHSim-v0 and habitat-sim 0.2.2.

One world-frame scene (Y-up): a 10 x 10 m floor, a closed marker box whose front face is at a
known place, and a wall. It is written three ways habitat-sim reads differently:

* ``zup.glb`` without a stage config: habitat-sim takes a config-less ``.glb`` as Z-up (file z
  is world up, file y is world -z), so the file holds (x, -z, y);
* ``xup.glb`` with ``xup.stage_config.json`` (``up`` [1, 0, 0], ``front`` [0, 0, -1]) next to it:
  the file holds the world rotated so that world up lands on file +x; the scene is named by its
  ``.glb`` (habitat-sim finds the sibling config) and by the config itself;
* ``yup.gltf`` without a config: any name but ``*.glb`` is Y-up.

The file frames are built here from the definition of up / front (file(e_y) = up, file(-e_z) =
front, file(e_x) = front x up), not with habitat_fih.sim.frames. For each file, with both agents
at the same pose: the agent and sensor states agree, the marker's front face is at its
closed-form depth at the pixel its centre projects to, and the depth images agree.
"""

from __future__ import annotations

import json
import math

import harness
import numpy as np
import pytest
import quaternion
import trimesh

MARKER_CENTRE = np.array([2.0, 1.0, -3.0])  # world; the box's +z face at z = -2.75
MARKER_HALF = np.array([0.25, 1.0, 0.25])
POSE = (np.array([2.0, 0.0, 1.0]), 0.0)  # agent at (2, 0, 1), facing -Z: the marker is ahead
SENSOR_HEIGHT = 1.25


def _world_mesh() -> trimesh.Trimesh:
    floor = trimesh.creation.box(bounds=[[-5.0, -0.1, -5.0], [5.0, 0.0, 5.0]])
    marker = trimesh.creation.box(bounds=[MARKER_CENTRE - MARKER_HALF, MARKER_CENTRE + MARKER_HALF])
    wall = trimesh.creation.box(bounds=[[-5.0, 0.0, -4.9], [5.0, 2.5, -4.8]])
    return trimesh.util.concatenate([floor, marker, wall])


def _file_matrix(up, front) -> np.ndarray:
    """file = M @ world for a stage whose file frame has these up / front vectors."""
    up, front = np.asarray(up, float), np.asarray(front, float)
    return np.stack([np.cross(front, up), up, -front], axis=1)


def _write(mesh: trimesh.Trimesh, m: np.ndarray, path, file_type: str) -> None:
    out = mesh.copy()
    out.vertices = mesh.vertices @ m.T
    path.parent.mkdir(parents=True, exist_ok=True)
    if file_type == "glb":
        path.write_bytes(out.export(file_type="glb"))
    else:
        out.export(path, file_type="gltf")


@pytest.fixture(scope="module")
def files():
    root = harness.OUT / "frames"
    mesh = _world_mesh()
    zup = _file_matrix([0, 0, 1], [0, 1, 0])
    assert np.allclose(zup @ [1.0, 2.0, 3.0], [1.0, -3.0, 2.0])  # (x, -z, y), as documented
    _write(mesh, zup, root / "zup.glb", "glb")
    xup = _file_matrix([1, 0, 0], [0, 0, -1])
    _write(mesh, xup, root / "xup.glb", "glb")
    (root / "xup.stage_config.json").write_text(
        json.dumps({"render_asset": "xup.glb", "up": [1, 0, 0], "front": [0, 0, -1]})
    )
    _write(mesh, np.eye(3), root / "yup.gltf", "gltf")
    return {
        "glb_without_config": root / "zup.glb",
        "glb_with_sibling_stage_config_up_x": root / "xup.glb",
        "stage_config_up_x": root / "xup.stage_config.json",
        "gltf_y_up": root / "yup.gltf",
    }


@pytest.mark.parametrize(
    "kind", ["glb_without_config", "glb_with_sibling_stage_config_up_x", "stage_config_up_x", "gltf_y_up"]
)
def test_frames_agree(files, kind):
    hsim, fsim = harness.make_sims(files[kind])
    pos, yaw = POSE
    q = quaternion.from_rotation_vector([0.0, yaw, 0.0])
    oh = hsim.get_observations_at(pos, q, keep_agent_at_new_pose=True)
    of = fsim.get_observations_at(pos, q, keep_agent_at_new_pose=True)
    sh, sf = hsim.get_agent_state(), fsim.get_agent_state()
    assert np.allclose(sh.position, sf.position, atol=1e-5)
    assert abs(abs(float((sh.rotation.conjugate() * sf.rotation).w)) - 1.0) < 1e-6
    for uuid in ("rgb", "depth"):
        ph, pf = sh.sensor_states[uuid], sf.sensor_states[uuid]
        assert np.allclose(ph.position, pos + [0.0, SENSOR_HEIGHT, 0.0], atol=1e-5), (kind, uuid)
        assert np.allclose(pf.position, ph.position, atol=1e-5), (kind, uuid)
        assert abs(abs(float((ph.rotation.conjugate() * pf.rotation).w)) - 1.0) < 1e-6, (kind, uuid)
    # the marker's centre at the sensor's height projects to the image centre column; its front
    # face (z = -2.75) is 3.75 m ahead of the camera at z = 1: planar depth 3.75 in both
    dh, df = harness.depth_metres(oh), harness.depth_metres(of)
    h, w = dh.shape
    f = (w / 2) / math.tan(math.radians(90.0) / 2)
    expected = 1.0 - (MARKER_CENTRE[2] + MARKER_HALF[2])
    row = int(h / 2 - f * (MARKER_CENTRE[1] - SENSOR_HEIGHT) / expected)
    for d, who in ((dh, "habitat-sim"), (df, "FIHSim-v0")):
        assert d[row, w // 2] == pytest.approx(expected, abs=0.01), (kind, who)
    ok = (dh > 0) & (df > 0) & ~harness.depth_edges(dh) & ~harness.depth_edges(df)
    assert ok.mean() > 0.3  # floor, marker and wall; the sky above the wall is empty
    assert (np.abs(dh - df)[ok] <= 0.01).mean() >= 0.99, kind
