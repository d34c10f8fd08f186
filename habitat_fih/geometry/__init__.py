"""Geometry: habitat camera conventions, projection and frame-indexed heatmap targets.

Depends on nothing else of ``habitat_fih`` (only numpy, numpy-quaternion and, for the torch
targets, torch).  Conventions are stated in :mod:`habitat_fih.geometry.camera`: habitat camera
frame +X right, +Y up, looking down -Z, world Y up, planar depth in metres (0 = invalid),
camera-to-world 4x4 poses, ``fx = fy = (W/2) / tan(hfov/2)`` with pixel centres at +0.5.

* :mod:`~habitat_fih.geometry.camera` - intrinsics, (back-)projection, pose and quaternion
  helpers, OpenCV / VGGT extrinsics.
* :mod:`~habitat_fih.geometry.surface` - a depth image read as a piecewise-planar surface in
  inverse depth (the model behind the co-visibility rule; working-resolution resampling).
* :mod:`~habitat_fih.geometry.targets` - numpy co-visibility and camera-position heatmaps (the
  simulator-side sensor; the per-pixel decision kernel is :mod:`~habitat_fih.geometry.covisible`).
* :mod:`~habitat_fih.geometry.targets_torch` - the same on batched torch tensors
  (``covisibility_heatmaps_torch``, ``camera_position_heatmaps_torch``); imported lazily so the
  simulator side does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from habitat_fih.geometry.camera import (
    HABITAT_TO_OPENCV,
    backproject_depth,
    camera_rays,
    camera_to_world,
    crop_intrinsics,
    depth_to_world_points,
    euler_to_rotation_matrix,
    habitat_pose_to_opencv_extrinsic,
    intrinsics_from_hfov,
    invert_pose,
    opencv_extrinsic_to_habitat_pose,
    pixel_centers,
    pose_from_agent_state,
    project_points,
    quat_from_angle_axis,
    quat_from_coeffs,
    quat_to_coeffs,
    quat_to_rotation_matrix,
    resize_intrinsics,
    rotation_matrix_to_quat,
    transform_points,
    world_to_camera,
)
from habitat_fih.geometry.targets import (
    BEHIND,
    IN_VIEW,
    MASKED,
    OCCLUDED,
    OUT_OF_VIEW,
    SAME_POSITION,
    CameraPositionResult,
    CameraStatus,
    CovisibilityResult,
    area_average,
    camera_position_heatmaps,
    covisibility_heatmaps,
)

_TORCH_EXPORTS = {
    "CameraPositionResultTorch",
    "CovisibilityResultTorch",
    "camera_position_heatmaps_torch",
    "covisibility_heatmaps_torch",
}

__all__ = [
    "BEHIND",
    "HABITAT_TO_OPENCV",
    "IN_VIEW",
    "MASKED",
    "OCCLUDED",
    "OUT_OF_VIEW",
    "SAME_POSITION",
    "CameraPositionResult",
    "CameraStatus",
    "CovisibilityResult",
    "area_average",
    "backproject_depth",
    "camera_position_heatmaps",
    "camera_rays",
    "camera_to_world",
    "covisibility_heatmaps",
    "crop_intrinsics",
    "depth_to_world_points",
    "euler_to_rotation_matrix",
    "habitat_pose_to_opencv_extrinsic",
    "intrinsics_from_hfov",
    "invert_pose",
    "opencv_extrinsic_to_habitat_pose",
    "pixel_centers",
    "pose_from_agent_state",
    "project_points",
    "quat_from_angle_axis",
    "quat_from_coeffs",
    "quat_to_coeffs",
    "quat_to_rotation_matrix",
    "resize_intrinsics",
    "rotation_matrix_to_quat",
    "transform_points",
    "world_to_camera",
    *sorted(_TORCH_EXPORTS),
]


def __getattr__(name: str) -> Any:
    if name in _TORCH_EXPORTS:
        module = importlib.import_module("habitat_fih.geometry.targets_torch")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
