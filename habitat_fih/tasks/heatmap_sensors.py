"""FIH-VLN-v0's frame-indexed sensors (fixed-shape numpy dicts that batch in a VectorEnv).

- :class:`FrameIndexedHeatmapSensor` (uuid ``frame_heatmaps``): for each memory slot, heatmaps on
  the CURRENT view, keyed by the slot's original step index:

  ======================== ================ ==============================================
  key                      shape / dtype    meaning
  ======================== ================ ==============================================
  ``frame_indices``        [M] int64        original step index of each slot, -1 = empty
  ``covisibility``         [M,h,w] float32  area fraction of each output cell whose surface
                                            the memory frame also saw (occlusion-aware)
  ``covisibility_valid``   [M] uint8        covisible fraction of the view's VALID pixels
                                            (depth in range) > min_overlap
  ``camera_position``      [M,h,w] float32  Gaussian (peak 1, sigma in cells) at the memory
                                            camera's projection; 0 unless in view
  ``camera_position_status`` [M] int64      geometry.CameraStatus (IN_VIEW 0, BEHIND 1,
                                            OUT_OF_VIEW 2, OCCLUDED 3, SAME_POSITION 4 (the
                                            camera centres coincide, e.g. after a turn in
                                            place), empty slot -1)
  ======================== ================ ==============================================

  ``target_kinds`` selects which of the two target kinds are emitted.
- :class:`FrameGeometrySensor` (uuid ``frame_geometry``): camera geometry of the memory slots and
  the current frame (last row): ``frame_indices`` [M+1], ``extrinsics`` [M+1,3,4] (OpenCV
  camera-from-world, x right / y down / z forward, relative to the episode's FIRST frame as VGGT
  predicts them), ``intrinsics`` [M+1,3,3] for ``image_size`` and the depth sensor's hfov,
  ``valid`` [M+1] uint8, and ``current_depth`` [h0,w0] float32: the current frame's planar depth
  in metres at the task's working resolution (0 = invalid), the depth its targets are computed
  from (the trainer's cross-frame alignment pairs are built from it,
  `habitat_fih.trainers.correspondences`).

Both read :meth:`FIHVLNTask.targets`, computed once per step; M is the task's memory_max_frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gym import spaces
from habitat.core.registry import registry
from habitat.core.simulator import Sensor, SensorTypes

from habitat_fih.geometry import CameraStatus, area_average, camera_position_heatmaps
from habitat_fih.geometry.camera import habitat_pose_to_opencv_extrinsic, intrinsics_from_hfov

__all__ = ["FrameGeometrySensor", "FrameIndexedHeatmapSensor", "TARGET_KINDS"]

TARGET_KINDS = ("covisibility", "camera_position")


def _require_fih_task(task: Any, sensor: str):
    if task is None or not hasattr(task, "frame_memory"):
        raise TypeError(
            f"{sensor} needs the FIH-VLN-v0 task (habitat.task.type=FIH-VLN-v0); got "
            f"{type(task).__name__}"
        )
    return task


@registry.register_sensor
class FrameIndexedHeatmapSensor(Sensor):
    cls_uuid = "frame_heatmaps"

    def __init__(self, sim, config, *args: Any, task=None, **kwargs: Any) -> None:
        self.memory_max_frames = _require_fih_task(task, type(self).__name__).frame_memory.max_frames
        self.out_size = (int(config.height), int(config.width))
        kinds = tuple(config.target_kinds)
        bad = [k for k in kinds if k not in TARGET_KINDS]
        if bad or not kinds:
            raise ValueError(f"target_kinds {list(kinds)} invalid; expected a non-empty subset of {TARGET_KINDS}")
        self.kinds = kinds
        self.sigma = float(config.camera_sigma)
        self.min_overlap = float(config.min_overlap)
        super().__init__(config=config)

    def _get_uuid(self, *args: Any, **kwargs: Any) -> str:
        return self.config.uuid or self.cls_uuid

    def _get_sensor_type(self, *args: Any, **kwargs: Any) -> SensorTypes:
        return SensorTypes.TENSOR

    def _get_observation_space(self, *args: Any, **kwargs: Any) -> spaces.Dict:
        m, (h, w) = self.memory_max_frames, self.out_size
        space = {"frame_indices": spaces.Box(-1, np.iinfo(np.int64).max, (m,), np.int64)}
        if "covisibility" in self.kinds:
            space["covisibility"] = spaces.Box(0.0, 1.0, (m, h, w), np.float32)
            space["covisibility_valid"] = spaces.Box(0, 1, (m,), np.uint8)
        if "camera_position" in self.kinds:
            space["camera_position"] = spaces.Box(0.0, 1.0, (m, h, w), np.float32)
            space["camera_position_status"] = spaces.Box(-1, 4, (m,), np.int64)
        return spaces.Dict(space)

    def get_observation(self, observations, *args: Any, episode=None, task=None, **kwargs: Any):
        targets = task.targets(observations)
        filled = targets.filled
        out: dict[str, np.ndarray] = {"frame_indices": targets.memory_steps.copy()}
        if "covisibility" in self.kinds:
            out["covisibility"] = area_average(targets.covisible, self.out_size).astype(np.float32)
            out["covisibility_valid"] = ((targets.overlap > self.min_overlap) & filled).astype(np.uint8)
        if "camera_position" in self.kinds:
            m, (h, w) = self.memory_max_frames, self.out_size
            maps = np.zeros((m, h, w), dtype=np.float32)
            status = np.full(m, int(CameraStatus.MASKED), dtype=np.int64)
            if filled.any():
                cur = targets.current
                res = camera_position_heatmaps(
                    cur.depth, cur.pose, targets.memory_poses[filled], task.hfov, self.out_size,
                    sigma=self.sigma, abs_tol=task.abs_tol, rel_tol=task.rel_tol,
                )
                maps[filled], status[filled] = res.maps, res.status
            out["camera_position"], out["camera_position_status"] = maps, status
        return out


@registry.register_sensor
class FrameGeometrySensor(Sensor):
    cls_uuid = "frame_geometry"

    def __init__(self, sim, config, *args: Any, task=None, **kwargs: Any) -> None:
        task = _require_fih_task(task, type(self).__name__)
        self.memory_max_frames = task.frame_memory.max_frames
        self.depth_size = tuple(task.working_size)
        self.image_size = (int(config.image_size[0]), int(config.image_size[1]))
        super().__init__(config=config)

    def _get_uuid(self, *args: Any, **kwargs: Any) -> str:
        return self.config.uuid or self.cls_uuid

    def _get_sensor_type(self, *args: Any, **kwargs: Any) -> SensorTypes:
        return SensorTypes.TENSOR

    def _get_observation_space(self, *args: Any, **kwargs: Any) -> spaces.Dict:
        n = self.memory_max_frames + 1
        big = np.finfo(np.float32).max
        return spaces.Dict(
            {
                "frame_indices": spaces.Box(-1, np.iinfo(np.int64).max, (n,), np.int64),
                "extrinsics": spaces.Box(-big, big, (n, 3, 4), np.float32),
                "intrinsics": spaces.Box(0.0, big, (n, 3, 3), np.float32),
                "valid": spaces.Box(0, 1, (n,), np.uint8),
                "current_depth": spaces.Box(0.0, big, self.depth_size, np.float32),
            }
        )

    def get_observation(self, observations, *args: Any, episode=None, task=None, **kwargs: Any):
        targets = task.targets(observations)
        poses = np.concatenate([targets.memory_poses, targets.current.pose[None]], axis=0)
        steps = np.concatenate([targets.memory_steps, [targets.step]]).astype(np.int64)
        valid = steps >= 0
        extrinsics = np.zeros((len(steps), 3, 4), dtype=np.float32)
        extrinsics[valid] = habitat_pose_to_opencv_extrinsic(poses[valid], task.first_pose)
        h, w = self.image_size
        intr = intrinsics_from_hfov(task.hfov, w, h).astype(np.float32)
        return {
            "frame_indices": steps,
            "extrinsics": extrinsics,
            "intrinsics": np.where(valid[:, None, None], intr[None], 0.0).astype(np.float32),
            "valid": valid.astype(np.uint8),
            "current_depth": targets.current.depth.astype(np.float32, copy=True),
        }
