"""Build an `FIHModel` (and its tokenizer) from an `FIHModelConfig`.

Each backbone is loaded from its local checkpoint directory when the config names one
(`vggt_dir`, `dinov3.pretrained_dir`, `qwen.pretrained_dir`) and randomly initialised from its
architecture config otherwise. Checkpoint errors come from the backbones themselves, which
already name the missing files or the missing / mismatched keys (`load_vggt`,
`check_hf_checkpoint_dir`); this module only adds which component failed.

`build_model(config, device=...)` constructs every module directly on `device` (e.g. `"cuda"`
to skip a CPU round trip, or `"meta"` to inspect a full-size model without allocating it), then
applies `config.device_allocation`; with `config.offload` it builds on CPU and runs on `device`
(`FIHModel.enable_offload`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.dinov3_backbone import DINOv3Backbone
from habitat_fih.models.fih_model import FIHModel
from habitat_fih.models.qwen_vl_backbone import QwenVLBackbone, _load_tokenizer
from habitat_fih.models.vggt.checkpoint import load_vggt
from habitat_fih.models.vggt.lora import inject_vggt_lora
from habitat_fih.models.vggt.model import VGGT

logger = logging.getLogger(__name__)

__all__ = [
    "ComponentLoadError",
    "build_model",
    "build_stand_in_tokenizer",
    "build_tokenizer",
    "build_vggt_component",
]


class ComponentLoadError(RuntimeError):
    """A backbone failed to load; the message names the component and the original cause."""


def build_tokenizer(
    config: FIHModelConfig, tokenizer_dir: str | Path | None = None
) -> PreTrainedTokenizerBase:
    """The tokenizer folder of `config` (chat template included): Qwen2.5-VL's, or a folder in
    the same Hugging Face format such as the bundled data's word-level tokenizer
    (`habitat_fih.datasets.tokenizer`, for the tiny configs).

    Looks in `tokenizer_dir`, else `config.qwen.tokenizer_dir`, else `config.qwen.pretrained_dir`.
    `habitat_fih.models.spec.tokenizer_for` decides which tokenizer a config gets.

    Raises:
        FileNotFoundError: no directory is configured, or it lacks the tokenizer files (the
            message names them).
    """
    directory = tokenizer_dir or config.qwen.tokenizer_dir or config.qwen.pretrained_dir
    if directory is None:
        raise FileNotFoundError(
            "no Qwen2.5-VL tokenizer directory: set qwen.tokenizer_dir or qwen.pretrained_dir "
            "(a local copy of e.g. Qwen/Qwen2.5-VL-7B-Instruct), or pass a tokenizer to "
            "build_model"
        )
    return _load_tokenizer(str(directory), config.qwen.padding_side)


def build_vggt_component(config: FIHModelConfig) -> VGGT:
    """VGGT alone, as `build_model` builds it (read from `config.vggt_dir` when set, else
    random-init from `config.vggt`), on the current default device; e.g. for the geometry maps
    of ``fih-infer --heatmaps geometry``, which need no DINOv3 or LLM."""
    if config.vggt_dir is None:
        model = VGGT(config.vggt)
    else:
        try:
            model = load_vggt(config.vggt_dir, config=config.vggt)
        except (FileNotFoundError, ValueError) as err:
            raise ComponentLoadError(f"VGGT checkpoint {config.vggt_dir!r}: {err}") from err
        # load_vggt assigns CPU checkpoint tensors; follow the build device when one is active
        model = model.to(torch.empty(0).device)
    if config.vggt_lora.enabled:  # after the released weights: they use the plain key names
        inject_vggt_lora(model, config.vggt_lora)
    return model


def build_model(
    config: FIHModelConfig,
    tokenizer: PreTrainedTokenizerBase | None = None,
    device: str | torch.device | None = None,
) -> FIHModel:
    """Build the full model.

    Args:
        config: the model config.
        tokenizer: a tokenizer with Qwen's special tokens; None loads it from
            `qwen.tokenizer_dir` / `qwen.pretrained_dir` (random-init configs need one).
        device: build every module directly on this device (`"meta"` allocates nothing);
            None = the current default device. `config.device_allocation` is then applied.
            With `config.offload` (not on meta) everything is built on CPU, the offloaded
            components stay there and `device` becomes their execution device.

    Returns:
        `FIHModel` in the `finetune` stage, in train mode (frozen backbones in eval mode).

    Raises:
        ComponentLoadError: a checkpoint could not be read (the message names the component,
            the directory and the missing files or mismatched keys).
        ValueError: the components do not fit the config (e.g. LLM hidden size vs
            fusion.out_dim).
    """
    start = time.perf_counter()
    if tokenizer is None and config.qwen.pretrained_dir is None:
        tokenizer = build_tokenizer(config)
    offload = bool(config.offload) and str(device) != "meta"
    execution = torch.device(device) if device is not None else torch.empty(0).device
    if offload:
        device = "cpu"  # the offloaded components rest on CPU; the rest moves after the build
    ctx = torch.device(device) if device is not None else contextlib.nullcontext()
    with ctx:
        vggt = build_vggt_component(config)
        try:
            dinov3 = DINOv3Backbone(config.dinov3)
        except (FileNotFoundError, OSError, ValueError) as err:
            raise ComponentLoadError(
                f"DINOv3 ({config.dinov3.pretrained_dir or 'random init'}): {err}"
            ) from err
        try:
            qwen = QwenVLBackbone(config.qwen, tokenizer=tokenizer)
        except (FileNotFoundError, OSError) as err:
            raise ComponentLoadError(
                f"Qwen2.5-VL ({config.qwen.pretrained_dir or 'random init'}): {err}"
            ) from err
        model = FIHModel(config, vggt, dinov3, qwen)
    if not config.device_allocation.single_device:
        model.place(device if device is not None and str(device) != "meta" else None)
    if offload:
        model.enable_offload(execution, config.offload)
    logger.info("FIHModel built in %.1f s", time.perf_counter() - start)
    return model.train()


def build_stand_in_tokenizer(config: FIHModelConfig) -> PreTrainedTokenizerBase:
    """A small word-level tokenizer with Qwen's special tokens at the ids of
    `config.qwen.model_config` and a ChatML chat template.

    For random-init models built without data (benchmarks, meta-device checks, tests) when
    no tokenizer folder is configured. Words outside its ~150-word vocabulary map to one
    unknown token (it knows 15 of the 101 distinct words of the bundled train instructions,
    50 % of their 9,152 words), so prompts have roughly one token per word (the real
    tokenizer uses ~1.3 per word). Configs that train on the bundled data use its own
    tokenizer instead (``qwen.tokenizer_dir`` = ``data/tokenizer/synthetic_r2r``,
    `habitat_fih.datasets.tokenizer`); see `habitat_fih.models.spec.tokenizer_for`.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from habitat_fih.models.qwen_vl_backbone import CHATML_FALLBACK_TEMPLATE

    cfg = config.qwen.model_config
    if cfg is None:
        raise ValueError("a stand-in tokenizer is only for random-init configs (qwen.model_config)")
    text = cfg.get("text_config", {})
    vocab_size = int(text.get("vocab_size", 0))
    special = {
        "<|image_pad|>": int(cfg["image_token_id"]),
        "<|video_pad|>": int(cfg["video_token_id"]),
        "<|vision_start|>": int(cfg["vision_start_token_id"]),
        "<|vision_end|>": int(cfg["vision_end_token_id"]),
    }
    free = sorted(set(range(vocab_size)) - set(special.values()), reverse=True)
    for name in ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "[UNK]"):
        special[name] = free.pop(0)
    words = (
        "system user assistant you are a navigation agent frame current view instruction "
        "where does each keyframe lie in the walk go to turn left right stop and past near "
        "see keyframes from your so far : . , ? ! ( ) ):"
    ).split() + [str(i) for i in range(100)]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    if len(vocab) >= min(special.values()):
        raise ValueError(f"vocab_size {vocab_size} too small for a stand-in tokenizer")
    vocab.update(special)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        additional_special_tokens=[
            "<|image_pad|>",
            "<|video_pad|>",
            "<|vision_start|>",
            "<|vision_end|>",
            "<|im_start|>",
        ],
        padding_side=config.qwen.padding_side,
    )
    tokenizer.chat_template = CHATML_FALLBACK_TEMPLATE
    return tokenizer
