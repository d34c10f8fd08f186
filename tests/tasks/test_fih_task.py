"""FIH-VLN-v0 end to end in habitat.Env on FIHSim-v0: targets equal an independent
recomputation from the rendered depths and agent states, closed-form checks through the whole
pipeline, and the heatmap / VLN-CE measures."""

from __future__ import annotations

import numpy as np
import pytest
from habitat import Env
from habitat.core.registry import registry

from habitat_fih.config import get_config
from habitat_fih.datasets.episodes import EpisodeSpec, sample_episodes, write_split
from habitat_fih.datasets.procedural import ApartmentSpec, export_apartment
from habitat_fih.geometry import camera_position_heatmaps, covisibility_heatmaps
from habitat_fih.geometry.camera import pose_from_agent_state
from habitat_fih.geometry.surface import resample_depth
from habitat_fih.sim.navigation import NavGrid
from habitat_fih.sim.scene import load_scene
from habitat_fih.tasks.fih_task import PREDICTION_KEY, FIHVLNTask
from habitat_fih.tasks.heatmap_measures import heatmap_scores
from habitat_fih.tasks.measures import dtw_distance

MAX_FRAMES = 6
WORK = 32


@pytest.fixture(scope="module")
def env():
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="fihtask"))
    export_apartment(ApartmentSpec(seed=5), str(root / "scenes" / "apt.glb"))
    mesh = load_scene(str(root / "scenes" / "apt.glb"))
    nav = NavGrid.from_mesh(mesh.vertices, mesh.faces)
    eps = sample_episodes(nav, "apt.glb", 2, np.random.default_rng(1), EpisodeSpec(), lambda a, b: "go")
    write_split(str(root / "episodes"), "val_seen", eps)
    cfg = get_config(
        "benchmark/nav/fih_vln_synthetic",
        [
            "habitat.dataset.split=val_seen",
            f"habitat.dataset.data_path='{root}/episodes/v1/{{split}}/{{split}}.json.gz'",
            f"habitat.dataset.scenes_dir={root}/scenes",
            f"habitat.task.memory_max_frames={MAX_FRAMES}",
            f"habitat.task.working_resolution={WORK}",
            "habitat.task.lab_sensors.frame_heatmaps.height=16",
            "habitat.task.lab_sensors.frame_heatmaps.width=16",
            "habitat.task.measurements.ndtw.gt_path=''",
            "habitat.simulator.agents.main_agent.sim_sensors.depth_sensor.width=128",
            "habitat.simulator.agents.main_agent.sim_sensors.depth_sensor.height=128",
            "habitat.simulator.agents.main_agent.sim_sensors.rgb_sensor.width=64",
            "habitat.simulator.agents.main_agent.sim_sensors.rgb_sensor.height=64",
        ],
    )
    with Env(config=cfg) as e:
        yield e


def _metric_depth(obs_depth: np.ndarray, max_depth: float = 10.0) -> np.ndarray:
    """Independent inversion of habitat's depth normalisation, then the working-centre
    resampling (``resample_depth``, checked against closed forms in tests/geometry)."""
    d = obs_depth[..., 0] * max_depth
    d[(d >= max_depth - 1e-4) | (d <= 0)] = 0.0
    small = resample_depth(d, (WORK, WORK), 0.05, 0.02)
    small[small >= max_depth - 1e-4] = 0.0
    return small


def _pose(env) -> np.ndarray:
    s = env.sim.get_agent_state().sensor_states["depth"]
    return pose_from_agent_state(s.position, s.rotation)


def test_registered():
    assert registry.get_task("FIH-VLN-v0") is FIHVLNTask


