"""`fih-infer --heatmaps geometry`: the non-learned frame-indexed maps from cameras + depth.

A `FrameGeometry` holds, for the video's chosen frames, camera-to-world poses (habitat's camera
convention), planar depth at a working resolution, one horizontal FoV and the co-visibility
tolerances. Its maps are exactly the FIH-VLN-v0 targets' rule
(:func:`habitat_fih.geometry.covisibility_heatmaps` at the working resolution, then area-averaged
to the output size, as the ``frame_heatmaps`` sensor does): for keyframe ``k`` and the current
view, the fraction of each output cell whose surface keyframe ``k`` also saw, occlusion-aware.

Two sources:

* :func:`from_sidecar` — the known geometry of a recorded video
  (:mod:`habitat_fih.datasets.sidecar`): the sensor-resolution depth goes through the task's own
  :func:`~habitat_fih.geometry.surface.working_depth` with the tolerances recorded in the
  sidecar, so on a simulator clip the maps ARE the task's covisibility targets.
* :func:`from_vggt` — VGGT's predictions: cameras decoded from its pose encoding
  (world = the first frame's camera), its depth map and one FoV for the video (the median of the
  per-frame predictions: one camera). VGGT sees the frames squashed to a square; its depth is
  resampled to the video's aspect ratio (``working_resolution`` rows) so pixels are square
  again, and the horizontal FoV is VGGT's ``fov_w``. Depth and tolerances are in VGGT's units
  (its scene scale), so ``abs_tol`` is relative to that scale; meaningful with VGGT-1B weights.

Keyframes for the geometry maps are picked by the same samplers as the model, from the
source's world points (the sidecar's depth back-projected, confidence 1 where depth is valid; or
VGGT's world points and confidences).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from habitat_fih.datasets.sidecar import Sidecar
from habitat_fih.geometry import area_average, covisibility_heatmaps
from habitat_fih.geometry.camera import (
    depth_to_world_points,
    habitat_pose_to_opencv_extrinsic,
    opencv_extrinsic_to_habitat_pose,
)
from habitat_fih.geometry.surface import resample_depth, working_depth
from habitat_fih.infer.settings import GeometrySettings, InferInputError
from habitat_fih.models.vggt.pose_encoding import (
    extri_intri_to_pose_encoding,
    pose_encoding_to_extri_intri,
)

__all__ = [
    "FrameGeometry",
    "check_frame_count",
    "from_sidecar",
    "from_vggt",
    "sidecar_pose_encodings",
]


@dataclass
class FrameGeometry:
    """Known or predicted geometry of the N chosen frames (module docstring).

    Attributes:
        origin: ``"sidecar"`` or ``"vggt"``.
        poses: [N, 4, 4] camera-to-world (habitat camera convention).
        depth: [N, h, w] float32 working-resolution planar depth, 0 = invalid.
        hfov: horizontal FoV in degrees (one camera for the whole video).
        abs_tol, rel_tol, min_overlap: co-visibility settings.
        world_points: [N, h, w, 3] float32 and world_points_conf [N, h, w] for the samplers.
    """

    origin: str
    poses: np.ndarray
    depth: np.ndarray
    hfov: float
    abs_tol: float
    rel_tol: float
    min_overlap: float
    world_points: np.ndarray
    world_points_conf: np.ndarray

    def maps(
        self, current: int, keyframes: list[int], out_size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Maps [K, *out_size] of frames `keyframes` on frame `current` (positions in the N
        chosen frames), their validity [K] (overlap > min_overlap) and overlap [K]."""
        if not keyframes:
            h, w = out_size
            return np.zeros((0, h, w), np.float32), np.zeros(0, bool), np.zeros(0, np.float32)
        work = tuple(self.depth.shape[1:])
        result = covisibility_heatmaps(
            self.depth[current],
            self.poses[current],
            self.depth[keyframes],
            self.poses[keyframes],
            self.hfov,
            work,
            abs_tol=self.abs_tol,
            rel_tol=self.rel_tol,
            min_overlap=self.min_overlap,
        )
        maps = area_average(result.maps, out_size).astype(np.float32)
        return maps, result.valid, result.overlap


def _points(depth: np.ndarray, poses: np.ndarray, hfov: float) -> tuple[np.ndarray, np.ndarray]:
    points = depth_to_world_points(depth, poses, hfov).astype(np.float32)  # [N, h, w, 3]
    return points, (depth > 0).astype(np.float32)


