"""Qwen2.5-VL language backbone fed with our own fused visual tokens.

``QwenVLBackbone`` wraps transformers' ``Qwen2_5_VLModel`` (loaded from a local Hugging Face
directory, or randomly initialised from a ``Qwen2_5_VLConfig`` dictionary for tests). Qwen's own
vision tower is never run: the fused VGGT + DINOv3 tokens (``habitat_fih.models.fusion``) are
scattered into the ``<|image_pad|>`` placeholder positions of the token embeddings, MRoPE
position ids come from ``Qwen2_5_VLModel.get_rope_index`` (each visual slot is declared as an
image with ``grid_thw = (1, m*th, m*tw)``, ``m`` = spatial merge size 2, so it owns exactly
``T = th*tw`` placeholders laid out on a ``th x tw`` grid), and the language model returns the
hidden states read out at every visual token and at the final non-pad position.

Prompt layout (``build_inputs``), inside one user turn of the model's chat template::

    Frame 3: <|vision_start|><|image_pad|> x T<|vision_end|>
    Frame 12: <|vision_start|><|image_pad|> x T<|vision_end|>
    ...
    Current view (frame 31): <|vision_start|><|image_pad|> x T<|vision_end|>
    Instruction: <instruction>
    <question>

followed by the assistant generation prompt. The frame-index signal is the text marker
("Frame 12:"), which the pretrained LLM reads as ordinary text. Optionally
(``frame_index_embedding=True``) a learned ``nn.Embedding(max_frame_index, D)``, initialised to
zero so it starts as a no-op, is added to every visual token of a slot as well.

LoRA (peft) can be injected into the language model's attention projections; the base LLM is
frozen with ``freeze_llm``; gradient checkpointing is a flag.
"""

from __future__ import annotations

import inspect
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoTokenizer,
    PreTrainedTokenizerBase,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLModel,
)

from habitat_fih.models.dinov3_backbone import check_hf_checkpoint_dir

logger = logging.getLogger(__name__)

QWEN_WEIGHT_FILES: tuple[str, ...] = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
#: A tokenizer directory needs tokenizer_config.json and either tokenizer.json or vocab+merges.
QWEN_TOKENIZER_FILES: tuple[str, ...] = ("tokenizer_config.json", "tokenizer.json")

IMAGE_PAD = "<|image_pad|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"

#: ChatML template used only when a tokenizer ships without one (Qwen's format).
CHATML_FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


@dataclass
class LoRASettings:
    """peft LoRA on the language model (never the unused vision tower)."""

    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )

    def __post_init__(self) -> None:
        if self.r <= 0:
            raise ValueError(f"LoRASettings.r must be positive, got {self.r!r}")
        if self.alpha <= 0:
            raise ValueError(f"LoRASettings.alpha must be positive, got {self.alpha!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRASettings.dropout must be in [0, 1), got {self.dropout!r}")
        if not self.target_modules:
            raise ValueError("LoRASettings.target_modules must not be empty")


@dataclass
class QwenVLBackboneConfig:
    """Typed config for :class:`QwenVLBackbone`.

    Attributes:
        pretrained_dir: local Hugging Face directory of a Qwen2.5-VL checkpoint (model,
            tokenizer and chat template), e.g. a copy of ``Qwen/Qwen2.5-VL-3B-Instruct``.
        model_config: ``Qwen2_5_VLConfig`` keyword arguments for random init (tests).
        tokenizer_dir: where to load the tokenizer from; None means ``pretrained_dir``. With
            ``model_config`` a tokenizer must come from here or be passed to the constructor.
        dtype: parameter dtype, ``float32``, ``bfloat16`` or ``float16``.
        attn_implementation: transformers attention backend (``sdpa``, ``eager``,
            ``flash_attention_2``).
        gradient_checkpointing: non-reentrant activation checkpointing in the decoder layers.
        freeze_llm: freeze every base language-model weight (LoRA and the frame-index
            embedding stay trainable).
        keep_vision_tower: keep Qwen's (unused) vision tower in memory; False drops it.
        lora: LoRA settings.
        frame_index_embedding: add a learned, zero-initialised frame-index embedding to the
            visual tokens on top of the text marker.
        max_frame_index: size of that embedding table (frame indices must be below it).
        padding_side: ``left`` or ``right`` batch padding.
        system_prompt: system turn of the chat.
        frame_marker: text before each keyframe's placeholders; ``{index}`` is its frame index.
        current_marker: text before the current view's placeholders; ``{index}`` as above.
        question: text after the instruction.
    """

    pretrained_dir: str | None = None
    model_config: dict[str, Any] | None = None
    tokenizer_dir: str | None = None
    dtype: str = "bfloat16"
    attn_implementation: str = "sdpa"
    gradient_checkpointing: bool = False
    freeze_llm: bool = True
    keep_vision_tower: bool = False
    lora: LoRASettings = field(default_factory=LoRASettings)
    frame_index_embedding: bool = False
    max_frame_index: int = 4096
    padding_side: str = "left"
    system_prompt: str = (
        "You are a navigation agent. You see keyframes from your walk so far and your current view."
    )
    frame_marker: str = "Frame {index}:"
    current_marker: str = "Current view (frame {index}):"
    question: str = "Where does each keyframe lie in the current view?"

    def __post_init__(self) -> None:
        if (self.pretrained_dir is None) == (self.model_config is None):
            raise ValueError(
                "QwenVLBackboneConfig needs exactly one of pretrained_dir and model_config, got "
                f"pretrained_dir={self.pretrained_dir!r}, model_config={self.model_config!r}"
            )
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        if self.padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {self.padding_side!r}")
        if self.max_frame_index <= 0:
            raise ValueError(f"max_frame_index must be positive, got {self.max_frame_index!r}")
        if isinstance(self.lora, dict):
            self.lora = LoRASettings(**self.lora)


