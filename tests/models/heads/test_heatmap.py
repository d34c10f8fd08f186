"""Tests for habitat_fih.models.heads.heatmap: the frame-indexed, cross-frame heatmap head."""

from __future__ import annotations

import pytest
import torch

from habitat_fih.models.heads import FrameIndexedHeatmapHead, HeatmapHeadConfig, HeatmapOutput

D = 32


def tiny_head(**overrides) -> FrameIndexedHeatmapHead:
    cfg = dict(
        input_dim=D,
        hidden_dim=16,
        num_heads=2,
        fuse_channels=16,
        decoder_channels=(8, 8),
        out_size=(16, 16),
    )
    cfg.update(overrides)
    torch.manual_seed(0)
    return FrameIndexedHeatmapHead(HeatmapHeadConfig(**cfg)).eval()


def inputs(b: int = 2, k: int = 3, tk: int = 5, grid: tuple[int, int] = (3, 4)):
    gen = torch.Generator().manual_seed(1)
    key = torch.randn(b, k, tk, D, generator=gen)
    cur = torch.randn(b, grid[0] * grid[1], D, generator=gen)
    idx = torch.tensor([[0, 4, 7], [2, 5, -1]])[:b, :k]
    return key, cur, grid, idx


def test_shapes_and_frame_dicts() -> None:
    head = tiny_head()
    key, cur, grid, idx = inputs()
    out = head(key, cur, grid, idx)
    assert isinstance(out, HeatmapOutput)
    assert out.logits.shape == (2, 3, 16, 16)
    assert torch.isfinite(out.logits).all()
    assert out.valid.tolist() == [[True, True, True], [True, True, False]]
    dicts = out.to_frame_dicts()
    assert [sorted(d) for d in dicts] == [[0, 4, 7], [2, 5]]
    assert torch.equal(dicts[0][4], out.logits[0, 1])
    assert all(m.shape == (16, 16) for d in dicts for m in d.values())
    probs = out.to_frame_dicts("softmax")
    assert torch.allclose(probs[1][5].sum(), torch.tensor(1.0))
    sig = out.to_frame_dicts("sigmoid")
    assert torch.allclose(sig[0][7], torch.sigmoid(out.logits[0, 2]))
    assert [sorted(d) for d in head.as_frame_dicts(out)] == [[0, 4, 7], [2, 5]]
    with pytest.raises(ValueError, match="activation"):
        out.to_frame_dicts("relu")


@pytest.mark.parametrize(
    "grid,out_size",
    [((3, 4), (16, 16)), ((2, 2), (64, 48)), ((20, 18), (16, 16)), ((1, 1), (5, 7))],
)
def test_any_grid_to_any_out_size(grid: tuple[int, int], out_size: tuple[int, int]) -> None:
    head = tiny_head(out_size=out_size)
    key, cur, _, idx = inputs(grid=grid)
    assert head(key, cur, grid, idx).logits.shape == (2, 3, *out_size)


def test_changing_one_keyframe_changes_only_its_map() -> None:
    head = tiny_head()
    key, cur, grid, idx = inputs()
    with torch.no_grad():
        base = head(key, cur, grid, idx).logits
        key2 = key.clone()
        key2[0, 1] += torch.randn_like(key2[0, 1])
        out = head(key2, cur, grid, idx).logits
    changed = (out - base).abs().amax((-2, -1))  # [B, K]
    assert changed[0, 1] > 1e-4
    mask = torch.ones_like(changed, dtype=torch.bool)
    mask[0, 1] = False
    assert changed[mask].max() < 1e-6


def test_current_view_changes_every_map() -> None:
    head = tiny_head()
    key, cur, grid, idx = inputs()
    with torch.no_grad():
        base = head(key, cur, grid, idx).logits
        out = head(key, cur + torch.randn_like(cur), grid, idx).logits
    assert ((out - base).abs().amax((-2, -1)) > 1e-4).all()


def test_frame_index_embedding_matters_only_when_enabled() -> None:
    key, cur, grid, idx = inputs()
    other = idx.clone()
    other[0, 0] = 3
    for enabled in (True, False):
        head = tiny_head(use_frame_index_embedding=enabled)
        with torch.no_grad():
            a = head(key, cur, grid, idx).logits
            b = head(key, cur, grid, other).logits
        assert ((a[0, 0] - b[0, 0]).abs().max() > 1e-5) == enabled
        assert torch.allclose(a[:, 1:], b[:, 1:], atol=1e-6)


def test_key_token_mask_ignores_masked_tokens() -> None:
    head = tiny_head()
    key, cur, grid, idx = inputs()
    mask = torch.ones(2, 3, 5, dtype=torch.bool)
    mask[0, 0, 3:] = False
    mask[1, 2] = False  # a fully masked (padding) keyframe stays finite
    with torch.no_grad():
        a = head(key, cur, grid, idx, key_token_mask=mask).logits
        key2 = key.clone()
        key2[0, 0, 3:] = 100.0
        b = head(key2, cur, grid, idx, key_token_mask=mask).logits
    assert torch.isfinite(a).all()
    assert torch.allclose(a, b, atol=1e-5)


