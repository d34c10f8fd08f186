"""peft LoRA adapters on VGGT's aggregator (`FIHModelConfig.vggt_lora`).

`inject_vggt_lora` adds ``lora_A`` / ``lora_B`` to every module of a `VGGT` whose full name (from
the VGGT module, e.g. ``aggregator.frame_blocks.3.attn.qkv``) matches one of the settings'
``target_modules``, each read as a regular expression over the WHOLE name (peft's string form).
By default (`habitat_fih.models.config.VGGT_LORA_TARGETS`) these are the attention projections
of the aggregator's frame and global blocks, not the patch embedding's (DINOv2) nor the heads'.

``lora_B`` starts at zero, so a model with fresh adapters computes exactly what it computed
before. Inject AFTER loading released weights (`habitat_fih.models.vggt.checkpoint.load_vggt`
reads the official key layout; peft then renames a wrapped layer's weight to
``...qkv.base_layer.weight``): an FIH checkpoint of a model with adapters holds those names and
loads into a model built with the same `vggt_lora`. `set_vggt_trainable` (`FIHModel.set_stage`)
trains the adapters in a stage with ``vggt_aggregator: lora`` and freezes them otherwise.
"""

from __future__ import annotations

from torch import nn

from habitat_fih.models.qwen_vl_backbone import LoRASettings

__all__ = ["LORA_PARAMETER_TAG", "inject_vggt_lora", "set_vggt_trainable", "target_pattern"]

#: The substring peft gives every adapter parameter's name.
LORA_PARAMETER_TAG = "lora_"


def target_pattern(settings: LoRASettings) -> str:
    """One regular expression matching a module name iff one of ``target_modules`` matches
    it whole."""
    return "|".join(f"(?:{t})" for t in settings.target_modules)


def inject_vggt_lora(vggt: nn.Module, settings: LoRASettings) -> int:
    """Add LoRA adapters to `vggt` in place (see the module docstring); returns how many
    modules got one.

    Raises:
        ValueError: no module matches ``target_modules`` (a typo would otherwise train
            nothing).
    """
    import re

    from peft import LoraConfig, inject_adapter_in_model

    pattern = target_pattern(settings)
    names = [name for name, _ in vggt.named_modules() if name and re.fullmatch(pattern, name)]
    if not names:
        raise ValueError(
            f"FIHModelConfig.vggt_lora.target_modules {list(settings.target_modules)} match no "
            "module of VGGT (names look like 'aggregator.frame_blocks.0.attn.qkv')"
        )
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=pattern,
        bias="none",
    )
    inject_adapter_in_model(config, vggt)
    return len(names)


def set_vggt_trainable(vggt: nn.Module, train: bool, aggregator: str) -> None:
    """Which VGGT parameters train (`StageSpec.train_vggt` / ``vggt_aggregator``): none when
    not `train`; else the camera / depth / point heads plus, by `aggregator`, nothing
    (``frozen``), the LoRA adapters (``lora``) or every weight (``full``) of the aggregator.

    Raises:
        ValueError: an unknown `aggregator`, or ``lora`` on a VGGT without adapters.
    """
    if aggregator not in ("frozen", "lora", "full"):
        raise ValueError(f"vggt_aggregator must be frozen, lora or full, got {aggregator!r}")
    vggt.requires_grad_(False)
    if not train:
        return
    names = [name for name, _ in vggt.named_parameters()]
    if aggregator == "lora" and not any(LORA_PARAMETER_TAG in n for n in names):
        raise ValueError(
            "vggt_aggregator='lora' but VGGT has no LoRA adapters (FIHModelConfig.vggt_lora)"
        )
    for name, param in vggt.named_parameters():
        if not name.startswith("aggregator."):
            param.requires_grad_(True)  # camera / depth / point heads
        elif aggregator == "full" or (aggregator == "lora" and LORA_PARAMETER_TAG in name):
            param.requires_grad_(True)
