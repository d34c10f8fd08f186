"""`FrameCache` with `FIHModel.forward`: acting step by step with the caches gives the numbers
of the model run on the whole history each step (the reference: the same model without caches).
"""

from __future__ import annotations

import _tiny_qwen as _tiny  # tests/helpers (on sys.path via tests/conftest.py)
import pytest
import torch

from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.factory import build_model
from habitat_fih.models.fih_model import FIHModel
from habitat_fih.models.frame_cache import FrameCache, StaleFrameError

R = 32
TOL = dict(atol=1e-4, rtol=1e-4)
TEXTS = ["walk to the kitchen and stop", "turn left past the table"]


def tiny_model(**overrides) -> FIHModel:
    torch.manual_seed(0)
    overrides.setdefault("vggt_heads", "all")
    return build_model(FIHModelConfig.tiny(**overrides), tokenizer=_tiny.tiny_tokenizer()).eval()


def episode(steps: int, seed: int) -> torch.Tensor:
    return torch.rand(steps, 3, R, R, generator=torch.Generator().manual_seed(seed))


def history(step: int, room: int) -> list[int]:
    """The collector's slots: past frames subsampled to `room` (first and latest kept), then the
    current step."""
    past = list(range(step))
    if len(past) > room:
        pick = torch.linspace(0, len(past) - 1, room).round().long().unique().tolist()
        past = [past[i] for i in pick]
    return [*past, step]


def step_batch(frames: list[torch.Tensor], slots: list[list[int]]):
    s = max(len(x) for x in slots)
    b = len(slots)
    out = torch.zeros(b, s, 3, R, R)
    mask = torch.zeros(b, s, dtype=torch.bool)
    idx = torch.zeros(b, s, dtype=torch.long)
    for i, sl in enumerate(slots):
        out[i, : len(sl)] = frames[i][sl]
        mask[i, : len(sl)] = True
        idx[i, : len(sl)] = torch.tensor(sl)
    return out, mask, idx


def compare(a, b) -> None:
    assert torch.equal(a.keyframe_indices, b.keyframe_indices)
    torch.testing.assert_close(a.heatmap_logits, b.heatmap_logits, **TOL)
    torch.testing.assert_close(a.action_logits, b.action_logits, **TOL)
    torch.testing.assert_close(a.world_points, b.world_points, **TOL)
    torch.testing.assert_close(a.pose_enc, b.pose_enc, **TOL)
    torch.testing.assert_close(a.depth, b.depth, **TOL)


@pytest.mark.parametrize("history_mode", ["full", "causal_cache"])
@torch.no_grad()
def test_cached_steps_equal_uncached(history_mode: str) -> None:
    """Two environments at different points of their episodes; each step's history is all
    frames so far (up to 8, then subsampled: only for full, where the cache does not change the
    attention). The causal stream equals the batched causal model while the history holds
    every frame it saw."""
    model = tiny_model(vggt_history=history_mode, vggt_cache_window=3)
    steps = 12 if history_mode == "full" else 8
    frames = [episode(steps, 1), episode(steps + 3, 2)]
    caches = [FrameCache(), FrameCache()]
    for t in range(steps):
        slots = (
            [history(t, 8), history(t + 3, 8)]
            if history_mode == "full"
            else [
                list(range(t + 1)),
                list(range(t + 1)),
            ]
        )
        inputs = step_batch(frames, slots)
        compare(model(*inputs, TEXTS, caches=caches), model(*inputs, TEXTS))
    # each frame's DINOv3 features and VGGT patch embedding (full) computed once
    for cache in caches:
        assert cache.misses <= len(cache) + (len(cache) if history_mode == "full" else 0)
        assert len(cache.dino) <= len(cache)
        assert cache.hits > 0


@torch.no_grad()
def test_stale_frame_and_misuse_are_refused() -> None:
    model = tiny_model()
    frames = episode(4, 3)
    cache = FrameCache()
    inputs = step_batch([frames], [[0, 1, 2]])
    model(*inputs, TEXTS[:1], caches=[cache])
    other = step_batch([episode(4, 4)], [[0, 1, 2]])  # a new episode, same indices, no reset
    with pytest.raises(StaleFrameError, match="frame index 0"):
        model(*other, TEXTS[:1], caches=[cache])
    cache.reset()
    model(*other, TEXTS[:1], caches=[cache])  # after reset: fine
    with pytest.raises(ValueError, match="one FrameCache per sample"):
        model(*other, TEXTS[:1], caches=[cache, FrameCache()])
    with torch.enable_grad(), pytest.raises(ValueError, match="inference"):
        model(*other, TEXTS[:1], caches=[cache])


def test_capacity_drops_least_recently_used() -> None:
    cache = FrameCache(capacity=3)
    images = episode(5, 5)
    for i in range(5):
        cache.check([i], images[i : i + 1])
        cache.dino[i] = torch.zeros(1)
    assert list(cache.images) == [2, 3, 4] and sorted(cache.dino) == [2, 3, 4]
    cache.check([2, 4], images[[2, 4]])  # used again: 3 is now the least recent
    cache.check([0], images[[0]])
    assert sorted(cache.images) == [0, 2, 4]
    with pytest.raises(ValueError, match="capacity"):
        FrameCache(0)


@torch.no_grad()
def test_causal_batched_needs_increasing_indices() -> None:
    model = tiny_model(vggt_history="causal_cache")
    frames, mask, idx = step_batch([episode(3, 6)], [[0, 1, 2]])
    with pytest.raises(ValueError, match="increasing"):
        model(frames, mask, idx.flip(1), TEXTS[:1])
