"""VGGT losses on hand-built tensors whose values are computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from habitat_fih.models.vggt import VGGT
from habitat_fih.models.vggt.losses import (
    VGGTLossConfig,
    camera_loss,
    camera_loss_components,
    dense_loss_terms,
    depth_loss,
    point_loss,
    refinement_weights,
    vggt_loss,
)
from habitat_fih.models.vggt.targets import VGGTTargets


def _targets(B: int = 1, S: int = 2, H: int = 2, W: int = 3) -> VGGTTargets:
    g = torch.Generator().manual_seed(0)
    return VGGTTargets(
        pose_enc=torch.randn(B, S, 9, generator=g),
        extrinsics=torch.zeros(B, S, 3, 4),
        intrinsics=torch.zeros(B, S, 3, 3),
        depth=torch.rand(B, S, H, W, generator=g) + 1.0,
        world_points=torch.randn(B, S, H, W, 3, generator=g),
        valid=torch.ones(B, S, H, W, dtype=torch.bool),
        scale=torch.ones(B),
    )


# --------------------------------------------------------------------------- camera


def test_refinement_weights_by_hand() -> None:
    # γ = 0.6, K = 4: raw 0.216, 0.36, 0.6, 1 (sum 2.176).
    expected = [0.216 / 2.176, 0.36 / 2.176, 0.6 / 2.176, 1 / 2.176]
    assert refinement_weights(4, 0.6) == pytest.approx(expected)
    assert refinement_weights(3, 0.0) == [0.0, 0.0, 1.0]
    assert refinement_weights(2, 1.0) == [0.5, 0.5]


def test_camera_huber_by_hand() -> None:
    target = torch.zeros(1, 1, 9)
    pred = target.clone()
    pred[..., 0] = 0.5  # |x| <= δ = 1: x² / 2 = 0.125
    pred[..., 8] = 2.0  # |x| > δ: δ (|x| - δ / 2) = 1.5
    parts = camera_loss_components(pred, target, huber_delta=1.0)
    assert float(parts["translation"]) == pytest.approx(0.125)
    assert float(parts["rotation"]) == 0.0
    assert float(parts["fov"]) == pytest.approx(1.5)
    assert float(camera_loss(pred, target)) == pytest.approx(1.625)
    weighted = camera_loss(pred, target, translation_weight=2.0, fov_weight=0.5)
    assert float(weighted) == pytest.approx(2 * 0.125 + 0.5 * 1.5)
    # δ = 0.25: 0.25 (0.5 - 0.125) = 0.09375 and 0.25 (2 - 0.125) = 0.46875.
    assert float(camera_loss(pred, target, huber_delta=0.25)) == pytest.approx(0.09375 + 0.46875)


def test_camera_l1_by_hand() -> None:
    target = torch.zeros(1, 1, 9)
    pred = target.clone()
    pred[..., 0] = 0.5  # |0.5|, where Huber (δ = 1) gives 0.125
    pred[..., 4] = -0.1  # |-0.1| = 0.1 (Huber: 0.005)
    pred[..., 8] = 2.0
    parts = camera_loss_components(pred, target, norm="l1")
    assert float(parts["translation"]) == pytest.approx(0.5)
    assert float(parts["rotation"]) == pytest.approx(0.1)
    assert float(parts["fov"]) == pytest.approx(2.0)
    # the gradient of a small error is as strong as a large one's: d|x|/dx = sign(x)
    pred.requires_grad_(True)
    camera_loss(pred, target, norm="l1").backward()
    assert pred.grad is not None
    assert pred.grad[0, 0, [0, 4, 8]].tolist() == [1.0, -1.0, 1.0]
    with pytest.raises(ValueError, match="l2"):
        camera_loss(pred, target, norm="l2")
    with pytest.raises(ValueError, match="camera_norm"):
        VGGTLossConfig(camera_norm="l2")


def test_vggt_loss_reads_camera_norm() -> None:
    targets = _targets()
    pred = targets.pose_enc + 0.1  # every error 0.1: L1 per frame 0.3 / 0.4 / 0.2
    config = VGGTLossConfig(depth_weight=0.0, point_weight=0.0, camera_norm="l1")
    _, terms = vggt_loss({"pose_enc": pred}, targets, config)
    assert float(terms["vggt/camera_rotation"]) == pytest.approx(0.4)
    assert float(terms["vggt/camera"]) == pytest.approx(0.9)


def test_camera_rounds_are_decay_weighted() -> None:
    target = torch.zeros(2, 3, 9)
    early = target.clone()
    early[..., 3] = 0.5  # every frame: rotation Huber 0.125
    final = target.clone()  # perfect
    # γ = 0.5, K = 2: weights 0.5 / 1.5 and 1 / 1.5 -> 0.125 / 3.
    loss = camera_loss([early, final], target, refinement_decay=0.5)
    assert float(loss) == pytest.approx(0.125 / 3)
    assert float(camera_loss([early, final], target, refinement_decay=0.0)) == 0.0


def test_camera_frame_mask_excludes_frames() -> None:
    target = torch.zeros(1, 2, 9)
    pred = target.clone()
    pred[0, 1] = 1e6
    pred[0, 0, 0] = 0.5
    valid = torch.tensor([[True, False]])
    assert float(camera_loss(pred, target, frame_valid=valid)) == pytest.approx(0.125)


# --------------------------------------------------------------------------- dense


def test_constant_error_gives_c_e_minus_alpha_log_c() -> None:
    target = torch.full((1, 2, 3, 4), 2.0)
    pred = (target + 0.5)[..., None]  # [B, S, H, W, 1] as VGGT
    conf = torch.full((1, 2, 3, 4), 3.0)
    valid = torch.ones(1, 2, 3, 4, dtype=torch.bool)
    loss = depth_loss(pred, conf, target, valid, alpha=0.2, gradient_weight=1.0)
    assert float(loss) == pytest.approx(3.0 * 0.5 - 0.2 * math.log(3.0))
    terms = dense_loss_terms(pred, conf, target[..., None], valid)
    assert float(terms.gradient) == 0.0  # a constant offset has no gradient error
    # A negative offset is the same (absolute error).
    loss_neg = depth_loss(target[..., None] - 0.5, conf, target, valid, alpha=0.2)
    assert float(loss_neg) == pytest.approx(float(loss))


def test_one_pixel_wide_depth_maps_are_not_mistaken_for_channels() -> None:
    # W = 1: target [B, S, H, 1] has the confidence's shape, so it is channel-less.
    target = torch.full((1, 1, 3, 1), 2.0)
    conf = torch.full((1, 1, 3, 1), 2.0)
    valid = torch.ones(1, 1, 3, 1, dtype=torch.bool)
    loss = depth_loss((target + 1.0)[..., None], conf, target, valid, alpha=0.5)
    assert float(loss) == pytest.approx(2.0 * 1.0 - 0.5 * math.log(2.0))
    with pytest.raises(ValueError, match="confidence's shape"):
        depth_loss(torch.zeros(1, 1, 3, 2), conf, target, valid)


def test_gradient_term_of_a_ramp() -> None:
    # Error k * column on a 2 x 3 map, confidence 2: E = 2 * mean(0, k, 2k) = 2k; horizontal
    # differences are all k (G_x = 2k), vertical ones 0 (G_y = 0).
    k, c, alpha = 0.1, 2.0, 0.3
    target = torch.ones(1, 1, 2, 3)
    pred = target + k * torch.arange(3.0)
    conf = torch.full_like(target, c)
    valid = torch.ones_like(target, dtype=torch.bool)
    terms = dense_loss_terms(pred[..., None], conf, target[..., None], valid)
    assert float(terms.error) == pytest.approx(c * k)
    assert float(terms.gradient) == pytest.approx(c * k)
    assert float(terms.log_conf) == pytest.approx(math.log(c))
    with_grad = depth_loss(pred, conf, target, valid, alpha=alpha, gradient_weight=1.0)
    assert float(with_grad) == pytest.approx(c * k + c * k - alpha * math.log(c), abs=1e-6)
    off = depth_loss(pred, conf, target, valid, alpha=alpha, gradient_weight=0.0)
    assert float(off) == pytest.approx(c * k - alpha * math.log(c), abs=1e-6)
    half = depth_loss(pred, conf, target, valid, alpha=alpha, gradient_weight=0.5)
    assert float(half) == pytest.approx(c * k + 0.5 * c * k - alpha * math.log(c), abs=1e-6)


def test_confidence_weighting_by_hand() -> None:
    # Errors 1 and 2 with confidences 2 and 4: E = (2 + 8) / 2 = 5, A = (ln 2 + ln 4) / 2.
    target = torch.zeros(1, 1, 1, 2)
    pred = torch.tensor([1.0, -2.0]).reshape(1, 1, 1, 2)
    conf = torch.tensor([2.0, 4.0]).reshape(1, 1, 1, 2)
    valid = torch.ones(1, 1, 1, 2, dtype=torch.bool)
    terms = dense_loss_terms(pred[..., None], conf, target[..., None], valid, gradient=False)
    assert float(terms.error) == pytest.approx(5.0)
    assert float(terms.log_conf) == pytest.approx(1.5 * math.log(2.0))


def test_point_error_is_the_euclidean_norm() -> None:
    target = torch.zeros(1, 1, 2, 2, 3)
    pred = target + torch.tensor([3.0, 4.0, 0.0])  # |e| = 5 everywhere, constant
    conf = torch.ones(1, 1, 2, 2)
    valid = torch.ones(1, 1, 2, 2, dtype=torch.bool)
    assert float(point_loss(pred, conf, target, valid, alpha=0.5)) == pytest.approx(5.0)


def test_masks_exclude_pixels_and_their_gradient_pairs() -> None:
    target = torch.ones(1, 1, 1, 4)
    pred = torch.tensor([1.5, 1.5, float("nan"), 100.0]).reshape(1, 1, 1, 4).requires_grad_(True)
    conf = torch.tensor([1.0, 1.0, float("inf"), 7.0]).reshape(1, 1, 1, 4)
    valid = torch.tensor([True, True, False, False]).reshape(1, 1, 1, 4)
    loss = depth_loss(pred, conf, target, valid, alpha=0.2, gradient_weight=1.0)
    # Only pixels 0 and 1 count (error 0.5, conf 1, log 1 = 0); their pair's difference is 0.
    assert float(loss.detach()) == pytest.approx(0.5)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert pred.grad[0, 0, 0, 2:].abs().sum() == 0
    # A fully masked batch gives 0 that is still attached to the graph.
    empty = depth_loss(pred, conf, target, torch.zeros_like(valid), alpha=0.2)
    assert float(empty.detach()) == 0.0 and empty.requires_grad


def test_perfect_prediction_is_the_minimum_for_a_fixed_confidence() -> None:
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 3, 4, 5, 3, generator=g)
    conf = 1.0 + torch.rand(2, 3, 4, 5, generator=g)
    valid = torch.rand(2, 3, 4, 5, generator=g) > 0.2
    alpha = 0.2
    perfect = point_loss(target.clone(), conf, target, valid, alpha=alpha)
    expected = -alpha * conf.log()[valid].mean()
    assert float(perfect) == pytest.approx(float(expected), rel=1e-5)
    for seed in range(3):
        noise = 0.01 * torch.randn(target.shape, generator=torch.Generator().manual_seed(seed))
        assert float(point_loss(target + noise, conf, target, valid, alpha=alpha)) > float(perfect)


def test_dense_shape_errors() -> None:
    with pytest.raises(ValueError, match="pred and target"):
        dense_loss_terms(
            torch.zeros(1, 2, 2, 3),
            torch.ones(1, 2, 2),
            torch.zeros(1, 2, 2, 1),
            torch.ones(1, 2, 2, dtype=torch.bool),
        )
    with pytest.raises(ValueError, match="conf and valid"):
        dense_loss_terms(
            torch.zeros(1, 2, 2, 1),
            torch.ones(1, 2, 3),
            torch.zeros(1, 2, 2, 1),
            torch.ones(1, 2, 2, dtype=torch.bool),
        )


# --------------------------------------------------------------------------- total


def _outputs_from(targets: VGGTTargets, depth_offset: float, conf: float) -> dict[str, object]:
    pose = targets.pose_enc.clone()
    pose[..., 0] += 0.5  # translation Huber 0.125 per frame
    return {
        "pose_enc": pose,
        "pose_enc_list": [pose],
        "depth": (targets.depth + depth_offset)[..., None],
        "depth_conf": torch.full(targets.depth.shape, conf),
        "world_points": targets.world_points.clone(),
        "world_points_conf": torch.full(targets.depth.shape, conf),
    }


def test_vggt_loss_total_and_logged_terms() -> None:
    targets = _targets()
    outputs = _outputs_from(targets, depth_offset=0.25, conf=2.0)
    cfg = VGGTLossConfig(camera_weight=2.0, depth_weight=3.0, point_weight=0.5, alpha=0.1)
    total, terms = vggt_loss(outputs, targets, cfg)
    camera = 0.125
    depth = 2.0 * 0.25 - 0.1 * math.log(2.0)
    point = -0.1 * math.log(2.0)
    assert float(terms["vggt/camera"]) == pytest.approx(camera)
    assert float(terms["vggt/camera_translation"]) == pytest.approx(camera)
    assert float(terms["vggt/depth"]) == pytest.approx(depth)
    assert float(terms["vggt/depth_error"]) == pytest.approx(0.5)
    assert float(terms["vggt/depth_gradient"]) == pytest.approx(0.0, abs=1e-6)
    assert float(terms["vggt/depth_log_conf"]) == pytest.approx(math.log(2.0))
    assert float(terms["vggt/point"]) == pytest.approx(point)
    assert float(total) == pytest.approx(2.0 * camera + 3.0 * depth + 0.5 * point)
    assert float(terms["vggt/total"]) == pytest.approx(float(total))
    assert set(terms) == {
        "vggt/camera",
        "vggt/camera_translation",
        "vggt/camera_rotation",
        "vggt/camera_fov",
        "vggt/depth",
        "vggt/depth_error",
        "vggt/depth_gradient",
        "vggt/depth_log_conf",
        "vggt/point",
        "vggt/point_error",
        "vggt/point_gradient",
        "vggt/point_log_conf",
        "vggt/total",
    }
    assert all(not v.requires_grad for v in terms.values())


def test_vggt_loss_missing_heads() -> None:
    targets = _targets()
    outputs = _outputs_from(targets, 0.0, 1.5)
    del outputs["world_points"], outputs["world_points_conf"]
    with pytest.raises(KeyError, match="world_points"):
        vggt_loss(outputs, targets)
    total, terms = vggt_loss(outputs, targets, VGGTLossConfig(point_weight=0.0))
    assert "vggt/point" not in terms and "vggt/depth" in terms
    with pytest.raises(ValueError, match="every head weight"):
        vggt_loss(outputs, targets, VGGTLossConfig(camera_weight=0, depth_weight=0, point_weight=0))


def test_vggt_loss_config_validation() -> None:
    with pytest.raises(ValueError, match="depth_weight"):
        VGGTLossConfig(depth_weight=-1.0)
    with pytest.raises(ValueError, match="huber_delta"):
        VGGTLossConfig(huber_delta=0.0)
    with pytest.raises(ValueError, match="refinement_decay"):
        VGGTLossConfig(refinement_decay=1.5)


def test_vggt_loss_on_the_tiny_model_backpropagates(tiny_model: VGGT) -> None:
    B, S, H, W = 1, 2, 8, 8
    targets = _targets(B, S, H, W)
    targets.valid[0, 1, :2] = False
    out = tiny_model(torch.rand(B, S, 3, H, W))
    total, terms = vggt_loss(out, targets)
    total.backward()
    grads = [p.grad for p in tiny_model.camera_head.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert tiny_model.depth_head.scratch.output_conv2[-1].weight.grad is not None
    assert math.isfinite(float(terms["vggt/total"]))
