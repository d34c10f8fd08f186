"""Aggregator: token layout, first-frame slot 0 vs slot 1, frame-order equivariance, checkpointing."""

from __future__ import annotations

import torch

from habitat_fih.models.vggt import VGGT
from habitat_fih.models.vggt.aggregator import patch_positions


def _aggregate(model: VGGT, frames: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        tokens, _ = model.aggregator(frames[None])  # [1, S, 3, H, W]
    return tokens


def _frames(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 8, 12, generator=g)  # non-square, 2 x 3 patches


def test_token_layout_and_positions(tiny_model: VGGT) -> None:
    tokens = _aggregate(tiny_model, _frames(2))
    cfg = tiny_model.config
    assert len(tokens) == cfg.depth
    assert tokens[0].shape == (1, 2, cfg.patch_start_idx + 6, 2 * cfg.embed_dim)
    pos = patch_positions(2, 3, 3, torch.device("cpu"))
    expected = [[0, 0]] * 3 + [[1, 1], [1, 2], [1, 3], [2, 1], [2, 2], [2, 3]]
    assert pos.tolist() == expected


def test_single_frame_uses_slot_zero_only(tiny_model: VGGT) -> None:
    frames = _frames(1)
    ref = _aggregate(tiny_model, frames)
    agg = tiny_model.aggregator
    with torch.no_grad():
        agg.camera_token[:, 1] += 1.0
        agg.register_token[:, 1] += 1.0
    for a, b in zip(_aggregate(tiny_model, frames), ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with torch.no_grad():
        agg.camera_token[:, 0] += 1.0
    assert not torch.allclose(_aggregate(tiny_model, frames)[-1], ref[-1])


def test_frame_attention_sees_only_own_frame_and_slot(tiny_model: VGGT) -> None:
    """Layer 0's frame-attention half depends only on the frame's image and its slot."""
    c = tiny_model.config.embed_dim
    a, b, d = _frames(3).unbind(0)
    first_half = lambda frames: _aggregate(tiny_model, torch.stack(frames))[0][0, :, :, :c]  # noqa: E731
    ab, a_alone, db, ba = (
        first_half([a, b]),
        first_half([a]),
        first_half([d, b]),
        first_half([b, a]),
    )
    torch.testing.assert_close(ab[0], a_alone[0])  # a in slot 0 either way
    torch.testing.assert_close(ab[1], db[1])  # b in slot 1, whoever comes first
    assert not torch.allclose(ab[1], ba[0], atol=1e-6)  # b in slot 1 vs slot 0


def test_frame_order_equivariance_hinges_on_the_two_slots(tiny_model: VGGT) -> None:
    frames = _frames(3, seed=4)
    order = torch.tensor([1, 2, 0])  # a permutation that keeps no frame first
    agg = tiny_model.aggregator
    # Different slots: the first frame is special, so permuting frames is not equivariant.
    out, out_perm = _aggregate(tiny_model, frames), _aggregate(tiny_model, frames[order])
    assert not torch.allclose(out[-1][:, order], out_perm[-1], atol=1e-5)
    # Identical slots: nothing distinguishes frames, so outputs permute with the inputs.
    with torch.no_grad():
        agg.camera_token[:, 1] = agg.camera_token[:, 0]
        agg.register_token[:, 1] = agg.register_token[:, 0]
    out, out_perm = _aggregate(tiny_model, frames), _aggregate(tiny_model, frames[order])
    for x, y in zip(out, out_perm, strict=True):
        torch.testing.assert_close(x[:, order], y, rtol=1e-5, atol=1e-5)


def test_gradient_checkpointing_matches_plain_backward(tiny_model: VGGT) -> None:
    frames = _frames(2)[None]
    grads = []
    for flag in (False, True):
        tiny_model.zero_grad()
        tiny_model.train()
        tiny_model.set_gradient_checkpointing(flag)
        tokens, _ = tiny_model.aggregator(frames)
        tokens[-1].square().mean().backward()
        grads.append(tiny_model.aggregator.frame_blocks[0].attn.qkv.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])