def _check_tokenizer_dir(path: str) -> Path:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"Qwen2.5-VL tokenizer directory {str(root)!r} does not exist; expected "
            "tokenizer_config.json and tokenizer.json (or vocab.json + merges.txt)"
        )
    missing = []
    if not (root / "tokenizer_config.json").is_file():
        missing.append("tokenizer_config.json")
    has_fast = (root / "tokenizer.json").is_file()
    has_slow = (root / "vocab.json").is_file() and (root / "merges.txt").is_file()
    if not (has_fast or has_slow):
        missing.append("tokenizer.json (or vocab.json + merges.txt)")
    if missing:
        raise FileNotFoundError(
            f"Qwen2.5-VL tokenizer directory {str(root)!r} lacks {', '.join(missing)}"
        )
    return root


def _load_tokenizer(path: str, padding_side: str) -> PreTrainedTokenizerBase:
    root = _check_tokenizer_dir(path)
    tokenizer = AutoTokenizer.from_pretrained(str(root), local_files_only=True)
    if tokenizer.chat_template is None:
        # Qwen2.5-VL repos keep the template in the processor's chat_template.json(/.jinja)
        jinja, js = root / "chat_template.jinja", root / "chat_template.json"
        if jinja.is_file():
            tokenizer.chat_template = jinja.read_text()
        elif js.is_file():
            tokenizer.chat_template = json.loads(js.read_text())["chat_template"]
    tokenizer.padding_side = padding_side
    return tokenizer


