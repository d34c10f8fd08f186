"""The fih `Learner`'s update on the tiny model: gradient accumulation against one large batch,
clipping at the configured norm, fp16 loss scaling (a CPU `GradScaler`: an overflowing step is
skipped, not an error; its state resumes), and the DDP / scaler decisions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from habitat_fih.config.trainer_configs import OptimConfig
from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.factory import build_model, build_stand_in_tokenizer
from habitat_fih.models.policy import FIHPolicy
from habitat_fih.trainers.buffer import ReplayBuffer, Sample, collate
from habitat_fih.trainers.learner import (
    Learner,
    NonFiniteLossError,
    ddp_device_ids,
    needs_grad_scaler,
)
from habitat_fih.trainers.resume import ResumeFile, RunState
from habitat_fih.trainers.stages import policy_config

CPU = torch.device("cpu")


def _learner(
    accumulation: int = 1, grad_clip: float = 1e9, grad_scaling: bool | None = None, **model: object
) -> Learner:
    """A main-stage learner of the tiny model, same initial weights every call."""
    torch.manual_seed(0)
    cfg = FIHModelConfig.tiny(**model)
    policy = FIHPolicy(
        build_model(cfg, tokenizer=build_stand_in_tokenizer(cfg)), None, policy_config({})
    )
    policy.model.set_stage("main")
    optim = OptimConfig(
        lr=1e-2,
        weight_decay=0.0,
        warmup_updates=0,
        grad_accumulation=accumulation,
        grad_clip=grad_clip,
    )
    return Learner(policy, optim, 10, "main", CPU, grad_scaling=grad_scaling)


def _samples(uniform: bool, count: int = 8) -> list[Sample]:
    """`uniform`: every sample has 4 frames, its 3 past targets valid and action weight 1, so
    every loss term counts the same items per sample; else the frame counts, valid targets and
    inflection weights differ from sample to sample."""
    rng = np.random.default_rng(1)
    out = []
    for _ in range(count):
        frames = 4 if uniform else int(rng.integers(2, 6))
        valid = np.r_[np.ones(frames - 1, bool), False]
        if not uniform:
            valid[: int(rng.integers(0, frames))] = False
        out.append(
            Sample(
                frames=rng.integers(0, 255, (frames, 32, 32, 3), dtype=np.uint8),
                indices=np.arange(frames, dtype=np.int64) * 2,
                targets=rng.random((frames, 16, 16)).astype(np.float16),
                valid=valid,
                instruction="walk past the sofa",
                expert_action=int(rng.integers(4)),
                action_weight=1.0 if uniform else float(rng.choice([1.0, 3.2])),
            )
        )
    return out


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().flatten() for t in tensors])


def _applied_gradient(learner: Learner, batches: list[list[Sample]]) -> tuple[torch.Tensor, dict]:
    """(the gradient the optimiser step applies — read by a step pre-hook, after accumulation,
    unscaling and clipping — and the update's logged values)."""
    seen: list[torch.Tensor] = []
    hook = learner.optimizer.register_step_pre_hook(
        lambda *_: seen.append(
            _flat([torch.zeros_like(p) if p.grad is None else p.grad for p in learner.params])
        )  # (a parameter the forward does not use, e.g. VGGT's mask token, has no gradient)
    )
    try:
        terms = learner.update(batches)
    finally:
        hook.remove()
    assert len(seen) == 1
    return seen[0], terms


def test_grad_accumulation_of_equal_counts_is_the_large_batch_update() -> None:
    """Two micro-batches of 4 (grad_accumulation=2) apply the gradient of one batch of the 8
    samples when every term counts the same items in both micro-batches."""
    data = _samples(uniform=True)
    big, big_terms = _applied_gradient(_learner(1), [data])
    accumulated, terms = _applied_gradient(_learner(2), [data[:4], data[4:]])
    torch.testing.assert_close(accumulated, big, rtol=0, atol=1e-6)
    assert terms["total"] == pytest.approx(big_terms["total"], rel=1e-5)
    # (the weights after AdamW's first step, lr * g / (|g| + eps), agree only to ~1e-4: for
    # gradients near eps = 1e-8 it magnifies their 1e-8 rounding differences)


def test_grad_accumulation_is_the_mean_of_the_micro_batch_losses() -> None:
    """With unequal counts the update follows (L(b1) + L(b2)) / 2, each L a mean over its own
    valid items (the learner's docstring), which is not the 8-sample batch's loss."""
    data = _samples(uniform=False)
    learner = _learner(2)
    learner.model.train()
    by_hand = []
    for batch in (data[:4], data[4:]):
        total, _ = learner.loss(batch)
        grads = torch.autograd.grad(total, learner.params, allow_unused=True)
        by_hand.append(
            _flat(
                [
                    torch.zeros_like(p) if g is None else g
                    for g, p in zip(grads, learner.params, strict=True)
                ]
            )
        )
    accumulated, _ = _applied_gradient(learner, [data[:4], data[4:]])
    torch.testing.assert_close(accumulated, (by_hand[0] + by_hand[1]) / 2, rtol=0, atol=1e-6)
    big, _ = _applied_gradient(_learner(1), [data])
    assert (accumulated - big).abs().max() > 1e-3  # not the large batch's gradient


@pytest.mark.parametrize("grad_clip", [0.05, 1e6])
def test_the_step_applies_the_gradient_clipped_to_the_configured_norm(grad_clip: float) -> None:
    """The applied gradient's norm is min(grad_clip, raw norm); ``grad_norm`` logs the raw norm,
    and clipping only rescales (same direction)."""
    data = _samples(uniform=False)
    raw, raw_terms = _applied_gradient(_learner(2), [data[:4], data[4:]])  # no clipping
    applied, terms = _applied_gradient(_learner(2, grad_clip), [data[:4], data[4:]])
    raw_norm = raw.norm().item()
    assert terms["grad_norm"] == pytest.approx(raw_norm, rel=1e-5) == raw_terms["grad_norm"]
    assert applied.norm().item() == pytest.approx(min(grad_clip, raw_norm), rel=1e-5)
    torch.testing.assert_close(applied / applied.norm(), raw / raw.norm(), rtol=0, atol=1e-6)
    assert grad_clip > raw_norm or raw_norm > 10 * grad_clip  # both cases are exercised


def test_scaler_decision() -> None:
    assert needs_grad_scaler({"cuda"}, True, "float16")
    assert needs_grad_scaler({"cpu", "cuda"}, True, "float16")  # part of the model on a GPU
    assert not needs_grad_scaler({"cuda"}, True, "bfloat16")
    assert not needs_grad_scaler({"cuda"}, False, "float16")
    assert not needs_grad_scaler({"cpu"}, True, "float16")  # FIHModel autocasts only on CUDA
    assert _learner().grad_scaler is None  # tiny: bf16 autocast (off on CPU)
    assert _learner(autocast_dtype="float16").grad_scaler is None  # on CPU


def test_fp16_overflow_skips_the_step_halves_the_scale_and_raises_nothing(tmp_path) -> None:
    """A scaler-enabled learner (``GradScaler("cpu")``): an update whose gradients overflow
    leaves every weight as it was, halves the scale and is logged as skipped; the next update
    steps. The scaler's state goes through the resume state."""
    learner = _learner(grad_scaling=True)
    assert learner.grad_scaler is not None
    scale = learner.grad_scaler.get_scale()
    data = _samples(uniform=True, count=2)
    # scaled and unscaled, the applied gradient is the fp32 learner's
    plain, _ = _applied_gradient(_learner(), [data])
    scaled, terms = _applied_gradient(learner, [data])
    torch.testing.assert_close(scaled, plain, rtol=1e-5, atol=1e-7)
    assert terms["train/skipped_step"] == 0.0 and terms["train/grad_scale"] == scale

    weight = learner.policy.model.action_head.mlp[1].weight
    hook = weight.register_hook(lambda g: torch.full_like(g, float("inf")))  # loss stays finite
    before = _flat(learner.params).clone()
    terms = learner.update([data])  # no NonFiniteLossError: the scaler skips the step
    hook.remove()
    assert terms["train/skipped_step"] == 1.0 and not np.isfinite(terms["grad_norm"])
    assert torch.equal(_flat(learner.params), before)
    assert learner.grad_scaler.get_scale() == scale / 2 and learner.updates == 2
    terms = learner.update([data])
    assert terms["train/skipped_step"] == 0.0 and not torch.equal(_flat(learner.params), before)

    # exact resume: the scale (and its growth tracker) come back from the resume state
    cfg = learner.policy.model.config
    settings = {"seed": 0, "collection": {"target_kind": "covisibility"}}
    file = ResumeFile(str(tmp_path / "resume.pth"), "main", cfg, settings, False, False)
    generators = {"batch": torch.Generator().manual_seed(0)}
    file.save(learner, ReplayBuffer(4), RunState(update=3), generators)
    resumed = _learner(grad_scaling=True)
    assert file.load(resumed, ReplayBuffer(4), generators) == RunState(update=3)
    assert resumed.grad_scaler is not None
    assert resumed.grad_scaler.state_dict() == learner.grad_scaler.state_dict()
    assert resumed.updates == 3 and torch.equal(_flat(resumed.params), _flat(learner.params))


def test_without_a_scaler_an_overflow_is_an_error() -> None:
    learner = _learner()
    weight = learner.policy.model.action_head.mlp[1].weight
    weight.register_hook(lambda g: torch.full_like(g, float("inf")))
    with pytest.raises(NonFiniteLossError, match="non-finite gradient norm inf at update 1"):
        learner.update([_samples(uniform=True, count=2)])


def test_ddp_device_ids_follow_the_parameters_devices() -> None:
    """``device_ids=[i]`` only for a module wholly on one GPU; None for a CPU module and for
    one spread over several devices by ``device_allocation`` (DDP refuses device_ids there)."""
    cuda = [torch.device("cuda", i) for i in range(3)]
    assert ddp_device_ids([cuda[1], cuda[1]]) == [1]
    assert ddp_device_ids([CPU]) is None
    assert ddp_device_ids(cuda) is None  # vggt cuda:0, dinov3 cuda:1, llm cuda:2
    assert ddp_device_ids([cuda[0], CPU]) is None
    assert ddp_device_ids(p.device for p in _learner().policy.parameters()) is None


def test_the_learner_and_evaluate_loss_share_one_loss_path() -> None:
    """`Learner.loss` (the forward through the learner's model) and
    `FIHPolicy.evaluate_loss` give the same total and terms on one batch (the learner adds the
    batch's ``quality/*``)."""
    learner = _learner()
    data = _samples(uniform=False, count=3)
    learner.model.train()
    total, terms = learner.loss(data)
    _, again, policy_terms = learner.policy.evaluate_loss(collate(data), "main")
    assert torch.equal(total, again)
    assert {k for k in terms if not k.startswith("quality/")} == set(policy_terms)
    assert all(torch.equal(terms[k], v) for k, v in policy_terms.items())


def _vggt_learner(grad_scaling: bool | None = None) -> Learner:
    """A vggt-stage learner of the tiny model (VGGT's heads + aggregator train)."""
    torch.manual_seed(0)
    cfg = FIHModelConfig.tiny()
    policy = FIHPolicy(
        build_model(cfg, tokenizer=build_stand_in_tokenizer(cfg)), None, policy_config({})
    )
    policy.model.set_stage("vggt")
    optim = OptimConfig(lr=1e-2, weight_decay=0.0, warmup_updates=0, grad_clip=1e9)
    return Learner(policy, optim, 10, "vggt", CPU, grad_scaling=grad_scaling)


def _vggt_samples(count: int = 2) -> list:
    """Sequences of 3 frames walking 0.3 m forward and turning 10 degrees over a floor 1.5 m
    below the camera (a plane: every pixel below the horizon has a depth)."""
    from habitat_fih.geometry.camera import quat_from_angle_axis, quat_to_rotation_matrix
    from habitat_fih.models.vggt.targets import vggt_targets
    from habitat_fih.trainers.vggt_samples import VGGTSample

    rng = np.random.default_rng(3)
    out = []
    v = (np.arange(32) + 0.5 - 16) / 16  # normalised image row, down positive
    depth = np.where(v > 0, 1.5 / np.maximum(v, 1e-9), 0.0)[:, None].repeat(32, 1)
    for _ in range(count):
        poses = []
        for k in range(3):
            pose = np.eye(4)
            q = quat_from_angle_axis(np.radians(10.0 * k), np.array([0.0, 1.0, 0.0]))
            pose[:3, :3] = quat_to_rotation_matrix(q)
            pose[:3, 3] = [0.0, 1.5, -0.3 * k]
            poses.append(pose)
        targets = vggt_targets(np.stack(poses), 90.0, np.stack([depth] * 3))
        frames = rng.integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
        out.append(VGGTSample(frames, np.arange(3, dtype=np.int64), targets))
    return out


def test_vggt_stage_fp16_overflow_skips_the_step() -> None:
    """The vggt stage runs through the same `Learner` update: with a scaler the applied gradient
    is the fp32 one, and a step whose gradients overflow changes no weight and halves the
    scale."""
    learner = _vggt_learner(grad_scaling=True)
    assert learner.grad_scaler is not None and learner.model is learner.policy.model.vggt
    assert learner.params and all(
        any(p is q for q in learner.policy.model.vggt.parameters()) for p in learner.params
    )
    scale = learner.grad_scaler.get_scale()
    data = _vggt_samples()
    plain, _ = _applied_gradient(_vggt_learner(), [data])
    scaled, terms = _applied_gradient(learner, [data])
    torch.testing.assert_close(scaled, plain, rtol=1e-4, atol=1e-6)
    assert terms["train/skipped_step"] == 0.0 and "vggt/camera" in terms
    weight = next(p for n, p in learner.policy.model.vggt.named_parameters() if "camera_head" in n)
    hook = weight.register_hook(lambda g: torch.full_like(g, float("inf")))
    before = _flat(learner.params).clone()
    terms = learner.update([data])
    hook.remove()
    assert terms["train/skipped_step"] == 1.0
    assert torch.equal(_flat(learner.params), before)
    assert learner.grad_scaler.get_scale() == scale / 2


def test_vggt_stage_trains_only_the_heads_its_loss_runs() -> None:
    from habitat_fih.models.vggt.losses import VGGTLossConfig

    torch.manual_seed(0)
    cfg = FIHModelConfig.tiny()
    policy = FIHPolicy(
        build_model(cfg, tokenizer=build_stand_in_tokenizer(cfg)), None, policy_config({})
    )
    policy.model.set_stage("vggt")
    camera_only = VGGTLossConfig(depth_weight=0.0, point_weight=0.0)
    learner = Learner(policy, OptimConfig(), 10, "vggt", CPU, vggt_losses=camera_only)
    names = {n for n, p in policy.model.vggt.named_parameters() if p.requires_grad}
    assert names and {n.split(".")[0] for n in names} == {"aggregator", "camera_head"}
    assert len(learner.params) == len(names)
