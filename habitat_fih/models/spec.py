"""From a model SPEC (the ``model`` node of an fih config) to an `FIHModelConfig` and its tokenizer.

A spec is the mapping under ``habitat_baselines.fih.model`` (and under ``model`` in an
``fih-infer --config`` file): ``preset`` (``tiny`` | ``full``), ``llm`` (``3b`` | ``7b`` for
``full``), the local model directories ``vggt_dir`` / ``dinov3_dir`` / ``qwen_dir`` /
``tokenizer_dir``, ``require_pretrained``, ``gradient_checkpointing`` and ``overrides`` (any
`FIHModelConfig` field, merged into the preset). The trainer and the inference program both
build their model config here, so one spec means the same model in both.
"""

from __future__ import annotations

import os
from typing import Any

from omegaconf import OmegaConf
from transformers import PreTrainedTokenizerBase

from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.factory import build_stand_in_tokenizer, build_tokenizer

__all__ = ["build_model_config", "deep_merge", "tokenizer_for"]


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def build_model_config(spec: Any, where: str = "habitat_baselines.fih.model") -> FIHModelConfig:
    """`FIHModelConfig` from a model spec (preset + dirs + overrides); `where` names the spec's
    place in error messages (``habitat_baselines.fih.model`` in the trainer's config)."""
    spec = (
        OmegaConf.to_container(spec, resolve=True, throw_on_missing=True)
        if not isinstance(spec, dict)
        else spec
    )
    unset = [k for k in ("vggt_dir", "dinov3_dir", "qwen_dir") if not spec.get(k)]
    if spec.get("require_pretrained") and unset:
        raise ValueError(
            "this config needs local model directories: set "
            + ", ".join(f"{where}.{k}=<dir>" for k in unset)
        )
    for key in ("vggt_dir", "dinov3_dir", "qwen_dir", "tokenizer_dir"):
        path = spec.get(key) or ""
        if path and not os.path.exists(path):
            raise FileNotFoundError(
                f"{where}.{key}={path!r} does not exist (a local model directory)"
            )
    if spec["preset"] == "tiny":
        base = FIHModelConfig.tiny()
    elif spec["preset"] == "full":
        base = FIHModelConfig.full(
            spec["llm"],
            vggt_dir=spec.get("vggt_dir") or None,
            dinov3_dir=spec.get("dinov3_dir") or None,
            qwen_dir=spec.get("qwen_dir") or None,
        )
    else:
        raise ValueError(
            f"{where}.preset must be 'tiny' or 'full', got {spec['preset']!r}"
        )
    data = deep_merge(base.to_dict(), dict(spec.get("overrides") or {}))
    if spec.get("gradient_checkpointing"):
        data["gradient_checkpointing"] = True
    if spec.get("tokenizer_dir"):
        data["qwen"]["tokenizer_dir"] = spec["tokenizer_dir"]
    return FIHModelConfig.from_dict(data)


def tokenizer_for(config: FIHModelConfig) -> PreTrainedTokenizerBase | None:
    """The tokenizer `build_model` needs for `config`: None when the Qwen base is read from
    ``qwen.pretrained_dir`` (it brings its own), Qwen's tokenizer from ``qwen.tokenizer_dir``,
    else the stand-in word-level tokenizer of random-init configs."""
    if config.qwen.tokenizer_dir or config.qwen.pretrained_dir:
        return build_tokenizer(config) if config.qwen.pretrained_dir is None else None
    return build_stand_in_tokenizer(config)
