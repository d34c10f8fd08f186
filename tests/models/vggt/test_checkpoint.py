"""Checkpoint I/O: save -> load round trip, error messages, meta-device assignment, track_head keys."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from habitat_fih.models.vggt import VGGT, VGGTConfig, load_vggt, save_vggt
from habitat_fih.models.vggt.checkpoint import load_state_dict_into

from .conftest import read_tsv


def _outputs(model: VGGT, images: torch.Tensor) -> dict:
    with torch.no_grad():
        out = model(images)
    return {
        k: out[k] for k in ("pose_enc", "depth", "depth_conf", "world_points", "world_points_conf")
    }


def _save_dict(tmp_path: Path, state: dict[str, torch.Tensor]) -> Path:
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    return tmp_path


def test_save_load_round_trip_gives_identical_outputs(tiny_model: VGGT, tmp_path: Path) -> None:
    file = save_vggt(tiny_model, tmp_path / "ckpt")
    assert file.name == "model.safetensors" and not list(file.parent.glob("*.tmp"))
    loaded = load_vggt(tmp_path / "ckpt")  # config read from config.json
    assert loaded.config == tiny_model.config and not loaded.training
    assert not any(p.is_meta for p in loaded.parameters())
    assert loaded.load_report.ignored_keys == loaded.load_report.missing_keys == []
    images = torch.rand(2, 3, 8, 12)
    for key, value in _outputs(tiny_model, images).items():
        torch.testing.assert_close(_outputs(loaded, images)[key], value, rtol=0, atol=0)
    # A file path works too, as does a torch `model.pt`.
    assert isinstance(load_vggt(file, config=tiny_model.config), VGGT)
    pt_dir = tmp_path / "pt"
    pt_dir.mkdir()
    torch.save(tiny_model.state_dict(), pt_dir / "model.pt")
    from_pt = load_vggt(pt_dir, config=tiny_model.config)
    torch.testing.assert_close(
        _outputs(from_pt, images)["depth"], _outputs(tiny_model, images)["depth"]
    )


def test_assign_reuses_checkpoint_tensors(tiny_config: VGGTConfig, tiny_model: VGGT) -> None:
    state = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    with torch.device("meta"):
        model = VGGT(tiny_config)
    load_state_dict_into(model, state)
    w = model.aggregator.frame_blocks[0].attn.qkv.weight
    assert w.data_ptr() == state["aggregator.frame_blocks.0.attn.qkv.weight"].data_ptr()
    assert w.requires_grad


def test_missing_path_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        load_vggt(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value) and "model.safetensors" in str(err.value)
    with pytest.raises(FileNotFoundError) as err:
        load_vggt(tmp_path)
    assert str(tmp_path) in str(err.value)
    assert "model.safetensors" in str(err.value) and "model.pt" in str(err.value)


def test_missing_key_and_wrong_shape_are_named(
    tiny_config: VGGTConfig, tiny_model: VGGT, tmp_path: Path
) -> None:
    state = dict(tiny_model.state_dict())
    del state["camera_head.embed_pose.bias"]
    state["depth_head.norm.weight"] = torch.zeros(5)
    with pytest.raises(ValueError) as err:
        load_vggt(_save_dict(tmp_path, state), config=tiny_config)
    msg = str(err.value)
    assert "camera_head.embed_pose.bias" in msg and "missing" in msg
    assert "depth_head.norm.weight" in msg and "(5,)" in msg and "(64,)" in msg


def test_unexpected_key_strict_and_lenient(
    tiny_config: VGGTConfig, tiny_model: VGGT, tmp_path: Path
) -> None:
    state = dict(tiny_model.state_dict())
    state["aggregator.extra"] = torch.zeros(3)
    del state["aggregator.frame_blocks.1.ls1.gamma"]
    _save_dict(tmp_path, state)
    with pytest.raises(ValueError, match="aggregator.extra"):
        load_vggt(tmp_path, config=tiny_config)
    model = load_vggt(tmp_path, config=tiny_config, strict=False)
    assert model.load_report.unexpected_keys == ["aggregator.extra"]
    assert model.load_report.missing_keys == ["aggregator.frame_blocks.1.ls1.gamma"]
    gamma = model.aggregator.frame_blocks[1].ls1.gamma
    assert not gamma.is_meta and torch.all(gamma == tiny_config.layerscale_init)


def test_track_head_keys_are_ignored_and_reported(
    tiny_config: VGGTConfig, tiny_model: VGGT, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = dict(tiny_model.state_dict())
    extra = {
        "track_head.tracker.fmap_norm.weight": torch.ones(4),
        "track_head.feature_extractor.norm.bias": torch.zeros(4),
    }
    _save_dict(tmp_path, {**state, **extra})
    assert set(load_file(str(tmp_path / "model.safetensors"))) >= set(extra)
    with caplog.at_level(logging.INFO, logger="habitat_fih.models.vggt.checkpoint"):
        model = load_vggt(tmp_path, config=tiny_config)
    assert sorted(model.load_report.ignored_keys) == sorted(extra)
    assert "ignored 2 checkpoint keys" in caplog.text


def test_release_layout_loads_with_exactly_the_track_head_ignored() -> None:
    """The full 1,797-tensor release layout (as meta tensors) loads into our full-size model."""
    rows = read_tsv()
    state = {k: torch.empty(s, device="meta") for k, s in rows}
    with torch.device("meta"):
        model = VGGT(VGGTConfig.vggt_1b())
    report = load_state_dict_into(model, state)
    assert report.ignored_keys == [k for k, _ in rows if k.startswith("track_head.")]
    assert len(report.ignored_keys) == 1797 - 1403
    assert report.missing_keys == report.unexpected_keys == []
