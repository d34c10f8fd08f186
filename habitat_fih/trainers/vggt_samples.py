"""Samples of the ``vggt`` stage: a frame sequence with VGGT's targets from the simulator.

In the ``vggt`` stage every collected step with ``collection.max_frames`` frames gives a
`VGGTSample`: its frames (``collection.vggt_sequence``: ``memory``, the frames the model sees
at that step - the task's memory frames subsampled to ``max_frames - 1``, then the current
view -, or ``recent``, the last ``max_frames`` steps; oldest first, so the oldest is VGGT's
reference frame, or with ``vggt_reference: current`` the current view first, as the model
orders VGGT's input) and `habitat_fih.models.vggt.targets.vggt_targets` of them:

- cameras: each frame's ``frame_geometry`` row of the step it was taken at (OpenCV extrinsics
  relative to the episode's first camera, turned back into habitat poses; only relative poses
  matter; intrinsics giving the horizontal FoV ``2 atan((W/2) / fx)`` at the sensor's size);
- depth: each frame's ``frame_geometry.current_depth`` (the task's working depth, metres,
  0 = invalid) of the step it was taken at, kept by `FrameHistory` at VGGT's input size R x R
  (`habitat_fih.geometry.surface.working_depth`, the task's exact plane-interpolated
  resampling, with the covisibility tolerances; VGGT's dense heads predict one value per input
  pixel), so the depth is the true depth along each R x R pixel's centre ray;
- VGGT's scale normalisation (the mean distance of the valid points to the first camera).

`collate_vggt` batches samples into (images [B, S, 3, R, R] in [0, 1], `VGGTTargets`). The
frames are resized to R x R as `FIHModel` resizes them (`resize_frames`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from habitat_fih.geometry.camera import opencv_extrinsic_to_habitat_pose
from habitat_fih.models.config import VGGT_REFERENCES
from habitat_fih.models.fih_model import resize_frames
from habitat_fih.models.vggt.targets import VGGTTargets, stack_targets, vggt_targets

if TYPE_CHECKING:
    from habitat_fih.trainers.frame_history import KeptGeometry

__all__ = ["VGGTSample", "collate_vggt", "geometry_rows", "view_vggt_sample"]


@dataclass
class VGGTSample:
    """One ``vggt``-stage sample (S frames, oldest first).

    Attributes:
        frames: [S, H, W, 3] uint8 RGB as stored by the collector (``collection.frame_size``).
        indices: [S] int64 step indices.
        targets: `VGGTTargets` of the sequence ([S, ...], R x R).
    """

    frames: np.ndarray
    indices: np.ndarray
    targets: VGGTTargets

    @property
    def nbytes(self) -> int:
        t = self.targets
        tensors = (t.pose_enc, t.extrinsics, t.intrinsics, t.depth, t.world_points, t.valid)
        return int(
            self.frames.nbytes
            + self.indices.nbytes
            + sum(x.element_size() * x.numel() for x in tensors)
        )


def geometry_rows(geometry: dict[str, Any], steps: Sequence[int]) -> list[int]:
    """Rows of a ``frame_geometry`` observation holding the valid cameras of `steps`.

    Raises:
        ValueError: a step it holds no valid camera for.
    """
    slot_of = {
        int(f): j
        for j, (f, ok) in enumerate(zip(geometry["frame_indices"], geometry["valid"], strict=True))
        if f >= 0 and ok
    }
    missing = [int(s) for s in steps if int(s) not in slot_of]
    if missing:
        raise ValueError(
            f"frame_geometry has no camera for steps {missing} (it holds {sorted(slot_of)})"
        )
    return [slot_of[int(s)] for s in steps]


def view_vggt_sample(
    frames: np.ndarray,
    indices: np.ndarray,
    geometry: KeptGeometry | None,
    reference: str = "first",
) -> VGGTSample | None:
    """The `VGGTSample` of one step's frames (see the module docstring).

    Args:
        frames: [S, H, W, 3] uint8, indices [S]: the step's frames (`StepView`), oldest first,
            the current view last.
        geometry: their cameras and depths at VGGT's input size (`FrameHistory` with a
            `DepthKeeping`).
        reference: VGGT's reference (first) frame, as the model orders its input
            (`FIHModelConfig.vggt_reference`): ``first`` keeps the order, ``current`` puts the
            last frame first (then the others, oldest first), and the targets are relative to
            it.

    Returns:
        The sample, or None when no frame has a valid depth pixel (VGGT's scale is undefined;
        e.g. a view of nothing but sky): such a step trains nothing.

    Raises:
        ValueError: no geometry (the stage needs the ``frame_geometry`` sensor's cameras and
            depth, kept per frame).
    """
    if reference not in VGGT_REFERENCES:
        raise ValueError(f"reference must be one of {VGGT_REFERENCES}, got {reference!r}")
    if geometry is None:
        raise ValueError(
            "the vggt stage needs each frame's camera and depth (FrameHistory with a "
            "DepthKeeping, from the frame_geometry sensor)"
        )
    order = np.arange(len(indices))
    if reference == "current":
        order = np.roll(order, 1)  # [S-1, 0, 1, ..., S-2]
    frames, indices = np.asarray(frames)[order], np.asarray(indices)[order]
    depths = np.asarray(geometry.depths, dtype=np.float64)[order]
    if not np.any(depths > 0):
        return None
    intrinsics = np.asarray(geometry.intrinsics)[order]
    # [S, 4, 4] habitat poses in the episode's world frame
    poses = opencv_extrinsic_to_habitat_pose(np.asarray(geometry.extrinsics)[order])
    fx, cx, cy = intrinsics[:, 0, 0], intrinsics[:, 0, 2], intrinsics[:, 1, 2]
    hfov = np.degrees(2.0 * np.arctan(cx / fx))  # [S]
    sensor_size = (int(round(2 * cy[0])), int(round(2 * cx[0])))
    targets = vggt_targets(poses, hfov, depths, sensor_size=sensor_size)
    return VGGTSample(
        frames=np.ascontiguousarray(frames),
        indices=np.asarray(indices, dtype=np.int64),
        targets=targets,
    )


def collate_vggt(samples: Sequence[VGGTSample], image_size: int) -> tuple[Tensor, VGGTTargets]:
    """(images [B, S, 3, R, R] float in [0, 1], batched `VGGTTargets`) of samples with the same
    number of frames S (R = `image_size`, the model's input and the targets' size).

    Raises:
        ValueError: no sample, samples of different S, or targets not at R x R.
    """
    if not samples:
        raise ValueError("collate_vggt needs at least one sample")
    counts = sorted({len(s.indices) for s in samples})
    if len(counts) != 1:
        raise ValueError(f"vggt samples must have the same number of frames, got {counts}")
    sizes = {tuple(s.targets.depth.shape[-2:]) for s in samples}
    if sizes != {(image_size, image_size)}:
        raise ValueError(f"vggt targets must be {image_size}x{image_size}, got {sorted(sizes)}")
    frames = torch.from_numpy(np.stack([s.frames for s in samples]))  # [B, S, H, W, 3]
    images = frames.permute(0, 1, 4, 2, 3).float() / 255.0  # [B, S, 3, H, W]
    return resize_frames(images, image_size), stack_targets([x.targets for x in samples])