def test_targets_equal_independent_recomputation_and_memory_policy(env):
    obs = env.reset()
    history: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    step = compared_steps = 0
    positions = [np.array(env.sim.get_agent_state().position, dtype=np.float64)]
    while True:
        fh = obs["frame_heatmaps"]
        kept = [int(s) for s in fh["frame_indices"] if s >= 0]
        # memory = past frames only: first and latest past frame kept, bounded by MAX_FRAMES
        if step == 0:
            assert kept == []
        else:
            assert kept[0] == 0 and kept[-1] == step - 1 and len(kept) == min(step, MAX_FRAMES)
        cur_depth, cur_pose = _metric_depth(obs["depth"]), _pose(env)
        if kept:
            src_d = np.stack([history[s][0] for s in kept])
            src_p = np.stack([history[s][1] for s in kept])
            cov = covisibility_heatmaps(cur_depth, cur_pose, src_d, src_p, 90.0, (16, 16))
            cam = camera_position_heatmaps(cur_depth, cur_pose, src_p, 90.0, (16, 16))
            n = len(kept)
            np.testing.assert_allclose(fh["covisibility"][:n], cov.maps, atol=1e-6)
            assert (fh["covisibility_valid"][:n].astype(bool) == cov.valid).all()
            np.testing.assert_allclose(fh["camera_position"][:n], cam.maps, atol=1e-6)
            assert (fh["camera_position_status"][:n] == cam.status).all()
            assert (fh["covisibility"][n:] == 0).all() and (fh["camera_position_status"][n:] == -1).all()
        history[step] = (cur_depth, cur_pose)
        if env.episode_over or step >= 14:
            break
        compared_steps = step
        obs = env.step(int(obs["shortest_path_sensor"][0]) or 1)
        step += 1
        positions.append(np.array(env.sim.get_agent_state().position, dtype=np.float64))
    assert compared_steps >= MAX_FRAMES + 2  # the memory overflowed and was thinned
    m = env.get_metrics()
    # NDTW against a direct DTW of the recorded (deduplicated) positions and the reference path
    dedup = [positions[0]] + [p for a, p in zip(positions, positions[1:], strict=False) if not np.allclose(a, p)]
    ref = np.array(env.current_episode.reference_path, dtype=np.float64)
    cost = np.full((len(dedup) + 1, len(ref) + 1), np.inf)
    cost[0, 0] = 0.0
    for i in range(1, len(dedup) + 1):
        for j in range(1, len(ref) + 1):
            d = np.linalg.norm(dedup[i - 1] - ref[j - 1])
            cost[i, j] = d + min(cost[i - 1, j], cost[i, j - 1], cost[i - 1, j - 1])
    assert m["ndtw"] == pytest.approx(np.exp(-cost[-1, -1] / (len(ref) * 3.0)), rel=1e-6)
    assert dtw_distance(np.array(dedup), ref) == pytest.approx(cost[-1, -1], rel=1e-9)
    assert 0.0 <= m["memory_coverage"] <= 1.0


