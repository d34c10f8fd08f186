"""Blocks: 2D RoPE relative-position property, checkpoint-style parameter names, LayerScale."""

from __future__ import annotations

import pytest
import torch

from habitat_fih.models.vggt.layers import Attention, Block, RotaryEmbedding2D


def _score(
    rope: RotaryEmbedding2D,
    q: torch.Tensor,
    k: torch.Tensor,
    pq: tuple[int, int],
    pk: tuple[int, int],
) -> torch.Tensor:
    """Per-head dot product between q placed at pq and k placed at pk."""
    pos = torch.tensor([[pq, pk]])  # [1, 2, 2]
    x = torch.stack([q, k], dim=2)  # [1, heads, 2, d]
    r = rope(x, pos)
    return (r[:, :, 0] * r[:, :, 1]).sum(-1)  # [1, heads]


def test_rope_scores_depend_only_on_relative_position() -> None:
    torch.manual_seed(0)
    rope = RotaryEmbedding2D(100.0)
    q, k = torch.randn(1, 3, 16, dtype=torch.float64), torch.randn(1, 3, 16, dtype=torch.float64)
    base = _score(rope, q, k, (2, 5), (4, 1))
    for dy, dx in [(1, 0), (0, 3), (7, 2), (10, 10)]:
        shifted = _score(rope, q, k, (2 + dy, 5 + dx), (4 + dy, 1 + dx))
        torch.testing.assert_close(shifted, base)
    # A different relative offset in either axis changes the score.
    assert not torch.allclose(_score(rope, q, k, (3, 5), (4, 1)), base)
    assert not torch.allclose(_score(rope, q, k, (2, 6), (4, 1)), base)


def test_rope_is_a_rotation_and_identity_at_origin() -> None:
    torch.manual_seed(1)
    rope = RotaryEmbedding2D(100.0)
    x = torch.randn(2, 2, 5, 8)
    pos = torch.randint(0, 9, (2, 5, 2))
    torch.testing.assert_close(rope(x, pos).norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rope(x, torch.zeros_like(pos)), x)
    with pytest.raises(ValueError, match="positions"):
        rope(x, pos[:, :3])


def test_rope_row_and_column_use_separate_halves() -> None:
    rope = RotaryEmbedding2D(100.0)
    x = torch.randn(1, 1, 1, 8)
    moved_y = rope(x, torch.tensor([[[3, 0]]]))
    moved_x = rope(x, torch.tensor([[[0, 3]]]))
    torch.testing.assert_close(moved_y[..., 4:], x[..., 4:])  # y leaves the x half alone
    torch.testing.assert_close(moved_x[..., :4], x[..., :4])


def test_block_parameter_names_and_layerscale_init() -> None:
    block = Block(
        32, 2, mlp_ratio=4.0, qk_norm=True, layerscale_init=0.01, rope=RotaryEmbedding2D()
    )
    shapes = {k: tuple(v.shape) for k, v in block.state_dict().items()}
    assert shapes["attn.qkv.weight"] == (96, 32)
    assert shapes["attn.q_norm.weight"] == (16,) and shapes["attn.k_norm.bias"] == (16,)
    assert shapes["mlp.fc1.weight"] == (128, 32) and shapes["mlp.fc2.weight"] == (32, 128)
    assert torch.all(block.ls1.gamma == 0.01) and torch.all(block.ls2.gamma == 0.01)
    plain = Attention(32, 2)
    assert "q_norm.weight" not in plain.state_dict()
    x = torch.randn(2, 6, 32)
    pos = torch.randint(0, 4, (2, 6, 2))
    assert block(x, pos=pos).shape == x.shape
