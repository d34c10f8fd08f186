"""Checks of the experiment config that the ``fih`` trainer runs when it is built, before any
environment starts: the task's lab sensors and measures against what the model, the trained
target kinds and the losses need. Each failure is ONE ValueError naming the settings on both
sides and how to reconcile them. (Range checks of the trainer's own values:
`habitat_fih.trainers.settings.check_trainer_values`.)

- `check_geometry_prior_sensor`: a model with ``geometry_prior='input'`` reads the
  ``frame_geometry`` sensor's camera poses.
- `check_min_overlaps`: the ``frame_heatmaps`` sensor and the ``frame_heatmap_quality`` measure
  score the same (step, frame) pairs.
- `check_alignment_sensors`: pretraining's alignment term makes its pairs from the
  ``frame_geometry`` sensor and the covisibility targets.
- `check_vggt_stage`: the ``vggt`` stage's targets come from the ``frame_geometry`` sensor
  (cameras, each frame's depth) and its model must have a head it can train.
- `trained_target_kinds`: the heatmap kinds ``collection.target_kind`` trains, which the
  ``frame_heatmaps`` sensor must emit.
- `check_offload_not_training`: component offload (``model.overrides.offload``) is for
  evaluation only.
"""

from __future__ import annotations

from typing import Any

from habitat_fih.config.trainer_configs import stop_settings
from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.losses import VGGT_STAGE
from habitat_fih.trainers.collector import GEOMETRY_UUID
from habitat_fih.trainers.settings import TARGET_KIND_CHOICES
from habitat_fih.trainers.stages import ALIGNMENT_SETTING, alignment_weights

OFFLOAD_SETTING = "habitat_baselines.fih.model.overrides.offload"

__all__ = [
    "check_alignment_sensors",
    "check_geometry_prior_sensor",
    "check_min_overlaps",
    "check_offload_not_training",
    "check_vggt_stage",
    "has_camera_sensor",
    "lab_sensors",
    "trained_target_kinds",
]


def lab_sensors(config: Any) -> Any:
    """``habitat.task.lab_sensors`` (empty when unset)."""
    return config.habitat.task.get("lab_sensors", {}) or {}


def has_camera_sensor(config: Any) -> bool:
    """Whether the task has the frame_geometry sensor (camera poses of every frame)."""
    return GEOMETRY_UUID in lab_sensors(config)


def check_geometry_prior_sensor(config: Any, model_config: FIHModelConfig) -> None:
    """A model whose frustum prior reads the simulator's cameras needs their sensor."""
    if model_config.geometry_prior == "input" and not has_camera_sensor(config):
        raise ValueError(
            "habitat_baselines.fih.model.overrides.geometry_prior='input' needs the "
            f"{GEOMETRY_UUID!r} lab sensor (camera poses) in habitat.task.lab_sensors, which "
            f"has {sorted(lab_sensors(config))}"
        )


def check_min_overlaps(config: Any) -> None:
    """The measure and the paired scores (the sensor's validity flags) must score the same
    (step, frame) pairs."""
    sensor = lab_sensors(config).get("frame_heatmaps")
    measure = config.habitat.task.get("measurements", {}).get("frame_heatmap_quality")
    if sensor is None or measure is None:
        return
    sensor_overlap, measure_overlap = float(sensor.min_overlap), float(measure.min_overlap)
    if sensor_overlap != measure_overlap:
        raise ValueError(
            f"habitat.task.lab_sensors.frame_heatmaps.min_overlap={sensor_overlap} differs from "
            f"habitat.task.measurements.frame_heatmap_quality.min_overlap={measure_overlap}: "
            "set both to one value so frame_heatmap_quality and paired_heatmap score the same "
            "pairs"
        )


def check_alignment_sensors(config: Any) -> None:
    """Pretraining with a positive alignment weight makes its token pairs from the
    ``frame_geometry`` sensor and the ``frame_heatmaps`` covisibility: one clear error, naming
    the setting, when either is missing."""
    weights = [w for w in alignment_weights(config.habitat_baselines.fih) if w > 0]
    if not weights:
        return
    sensors = lab_sensors(config)
    heat = sensors.get("frame_heatmaps")
    missing = []
    if GEOMETRY_UUID not in sensors:
        missing.append(f"the {GEOMETRY_UUID!r} lab sensor (cameras, current depth)")
    if heat is None or "covisibility" not in list(heat.get("target_kinds", [])):
        missing.append("the 'frame_heatmaps' lab sensor with covisibility in target_kinds")
    if missing:
        raise ValueError(
            f"{ALIGNMENT_SETTING}={weights[0]} (the pretraining cross-frame alignment) needs "
            + " and ".join(missing)
            + f" in habitat.task.lab_sensors, which has {sorted(sensors)}; add them or set "
            f"{ALIGNMENT_SETTING}=0"
        )


