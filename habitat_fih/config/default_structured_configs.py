"""Structured configs (dataclasses) for habitat-fih's measures and lab sensors.

One dataclass per registered measure / sensor, each subclassing habitat's ``MeasurementConfig`` /
``LabSensorConfig`` with ``type`` set to the registered class name, stored in Hydra's ConfigStore
under habitat's groups with habitat-fih's own names (habitat's nodes are never replaced):

- ``habitat/task/measurements``: ``path_length``, ``oracle_navigation_error``,
  ``oracle_success``, ``oracle_spl``, ``steps_taken``, ``ndtw``, ``sdtw``;
- ``habitat/task/lab_sensors``: ``shortest_path_sensor``, ``vln_oracle_progress_sensor``.

Select them in a config's defaults list or from the command line, e.g.
``+habitat/task/measurements@habitat.task.measurements.ndtw=ndtw
habitat.task.measurements.ndtw.split=val_unseen``. Measures that read other measures must be
listed after them (OracleNavigationError / OracleSuccess after distance_to_goal, OracleSPL after
spl, SDTW after success and ndtw). This module imports no simulator code and no measure classes;
the classes live in :mod:`habitat_fih.tasks`.
"""

from __future__ import annotations

from dataclasses import dataclass

from habitat.config.default_structured_configs import LabSensorConfig, MeasurementConfig
from hydra.core.config_store import ConfigStore

__all__ = [
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
}

_LAB_SENSORS: dict[str, type[LabSensorConfig]] = {
    "shortest_path_sensor": ShortestPathSensorConfig,
    "vln_oracle_progress_sensor": VLNOracleProgressSensorConfig,
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
