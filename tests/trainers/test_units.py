"""Unit tests of the fih trainer's parts that need no environment."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from habitat_fih.models.spec import build_model_config
from habitat_fih.trainers.baselines import BaselineAgent, baseline_maps
from habitat_fih.trainers.buffer import ReplayBuffer, Sample, collate
from habitat_fih.trainers.checkpoint import (
    IncompatibleCheckpointError,
    atomic_save,
    list_checkpoints,
)
from habitat_fih.trainers.collector import FrameHistory, StepView, area_resize
from habitat_fih.trainers.distributed import DistInfo, first_slurm_host
from habitat_fih.trainers.evaluation import flatten_metrics
from habitat_fih.trainers.learner import warmup_cosine


def _sample(n: int, action: int = 1) -> Sample:
    return Sample(
        frames=np.full((n, 8, 8, 3), n, np.uint8),
        indices=np.arange(n, dtype=np.int64),
        targets=np.full((n, 4, 4), 0.5, np.float16),
        valid=np.r_[np.ones(n - 1, bool), False],
        instruction=f"walk {n}",
        expert_action=action,
    )


def test_buffer_is_bounded_fifo() -> None:
    buf = ReplayBuffer(3)
    for n in range(1, 6):
        buf.add(_sample(n))
    assert len(buf) == 3 and buf.total_added == 5
    assert sorted(len(s.indices) for s in buf._items) == [3, 4, 5]
    state = buf.state_dict()
    other = ReplayBuffer(3)
    other.load_state_dict(state)
    gen = torch.Generator().manual_seed(0)
    assert [len(s.indices) for s in other.sample(4, gen)] == [
        len(s.indices) for s in buf.sample(4, torch.Generator().manual_seed(0))
    ]
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0)


def test_collate_refuses_mismatched_shapes_naming_the_sample() -> None:
    bad = _sample(3)
    bad.targets = np.zeros((3, 1, 1), np.float16)  # would broadcast silently into [3, 4, 4]
    with pytest.raises(ValueError, match=r"sample 1 has targets of shape \(3, 1, 1\), expected"):
        collate([_sample(2), bad])


def test_collate_right_pads_current_last() -> None:
    obs = collate([_sample(2), _sample(4)])
    assert obs["rgb_history"].shape == (2, 4, 8, 8, 3)
    assert obs["rgb_history_mask"].tolist() == [[True, True, False, False], [True] * 4]
    assert obs["fih_heatmaps"].shape == (2, 4, 4, 4)
    assert obs["fih_heatmaps_valid"][0].tolist() == [True, False, False, False]
    assert obs["instruction_text"] == ["walk 2", "walk 4"]


def test_frame_history_mirrors_memory_and_subsamples() -> None:
    hist = FrameHistory(frame_size=8, max_frames=4)
    rgb = np.zeros((16, 16, 3), np.uint8)
    for step in range(9):
        hist.update(step, rgb, np.array([*range(step), *([-1] * 3)]))
    memory = np.array([0, 2, 5, 7, 8, -1])  # the task dropped steps 1, 3, 4, 6
    hist.update(9, rgb, memory)
    slots = hist.slots(9, memory)
    assert slots[0] == 0 and slots[-1] == 9 and len(slots) == 4
    assert set(hist.frames) <= {0, 2, 5, 7, 8, 9}
    assert hist.frames[9].shape == (8, 8, 3)
    # room for one past frame keeps the latest one; none keeps only the current view
    hist.max_frames = 2
    assert hist.slots(9, memory) == [8, 9]
    hist.max_frames = 1
    assert hist.slots(9, memory) == [9]


def test_area_resize_block_mean() -> None:
    maps = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    out = area_resize(maps, (2, 2))
    assert out.shape == (1, 2, 2) and out[0, 0, 0] == pytest.approx(2.5)
    assert area_resize(maps, (3, 3)).shape == (1, 3, 3)


def _memory_view(cov: np.ndarray, valid: list[int], episode: str) -> StepView:
    """A step-5 view whose task memory holds steps 0 and 3 (slots 0, 1 of 4) with `cov`."""
    obs = {
        "frame_heatmaps": {
            "frame_indices": np.array([0, 3, -1, -1]),
            "covisibility": cov,
            "covisibility_valid": np.array(valid, np.uint8),
        }
    }
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    return StepView(0, episode, 5, obs, "go", 1, frames, np.array([0, 3, 5]))


def test_step_view_targets_keyed_by_frame_index() -> None:
    cov = np.zeros((4, 8, 8), np.float32)
    cov[1] = 1.0  # memory slot 1 holds step 3
    view = _memory_view(cov, [1, 1, 0, 0], "e")
    maps, valid = view.targets((4, 4))
    assert valid.tolist() == [True, True, False]
    assert maps[1].min() == 1.0 and maps[0].max() == 0.0
    pre = view.sample((4, 4), 1.0, np.random.default_rng(0))
    assert pre is not None and len(pre.indices) == 2 and pre.indices[-1] == 5


def test_distinfo_torchrun_and_slurm() -> None:
    info = DistInfo.from_env(
        {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "h"}
    )
    assert (info.rank, info.world_size, info.local_rank, info.master_addr) == (3, 8, 1, "h")
    slurm = DistInfo.from_env(
        {
            "SLURM_PROCID": "5",
            "SLURM_NTASKS": "16",
            "SLURM_STEP_NUM_TASKS": "16",  # set by srun for its tasks
            "SLURM_LOCALID": "1",
            "SLURM_NODELIST": "gpu[003-005,009]",
        }
    )
    assert (slurm.rank, slurm.world_size, slurm.master_addr) == (5, 16, "gpu003")
    assert first_slurm_host("node7,node8") == "node7"
    assert not DistInfo.from_env({}).is_distributed


def test_sbatch_script_without_srun_runs_as_one_process(caplog) -> None:
    """In the batch script SLURM_NTASKS says 4 but no srun step started the other tasks:
    waiting for them would hang forever."""
    batch = {"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_NODELIST": "gnode[10,20]"}
    with caplog.at_level("WARNING"):
        info = DistInfo.from_env(batch)
    assert not info.is_distributed and info.world_size == 1
    assert "not an srun task" in caplog.text and "srun python -m habitat_fih.run" in caplog.text


def test_warmup_cosine_schedule() -> None:
    fn = warmup_cosine(4, 20, 0.1)
    assert fn(0) == pytest.approx(0.25) and fn(3) == pytest.approx(1.0)
    assert fn(20) == pytest.approx(0.1) and fn(12) < fn(5)


def test_atomic_save_and_listing(tmp_path) -> None:
    for i in (2, 0, 10):
        atomic_save({"i": i}, str(tmp_path / f"ckpt.{i}.pth"))
    assert [os.path.basename(p) for p in list_checkpoints(str(tmp_path))] == [
        "ckpt.0.pth",
        "ckpt.2.pth",
        "ckpt.10.pth",
    ]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp_")]
    with pytest.raises(FileNotFoundError):
        list_checkpoints(str(tmp_path / "missing"))


def test_baselines_and_metric_flattening() -> None:
    center = baseline_maps("center", (9, 9), 0.5, 0.25)
    assert center[4, 4] == pytest.approx(1.0) and center[0, 0] < 0.1
    agent = BaselineAgent("uniform", 0, (4, 4), uniform_value=0.3)
    view = StepView(0, "e", 2, {}, "go", 3, np.zeros((3, 8, 8, 3), np.uint8), np.array([0, 1, 2]))
    (action,) = agent([view])
    assert action["action"] == 3
    pred = action["action_args"]["frame_heatmap_prediction"]
    assert pred["maps"].shape == (2, 4, 4) and pred["frame_indices"].tolist() == [0, 1]
    flat = flatten_metrics({"a": 1, "q": {"kl": 0.5}, "top_down_map": {"map": np.zeros(3)}})
    assert flat == {"a": 1.0, "q.kl": 0.5}


def test_model_spec_errors_name_the_key() -> None:
    with pytest.raises(FileNotFoundError, match="vggt_dir"):
        build_model_config({"preset": "full", "llm": "7b", "vggt_dir": "/no/such/dir"})
    with pytest.raises(ValueError, match="preset"):
        build_model_config({"preset": "huge"})
    cfg = build_model_config({"preset": "tiny", "overrides": {"num_keyframes": 3}})
    assert cfg.num_keyframes == 3


def test_incompatible_checkpoint_is_one_clear_error(tmp_path) -> None:
    from habitat_fih.models.config import FIHModelConfig
    from habitat_fih.models.factory import build_model, build_stand_in_tokenizer
    from habitat_fih.trainers.checkpoint import load_model_weights, model_state

    cfg = FIHModelConfig.tiny()
    model = build_model(cfg, tokenizer=build_stand_in_tokenizer(cfg))
    ckpt = {"model": model_state(model, cfg), "model_config": cfg.to_dict()}
    load_model_weights(model, ckpt, cfg, "ok.pth")
    bad = dict(ckpt, model_config=FIHModelConfig.tiny(num_keyframes=2).to_dict())
    with pytest.raises(IncompatibleCheckpointError, match="num_keyframes"):
        load_model_weights(model, bad, cfg, "bad.pth")
    missing = {"model": {k: v for k, v in ckpt["model"].items() if "action_head" not in k}}
    with pytest.raises(IncompatibleCheckpointError, match="missing"):
        load_model_weights(model, missing, cfg, "missing.pth")


def test_nan_loss_stops_with_step_and_terms() -> None:
    from habitat_fih.models.config import FIHModelConfig
    from habitat_fih.models.factory import build_model, build_stand_in_tokenizer
    from habitat_fih.models.policy import FIHPolicy
    from habitat_fih.trainers.learner import Learner, NonFiniteLossError
    from habitat_fih.trainers.stages import policy_config

    cfg = FIHModelConfig.tiny()
    policy = FIHPolicy(
        build_model(cfg, tokenizer=build_stand_in_tokenizer(cfg)), None, policy_config({})
    )
    policy.model.set_stage("main")
    from habitat_fih.config.trainer_configs import OptimConfig

    optim = OptimConfig(lr=1e-3, weight_decay=0.0, warmup_updates=0)  # the rest: defaults
    learner = Learner(policy, optim, 10, "main", torch.device("cpu"))
    with torch.no_grad():
        policy.model.heatmap_head.parameters().__next__().fill_(float("nan"))
    before = [p.detach().clone() for p in learner.params]
    sample = _sample(3)
    sample.frames = np.zeros((3, 32, 32, 3), np.uint8)
    sample.targets = np.zeros((3, 16, 16), np.float16)
    with pytest.raises(NonFiniteLossError, match=r"update 1 .*heatmap_mse=nan"):
        learner.update([[sample, sample]])
    assert learner.updates == 0
    assert all(
        torch.equal(a, b) or a.isnan().any() for a, b in zip(before, learner.params, strict=True)
    )


def test_loss_overrides_from_the_command_line_keep_the_other_defaults(tmp_path) -> None:
    """``+habitat_baselines.fih.losses={main: {...}}`` (a DictConfig) changes only the named
    weights; the rest keep the dataclass defaults."""
    from habitat.config.default import patch_config

    from habitat_fih.config import get_config
    from habitat_fih.models.losses import MainLossConfig
    from habitat_fih.trainers.stages import policy_config

    cfg = patch_config(
        get_config(
            "fih/synthetic_tiny",
            [
                "+habitat_baselines.fih.losses={main: {action_weight: 0.0, spatial_consistency_weight: 0.5}}"
            ],
        )
    )
    main = policy_config(cfg.habitat_baselines.fih.losses).losses.main
    assert (main.action_weight, main.spatial_consistency_weight) == (0.0, 0.5)
    assert main.heatmap_weight == MainLossConfig().heatmap_weight
    assert main.inflection_coef == MainLossConfig().inflection_coef


def test_paired_scores_put_model_and_baselines_on_the_same_pairs() -> None:
    """A perfect prediction scores KL 0 / IoU 1; the uniform map on a binary target of m of
    N cells scores KL = log(N / m) and soft IoU = 0.5 m / (m + 0.5 (N - m)) (closed forms), on
    the same pairs."""
    from habitat_fih.tasks.fih_task import PREDICTION_KEY
    from habitat_fih.trainers.collector import make_action
    from habitat_fih.trainers.evaluation import PairedHeatmapScores

    cov = np.zeros((4, 4, 4), np.float32)
    cov[0, :, :2] = 1.0  # frame 0 covers the left half (m = 8 of N = 16)
    cov[1, :1, :] = 1.0  # frame 3 covers the top row, but its target is invalid
    view = _memory_view(cov, [1, 0, 0, 0], "ep")
    scorer = PairedHeatmapScores({"uniform": np.full((4, 4), 0.5, np.float32)})
    prediction = {"maps": cov[:2].copy(), "frame_indices": np.array([0, 3])}
    scorer(view, make_action(1, prediction))
    scorer(view, make_action(1, None))  # no prediction: nothing scored
    m = scorer.episode_metrics("ep")
    assert m["scored"] == 1
    assert m["model"]["kl"] == pytest.approx(0.0, abs=1e-6) and m["model"]["iou"] == 1.0
    assert m["uniform"]["kl"] == pytest.approx(np.log(16 / 8), rel=1e-6)
    assert m["uniform"]["iou"] == pytest.approx(0.5 * 8 / (8 + 0.5 * 8))
    assert PREDICTION_KEY == "frame_heatmap_prediction"
    with pytest.raises(ValueError, match="reserved"):
        PairedHeatmapScores({"model": np.zeros((4, 4))})


def test_collate_carries_camera_poses_and_refuses_a_mix() -> None:
    a, b = _sample(2), _sample(3)
    a.poses = np.arange(18, dtype=np.float32).reshape(2, 9)
    b.poses = np.ones((3, 9), np.float32)
    obs = collate([a, b])
    assert obs["rgb_history_pose"].shape == (2, 3, 9)
    assert obs["rgb_history_pose"][0, :2].flatten().tolist() == list(range(18))
    assert obs["rgb_history_pose"][0, 2].abs().sum() == 0  # padding
    assert "rgb_history_pose" not in collate([_sample(2)])
    with pytest.raises(ValueError, match="with and without camera poses"):
        collate([a, _sample(2)])


def _habitat_pose(theta: float, position=(1.0, 0.5, 2.0)) -> np.ndarray:
    """Habitat camera-to-world pose turned by `theta` about +Y (up): positive = left."""
    c, s = np.cos(theta), np.sin(theta)
    pose = np.eye(4)
    pose[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    pose[:3, 3] = position
    return pose


def _frame_geometry(steps: list[int], yaws: list[float], size=(64, 48)) -> dict:
    """A frame_geometry observation (what FrameGeometrySensor writes) of cameras at one place
    turned by `yaws` (the first is the episode's reference); -1 steps are empty slots."""
    from habitat_fih.geometry.camera import habitat_pose_to_opencv_extrinsic, intrinsics_from_hfov

    poses = np.stack([_habitat_pose(t) for t in yaws])
    pad = len(steps) - len(yaws)
    return {
        "frame_indices": np.array(steps),
        "extrinsics": np.concatenate(
            [habitat_pose_to_opencv_extrinsic(poses, poses[0]), np.zeros((pad, 3, 4))]
        ).astype(np.float32),
        "intrinsics": np.stack(
            [intrinsics_from_hfov(90.0, *size)] * len(yaws) + [np.zeros((3, 3))] * pad
        ),
        "valid": np.array([1] * len(yaws) + [0] * pad, np.uint8),
    }


def test_frame_geometry_poses_feed_a_correct_frustum_prior() -> None:
    """The frame_geometry sensor's cameras (habitat poses -> OpenCV extrinsics relative to the
    first pose) become pose encodings whose frustum prior is the closed form: the agent turned
    LEFT by 30 degrees since the keyframe, so the keyframe covers the RIGHT part of the view
    (ray (x, y, 1) -> (x cos t - sin t, y, x sin t + cos t), t = 30 deg, inside iff |x'| <= z'
    and |y| <= z')."""
    from habitat_fih.models.geometry_prior import frustum_prior
    from habitat_fih.trainers.collector import frame_geometry_poses

    geometry = _frame_geometry([0, 3, -1], [0.7, 0.7 + np.radians(30)], (64, 48))
    enc = frame_geometry_poses(geometry, [0, 3])
    assert enc.shape == (2, 9)
    np.testing.assert_allclose(enc[0, :7], [0, 0, 0, 0, 0, 0, 1], atol=1e-6)  # the reference
    np.testing.assert_allclose(enc[:, 8], np.pi / 2, atol=1e-6)  # horizontal FoV 90 deg
    np.testing.assert_allclose(enc[:, 7], 2 * np.arctan(24 / 32), atol=1e-6)  # vertical
    with pytest.raises(ValueError, match=r"no camera for steps \[5\]"):
        frame_geometry_poses(geometry, [0, 5])

    h, w = 12, 16
    enc_t = torch.from_numpy(enc)
    got = frustum_prior(enc_t[None, :1], enc_t[1][None], (h, w), [0.0], supersample=1)[0, 0, 0]
    x, y = np.meshgrid((np.arange(w) + 0.5) / w * 2 - 1, (np.arange(h) + 0.5) / h * 2 - 1)
    t = np.radians(30)
    xk, zk = x * np.cos(t) - np.sin(t), x * np.sin(t) + np.cos(t)
    tan_v = 24 / 32  # both views share the 4:3 intrinsics
    expected = (zk > 0) & (np.abs(xk) <= zk) & (np.abs(y * tan_v) <= tan_v * zk)
    assert np.array_equal(got.numpy(), expected.astype(np.float32))
    assert got[:, -1].all() and not got[:, 0].any()  # right edge covered, left edge not


def test_input_prior_without_the_camera_sensor_is_one_clear_error(kit, tmp_path) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    cfg = kit.tiny_config(
        tmp_path,
        "habitat_baselines.fih.model.overrides.geometry_prior=input",
        "~habitat.task.lab_sensors.frame_geometry",
    )
    with pytest.raises(ValueError, match="needs the 'frame_geometry' lab sensor"):
        FIHTrainer(cfg)


def test_frustum_baseline_scores_closed_forms_on_the_same_pairs() -> None:
    """Frame 3 was seen from the current camera (prior all ones: the map is uniform, KL on a
    top-row target of m = 4 of 16 cells = log 4, IoU = 4 / 16); frame 0 looked backwards
    (prior all zeros: the map is the floor f everywhere, KL on a left-half target = log 2,
    IoU = 8 f / (8 + 8 f))."""
    from habitat_fih.trainers.collector import make_action
    from habitat_fih.trainers.evaluation import FrustumBaseline, PairedHeatmapScores

    cov = np.zeros((4, 4, 4), np.float32)
    cov[0, :, :2] = 1.0
    cov[1, :1, :] = 1.0
    view = _memory_view(cov, [1, 1, 0, 0], "ep")
    view.observations["frame_geometry"] = _frame_geometry([0, 3, 5], [np.pi, 0.0, 0.0])
    floor = 0.25
    scorer = PairedHeatmapScores({"frustum": FrustumBaseline([1.0, 0.0], floor)})
    scorer(view, make_action(1, {"maps": cov[:2].copy(), "frame_indices": np.array([0, 3])}))
    m = scorer.episode_metrics("ep")["frustum"]
    assert m["kl"] == pytest.approx((np.log(2) + np.log(4)) / 2, rel=1e-5)
    assert m["iou"] == pytest.approx((8 * floor / (8 + 8 * floor) + 4 / 16) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="floor"):
        FrustumBaseline([0.0], 1.5)
    del view.observations["frame_geometry"]
    with pytest.raises(ValueError, match="frame_geometry"):
        PairedHeatmapScores({"frustum": FrustumBaseline([0.0], floor)})(
            view, make_action(1, {"maps": cov[:2].copy(), "frame_indices": np.array([0, 3])})
        )


def test_action_agreement_counts_the_policys_own_choice_against_the_expert() -> None:
    """A stand-in policy that always moves forward agrees exactly on the expert's FORWARD
    steps, i.e. its rate equals the always-forward bar, on the expert path or its own."""
    from types import SimpleNamespace

    from habitat_fih.trainers.baselines import ActionAgreement
    from habitat_fih.trainers.evaluation import PolicyAgent

    class AlwaysForward(torch.nn.Module):
        def forward(self, obs):
            b = len(obs["instruction_text"])
            logits = torch.tensor([[0.0, 5.0, 1.0, 1.0]]).repeat(b, 1)
            return SimpleNamespace(
                action_logits=logits,
                heatmap_logits=torch.zeros(b, 1, 4, 4),
                keyframe_indices=torch.zeros(b, 1, dtype=torch.long),
            )

    expert = [1, 1, 2, 1, 3, 0]
    for source in ("expert", "policy"):
        agent = PolicyAgent(AlwaysForward(), torch.device("cpu"), action_source=source)
        for step, action in enumerate(expert):
            view = StepView(
                env_index=0,
                episode_id="e",
                step=step,
                observations={},
                instruction="go",
                expert_action=action,
                frames=np.zeros((1, 8, 8, 3), np.uint8),
                indices=np.array([step]),
            )
            taken = agent([view])[0]["action"]
            assert taken == (action if source == "expert" else 1)
        m = agent.agreement.episode_metrics("e")
        assert m == {"rate": 3 / 6, "always_forward": 3 / 6, "steps": 6.0}
    other = ActionAgreement()
    for action, expert_action in [(2, 2), (3, 2), (0, 0), (1, 3)]:
        other.record("x", action, expert_action)
    assert other.episode_metrics("x") == {"rate": 0.5, "always_forward": 0.0, "steps": 4.0}
    assert np.isnan(other.episode_metrics("never")["rate"])


def test_step_view_and_sample_carry_both_target_kinds() -> None:
    """camera_position targets: valid iff the memory camera is IN_VIEW (BEHIND / empty are not);
    the sample carries covisibility as `targets` and camera positions in `extra_targets`;
    collate emits fih_heatmaps and fih_heatmaps_camera_position (+ _valid)."""
    from habitat_fih.geometry import CameraStatus

    cov = np.zeros((4, 8, 8), np.float32)
    cov[1] = 1.0
    view = _memory_view(cov, [1, 1, 0, 0], "e")
    cam = np.zeros((4, 8, 8), np.float32)
    cam[0, 2, 2] = 1.0  # slot 0 (step 0): IN_VIEW, peak at cell (2, 2)
    view.observations["frame_heatmaps"]["camera_position"] = cam
    view.observations["frame_heatmaps"]["camera_position_status"] = np.array(
        [int(CameraStatus.IN_VIEW), int(CameraStatus.BEHIND), -1, -1]
    )
    maps, valid = view.targets((8, 8), "camera_position")
    assert valid.tolist() == [True, False, False]  # step 0 in view, step 3 behind, current
    assert maps[0, 2, 2] == 1.0 and maps[1:].max() == 0.0
    sample = view.sample((8, 8), 1.0, None, kinds=("covisibility", "camera_position"))
    assert sample is not None and sample.target_kind == "covisibility"
    assert sample.valid.tolist() == [True, True, False]
    assert sample.extra_targets is not None
    cam_maps, cam_valid = sample.extra_targets["camera_position"]
    assert cam_maps.dtype == np.float16 and cam_valid.tolist() == [True, False, False]
    batch = collate([sample, sample])
    assert batch["fih_heatmaps_camera_position"].shape == (2, 3, 8, 8)
    assert batch["fih_heatmaps_camera_position_valid"][0].tolist() == [True, False, False]
    assert batch["fih_heatmaps_valid"][0].tolist() == [True, True, False]
    # camera positions alone: they are the sample's targets; collate has no covisibility key
    only = view.sample((8, 8), 1.0, None, kinds=("camera_position",))
    assert only is not None and only.target_kind == "camera_position"
    assert only.extra_targets is None and only.valid.tolist() == [True, False, False]
    keys = collate([only])
    assert "fih_heatmaps" not in keys and "fih_heatmaps_camera_position" in keys
    # pretraining's single frame is drawn among frames valid for any kind
    pre = view.sample((8, 8), 1.0, np.random.default_rng(0), kinds=("camera_position",))
    assert pre is not None and pre.indices.tolist() == [0, 5]
    with pytest.raises(ValueError, match="different target kinds"):
        collate([sample, only])
    # a kind the sensor does not emit names its setting
    plain = _memory_view(cov, [1, 1, 0, 0], "e")
    with pytest.raises(KeyError, match="target_kinds"):
        plain.targets((8, 8), "camera_position")
    default = plain.sample((8, 8), 1.0, None)
    assert default is not None and default.extra_targets is None
    assert sorted(collate([default])) == sorted(
        k for k in collate([default]) if "camera_position" not in k
    )


def test_old_checkpoint_configs_load_as_covisibility_only() -> None:
    """A checkpoint's model config written before target_kinds / heatmap.out_channels existed
    compares equal to today's default."""
    from habitat_fih.models.config import FIHModelConfig
    from habitat_fih.trainers.checkpoint import _backfill, _config_diff

    cfg = FIHModelConfig.tiny()
    old = cfg.to_dict()
    old.pop("target_kinds")
    old["heatmap"].pop("out_channels")
    assert _config_diff(_backfill(old), cfg.to_dict()) == []
    both = FIHModelConfig.tiny(target_kinds=("covisibility", "camera_position"))
    assert _config_diff(_backfill(old), both.to_dict()) != []
    assert FIHModelConfig.from_dict(old).target_kinds == ("covisibility",)
    # an action head from before its extra inputs and progress monitor: the plain head
    for key in ("inputs", "max_depth", "goal_distance", "distance_scale"):
        old["action"].pop(key)
    assert _config_diff(_backfill(old), cfg.to_dict()) == []
    monitor = FIHModelConfig.tiny()
    monitor.action.goal_distance = True
    assert _config_diff(_backfill(old), monitor.to_dict()) == [
        "action.goal_distance: checkpoint False vs config True"
    ]
    with pytest.raises(ValueError, match="target_kinds"):
        FIHModelConfig.tiny(target_kinds=("camera_position", "covisibility"))
