"""Tests for habitat_fih.models.heads.action: VLN-CE action logits."""

from __future__ import annotations

import pytest
import torch

from habitat_fih.models.heads import ACTION_NAMES, ActionHead


def test_shape_and_gradients() -> None:
    torch.manual_seed(0)
    head = ActionHead(hidden_size=32)
    hidden = torch.randn(5, 32, requires_grad=True)
    logits = head(hidden)
    assert logits.shape == (5, 4)
    logits.logsumexp(-1).sum().backward()
    assert hidden.grad is not None and all(p.grad is not None for p in head.parameters())


def test_action_order_matches_vlnce() -> None:
    assert ACTION_NAMES == ("STOP", "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT")


def test_custom_sizes() -> None:
    head = ActionHead(16, num_actions=6, mlp_dim=7, dropout=0.1)
    assert head(torch.randn(2, 16)).shape == (2, 6)


def test_bad_input_shape_raises() -> None:
    head = ActionHead(32)
    with pytest.raises(ValueError, match=r"\[B, D=32\], got shape \(2, 3, 32\)"):
        head(torch.randn(2, 3, 32))
    with pytest.raises(ValueError, match=r"got shape \(2, 31\)"):
        head(torch.randn(2, 31))


@pytest.mark.parametrize(
    "args,kwargs,match",
    [
        ((0,), {}, "hidden_size must be an int >= 1, got 0"),
        ((8, 1), {}, "num_actions must be an int >= 2, got 1"),
        ((8,), {"mlp_dim": 0}, "mlp_dim must be an int >= 1, got 0"),
        ((8,), {"dropout": 1.5}, "dropout must be in"),
    ],
)
def test_bad_config_raises(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ActionHead(*args, **kwargs)
