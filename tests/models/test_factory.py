"""Tests for habitat_fih.models.factory and habitat_fih.models.config (CPU, tiny / meta)."""

from __future__ import annotations

from pathlib import Path

import _tiny_qwen as _tiny  # tests/helpers (on sys.path via tests/conftest.py)
import pytest
import torch
from repo_scripts import load_script  # tests/helpers (on sys.path via tests/conftest.py)

from habitat_fih.models.config import FIHModelConfig, StageSpec, default_stages
from habitat_fih.models.factory import (
    ComponentLoadError,
    build_model,
    build_stand_in_tokenizer,
    build_tokenizer,
)
from habitat_fih.models.fih_model import FIHModel
from habitat_fih.models.fusion import FusionConfig
from habitat_fih.models.qwen_vl_backbone import QwenVLBackboneConfig
from habitat_fih.models.vggt import VGGT, VGGTConfig, save_vggt


def test_tiny_build_and_config_round_trip() -> None:
    config = FIHModelConfig.tiny()
    assert FIHModelConfig.from_dict(config.to_dict()) == config
    model = build_model(config, tokenizer=_tiny.tiny_tokenizer())
    assert isinstance(model, FIHModel) and model.stage == "finetune"
    assert model.config.sampler.num_keyframes == config.num_keyframes


def test_vggt_checkpoint_is_loaded(tmp_path: Path) -> None:
    config = FIHModelConfig.tiny()
    torch.manual_seed(5)
    source = VGGT(config.vggt)
    save_vggt(source, tmp_path)
    model = build_model(
        FIHModelConfig.tiny(vggt_dir=str(tmp_path)), tokenizer=_tiny.tiny_tokenizer()
    )
    for key, value in source.state_dict().items():
        assert torch.equal(model.vggt.state_dict()[key], value), key


def test_missing_and_mismatched_checkpoints_name_the_problem(tmp_path: Path) -> None:
    tok = _tiny.tiny_tokenizer()
    with pytest.raises(ComponentLoadError, match=r"VGGT checkpoint .*model\.safetensors"):
        build_model(FIHModelConfig.tiny(vggt_dir=str(tmp_path / "nowhere")), tokenizer=tok)
    other = VGGT(VGGTConfig.tiny(img_size=32, embed_dim=16, patch_embed={"embed_dim": 16}))
    save_vggt(other, tmp_path / "vggt")
    with pytest.raises(ComponentLoadError, match="shape mismatches"):
        build_model(FIHModelConfig.tiny(vggt_dir=str(tmp_path / "vggt")), tokenizer=tok)
    config = FIHModelConfig.tiny()
    config.dinov3.pretrained_dir, config.dinov3.model_config = str(tmp_path), None
    with pytest.raises(ComponentLoadError, match=r"DINOv3.*config\.json"):
        build_model(config, tokenizer=tok)
    config = FIHModelConfig.tiny()
    config.qwen.pretrained_dir, config.qwen.model_config = str(tmp_path / "qwen"), None
    with pytest.raises(ComponentLoadError, match=r"Qwen2.5-VL checkpoint directory .*qwen"):
        build_model(config)
    with pytest.raises(FileNotFoundError, match="no Qwen2.5-VL tokenizer directory"):
        build_tokenizer(FIHModelConfig.tiny())


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"image_size": 36}, "image_size must be a positive multiple of 8"),
        ({"vggt_layer": 4}, "vggt_layer"),
        ({"num_keyframes": 0}, "num_keyframes"),
        ({"autocast_dtype": "float64"}, "autocast_dtype"),
        ({"fusion": FusionConfig(vggt_dim=64, dino_dim=32, out_dim=48)}, "fusion.out_dim=48"),
        ({"fusion": FusionConfig(vggt_dim=32, dino_dim=32, out_dim=32)}, "fusion.vggt_dim=32"),
        ({"stages": {"pretrain": StageSpec()}}, "missing"),
    ],
)
def test_config_validation_names_the_bad_value(overrides: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FIHModelConfig.tiny(**overrides)


def test_lora_stage_needs_lora_and_unknown_keys_are_named() -> None:
    qwen = QwenVLBackboneConfig(model_config=FIHModelConfig.tiny().qwen.model_config)
    with pytest.raises(ValueError, match="needs qwen.lora.enabled"):
        FIHModelConfig.tiny(qwen=qwen)
    FIHModelConfig.tiny(qwen=qwen, stages=default_stages(llm_main="frozen"))
    data = FIHModelConfig.tiny().to_dict()
    data["fusion"]["width"] = 3
    with pytest.raises(ValueError, match=r"unknown FusionConfig keys \['width'\]"):
        FIHModelConfig.from_dict(data)
    with pytest.raises(ValueError, match="StageSpec.llm"):
        StageSpec(llm="half")  # type: ignore[arg-type]


def test_device_allocation_places_components() -> None:
    config = FIHModelConfig.tiny(device_allocation={"vggt": "cpu", "dinov3": "cpu", "llm": "cpu"})
    model = build_model(config, tokenizer=_tiny.tiny_tokenizer())
    assert {model.device_of(c).type for c in ("vggt", "dinov3", "llm")} == {"cpu"}
    with pytest.raises(ValueError, match="DeviceAllocation.llm"):
        FIHModelConfig.tiny(device_allocation={"llm": "gpu:7"})


@pytest.mark.parametrize("llm", ["7b", "3b"])
def test_full_size_builds_on_meta_without_allocating(llm: str) -> None:
    config = FIHModelConfig.full(llm)
    model = build_model(config, tokenizer=build_stand_in_tokenizer(config), device="meta")
    assert all(p.is_meta for p in model.parameters())
    sizes = {
        k: sum(p.numel() for p in m.parameters()) for k, m in model.component_modules().items()
    }
    assert 1.18e9 < sizes["vggt"] < 1.20e9  # VGGT-1B without its track head
    assert 3.0e8 < sizes["dinov3"] < 3.1e8  # DINOv3 ViT-L/16
    hidden = {"7b": 3584, "3b": 2048}[llm]
    assert model.qwen.hidden_size == hidden
    assert model.qwen.vlm.config.text_config.num_hidden_layers == {"7b": 28, "3b": 36}[llm]
    assert model.config.image_size == 224 and model.config.num_keyframes == 8


def _bench_module():
    return load_script("benchmarks/bench_model.py")


@pytest.mark.slow
def test_benchmark_script_runs_tiny_and_builds_full_on_meta(capsys: pytest.CaptureFixture) -> None:
    bench = _bench_module()
    meta = bench.main(["--size", "full", "--llm", "7b", "--device", "meta"])
    assert "build_s" in meta
    tiny = bench.main(["--size", "tiny", "--iters", "1", "--warmup", "0"])
    stages = ("vggt", "sampling", "dinov3", "fusion", "llm", "heads")
    assert all(f"{name}_s" in tiny for name in stages)
    assert tiny["forward_s"] > 0 and tiny["forward_backward_s"] > 0
    out = capsys.readouterr().out
    assert "params qwen" in out and "forward+backward" in out
