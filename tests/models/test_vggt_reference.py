"""`FIHModelConfig.vggt_reference`: which frame VGGT reads first (its reference frame).

The reference is VGGT itself, called directly on the frames in the stated order: with
``current`` the model's geometry at every slot must be VGGT's output for [current view, then
the other valid frames oldest first], put back at the slots; acting with a `FrameCache` must
give the same numbers; ``first`` is VGGT on the frames in slot order.
"""

from __future__ import annotations

import _tiny_qwen as _tiny  # tests/helpers (on sys.path via tests/conftest.py)
import pytest
import torch

from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.factory import build_model
from habitat_fih.models.fih_model import FIHModel
from habitat_fih.models.frame_cache import FrameCache
from habitat_fih.models.history_encoding import encode_history

R = 32
TOL = dict(atol=1e-5, rtol=1e-5)
TEXTS = ["walk to the kitchen and stop", "turn left past the table"]
KEYS = ("pose_enc", "depth", "world_points")


def tiny_model(**overrides) -> FIHModel:
    torch.manual_seed(0)
    return build_model(
        FIHModelConfig.tiny(vggt_heads="all", **overrides), tokenizer=_tiny.tiny_tokenizer()
    ).eval()


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two samples of 6 slots: sample 0 all valid, sample 1 with padding at slots 0 and 3 (its
    current view is slot 5, the last valid one)."""
    frames = torch.rand(2, 6, 3, R, R, generator=torch.Generator().manual_seed(3))
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, [0, 3]] = False
    indices = torch.tensor([[0, 2, 4, 6, 8, 9], [0, 1, 3, 0, 7, 11]])
    return frames, mask, indices


@pytest.mark.parametrize("reference", ["first", "current"])
@torch.no_grad()
def test_vggt_reads_the_reference_frame_first(reference: str) -> None:
    model = tiny_model(vggt_reference=reference)
    frames, mask, indices = batch()
    geometry, tokens = encode_history(model.vggt, model.config, frames, mask, indices)
    for i in range(2):
        valid = mask[i].nonzero().flatten().tolist()
        order = valid if reference == "first" else [valid[-1], *valid[:-1]]
        out = model.vggt(frames[i, order][None], heads=("point", "camera", "depth"))
        for key in KEYS:
            torch.testing.assert_close(geometry[key][i, order], out[key][0], **TOL)
        layer = out["aggregated_tokens"][model.config.vggt_layer][0]
        patch = layer[:, model.vggt.aggregator.patch_start_idx :]  # [n, gh*gw, 2C]
        torch.testing.assert_close(
            tokens[i, order].reshape(len(order), -1, patch.shape[-1]), patch, **TOL
        )
        for slot in set(range(6)) - set(valid):  # padding stays zero
            assert not geometry["pose_enc"][i, slot].any()


@torch.no_grad()
def test_the_order_changes_vggts_output() -> None:
    """A check that the test above can fail: the two orders give cameras that differ by more
    than its tolerance (a random-init VGGT depends on the order only through its first-frame
    camera and register tokens, so weakly, but 10x above the tolerance)."""
    frames, mask, indices = batch()
    first = tiny_model(vggt_reference="first")
    current = tiny_model(vggt_reference="current")
    a, _ = encode_history(first.vggt, first.config, frames, mask, indices)
    b, _ = encode_history(current.vggt, current.config, frames, mask, indices)
    assert (a["pose_enc"] - b["pose_enc"]).abs().max() > 10 * TOL["atol"]


@torch.no_grad()
def test_acting_with_caches_equals_the_batched_model() -> None:
    model = tiny_model(vggt_reference="current")
    frames, mask, indices = batch()
    caches = [FrameCache(), FrameCache()]
    for _ in range(2):  # the second call reads the cached patch embeddings
        cached = model(frames, mask, indices, TEXTS, caches=caches)
        plain = model(frames, mask, indices, TEXTS)
        torch.testing.assert_close(cached.pose_enc, plain.pose_enc, **TOL)
        torch.testing.assert_close(cached.heatmap_logits, plain.heatmap_logits, **TOL)
        torch.testing.assert_close(cached.action_logits, plain.action_logits, **TOL)
    assert all(cache.hits > 0 for cache in caches)


def test_bad_reference_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="vggt_reference must be one of .*'middle'"):
        FIHModelConfig.tiny(vggt_reference="middle")
    with pytest.raises(ValueError, match="vggt_reference='current' needs vggt_history='full'"):
        FIHModelConfig.tiny(vggt_reference="current", vggt_history="causal_cache")
