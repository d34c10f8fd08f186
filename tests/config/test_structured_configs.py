"""Structured configs of habitat-fih's measures and lab sensors
(habitat_fih.config.default_structured_configs): ConfigStore entries, composition into habitat's
own ``benchmark/nav/vln_r2r`` from command-line overrides, and the composed config building the
registered classes inside habitat's VLN-v0 task."""

from __future__ import annotations

import habitat_fih  # noqa: F401  (first: installs the habitat-sim import compatibility)
import habitat_fih.tasks  # noqa: F401  (registers the measures, sensors and their configs)

# isort: split

import ast
import dataclasses
import inspect
import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from habitat.config.default import get_config
from habitat.core.registry import registry
from habitat.tasks.nav.nav import NavigationGoal
from habitat.tasks.vln.vln import InstructionData, VLNEpisode, VLNTask
from hydra.core.config_store import ConfigStore
from hydra.errors import ConfigCompositionException

from habitat_fih.config import default_structured_configs as fih_configs

VLN_R2R = "benchmark/nav/vln_r2r.yaml"  # habitat's own benchmark, relative to habitat/config/

MEASUREMENTS = {
    "path_length": ("PathLength", fih_configs.PathLengthMeasurementConfig),
    "oracle_navigation_error": (
        "OracleNavigationError",
        fih_configs.OracleNavigationErrorMeasurementConfig,
    ),
    "oracle_success": ("OracleSuccess", fih_configs.OracleSuccessMeasurementConfig),
    "oracle_spl": ("OracleSPL", fih_configs.OracleSPLMeasurementConfig),
    "steps_taken": ("StepsTaken", fih_configs.StepsTakenMeasurementConfig),
    "ndtw": ("NDTW", fih_configs.NDTWMeasurementConfig),
    "sdtw": ("SDTW", fih_configs.SDTWMeasurementConfig),
}
LAB_SENSORS = {
    "shortest_path_sensor": ("ShortestPathSensor", fih_configs.ShortestPathSensorConfig),
    "vln_oracle_progress_sensor": (
        "VLNOracleProgressSensor",
        fih_configs.VLNOracleProgressSensorConfig,
    ),
}

ADD_ALL = [
    f"+habitat/task/measurements@habitat.task.measurements.{name}={name}" for name in MEASUREMENTS
] + [
    "+habitat/task/lab_sensors@habitat.task.lab_sensors.shortest_path_sensor=shortest_path_sensor",
    "+habitat/task/lab_sensors@habitat.task.lab_sensors.progress=vln_oracle_progress_sensor",
]


@pytest.fixture(scope="module")
def composed():
    return get_config(VLN_R2R, ADD_ALL)


def test_dataclasses_name_the_registered_classes():
    for name, (type_name, node) in MEASUREMENTS.items():
        assert node().type == type_name
        assert registry.get_measure(type_name).cls_uuid == name
    for type_name, node in LAB_SENSORS.values():
        assert node().type == type_name
        assert registry.get_sensor(type_name) is not None
    # defaults follow VLN-CE
    assert fih_configs.OracleSuccessMeasurementConfig().success_distance == 3.0
    ndtw = fih_configs.NDTWMeasurementConfig()
    assert (ndtw.success_distance, ndtw.gt_path, ndtw.split) == (3.0, "", "val_seen")
    assert fih_configs.ShortestPathSensorConfig().goal_radius == 0.5


def test_no_mutable_plain_defaults():
    for _, node in [*MEASUREMENTS.values(), *LAB_SENSORS.values()]:
        for f in dataclasses.fields(node):
            if f.default is not dataclasses.MISSING:
                assert not isinstance(f.default, list | dict | set), (node, f.name)


def test_stored_in_habitats_groups_without_replacing_habitats_nodes():
    cs = ConfigStore.instance()
    for group, entries in [
        ("habitat/task/measurements", MEASUREMENTS),
        ("habitat/task/lab_sensors", LAB_SENSORS),
    ]:
        for name, (type_name, _) in entries.items():
            stored = cs.load(f"{group}/{name}.yaml")
            assert stored.package == f"{group.replace('/', '.')}.{name}"
            assert stored.node.type == type_name
    # habitat's own entries are untouched
    assert cs.load("habitat/task/measurements/success.yaml").node.type == "Success"
    assert cs.load("habitat/task/measurements/spl.yaml").node.type == "SPL"
    assert cs.load("habitat/task/measurements/distance_to_goal.yaml").node.type == "DistanceToGoal"
    assert (
        cs.load("habitat/task/lab_sensors/instruction_sensor.yaml").node.type == "InstructionSensor"
    )


