"""Structured configs (dataclasses) for habitat-fih's measures and lab sensors.

One dataclass per registered measure / sensor, each subclassing habitat's ``MeasurementConfig`` /
``LabSensorConfig`` with ``type`` set to the registered class name, stored in Hydra's ConfigStore
under habitat's groups with habitat-fih's own names (habitat's nodes are never replaced):

- ``habitat/task/measurements``: ``path_length``, ``oracle_navigation_error``,
  ``oracle_success``, ``oracle_spl``, ``steps_taken``, ``ndtw``, ``sdtw``;
- ``habitat/task/measurements`` (FIH): ``frame_heatmap_quality``,
  ``frame_camera_position_quality``, ``memory_coverage``;
- ``habitat/task/lab_sensors``: ``shortest_path_sensor``, ``vln_oracle_progress_sensor``,
  ``frame_heatmaps``, ``frame_geometry``;
- ``habitat/task``: ``fih_vln_task_config_base`` (the FIH-VLN-v0 task schema);
- ``habitat/simulator``: ``fih_sim_v0`` (habitat's SimulatorConfig with ``type: FIHSim-v0`` and
  FIHSim-v0's ``navmesh_settings``), selected in a benchmark's defaults list as
  ``- /habitat/simulator@habitat.simulator: fih_sim_v0``.

Select them in a config's defaults list or from the command line, e.g.
``+habitat/task/measurements@habitat.task.measurements.ndtw=ndtw
habitat.task.measurements.ndtw.split=val_unseen``. Measures that read other measures must be
listed after them (OracleNavigationError / OracleSuccess after distance_to_goal, OracleSPL after
spl, SDTW after success and ndtw). This module imports no simulator code and no measure classes;
the classes live in :mod:`habitat_fih.tasks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from habitat.config.default_structured_configs import (
    LabSensorConfig,
    MeasurementConfig,
    SimulatorConfig,
    TaskConfig,
)
from hydra.core.config_store import ConfigStore

__all__ = [
    "FIHNavMeshSettingsConfig",
    "FIHSimulatorConfig",
    "FIHVLNTaskConfig",
    "FrameGeometrySensorConfig",
    "FrameCameraPositionQualityMeasurementConfig",
    "FrameHeatmapQualityMeasurementConfig",
    "FrameIndexedHeatmapSensorConfig",
    "MemoryCoverageMeasurementConfig",
    "NDTWMeasurementConfig",
    "OracleNavigationErrorMeasurementConfig",
    "OracleSPLMeasurementConfig",
    "OracleSuccessMeasurementConfig",
    "PathLengthMeasurementConfig",
    "SDTWMeasurementConfig",
    "ShortestPathSensorConfig",
    "StepsTakenMeasurementConfig",
    "VLNOracleProgressSensorConfig",
]


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------


@dataclass
class PathLengthMeasurementConfig(MeasurementConfig):
    """Euclidean length of the agent's path (metric ``path_length``)."""

    type: str = "PathLength"


@dataclass
class OracleNavigationErrorMeasurementConfig(MeasurementConfig):
    """Smallest distance_to_goal over the episode (``oracle_navigation_error``); needs
    distance_to_goal listed before it."""

    type: str = "OracleNavigationError"


@dataclass
class OracleSuccessMeasurementConfig(MeasurementConfig):
    """1 once distance_to_goal < ``success_distance``, latched (``oracle_success``); needs
    distance_to_goal listed before it.

    :property success_distance: metres; VLN-CE uses 3.0.
    """

    type: str = "OracleSuccess"
    success_distance: float = 3.0


@dataclass
class OracleSPLMeasurementConfig(MeasurementConfig):
    """Largest spl over the episode (``oracle_spl``); needs spl listed before it."""

    type: str = "OracleSPL"


@dataclass
class StepsTakenMeasurementConfig(MeasurementConfig):
    """Number of actions taken, STOP included (``steps_taken``)."""

    type: str = "StepsTaken"


