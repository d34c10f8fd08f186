"""`PolicyAgent` keeps one `FrameCache` per environment and starts a fresh one with every
episode; with the caches its actions and heatmaps equal those of the uncached agent."""

from __future__ import annotations

import _tiny_qwen as _tiny  # tests/helpers (on sys.path via tests/conftest.py)
import numpy as np
import pytest
import torch

from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.factory import build_model
from habitat_fih.models.policy import FIHPolicy, FIHPolicyConfig
from habitat_fih.trainers.collector import FrameHistory, StepView
from habitat_fih.trainers.evaluation import PolicyAgent


def _agent(cache: bool) -> PolicyAgent:
    torch.manual_seed(0)
    model = build_model(FIHModelConfig.tiny(frame_cache=cache), tokenizer=_tiny.tiny_tokenizer())
    policy = FIHPolicy(model, None, FIHPolicyConfig()).eval()
    return PolicyAgent(policy, torch.device("cpu"), predict_heatmaps=False)


def _episode(seed: int, steps: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(steps)]


def _views(env: int, episode: str, frames: list[np.ndarray]):
    history = FrameHistory(32, 9)
    for t, rgb in enumerate(frames):
        memory = np.arange(t)
        history.update(t, rgb, memory)
        slots = history.slots(t, memory)
        stacked = np.stack([history.frames[s] for s in slots])
        yield StepView(env, episode, t, {}, "go to the kitchen", 1, stacked, np.asarray(slots))


@torch.no_grad()
def test_cached_agent_acts_as_the_uncached_one_and_resets_per_episode() -> None:
    cached, plain = _agent(True), _agent(False)
    first = list(_views(0, "a", _episode(0, 12)))
    again = list(_views(0, "a", _episode(1, 6)))  # the same episode id, new images, step 0
    other = list(_views(1, "b", _episode(2, 6)))
    seen = []
    for views in [*([v] for v in first), *([a, o] for a, o in zip(again, other, strict=True))]:
        a, out_a = cached.forward(views)
        b, out_b = plain.forward(views)
        assert a == b
        torch.testing.assert_close(out_a.heatmap_logits, out_b.heatmap_logits, atol=1e-4, rtol=1e-4)
        seen.append(id(cached._caches[0][2]))
    # one cache through the first episode, a new one when episode "a" started again
    assert len(set(seen[: len(first)])) == 1 and seen[len(first)] != seen[0]
    assert plain.caches_for(first[:1]) is None
    assert sorted(cached._caches) == [0, 1]


def test_stale_cache_would_be_refused() -> None:
    """Without the reset (same env, same step numbers, other images) the cache refuses."""
    agent = _agent(True)
    views = list(_views(0, "a", _episode(0, 3)))
    agent.forward(views[-1:])
    cache = agent._caches[0][2]
    other = list(_views(0, "a", _episode(5, 4)))[-1]  # step 3 > 2: same cache kept
    with pytest.raises(ValueError, match="different image"):
        agent.forward([other])
    assert agent._caches[0][2] is cache
