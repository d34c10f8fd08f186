"""`FrameCache`: per-frame work of one frame sequence, kept across the steps of an episode.

An agent acting step by step gives `FIHModel.forward` nearly the same history at every step
(the remembered frames plus one new view). Work that depends on one frame alone is done once
per frame and kept here, keyed by the frame's index (the episode step):

* the frame itself (resized to the model's input size), to check that an index always names
  the same image: a different image under a known index is a `StaleFrameError` (the caller
  forgot `reset` at an episode start) rather than silently reused features;
* VGGT's per-frame patch embedding (``vggt_history: full``; the aggregator's frame / global
  blocks still run over the whole history, as VGGT's global attention needs);
* the causal VGGT stream (``vggt_history: causal_cache``,
  `habitat_fih.models.vggt.streaming.CausalVGGTStream`): each frame aggregated once;
* DINOv3's patch tokens of every frame that was a keyframe or a current view.

One cache per environment (or video); `reset` at every episode start. Caches hold inference
results only: `FIHModel.forward` refuses them while autograd is recording, and a cache is only
valid for the weights it was filled with (make a new one, or `reset`, after an update). At most
`capacity` frames are kept (least recently used dropped; a dropped frame is recomputed when
asked for again).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from torch import Tensor

from habitat_fih.models.vggt.streaming import CausalVGGTStream

__all__ = ["FrameCache", "StaleFrameError"]


class StaleFrameError(ValueError):
    """A frame index that the cache knows arrived with a different image."""


class FrameCache:
    """Per-frame features of one sequence (see the module docstring)."""

    def __init__(self, capacity: int = 64) -> None:
        if capacity < 1:
            raise ValueError(f"frame cache capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.reset()

    def reset(self) -> None:
        """Forget every frame (a new episode)."""
        self.images: OrderedDict[int, Tensor] = OrderedDict()  # [3, R, R]
        self.patches: dict[int, Tensor] = {}  # VGGT patch embedding [h*w, C]
        self.dino: dict[int, Tensor] = {}  # DINOv3 tokens [gh, gw, Cd]
        self.stream: CausalVGGTStream | None = None
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self.images)

    def check(self, indices: Iterable[int], images: Tensor) -> None:
        """Record the frames [n, 3, R, R] of `indices`; StaleFrameError when a known index
        comes with another image. Marks them most recently used and drops the least recently
        used frames beyond `capacity` (never one of these)."""
        indices = [int(i) for i in indices]
        for index, image in zip(indices, images, strict=True):
            known = self.images.get(index)
            if known is None:
                self.images[index] = image.detach().clone()
            elif known.shape != image.shape or not bool((known == image).all()):
                raise StaleFrameError(
                    f"frame index {index} arrived with a different image than the cached one: "
                    "reset the FrameCache when an episode starts"
                )
            self.images.move_to_end(index)
        keep = set(indices)
        while len(self.images) > max(self.capacity, len(keep)):
            oldest = next(iter(self.images))
            if oldest in keep:
                break
            del self.images[oldest]
            self.patches.pop(oldest, None)
            self.dino.pop(oldest, None)

    def missing(self, store: dict[int, Tensor], indices: Iterable[int]) -> list[int]:
        """The indices (in order, without repeats) that `store` lacks; counts hits / misses."""
        out: list[int] = []
        for index in indices:
            index = int(index)
            if index in store or index in out:
                self.hits += index in store
                continue
            out.append(index)
        self.misses += len(out)
        return out
