"""Test helpers: a tiny random Qwen2.5-VL config and a small word-level tokenizer.

The tokenizer carries the Qwen special tokens (``<|image_pad|>``, ``<|vision_start|>``, ...)
at the ids the tiny config uses and a ChatML chat template, so ``QwenVLBackbone`` can be
exercised end to end on CPU without any downloaded weights.
"""

from __future__ import annotations

from typing import Any

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

VOCAB_SIZE = 200
HIDDEN = 32
SPECIAL_IDS: dict[str, int] = {
    "<|image_pad|>": 180,
    "<|video_pad|>": 181,
    "<|vision_start|>": 182,
    "<|vision_end|>": 183,
    "<|im_start|>": 184,
    "<|im_end|>": 185,
    "<|endoftext|>": 186,
    "[UNK]": 187,
}

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_WORDS = (
    "system user assistant you are a helpful navigation agent frame current view "
    "instruction question where does each keyframe lie in the walk to kitchen and stop "
    "go past table turn left right door bedroom exit hallway wait near stairs up down "
    "see keyframes from your so far : . , ? ! - ' \" ( ) ):"
).split()


def tiny_qwen_config_dict() -> dict[str, Any]:
    """Keyword arguments for a tiny ``Qwen2_5_VLConfig`` (hidden 32, 2 layers, head_dim 8)."""
    return {
        "text_config": {
            "vocab_size": VOCAB_SIZE,
            "hidden_size": HIDDEN,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "rope_parameters": {
                "rope_type": "default",
                "mrope_section": [1, 1, 2],  # sums to head_dim / 2 = 4
                "rope_theta": 10000.0,
            },
            "pad_token_id": SPECIAL_IDS["<|endoftext|>"],
            "bos_token_id": SPECIAL_IDS["<|endoftext|>"],
            "eos_token_id": SPECIAL_IDS["<|im_end|>"],
        },
        "vision_config": {
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 2,
            "out_hidden_size": HIDDEN,
            "fullatt_block_indexes": [0],
        },
        "image_token_id": SPECIAL_IDS["<|image_pad|>"],
        "video_token_id": SPECIAL_IDS["<|video_pad|>"],
        "vision_start_token_id": SPECIAL_IDS["<|vision_start|>"],
        "vision_end_token_id": SPECIAL_IDS["<|vision_end|>"],
    }


def tiny_tokenizer(padding_side: str = "left") -> PreTrainedTokenizerFast:
    """A word-level tokenizer with the Qwen special tokens at ``SPECIAL_IDS``."""
    vocab: dict[str, int] = {}
    for word in _WORDS:
        vocab.setdefault(word, len(vocab))
    for digit in range(100):
        vocab.setdefault(str(digit), len(vocab))
    if len(vocab) >= min(SPECIAL_IDS.values()):
        raise RuntimeError(f"test vocabulary too large: {len(vocab)} words")
    vocab.update(SPECIAL_IDS)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        additional_special_tokens=[
            t for t in SPECIAL_IDS if t not in ("[UNK]", "<|endoftext|>", "<|im_end|>")
        ],
        padding_side=padding_side,
    )
    tok.chat_template = CHATML_TEMPLATE
    for token, idx in SPECIAL_IDS.items():
        got = tok.convert_tokens_to_ids(token)
        if got != idx:
            raise RuntimeError(f"special token {token} got id {got}, expected {idx}")
    return tok
