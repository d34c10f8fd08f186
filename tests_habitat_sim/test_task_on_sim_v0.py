"""FIH-VLN-v0 runs unchanged on habitat-sim's ``Sim-v0`` through ``habitat.Env``, and its targets
and VLN-CE measures equal FIHSim-v0's on the same trajectory.

One dataset holds bundled val_seen episodes (two houses) and one episode on each harness scene
(``scan_like``: single-sided walls, no ceiling; ``simple_room_like``), its scene ids absolute.
habitat-sim's oracle (``shortest_path_sensor``, VLN-CE's ShortestPathFollower) drives the
habitat-sim env; the FIHSim-v0 env follows the SAME poses (``harness.replay_step``), so every
difference is the simulators', not the trajectory's.
"""

from __future__ import annotations

import gzip
import json
import math

import harness
import numpy as np
import pytest

#: Every FIH sensor and measure of the benchmark (issue 13's list).
SENSORS = ("frame_heatmaps", "frame_geometry", "shortest_path_sensor", "progress", "instruction")
MEASURES = ("distance_to_goal", "success", "spl", "soft_spl", "collisions", "path_length",
            "oracle_navigation_error", "oracle_success", "oracle_spl", "steps_taken", "ndtw",
            "sdtw", "frame_heatmap_quality", "memory_coverage")
#: Measures in metres: compared relative to the episode's geodesic start-goal distance.
METRE_MEASURES = ("distance_to_goal", "path_length", "oracle_navigation_error")
BUNDLED_PER_SCENE = 1
HOUSES = ("fih_synthetic/house_000.glb", "fih_synthetic/house_005.glb")


def _episodes(tmp_root, hsim_for_scene):
    with gzip.open(harness.VAL_SEEN, "rt") as f:
        bundled = json.load(f)
    eps = []
    for house in HOUSES:
        mine = [e for e in bundled["episodes"] if e["scene_id"] == house][:BUNDLED_PER_SCENE]
        assert mine, f"no val_seen episode in {house}"
        for e in mine:
            e = dict(e, scene_id=str(harness.DATA_SCENES / house))
            eps.append(e)
    for name in ("scan_like", "simple_room_like"):
        path = tmp_root / name / f"{name}.glb"
        hsim, fsim = hsim_for_scene(path)
        hsim.pathfinder.seed(5)
        for _ in range(200):  # a start-goal pair 4-15 m apart that both simulators can reach
            a = np.asarray(hsim.pathfinder.get_random_navigable_point())
            b = np.asarray(hsim.pathfinder.get_random_navigable_point())
            dh = hsim.geodesic_distance(a, b)
            fa, fb = fsim.pathfinder.snap_point(a), fsim.pathfinder.snap_point(b)
            if 4.0 <= dh <= 15.0 and math.isfinite(fsim.geodesic_distance(fa, fb)):
                break
        else:
            pytest.fail(f"no usable start-goal pair on {name}")
        ref = harness.shortest_path_points(hsim, a, b)
        eps.append({
            "episode_id": 900000 + len(eps), "trajectory_id": 900000 + len(eps),
            "scene_id": str(path), "start_position": list(map(float, a)),
            "start_rotation": [0.0, 0.0, 0.0, 1.0],
            "goals": [{"position": list(map(float, b)), "radius": 3.0}],
            "info": {"geodesic_distance": float(dh)},
            "instruction": dict(bundled["episodes"][0]["instruction"]),
            "reference_path": ref,
        })
    return eps, bundled["instruction_vocab"]


