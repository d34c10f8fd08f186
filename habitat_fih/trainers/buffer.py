"""Training samples and the bounded replay buffer of the ``fih`` trainer.

A `Sample` is one environment step seen by the collector: the frame history (memory frames +
the current view, last), their original step indices, the frame-indexed covisibility targets of
every history frame on the current view with validity, the instruction and the expert action.
`ReplayBuffer` keeps at most ``capacity`` samples in memory (a FIFO ring: the oldest are
overwritten; nothing is cached on disk) and draws batches with a seeded generator.
`collate` pads samples into the observation batch `FIHPolicy` reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["ReplayBuffer", "Sample", "collate"]


@dataclass
class Sample:
    """One training sample (S frames, the current view last).

    Attributes:
        frames: [S, H, W, 3] uint8.
        indices: [S] int64 original step indices (ascending; the last is the current step).
        targets: [S, h, w] float16 covisibility of each frame on the current view (the current
            slot is zeros).
        valid: [S] bool target validity (False for the current slot).
        instruction: instruction text.
        expert_action: the expert's action at this step.
        action_weight: inflection weight of the action loss (VLN-CE: 3.2 where the expert
            action changes, else 1).
        poses: [S, 9] float32 VGGT pose encodings of the frames' cameras (from the
            ``frame_geometry`` sensor), or None when the task has no such sensor.
    """

    frames: np.ndarray
    indices: np.ndarray
    targets: np.ndarray
    valid: np.ndarray
    instruction: str
    expert_action: int
    action_weight: float = 1.0
    poses: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        return int(
            self.frames.nbytes
            + self.indices.nbytes
            + self.targets.nbytes
            + self.valid.nbytes
            + (0 if self.poses is None else self.poses.nbytes)
        )


class ReplayBuffer:
    """Bounded FIFO buffer of `Sample` (see the module docstring)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._items: list[Sample] = []
        self._next = 0  # ring position of the next write once full
        self.total_added = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, sample: Sample) -> None:
        if len(self._items) < self.capacity:
            self._items.append(sample)
        else:
            self._items[self._next] = sample
        self._next = (self._next + 1) % self.capacity
        self.total_added += 1

    def sample(self, batch_size: int, generator: torch.Generator) -> list[Sample]:
        """`batch_size` samples drawn uniformly with replacement."""
        if not self._items:
            raise RuntimeError("the replay buffer is empty: nothing was collected")
        idx = torch.randint(len(self._items), (batch_size,), generator=generator).tolist()
        return [self._items[i] for i in idx]

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self._items)

    def state_dict(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "items": list(self._items),
            "next": self._next,
            "total_added": self.total_added,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(
                f"saved buffer capacity {state['capacity']} != configured {self.capacity}"
            )
        self._items = list(state["items"])
        self._next = int(state["next"])
        self.total_added = int(state["total_added"])


def collate(samples: Sequence[Sample]) -> dict[str, Any]:
    """Pad samples (right-padding, so the last valid slot is the current view) into
    `FIHPolicy` observations: rgb_history [B, S, H, W, 3] uint8, rgb_history_mask [B, S],
    rgb_history_index [B, S], instruction_text (list), fih_heatmaps [B, S, h, w] float32,
    fih_heatmaps_valid [B, S], expert_action [B], action_weights [B] and, when the samples
    carry camera poses, rgb_history_pose [B, S, 9] float32 (zeros at padding)."""
    if not samples:
        raise ValueError("cannot collate an empty batch")
    b = len(samples)
    s = max(len(x.indices) for x in samples)
    fh, fw = samples[0].frames.shape[1:3]
    th, tw = samples[0].targets.shape[1:3]
    frames = np.zeros((b, s, fh, fw, 3), dtype=np.uint8)
    mask = np.zeros((b, s), dtype=bool)
    index = np.zeros((b, s), dtype=np.int64)
    targets = np.zeros((b, s, th, tw), dtype=np.float32)
    valid = np.zeros((b, s), dtype=bool)
    with_poses = [x.poses is not None for x in samples]
    if any(with_poses) and not all(with_poses):
        raise ValueError(
            f"cannot collate samples with and without camera poses (poses given: {with_poses})"
        )
    poses = np.zeros((b, s, 9), dtype=np.float32) if all(with_poses) else None
    for i, x in enumerate(samples):
        n = len(x.indices)
        expected = {"frames": (n, fh, fw, 3), "targets": (n, th, tw), "valid": (n,)}
        for name, shape in expected.items():
            got = tuple(getattr(x, name).shape)
            if got != shape:
                raise ValueError(
                    f"sample {i} has {name} of shape {got}, expected {shape} (as sample 0, "
                    f"with {n} frames)"
                )
        frames[i, :n] = x.frames
        mask[i, :n] = True
        index[i, :n] = x.indices
        targets[i, :n] = x.targets
        valid[i, :n] = x.valid
        if poses is not None:
            assert x.poses is not None
            if x.poses.shape != (n, 9):
                raise ValueError(
                    f"sample {i} has poses of shape {x.poses.shape}, expected ({n}, 9)"
                )
            poses[i, :n] = x.poses
    out: dict[str, Tensor | list[str]] = {
        "rgb_history": torch.from_numpy(frames),
        "rgb_history_mask": torch.from_numpy(mask),
        "rgb_history_index": torch.from_numpy(index),
        "instruction_text": [x.instruction for x in samples],
        "fih_heatmaps": torch.from_numpy(targets),
        "fih_heatmaps_valid": torch.from_numpy(valid),
        "expert_action": torch.tensor([x.expert_action for x in samples], dtype=torch.long),
        "action_weights": torch.tensor([x.action_weight for x in samples], dtype=torch.float32),
    }
    if poses is not None:
        out["rgb_history_pose"] = torch.from_numpy(poses)
    return out
