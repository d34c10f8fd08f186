"""Tests for habitat_fih.models.fih_model (tiny FIHModel on CPU)."""

from __future__ import annotations

import math
from pathlib import Path

import _tiny_qwen as _tiny  # tests/helpers (on sys.path via tests/conftest.py)
import pytest
import torch

from habitat_fih.models.config import FIHModelConfig, StageSpec, default_stages
from habitat_fih.models.factory import build_model
from habitat_fih.models.fih_model import FIHModel
from habitat_fih.models.losses import compute_stage_loss

B, S, K, R = 2, 9, 4, 32
INSTRUCTIONS = ["walk to the kitchen and stop", "turn left past the table"]


def tiny_model(seed: int = 0, **overrides) -> FIHModel:
    torch.manual_seed(seed)
    return build_model(FIHModelConfig.tiny(**overrides), tokenizer=_tiny.tiny_tokenizer())


def batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    frames = torch.rand(B, S, 3, R, R, generator=gen)
    mask = torch.ones(B, S, dtype=torch.bool)
    indices = 10 + 3 * torch.arange(S).expand(B, S)  # original step indices 10, 13, ..., 34
    return frames, mask, indices


@pytest.fixture(scope="module")
def model() -> FIHModel:
    return tiny_model().eval()


def test_output_shapes_and_keys(model: FIHModel) -> None:
    frames, mask, indices = batch()
    with torch.no_grad():
        out = model(frames, mask, indices, INSTRUCTIONS)
    h, w = model.config.heatmap.out_size
    th, tw = out.token_grid
    t, d = th * tw, model.qwen.hidden_size
    assert out.keyframe_indices.shape == out.keyframe_slots.shape == (B, K)
    assert out.keyframe_valid.all()
    assert out.heatmap_logits.shape == (B, K, h, w)
    assert out.action_logits.shape == (B, 4)
    assert out.visual_hidden.shape == out.fused_tokens.shape == (B, K + 1, t, d)
    assert out.last_hidden.shape == (B, d)
    # vggt_heads "needed": the point head only (the sampler's world points)
    assert out.pose_enc is None and out.depth is None and out.depth_conf is None
    assert out.world_points_conf.shape == (B, S, R, R)
    assert out.world_points.shape == (B, S, R, R, 3)
    assert out.current_slot.tolist() == [S - 1] * B
    assert out.current_index.tolist() == [10 + 3 * (S - 1)] * B
    for row in range(B):
        keys = out.keyframe_indices[row].tolist()
        assert keys == sorted(keys)
        # keyframes are ORIGINAL indices of HISTORY frames (the current view is excluded)
        assert set(keys) <= {10 + 3 * s for s in range(S - 1)}
        assert out.keyframe_indices[row].tolist() == indices[row, out.keyframe_slots[row]].tolist()
        assert sorted(out.heatmaps[row]) == keys
        for k, key in enumerate(keys):
            torch.testing.assert_close(out.heatmaps[row][key], out.heatmap_logits[row, k])
    assert torch.isfinite(out.heatmap_logits).all() and torch.isfinite(out.action_logits).all()
    assert set(out.loss_inputs()) == {"heatmap_logits", "frame_indices", "action_logits"}


def test_padding_is_explicit_and_does_not_leak(model: FIHModel) -> None:
    frames, mask, indices = batch()
    mask[0, :6] = False  # sample 0: 3 valid frames -> 2 history frames -> 2 real keyframes
    mask[1, 2] = False  # sample 1: a hole; 7 history frames -> K real keyframes
    with torch.no_grad():
        out = model(frames, mask, indices, INSTRUCTIONS)
    assert out.keyframe_indices[0].tolist() == [28, 31, -1, -1]
    assert out.keyframe_slots[0].tolist() == [6, 7, -1, -1]
    assert out.keyframe_valid[0].tolist() == [True, True, False, False]
    assert sorted(out.heatmaps[0]) == [28, 31]
    assert 16 not in out.keyframe_indices[1].tolist()  # the masked slot is never picked
    assert out.keyframe_valid[1].all()
    assert (out.world_points[0, :6] == 0).all()
    # sample 0 alone and unpadded gives the same maps: padding never enters VGGT or the LLM
    with torch.no_grad():
        alone = model(frames[:1, 6:], None, indices[:1, 6:], INSTRUCTIONS[:1])
    torch.testing.assert_close(alone.heatmap_logits[0, :2], out.heatmap_logits[0, :2])
    torch.testing.assert_close(alone.action_logits[0], out.action_logits[0])


