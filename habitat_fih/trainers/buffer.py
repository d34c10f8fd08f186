"""Training samples and the bounded replay buffer of the ``fih`` trainer.

A `Sample` is one environment step seen by the collector: the frame history (memory frames +
the current view, last), their original step indices, the frame-indexed targets of every
history frame on the current view with validity (covisibility by default; with
``fih.collection.target_kind`` ``camera_position`` or ``both`` also / instead the Gaussian at
each frame camera's projection, valid only where that camera is IN_VIEW), the instruction and the expert action; in pretraining also the cross-frame token pairs of the
alignment term (`habitat_fih.trainers.correspondences`).
`ReplayBuffer` keeps at most ``capacity`` samples in memory (a FIFO ring: the oldest are
overwritten; nothing is cached on disk) and draws batches with a seeded generator.
`collate` pads samples into the observation batch `FIHPolicy` reads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from habitat_fih.models.losses import HEATMAP_KINDS as KIND_ORDER
from habitat_fih.models.losses import kind_suffix

__all__ = ["ReplayBuffer", "Sample", "collate"]


@dataclass
class Sample:
    """One training sample (S frames, the current view last).

    Attributes:
        frames: [S, H, W, 3] uint8.
        indices: [S] int64 original step indices (ascending; the last is the current step).
        targets: [S, h, w] float16 target of kind `target_kind` of each frame on the current
            view (the current slot is zeros).
        valid: [S] bool target validity (False for the current slot).
        target_kind: the kind of `targets` (``covisibility`` or ``camera_position``).
        extra_targets: {kind: (targets [S, h, w] float16, valid [S] bool)} of the further
            kinds the run trains (``target_kind: both``: camera_position), or None.
        instruction: instruction text.
        expert_action: the expert's action at this step.
        action_weight: inflection weight of the action loss (VLN-CE: 3.2 where the expert
            action changes, else 1).
        poses: [S, 9] float32 VGGT pose encodings of the frames' cameras (from the
            ``frame_geometry`` sensor), or None when the task has no such sensor.
        align_pairs: [S, N, 2] int32 (current-view cell, frame cell) token pairs of each frame
            with the current view (flat row-major indices over ``align_grid``), or None (made
            only for a stage whose alignment weight is > 0).
        align_mask: [S, N] bool validity of those pairs (all False in the current slot).
        align_grid: the token grid (th, tw) the pairs index.
        depth: [h, w] float16 metres, the current view's depth input of the action head
            (`habitat_fih.trainers.frame_history.NavDepth`), or None (kept only for models whose
            ``action.inputs`` has ``depth``).
        previous_action: the action taken at the previous step (-1 at an episode's first),
            the action head's ``previous_action`` input.
        goal_distance: metres from here to the goal (the ``distance_to_goal`` measure), the
            progress monitor's target (NaN = unknown).
    """

    frames: np.ndarray
    indices: np.ndarray
    targets: np.ndarray
    valid: np.ndarray
    instruction: str
    expert_action: int
    action_weight: float = 1.0
    poses: np.ndarray | None = None
    align_pairs: np.ndarray | None = None
    align_mask: np.ndarray | None = None
    align_grid: tuple[int, int] | None = None
    target_kind: str = "covisibility"
    extra_targets: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    depth: np.ndarray | None = None
    previous_action: int = -1
    goal_distance: float = math.nan

    def kind_targets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{kind: (targets [S, h, w], valid [S])} of every kind the sample carries, first
        `target_kind` (samples pickled before these fields read as covisibility only)."""
        first = getattr(self, "target_kind", "covisibility")
        return {first: (self.targets, self.valid), **(getattr(self, "extra_targets", None) or {})}

    @property
    def nbytes(self) -> int:
        extra = [a for pair in (self.extra_targets or {}).values() for a in pair]
        optional = (self.poses, self.align_pairs, self.align_mask, self.depth, *extra)
        return int(
            self.frames.nbytes
            + self.indices.nbytes
            + self.targets.nbytes
            + self.valid.nbytes
            + sum(0 if x is None else x.nbytes for x in optional)
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
    fih_heatmaps_valid [B, S] (the covisibility targets), for each other target kind
    fih_heatmaps_<kind> / fih_heatmaps_<kind>_valid (e.g. fih_heatmaps_camera_position; the
    samples must carry the same kinds), expert_action [B], action_weights [B]; when the samples
    carry camera poses, rgb_history_pose [B, S, 9] float32 (zeros at padding); when they carry
    alignment pairs, align_pairs [B, S, N, 2] long, align_pairs_mask [B, S, N] (False at
    padding) and align_grid [2] (the samples must share N and the grid); previous_action [B]
    long; goal_distance [B] float32 metres (NaN = unknown); when the samples carry depth
    inputs, nav_depth [B, h, w] float32 (all or none)."""
    if not samples:
        raise ValueError("cannot collate an empty batch")
    b = len(samples)
    s = max(len(x.indices) for x in samples)
    fh, fw = samples[0].frames.shape[1:3]
    th, tw = samples[0].targets.shape[1:3]
    frames = np.zeros((b, s, fh, fw, 3), dtype=np.uint8)
    mask = np.zeros((b, s), dtype=bool)
    index = np.zeros((b, s), dtype=np.int64)
    kinds = list(samples[0].kind_targets())
    for i, x in enumerate(samples):
        if list(x.kind_targets()) != kinds:
            raise ValueError(
                f"cannot collate samples with different target kinds: sample 0 has {kinds}, "
                f"sample {i} {list(x.kind_targets())}"
            )
    targets = {k: np.zeros((b, s, th, tw), dtype=np.float32) for k in kinds}
    valid = {k: np.zeros((b, s), dtype=bool) for k in kinds}
    with_poses = [x.poses is not None for x in samples]
    if any(with_poses) and not all(with_poses):
        raise ValueError(
            f"cannot collate samples with and without camera poses (poses given: {with_poses})"
        )
    poses = np.zeros((b, s, 9), dtype=np.float32) if all(with_poses) else None
    pairs, pair_mask, grid = _alignment_arrays(samples, s)
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
        for kind, (maps, ok) in x.kind_targets().items():
            for name, arr, shape in (("targets", maps, (n, th, tw)), ("valid", ok, (n,))):
                if tuple(arr.shape) != shape:
                    raise ValueError(
                        f"sample {i} has {kind} {name} of shape {tuple(arr.shape)}, expected "
                        f"{shape} (as sample 0, with {n} frames)"
                    )
            targets[kind][i, :n] = maps
            valid[kind][i, :n] = ok
        frames[i, :n] = x.frames
        mask[i, :n] = True
        index[i, :n] = x.indices
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
    }
    for kind in sorted(kinds, key=KIND_ORDER.index):
        key = f"fih_heatmaps{kind_suffix(kind)}"
        out[key] = torch.from_numpy(targets[kind])
        out[f"{key}_valid"] = torch.from_numpy(valid[kind])
    out |= {
        "expert_action": torch.tensor([x.expert_action for x in samples], dtype=torch.long),
        "action_weights": torch.tensor([x.action_weight for x in samples], dtype=torch.float32),
    }
    # (samples pickled before these fields read their class defaults: no depth, -1)
    out["previous_action"] = torch.tensor(
        [int(x.previous_action) for x in samples], dtype=torch.long
    )
    out["goal_distance"] = torch.tensor(
        [float(getattr(x, "goal_distance", math.nan)) for x in samples], dtype=torch.float32
    )
    depths = [x.depth for x in samples]
    if any(d is not None for d in depths):
        shapes = [None if d is None else d.shape for d in depths]
        if None in shapes or len(set(shapes)) != 1:
            raise ValueError(
                "cannot collate samples with and without depth inputs or of different sizes "
                f"(shapes {shapes})"
            )
        out["nav_depth"] = torch.from_numpy(np.stack(depths).astype(np.float32))
    if poses is not None:
        out["rgb_history_pose"] = torch.from_numpy(poses)
    if pairs is not None:
        assert pair_mask is not None
        out["align_pairs"] = torch.from_numpy(pairs)
        out["align_pairs_mask"] = torch.from_numpy(pair_mask)
        if grid is not None:
            out["align_grid"] = torch.tensor(grid, dtype=torch.long)
    return out


def _alignment_arrays(
    samples: Sequence[Sample], s: int
) -> tuple[np.ndarray | None, np.ndarray | None, tuple[int, int] | None]:
    """Padded alignment pairs [B, S, N, 2] int64, mask [B, S, N] and the shared token grid,
    or Nones when no sample has pairs."""
    # getattr: samples pickled by a version without these fields (a resumed buffer)
    given = [getattr(x, "align_pairs", None) is not None for x in samples]
    if not any(given):
        return None, None, None
    if not all(given):
        raise ValueError(
            f"cannot collate samples with and without alignment pairs (pairs given: {given})"
        )
    first = samples[0]
    assert first.align_pairs is not None
    n_pairs, grid = first.align_pairs.shape[1], first.align_grid
    pairs = np.zeros((len(samples), s, n_pairs, 2), dtype=np.int64)
    mask = np.zeros((len(samples), s, n_pairs), dtype=bool)
    for i, x in enumerate(samples):
        assert x.align_pairs is not None
        n = len(x.indices)
        if x.align_pairs.shape != (n, n_pairs, 2) or x.align_grid != grid:
            raise ValueError(
                f"sample {i} has alignment pairs of shape {x.align_pairs.shape} for grid "
                f"{x.align_grid}, expected ({n}, {n_pairs}, 2) for grid {grid} (as sample 0)"
            )
        pairs[i, :n] = x.align_pairs
        mask[i, :n] = True if x.align_mask is None else x.align_mask
    return pairs, mask, tuple(grid) if grid is not None else None
