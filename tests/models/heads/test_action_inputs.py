"""The action head's extra inputs (depth, previous action; `ActionHeadConfig.inputs`):
encoding against closed forms, errors, and that a head fed them learns what only they carry."""

from __future__ import annotations

import pytest
import torch

from habitat_fih.models.config import ActionHeadConfig
from habitat_fih.models.heads import ACTION_INPUTS, ActionHead, ActionInputEncoder


def test_depth_is_scaled_by_max_depth_and_saturates() -> None:
    torch.manual_seed(0)
    enc = ActionInputEncoder(("depth",), 4, max_depth=10.0).eval()
    one = torch.ones(1, 16, 16)
    # 5 m reads as 0.5: the same as feeding the CNN 0.5 directly
    direct = enc.depth(torch.full((1, 1, 16, 16), 0.5))
    assert torch.allclose(enc(5.0 * one, None, 1), direct)
    # beyond max_depth, inf and NaN all read as saturated (1.0)
    sat = enc(10.0 * one, None, 1)
    for value in (25.0, float("inf"), float("nan")):
        assert torch.equal(enc(value * one, None, 1), sat)
    assert not torch.allclose(sat, enc(2.0 * one, None, 1))


def test_previous_action_none_has_its_own_row() -> None:
    torch.manual_seed(0)
    enc = ActionInputEncoder(("previous_action",), 4)
    out = enc(None, torch.tensor([-1, 0, 3]), 3)
    weight = enc.previous.weight
    assert torch.equal(out[0], weight[4]) and torch.equal(out[1], weight[0])
    assert torch.equal(out[2], weight[3])


def test_features_concatenate_in_input_order() -> None:
    enc = ActionInputEncoder(ACTION_INPUTS, 4)
    out = enc(torch.rand(2, 8, 8), torch.tensor([1, 2]), 2)
    assert out.shape == (2, enc.out_dim) and enc.out_dim == 64 + 32
    assert torch.equal(out[:, 64:], enc.previous(torch.tensor([1, 2])))


@pytest.mark.parametrize(
    "depth,prev,match",
    [
        (None, torch.tensor([0, 1]), r"input 'depth' .* needs depth \[B=2, H, W\] .*got None"),
        (torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), r"got \(2, 1, 8, 8\)"),
        (torch.rand(2, 8, 8), None, r"'previous_action' .* needs previous_action \[B=2\]"),
        (torch.rand(2, 8, 8), torch.tensor([0, 4]), r"values must be in \[-1, 3\].*\[0, 4\]"),
        (torch.rand(2, 8, 8), torch.tensor([-2, 0]), r"\[-2, 0\]"),
    ],
)
def test_bad_inputs_raise(depth, prev, match: str) -> None:
    head = ActionHead(8, inputs=ACTION_INPUTS)
    with pytest.raises(ValueError, match=match):
        head(torch.randn(2, 8), depth=depth, previous_action=prev)


@pytest.mark.parametrize(
    "inputs,match",
    [
        (("previous_action", "depth"), "in that order"),
        (("depth", "depth"), "in that order"),
        (("rgb",), "subset of"),
    ],
)
def test_bad_config_raises(inputs: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ActionHeadConfig(inputs=inputs)
    with pytest.raises(ValueError, match="max_depth must be a number > 0"):
        ActionHeadConfig(max_depth=0)


def test_head_without_inputs_keeps_its_parameters() -> None:
    """A checkpoint written before the inputs existed loads into the default head."""
    assert sorted(ActionHead(8).state_dict()) == [
        f"mlp.{i}.{p}" for i in (0, 1, 4) for p in ("bias", "weight")
    ]


def _fit(head: ActionHead, hidden, depth, prev, labels, steps: int = 150) -> float:
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(
            head(hidden, depth=depth, previous_action=prev), labels
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = head(hidden, depth=depth, previous_action=prev).argmax(-1)
    return float((pred == labels).float().mean())


def test_head_learns_what_only_the_inputs_carry() -> None:
    """Labels that the hidden state (noise) cannot predict: 'turn when a wall is closer than
    1 m ahead, else forward' from depth, and 'repeat the previous action' from the embedding.
    With the inputs the head fits them; without them it cannot beat the majority rate."""
    torch.manual_seed(0)
    n = 64
    hidden = torch.randn(n, 8)
    near = torch.rand(n) < 0.5
    depth = torch.where(near[:, None, None], 0.5, 4.0) * torch.ones(n, 16, 16)
    wall_labels = torch.where(near, 2, 1)
    prev = torch.randint(0, 4, (n,))
    assert _fit(ActionHead(8, inputs=("depth",)), hidden, depth, None, wall_labels) == 1.0
    assert _fit(ActionHead(8, inputs=("previous_action",)), hidden, None, prev, prev) == 1.0
    # held out: new noise, so the hidden-only head's fit does not transfer
    torch.manual_seed(1)
    test_hidden = torch.randn(n, 8)
    plain = ActionHead(8)
    _fit(plain, hidden, None, None, wall_labels)
    with torch.no_grad():
        held_out = float((plain(test_hidden).argmax(-1) == wall_labels).float().mean())
    assert held_out < 0.75