class QwenVLBackbone(nn.Module):
    """Qwen2.5-VL language model consuming fused spatial tokens in place of image tokens."""

    def __init__(
        self, config: QwenVLBackboneConfig, tokenizer: PreTrainedTokenizerBase | None = None
    ) -> None:
        super().__init__()
        self.config = config
        dtype = _DTYPES[config.dtype]
        if config.pretrained_dir is not None:
            root = check_hf_checkpoint_dir(config.pretrained_dir, QWEN_WEIGHT_FILES, "Qwen2.5-VL")
            full = Qwen2_5_VLForConditionalGeneration.from_pretrained(
                str(root),
                local_files_only=True,
                dtype=dtype,
                attn_implementation=config.attn_implementation,
            )
            vlm: Qwen2_5_VLModel = full.model  # the LM head is not needed: we read hidden states
            del full
        else:
            assert config.model_config is not None
            vlm = Qwen2_5_VLModel._from_config(
                Qwen2_5_VLConfig(**config.model_config),
                dtype=dtype,
                attn_implementation=config.attn_implementation,
            )
        if not config.keep_vision_tower:
            vlm.visual = None  # never run: our fused tokens replace its output
        self.vlm = vlm
        vlm_cfg = vlm.config
        self.hidden_size: int = int(vlm_cfg.text_config.hidden_size)
        self.image_token_id: int = int(vlm_cfg.image_token_id)
        self.spatial_merge_size: int = int(vlm_cfg.vision_config.spatial_merge_size)

        if tokenizer is None:
            tok_dir = config.tokenizer_dir or config.pretrained_dir
            tokenizer = _load_tokenizer(tok_dir, config.padding_side) if tok_dir else None
        else:
            tokenizer.padding_side = config.padding_side
        self.tokenizer = tokenizer
        if tokenizer is not None:
            self._check_tokenizer(tokenizer)

        self.frame_embedding: nn.Embedding | None = None
        if config.frame_index_embedding:
            self.frame_embedding = nn.Embedding(config.max_frame_index, self.hidden_size)
            nn.init.zeros_(self.frame_embedding.weight)
            self.frame_embedding.to(dtype)

        if config.lora.enabled:
            self._inject_lora(config.lora)
        self.freeze_base(config.freeze_llm)
        if config.gradient_checkpointing:
            self._enable_checkpointing()
        self._rope_takes_mm_types = (
            "mm_token_type_ids" in inspect.signature(vlm.get_rope_index).parameters
        )
        logger.info(
            "Qwen2.5-VL backbone: %s, hidden %d, %d layers, LoRA=%s, trainable %s",
            config.pretrained_dir or "random init",
            self.hidden_size,
            vlm_cfg.text_config.num_hidden_layers,
            config.lora.enabled,
            self.trainable_parameter_counts(),
        )

    # ------------------------------------------------------------------ setup helpers
    @property
    def language_model(self) -> nn.Module:
        """The Qwen2.5-VL text decoder (``Qwen2_5_VLTextModel``)."""
        return self.vlm.language_model

    def _check_tokenizer(self, tokenizer: PreTrainedTokenizerBase) -> None:
        for token in (IMAGE_PAD, VISION_START, VISION_END):
            ids = tokenizer.convert_tokens_to_ids(token)
            if ids is None or ids == tokenizer.unk_token_id:
                raise ValueError(f"tokenizer has no special token {token}")
        got = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        if got != self.image_token_id:
            raise ValueError(
                f"tokenizer maps {IMAGE_PAD} to {got}, the model expects {self.image_token_id}"
            )
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    def _inject_lora(self, settings: LoRASettings) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        lora_cfg = LoraConfig(
            r=settings.r,
            lora_alpha=settings.alpha,
            lora_dropout=settings.dropout,
            target_modules=list(settings.target_modules),
            bias="none",
        )
        inject_adapter_in_model(lora_cfg, self.language_model)

    def _enable_checkpointing(self) -> None:
        lm = self.language_model
        kwargs = {"use_reentrant": False}
        if hasattr(lm, "activation_checkpointing_enable"):  # transformers >= 5.2x
            lm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:  # older transformers (e.g. 5.17 on the device image)
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    def freeze_base(self, frozen: bool = True) -> None:
        """Freeze (or unfreeze) the base weights. LoRA adapters and the frame-index embedding
        stay trainable; the vision tower, when kept, is always frozen (it is never run)."""
        for name, param in self.vlm.named_parameters():
            if name.startswith("visual."):
                param.requires_grad_(False)
            elif "lora_" in name:
                param.requires_grad_(True)
            else:
                param.requires_grad_(not frozen)
        if self.frame_embedding is not None:
            self.frame_embedding.requires_grad_(True)

    def trainable_parameter_counts(self) -> dict[str, int]:
        """Trainable parameter counts per component (for logging)."""
        counts = {"language_model": 0, "lora": 0, "frame_embedding": 0, "vision_tower": 0}
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            if "lora_" in name:
                counts["lora"] += param.numel()
            elif name.startswith("frame_embedding."):
                counts["frame_embedding"] += param.numel()
            elif name.startswith("vlm.visual."):
                counts["vision_tower"] += param.numel()
            else:
                counts["language_model"] += param.numel()
        return counts

    # ------------------------------------------------------------------ inputs
    def _user_text(self, instruction: str, frames: list[int], tokens_per_frame: int) -> str:
        cfg = self.config
        block = f"{VISION_START}{IMAGE_PAD * tokens_per_frame}{VISION_END}"
        lines = [f"{cfg.frame_marker.format(index=i)} {block}" for i in frames[:-1]]
        lines.append(f"{cfg.current_marker.format(index=frames[-1])} {block}")
        lines.append(f"Instruction: {instruction.strip()}")
        lines.append(cfg.question)
        return "\n".join(lines)

    def build_inputs(
        self,
        instructions: list[str],
        frame_indices: torch.Tensor | list[list[int]],
        tokens_per_frame: int,
        grid: tuple[int, int],
        device: torch.device | str | None = None,
    ) -> dict[str, torch.Tensor]:
        """Tokenise the chat prompts of a batch.

        Args:
            instructions: B instruction strings.
            frame_indices: ``[B, F]`` original frame index of each visual slot; slots ``0..F-2``
                are keyframes, slot ``F-1`` is the current view.
            tokens_per_frame: T, placeholders per slot; must equal ``th * tw``.
            grid: ``(th, tw)``, the fused token grid of each slot.
            device: device of the returned tensors (default CPU).

        Returns:
            dict with ``input_ids [B, L]`` (long), ``attention_mask [B, L]`` (long, 0 at
            padding, padded on ``config.padding_side``), ``mm_token_type_ids [B, L]`` (int, 1
            at image placeholders), ``image_grid_thw [B*F, 3]`` (long, ``(1, m*th, m*tw)``
            per slot, batch-major) and ``frame_indices [B, F]`` (long). The dict can be passed
            as ``**kwargs`` to :meth:`forward`.
        """
        if self.tokenizer is None:
            raise RuntimeError(
                "QwenVLBackbone has no tokenizer: set pretrained_dir/tokenizer_dir or pass one"
            )
        frames = torch.as_tensor(frame_indices, dtype=torch.long)
        if frames.ndim != 2 or frames.shape[1] < 1:
            raise ValueError(f"frame_indices must be [B, F] with F >= 1, got {tuple(frames.shape)}")
        b, f = frames.shape
        if len(instructions) != b:
            raise ValueError(f"{len(instructions)} instructions for a batch of {b} frame lists")
        th, tw = grid
        if th * tw != tokens_per_frame or th <= 0 or tw <= 0:
            raise ValueError(f"grid {grid} does not hold tokens_per_frame={tokens_per_frame}")
        texts = []
        for instruction, row in zip(instructions, frames.tolist(), strict=True):
            messages = [
                {"role": "system", "content": self.config.system_prompt},
                {"role": "user", "content": self._user_text(instruction, row, tokens_per_frame)},
            ]
            texts.append(
                self.tokenizer.apply_chat_template(
                    messages,
                    tokenize=False,
                    add_generation_prompt=True,
                    chat_template=self.tokenizer.chat_template or CHATML_FALLBACK_TEMPLATE,
                )
            )
        enc = self.tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
        input_ids = enc["input_ids"].long()
        attention_mask = enc["attention_mask"].long()
        image_mask = input_ids == self.image_token_id
        counts = image_mask.sum(-1)
        if not bool((counts == f * tokens_per_frame).all()):
            raise ValueError(
                f"prompt holds {counts.tolist()} {IMAGE_PAD} tokens per sample, expected "
                f"{f}x{tokens_per_frame}; does an instruction contain a special token?"
            )
        m = self.spatial_merge_size
        grid_thw = torch.tensor([1, m * th, m * tw], dtype=torch.long).repeat(b * f, 1)
        out = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "mm_token_type_ids": image_mask.int(),
            "image_grid_thw": grid_thw,
            "frame_indices": frames,
        }
        return {k: v.to(device) for k, v in out.items()} if device is not None else out

    def position_ids(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        image_grid_thw: torch.Tensor,
        mm_token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """MRoPE position ids ``[3, B, L]`` from ``Qwen2_5_VLModel.get_rope_index`` (padding
        positions get 0)."""
        kwargs: dict[str, Any] = {
            "image_grid_thw": image_grid_thw,
            "attention_mask": attention_mask,
        }
        if self._rope_takes_mm_types:  # transformers >= 5.x needs the modality types
            if mm_token_type_ids is None:
                mm_token_type_ids = (input_ids == self.image_token_id).int()
            kwargs["mm_token_type_ids"] = mm_token_type_ids
        position_ids, _ = self.vlm.get_rope_index(input_ids, **kwargs)
        return position_ids

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        fused_tokens: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        image_grid_thw: torch.Tensor,
        mm_token_type_ids: torch.Tensor | None = None,
        frame_indices: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> dict[str, Any]:
        """Run the language model with fused tokens in the image-placeholder slots.

        Args:
            fused_tokens: ``[B, F, T, D]`` visual tokens per slot (``D`` = LLM hidden size),
                slot order as in ``build_inputs`` (keyframes, then the current view).
            input_ids: ``[B, L]`` with exactly ``F*T`` ``<|image_pad|>`` tokens per row.
            attention_mask: ``[B, L]``, 1 for real tokens, 0 for padding.
            image_grid_thw: ``[B*F, 3]``, ``(1, m*th, m*tw)`` per slot with ``th*tw = T``.
            mm_token_type_ids: ``[B, L]`` modality types (1 at image placeholders); derived
                from ``input_ids`` when None.
            frame_indices: ``[B, F]`` original frame indices; needed only with
                ``frame_index_embedding``.
            output_hidden_states: also return every decoder layer's hidden states.

        Returns:
            dict with
            - ``visual_hidden``: ``[B, F, T, D]`` final hidden states at the visual tokens.
            - ``last_hidden``: ``[B, D]`` final hidden state at the last non-pad position.
            - ``sequence_hidden``: ``[B, L, D]`` final hidden states of the whole sequence.
            - ``position_ids``: ``[3, B, L]`` the MRoPE position ids used.
            - ``hidden_states`` (only if ``output_hidden_states``): tuple of ``[B, L, D]``,
              the embeddings and each decoder layer's output (transformers' convention).
        """
        if fused_tokens.ndim != 4:
            raise ValueError(f"fused_tokens must be [B, F, T, D], got {tuple(fused_tokens.shape)}")
        b, f, t, d = fused_tokens.shape
        if d != self.hidden_size:
            raise ValueError(f"fused_tokens dim {d} != LLM hidden size {self.hidden_size}")
        if input_ids.shape[0] != b or attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"input_ids {tuple(input_ids.shape)} / attention_mask "
                f"{tuple(attention_mask.shape)} do not match batch {b}"
            )
        image_mask = input_ids == self.image_token_id  # [B, L]
        counts = image_mask.sum(-1)
        if not bool((counts == f * t).all()):
            raise ValueError(
                f"input_ids hold {counts.tolist()} image placeholders per sample, fused_tokens "
                f"need {f}x{t}"
            )
        m2 = self.spatial_merge_size**2
        if image_grid_thw.shape != (b * f, 3) or not bool(
            (image_grid_thw.prod(-1) // m2 == t).all()
        ):
            raise ValueError(
                f"image_grid_thw must be [{b * f}, 3] with t*h*w/{m2} = {t} per slot, got "
                f"{image_grid_thw.tolist()}"
            )

        embed = self.language_model.get_input_embeddings()
        inputs_embeds = embed(input_ids)  # [B, L, D]
        visual = fused_tokens.to(inputs_embeds.dtype)  # [B, F, T, D]
        if self.frame_embedding is not None:
            if frame_indices is None:
                raise ValueError("frame_index_embedding is on: forward needs frame_indices")
            frame_indices = frame_indices.to(input_ids.device).long()
            if frame_indices.shape != (b, f):
                raise ValueError(
                    f"frame_indices must be [{b}, {f}], got {tuple(frame_indices.shape)}"
                )
            if bool((frame_indices < 0).any()) or bool(
                (frame_indices >= self.config.max_frame_index).any()
            ):
                raise ValueError(
                    f"frame indices {frame_indices.tolist()} outside [0, "
                    f"{self.config.max_frame_index})"
                )
            visual = visual + self.frame_embedding(frame_indices)[:, :, None, :]  # [B, F, T, D]
        # masked_scatter fills the True positions in row-major order: sample by sample, slot by
        # slot, token by token -- the order of fused_tokens.reshape(-1, D).
        inputs_embeds = inputs_embeds.masked_scatter(
            image_mask[..., None], visual.reshape(b * f * t, d)
        )  # [B, L, D]

        position_ids = self.position_ids(
            input_ids, attention_mask, image_grid_thw, mm_token_type_ids
        )  # [3, B, L]
        out = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
            output_hidden_states=output_hidden_states,
        )
        hidden = out.last_hidden_state  # [B, L, D]
        visual_hidden = hidden[image_mask].reshape(b, f, t, d)  # [B, F, T, D]
        seq_len = input_ids.shape[1]
        positions = torch.arange(seq_len, device=input_ids.device)
        last_index = (attention_mask.long() * positions).argmax(-1)  # [B] last non-pad
        last_hidden = hidden[torch.arange(b, device=hidden.device), last_index]  # [B, D]
        result: dict[str, Any] = {
            "visual_hidden": visual_hidden,
            "last_hidden": last_hidden,
            "sequence_hidden": hidden,
            "position_ids": position_ids,
        }
        if output_hidden_states:
            result["hidden_states"] = out.hidden_states
        return result
