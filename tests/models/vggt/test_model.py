"""VGGT: released-checkpoint layout on the meta device, output contract, input validation."""

from __future__ import annotations

import pytest
import torch

from habitat_fih.models.vggt import VGGT, VGGTConfig

from .conftest import read_tsv


def test_full_size_state_dict_matches_release_minus_track_head() -> None:
    rows = read_tsv()
    assert len(rows) == 1797
    assert sum(torch.Size(s).numel() for _, s in rows) == 1_256_537_516
    expected = [(k, s) for k, s in rows if not k.startswith("track_head.")]
    with torch.device("meta"):
        model = VGGT(VGGTConfig.vggt_1b())
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert got == expected  # same keys, shapes and order
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == sum(torch.Size(s).numel() for _, s in expected) == 1_190_596_120


def test_full_size_forward_shapes_on_meta_device() -> None:
    """Shape-only pass of VGGT-1B at 294 x 518 (21 x 37 patches), no memory or compute."""
    with torch.device("meta"):
        model = VGGT(VGGTConfig.vggt_1b()).eval()
        with torch.no_grad():
            out = model(torch.rand(1, 2, 3, 294, 518))
    assert out["pose_enc"].shape == (1, 2, 9)
    assert out["depth"].shape == (1, 2, 294, 518, 1)
    assert out["world_points"].shape == (1, 2, 294, 518, 3)
    assert len(out["aggregated_tokens"]) == 24
    assert out["aggregated_tokens"][-1].shape == (1, 2, 5 + 21 * 37, 2048)


def _shapes(out: dict) -> dict:
    return {k: tuple(v.shape) for k, v in out.items() if isinstance(v, torch.Tensor)}


@pytest.mark.parametrize("batched", [False, True])
def test_output_keys_and_shapes(tiny_model: VGGT, batched: bool) -> None:
    S, H, W = 3, 8, 12  # non-square: 2 x 3 patches of 4 px
    images = torch.rand(2, S, 3, H, W) if batched else torch.rand(S, 3, H, W)
    B = 2 if batched else 1
    with torch.no_grad():
        out = tiny_model(images)
    cfg = tiny_model.config
    P = cfg.patch_start_idx + (H // 4) * (W // 4)
    assert _shapes(out) == {
        "pose_enc": (B, S, 9),
        "depth": (B, S, H, W, 1),
        "depth_conf": (B, S, H, W),
        "world_points": (B, S, H, W, 3),
        "world_points_conf": (B, S, H, W),
        "images": (B, S, 3, H, W),
    }
    assert out["patch_start_idx"] == cfg.patch_start_idx == 3
    assert len(out["aggregated_tokens"]) == cfg.depth
    assert all(t.shape == (B, S, P, 2 * cfg.embed_dim) for t in out["aggregated_tokens"])
    assert len(out["pose_enc_list"]) == cfg.camera_head.num_iterations
    assert torch.equal(out["pose_enc_list"][-1], out["pose_enc"])
    assert (out["depth"] > 0).all() and (out["depth_conf"] > 1).all()
    assert (out["world_points_conf"] > 1).all()
    assert (out["pose_enc"][..., 7:] >= 0).all()  # FoVs through ReLU


def test_unbatched_equals_batch_of_one(tiny_model: VGGT) -> None:
    images = torch.rand(2, 3, 16, 16)  # native grid: no pos-embed interpolation
    with torch.no_grad():
        a, b = tiny_model(images), tiny_model(images[None])
    torch.testing.assert_close(a["world_points"], b["world_points"])


def test_heads_stay_float32_under_autocast(tiny_model: VGGT) -> None:
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = tiny_model(torch.rand(2, 3, 8, 8))
    for key in ("pose_enc", "depth", "depth_conf", "world_points", "world_points_conf"):
        assert out[key].dtype == torch.float32, key


def test_dpt_chunking_does_not_change_results(tiny_model: VGGT) -> None:
    images = torch.rand(1, 3, 3, 8, 8)
    with torch.no_grad():
        chunked = tiny_model(images)
        for head in (tiny_model.depth_head, tiny_model.point_head):
            head.frames_chunk_size = 0
        whole = tiny_model(images)
    torch.testing.assert_close(chunked["depth"], whole["depth"])
    torch.testing.assert_close(chunked["world_points"], whole["world_points"])


def test_heads_can_be_disabled() -> None:
    model = VGGT(VGGTConfig.tiny(enable_depth=False, enable_point=False)).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 8, 8))
    assert "depth" not in out and "world_points" not in out and out["pose_enc"].shape == (1, 2, 9)
    assert not any(k.startswith(("depth_head", "point_head")) for k in model.state_dict())


@pytest.mark.parametrize(
    "shape", [(2, 3, 8, 10), (2, 3, 9, 8), (3, 8, 8), (1, 2, 4, 8, 8), (1, 0, 3, 8, 8)]
)
def test_bad_shapes_raise_naming_the_shape(tiny_model: VGGT, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError) as err:
        tiny_model(torch.rand(shape))
    assert str(shape) in str(err.value)


def test_pos_embed_interpolation(tiny_model: VGGT) -> None:
    dino = tiny_model.aggregator.patch_embed
    native = dino.interpolate_pos_embed(4, 4)
    torch.testing.assert_close(native, dino.pos_embed[:, 1:])
    assert dino.interpolate_pos_embed(2, 3).shape == (1, 6, tiny_model.config.embed_dim)
    with torch.no_grad():
        dino.pos_embed.fill_(0.5)
    torch.testing.assert_close(dino.interpolate_pos_embed(5, 7), torch.full((1, 35, 32), 0.5))
