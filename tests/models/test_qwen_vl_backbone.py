"""Tests for habitat_fih.models.qwen_vl_backbone with a tiny random Qwen2.5-VL (CPU)."""

from __future__ import annotations

from pathlib import Path

import _tiny_qwen as _tiny  # tests/helpers (on sys.path via tests/conftest.py)
import pytest
import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from habitat_fih.models.qwen_vl_backbone import (
    LoRASettings,
    QwenVLBackbone,
    QwenVLBackboneConfig,
)

HIDDEN = _tiny.HIDDEN
IMAGE_ID = _tiny.SPECIAL_IDS["<|image_pad|>"]
INSTRUCTIONS = ["walk to the kitchen and stop near the table", "turn left"]
FRAMES = [[3, 12, 31], [0, 5, 9]]
GRID = (2, 3)
T = GRID[0] * GRID[1]


def _backbone(padding_side: str = "left", **kwargs) -> QwenVLBackbone:
    torch.manual_seed(0)
    cfg = QwenVLBackboneConfig(
        model_config=_tiny.tiny_qwen_config_dict(),
        dtype="float32",
        padding_side=padding_side,
        **kwargs,
    )
    backbone = QwenVLBackbone(cfg, tokenizer=_tiny.tiny_tokenizer())
    return backbone.eval()