def test_composes_into_habitats_vln_r2r(composed):
    task = composed.habitat.task
    measurements = list(task.measurements.keys())
    # habitat's own measures first, ours after them in the order given: dependencies hold
    assert measurements == ["distance_to_goal", "success", "spl", *MEASUREMENTS]
    for name, (type_name, _) in MEASUREMENTS.items():
        assert task.measurements[name].type == type_name
    assert task.measurements.ndtw.success_distance == 3.0
    assert task.measurements.ndtw.gt_path == ""
    assert task.measurements.oracle_success.success_distance == 3.0
    assert task.lab_sensors.shortest_path_sensor.type == "ShortestPathSensor"
    assert task.lab_sensors.shortest_path_sensor.goal_radius == 0.5
    assert task.lab_sensors.progress.type == "VLNOracleProgressSensor"
    assert task.lab_sensors.instruction_sensor.type == "InstructionSensor"


def test_fields_are_settable_from_the_command_line():
    gt = "data/datasets/R2R_VLNCE_v1-3_preprocessed/{split}/{split}_gt.json.gz"
    cfg = get_config(
        VLN_R2R,
        [
            *ADD_ALL,
            "habitat.task.measurements.ndtw.split=val_unseen",
            # braces must be quoted on Hydra's command line
            f"habitat.task.measurements.ndtw.gt_path='{gt}'",
            "habitat.task.measurements.ndtw.success_distance=2.5",
            "habitat.task.measurements.oracle_success.success_distance=1.5",
            "habitat.task.lab_sensors.shortest_path_sensor.goal_radius=0.25",
        ],
    )
    ndtw = cfg.habitat.task.measurements.ndtw
    assert (ndtw.split, ndtw.gt_path, ndtw.success_distance) == ("val_unseen", gt, 2.5)
    assert cfg.habitat.task.measurements.oracle_success.success_distance == 1.5
    assert cfg.habitat.task.lab_sensors.shortest_path_sensor.goal_radius == 0.25


def test_unknown_field_and_bad_type_fail_composition():
    with pytest.raises(ConfigCompositionException):
        get_config(VLN_R2R, [*ADD_ALL, "habitat.task.measurements.ndtw.not_a_field=1"])
    with pytest.raises(ConfigCompositionException):
        get_config(VLN_R2R, [*ADD_ALL, "habitat.task.measurements.ndtw.success_distance=far"])


def test_module_imports_no_simulator_or_measure_code():
    tree = ast.parse(inspect.getsource(fih_configs))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported == {
        "__future__",
        "dataclasses",
        "hydra.core.config_store",
        "habitat.config.default_structured_configs",
    }


class PlaneSim:
    """Habitat's generic simulator interface in an empty plane (geodesic = Euclidean)."""

    def __init__(self) -> None:
        self.position = np.zeros(3)

    def get_agent_state(self) -> SimpleNamespace:
        return SimpleNamespace(position=self.position.copy())

    def geodesic_distance(self, position_a: Any, position_b: Any, episode: Any = None) -> float:
        ends = np.asarray(position_b, dtype=np.float64).reshape(-1, 3)
        return float(
            np.min(np.linalg.norm(ends - np.asarray(position_a, dtype=np.float64), axis=1))
        )


def test_composed_config_builds_the_classes_in_habitats_vln_task(composed):
    sim = PlaneSim()
    task = VLNTask(config=composed.habitat.task, sim=sim, dataset=None)
    assert list(task.sensor_suite.sensors) == ["instruction", "shortest_path_sensor", "progress"]
    episode = VLNEpisode(
        episode_id="3",
        scene_id="plane",
        start_position=[0.0, 0.0, 0.0],
        start_rotation=[0.0, 0.0, 0.0, 1.0],
        goals=[NavigationGoal(position=[4.0, 0.0, 0.0], radius=3.0)],
        reference_path=[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [4.0, 0.0, 0.0]],
        instruction=InstructionData(instruction_text="walk ahead"),
        trajectory_id=0,
    )
    task.measurements.reset_measures(episode=episode, task=task, observations={})
    for x in (2.0, 4.0):
        sim.position = np.array([x, 0.0, 0.0])
        task.measurements.update_measures(
            episode=episode, action={"action": 1}, task=task, observations={}
        )
    task.is_stop_called = True
    task.measurements.update_measures(
        episode=episode, action={"action": 0}, task=task, observations={}
    )
    metrics = task.measurements.get_metrics()
    assert metrics["path_length"] == pytest.approx(4.0)
    assert metrics["steps_taken"] == 3
    assert metrics["oracle_navigation_error"] == pytest.approx(0.0)
    assert metrics["oracle_success"] == 1.0
    assert metrics["ndtw"] == pytest.approx(1.0)  # followed the reference exactly
    assert metrics["success"] == 1.0  # 0 m < habitat's 0.2 m
    assert metrics["sdtw"] == pytest.approx(1.0)
    assert metrics["oracle_spl"] == pytest.approx(1.0)
    progress = task.sensor_suite.sensors["progress"].get_observation(episode=episode)
    assert math.isclose(float(progress[0]), 1.0)
