"""The ``vggt`` stage of the fih trainer (issue 17): VGGT trained on the simulator's cameras and
depth, collected online.

- The samples' targets against the simulator itself: cameras from the agent's own sensor states
  (not through the ``frame_geometry`` sensor), the kept depth against the depth sensor's raw
  pixels (where the 4 x 4 sensor pixels around it lie on one plane, the inverse depth at a
  low-resolution pixel centre - the shared corner of 2 x 2 sensor pixels - is the mean of their
  inverse depths, the inverse depth of a plane being affine in the pixel).
- One schedule command, vggt then pretrain: the vggt stage changes VGGT and nothing else, logs
  every loss term and geometry error, and the pretrain stage carries the fine-tuned VGGT.
- Exact resume of the vggt stage after a stop.
- Clear errors: no ``frame_geometry`` sensor, an unknown ``losses.vggt`` key.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

VGGT_RUN = [
    "habitat_baselines.fih.stage=vggt",
    "habitat_baselines.fih.collection.max_frames=4",
]


def _vggt_keys(state: dict[str, torch.Tensor]) -> list[str]:
    return [k for k in state if k.startswith("vggt.")]


def _planar_windows(inv: np.ndarray) -> np.ndarray:
    """[32, 32] largest residual of an affine fit ``a + b u + c v`` to the 4 x 4 sensor pixels
    around each low-resolution pixel centre (its 2 x 2 block and one ring; inf at the border
    and where a pixel is invalid): 0 on a plane, whose inverse depth is affine in the pixel."""
    v, u = np.mgrid[0:4, 0:4]
    design = np.stack([np.ones(16), u.ravel(), v.ravel()], axis=1)  # [16, 3]
    residual_map = np.eye(16) - design @ np.linalg.pinv(design)  # [16, 16]
    out = np.full((32, 32), np.inf)
    for i in range(1, 31):
        for j in range(1, 31):
            window = inv[2 * i - 1 : 2 * i + 3, 2 * j - 1 : 2 * j + 3].ravel()
            if np.all(np.isfinite(window)):
                out[i, j] = np.abs(residual_map @ window).max()
    return out


@pytest.mark.parametrize(
    ("sequence", "reference"), [("memory", "first"), ("recent", "first"), ("memory", "current")]
)
def test_samples_hold_the_simulators_cameras_and_depth(kit, sequence: str, reference: str) -> None:
    from habitat_fih.geometry.camera import pose_from_agent_state
    from habitat_fih.models.vggt.targets import vggt_targets
    from habitat_fih.trainers.collector import env_config, make_fih_env, sort_episode_ids
    from habitat_fih.trainers.frame_history import DepthKeeping, FrameHistory
    from habitat_fih.trainers.vggt_samples import view_vggt_sample

    config = kit.tiny_config(Path("/tmp/unused"), *VGGT_RUN)
    env = make_fih_env(env_config(config, "val_seen", ["top_down_map"]), seed=0)
    try:
        episode = sort_episode_ids(env.episode_ids())[0]
        obs = env.reset_to(episode)
        sensor = config.habitat.simulator.agents.main_agent.sim_sensors.depth_sensor
        keep = DepthKeeping(
            size=32, abs_tol=0.05, rel_tol=0.02, max_depth=sensor.max_depth, sequence=sequence
        )
        history = FrameHistory(32, 4, keep)
        poses, raw_depth, checked = [], [], 0
        for step in range(12):
            state = env.habitat_env.sim.get_agent_state().sensor_states["depth"]
            poses.append(pose_from_agent_state(state.position, state.rotation))
            raw = np.asarray(obs["depth"], dtype=np.float64)[..., 0]
            if sensor.normalize_depth:  # habitat's normalised depth -> metres
                raw = raw * (sensor.max_depth - sensor.min_depth) + sensor.min_depth
            raw_depth.append(raw)
            memory = obs["frame_heatmaps"]["frame_indices"]
            history.update(step, obs["rgb"], memory, obs["frame_geometry"])
            slots = history.sequence_slots(step, memory)
            if sequence == "recent":  # consecutive steps, kept whether or not in the memory
                assert slots == list(range(max(0, step - 3), step + 1))
            if len(slots) == 4:
                frames = np.stack([history.frames[s] for s in slots])
                sample = view_vggt_sample(
                    frames, np.asarray(slots), history.view_geometry(slots), reference
                )
                assert sample is not None
                # VGGT's reference frame first: the oldest, or the current view (the last)
                order = slots if reference == "first" else [slots[-1], *slots[:-1]]
                assert sample.indices.tolist() == order
                np.testing.assert_array_equal(
                    sample.frames, np.stack([history.frames[s] for s in order])
                )
                # cameras: the simulator's own sensor poses, through the same target formulas
                expected = vggt_targets(
                    np.stack([poses[s] for s in order]),
                    float(sensor.hfov),
                    sample.targets.depth.numpy() * float(sample.targets.scale),
                )
                torch.testing.assert_close(
                    sample.targets.pose_enc, expected.pose_enc, atol=2e-5, rtol=0
                )
                torch.testing.assert_close(sample.targets.intrinsics, expected.intrinsics)
                # the reference camera is the identity (zero translation, unit quaternion)
                torch.testing.assert_close(
                    sample.targets.pose_enc[0, :7].double(),
                    torch.tensor([0.0, 0, 0, 0, 0, 0, 1], dtype=torch.float64),
                    atol=1e-5,
                    rtol=0,
                )
                # depth: 2 x 2 harmonic means of the raw sensor depth where the block is planar
                for j, s in enumerate(order):
                    metric = sample.targets.depth[j].numpy() * float(sample.targets.scale)
                    raw = raw_depth[s]  # [64, 64]
                    inv = 1.0 / np.where(raw > 0, raw, np.nan)
                    blocks = inv.reshape(32, 2, 32, 2).transpose(0, 2, 1, 3).reshape(32, 32, 4)
                    corner = blocks.mean(-1)
                    planar = _planar_windows(inv) < 1e-6 * np.abs(corner)
                    planar &= np.isfinite(corner) & (1.0 / corner < sensor.max_depth - 0.1)
                    planar &= metric > 0
                    assert planar.sum() > 200, planar.sum()
                    rel = np.abs(metric[planar] * corner[planar] - 1.0)
                    assert np.median(rel) < 1e-5 and np.mean(rel < 1e-3) > 0.99, np.mean(rel < 1e-3)
                checked += 1
            obs = env.step(int(np.asarray(obs["shortest_path_sensor"]).reshape(-1)[0]))[0]
    finally:
        env.close()
    assert checked >= 5


def test_schedule_vggt_then_pretrain_trains_vggt_first_and_carries_it(tmp_path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    schedule = (
        "habitat_baselines.fih.schedule=[{stage: vggt, dagger: {updates_per_iteration: 3}},"
        " {stage: pretrain, dagger: {updates_per_iteration: 1}}]"
    )
    args = [
        schedule,
        "habitat_baselines.fih.collection.max_frames=4",
        "habitat_baselines.fih.dagger.iterations=1",
        "habitat_baselines.fih.dagger.episodes_per_iteration=2",
    ]
    trainer = FIHTrainer(kit.tiny_config(tmp_path, *args))
    init = trainer.build_policy(int(trainer.trainer_config.seed)).model.state_dict()
    assert trainer.train() is True
    geometry = torch.load(tmp_path / "ckpt" / "stage0_vggt" / "ckpt.0.pth", weights_only=False)
    final = torch.load(tmp_path / "ckpt" / "ckpt.0.pth", weights_only=False)
    assert (geometry["stage"], geometry["update"]) == ("vggt", 3)
    assert final["stage"] == "pretrain"
    g, f = geometry["model"], final["model"]
    vggt = _vggt_keys(g)
    assert vggt and any(not torch.equal(g[k], init[k]) for k in vggt if g[k].is_floating_point())
    changed = [k for k in g if k not in vggt and not torch.equal(g[k], init[k])]
    assert not changed, f"the vggt stage changed non-VGGT weights: {changed[:5]}"
    # VGGT is frozen in pretraining: the final model holds the vggt stage's VGGT bit for bit
    assert all(torch.equal(f[k], g[k]) for k in vggt)
    scalars = kit.tb_scalars(tmp_path / "tb" / "stage0_vggt")
    for tag in (
        "vggt/camera",
        "vggt/depth",
        "vggt/point",
        "vggt/total",
        "vggt_metrics/rre_deg",
        "vggt_metrics/auc_30",
        "vggt_metrics/depth_abs_rel",
        "vggt_metrics/depth_delta_1.25",
        "collect/samples_added",
    ):
        assert tag in scalars, tag
        assert all(np.isfinite(v) for v in scalars[tag].values()), tag
    assert all(0 <= v <= 180 for v in scalars["vggt_metrics/rre_deg"].values())


def test_vggt_stage_resume_reaches_the_same_parameters(tmp_path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert FIHTrainer(kit.tiny_config(whole, *VGGT_RUN)).train() is True
    stopped = FIHTrainer(
        kit.tiny_config(parts, *VGGT_RUN, "habitat_baselines.fih.stop_after_updates=3")
    )
    assert stopped.train() is False
    assert FIHTrainer(kit.tiny_config(parts, *VGGT_RUN)).train() is True
    a = torch.load(whole / "ckpt" / "ckpt.1.pth", weights_only=False)
    b = torch.load(parts / "ckpt" / "ckpt.1.pth", weights_only=False)
    assert (a["stage"], a["update"]) == (b["stage"], b["update"]) == ("vggt", 4)
    worst = max(
        (a["model"][k].float() - b["model"][k].float()).abs().max().item() for k in a["model"]
    )
    assert worst <= 1e-6, f"resumed parameters differ by up to {worst}"


def test_vggt_stage_errors_name_the_setting(tmp_path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer
    from habitat_fih.trainers.stages import vggt_loss_config

    no_sensor = [
        "~habitat.task.lab_sensors.frame_geometry",
        "habitat_baselines.fih.model.overrides.geometry_prior=none",  # (else it names that)
    ]
    with pytest.raises(ValueError, match="stage 'vggt' .* 'frame_geometry' lab sensor"):
        FIHTrainer(kit.tiny_config(tmp_path, *VGGT_RUN, *no_sensor))
    with pytest.raises(ValueError, match=r"losses.vggt has unknown keys \['depth_wieght'\]"):
        vggt_loss_config({"vggt": {"depth_wieght": 1.0}})
    assert vggt_loss_config({"vggt": {"depth_weight": 0.5}}).depth_weight == 0.5