def test_returning_to_a_pose_gives_full_covisibility(env):
    obs = env.reset()
    obs = env.step(2)  # turn left
    obs = env.step(3)  # turn right: back to the pose of step 0
    fh = obs["frame_heatmaps"]
    slot = list(fh["frame_indices"]).index(0)
    depth = _metric_depth(obs["depth"])
    valid = depth > 0
    # same pose twice: every output cell's covisible fraction is its fraction of valid pixels
    expected = valid.reshape(16, WORK // 16, 16, WORK // 16).mean(axis=(1, 3))
    np.testing.assert_allclose(fh["covisibility"][slot], expected, atol=1e-6)


def test_frame_geometry_closed_form(env):
    obs = env.reset()
    g = obs["frame_geometry"]
    assert g["valid"][-1] == 1 and g["frame_indices"][-1] == 0
    np.testing.assert_allclose(g["extrinsics"][-1], np.hstack([np.eye(3), np.zeros((3, 1))]), atol=1e-5)
    f = 224 / 2 / np.tan(np.radians(45))
    np.testing.assert_allclose(g["intrinsics"][-1], [[f, 0, 112], [0, f, 112], [0, 0, 1]], atol=1e-4)
    for _ in range(24):  # find a heading with free space ahead
        obs = env.step(1)
        if not env.sim.previous_step_collided:
            break
        obs = env.step(2)
    g = obs["frame_geometry"]
    ext = g["extrinsics"][-1].astype(np.float64)
    # OpenCV camera-from-world relative to frame 0: camera centre c = -R^T t; the agent moved
    # 0.25 m (last step) so consecutive centres differ by exactly 0.25 m.
    c_now = -ext[:, :3].T @ ext[:, 3]
    prev_slot = list(g["frame_indices"]).index(int(g["frame_indices"][-1]) - 1)
    prev = g["extrinsics"][prev_slot].astype(np.float64)
    c_prev = -prev[:, :3].T @ prev[:, 3]
    assert np.linalg.norm(c_now - c_prev) == pytest.approx(0.25, abs=1e-4)


def test_heatmap_quality_measure(env):
    """The measure scores a prediction against the targets of the view it was made on (the
    observation the agent acted on), not the view its action leads to: passing that view's own
    targets scores KL 0 / IoU 1 / peak error 0, even though the action turns the agent."""
    obs = env.reset()
    obs = env.step({"action": 2})  # no prediction: allowed
    fh = obs["frame_heatmaps"]
    valid = np.flatnonzero(fh["covisibility_valid"] > 0)
    assert len(valid) >= 1
    pred = {
        "maps": fh["covisibility"][valid].copy(),
        "frame_indices": fh["frame_indices"][valid].copy(),
    }
    obs = env.step({"action": 3, "action_args": {PREDICTION_KEY: pred}})
    q = env.get_metrics()["frame_heatmap_quality"]
    assert q["missing_steps"] == 1
    assert q["scored"] == len(valid)
    assert q["kl"] == pytest.approx(0.0, abs=1e-6)
    assert (q["iou"], q["peak_error"]) == pytest.approx((1.0, 0.0), abs=1e-6)
    # the same maps against the NEW view (turned 15 degrees) would not be perfect
    fh2 = obs["frame_heatmaps"]
    slot = list(fh2["frame_indices"]).index(int(pred["frame_indices"][0]))
    assert heatmap_scores(fh2["covisibility"][slot], pred["maps"][0])[1] < 1.0 - 1e-3
    # a later wrong prediction is averaged in with its own targets: uniform 0.5 maps
    obs2 = env.step(
        {
            "action": 1,
            "action_args": {
                PREDICTION_KEY: {
                    "maps": np.full_like(fh2["covisibility"][slot : slot + 1], 0.5),
                    "frame_indices": fh2["frame_indices"][slot : slot + 1].copy(),
                }
            },
        }
    )
    del obs2
    q2 = env.get_metrics()["frame_heatmap_quality"]
    expected = heatmap_scores(fh2["covisibility"][slot], np.full((16, 16), 0.5))
    assert q2["scored"] == len(valid) + 1
    assert q2["iou"] == pytest.approx((len(valid) * 1.0 + expected[1]) / (len(valid) + 1), rel=1e-6)


def test_heatmap_scores_closed_form():
    t = np.zeros((4, 4))
    t[0, 0] = 1.0
    p = np.full((4, 4), 0.5)
    kl, iou, peak = heatmap_scores(t, p, eps=0.0)
    assert kl == pytest.approx(np.log(16))  # t is a point mass, p uniform over 16 cells
    assert iou == pytest.approx(0.5 / (1.0 + 15 * 0.5))
    # a constant map is all peak: the mean distance of every cell to the target's peak (0, 0)
    mean_dist = np.mean([np.hypot(i, j) for i in range(4) for j in range(4)])
    assert peak == pytest.approx(mean_dist / np.hypot(3, 3))


def test_peak_error_handles_flat_topped_maps():
    """A covisibility target is 1 over a whole region: a prediction whose maximum covers that
    region scores 0, and a constant map scores the mean distance of all cells to it."""
    t = np.zeros((16, 16))
    t[8:] = 1.0  # the bottom half is covisible
    rng = np.random.default_rng(0)
    sharp = 0.95 * t + 0.01 * rng.random((16, 16)) * (t == 0)
    assert heatmap_scores(t, sharp)[2] == 0.0
    # rows 0..7 lie 8..1 cells from row 8, rows 8..15 lie on the peak
    expected = 16 * sum(range(1, 9)) / 256 / np.hypot(15, 15)
    assert heatmap_scores(t, np.full((16, 16), 0.5))[2] == pytest.approx(expected)
    # a prediction peaking only in the top-left corner: 8 rows from the covisible half
    corner = np.zeros((16, 16))
    corner[0, 0] = 1.0
    assert heatmap_scores(t, corner)[2] == pytest.approx(8 / np.hypot(15, 15))


def test_oracle_on_bundled_episodes_succeeds_with_high_ndtw():
    from habitat.tasks.nav.shortest_path_follower import ShortestPathFollower

    cfg = get_config("benchmark/nav/fih_vln_synthetic", ["habitat.dataset.split=val_unseen"])
    assert cfg.habitat.task.measurements.ndtw.split == "val_unseen"  # kept equal to the dataset's
    with Env(config=cfg) as env:
        follower = ShortestPathFollower(env.sim, 0.5, return_one_hot=False)
        for _ in range(3):
            env.reset()
            goal = env.current_episode.goals[0].position
            while not env.episode_over:
                env.step(follower.get_next_action(goal))
            m = env.get_metrics()
            assert m["success"] == 1.0
            assert m["ndtw"] > 0.8 and m["sdtw"] > 0.8
