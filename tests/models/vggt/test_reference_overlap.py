"""`reference_overlap` (what each frame could see of the reference view) against closed forms,
and the camera loss's `camera_min_overlap` mask built on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from habitat_fih.models.vggt.losses import VGGTLossConfig, vggt_loss
from habitat_fih.models.vggt.targets import reference_overlap, stack_targets, vggt_targets

SIZE = 16  # 16 x 16 pixels, hfov 90 degrees: fx = fy = 8, principal point (8, 8)


def _pose(x: float = 0.0, yaw: float = 0.0) -> np.ndarray:
    """habitat camera-to-world (x right, y up, looking down -Z), at (x, 0, 0), turned `yaw`
    radians about +Y."""
    c, s = np.cos(yaw), np.sin(yaw)
    pose = np.eye(4)
    pose[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    pose[0, 3] = x
    return pose


def _targets(poses: list[np.ndarray], depth: float = 2.0, reference_cols: int = SIZE):
    """A wall `depth` m ahead in every frame; the reference's depth valid in its first
    `reference_cols` pixel columns only (0: no hit at all)."""
    planes = np.full((len(poses), SIZE, SIZE), depth)
    planes[0, :, reference_cols:] = 0.0  # no hit
    return vggt_targets(np.stack(poses), 90.0, planes)


def test_sideways_step_over_a_plane() -> None:
    """A fronto-parallel wall 2 m ahead; a camera 0.5 m to the right sees the reference's
    pixel column u at u - fx * 0.5 / 2 = u - 2: the columns whose centre is >= 2 stay in the
    image, 14 of 16. A camera 1 m to the left: u + 4 <= 16 keeps 12 of 16 (u = c + 0.5)."""
    overlap = reference_overlap(_targets([_pose(), _pose(x=0.5), _pose(x=-1.0)]))
    np.testing.assert_allclose(overlap.numpy(), [1.0, 14 / 16, 12 / 16], atol=1e-6)
    # only the reference's left half valid: the step right loses 2 of its 8 columns, the step
    # left none (the direction matters)
    half = reference_overlap(_targets([_pose(), _pose(x=0.5), _pose(x=-1.0)], reference_cols=8))
    np.testing.assert_allclose(half.numpy(), [1.0, 6 / 8, 8 / 8], atol=1e-6)


def test_turned_away_sees_nothing_and_the_reference_everything() -> None:
    overlap = reference_overlap(_targets([_pose(), _pose(yaw=np.pi), _pose()]))
    np.testing.assert_allclose(overlap.numpy(), [1.0, 0.0, 1.0], atol=1e-6)
    # a batch of two sequences gives each its own row
    batch = stack_targets([_targets([_pose(), _pose(x=0.5)]), _targets([_pose(), _pose()])])
    np.testing.assert_allclose(reference_overlap(batch).numpy(), [[1, 14 / 16], [1, 1]], atol=1e-6)


def test_reference_without_valid_pixels_overlaps_nothing_but_itself() -> None:
    overlap = reference_overlap(_targets([_pose(), _pose()], reference_cols=0))
    np.testing.assert_allclose(overlap.numpy(), [1.0, 0.0])


def test_camera_min_overlap_leaves_unseeing_frames_out_of_the_camera_loss() -> None:
    """Frames 0 and 1 predicted exactly, frame 2 (turned away, overlap 0) off by 0.5 in one
    translation component: with every frame supervised L_translation = h(0.5) / 3 =
    0.125 / 3 (mean over the 3 frames, Huber delta 1); with camera_min_overlap it is 0 and
    2 of 3 frames count."""
    targets = stack_targets([_targets([_pose(), _pose(x=0.5), _pose(yaw=np.pi)])])
    pred = targets.pose_enc.clone()
    pred[0, 2, 0] += 0.5
    outputs = {"pose_enc": pred}
    cam_only = {"depth_weight": 0.0, "point_weight": 0.0}
    _, every = vggt_loss(outputs, targets, VGGTLossConfig(**cam_only))
    assert every["vggt/camera_translation"].item() == pytest.approx(0.125 / 3, rel=1e-5)
    assert "vggt/camera_frames" not in every
    _, masked = vggt_loss(outputs, targets, VGGTLossConfig(camera_min_overlap=0.5, **cam_only))
    assert masked["vggt/camera_translation"].item() == pytest.approx(0.0, abs=1e-7)
    assert masked["vggt/camera_frames"].item() == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"camera_min_overlap must be in \[0, 1\), got 1.0"):
        VGGTLossConfig(camera_min_overlap=1.0)
    assert torch.isfinite(masked["vggt/total"])