@dataclass
class NDTWMeasurementConfig(MeasurementConfig):
    """Normalised dynamic time warping against the reference path (``ndtw``).

    :property success_distance: normaliser, metres; VLN-CE uses 3.0.
    :property gt_path: VLN-CE ground-truth file, may contain ``{split}``, e.g.
        ``data/datasets/R2R_VLNCE_v1-3_preprocessed/{split}/{split}_gt.json.gz``; its
        ``locations`` are the reference path. Empty: use each episode's ``reference_path``.
        On Hydra's command line quote the value (``...ndtw.gt_path='data/{split}_gt.json.gz'``).
    :property split: substituted for ``{split}`` in ``gt_path``; set it to the dataset's split.
    """

    type: str = "NDTW"
    success_distance: float = 3.0
    gt_path: str = ""
    split: str = "val_seen"


@dataclass
class SDTWMeasurementConfig(MeasurementConfig):
    """success · ndtw (``sdtw``); needs success and ndtw listed before it."""

    type: str = "SDTW"


# ---------------------------------------------------------------------------------------------
# Lab sensors
# ---------------------------------------------------------------------------------------------


@dataclass
class ShortestPathSensorConfig(LabSensorConfig):
    """The expert's next action (observation ``shortest_path_sensor``, ``[1]`` int).

    :property goal_radius: the greedy follower stops within this many metres of the goal.
    """

    type: str = "ShortestPathSensor"
    goal_radius: float = 0.5


@dataclass
class VLNOracleProgressSensorConfig(LabSensorConfig):
    """Progress toward the goal in [0, 1] (observation ``progress``, ``[1]`` float32)."""

    type: str = "VLNOracleProgressSensor"


# ---------------------------------------------------------------------------------------------
# FIH-VLN-v0: task, frame-indexed sensors and heatmap measures
# ---------------------------------------------------------------------------------------------


@dataclass
class FIHVLNTaskConfig(TaskConfig):
    """FIH-VLN-v0 (habitat's VLN task + frame memory + frame-indexed targets).

    memory_max_frames: frames remembered (the user's design: 32); memory_policy: "uniform" (first
    and latest kept, near-uniform over the history) or "recent"; working_resolution: side of the
    depth kept per frame and of the per-pixel covisibility (targets are area-averaged from it);
    covisibility_abs_tol / rel_tol: depth agreement max(abs, rel * z) in metres.
    """

    type: str = "FIH-VLN-v0"
    depth_sensor_uuid: str = "depth"
    memory_max_frames: int = 32
    memory_policy: str = "uniform"
    working_resolution: int = 64
    covisibility_abs_tol: float = 0.05
    covisibility_rel_tol: float = 0.02


@dataclass
class FrameIndexedHeatmapSensorConfig(LabSensorConfig):
    """Frame-indexed heatmaps of the memory frames on the current view (``frame_heatmaps``).

    M (memory slots) is the task's memory_max_frames; height / width: output map size; target_kinds: any
    of "covisibility", "camera_position"; camera_sigma: Gaussian sigma in output cells;
    min_overlap: covisible fraction above which a covisibility target is valid.
    """

    type: str = "FrameIndexedHeatmapSensor"
    uuid: str = "frame_heatmaps"
    height: int = 64
    width: int = 64
    target_kinds: list[str] = field(default_factory=lambda: ["covisibility", "camera_position"])
    camera_sigma: float = 2.0
    min_overlap: float = 0.01


@dataclass
class FrameGeometrySensorConfig(LabSensorConfig):
    """Poses (OpenCV, relative to the first frame) and intrinsics of memory + current frames."""

    type: str = "FrameGeometrySensor"
    uuid: str = "frame_geometry"
    image_size: list[int] = field(default_factory=lambda: [224, 224])


@dataclass
class FrameHeatmapQualityMeasurementConfig(MeasurementConfig):
    """KL / soft IoU / peak error of predicted vs target heatmaps (``frame_heatmap_quality``)."""

    type: str = "FrameHeatmapQuality"
    min_overlap: float = 0.01
    eps: float = 1e-8


