"""Tests for habitat_fih.models.fusion (CPU, tiny channel sizes)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from habitat_fih.models.fusion import (
    FusionConfig,
    SpatialFusion,
    merge_tokens,
    pooled_grid_size,
    resize_grid,
)

CV, CD, D = 24, 12, 32


def _fusion(**kwargs) -> SpatialFusion:
    torch.manual_seed(0)
    return SpatialFusion(FusionConfig(vggt_dim=CV, dino_dim=CD, out_dim=D, **kwargs))


def test_resize_grid_matches_interpolate_and_is_exact_on_linear_ramp() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 14, 14, 5)
    out = resize_grid(x, (16, 16))
    ref = F.interpolate(x.permute(0, 3, 1, 2), size=(16, 16), mode="bilinear")
    assert out.shape == (3, 16, 16, 5)
    torch.testing.assert_close(out, ref.permute(0, 2, 3, 1))
    assert resize_grid(x, (14, 14)) is x

    # With align_corners=True bilinear resizing reproduces a linear function of the cell
    # centres exactly: value(r, c) = 2 r/(h-1) + 3 c/(w-1) on both grids.
    def ramp(h: int, w: int) -> torch.Tensor:
        r = torch.linspace(0, 1, h).view(h, 1)
        c = torch.linspace(0, 1, w).view(1, w)
        return (2 * r + 3 * c).view(1, h, w, 1)

    torch.testing.assert_close(resize_grid(ramp(14, 14), (16, 16), True), ramp(16, 16))


@pytest.mark.parametrize("merge", ["spatial2x2", "pool"])
@pytest.mark.parametrize("mode", ["concat", "add"])
def test_shapes_and_token_bound_for_224_frames(mode: str, merge: str) -> None:
    # 224x224 frames: VGGT 14-px patches -> 16x16 grid; DINOv3 16-px patches -> 14x14 grid.
    fusion = _fusion(mode=mode, merge=merge, max_tokens_per_frame=64)
    vggt = torch.randn(2, 3, 16, 16, CV)
    dino = torch.randn(2, 3, 14, 14, CD)
    fused, (th, tw) = fusion(vggt, dino)
    assert (th, tw) == (8, 8) == fusion.output_grid((16, 16))
    assert fused.shape == (2, 3, 64, D)
    assert th * tw <= 64
    assert torch.isfinite(fused).all()


@pytest.mark.parametrize("cap", [1, 10, 16, 30, 64, 100])
@pytest.mark.parametrize("grid", [(16, 16), (37, 37), (16, 22), (5, 40)])
def test_token_bound_holds(cap: int, grid: tuple[int, int]) -> None:
    for merge in ("spatial2x2", "pool"):
        x = torch.randn(1, *grid, 3)
        merged, (th, tw) = merge_tokens(x, merge, cap)
        assert merged.shape[1:3] == (th, tw)
        assert 1 <= th * tw <= cap
    th, tw = pooled_grid_size(*grid, cap)
    assert th <= grid[0] and tw <= grid[1] and th * tw <= cap


def test_spatial2x2_groups_neighbours_like_qwen_merger() -> None:
    x = torch.arange(4 * 4, dtype=torch.float32).view(1, 4, 4, 1)
    merged, grid = merge_tokens(x, "spatial2x2", 64)
    assert grid == (2, 2)
    # top-left 2x2 block holds patches 0, 1, 4, 5 (row-major inside the block)
    assert merged[0, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]
    assert merged[0, 1, 1].tolist() == [10.0, 11.0, 14.0, 15.0]
    # odd grids are edge-padded: 37x37 -> 19x19, then pooled under the cap
    _, grid = merge_tokens(torch.randn(1, 37, 37, 2), "spatial2x2", 400)
    assert grid == (19, 19)


def test_add_mode_scales_vggt_path() -> None:
    fusion = _fusion(mode="add", add_scale=0.2)
    vggt = torch.randn(1, 2, 16, 16, CV)
    dino = torch.randn(1, 2, 14, 14, CD)
    fused, _ = fusion(vggt, dino)
    zero_scale = _fusion(mode="add", add_scale=0.0)
    only_dino, _ = zero_scale(vggt, dino)
    # same seed -> same weights; the difference is exactly 0.2 * the VGGT projection
    vggt_proj = fusion.mlp_vggt(
        merge_tokens(fusion.norm_vggt(vggt.view(2, 16, 16, CV)), "spatial2x2", 64)[0]
    ).reshape(1, 2, 64, D)
    torch.testing.assert_close(fused - only_dino, 0.2 * vggt_proj, rtol=1e-4, atol=1e-5)


def test_gradients_flow_to_both_streams() -> None:
    fusion = _fusion(norm="rmsnorm")
    vggt = torch.randn(1, 1, 16, 16, CV, requires_grad=True)
    dino = torch.randn(1, 1, 14, 14, CD, requires_grad=True)
    fused, _ = fusion(vggt, dino)
    fused.square().mean().backward()
    assert vggt.grad is not None and vggt.grad.abs().sum() > 0
    assert dino.grad is not None and dino.grad.abs().sum() > 0


def test_bad_shapes_raise() -> None:
    fusion = _fusion()
    with pytest.raises(ValueError, match="B, F"):
        fusion(torch.randn(1, 16, 16, CV), torch.randn(1, 1, 14, 14, CD))
    with pytest.raises(ValueError, match="batch/frame"):
        fusion(torch.randn(1, 2, 16, 16, CV), torch.randn(1, 3, 14, 14, CD))
    with pytest.raises(ValueError, match="channel"):
        fusion(torch.randn(1, 2, 16, 16, CV + 1), torch.randn(1, 2, 14, 14, CD))
    with pytest.raises(ValueError, match="max_tokens_per_frame"):
        _fusion(merge="none", max_tokens_per_frame=64)(
            torch.randn(1, 1, 16, 16, CV), torch.randn(1, 1, 14, 14, CD)
        )


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"mode": "sum"}, "mode"),
        ({"merge": "3x3"}, "merge"),
        ({"norm": "batchnorm"}, "norm"),
        ({"out_dim": 0}, "out_dim"),
        ({"max_tokens_per_frame": -1}, "max_tokens_per_frame"),
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"add_scale": float("nan")}, "add_scale"),
    ],
)
def test_config_validation_names_bad_value(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        FusionConfig(**kwargs)