def test_single_frame_video_has_only_padding_keyframes(model: FIHModel) -> None:
    frames, _, indices = batch()
    with torch.no_grad():
        out = model(frames[:, :1], None, indices[:, :1], INSTRUCTIONS)
    assert (out.keyframe_indices == -1).all()
    assert out.heatmaps == [{}, {}]
    assert out.action_logits.shape == (B, 4)


def test_too_few_history_frames_raise_without_padding() -> None:
    model = tiny_model(pad_keyframes=False).eval()
    frames, _, indices = batch()
    with pytest.raises(ValueError, match="pad_keyframes=False"):
        model(frames[:, :3], None, indices[:, :3], INSTRUCTIONS)


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((B, 3, R, R), r"\[B, S, 3, H, W\]"),
        ((B, S, 4, R, R), r"\[B, S, 3, H, W\]"),
        ((B, 0, 3, R, R), "empty video"),
    ],
)
def test_bad_frames_raise(model: FIHModel, shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        model(torch.rand(shape), None, None, INSTRUCTIONS)


def test_bad_mask_indices_and_instructions_raise(model: FIHModel) -> None:
    frames, mask, indices = batch()
    mask[1] = False
    with pytest.raises(ValueError, match=r"empty video: samples \[1\]"):
        model(frames, mask, indices, INSTRUCTIONS)
    with pytest.raises(ValueError, match="frame_mask must be"):
        model(frames, mask[:, :3], indices, INSTRUCTIONS)
    with pytest.raises(ValueError, match="2 instruction"):
        model(frames, None, indices, INSTRUCTIONS[:1])


def _grads_after_backward(model: FIHModel) -> None:
    model.zero_grad(set_to_none=True)
    frames, mask, indices = batch()
    out = model(frames, mask, indices, INSTRUCTIONS)
    (out.heatmap_logits.sum() + out.action_logits.sum()).backward()


def test_frozen_parts_get_no_gradients() -> None:
    model = tiny_model().train()
    model.set_stage("main")  # LLM through LoRA
    _grads_after_backward(model)
    for name, param in model.named_parameters():
        trainable = name.startswith(("fusion.", "heatmap_head.", "action_head.")) or "lora_" in name
        if trainable and "lora_A" in name:  # lora_B starts at zero, so A's grad is zero
            assert param.grad is not None, name
        elif trainable:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        else:
            assert param.grad is None, name


def test_set_stage_freezing_per_stage() -> None:
    stages = default_stages()
    stages["main"] = StageSpec(llm="full", train_dinov3=True)
    model = tiny_model(stages=stages)
    pre = model.set_stage("pretrain")
    assert pre["action_head"] == 0 and pre["lora"] == 0 and pre["llm"] == 0
    assert pre["fusion"] > 0 and pre["heatmap_head"] > 0 and pre["vggt"] == 0
    fine = model.set_stage("finetune")
    assert fine["action_head"] > 0 and fine["lora"] == 0 and fine["dinov3"] == 0
    main = model.set_stage("main")
    assert main["llm"] > 0 and main["lora"] > 0 and main["dinov3"] > 0 and main["vggt"] == 0
    assert model.stage == "main"
    # frozen backbones stay in eval mode under model.train()
    model.set_stage("finetune")
    model.train()
    assert not model.vggt.training and not model.dinov3.training and model.fusion.training
    with pytest.raises(ValueError, match="stage must be one of"):
        model.set_stage("warmup")


def test_one_adamw_step_lowers_the_finetune_loss() -> None:
    model = tiny_model().train()
    model.set_stage("finetune")
    frames, mask, indices = batch()
    h, w = model.config.heatmap.out_size
    targets = {"heatmaps": torch.rand(B, K, h, w, generator=torch.Generator().manual_seed(3))}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)

    def loss() -> torch.Tensor:
        out = model(frames, mask, indices, INSTRUCTIONS)
        preds = {"heatmap_logits": out.heatmap_logits, "frame_indices": out.keyframe_indices}
        return compute_stage_loss("finetune", preds, targets)[0]

    before = loss()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss()
    assert after.item() < before.item()


