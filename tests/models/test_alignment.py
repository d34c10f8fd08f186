"""Pretraining's cross-frame feature alignment: the InfoNCE's closed forms, the gathering of the
fused tokens at the chosen keyframes' pairs, the policy's inputs and errors, and a few dozen
updates of the tiny model on a fixed batch that lower the term."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from habitat_fih.models.alignment import alignment_features
from habitat_fih.models.losses import (
    LossConfig,
    PretrainLossConfig,
    feature_alignment_loss,
)

# --------------------------------------------------------------------------- the InfoNCE


def _simplex(m: int) -> torch.Tensor:
    """M unit vectors with cosine -1 / (M - 1) between any two (a regular simplex), [M, M]."""
    x = torch.eye(m) - 1.0 / m
    return x / x.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("temperature", [0.2, 0.5, 1.0])  # (float32 resolves these minima)
def test_aligned_pairs_give_the_closed_form_minimum(temperature: float) -> None:
    """With M pairs and a = b: a regular simplex gives the minimum over unit features,
    log(1 + (M - 1) exp(-M / ((M - 1) T))); orthonormal features log(1 + (M - 1) exp(-1 / T));
    any other features (random, or the pairs shuffled) more."""
    m = 6
    simplex = _simplex(m)[None]  # [1, M, M]
    minimum = math.log1p((m - 1) * math.exp(-m / ((m - 1) * temperature)))
    got = feature_alignment_loss(simplex, simplex.clone(), temperature=temperature)
    assert got.item() == pytest.approx(minimum, rel=1e-5)
    ortho = torch.eye(m)[None]
    ortho_value = math.log1p((m - 1) * math.exp(-1.0 / temperature))
    got_ortho = feature_alignment_loss(ortho, ortho.clone(), temperature=temperature)
    assert got_ortho.item() == pytest.approx(ortho_value, rel=1e-5)
    assert ortho_value > minimum
    # shuffled: every positive is an orthogonal pair, one negative is the true match
    perm = torch.roll(torch.arange(m), 1)
    shuffled = math.log(math.exp(1.0 / temperature) + m - 1)
    got_shuffled = feature_alignment_loss(ortho, ortho[:, perm], temperature=temperature)
    assert got_shuffled.item() == pytest.approx(shuffled, rel=1e-5)
    assert shuffled > ortho_value
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        a = torch.randn(1, m, m, generator=gen)
        b = a + 0.3 * torch.randn(1, m, m, generator=gen)
        assert feature_alignment_loss(a, b, temperature=temperature).item() > minimum


# --------------------------------------------------------------------------- gathering


def test_features_are_gathered_at_the_chosen_keyframes_pairs() -> None:
    """Token value = 1000 b + 100 slot + cell: each row gets its keyframe slot's cells and the
    current view's (slot K); padding keyframe slots and padding pairs are masked."""
    b, k, t, s, n = 2, 3, 5, 4, 2
    value = (
        1000 * torch.arange(b)[:, None, None] + 100 * torch.arange(k + 1)[None, :, None]
    ) + torch.arange(t)[None, None, :]
    tokens = value[..., None].float().expand(b, k + 1, t, 2)  # [B, K+1, T, 2]
    slots = torch.tensor([[2, 0, -1], [1, 3, 0]])  # positions in the S axis
    pairs = torch.zeros(b, s, n, 2, dtype=torch.long)
    mask = torch.zeros(b, s, n, dtype=torch.bool)
    pairs[0, 2] = torch.tensor([[4, 1], [0, 3]])
    mask[0, 2] = True
    pairs[0, 0, 0] = torch.tensor([2, 2])
    mask[0, 0, 0] = True
    pairs[1, 3, 1] = torch.tensor([1, 4])
    mask[1, 3, 1] = True
    pairs[1, 1, 0] = torch.tensor([99, 99])  # padding pair: never read
    feats_a, feats_b, row_mask = alignment_features(tokens, slots, pairs, mask)
    assert feats_a.shape == (b * k, n, 2) and row_mask.shape == (b * k, n)
    expected_mask = torch.tensor(
        [[True, True], [True, False], [False, False], [False, False], [False, True], [False, False]]
    )
    assert torch.equal(row_mask, expected_mask)
    a, c = feats_a[..., 0], feats_b[..., 0]
    # sample 0, keyframe slot 0 is S-slot 2: its pairs (4 -> 1), (0 -> 3)
    assert a[0].tolist() == [1, 3] and c[0].tolist() == [304, 300]
    assert a[1, 0].item() == 102 and c[1, 0].item() == 302  # slot 1 = S-slot 0
    # sample 1, keyframe slot 1 is S-slot 3: pair 1 (1 -> 4)
    assert a[4, 1].item() == 1104 and c[4, 1].item() == 1301
    with pytest.raises(ValueError, match="outside"):
        bad = pairs.clone()
        bad[0, 2, 0, 0] = t
        alignment_features(tokens, slots, bad, mask)