def test_gradients_reach_inputs_and_parameters() -> None:
    head = tiny_head().train()
    key, cur, grid, idx = inputs()
    key.requires_grad_(True)
    cur.requires_grad_(True)
    head(key, cur, grid, idx).logits.square().mean().backward()
    assert key.grad is not None and key.grad.abs().sum() > 0
    assert cur.grad is not None and cur.grad.abs().sum() > 0
    assert all(p.grad is not None for p in head.parameters())


def test_bad_shapes_raise() -> None:
    head = tiny_head()
    key, cur, grid, idx = inputs()
    with pytest.raises(ValueError, match=r"key_states must be \[B, K, Tk, D=32\]"):
        head(key[..., :8], cur, grid, idx)
    with pytest.raises(ValueError, match=r"cur_states must be \[B=2, Tc, D=32\]"):
        head(key, cur[:1], grid, idx)
    with pytest.raises(ValueError, match="Tc=12 tokens but grid 4x4 needs 16"):
        head(key, cur, (4, 4), idx)
    with pytest.raises(ValueError, match=r"frame_indices must be \[B=2, K=3\]"):
        head(key, cur, grid, idx[:, :2])
    with pytest.raises(ValueError, match="integer tensor"):
        head(key, cur, grid, idx.float())
    with pytest.raises(ValueError, match="repeat an original index"):
        head(key, cur, grid, torch.tensor([[0, 4, 4], [2, 5, -1]]))
    with pytest.raises(ValueError, match="-1 \\(padding\\)"):
        head(key, cur, grid, torch.tensor([[0, 4, -2], [2, 5, -1]]))
    with pytest.raises(ValueError, match="key_token_mask"):
        head(key, cur, grid, idx, key_token_mask=torch.ones(2, 3, 4, dtype=torch.bool))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"hidden_dim": 15}, "hidden_dim=15 must be divisible by num_heads=2"),
        ({"input_dim": 0}, "input_dim must be an int >= 1, got 0"),
        ({"out_size": (16,)}, "out_size must be two ints"),
        ({"decoder_channels": (8, 0)}, "decoder_channels"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    cfg = dict(input_dim=D, hidden_dim=16, num_heads=2)
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=match):
        HeatmapHeadConfig(**cfg)


def test_prior_channels_are_required_checked_and_used_per_keyframe() -> None:
    head = tiny_head(prior_channels=2, out_size=(8, 8)).eval()
    keys, cur, grid, idx = inputs()
    prior = torch.rand(2, 3, 2, 8, 8, generator=torch.Generator().manual_seed(3))
    with pytest.raises(ValueError, match=r"prior must be \[B, K, P, h, w\]"):
        head(keys, cur, grid, idx)
    with pytest.raises(ValueError, match=r"prior must be \[B, K, P, h, w\]"):
        head(keys, cur, grid, idx, prior=prior[:, :, :1])
    with pytest.raises(ValueError, match="prior_channels=0"):
        tiny_head(out_size=(8, 8))(keys, cur, grid, idx, prior=prior)
    with torch.no_grad():
        base = head(keys, cur, grid, idx, prior=prior).logits
        changed = prior.clone()
        changed[1, 2] = 1.0 - changed[1, 2]
        out = head(keys, cur, grid, idx, prior=changed).logits
    diff = (out - base).abs().amax((-2, -1))  # [B, K]
    assert diff[1, 2] > 1e-4
    diff[1, 2] = 0
    assert float(diff.max()) == 0.0
    with pytest.raises(ValueError, match="prior_channels"):
        HeatmapHeadConfig(input_dim=D, prior_channels=-1)


@pytest.mark.parametrize("prior", [0, 2])
def test_one_channel_per_target_kind(prior: int) -> None:
    """out_channels = 2 (covisibility + camera position): [B, K, 2, h, w] logits, two maps per
    keyframe that differ only in the last conv; `logits` is the first channel; a 1-channel head
    has no channel_logits (its output as before)."""
    key, cur, grid, idx = inputs()
    extra = {}
    if prior:
        extra["prior"] = torch.rand(2, 3, prior, 16, 16, generator=torch.Generator().manual_seed(3))
    two = tiny_head(out_channels=2, prior_channels=prior)
    out = two(key, cur, grid, idx, **extra)
    assert out.channel_logits is not None and out.channel_logits.shape == (2, 3, 2, 16, 16)
    assert torch.equal(out.logits, out.channel_logits[:, :, 0])
    assert not torch.allclose(out.channel_logits[:, :, 0], out.channel_logits[:, :, 1])
    assert two.to_logits.out_channels == 2
    one = tiny_head(prior_channels=prior)
    single = one(key, cur, grid, idx, **extra)
    assert single.channel_logits is None and single.logits.shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="out_channels"):
        HeatmapHeadConfig(input_dim=D, out_channels=0)
