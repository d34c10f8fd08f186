"""The FIH-VLN-v0 task's per-episode frame memory (bounded).

Each remembered frame is (original step index, camera-to-world pose [4,4] of the depth sensor in
habitat's camera convention, planar depth [h,w] in metres at the working resolution, 0 = invalid).

Policies once more than ``max_frames`` frames were seen:

- ``uniform`` (default, the user's design: "uniform over the whole history"): the first and the
  latest frame are always kept; when a new frame overflows the memory, the interior frame whose
  removal leaves the smallest gap (``t[i+1] - t[i-1]``, earliest on ties) is dropped. The kept
  step indices stay close to uniform over ``[0, t]``: every gap is at most twice the smallest
  possible one, ``ceil(t / (max_frames - 1))`` (tested).
- ``recent``: a sliding window of the latest ``max_frames`` frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MEMORY_POLICIES", "Frame", "FrameMemory"]

MEMORY_POLICIES = ("uniform", "recent")


@dataclass(frozen=True)
class Frame:
    step: int
    pose: np.ndarray  # [4, 4] float64 camera-to-world (habitat camera convention)
    depth: np.ndarray  # [h, w] float32 planar depth in metres, 0 = invalid


class FrameMemory:
    """Bounded memory of past frames (see the module docstring for the policies)."""

    def __init__(self, max_frames: int, policy: str = "uniform") -> None:
        if max_frames < 2:
            raise ValueError(f"max_frames must be >= 2 (first and latest frame); got {max_frames}")
        if policy not in MEMORY_POLICIES:
            raise ValueError(f"unknown memory policy {policy!r}; expected one of {MEMORY_POLICIES}")
        self.max_frames = int(max_frames)
        self.policy = policy
        self._frames: list[Frame] = []

    def __len__(self) -> int:
        return len(self._frames)

    def clear(self) -> None:
        self._frames = []

    @property
    def frames(self) -> tuple[Frame, ...]:
        return tuple(self._frames)

    @property
    def steps(self) -> list[int]:
        return [f.step for f in self._frames]

    def add(self, frame: Frame) -> None:
        if self._frames and frame.step <= self._frames[-1].step:
            raise ValueError(
                f"frame step {frame.step} is not after the latest remembered step "
                f"{self._frames[-1].step}"
            )
        self._frames.append(frame)
        if len(self._frames) <= self.max_frames:
            return
        if self.policy == "recent":
            del self._frames[0]
            return
        steps = np.array(self.steps)
        gaps = steps[2:] - steps[:-2]  # gap left behind when interior frame i+1 is removed
        del self._frames[int(np.argmin(gaps)) + 1]

    def padded(self, depth_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fixed-size arrays: steps [M] int64 (-1 empty), poses [M,4,4], depths [M,h,w]."""
        m = self.max_frames
        steps = np.full(m, -1, dtype=np.int64)
        poses = np.tile(np.eye(4), (m, 1, 1))
        depths = np.zeros((m, *depth_shape), dtype=np.float32)
        for i, f in enumerate(self._frames):
            steps[i], poses[i], depths[i] = f.step, f.pose, f.depth
        return steps, poses, depths