def test_state_dict_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    model = tiny_model(seed=0).eval()
    torch.save(model.state_dict(), tmp_path / "fih.pt")
    other = tiny_model(seed=123).eval()
    other.load_state_dict(torch.load(tmp_path / "fih.pt", weights_only=True))
    frames, mask, indices = batch()
    with torch.no_grad():
        a = model(frames, mask, indices, INSTRUCTIONS)
        b = other(frames, mask, indices, INSTRUCTIONS)
    assert torch.equal(a.keyframe_indices, b.keyframe_indices)
    torch.testing.assert_close(a.heatmap_logits, b.heatmap_logits, rtol=0, atol=0)
    torch.testing.assert_close(a.action_logits, b.action_logits, rtol=0, atol=0)


def test_stage_hook_sees_every_stage(model: FIHModel) -> None:
    seen: list[str] = []

    def hook(name: str):
        seen.append(name)
        return torch.no_grad()

    model.stage_hook = hook
    try:
        with torch.no_grad():
            model(*batch(), INSTRUCTIONS)
    finally:
        model.stage_hook = None
    assert seen == ["vggt", "sampling", "dinov3", "fusion", "llm", "heads"]


# ---------------------------------------------------------------------- geometry prior
def _poses(yaws: torch.Tensor) -> torch.Tensor:
    """Pose encodings [..., 9] of cameras at the origin turned by `yaws` (radians) about y."""
    half = yaws / 2
    zeros = torch.zeros_like(yaws)
    quat = torch.stack([zeros, torch.sin(half), zeros, torch.cos(half)], -1)  # XYZW
    fov = torch.full_like(yaws, math.pi / 2)
    return torch.cat([torch.stack([zeros] * 3, -1), quat, torch.stack([fov, fov], -1)], -1)


def test_input_prior_needs_poses_and_reaches_each_keyframe_map() -> None:
    """geometry_prior='input': poses are required; turning ONE history frame's camera changes
    the map of that keyframe only (the prior is per keyframe), and the frustum test is what
    the head sees (identical cameras for every frame = all-ones prior)."""
    model = tiny_model(geometry_prior="input").eval()
    assert model.heatmap_head.config.prior_channels == len(model.config.prior_inverse_depths)
    frames, mask, indices = batch()
    with pytest.raises(ValueError, match="camera_poses"):
        model(frames, mask, indices, INSTRUCTIONS)
    with pytest.raises(ValueError, match=r"camera_poses must be \[B, S, 9\]"):
        model(frames, mask, indices, INSTRUCTIONS, torch.zeros(B, S, 7))
    poses = _poses(torch.zeros(B, S))
    with torch.no_grad():
        base = model(frames, mask, indices, INSTRUCTIONS, poses)
        slot = int(base.keyframe_slots[0, 1])
        turned = poses.clone()
        turned[0, slot] = _poses(torch.tensor(0.6))
        out = model(frames, mask, indices, INSTRUCTIONS, turned)
    assert torch.equal(out.keyframe_slots, base.keyframe_slots)
    changed = (out.heatmap_logits - base.heatmap_logits).abs().amax((-2, -1))  # [B, K]
    assert changed[0, 1] > 1e-4
    others = changed.clone()
    others[0, 1] = 0
    assert float(others.max()) < 1e-6
    torch.testing.assert_close(out.action_logits, base.action_logits)


def test_vggt_prior_runs_without_inputs_and_bad_values_are_named() -> None:
    model = tiny_model(geometry_prior="vggt").eval()
    frames, mask, indices = batch()
    with torch.no_grad():
        out = model(frames, mask, indices, INSTRUCTIONS)
    assert torch.isfinite(out.heatmap_logits).all()
    with pytest.raises(ValueError, match="geometry_prior must be one of"):
        FIHModelConfig.tiny(geometry_prior="gps")
    with pytest.raises(ValueError, match="prior_inverse_depths"):
        FIHModelConfig.tiny(geometry_prior="input", prior_inverse_depths=[-1.0])


def test_all_vggt_heads_fill_depth_and_cameras() -> None:
    model = tiny_model(vggt_heads="all").eval()
    frames, mask, indices = batch()
    with torch.no_grad():
        out = model(frames, mask, indices, INSTRUCTIONS)
        plain = tiny_model().eval()(frames, mask, indices, INSTRUCTIONS)
    assert out.pose_enc.shape == (B, S, 9)
    assert out.depth.shape == (B, S, R, R, 1)
    assert out.depth_conf.shape == out.world_points_conf.shape == (B, S, R, R)
    # the heads do not change the rest (same seed, same weights)
    torch.testing.assert_close(out.world_points, plain.world_points)
    torch.testing.assert_close(out.heatmap_logits, plain.heatmap_logits)