def check_frame_count(sidecar: Sidecar, total_frames: int, path: str) -> None:
    """`InferInputError` unless the sidecar describes exactly the video's `total_frames`."""
    if sidecar.num_frames != total_frames:
        raise InferInputError(
            f"--geometry-from {path!r} describes {sidecar.num_frames} frames but the video has "
            f"{total_frames}: not this video's sidecar"
        )


def from_sidecar(sidecar: Sidecar, indices: np.ndarray, total_frames: int, path: str) -> FrameGeometry:
    """The sidecar's geometry of the video frames `indices` (original indices)."""
    check_frame_count(sidecar, total_frames, path)
    rows = np.asarray(indices, dtype=np.int64)
    size = (sidecar.working_resolution, sidecar.working_resolution)
    depth = np.stack(
        [
            working_depth(sidecar.depth[i], size, sidecar.abs_tol, sidecar.rel_tol, sidecar.max_depth)
            for i in rows
        ]
    )
    poses = sidecar.poses[rows]
    points, conf = _points(depth, poses, sidecar.hfov)
    return FrameGeometry(
        origin="sidecar",
        poses=poses,
        depth=depth,
        hfov=sidecar.hfov,
        abs_tol=sidecar.abs_tol,
        rel_tol=sidecar.rel_tol,
        min_overlap=sidecar.min_overlap,
        world_points=points,
        world_points_conf=conf,
    )


def sidecar_pose_encodings(sidecar: Sidecar, indices: np.ndarray) -> torch.Tensor:
    """VGGT pose encodings [N, 9] of the frames `indices` (world = the first of them), as the
    trainer's ``frame_geometry`` inputs: the cameras of a ``geometry_prior: input`` model."""
    rows = np.asarray(indices, dtype=np.int64)
    ext = habitat_pose_to_opencv_extrinsic(sidecar.poses[rows], sidecar.poses[rows[0]])
    h, w = sidecar.depth.shape[1:]
    enc = extri_intri_to_pose_encoding(
        torch.as_tensor(ext, dtype=torch.float64),
        torch.as_tensor(sidecar.intrinsics[rows], dtype=torch.float64),
        (float(h), float(w)),
    )
    return enc.float()


def from_vggt(
    out: dict[str, torch.Tensor], video_size: tuple[int, int], settings: GeometrySettings
) -> FrameGeometry:
    """Geometry from one VGGT forward over the chosen frames (``out`` of ``VGGT.forward`` with
    batch 1: ``pose_enc`` [1, N, 9], ``depth`` [1, N, R, R, 1], ``world_points`` /
    ``world_points_conf``)."""
    if "pose_enc" not in out or "depth" not in out:
        raise InferInputError(
            "--heatmaps geometry needs VGGT's camera and depth heads (vggt.enable_camera / "
            "enable_depth in the model config)"
        )
    enc = out["pose_enc"][0].detach().double().cpu()  # [N, 9]
    r = int(out["depth"].shape[-2])
    ext, _ = pose_encoding_to_extri_intri(enc, (r, r))
    poses = opencv_extrinsic_to_habitat_pose(ext.numpy())  # [N, 4, 4]
    hfov = math.degrees(float(enc[:, 8].median()))
    if not 0.0 < hfov < 180.0:
        raise InferInputError(
            f"VGGT predicted a horizontal FoV of {hfov:.1f} degrees (expected 0-180): its "
            "cameras are unusable for geometry maps (a random-init VGGT predicts such values; "
            "give --vggt-dir with VGGT-1B weights, or --geometry-from with known cameras)"
        )
    height, width = video_size
    rows = settings.working_resolution
    size = (rows, max(1, round(rows * width / height)))
    raw = out["depth"][0, ..., 0].detach().float().cpu().numpy()  # [N, R, R]
    raw = np.where(np.isfinite(raw) & (raw > 0), raw, 0.0).astype(np.float32)
    depth = np.stack(
        [resample_depth(d, size, settings.abs_tol, settings.rel_tol) for d in raw]
    ).astype(np.float32)
    return FrameGeometry(
        origin="vggt",
        poses=poses,
        depth=depth,
        hfov=hfov,
        abs_tol=float(settings.abs_tol),
        rel_tol=float(settings.rel_tol),
        min_overlap=float(settings.min_overlap),
        world_points=out["world_points"][0].detach().float().cpu().numpy(),
        world_points_conf=out["world_points_conf"][0].detach().float().cpu().numpy(),
    )
