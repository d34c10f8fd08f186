"""GPU checks of component offload (`habitat_fih.models.offload`), run on a lent GPU with
``make test-gpu`` (not part of the CPU suite: CI has no GPU). The CPU suite covers the rest
(tests/models/test_offload.py).
"""

from __future__ import annotations

import torch
from test_offload import TEXTS, inputs, tiny_model  # tests/models (conftest.py)


@torch.no_grad()
def test_cuda_offload_pins_and_moves() -> None:
    model = tiny_model()
    frames, _, indices = inputs()
    model.to("cuda")
    expected = model(frames.cuda(), None, indices.cuda(), TEXTS)
    offload = model.enable_offload("cuda")
    try:
        assert {p.device.type for p in model.vggt.parameters()} == {"cpu"}
        assert next(model.fusion.parameters()).device.type == "cuda"
        seen = []
        handle = model.qwen.register_forward_pre_hook(
            lambda m, a: seen.append({p.device.type for p in m.parameters()})
        )
        out = model(frames.cuda(), None, indices.cuda(), TEXTS)
        handle.remove()
        assert seen == [{"cuda"}]
        assert all(p.is_pinned() for p in model.vggt.parameters())
        torch.testing.assert_close(out.heatmap_logits, expected.heatmap_logits)
        assert offload.totals().transfers == 6 and offload.totals().seconds > 0
    finally:
        model.disable_offload()