def _fused(b: int = 2, f: int = 3, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(b, f, T, HIDDEN, generator=gen)


def test_build_inputs_layout() -> None:
    backbone = _backbone()
    inputs = backbone.build_inputs(INSTRUCTIONS, FRAMES, T, GRID)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    assert ids.shape == mask.shape and ids.shape[0] == 2
    assert inputs["image_grid_thw"].tolist() == [[1, 4, 6]] * 6  # t*h*w/4 = T per slot
    assert inputs["frame_indices"].tolist() == FRAMES
    assert torch.equal(inputs["mm_token_type_ids"], (ids == IMAGE_ID).int())
    # left padding: the shorter instruction is padded at the front
    assert mask[0].all() and not mask[1, 0] and mask[1, -1]
    text = backbone.tokenizer.decode(ids[1][mask[1].bool()])
    assert text.index("frame 0 :") < text.index("frame 5 :") < text.index("current view ( frame 9")
    assert text.index("current view") < text.index("instruction : turn left")
    assert text.count("<|vision_start|>") == 3 and text.count("<|image_pad|>") == 3 * T
    assert text.rstrip().endswith("<|im_start|> assistant")
    with pytest.raises(ValueError, match="tokens_per_frame"):
        backbone.build_inputs(INSTRUCTIONS, FRAMES, T + 1, GRID)
    with pytest.raises(ValueError, match="instructions"):
        backbone.build_inputs(INSTRUCTIONS[:1], FRAMES, T, GRID)


def test_output_shapes() -> None:
    backbone = _backbone()
    inputs = backbone.build_inputs(INSTRUCTIONS, FRAMES, T, GRID)
    with torch.no_grad():
        out = backbone(_fused(), **inputs, output_hidden_states=True)
    seq = inputs["input_ids"].shape[1]
    assert out["visual_hidden"].shape == (2, 3, T, HIDDEN)
    assert out["last_hidden"].shape == (2, HIDDEN)
    assert out["sequence_hidden"].shape == (2, seq, HIDDEN)
    assert out["position_ids"].shape == (3, 2, seq)
    assert len(out["hidden_states"]) == 3  # embeddings + 2 layers
    assert torch.isfinite(out["sequence_hidden"][inputs["attention_mask"].bool()]).all()
    torch.testing.assert_close(out["last_hidden"], out["sequence_hidden"][:, -1])  # left pad


def test_fused_features_land_at_placeholders() -> None:
    backbone = _backbone()
    inputs = backbone.build_inputs(INSTRUCTIONS, FRAMES, T, GRID)
    ids = inputs["input_ids"]
    with torch.no_grad():
        a = backbone(_fused(seed=1), **inputs)
        b = backbone(_fused(seed=2), **inputs)
    for i in range(2):
        first = int((ids[i] == IMAGE_ID).nonzero()[0])
        real = inputs["attention_mask"][i].bool()
        before = real.clone()
        before[first:] = False
        torch.testing.assert_close(
            a["sequence_hidden"][i, before], b["sequence_hidden"][i, before], rtol=0, atol=0
        )
    assert not torch.allclose(a["visual_hidden"], b["visual_hidden"])
    assert not torch.allclose(a["last_hidden"], b["last_hidden"])

    # the embeddings the LM sees hold the fused tokens exactly at the placeholders, in order
    with torch.no_grad():
        out = backbone(_fused(seed=1), **inputs, output_hidden_states=True)
    embeds = out["hidden_states"][0]
    torch.testing.assert_close(embeds[ids == IMAGE_ID].view(2, 3, T, HIDDEN), _fused(seed=1))


def _reference_position_ids(ids: torch.Tensor, mask: torch.Tensor, grid: tuple[int, int]):
    """MRoPE positions written out by hand: text advances by 1 on all three axes; a th x tw
    image starting at s gets (s, s + row, s + col) and the next text starts at s + max(th, tw)."""
    th, tw = grid
    out = torch.zeros(3, *ids.shape, dtype=torch.long)
    for b in range(ids.shape[0]):
        cols = mask[b].nonzero().flatten().tolist()
        pos, k = 0, 0
        while k < len(cols):
            if ids[b, cols[k]] != IMAGE_ID:
                out[:, b, cols[k]] = pos
                pos, k = pos + 1, k + 1
                continue
            for r in range(th):
                for c in range(tw):
                    out[:, b, cols[k]] = torch.tensor([pos, pos + r, pos + c])
                    k += 1
            pos += max(th, tw)
    return out


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_position_ids_match_get_rope_index(padding_side: str) -> None:
    backbone = _backbone(padding_side)
    inputs = backbone.build_inputs(INSTRUCTIONS, FRAMES, T, GRID)
    with torch.no_grad():
        out = backbone(_fused(), **inputs)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    expected = _reference_position_ids(ids, mask, GRID)
    assert torch.equal(out["position_ids"], expected)
    ref, _ = backbone.vlm.get_rope_index(
        ids,
        mm_token_type_ids=(ids == IMAGE_ID).int(),
        image_grid_thw=inputs["image_grid_thw"],
        attention_mask=mask,
    )
    assert torch.equal(out["position_ids"], ref)


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_padded_batch_matches_single_samples(padding_side: str) -> None:
    backbone = _backbone(padding_side)
    fused = _fused()
    inputs = backbone.build_inputs(INSTRUCTIONS, FRAMES, T, GRID)
    assert not inputs["attention_mask"].all()  # the batch really is padded
    with torch.no_grad():
        batch = backbone(fused, **inputs)
        for i in range(2):
            single_in = backbone.build_inputs(INSTRUCTIONS[i : i + 1], FRAMES[i : i + 1], T, GRID)
            single = backbone(fused[i : i + 1], **single_in)
            torch.testing.assert_close(
                batch["visual_hidden"][i], single["visual_hidden"][0], rtol=1e-4, atol=1e-5
            )
            torch.testing.assert_close(
                batch["last_hidden"][i], single["last_hidden"][0], rtol=1e-4, atol=1e-5
            )


def test_lora_only_adapters_train_and_gradients_flow() -> None:
    backbone = _backbone(
        lora=LoRASettings(enabled=True, r=4, alpha=8, dropout=0.0),
        gradient_checkpointing=True,
    )
    trainable = [n for n, p in backbone.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    # 2 layers x q/k/v/o x (A, B)
    assert len(trainable) == 2 * 4 * 2
    assert backbone.language_model.gradient_checkpointing
    counts = backbone.trainable_parameter_counts()
    assert counts["lora"] > 0 and counts["language_model"] == 0

    backbone.train()
    inputs = backbone.build_inputs(INSTRUCTIONS, FRAMES, T, GRID)
    fused = _fused().requires_grad_(True)
    out = backbone(fused, **inputs)
    (out["visual_hidden"].square().mean() + out["last_hidden"].square().mean()).backward()
    assert fused.grad is not None and fused.grad.abs().sum() > 0
    lora_b = [p for n, p in backbone.named_parameters() if "lora_B" in n]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in lora_b)
    frozen = [p for n, p in backbone.named_parameters() if "lora_" not in n]
    assert all(p.grad is None for p in frozen)


def test_frame_index_embedding_is_a_zero_init_trainable_addition() -> None:
    backbone = _backbone(frame_index_embedding=True, max_frame_index=64)
    plain = _backbone()
    inputs = backbone.build_inputs(INSTRUCTIONS, FRAMES, T, GRID)
    with torch.no_grad():
        torch.testing.assert_close(
            backbone(_fused(), **inputs)["visual_hidden"],
            plain(_fused(), **inputs)["visual_hidden"],
        )
        backbone.frame_embedding.weight.normal_()
        changed = backbone(_fused(), **inputs)["visual_hidden"]
    assert not torch.allclose(changed, plain(_fused(), **inputs)["visual_hidden"])
    assert backbone.frame_embedding.weight.requires_grad
    inputs["frame_indices"] = torch.tensor([[3, 12, 64], [0, 5, 9]])
    with pytest.raises(ValueError, match="outside"):
        backbone(_fused(), **inputs)


def test_forward_rejects_bad_shapes() -> None:
    backbone = _backbone()
    inputs = backbone.build_inputs(INSTRUCTIONS, FRAMES, T, GRID)
    with pytest.raises(ValueError, match="B, F, T, D"):
        backbone(torch.randn(2, 3 * T, HIDDEN), **inputs)
    with pytest.raises(ValueError, match="hidden size"):
        backbone(torch.randn(2, 3, T, HIDDEN + 1), **inputs)
    with pytest.raises(ValueError, match="placeholders"):
        backbone(torch.randn(2, 2, T, HIDDEN), **inputs)
    bad = dict(inputs, image_grid_thw=torch.tensor([[1, 2, 2]] * 6))
    with pytest.raises(ValueError, match="image_grid_thw"):
        backbone(_fused(), **bad)


def test_missing_pretrained_dir_names_path(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_qwen"
    with pytest.raises(FileNotFoundError, match="no_such_qwen"):
        QwenVLBackbone(QwenVLBackboneConfig(pretrained_dir=str(missing)))
    missing.mkdir()
    (missing / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        QwenVLBackbone(QwenVLBackboneConfig(pretrained_dir=str(missing)))
    with pytest.raises(ValueError, match="exactly one"):
        QwenVLBackboneConfig()


def test_load_from_local_hf_dir(tmp_path: Path) -> None:
    torch.manual_seed(0)
    full = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**_tiny.tiny_qwen_config_dict()))
    full.save_pretrained(tmp_path / "qwen")
    _tiny.tiny_tokenizer().save_pretrained(tmp_path / "qwen")
    backbone = QwenVLBackbone(
        QwenVLBackboneConfig(pretrained_dir=str(tmp_path / "qwen"), dtype="float32")
    ).eval()
    assert backbone.vlm.visual is None  # dropped: never run
    ref = full.model.language_model.state_dict()
    for name, value in backbone.language_model.state_dict().items():
        torch.testing.assert_close(value, ref[name], rtol=0, atol=0)
    inputs = backbone.build_inputs(INSTRUCTIONS, FRAMES, T, GRID)
    with torch.no_grad():
        out = backbone(_fused(), **inputs)
    assert out["visual_hidden"].shape == (2, 3, T, HIDDEN)
