"""The progress monitor: the action head's predicted remaining distance to the goal
(`ActionHead.forward_all`) and its loss (`goal_distance_loss`, the ``goal_distance`` term)."""

from __future__ import annotations

import math

import pytest
import torch

from habitat_fih.models.heads.action import ActionHead
from habitat_fih.models.losses import (
    LossConfig,
    MainLossConfig,
    compute_stage_loss,
    goal_distance_loss,
)


def test_distance_is_scale_times_softplus_of_its_linear() -> None:
    head = ActionHead(8, 4, mlp_dim=6, goal_distance=True, distance_scale=10.0)
    assert head.predicts_distance
    with torch.no_grad():
        head.distance.weight.zero_()
        head.distance.bias.fill_(1.0)
    logits, metres = head.forward_all(torch.randn(3, 8))
    assert logits.shape == (3, 4) and metres.shape == (3,)
    # softplus(1) = ln(1 + e); the logits are the plain head's
    assert torch.allclose(metres, torch.full((3,), 10.0 * math.log1p(math.e)))
    assert torch.equal(head(torch.ones(2, 8)), head.forward_all(torch.ones(2, 8))[0])


def test_without_the_option_no_distance_and_the_old_state_dict_keys() -> None:
    head = ActionHead(8, 4, mlp_dim=6)
    assert head.forward_all(torch.randn(2, 8))[1] is None and not head.predicts_distance
    assert sorted(head.state_dict()) == [
        "mlp.0.bias",
        "mlp.0.weight",
        "mlp.1.bias",
        "mlp.1.weight",
        "mlp.4.bias",
        "mlp.4.weight",
    ]
    with pytest.raises(ValueError, match="distance_scale must be > 0, got 0"):
        ActionHead(8, 4, goal_distance=True, distance_scale=0)


def test_goal_distance_loss_closed_form() -> None:
    """Huber on metres / 10 with the knee at 0.1 (1 m): an error of 0.5 m gives
    0.5 * 0.05**2 / 0.1; one of 10 m gives 1 - 0.05; unknown (NaN) targets are masked."""
    pred = torch.tensor([1.0, 3.0, 12.0])
    target = torch.tensor([1.5, math.nan, 2.0])
    expected = (0.5 * 0.05**2 / 0.1 + (1.0 - 0.05)) / 2
    assert goal_distance_loss(pred, target).item() == pytest.approx(expected)
    none_known = goal_distance_loss(pred.requires_grad_(), torch.full((3,), math.nan))
    assert none_known.item() == 0.0 and none_known.requires_grad
    with pytest.raises(ValueError, match=r"both \[B\], got \(3,\) and \(2,\)"):
        goal_distance_loss(pred, target[:2])


def _preds_targets(with_target: bool) -> tuple[dict, dict]:
    preds = {
        "heatmap_logits": torch.zeros(1, 1, 2, 2),
        "action_logits": torch.zeros(1, 4),
        "goal_distance": torch.tensor([4.0]),
    }
    targets = {"heatmaps": torch.zeros(1, 1, 2, 2), "actions": torch.tensor([1])}
    if with_target:
        targets["goal_distance"] = torch.tensor([2.0])
    return preds, targets


def test_stage_loss_weights_the_goal_distance_term() -> None:
    preds, targets = _preds_targets(True)
    base = LossConfig()
    _, terms = compute_stage_loss("main", preds, targets, base)
    # 2 m off: |0.2| > 0.1, so 0.2 - 0.05
    assert terms["goal_distance"].item() == pytest.approx(0.15)
    heavy = LossConfig(main=MainLossConfig(goal_distance_weight=3.0))
    total_1, _ = compute_stage_loss("main", preds, targets, base)
    total_3, _ = compute_stage_loss("main", preds, targets, heavy)
    assert (total_3 - total_1).item() == pytest.approx(2 * 0.15)
    preds, targets = _preds_targets(False)
    with pytest.raises(KeyError, match=r"targets\['goal_distance'\] is needed by the "):
        compute_stage_loss("main", preds, targets, base)


def test_head_learns_a_distance_only_its_input_carries() -> None:
    """The distance is 5 + 1.5 * (the first feature after the head's LayerNorm) metres; 300
    Adam steps bring the mean error under 0.2 m (the best constant guess errs by ~1.2 m)."""
    torch.manual_seed(0)

    def metres(x: torch.Tensor) -> torch.Tensor:
        return 5 + 1.5 * torch.nn.functional.layer_norm(x, (8,))[:, 0]

    head = ActionHead(8, 4, mlp_dim=32, goal_distance=True)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(300):
        x = torch.randn(64, 8)
        loss = goal_distance_loss(head.forward_all(x)[1], metres(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.randn(256, 8)
    target = metres(x)
    assert (target - target.median()).abs().mean().item() > 1.0
    assert (head.forward_all(x)[1] - target).abs().mean().item() < 0.2
