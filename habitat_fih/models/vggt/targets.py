"""VGGT training targets from simulator frames: pose encodings, planar depth, world points.

Input, per sequence of S frames (what FIHSim-v0 / habitat give for the depth sensor):

* ``poses`` [S, 4, 4]: camera-to-world poses in habitat's camera convention
  (:mod:`habitat_fih.geometry.camera`: x right, y up, looking down -Z; e.g. the depth sensor's
  pose of `FIHVLNTask.current_frame`). Only relative poses matter, so any common world works:
  OpenCV extrinsics such as the ``frame_geometry`` sensor's (world = the episode's first camera)
  become such poses with :func:`~habitat_fih.geometry.camera.opencv_extrinsic_to_habitat_pose`.
* ``hfov``: the sensor's horizontal field of view in degrees, one for all frames or one per frame.
* ``depth`` [S, H, W]: planar metric depth (habitat-sim's, the distance along the viewing axis;
  0 = no hit) at the resolution the model predicts, i.e. VGGT's input size (VGGT's dense heads
  output one value per input pixel). The depth may be a resampled version of a sensor of another
  size ``sensor_size`` (H0, W0) with square pixels, anisotropically (VGGT seeing a 4:3 frame
  squashed to a square); pass ``sensor_size`` then, so the intrinsics follow the resize.

Formulas (``C = diag(1, -1, -1, 1)`` the habitat <-> OpenCV camera flip, ``P_i`` the pose of
frame ``i``, pixel ``(r, c)`` at ``u = c + 0.5``, ``v = r + 0.5``):

* Extrinsics, OpenCV camera-from-world with the FIRST frame's OpenCV camera as world
  (:func:`~habitat_fih.geometry.camera.habitat_pose_to_opencv_extrinsic` with
  ``reference_pose = P_0``): ``E_i = [R_i | t_i] = C P_i^-1 P_0 C`` (top rows), so
  ``E_0 = [I | 0]``.
* Intrinsics: ``K0 = intrinsics_from_hfov(hfov, W0, H0)`` (``fx = fy = (W0/2) / tan(hfov/2)``,
  principal point at the centre), resized to (H, W) (:func:`resize_intrinsics`: row 0 times
  ``W / W0``, row 1 times ``H / H0``); without ``sensor_size`` ``K = K0`` at (H, W).
* Validity: ``valid = isfinite(D) & D > MIN_DEPTH & D < max_depth - 1e-4`` (the last only with
  ``max_depth``: the sensor clips at its range, so a pixel at ``max_depth`` has unknown depth,
  the FIH task's rule).
* Camera-frame points (OpenCV, z forward, so the planar depth IS ``z``):
  ``X_i = D_i * ((u - cx) / fx, (v - cy) / fy, 1)``.
* World points in the first camera's OpenCV frame: ``W_i = R_i^T (X_i - t_i)``.
* Scale (VGGT §3.4 "ground truth coordinate normalization", following DUSt3R): after expressing
  everything in the first camera's frame, ``s`` = the mean Euclidean distance to the origin of
  all valid points of all S frames, ``s = mean_{i, p valid} ||W_i(p)||`` (metres). The camera
  translations, the depth and the point map are divided by ``s``; rotations and FoVs are
  unchanged. VGGT does NOT normalise its predictions: the model is trained to output this
  normalised frame, so a prediction times ``s`` is in metres (how metrics report metres).
* Pose encoding ``absT_quaR_FoV`` of ``[R_i | t_i / s]`` and ``K_i`` for image size (H, W)
  (:func:`~habitat_fih.models.vggt.pose_encoding.extri_intri_to_pose_encoding`): ``t_i / s``,
  the quaternion XYZW (w >= 0) of ``R_i``, ``fov_h = 2 atan((H/2) / fy)``,
  ``fov_w = 2 atan((W/2) / fx)``.

Invalid pixels hold 0 in ``depth`` and ``world_points``; the losses mask them with ``valid``.
The computation is float64 (numpy, as :mod:`habitat_fih.geometry`), the tensors are float32.
This is the same chain the trainer's ``frame_geometry_poses`` and fih-infer's
``sidecar_pose_encodings`` use for their pose encodings (there with the episode's / the video's
first frame as reference and no scale normalisation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from habitat_fih.geometry.camera import (
    MIN_DEPTH,
    habitat_pose_to_opencv_extrinsic,
    intrinsics_from_hfov,
    invert_pose,
    pixel_centers,
    resize_intrinsics,
    transform_points,
    validate_hfov,
)
from habitat_fih.models.vggt.pose_encoding import extri_intri_to_pose_encoding

__all__ = [
    "MAX_DEPTH_MARGIN",
    "VGGTTargets",
    "reference_overlap",
    "stack_targets",
    "vggt_targets",
]

#: A pixel at or beyond ``max_depth - MAX_DEPTH_MARGIN`` is invalid (the FIH task's rule for
#: depth clipped at the sensor's range).
MAX_DEPTH_MARGIN = 1e-4


@dataclass
class VGGTTargets:
    """VGGT's training targets for one sequence ([S, ...]) or a batch ([B, S, ...]).

    Attributes (``*`` = no leading dims for one sequence, ``B`` for a batch):
        pose_enc: [*, S, 9] float32 absT_quaR_FoV, translations normalised by ``scale``.
        extrinsics: [*, S, 3, 4] float32 OpenCV camera-from-first-camera ``[R | t / scale]``.
        intrinsics: [*, S, 3, 3] float32 pixel intrinsics for the target size (H, W).
        depth: [*, S, H, W] float32 planar depth / scale, 0 where invalid.
        world_points: [*, S, H, W, 3] float32 points in the first camera's OpenCV frame / scale,
            0 where invalid.
        valid: [*, S, H, W] bool, the pixels with a valid depth.
        scale: [*] float32, metres per normalised unit (1 without normalisation).
    """

    pose_enc: Tensor
    extrinsics: Tensor
    intrinsics: Tensor
    depth: Tensor
    world_points: Tensor
    valid: Tensor
    scale: Tensor

    def to(self, device: torch.device | str) -> VGGTTargets:
        """The same targets on ``device``."""
        return VGGTTargets(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def _hfovs(hfov: float | Sequence[float] | np.ndarray, num_frames: int) -> list[float]:
    values = np.atleast_1d(np.asarray(hfov, dtype=np.float64))
    if values.ndim != 1 or len(values) not in (1, num_frames):
        raise ValueError(
            f"hfov must be one number or one per frame ({num_frames}), got shape {values.shape}"
        )
    values = np.broadcast_to(values, (num_frames,))
    return [validate_hfov(v) for v in values]


def _check_inputs(poses: np.ndarray, depth: np.ndarray) -> None:
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) < 1:
        raise ValueError(f"poses must be [S, 4, 4] with S >= 1, got shape {poses.shape}")
    if not np.all(np.isfinite(poses)):
        raise ValueError("poses must be finite")
    if depth.ndim != 3 or depth.shape[0] != poses.shape[0] or 0 in depth.shape:
        raise ValueError(
            f"depth must be [S={poses.shape[0]}, H, W] with H, W >= 1, got shape {depth.shape}"
        )


def vggt_targets(
    poses: np.ndarray,
    hfov: float | Sequence[float] | np.ndarray,
    depth: np.ndarray,
    *,
    max_depth: float | None = None,
    sensor_size: tuple[int, int] | None = None,
    normalize: bool = True,
) -> VGGTTargets:
    """VGGT's targets for one sequence of simulator frames (formulas: module docstring).

    Args:
        poses: [S, 4, 4] habitat camera-to-world poses; frame 0 becomes the world.
        hfov: horizontal FoV in degrees of the sensor, a number or [S].
        depth: [S, H, W] planar metric depth at the target size, 0 / non-finite = invalid.
        max_depth: the depth sensor's range (metres); depth at or beyond it is invalid. None:
            no range check.
        sensor_size: (H0, W0) of the sensor ``hfov`` belongs to (square pixels), when ``depth``
            was resized from it; None = the depth's own size.
        normalize: divide by VGGT's scale ``s`` (mean distance of the valid points to the first
            camera); False keeps metres (``scale`` = 1).

    Returns:
        `VGGTTargets` with leading dims [S] (``scale`` a 0-d tensor).

    Raises:
        ValueError: bad shapes / values, or ``normalize`` with no valid pixel in the sequence
            (the scale is undefined).
    """
    poses = np.asarray(poses, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    _check_inputs(poses, depth)
    num_frames, height, width = depth.shape
    hfovs = _hfovs(hfov, num_frames)
    if sensor_size is None:
        sensor_size = (height, width)
    sensor_h, sensor_w = sensor_size
    intrinsics = np.stack(
        [
            resize_intrinsics(
                intrinsics_from_hfov(h, sensor_w, sensor_h), sensor_size, (height, width)
            )
            for h in hfovs
        ]
    )  # [S, 3, 3]

    valid = np.isfinite(depth) & (depth > MIN_DEPTH)
    if max_depth is not None:
        if not (np.isfinite(max_depth) and max_depth > 0):
            raise ValueError(f"max_depth must be a finite number > 0, got {max_depth!r}")
        valid &= depth < float(max_depth) - MAX_DEPTH_MARGIN
    depth = np.where(valid, depth, 0.0)

    extrinsics = habitat_pose_to_opencv_extrinsic(poses, reference_pose=poses[0])  # [S, 3, 4]
    u, v = pixel_centers(height, width)  # [H, W] each
    fx, fy = intrinsics[:, 0, 0, None, None], intrinsics[:, 1, 1, None, None]  # [S, 1, 1]
    cx, cy = intrinsics[:, 0, 2, None, None], intrinsics[:, 1, 2, None, None]
    cam_points = np.stack(
        [depth * (u - cx) / fx, depth * (v - cy) / fy, depth], axis=-1
    )  # [S, H, W, 3], OpenCV camera frame of each frame
    cam_from_first = np.zeros((num_frames, 4, 4))
    cam_from_first[:, :3] = extrinsics
    cam_from_first[:, 3, 3] = 1.0
    world = transform_points(
        invert_pose(cam_from_first), cam_points.reshape(num_frames, height * width, 3)
    ).reshape(num_frames, height, width, 3)  # first camera's OpenCV frame
    world = np.where(valid[..., None], world, 0.0)

    scale = 1.0
    if normalize:
        if not valid.any():
            raise ValueError(
                "no valid depth pixel in the sequence: VGGT's scale (mean distance of the valid "
                "points to the first camera) is undefined"
            )
        scale = float(np.linalg.norm(world[valid], axis=-1).mean())
    extrinsics = extrinsics.copy()
    extrinsics[..., 3] /= scale
    pose_enc = extri_intri_to_pose_encoding(
        torch.from_numpy(extrinsics), torch.from_numpy(intrinsics), (height, width)
    )  # [S, 9] float64
    return VGGTTargets(
        pose_enc=pose_enc.float(),
        extrinsics=torch.from_numpy(extrinsics).float(),
        intrinsics=torch.from_numpy(intrinsics).float(),
        depth=torch.from_numpy(depth / scale).float(),
        world_points=torch.from_numpy(world / scale).float(),
        valid=torch.from_numpy(valid),
        scale=torch.tensor(scale, dtype=torch.float32),
    )


def stack_targets(targets: Sequence[VGGTTargets]) -> VGGTTargets:
    """Per-sequence targets (same S, H, W) -> one batch with leading dim B = len(targets)."""
    if not targets:
        raise ValueError("stack_targets needs at least one sequence")
    shapes = {tuple(t.depth.shape) for t in targets}
    if len(shapes) != 1:
        raise ValueError(f"sequences must share [S, H, W] to be stacked, got {sorted(shapes)}")
    return VGGTTargets(
        **{f.name: torch.stack([getattr(t, f.name) for t in targets]) for f in fields(VGGTTargets)}
    )


def reference_overlap(targets: VGGTTargets) -> Tensor:
    """Per frame, the fraction of the reference frame's (frame 0's) valid pixels whose 3-D
    point lands inside that frame's image: ``[*, S]`` in [0, 1], 1 for the reference itself.

    A point ``W`` (``world_points[..., 0, :, :, :]``, the first camera's OpenCV frame) lands in
    frame ``j`` when ``X = R_j W + t_j`` (``extrinsics``, the same normalised units) has
    ``z > 0`` and its pixel ``K_j X / z`` lies within ``[0, W] x [0, H]`` (the image's edges).
    A frustum test without occlusion: what frame ``j`` could have seen of the reference view.
    A reference without a valid pixel gives 0 for every other frame.
    """
    points = targets.world_points[..., 0, :, :, :].double()  # [*, H, W, 3]
    valid = targets.valid[..., 0, :, :]  # [*, H, W]
    height, width = valid.shape[-2:]
    rot = targets.extrinsics[..., :3, :3].double()  # [*, S, 3, 3]
    trans = targets.extrinsics[..., :3, 3].double()  # [*, S, 3]
    flat = points.reshape(*points.shape[:-3], 1, height * width, 3)  # [*, 1, N, 3]
    cam = flat @ rot.transpose(-1, -2) + trans[..., None, :]  # [*, S, N, 3]
    k = targets.intrinsics.double()  # [*, S, 3, 3]
    z = cam[..., 2]
    zs = z.clamp_min(1e-12)
    u = k[..., 0, 0, None] * cam[..., 0] / zs + k[..., 0, 2, None]
    v = k[..., 1, 1, None] * cam[..., 1] / zs + k[..., 1, 2, None]
    inside = (z > 0) & (u >= 0) & (u <= width) & (v >= 0) & (v <= height)  # [*, S, N]
    mask = valid.reshape(*valid.shape[:-2], 1, height * width)  # [*, 1, N]
    count = mask.sum(-1).clamp_min(1)
    overlap = (inside & mask).sum(-1).float() / count.float()  # [*, S]
    overlap[..., 0] = 1.0
    return overlap
