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
            hint = (
                "; the bundled data's tokenizer is written by "
                "`python -m habitat_fih.datasets.tokenizer`"
                if key == "tokenizer_dir"
                else ""
            )
            raise FileNotFoundError(
                f"{where}.{key}={path!r} does not exist (a local model directory{hint})"
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
        # absolute, so a checkpoint's recorded model config finds its tokenizer from any folder
        # (fih-infer --checkpoint); a path key, ignored when configs are compared on resume
        data["qwen"]["tokenizer_dir"] = os.path.abspath(spec["tokenizer_dir"])
    return FIHModelConfig.from_dict(data)


def tokenizer_for(config: FIHModelConfig) -> PreTrainedTokenizerBase | None:
    """The tokenizer `build_model` needs for `config` (the one place that chooses it: the
    trainer and ``fih-infer`` both call this):

    * None when the Qwen base is read from ``qwen.pretrained_dir`` (it brings its own);
    * else the tokenizer folder ``qwen.tokenizer_dir`` (`build_tokenizer`: ``AutoTokenizer``):
      Qwen2.5-VL's own files for real runs, or the bundled data's word-level tokenizer
      ``data/tokenizer/synthetic_r2r`` (`habitat_fih.datasets.tokenizer`), which the tiny fih
      configs set through ``habitat_baselines.fih.model.tokenizer_dir``. With a random-init
      Qwen (``qwen.model_config``) its vision ids must be the config's and every id must fit
      the vocabulary (ValueError otherwise);
    * else the stand-in word-level tokenizer (`build_stand_in_tokenizer`: ~150 prompt words,
      every other word one unknown token) of random-init configs built without data
      (benchmarks, meta-device checks, ``FIHModelConfig.tiny()`` in code).
    """
    if config.qwen.pretrained_dir:
        return None
    if config.qwen.tokenizer_dir:
        tokenizer = build_tokenizer(config)
        if config.qwen.model_config is not None:
            _check_fits(tokenizer, config)
        return tokenizer
    return build_stand_in_tokenizer(config)


def _check_fits(tokenizer: PreTrainedTokenizerBase, config: FIHModelConfig) -> None:
    """A tokenizer from ``qwen.tokenizer_dir`` against a random-init Qwen config: the vision
    ids the config names, and every id below its vocab_size (an id past it would index outside
    the embedding table)."""
    cfg = config.qwen.model_config or {}
    text = cfg.get("text_config", {})
    expected = {
        "<|image_pad|>": cfg.get("image_token_id"),
        "<|video_pad|>": cfg.get("video_token_id"),
        "<|vision_start|>": cfg.get("vision_start_token_id"),
        "<|vision_end|>": cfg.get("vision_end_token_id"),
    }
    wrong = [
        f"{token} is {tokenizer.convert_tokens_to_ids(token)}, the config's {idx}"
        for token, idx in expected.items()
        if idx is not None and tokenizer.convert_tokens_to_ids(token) != int(idx)
    ]
    vocab_size = text.get("vocab_size")
    top = max(tokenizer.get_vocab().values())
    if vocab_size is not None and top >= int(vocab_size):
        wrong.append(f"ids reach {top}, the config's vocab_size is {vocab_size}")
    if wrong:
        raise ValueError(
            f"qwen.tokenizer_dir={config.qwen.tokenizer_dir!r} does not fit the random-init "
            "Qwen config (qwen.model_config): " + "; ".join(wrong)
        )