@pytest.fixture(scope="module")
def runs(test_scenes_root):
    eps, vocab = _episodes(test_scenes_root, harness.make_sims)
    data = harness.OUT / "episodes" / "mixed.json.gz"
    data.parent.mkdir(parents=True, exist_ok=True)
    tmp = data.with_name(data.name + ".tmp")
    with gzip.open(tmp, "wt") as f:
        json.dump({"episodes": eps, "instruction_vocab": vocab}, f)
    tmp.replace(data)
    kw = dict(data_path=str(data), scenes_dir="", gt_path="")
    extra = ["habitat.environment.iterator_options.shuffle=False"]
    henv = harness.make_env("Sim-v0", extra=extra, **kw)
    fenv = harness.make_env("FIHSim-v0", extra=extra, **kw)
    out = []
    for _ in eps:
        out.append(_run_episode(henv, fenv))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0.5, b > 0.5
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def _run_episode(henv, fenv) -> dict:
    oh, of = henv.reset(), fenv.reset()
    ep = henv.current_episode
    assert fenv.current_episode.episode_id == ep.episode_id
    scene = ep.scene_id.rsplit("/", 1)[-1].removesuffix(".glb")
    space_ok = all(henv.observation_space[k].contains(oh[k]) for k in ("frame_heatmaps", "frame_geometry"))
    ious, mads, steps = [], [], 0
    while not henv.episode_over:
        action = int(np.asarray(oh["shortest_path_sensor"]).reshape(-1)[0])
        oh = henv.step(action)
        harness.replay_step(fenv.sim, henv.sim.get_agent_state(), henv.sim.previous_step_collided)
        of = fenv.step(action)
        steps += 1
        space_ok &= all(henv.observation_space[k].contains(oh[k]) for k in ("frame_heatmaps", "frame_geometry"))
        fh, ff = oh["frame_heatmaps"], of["frame_heatmaps"]
        assert np.array_equal(fh["frame_indices"], ff["frame_indices"])
        for m in np.nonzero(fh["frame_indices"] >= 0)[0]:
            ious.append(_iou(fh["covisibility"][m], ff["covisibility"][m]))
            mads.append(float(np.abs(fh["covisibility"][m] - ff["covisibility"][m]).mean()))
    return {
        "scene": scene, "episode": ep, "steps": steps, "obs": oh, "space_ok": space_ok,
        "hm": henv.get_metrics(), "fm": fenv.get_metrics(), "ious": ious, "mads": mads,
        "over_f": fenv.episode_over,
    }


def test_every_fih_sensor_and_measure_runs_on_sim_v0(runs):
    for r in runs:
        for key in SENSORS:
            assert key in r["obs"], f"{r['scene']}: no {key} observation on Sim-v0"
        assert r["space_ok"], f"{r['scene']}: an FIH observation left its observation space"
        for key in MEASURES:
            assert key in r["hm"], f"{r['scene']}: no {key} measure on Sim-v0"
            v = r["hm"][key]
            if key == "frame_heatmap_quality":
                # no policy predicts heatmaps here: nothing is scored, every step counts as missing
                assert v["scored"] == 0 and v["missing_steps"] == r["steps"], v
                continue
            vals = v.values() if isinstance(v, dict) else [v]
            assert all(np.isfinite(float(x)) for x in vals), f"{r['scene']}: {key} = {v}"


def test_oracle_reaches_the_goal_on_sim_v0(runs):
    for r in runs:
        assert r["hm"]["success"] == 1.0, f"{r['scene']} episode {r['episode'].episode_id}: {r['hm']}"
        assert r["over_f"], "the FIHSim-v0 env did not end with the habitat-sim env"


def test_vlnce_metrics_equal_on_the_same_trajectory(runs):
    """Within 1 %: metres relative to the episode's geodesic start-goal distance, ratios in
    [0, 1] absolutely; counts (steps, collisions) exactly."""
    worst_by_scene: dict[str, float] = {}
    for r in runs:
        scale = float(r["episode"].info["geodesic_distance"])
        worst = 0.0
        for key in MEASURES:
            h, f = r["hm"][key], r["fm"][key]
            if key in ("frame_heatmap_quality",):
                continue  # a dict of target-quality figures, compared in the targets test
            if key == "collisions":
                assert h["count"] == f["count"], f"{r['scene']}: collisions {h} vs {f}"
                continue
            if key == "steps_taken":
                assert h == f
                continue
            diff = abs(float(h) - float(f)) / (scale if key in METRE_MEASURES else 1.0)
            worst = max(worst, diff)
            assert diff <= 0.01, f"{r['scene']}: {key} {h} (habitat-sim) vs {f} (FIHSim-v0)"
        worst_by_scene[r["scene"]] = max(worst_by_scene.get(r["scene"], 0.0), worst)
    for scene, worst in worst_by_scene.items():
        harness.record(scene, "metrics_max_diff", worst)


def test_targets_equal_at_the_same_poses(runs):
    """Covisibility targets of every remembered frame at every step, habitat-sim's depth vs
    FIHSim-v0's at the same poses: IoU of the > 0.5 masks, median >= 0.99 and 5th percentile
    >= 0.9 per scene (the difference is rasterisation at depth edges)."""
    for r in runs:
        ious = np.array(r["ious"])
        harness.record(r["scene"], "target_iou_median", float(np.median(ious)))
        harness.record(r["scene"], "target_iou_min", float(ious.min()))
        harness.record(r["scene"], "target_iou_p05", float(np.percentile(ious, 5)))
        harness.record(r["scene"], "target_mad", float(np.mean(r["mads"])))
        assert np.median(ious) >= 0.99, f"{r['scene']}: median IoU {np.median(ious):.4f}"
        assert np.percentile(ious, 5) >= 0.9, f"{r['scene']}: 5th pct IoU {np.percentile(ious, 5):.4f}"
