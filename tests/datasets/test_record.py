"""``python -m habitat_fih.datasets.record``: the expert's path as a video + geometry sidecar.

One short clip (``--max-steps 20``) of the first val_seen episode is recorded once per module and
checked against things computed here without the recorder: the episode file's start state
(frame 0's pose, in closed form and with ``pose_from_agent_state``), the motion model (each pose
follows from the one before by exactly the recorded action), a ray cast of our own
(Möller-Trumbore in numpy on the scene mesh loaded with trimesh) for the depth, the dataset's
oracle actions (``val_seen_gt.json.gz``, written when the data was generated) for the actions,
and the scene rendered at the recorded poses for the video's frames.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import trimesh

from habitat_fih.config import get_config
from habitat_fih.datasets.record import DEFAULT_CONFIG, main
from habitat_fih.datasets.sidecar import read_sidecar, sidecar_path
from habitat_fih.geometry.camera import pose_from_agent_state, quat_from_coeffs

from .conftest import ROOT, SCENES, split_data, split_gt

SPLIT = "val_seen"
STEPS = 20
STOP, FORWARD, LEFT, RIGHT = 0, 1, 2, 3


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


def _read_video(path: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return frames, fps


@pytest.fixture(scope="module")
def episode() -> dict:
    return split_data(SPLIT)["episodes"][0]


@pytest.fixture(scope="module")
def cfg():
    return get_config(DEFAULT_CONFIG, [f"habitat.dataset.split={SPLIT}"])


@pytest.fixture(scope="module")
def clip(tmp_path_factory, episode) -> dict:
    folder = tmp_path_factory.mktemp("clip")
    out = folder / "clip.mp4"
    rc, stdout, stderr = _run(
        ["--split", SPLIT, "--episode", str(episode["episode_id"]), "--out", str(out),
         "--max-steps", str(STEPS)]
    )  # fmt: skip
    assert rc == 0, stderr[-3000:]
    frames, fps = _read_video(out)
    return {
        "folder": folder,
        "out": out,
        "stdout": stdout,
        "frames": frames,
        "fps": fps,
        "sidecar": read_sidecar(sidecar_path(out)),
    }


# ------------------------------------------------------------------------------- files
def test_writes_video_and_sidecar_only(clip):
    assert sidecar_path(clip["out"]).name == "clip.geometry.npz"
    assert sorted(p.name for p in clip["folder"].iterdir()) == ["clip.geometry.npz", "clip.mp4"]
    last = clip["stdout"].strip().splitlines()[-1]
    assert str(clip["out"]) in last and "clip.geometry.npz" in last
    assert f"{STEPS + 1} frames" in last and "did not end with STOP" in last


def test_video_has_n_frames_of_the_configured_resolution(clip, cfg):
    sensors = cfg.habitat.simulator.agents.main_agent.sim_sensors
    h, w = int(sensors.rgb_sensor.height), int(sensors.rgb_sensor.width)
    assert len(clip["frames"]) == STEPS + 1
    assert {f.shape for f in clip["frames"]} == {(h, w, 3)}
    assert clip["fps"] == pytest.approx(5.0)


def test_sidecar_matches_video_and_episode(clip, cfg, episode):
    s = clip["sidecar"]
    n = len(clip["frames"])
    assert s.num_frames == n
    np.testing.assert_array_equal(s.frame_indices, np.arange(n))
    assert s.actions[-1] == -1 and s.actions.shape == (n,)
    sensors = cfg.habitat.simulator.agents.main_agent.sim_sensors
    depth_cfg = sensors.depth_sensor
    assert s.depth.shape == (n, depth_cfg.height, depth_cfg.width)
    assert s.hfov == pytest.approx(float(depth_cfg.hfov))
    assert s.max_depth == pytest.approx(float(depth_cfg.max_depth))
    # closed form: fx = fy = (W/2) / tan(hfov/2), principal point at the centre
    f = (depth_cfg.width / 2) / math.tan(math.radians(depth_cfg.hfov) / 2)
    k = np.array([[f, 0, depth_cfg.width / 2], [0, f, depth_cfg.height / 2], [0, 0, 1]])
    np.testing.assert_allclose(s.intrinsics, np.broadcast_to(k, (n, 3, 3)), atol=1e-9)
    task = cfg.habitat.task
    assert s.working_resolution == task.working_resolution
    assert s.abs_tol == pytest.approx(task.covisibility_abs_tol)
    assert s.rel_tol == pytest.approx(task.covisibility_rel_tol)
    assert s.min_overlap == pytest.approx(task.lab_sensors.frame_heatmaps.min_overlap)
    assert s.episode_id == str(episode["episode_id"])
    assert s.scene_id.endswith(episode["scene_id"])
    assert s.split == SPLIT
    assert s.instruction == episode["instruction"]["instruction_text"]


# ------------------------------------------------------------------------------- geometry
def _rot_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def test_first_pose_is_the_episode_start(clip, cfg, episode):
    sensor = cfg.habitat.simulator.agents.main_agent.sim_sensors.depth_sensor
    start = np.asarray(episode["start_position"], np.float64)
    x, y, z, w = episode["start_rotation"]
    assert x == 0 and z == 0  # a rotation about +Y: closed form below
    assert list(sensor.orientation) == [0, 0, 0] and sensor.position[0] == sensor.position[2] == 0
    expected = np.eye(4)
    expected[:3, :3] = _rot_y(2.0 * math.atan2(y, w))
    expected[:3, 3] = start + np.asarray(sensor.position)  # the offset is along the rotation axis
    pose0 = clip["sidecar"].poses[0]
    np.testing.assert_allclose(pose0, expected, atol=1e-6)
    by_function = pose_from_agent_state(
        start, quat_from_coeffs(episode["start_rotation"]), sensor.position, sensor.orientation
    )
    np.testing.assert_allclose(pose0, by_function, atol=1e-6)


def _follows_by_one_action(p0, p1, action, step, turn, collided=False) -> str | None:
    """None when pose p1 is p0 moved by `action`, else what is wrong."""
    r0, r1, t0, t1 = p0[:3, :3], p1[:3, :3], p0[:3, 3], p1[:3, 3]
    if action in (LEFT, RIGHT):
        expected = _rot_y(turn if action == LEFT else -turn) @ r0
        if not (np.allclose(r1, expected, atol=1e-9) and np.allclose(t1, t0, atol=1e-9)):
            return f"turn {action}: rotation or position off"
        return None
    if not np.allclose(r1, r0, atol=1e-12):
        return f"action {action} changed the rotation"
    if action == STOP:
        return None if np.allclose(t1, t0, atol=1e-12) else "STOP moved the camera"
    heading = -r0[:, 2].copy()
    heading[1] = 0.0
    heading /= np.linalg.norm(heading)
    moved = t1 - t0
    horizontal = moved.copy()
    horizontal[1] = 0.0
    if abs(moved[1]) > 1e-6:
        return f"forward changed the height by {moved[1]} on a flat floor"
    if collided:  # slid along a wall: shorter than a step
        return None if np.linalg.norm(horizontal) <= step + 1e-6 else "slid farther than a step"
    if not np.allclose(horizontal, step * heading, atol=1e-6):
        return f"forward moved {horizontal.tolist()}, expected {(step * heading).tolist()}"
    return None


def test_successive_poses_differ_by_exactly_one_action(clip, cfg):
    s = clip["sidecar"]
    step = float(cfg.habitat.simulator.forward_step_size)
    turn = math.radians(float(cfg.habitat.simulator.turn_angle))
    # the expert's clip has no collision (the Collisions measure, in the final line)
    assert clip["stdout"].strip().endswith("collisions: 0")
    acts = s.actions[:-1]
    assert {FORWARD, LEFT, RIGHT} <= set(acts.tolist())  # the clip exercises every motion
    problems = [
        (i, p)
        for i, a in enumerate(acts)
        if (p := _follows_by_one_action(s.poses[i], s.poses[i + 1], int(a), step, turn))
    ]
    assert not problems


def test_pose_check_catches_a_wrong_step(clip, cfg):
    """The check above is not vacuous: a step 1 cm too long, or a turn the wrong way, fails."""
    s = clip["sidecar"]
    step = float(cfg.habitat.simulator.forward_step_size)
    turn = math.radians(float(cfg.habitat.simulator.turn_angle))
    i = int(np.flatnonzero(s.actions == FORWARD)[0])
    bad = s.poses[i + 1].copy()
    bad[:3, 3] += 0.01 * -s.poses[i][:3, 2]
    assert _follows_by_one_action(s.poses[i], bad, FORWARD, step, turn)
    j = int(np.flatnonzero(s.actions == RIGHT)[0])
    assert _follows_by_one_action(s.poses[j], s.poses[j + 1], LEFT, step, turn)


def _world_mesh(scene_id: str) -> np.ndarray:
    """Triangles [F, 3, 3] of the scene in habitat's world frame. The bundled houses are .glb
    files without a stage config, which habitat-sim 0.2.2 loads as Z-up (MP3D's convention):
    world (x, y, z) = (file x, file z, -file y)."""
    path = SCENES / scene_id
    assert not path.with_name(path.stem + ".stage_config.json").exists()
    mesh = trimesh.load(path, force="scene").to_geometry()
    v = np.asarray(mesh.vertices, np.float64)
    world = np.stack([v[:, 0], v[:, 2], -v[:, 1]], axis=1)
    return world[np.asarray(mesh.faces)]


def _first_hit(tris: np.ndarray, origin: np.ndarray, direction: np.ndarray) -> float:
    """Möller-Trumbore over every triangle (both sides): smallest t > 0 with origin + t d on a
    triangle, inf if none."""
    a, b, c = tris[:, 0], tris[:, 1], tris[:, 2]
    e1, e2 = b - a, c - a
    p = np.cross(direction, e2)
    det = np.einsum("ij,ij->i", e1, p)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = origin - a
    u = np.einsum("ij,ij->i", s, p) * inv
    q = np.cross(s, e1)
    v = (q @ direction) * inv
    t = np.einsum("ij,ij->i", e2, q) * inv
    hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-9)
    return float(t[hit].min()) if hit.any() else math.inf


@pytest.mark.parametrize("frame", [0, STEPS])
def test_depth_at_the_centre_equals_an_own_ray_cast(clip, frame):
    s = clip["sidecar"]
    tris = _world_mesh(s.scene_id.split("scene_datasets/")[-1])
    _, h, w = s.depth.shape
    k = s.intrinsics[frame]
    pose = s.poses[frame]
    checked = 0
    for i, j in [(h // 2, w // 2), (h // 2 - 1, w // 2 - 1)]:  # the 2 pixels nearest the centre
        u, v = j + 0.5, i + 0.5
        # habitat camera frame, scaled so that -z = 1: the ray parameter IS the planar depth
        ray_cam = np.array([(u - k[0, 2]) / k[0, 0], -(v - k[1, 2]) / k[1, 1], -1.0])
        depth = _first_hit(tris, pose[:3, 3], pose[:3, :3] @ ray_cam)
        recorded = float(s.depth[frame, i, j])
        if depth >= s.max_depth:
            assert recorded == 0.0
        else:
            assert recorded == pytest.approx(depth, abs=1e-4)
            checked += 1
    assert checked > 0


def test_actions_are_the_experts(clip, episode):
    """The shortest_path_sensor's actions along the clip = the dataset's oracle actions (habitat's
    greedy geodesic follower, goal radius 0.5 m, run when the data was generated)."""
    oracle = split_gt(SPLIT)[str(episode["episode_id"])]["actions"]
    np.testing.assert_array_equal(clip["sidecar"].actions[:-1], oracle[:STEPS])


def test_video_frames_are_the_rgb_views_in_order(clip):
    """Video frame i is the RGB view at pose i, in RGB order (the scene rendered here)."""
    from habitat_fih.sim.render import CameraSpec, RayCaster
    from habitat_fih.sim.scene import load_scene

    s = clip["sidecar"]
    caster = RayCaster(load_scene(str(SCENES / s.scene_id.split("scene_datasets/")[-1])))
    h, w, _ = clip["frames"][0].shape
    spec = CameraSpec(width=w, height=h, hfov=s.hfov)

    def render(i: int) -> np.ndarray:
        (rgb,) = caster.render_sensors(s.poses[i], [(spec, "rgb")])
        return np.asarray(rgb)[..., :3].astype(np.float64)

    for i in (0, STEPS // 2, STEPS):
        video = cv2.cvtColor(clip["frames"][i], cv2.COLOR_BGR2RGB).astype(np.float64)
        err = np.abs(video - render(i)).mean()
        swapped = np.abs(video[..., ::-1] - render(i)).mean()
        others = [np.abs(video - render(j)).mean() for j in (0, STEPS) if j != i]
        assert err < 8.0, (i, err)
        assert err < swapped, (i, err, swapped)
        assert all(err < o for o in others), (i, err, others)


# ------------------------------------------------------------------------------- full path
def test_reference_follower_whole_path_to_avi(tmp_path, episode, cfg):
    """Without --max-steps the episode runs to STOP; the reference follower passes each waypoint
    of the episode's reference_path in order and stops within the expert's goal radius."""
    out = tmp_path / "ref.avi"
    rc, stdout, stderr = _run(
        ["--episode", str(episode["episode_id"]), "--out", str(out), "--follower", "reference"]
    )
    assert rc == 0, stderr[-3000:]
    assert "ended with STOP" in stdout and "did not" not in stdout
    s = read_sidecar(sidecar_path(out))
    frames, _ = _read_video(out)
    assert len(frames) == s.num_frames
    assert s.actions[-2] == STOP and s.actions[-1] == -1 and (s.actions[:-2] != STOP).all()
    offset = cfg.habitat.simulator.agents.main_agent.sim_sensors.depth_sensor.position
    floor = s.poses[:, :3, 3] - np.asarray(offset)  # the agent under the camera (no roll/pitch)
    reached = []
    for waypoint in episode["reference_path"][1:-1]:
        d = np.linalg.norm((floor - np.asarray(waypoint))[:, [0, 2]], axis=1)
        assert d.min() <= 0.25 + 1e-6, waypoint
        reached.append(int(d.argmin()))
    assert reached == sorted(reached)
    goal = np.asarray(episode["goals"][0]["position"])
    assert np.linalg.norm((floor[-1] - goal)[[0, 2]]) <= 0.5


# ------------------------------------------------------------------------------- bad input
def _assert_refused(argv: list[str], folder: Path, *needles: str) -> None:
    before = sorted(os.listdir(folder)) if folder.is_dir() else None
    rc, stdout, stderr = _run(argv)
    assert rc == 2, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and len(_error_lines(stderr)) == 1, stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    if before is not None:
        assert sorted(os.listdir(folder)) == before


def test_unknown_episode_names_it_and_valid_ids(tmp_path, episode):
    _assert_refused(
        ["--episode", "no-such-id", "--out", str(tmp_path / "clip.mp4")],
        tmp_path,
        "'no-such-id'",
        str(episode["episode_id"]),
    )


def test_bad_inputs_exit_2_and_write_nothing(tmp_path):
    out = str(tmp_path / "clip.mp4")
    _assert_refused(["--episode", "100000", "--out", str(tmp_path / "clip.mkv")], tmp_path, ".mkv")
    _assert_refused(["--episode", "100000", "--out", out, "--max-steps", "-1"], tmp_path, "-1")
    _assert_refused(["--episode", "100000", "--out", out, "--fps", "0"], tmp_path, "--fps")
    _assert_refused(["--episode", "100000", "--out", out, "--split", "nope"], tmp_path, "'nope'")
    missing = tmp_path / "missing" / "clip.mp4"
    _assert_refused(["--episode", "100000", "--out", str(missing)], tmp_path, "does not exist")
    (tmp_path / "file").write_text("x")
    _assert_refused(["--episode", "100000", "--out", str(tmp_path / "file" / "c.mp4")], tmp_path)
    _assert_refused(["--episode", "100000"], tmp_path, "--out")
    # another video of the same stem would share clip.geometry.npz
    (tmp_path / "clip.avi").write_bytes(b"")
    _assert_refused(["--episode", "100000", "--out", out], tmp_path, "clip.avi")


def test_mismatched_rgb_and_depth_sensors_are_refused(tmp_path):
    """benchmark/nav/fih_vln_synthetic has a 224x224 RGB and a 256x256 depth sensor."""
    _assert_refused(
        ["--episode", "100000", "--out", str(tmp_path / "c.mp4"),
         "--config", "benchmark/nav/fih_vln_synthetic"],
        tmp_path,
        "224x224 vs 256x256",
    )  # fmt: skip


def test_command_line_module(tmp_path):
    """``python -m`` runs main and exits with its status (the error is the last stderr line;
    the installed gym prints its own notice on import, before it)."""
    proc = subprocess.run(
        [sys.executable, "-m", "habitat_fih.datasets.record", "--episode", "100000", "--out",
         str(tmp_path / "clip.webm")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert len(_error_lines(proc.stderr)) == 1
    assert "unsupported extension '.webm'" in proc.stderr.strip().splitlines()[-1]
    assert os.listdir(tmp_path) == []


def test_a_failed_write_leaves_the_previous_pair(tmp_path, clip, episode, monkeypatch):
    """A video that does not read back is an error (exit 1): the previous clip and sidecar stay
    byte for byte, and no temporary file is left."""
    from habitat_fih.datasets import record as record_module

    out = tmp_path / "clip.mp4"
    out.write_bytes(clip["out"].read_bytes())
    sidecar_path(out).write_bytes(sidecar_path(clip["out"]).read_bytes())
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(record_module, "_frames_read_back", lambda path: (0, set(), 0))
    rc, _, stderr = _run(["--episode", str(episode["episode_id"]), "--out", str(out),
                          "--max-steps", "1"])  # fmt: skip
    assert rc == 1
    assert len(_error_lines(stderr)) == 1 and "reads back as 0 frames" in stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
