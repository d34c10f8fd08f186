"""Tests for habitat_fih.models.dinov3_backbone (tiny random DINOv3 config, CPU)."""

from __future__ import annotations

import pytest
import torch

from habitat_fih.models.dinov3_backbone import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DINOv3Backbone,
    DINOv3BackboneConfig,
)

TINY_VIT = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_register_tokens": 4,
    "patch_size": 16,
    "image_size": 64,
}


def _backbone(image_size: tuple[int, int] | None = None) -> DINOv3Backbone:
    torch.manual_seed(0)
    return DINOv3Backbone(DINOv3BackboneConfig(model_config=TINY_VIT, image_size=image_size))


def test_patch_tokens_match_transformers_last_hidden_state() -> None:
    backbone = _backbone()
    images = torch.rand(2, 3, 48, 64)
    tokens = backbone(images)
    assert tokens.shape == (2, 3, 4, 32)
    assert backbone.grid_size(48, 64) == (3, 4)

    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = backbone.model(pixel_values=(images - mean) / std).last_hidden_state
    assert ref.shape[1] == 1 + 4 + 12
    torch.testing.assert_close(tokens, ref[:, 1 + 4 :].reshape(2, 3, 4, 32))
    # row-major: token (r, c) is patch r * gw + c
    torch.testing.assert_close(tokens[1, 2, 1], ref[1, 5 + 2 * 4 + 1])


def test_resize_to_configured_image_size() -> None:
    backbone = _backbone(image_size=(32, 32))
    assert backbone(torch.rand(1, 3, 50, 70)).shape == (1, 2, 2, 32)
    assert backbone.grid_size(50, 70) == (2, 2)


def test_frozen_backbone_stays_in_eval_mode() -> None:
    backbone = _backbone()
    backbone.train()
    assert not backbone.model.training
    assert not any(p.requires_grad for p in backbone.parameters())


@pytest.mark.parametrize("shape", [(2, 3, 40, 64), (2, 3, 48), (2, 1, 48, 64)])
def test_bad_shapes_raise(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        _backbone()(torch.rand(*shape))


def test_config_validation_and_missing_dir(tmp_path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        DINOv3BackboneConfig()
    with pytest.raises(ValueError, match="dtype"):
        DINOv3BackboneConfig(model_config=TINY_VIT, dtype="float64")
    missing = tmp_path / "no_such_dinov3"
    with pytest.raises(FileNotFoundError, match="no_such_dinov3.*config.json"):
        DINOv3Backbone(DINOv3BackboneConfig(pretrained_dir=str(missing)))
    missing.mkdir()
    (missing / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        DINOv3Backbone(DINOv3BackboneConfig(pretrained_dir=str(missing)))


def test_load_from_local_pretrained_dir(tmp_path) -> None:
    backbone = _backbone()
    backbone.model.save_pretrained(tmp_path / "dinov3")
    loaded = DINOv3Backbone(
        DINOv3BackboneConfig(pretrained_dir=str(tmp_path / "dinov3"), image_size=None)
    )
    images = torch.rand(1, 3, 32, 48)
    torch.testing.assert_close(loaded(images), backbone(images))