# --------------------------------------------------------------------------- the tiny model

TEXTURE = np.random.default_rng(3).integers(0, 256, (32, 48, 3), dtype=np.uint8)


def _tiny_policy(losses: LossConfig | None = None):
    from habitat_fih.models.config import FIHModelConfig
    from habitat_fih.models.factory import build_model
    from habitat_fih.models.policy import FIHPolicy, FIHPolicyConfig
    from habitat_fih.models.spec import tokenizer_for

    torch.manual_seed(0)
    cfg = FIHModelConfig.tiny()
    model = build_model(cfg, tokenizer=tokenizer_for(cfg))
    model.set_stage("pretrain")
    return FIHPolicy(model, None, FIHPolicyConfig(losses=losses or LossConfig()))


def _shifted_batch(with_pairs: bool = True, grid: tuple[int, int] = (4, 4)) -> dict:
    """Two samples (keyframe, current view) of a texture; the current view is the keyframe moved
    8 px (one token cell of the tiny model's 4 x 4 grid on 32 px frames) to the right, so
    current cell (r, c) sees keyframe cell (r, c + 1), with inverted colours: a photometric
    change the random-init encoders are not invariant to (the matched features start out
    anti-aligned), so the alignment term starts far above chance."""
    from habitat_fih.trainers.buffer import Sample, collate

    pairs = np.array(
        [[r * 4 + c, r * 4 + c + 1] for r in range(4) for c in range(3)], dtype=np.int32
    )
    samples = []
    for i, (x0, x1) in enumerate([(0, 8), (8, 16)]):
        frames = np.stack([TEXTURE[:, x0 : x0 + 32], 255 - TEXTURE[:, x1 : x1 + 32]])
        targets = np.zeros((2, 16, 16), np.float16)
        targets[0, :, :12] = 1.0
        sample = Sample(
            frames=frames,
            indices=np.array([0, 4 + i], np.int64),
            targets=targets,
            valid=np.array([True, False]),
            instruction="walk past the wall",
            expert_action=1,
        )
        if with_pairs:
            sample.align_pairs = np.zeros((2, 12, 2), np.int32)
            sample.align_pairs[0] = pairs
            sample.align_mask = np.zeros((2, 12), bool)
            sample.align_mask[0] = True
            sample.align_grid = grid
        samples.append(sample)
    return collate(samples)


def test_policy_adds_the_alignment_inputs_and_names_the_setting_when_pairs_are_missing() -> None:
    policy = _tiny_policy()
    obs = _shifted_batch()
    assert policy.model.token_grid == (4, 4)
    output, total, terms = policy.evaluate_loss(obs, "pretrain")
    assert output.token_grid == (4, 4)
    assert torch.isfinite(terms["alignment"]) and terms["alignment"].item() > 0
    preds, targets = policy.loss_inputs(obs, output, "pretrain")
    assert preds["align_feats_a"].shape == (2 * 4, 12, 32)  # B * K rows, N pairs, D = 32
    assert int(targets["align_mask"].sum()) == 24  # 12 pairs of the one real keyframe each
    # other stages ignore the pairs
    preds, targets = policy.loss_inputs(obs, output, "main")
    assert "align_feats_a" not in preds and "align_mask" not in targets
    with pytest.raises(ValueError, match=r"alignment_weight is 0\.5.*losses\.pretrain"):
        policy.evaluate_loss(_shifted_batch(with_pairs=False), "pretrain")
    with pytest.raises(ValueError, match="8x8 token grid but the model's is 4x4"):
        policy.evaluate_loss(_shifted_batch(grid=(8, 8)), "pretrain")
    off = _tiny_policy(LossConfig(pretrain=PretrainLossConfig(alignment_weight=0.0)))
    _, _, terms = off.evaluate_loss(_shifted_batch(with_pairs=False), "pretrain")
    assert "alignment" not in terms


def test_updates_on_a_fixed_batch_lower_the_alignment_term() -> None:
    """Pretraining's trainable parts (fusion, heatmap head) with the default pretrain weights:
    30 Adam updates on one fixed batch take the alignment term from above chance (log 12, the
    12 pairs of a row told apart at random) to a small fraction of its start: the fused tokens
    learn to give a surface the same feature in both views."""
    policy = _tiny_policy()
    policy.train()
    obs = _shifted_batch()
    params = [p for p in policy.parameters() if p.requires_grad]
    optim = torch.optim.Adam(params, lr=3e-3)
    values = []
    for _ in range(30):
        _, total, terms = policy.evaluate_loss(obs, "pretrain")
        optim.zero_grad()
        total.backward()
        optim.step()
        values.append(terms["alignment"].item())
    assert all(math.isfinite(v) for v in values)
    assert values[0] > math.log(12) and values[-1] < 0.1 * values[0], values
