"""Tests for habitat_fih.models.losses: closed-form values, masking, stage totals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from habitat_fih.models.heads import FrameIndexedHeatmapHead, HeatmapHeadConfig
from habitat_fih.models.losses import (
    FinetuneLossConfig,
    LossConfig,
    MainLossConfig,
    PretrainLossConfig,
    action_loss,
    compute_stage_loss,
    distinctness_loss,
    feature_alignment_loss,
    frame_indexed_mse_loss,
    gaussian_heatmap_ce_loss,
    inflection_weight,
    inflection_weights,
    sigmoid_distribution_ce_loss,
    smoothness_loss,
    spatial_consistency_loss,
    spatial_reasoning_loss,
    temporal_consistency_loss,
)

MAP_LOSSES = {
    "ce": lambda x, t, v: gaussian_heatmap_ce_loss(x, t, v),
    "smooth": lambda x, t, v: smoothness_loss(x, v),
    "mse": lambda x, t, v: frame_indexed_mse_loss(x, t, v),
    "distinct": lambda x, t, v: distinctness_loss(x, v),
    "temporal": lambda x, t, v: temporal_consistency_loss(x, v),
    "entropy": lambda x, t, v: spatial_reasoning_loss(x, v),
    "adjacent": lambda x, t, v: spatial_consistency_loss(x, t, v),
    "distribution": lambda x, t, v: sigmoid_distribution_ce_loss(x, t, v),
}


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


# --------------------------------------------------------------------------- pretraining


def test_ce_with_one_hot_target_is_minus_log_softmax_at_that_pixel() -> None:
    values = [[0.3, -1.2, 2.0, 0.5], [1.1, 0.0, -0.7, 0.9], [0.2, 0.4, -2.0, 1.5]]
    logits = torch.tensor(values)[None, None]  # [1, 1, 3, 4]
    target = torch.zeros_like(logits)
    target[0, 0, 1, 2] = 7.0  # any positive mass: the target is normalised to sum 1
    log_z = math.log(sum(math.exp(v) for row in values for v in row))
    expected = -(values[1][2] - log_z)
    assert gaussian_heatmap_ce_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_ce_uniform_target_on_uniform_prediction_is_log_hw() -> None:
    logits = torch.zeros(2, 3, 4, 5)
    target = torch.full_like(logits, 0.3)
    assert gaussian_heatmap_ce_loss(logits, target).item() == pytest.approx(math.log(20))


def test_ce_uses_normalised_target_not_softmax_of_target() -> None:
    # Two pixels, target [1, 0]: the proper distribution is [1, 0]; softmax([1, 0]) would be
    # [e/(e+1), 1/(e+1)]. Prediction logits [0, 0] -> CE = ln 2 either way, so use [a, 0].
    a = 1.5
    logits = torch.tensor([[[[a, 0.0]]]])
    target = torch.tensor([[[[1.0, 0.0]]]])
    expected = -(a - math.log(math.exp(a) + 1.0))
    assert gaussian_heatmap_ce_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_ce_zero_mass_and_negative_targets() -> None:
    logits = torch.zeros(1, 2, 2, 2)
    target = torch.zeros_like(logits)
    target[0, 0] = 1.0  # map 1 has no mass -> masked out
    assert gaussian_heatmap_ce_loss(logits, target).item() == pytest.approx(math.log(4))
    with pytest.raises(ValueError, match="non-negative"):
        gaussian_heatmap_ce_loss(logits, -target)


def test_smoothness_constant_is_zero_and_ramp_gives_slope() -> None:
    assert smoothness_loss(torch.full((2, 3, 5, 6), 0.7)).item() == 0.0
    cols = torch.arange(6.0)
    rows = torch.arange(5.0)[:, None]
    ramp = 0.25 * cols + 0.1 * rows  # slope 0.25 along x, 0.1 along y
    got = smoothness_loss(ramp[None, None], activation="none").item()
    assert got == pytest.approx(0.35)
    # Through the default sigmoid: probabilities 0.1, 0.3, 0.5, 0.7 along x -> 0.2.
    sig_ramp = torch.tensor([[logit(0.1), logit(0.3), logit(0.5), logit(0.7)]] * 3)
    assert smoothness_loss(sig_ramp[None, None]).item() == pytest.approx(0.2, rel=1e-5)
    # A 1-pixel-wide map has no x differences.
    col = torch.tensor([[0.0], [1.0], [3.0]])[None, None]
    assert smoothness_loss(col, activation="none").item() == pytest.approx(1.5)


def test_alignment_infonce_closed_form() -> None:
    e1, e2 = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    feats = torch.stack([e1, e2])[None]  # [1, 2, 3]
    expected = math.log(1.0 + math.exp(-1.0))  # logits [[1, 0], [0, 1]], temperature 1
    got = feature_alignment_loss(feats, feats.clone(), temperature=1.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # A third, masked point (even NaN) is neither anchor nor negative.
    extra = torch.tensor([[[float("nan")] * 3]])
    a = torch.cat([feats, extra], dim=1)
    mask = torch.tensor([[True, True, False]])
    got = feature_alignment_loss(a, a.clone(), mask, temperature=1.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # Perfectly matched, well separated features at a low temperature -> ~0.
    assert feature_alignment_loss(feats, feats, temperature=0.01).item() < 1e-6


# --------------------------------------------------------------------------- fine-tuning


def test_mse_through_sigmoid() -> None:
    logits = torch.zeros(1, 2, 3, 3)
    target = torch.ones_like(logits)
    assert frame_indexed_mse_loss(logits, target).item() == pytest.approx(0.25)
    target[0, 1] = 0.5  # map 1 is exact -> mean over maps (0.25 + 0) / 2
    assert frame_indexed_mse_loss(logits, target).item() == pytest.approx(0.125)


def test_distinctness_identical_orthogonal_and_mixed() -> None:
    a = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 0.0], [3.0, 1.0]])
    ident = torch.stack([a, a])[None]
    assert distinctness_loss(ident, activation="none").item() == pytest.approx(1.0)
    ortho = torch.stack([a, b])[None]
    assert distinctness_loss(ortho, activation="none").item() == pytest.approx(0.0, abs=1e-7)
    mixed = torch.stack([a, a, b])[None]  # ordered pairs: 2 of 6 have |cos| = 1
    assert distinctness_loss(mixed, activation="none").item() == pytest.approx(1.0 / 3.0)
    # Default sigmoid: identical logits -> identical probability maps -> 1.
    assert distinctness_loss(torch.randn(1, 1, 4, 4).expand(2, 3, 4, 4)).item() == (
        pytest.approx(1.0)
    )
    # Fewer than two valid maps -> no pairs -> 0.
    valid = torch.tensor([[True, False, False]])
    assert distinctness_loss(mixed, valid, activation="none").item() == 0.0


def test_temporal_diff_norm_half_gives_zero() -> None:
    # 1 x 2 maps; softmax([0, 0]) = [0.5, 0.5], softmax([x, 0]) = [s, 1 - s];
    # ||diff|| = sqrt(2) |s - 0.5| = 0.5  <=>  s = 0.5 + 0.5 / sqrt(2).
    s = 0.5 + 0.5 / math.sqrt(2.0)
    x = math.log(s / (1.0 - s))
    logits = torch.tensor([[[[0.0, 0.0]], [[x, 0.0]]]])  # [1, 2, 1, 2]
    assert temporal_consistency_loss(logits).item() == pytest.approx(0.0, abs=1e-10)
    # Identical maps: norm 0 -> (0 - 0.5)^2 = 0.25, with a finite gradient.
    same = torch.zeros(1, 3, 4, 4, requires_grad=True)
    loss = temporal_consistency_loss(same)
    assert loss.item() == pytest.approx(0.25)
    loss.backward()
    assert torch.isfinite(same.grad).all()


def test_temporal_pairs_skip_padding() -> None:
    s = 0.5 + 0.5 / math.sqrt(2.0)
    x = math.log(s / (1.0 - s))
    logits = torch.tensor([[[[0.0, 0.0]], [[x, 0.0]], [[float("nan"), 9.0]]]])
    valid = torch.tensor([[True, True, False]])
    assert temporal_consistency_loss(logits, valid).item() == pytest.approx(0.0, abs=1e-10)


def test_entropy_of_uniform_map_and_targets() -> None:
    uniform = torch.zeros(1, 2, 8, 8)
    ln64 = math.log(64)
    assert spatial_reasoning_loss(uniform, entropy_target=ln64).item() == pytest.approx(
        0.0, abs=1e-10
    )
    # Default: size-relative target 0.72 * ln(h * w).
    assert spatial_reasoning_loss(uniform).item() == pytest.approx((0.28 * ln64) ** 2)
    # The document's fixed 6.0 on 16 x 16: max entropy ln 256 = 5.55 < 6.
    u16 = torch.zeros(1, 1, 16, 16)
    got = spatial_reasoning_loss(u16, entropy_target=6.0).item()
    assert got == pytest.approx((math.log(256) - 6.0) ** 2)
    # A near one-hot map has entropy ~0.
    peaked = torch.full((1, 1, 8, 8), -50.0)
    peaked[0, 0, 3, 3] = 50.0
    assert spatial_reasoning_loss(peaked, entropy_target=0.0).item() == pytest.approx(0.0, abs=1e-8)


# --------------------------------------------------------------------------- main trainer


def test_spatial_consistency_zero_when_changes_match() -> None:
    t = torch.tensor([[0.2, 0.8], [0.5, 0.3]])
    t2 = torch.tensor([[0.7, 0.1], [0.4, 0.6]])
    targets = torch.stack([t, t2])[None]
    logits = torch.log(targets / (1 - targets))
    assert spatial_consistency_loss(logits, targets).item() == pytest.approx(0.0, abs=1e-10)
    # Predictions offset by a constant probability keep the same changes -> still 0.
    shifted = torch.log((targets - 0.05) / (1.05 - targets))
    assert spatial_consistency_loss(shifted, targets).item() == pytest.approx(0.0, abs=1e-10)
    # Constant predictions: the loss is the mean squared target change.
    expected = ((t2 - t) ** 2).mean().item()
    got = spatial_consistency_loss(torch.zeros_like(targets), targets).item()
    assert got == pytest.approx(expected)


# --------------------------------------------------------------------------- actions


def test_inflection_weights_hand_sequence() -> None:
    actions = torch.tensor([[1, 1, 2, 2, 2, 0], [3, 3, 3, 3, 3, 3]])
    w = inflection_weights(actions, inflection_coef=3.2)
    assert w.tolist()[0] == pytest.approx([3.2, 1, 3.2, 1, 1, 3.2])
    assert w.tolist()[1] == pytest.approx([3.2, 1, 1, 1, 1, 1])
    mask = torch.tensor([[True] * 4 + [False] * 2, [True] * 6])
    w = inflection_weights(actions, mask, inflection_coef=3.2)
    assert w.tolist()[0] == pytest.approx([3.2, 1, 3.2, 1, 0, 0])


def test_one_step_inflection_weight_follows_the_sequence_rule() -> None:
    """The collection's per-step weight (previous step's expert action, or None at the first
    step) equals `inflection_weights` of the whole episode at every step."""
    gen = torch.Generator().manual_seed(0)
    actions = torch.randint(0, 3, (5, 12), generator=gen)  # 3 actions: many repeats and changes
    expected = inflection_weights(actions, inflection_coef=2.5)
    for row, episode in enumerate(actions.tolist()):
        previous = [None, *episode[:-1]]
        online = [inflection_weight(p, a, 2.5) for p, a in zip(previous, episode, strict=True)]
        assert online == expected[row].tolist()
    assert inflection_weight(None, 1, 3.2) == 3.2
    assert inflection_weight(1, 1, 3.2) == 1.0 and inflection_weight(1, 2, 3.2) == 3.2


def test_stop_weight_multiplies_only_stop_steps() -> None:
    from habitat_fih.models.losses import MainLossConfig, action_sample_weight

    # STOP (0) is always an inflection after another action: 3.2 x 10
    assert action_sample_weight(1, 0, 3.2, 10.0) == pytest.approx(32.0)
    assert action_sample_weight(1, 1, 3.2, 10.0) == 1.0  # forward after forward
    assert action_sample_weight(1, 2, 3.2, 10.0) == pytest.approx(3.2)  # a turn: as VLN-CE
    assert action_sample_weight(None, 0, 3.2) == pytest.approx(3.2)  # default: VLN-CE's rule
    assert MainLossConfig().stop_weight == 1.0
    with pytest.raises(ValueError, match="MainLossConfig.stop_weight must be > 0, got 0"):
        MainLossConfig(stop_weight=0)


def test_action_loss_vlnce_normalisation() -> None:
    # ce of a step whose correct class has logit a and the 3 others 0: log(e^a + 3) - a.
    def ce(a: float) -> float:
        return math.log(math.exp(a) + 3.0) - a

    a_vals = [2.0, 0.5, -1.0]
    actions = torch.tensor([[0, 0, 1], [2, 2, 2]])
    logits = torch.zeros(2, 3, 4)
    for t, a in enumerate(a_vals):
        logits[0, t, actions[0, t]] = a
    logits[1] = torch.randn(3, 4)
    mask = torch.tensor([[True, True, True], [False, False, False]])
    w = [3.2, 1.0, 3.2]
    expected = sum(wi * ce(a) for wi, a in zip(w, a_vals, strict=True)) / sum(w)
    got = action_loss(logits, actions, mask, inflection_coef=3.2)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # Second episode valid and uniform (ce = ln 4 at every step): mean over the episodes.
    logits[1] = 0.0
    got = action_loss(logits, actions, torch.ones_like(mask), inflection_coef=3.2)
    assert got.item() == pytest.approx((expected + math.log(4)) / 2, rel=1e-6)


def test_action_loss_independent_steps_and_weights() -> None:
    logits = torch.zeros(3, 4)
    logits[0, 1] = 2.0
    actions = torch.tensor([1, 0, 3])
    ce0 = math.log(math.exp(2.0) + 3.0) - 2.0
    ce1 = math.log(math.exp(2.0) * 0 + 4.0)  # uniform rows -> ln 4
    plain = (ce0 + 2 * ce1) / 3
    assert action_loss(logits, actions).item() == pytest.approx(plain, rel=1e-6)
    weights = torch.tensor([3.2, 1.0, 1.0])
    weighted = (3.2 * ce0 + 2 * ce1) / 5.2
    assert action_loss(logits, actions, weights=weights).item() == pytest.approx(weighted, rel=1e-6)
    with pytest.raises(ValueError, match=r"in \[0, 4\)"):
        action_loss(logits, torch.tensor([1, 4, 0]))
    with pytest.raises(ValueError, match="logits must be"):
        action_loss(logits, torch.tensor([[1, 0, 3]]))


def test_action_loss_fully_masked_is_zero_with_grad() -> None:
    logits = torch.full((2, 3, 4), float("nan"), requires_grad=True)
    actions = torch.full((2, 3), -100)
    loss = action_loss(logits, actions, torch.zeros(2, 3, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize("name", sorted(MAP_LOSSES))
def test_masked_maps_contribute_nothing(name: str) -> None:
    fn = MAP_LOSSES[name]
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, generator=gen)
    targets = torch.rand(2, 3, 4, 4, generator=gen)
    valid = torch.tensor([[True, True, False], [True, True, False]])
    ref = fn(logits[:, :2], targets[:, :2], None)
    padded_logits = logits.clone()
    padded_logits[:, 2] = float("nan")
    padded_targets = targets.clone()
    padded_targets[:, 2] = float("nan")
    got = fn(padded_logits, padded_targets, valid)
    assert got.item() == pytest.approx(ref.item(), rel=1e-6)


@pytest.mark.parametrize("name", sorted(MAP_LOSSES))
def test_fully_masked_batch_is_zero_with_finite_grad(name: str) -> None:
    logits = torch.full((2, 3, 4, 4), float("nan"), requires_grad=True)
    targets = torch.full((2, 3, 4, 4), float("nan"))
    loss = MAP_LOSSES[name](logits, targets, torch.zeros(2, 3, dtype=torch.bool))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_alignment_fully_masked_is_zero_with_grad() -> None:
    feats = torch.randn(2, 4, 8, requires_grad=True)
    loss = feature_alignment_loss(feats, feats, torch.zeros(2, 4, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(feats.grad).all()


def test_map_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"\[B, K, h, w\]"):
        frame_indexed_mse_loss(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="targets must match"):
        frame_indexed_mse_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))
    with pytest.raises(ValueError, match=r"valid must be \[B=1, K=2\]"):
        distinctness_loss(torch.zeros(1, 2, 4, 4), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="activation"):
        smoothness_loss(torch.zeros(1, 2, 4, 4), activation="tanh")


# --------------------------------------------------------------------------- stages


def test_finetune_total_closed_form() -> None:
    logits = torch.zeros(1, 2, 8, 8, requires_grad=True)
    targets = {"heatmaps": torch.ones(1, 2, 8, 8)}
    total, terms = compute_stage_loss("finetune", {"heatmap_logits": logits}, targets)
    ln64 = math.log(64)
    a, b, c, d = 0.25, 1.0, 0.25, (0.28 * ln64) ** 2
    assert terms["heatmap_mse"].item() == pytest.approx(a)
    assert terms["distinctness"].item() == pytest.approx(b)
    assert terms["temporal"].item() == pytest.approx(c)
    assert terms["spatial_reasoning"].item() == pytest.approx(d)
    assert total.item() == pytest.approx(1.0 * a + 0.3 * b + 0.6 * c + 0.4 * d)
    assert terms["total"].item() == pytest.approx(total.item())
    assert "action" not in terms
    total.backward()
    assert torch.isfinite(logits.grad).all()
    # action logits without expert actions: the weight-0 action term is skipped, not an error
    preds = {"heatmap_logits": logits.detach(), "action_logits": torch.zeros(1, 4)}
    again, terms = compute_stage_loss("finetune", preds, targets)
    assert "action" not in terms and again.item() == pytest.approx(total.item())


def test_finetune_documents_entropy_target_option() -> None:
    cfg = LossConfig(finetune=FinetuneLossConfig(entropy_target=6.0))
    preds = {"heatmap_logits": torch.zeros(1, 2, 8, 8)}
    _, terms = compute_stage_loss("finetune", preds, {"heatmaps": torch.ones(1, 2, 8, 8)}, cfg)
    assert terms["spatial_reasoning"].item() == pytest.approx((math.log(64) - 6.0) ** 2)


def test_frame_indices_padding_is_masked_in_stage_loss() -> None:
    logits = torch.zeros(1, 3, 4, 4)
    logits[0, 2] = float("nan")
    preds = {"heatmap_logits": logits, "frame_indices": torch.tensor([[1, 5, -1]])}
    targets = {"heatmaps": torch.ones(1, 3, 4, 4), "valid": torch.tensor([[True, True, True]])}
    total, terms = compute_stage_loss(
        "main", preds, targets, LossConfig(main=MainLossConfig(action_weight=0.0))
    )
    assert torch.isfinite(total)
    assert terms["heatmap_mse"].item() == pytest.approx(0.25)


def test_pretrain_terms_and_missing_inputs() -> None:
    logits = torch.zeros(1, 1, 4, 4)
    heat = torch.ones(1, 1, 4, 4)
    feats = torch.eye(3)[None]
    preds = {"heatmap_logits": logits, "align_feats_a": feats, "align_feats_b": feats}
    cfg = LossConfig(pretrain=PretrainLossConfig(alignment_temperature=1.0))
    total, terms = compute_stage_loss("pretrain", preds, {"heatmaps": heat}, cfg)
    align = math.log(1.0 + 2.0 * math.exp(-1.0))  # 3 orthonormal pairs, temperature 1
    assert terms["heatmap_ce"].item() == pytest.approx(math.log(16))
    assert terms["smoothness"].item() == 0.0
    assert terms["alignment"].item() == pytest.approx(align, rel=1e-6)
    assert total.item() == pytest.approx(1.0 * math.log(16) + 0.5 * align, rel=1e-6)
    with pytest.raises(KeyError, match="align_feats_a"):
        compute_stage_loss("pretrain", {"heatmap_logits": logits}, {"heatmaps": heat})
    no_align = LossConfig(pretrain=PretrainLossConfig(alignment_weight=0.0))
    _, terms = compute_stage_loss(
        "pretrain", {"heatmap_logits": logits}, {"heatmaps": heat}, no_align
    )
    assert "alignment" not in terms


def test_main_stage_includes_actions() -> None:
    logits = torch.zeros(2, 2, 4, 4)
    preds = {"heatmap_logits": logits, "action_logits": torch.zeros(2, 4)}
    targets = {"heatmaps": torch.full((2, 2, 4, 4), 0.5), "actions": torch.tensor([1, 3])}
    total, terms = compute_stage_loss("main", preds, targets)
    assert terms["heatmap_mse"].item() == 0.0
    assert terms["spatial_consistency"].item() == 0.0
    assert terms["temporal_coherence"].item() == pytest.approx(0.25)
    assert terms["action"].item() == pytest.approx(math.log(4))
    assert total.item() == pytest.approx(0.6 * 0.25 + 1.0 * math.log(4))
    with pytest.raises(KeyError, match="action_logits"):
        compute_stage_loss("main", {"heatmap_logits": logits}, targets)


def test_sigmoid_distribution_ce_is_the_measures_kl_plus_target_entropy() -> None:
    """Against the frame_heatmap_quality measure's own numpy KL (an independent
    implementation): CE = KL(q || p) + H(q)."""
    from habitat_fih.tasks.heatmap_measures import heatmap_scores

    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(1, 2, 4, 4, generator=gen, dtype=torch.float64)
    targets = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    targets[0, 0, :, :2] = 1.0  # binary: H(q) = log 8
    targets[0, 1] = torch.rand(4, 4, generator=gen, dtype=torch.float64)
    got = sigmoid_distribution_ce_loss(logits, targets)
    expected = []
    for k in range(2):
        q = (targets[0, k] / targets[0, k].sum()).numpy()
        kl = heatmap_scores(targets[0, k].numpy(), torch.sigmoid(logits[0, k]).numpy())[0]
        entropy = -float((q[q > 0] * np.log(q[q > 0])).sum())
        expected.append(kl + entropy)
    assert expected[0] - heatmap_scores(targets[0, 0].numpy(), torch.sigmoid(logits[0, 0]).numpy())[
        0
    ] == pytest.approx(math.log(8))
    assert got.item() == pytest.approx(float(np.mean(expected)), rel=1e-6)
    main = compute_stage_loss(
        "main",
        {"heatmap_logits": logits.float()},
        {"heatmaps": targets.float()},
        LossConfig(main=MainLossConfig(action_weight=0.0, heatmap_distribution_weight=2.0)),
    )[1]
    assert main["heatmap_distribution"].item() == pytest.approx(got.item(), rel=1e-5)


def test_bad_stage_and_config_values() -> None:
    with pytest.raises(ValueError, match="stage must be one of"):
        compute_stage_loss("warmup", {"heatmap_logits": torch.zeros(1, 1, 2, 2)}, {})
    with pytest.raises(ValueError, match="distinctness_weight .* got -1"):
        FinetuneLossConfig(distinctness_weight=-1)
    with pytest.raises(ValueError, match="entropy_target_fraction"):
        FinetuneLossConfig(entropy_target_fraction=0.0)
    with pytest.raises(ValueError, match="alignment_temperature"):
        PretrainLossConfig(alignment_temperature=0.0)
    with pytest.raises(ValueError, match="inflection_coef"):
        MainLossConfig(inflection_coef=0.5)


def test_one_step_on_a_tiny_head_lowers_the_finetune_loss() -> None:
    torch.manual_seed(0)
    cfg = HeatmapHeadConfig(
        input_dim=16,
        hidden_dim=16,
        num_heads=2,
        fuse_channels=8,
        decoder_channels=(8,),
        out_size=(8, 8),
    )
    head = FrameIndexedHeatmapHead(cfg)
    key = torch.randn(2, 3, 4, 16)
    cur = torch.randn(2, 4, 16)
    idx = torch.tensor([[0, 3, 6], [1, 2, -1]])
    yy, xx = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    centres = [(1, 2), (4, 5), (6, 1)]
    maps = torch.stack([torch.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 4.0) for y, x in centres])
    targets = {"heatmaps": maps[None].expand(2, -1, -1, -1).clone()}
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        out = head(key, cur, (2, 2), idx)
        preds = {"heatmap_logits": out.logits, "frame_indices": out.frame_indices}
        return compute_stage_loss("finetune", preds, targets)[0]

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss()
    assert after.item() < before.item()


@pytest.mark.parametrize("stage", ["pretrain", "finetune", "main"])
def test_camera_position_kind_adds_its_weighted_terms(stage: str) -> None:
    """With camera-position logits / targets too, every map term is computed for each kind on
    its own maps and validity; the kind's terms carry the suffix and weigh
    `<stage>.camera_position_weight` times the term's weight; the covisibility terms, the
    action term and (without the second kind) the total are those of the single-kind loss."""
    gen = torch.Generator().manual_seed(5)
    b, k = 2, 3
    cov = torch.randn(b, k, 6, 6, generator=gen)
    cam = torch.randn(b, k, 6, 6, generator=gen)
    cov_t = torch.rand(b, k, 6, 6, generator=gen)
    cam_t = torch.rand(b, k, 6, 6, generator=gen)
    cov_v = torch.tensor([[True, True, False], [True, True, True]])
    cam_v = torch.tensor([[False, True, True], [True, False, True]])
    act = {"action_logits": torch.randn(b, 4, generator=gen)}
    act_t = {"actions": torch.tensor([1, 2])} if stage != "pretrain" else {}
    cfg = LossConfig(
        pretrain=PretrainLossConfig(alignment_weight=0.0, camera_position_weight=0.5),
        finetune=FinetuneLossConfig(action_weight=1.0, camera_position_weight=0.5),
        main=MainLossConfig(camera_position_weight=0.5),
    )
    no_action = LossConfig(  # for the map-only losses below (an action weight needs logits)
        pretrain=cfg.pretrain,
        finetune=FinetuneLossConfig(action_weight=0.0, camera_position_weight=0.5),
        main=MainLossConfig(action_weight=0.0, camera_position_weight=0.5),
    )
    preds_1 = {"heatmap_logits": cov, **(act if stage != "pretrain" else {})}
    targets_1 = {"heatmaps": cov_t, "valid": cov_v, **act_t}
    single_total, single = compute_stage_loss(stage, preds_1, targets_1, cfg)
    # the camera kind alone, through the covisibility keys: its closed-form terms
    cam_total, cam_terms = compute_stage_loss(
        stage, {"heatmap_logits": cam}, {"heatmaps": cam_t, "valid": cam_v}, no_action
    )
    preds = {**preds_1, "heatmap_logits_camera_position": cam}
    targets = {**targets_1, "heatmaps_camera_position": cam_t, "valid_camera_position": cam_v}
    total, terms = compute_stage_loss(stage, preds, targets, cfg)
    map_names = [n for n in cam_terms if n != "total"]
    assert "action" not in map_names and len(map_names) >= 2
    for name in map_names:
        assert torch.equal(terms[name], single[name])
        assert torch.allclose(terms[f"{name}_camera_position"], cam_terms[name])
    assert set(terms) == set(single) | {f"{n}_camera_position" for n in map_names}
    assert torch.allclose(total, single_total + 0.5 * cam_total, atol=1e-6)
    # camera positions only (a model trained on them alone)
    only_total, only = compute_stage_loss(
        stage,
        {"heatmap_logits_camera_position": cam},
        {"heatmaps_camera_position": cam_t, "valid_camera_position": cam_v},
        no_action,
    )
    assert set(only) == {f"{n}_camera_position" for n in map_names} | {"total"}
    assert torch.allclose(only_total, 0.5 * cam_total, atol=1e-6)
    with pytest.raises(KeyError, match="heatmaps_camera_position"):
        compute_stage_loss(stage, preds, targets_1, cfg)
    with pytest.raises(ValueError, match="camera_position_weight"):
        MainLossConfig(camera_position_weight=-1.0)
