"""VGGTConfig: released defaults, tiny constructor, validation messages naming bad values."""

from __future__ import annotations

import pytest

from habitat_fih.models.vggt import DinoV2Config, DPTHeadConfig, VGGTConfig


def test_vggt_1b_defaults_match_release() -> None:
    c = VGGTConfig.vggt_1b()
    assert (c.img_size, c.patch_size, c.embed_dim, c.depth, c.num_heads) == (518, 14, 1024, 24, 16)
    assert (c.num_register_tokens, c.qk_norm, c.rope_freq, c.layerscale_init) == (
        4,
        True,
        100.0,
        0.01,
    )
    assert c.patch_start_idx == 5
    assert (c.patch_embed.embed_dim, c.patch_embed.depth, c.patch_embed.num_heads) == (1024, 24, 16)
    assert c.dpt.layer_indices == (4, 11, 17, 23)
    assert c.dpt.out_channels == (256, 512, 1024, 1024) and c.dpt.features == 256
    assert (c.camera_head.trunk_depth, c.camera_head.num_iterations) == (4, 4)


def test_tiny_and_dict_round_trip() -> None:
    c = VGGTConfig.tiny()
    assert c.embed_dim == 32 and c.depth == 4 and c.num_heads == 2
    assert VGGTConfig(**c.to_dict()) == c


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"num_heads": 3}, "num_heads=3"),
        ({"img_size": 15}, "img_size=15"),
        ({"depth": 0}, "got 0"),
        ({"dpt": DPTHeadConfig(layer_indices=(0, 1, 2, 9))}, "[9]"),
        ({"patch_embed": DinoV2Config(embed_dim=64, num_heads=2)}, "embed_dim=64"),
        ({"enable_track": True}, "enable_track"),
    ],
)
def test_validation_names_bad_value(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError) as err:
        VGGTConfig.tiny(**kwargs)
    assert needle in str(err.value)


def test_rope_needs_head_dim_multiple_of_four() -> None:
    with pytest.raises(ValueError, match="head_dim=6"):
        VGGTConfig.tiny(
            embed_dim=12, num_heads=2, patch_embed=DinoV2Config(embed_dim=12, num_heads=2)
        )


def test_sub_config_validation() -> None:
    with pytest.raises(ValueError, match="out_channels"):
        DPTHeadConfig(out_channels=(1, 2, 3))
    with pytest.raises(ValueError, match="num_heads=5"):
        DinoV2Config(embed_dim=32, num_heads=5)