@dataclass
class FrameCameraPositionQualityMeasurementConfig(MeasurementConfig):
    """KL / soft IoU / peak error of predicted vs target camera-position maps
    (``frame_camera_position_quality``): the Gaussian (sigma ``camera_sigma`` cells of the
    prediction's map) at each keyframe camera's projection, only for IN_VIEW cameras."""

    type: str = "FrameCameraPositionQuality"
    camera_sigma: float = 2.0
    eps: float = 1e-8


@dataclass
class MemoryCoverageMeasurementConfig(MeasurementConfig):
    """Mean fraction of the current view covisible with the memory (``memory_coverage``)."""

    type: str = "MemoryCoverage"


# ---------------------------------------------------------------------------------------------
# Simulator
# ---------------------------------------------------------------------------------------------


@dataclass
class FIHNavMeshSettingsConfig:
    """FIHSim-v0's navigability grid (names as habitat-sim's ``NavMeshSettings``; the agent's
    height, radius, max climb and max slope come from the agent config, as habitat-sim's
    ``default_agent_navmesh`` does)."""

    cell_size: float = 0.05  # metres, x-z size of a grid cell (habitat-sim's default)
    cell_height: float = 0.2  # metres, Recast voxel height: head room, climb and filters are judged in these voxels (node heights stay exact)
    region_min_size: int = 20  # islands of fewer than region_min_size**2 cells are dropped
    field_cache_mb: int = 256  # byte budget of the cached geodesic fields per scene


@dataclass
class FIHSimulatorConfig(SimulatorConfig):
    """habitat's SimulatorConfig for FIHSim-v0, plus its ``navmesh_settings``."""

    type: str = "FIHSim-v0"
    navmesh_settings: FIHNavMeshSettingsConfig = field(default_factory=FIHNavMeshSettingsConfig)


# ---------------------------------------------------------------------------------------------
# ConfigStore
# ---------------------------------------------------------------------------------------------

_MEASUREMENTS: dict[str, type[MeasurementConfig]] = {
    "path_length": PathLengthMeasurementConfig,
    "oracle_navigation_error": OracleNavigationErrorMeasurementConfig,
    "oracle_success": OracleSuccessMeasurementConfig,
    "oracle_spl": OracleSPLMeasurementConfig,
    "steps_taken": StepsTakenMeasurementConfig,
    "ndtw": NDTWMeasurementConfig,
    "sdtw": SDTWMeasurementConfig,
    "frame_heatmap_quality": FrameHeatmapQualityMeasurementConfig,
    "frame_camera_position_quality": FrameCameraPositionQualityMeasurementConfig,
    "memory_coverage": MemoryCoverageMeasurementConfig,
}

_LAB_SENSORS: dict[str, type[LabSensorConfig]] = {
    "shortest_path_sensor": ShortestPathSensorConfig,
    "vln_oracle_progress_sensor": VLNOracleProgressSensorConfig,
    "frame_heatmaps": FrameIndexedHeatmapSensorConfig,
    "frame_geometry": FrameGeometrySensorConfig,
}

cs = ConfigStore.instance()

for _name, _node in _MEASUREMENTS.items():
    cs.store(
        group="habitat/task/measurements",
        name=_name,
        package=f"habitat.task.measurements.{_name}",
        node=_node,
    )

for _name, _node in _LAB_SENSORS.items():
    cs.store(
        group="habitat/task/lab_sensors",
        name=_name,
        package=f"habitat.task.lab_sensors.{_name}",
        node=_node,
    )

cs.store(group="habitat/simulator", name="fih_sim_v0", node=FIHSimulatorConfig)

# The FIH task's schema node; configs/habitat/habitat/task/fih_vln.yaml builds on it.
cs.store(group="habitat/task", name="fih_vln_task_config_base", node=FIHVLNTaskConfig)
