"""FIH-VLN-v0: habitat's VLN task plus a per-episode frame memory and frame-indexed targets.

At every step (reset included) the task's sensors see:

- the CURRENT frame: pose of the depth sensor (``sim.get_agent_state().sensor_states[uuid]``)
  and its depth in metres at the working resolution, recovered from the depth observation
  (``HabitatSimDepthSensor`` clips to ``[min_depth, max_depth]`` and may normalise: the task
  inverts that; pixels at ``max_depth`` (true depth unknown) and at ``min_depth`` when it is 0
  (no hit) become invalid, 0). Depth is resampled to the working resolution at the working
  pixels' CENTRES (:func:`~habitat_fih.geometry.surface.resample_depth`: exact on planes,
  nearest surface at depth edges, never a blend across an edge); nearest-pixel striding would
  sample half an input pixel off the centre ray, many per cent of depth on a grazing floor.
- the MEMORY of past frames (:class:`~habitat_fih.tasks.frame_memory.FrameMemory`), which does
  NOT yet contain the current frame; the current frame is added after the sensors ran.

Targets are computed once per step (:meth:`FIHVLNTask.targets`) and shared by the sensors and the
measures: per-pixel covisibility of each memory frame on the current view at the working
resolution (the sensor area-averages it to its output size) and the memory cameras' positions.

Predictions: an agent may pass its predicted heatmaps with any action as
``action_args["frame_heatmap_prediction"] = {"maps": [K,h,w] in [0,1], "frame_indices": [K]}``
(original step indices). The task takes them out before habitat's actions run and keeps them for
the ``FrameHeatmapQuality`` measure together with the targets of the view the agent saw when it
predicted (``prediction_targets``: the step BEFORE the action; measures update after it, on the
next view); a missing prediction is allowed.

Only habitat's generic simulator interface is used, so the task runs on FIHSim-v0 and habitat-sim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from habitat.core.registry import registry
from habitat.tasks.vln.vln import VLNTask

from habitat_fih.geometry import covisibility_heatmaps
from habitat_fih.geometry.camera import pose_from_agent_state
from habitat_fih.geometry.surface import SurfaceTables, numpy_tables, working_depth
from habitat_fih.tasks.frame_memory import Frame, FrameMemory

__all__ = ["FIHVLNTask", "FrameTargets", "PREDICTION_KEY"]

PREDICTION_KEY = "frame_heatmap_prediction"


@dataclass(frozen=True)
class FrameTargets:
    """Targets of the memory frames on the current view at one step.

    Attributes:
        step: the current step index.
        current: the current frame (pose, working-resolution depth).
        memory_steps: [M] int64 original step indices of the memory slots (-1 empty).
        memory_poses: [M,4,4] camera-to-world poses (identity in empty slots).
        memory_depths: [M,h0,w0] working-resolution depths (0 in empty slots).
        covisible: [M,h0,w0] float32 per-pixel covisibility (0/1) on the current view.
        overlap: [M] float32 covisible fraction of the current view.
    """

    step: int
    current: Frame
    memory_steps: np.ndarray
    memory_poses: np.ndarray
    memory_depths: np.ndarray
    covisible: np.ndarray
    overlap: np.ndarray

    @property
    def filled(self) -> np.ndarray:
        return self.memory_steps >= 0


def _depth_sensor_config(sim: Any, uuid: str):
    sensors = sim.sensor_suite.sensors
    if uuid not in sensors:
        raise ValueError(
            f"FIH-VLN-v0 needs a depth sensor with uuid {uuid!r} (habitat.task.depth_sensor_uuid); "
            f"the simulator's sensors are {sorted(sensors)}"
        )
    return sensors[uuid].config


@registry.register_task(name="FIH-VLN-v0")
class FIHVLNTask(VLNTask):
    """VLN with frame memory and frame-indexed heatmap targets (see the module docstring)."""

    def __init__(self, config, sim, dataset=None) -> None:
        # Set before habitat builds the sensors and measures, which read them from the task.
        self.depth_uuid: str = config.depth_sensor_uuid
        self.working_size = (int(config.working_resolution), int(config.working_resolution))
        self.abs_tol = float(config.covisibility_abs_tol)
        self.rel_tol = float(config.covisibility_rel_tol)
        depth_cfg = _depth_sensor_config(sim, self.depth_uuid)
        self.hfov = float(depth_cfg.hfov)
        self._min_depth = float(depth_cfg.min_depth)
        self._max_depth = float(depth_cfg.max_depth)
        self._normalized = bool(depth_cfg.normalize_depth)
        self.frame_memory = FrameMemory(int(config.memory_max_frames), config.memory_policy)
        self.step_index = 0
        self.first_pose: np.ndarray | None = None
        self.prediction: dict[str, np.ndarray] | None = None
        self.prediction_targets: FrameTargets | None = None
        self._targets: FrameTargets | None = None
        self._tables: SurfaceTables | None = None  # per memory slot (built once per frame)
        self._slots: dict[int, int] = {}  # remembered step -> slot in self._tables
        super().__init__(config=config, sim=sim, dataset=dataset)

    # ------------------------------------------------------------------ episode flow
    def reset(self, episode):
        self.frame_memory.clear()
        self._slots = {}
        self.step_index = 0
        self.first_pose = None
        self.prediction = None
        self.prediction_targets = None
        self._targets = None
        observations = super().reset(episode)
        self._remember(observations)
        return observations

    def step(self, action: dict[str, Any], episode):
        args = action.get("action_args") or {}
        self.prediction = args.pop(PREDICTION_KEY, None)
        # the prediction is about the view the agent acted on: this step's targets (cached by
        # the sensors / _remember for step_index), not those of the view the action leads to
        self.prediction_targets = self._targets if self.prediction is not None else None
        action["action_args"] = args
        self.step_index += 1
        self._targets = None
        observations = super().step(action, episode)
        self._remember(observations)
        return observations

    def _remember(self, observations) -> None:
        frame = self.targets(observations).current
        self.frame_memory.add(frame)
        # the surface tables of each remembered frame are built once, into a free slot
        kept = set(self.frame_memory.steps)
        self._slots = {s: k for s, k in self._slots.items() if s in kept}
        if self._tables is None:
            m, (h, w) = self.frame_memory.max_frames, self.working_size
            self._tables = SurfaceTables(
                cell=np.zeros((3, m, h + 1, w + 1), dtype=np.float32),
                pixel=np.zeros((5, m, h + 2, w + 2), dtype=np.float32),
            )
        slot = min(set(range(self.frame_memory.max_frames)) - set(self._slots.values()))
        tables = numpy_tables(frame.depth[None], self.abs_tol, self.rel_tol)
        self._tables.cell[:, slot] = tables.cell[:, 0]
        self._tables.pixel[:, slot] = tables.pixel[:, 0]
        self._slots[frame.step] = slot

    # ------------------------------------------------------------------ targets
    def current_frame(self, observations) -> Frame:
        state = self._sim.get_agent_state().sensor_states[self.depth_uuid]
        pose = pose_from_agent_state(state.position, state.rotation)
        depth = self._metric_depth(observations[self.depth_uuid])
        return Frame(step=self.step_index, pose=pose, depth=depth)

    def _metric_depth(self, obs: np.ndarray) -> np.ndarray:
        depth = self.sensor_depth(obs)
        return working_depth(depth, self.working_size, self.abs_tol, self.rel_tol, self._max_depth)

    @property
    def max_depth(self) -> float:
        """The depth sensor's range in metres."""
        return self._max_depth

    def sensor_depth(self, obs: np.ndarray) -> np.ndarray:
        """A depth observation [H, W, 1] -> planar metres [H, W] float32 at the sensor's
        resolution, 0 = invalid (no hit, or at the range's end); see the module docstring."""
        depth = np.asarray(obs, dtype=np.float32)[..., 0]
        if self._normalized:
            depth = depth * (self._max_depth - self._min_depth) + self._min_depth
        invalid = depth >= self._max_depth - 1e-4
        if self._min_depth <= 0.0:
            invalid |= depth <= 0.0
        return np.where(invalid, np.float32(0.0), depth)

    def targets(self, observations) -> FrameTargets:
        """This step's targets (computed once per step, shared by sensors and measures)."""
        if self._targets is not None and self._targets.step == self.step_index:
            return self._targets
        current = self.current_frame(observations)
        if self.first_pose is None:
            self.first_pose = current.pose
        steps, poses, depths = self.frame_memory.padded(self.working_size)
        filled = steps >= 0
        covisible = np.zeros((len(steps), *self.working_size), dtype=np.float32)
        overlap = np.zeros(len(steps), dtype=np.float32)
        if filled.any():
            result = covisibility_heatmaps(
                current.depth,
                current.pose,
                depths[filled],
                poses[filled],
                self.hfov,
                self.working_size,
                abs_tol=self.abs_tol,
                rel_tol=self.rel_tol,
                source_tables=(self._tables, [self._slots[int(t)] for t in steps[filled]]),
            )
            covisible[filled] = result.maps
            overlap[filled] = result.overlap
        self._targets = FrameTargets(
            step=self.step_index,
            current=current,
            memory_steps=steps,
            memory_poses=poses,
            memory_depths=depths,
            covisible=covisible,
            overlap=overlap,
        )
        return self._targets