def check_vggt_stage(config: Any) -> None:
    """The ``vggt`` stage (in ``fih.stage`` or any ``fih.schedule`` entry) needs the
    ``frame_geometry`` sensor: one clear error naming it before anything starts."""
    trainer_config = config.habitat_baselines.fih
    entries = [trainer_config.stage, *(dict(e).get("stage") for e in trainer_config.schedule)]
    if VGGT_STAGE not in entries or has_camera_sensor(config):
        return
    raise ValueError(
        f"habitat_baselines.fih stage {VGGT_STAGE!r} trains VGGT on the simulator's cameras and "
        f"depth, read from the {GEOMETRY_UUID!r} lab sensor: add it to habitat.task.lab_sensors "
        f"(which has {sorted(lab_sensors(config))})"
    )


def check_stop_rule(config: Any, model_config: FIHModelConfig) -> None:
    """The progress monitor (``action.goal_distance``) trains on the task's ``distance_to_goal``
    measure, and ``fih.stop.rule: goal_distance`` needs that monitor: one clear error before
    anything starts."""
    rule = stop_settings(config.habitat_baselines.fih)["rule"]
    if rule == "goal_distance" and not model_config.action.goal_distance:
        raise ValueError(
            "habitat_baselines.fih.stop.rule=goal_distance stops on the predicted distance to the "
            "goal, but the model does not predict it: set "
            "habitat_baselines.fih.model.overrides.action.goal_distance=true"
        )
    measures = config.habitat.task.measurements
    if model_config.action.goal_distance and "distance_to_goal" not in measures:
        raise ValueError(
            "the progress monitor (action.goal_distance) trains on the task's distance_to_goal "
            f"measure, which habitat.task.measurements lacks (it has {sorted(measures)})"
        )


def check_offload_not_training(model_config: FIHModelConfig) -> None:
    """Training with component offload is refused (`habitat_fih.models.offload`: the
    offloaded weights rest on CPU between stages and gradients are not supported)."""
    if model_config.offload:
        raise ValueError(
            f"{OFFLOAD_SETTING}={list(model_config.offload)} (component offload) is for "
            "inference / evaluation only (habitat_baselines.evaluate=True): remove it, or set "
            f"{OFFLOAD_SETTING}=[], to train"
        )


def trained_target_kinds(config: Any) -> tuple[str, ...]:
    """The heatmap target kinds trained (``fih.collection.target_kind``): one clear error when
    the ``frame_heatmaps`` sensor does not emit them, or when the model overrides set other
    ``target_kinds``."""
    trainer_config = config.habitat_baselines.fih
    choice = str(trainer_config.collection.get("target_kind", "covisibility"))
    kinds = TARGET_KIND_CHOICES[choice]  # (the value was checked by check_trainer_values)
    setting = "habitat_baselines.fih.collection.target_kind"
    sensor_setting = "habitat.task.lab_sensors.frame_heatmaps.target_kinds"
    heat = lab_sensors(config).get("frame_heatmaps")
    emitted = [] if heat is None else list(heat.get("target_kinds", []))
    missing = [k for k in kinds if k not in emitted]
    if missing:
        raise ValueError(
            f"{setting}={choice} trains the {list(kinds)} targets but {sensor_setting} is "
            f"{emitted if heat is not None else '(no frame_heatmaps sensor)'}: add "
            f"{missing} to {sensor_setting} or change {setting}"
        )
    overrides = trainer_config.model.get("overrides") or {}
    if "target_kinds" in overrides and tuple(overrides["target_kinds"]) != kinds:
        raise ValueError(
            "habitat_baselines.fih.model.overrides.target_kinds="
            f"{list(overrides['target_kinds'])} contradicts {setting}={choice} "
            f"({list(kinds)}); set only {setting}"
        )
    return kinds
