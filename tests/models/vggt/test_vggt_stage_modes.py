"""VGGT's training modes in the ``vggt`` stage (`FIHModel.set_stage`, `StageSpec.vggt_aggregator`)
and its peft LoRA adapters (`habitat_fih.models.vggt.lora`).

Expectations come from the definitions, not from the code under test: fresh LoRA adapters have
``B = 0`` so the wrapped VGGT computes exactly what the plain one with the same weights computes;
``frozen`` trains the heads and nothing of the aggregator, ``lora`` the heads and the adapters,
``full`` everything of VGGT; the other components stay frozen in the ``vggt`` stage and VGGT stays
frozen in the heatmap stages.
"""

from __future__ import annotations

from dataclasses import replace

import _tiny_qwen as _tiny
import pytest
import torch

from habitat_fih.models.config import FIHModelConfig, StageSpec, default_stages
from habitat_fih.models.factory import build_model
from habitat_fih.models.qwen_vl_backbone import LoRASettings
from habitat_fih.models.vggt.lora import inject_vggt_lora
from habitat_fih.models.vggt.model import VGGT

LORA = {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0}


def _model(aggregator: str, lora: bool = False):
    stages = default_stages("lora")
    stages["vggt"] = replace(stages["vggt"], vggt_aggregator=aggregator)
    overrides = {"stages": stages}
    if lora:
        overrides["vggt_lora"] = LORA
    cfg = FIHModelConfig.tiny(**overrides)
    torch.manual_seed(0)
    return build_model(cfg, tokenizer=_tiny.tiny_tokenizer())


def _trainable(module: torch.nn.Module) -> set[str]:
    return {n for n, p in module.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("aggregator", ["frozen", "lora", "full"])
def test_vggt_stage_trains_what_the_mode_says(aggregator: str) -> None:
    model = _model(aggregator, lora=aggregator == "lora")
    model.set_stage("vggt")
    names = {n for n, _ in model.vggt.named_parameters()}
    heads = {n for n in names if n.split(".")[0] in ("camera_head", "depth_head", "point_head")}
    aggregator_names = {n for n in names if n.startswith("aggregator.")}
    assert heads and heads | aggregator_names == names
    adapters = {n for n in aggregator_names if "lora_" in n}
    expected = {
        "frozen": heads,
        "lora": heads | adapters,
        "full": names,
    }[aggregator]
    assert _trainable(model.vggt) == expected
    if aggregator == "lora":  # adapters on every frame / global block's qkv and proj only
        depth = model.config.vggt.depth
        wrapped = {n.split(".lora_")[0] for n in adapters}
        assert wrapped == {
            f"aggregator.{kind}_blocks.{i}.attn.{proj}"
            for kind in ("frame", "global")
            for i in range(depth)
            for proj in ("qkv", "proj")
        }
    for other in (model.dinov3, model.qwen, model.fusion, model.heatmap_head, model.action_head):
        assert not _trainable(other)
    for stage in ("pretrain", "finetune", "main"):  # VGGT stays frozen there
        model.set_stage(stage)
        assert not _trainable(model.vggt)


def test_fresh_lora_adapters_leave_vggt_outputs_unchanged() -> None:
    cfg = FIHModelConfig.tiny().vggt
    torch.manual_seed(0)
    plain = VGGT(cfg).eval()
    wrapped = VGGT(cfg).eval()
    wrapped.load_state_dict(plain.state_dict())
    count = inject_vggt_lora(
        wrapped,
        LoRASettings(
            **{
                **LORA,
                "target_modules": [r"aggregator\.(frame|global)_blocks\.\d+\.attn\.(qkv|proj)"],
            }
        ),
    )
    assert count == 4 * cfg.depth
    images = torch.rand(2, 3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = plain(images), wrapped(images)
    for key in ("pose_enc", "depth", "depth_conf", "world_points", "world_points_conf"):
        assert torch.equal(a[key], b[key]), key
    # a trained adapter changes them (the adapters are in the forward path)
    with torch.no_grad():
        for name, param in wrapped.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1, generator=torch.Generator().manual_seed(2))
        changed = wrapped(images)["pose_enc"]
    assert not torch.allclose(changed, a["pose_enc"])


def test_lora_needs_the_adapters_and_bad_targets_are_refused() -> None:
    stages = default_stages()
    stages["vggt"] = StageSpec(train_vggt=True, vggt_aggregator="lora")
    with pytest.raises(ValueError, match=r"vggt_aggregator='lora' needs vggt_lora.enabled"):
        FIHModelConfig.tiny(stages=stages)
    with pytest.raises(ValueError, match="StageSpec.vggt_aggregator must be one of"):
        StageSpec(vggt_aggregator="half")  # type: ignore[arg-type]
    vggt = VGGT(FIHModelConfig.tiny().vggt)
    with pytest.raises(ValueError, match="match no module of VGGT"):
        inject_vggt_lora(vggt, LoRASettings(enabled=True, target_modules=["aggregator.nothing"]))


def test_a_lora_model_checkpoint_round_trips_and_old_stage_maps_load() -> None:
    model = _model("lora", lora=True)
    state = model.state_dict()
    assert any(".lora_A." in k for k in state) and any(".base_layer." in k for k in state)
    again = _model("lora", lora=True)
    again.load_state_dict(state)  # same architecture, same key names
    # a config saved before the vggt stage existed (stages without "vggt") gets its default
    data = FIHModelConfig.tiny().to_dict()
    del data["stages"]["vggt"]
    restored = FIHModelConfig.from_dict(data)
    assert restored.stages["vggt"] == default_stages()["vggt"]
