"""VLN-CE measures (habitat_fih.tasks.measures) driven through habitat's own ``Measurements``
with habitat's real DistanceToGoal / Success / SPL, a fake simulator in an empty plane
(geodesic = Euclidean) and hand-computed expectations."""

from __future__ import annotations

import habitat_fih  # noqa: F401  (first: installs the habitat-sim import compatibility)
import habitat_fih.tasks  # noqa: F401  (registers the measures, sensors and their configs)

# isort: split

import gzip
import json
import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from habitat.config.default_structured_configs import (
    DistanceToGoalMeasurementConfig,
    SPLMeasurementConfig,
    SuccessMeasurementConfig,
)
from habitat.core.embodied_task import Measure, Measurements
from habitat.core.registry import registry
from habitat.tasks.nav.nav import SPL, DistanceToGoal, NavigationGoal, Success
from habitat.tasks.vln.vln import InstructionData, VLNEpisode
from omegaconf import OmegaConf

from habitat_fih.config.default_structured_configs import (
    NDTWMeasurementConfig,
    OracleNavigationErrorMeasurementConfig,
    OracleSPLMeasurementConfig,
    OracleSuccessMeasurementConfig,
    PathLengthMeasurementConfig,
    SDTWMeasurementConfig,
    StepsTakenMeasurementConfig,
)
from habitat_fih.tasks.measures import (
    NDTW,
    SDTW,
    OracleNavigationError,
    OracleSPL,
    OracleSuccess,
    PathLength,
    StepsTaken,
    dtw_distance,
)

STOP, FORWARD, LEFT = 0, 1, 2


class FakeSim:
    """Just habitat's generic simulator interface, in an empty plane."""

    def __init__(self, position: Sequence[float]) -> None:
        self.position = np.asarray(position, dtype=np.float64)

    def get_agent_state(self) -> SimpleNamespace:
        return SimpleNamespace(position=self.position.copy())

    def geodesic_distance(self, position_a: Any, position_b: Any, episode: Any = None) -> float:
        ends = np.asarray(position_b, dtype=np.float64).reshape(-1, 3)
        return float(
            np.min(np.linalg.norm(ends - np.asarray(position_a, dtype=np.float64), axis=1))
        )


class FakeTask:
    """What habitat's Measurements and the measures use of an EmbodiedTask."""

    def __init__(self, measures: list[Measure]) -> None:
        self.measurements = Measurements(measures)
        self.is_stop_called = False

    def add_perf_timing(self, *args: Any, **kwargs: Any) -> None:
        pass


def make_episode(
    goal: Sequence[float] = (10.0, 0.0, 0.0),
    reference_path: list[list[float]] | None = None,
    episode_id: str = "1",
    start: Sequence[float] = (0.0, 0.0, 0.0),
) -> VLNEpisode:
    return VLNEpisode(
        episode_id=episode_id,
        scene_id="plane",
        start_position=list(start),
        start_rotation=[0.0, 0.0, 0.0, 1.0],
        goals=[NavigationGoal(position=list(goal), radius=3.0)],
        reference_path=reference_path or [list(start), list(goal)],
        instruction=InstructionData(instruction_text="walk to the goal"),
        trajectory_id=0,
    )


def nav_measures(sim: FakeSim) -> list[Measure]:
    """habitat's DistanceToGoal, Success (VLN-CE's 3.0 m) and SPL."""
    structured = OmegaConf.structured
    return [
        DistanceToGoal(sim=sim, config=structured(DistanceToGoalMeasurementConfig())),
        Success(sim=sim, config=structured(SuccessMeasurementConfig(success_distance=3.0))),
        SPL(sim=sim, config=structured(SPLMeasurementConfig())),
    ]


class Run:
    """Resets the measures on an episode, then plays (action, position) steps like habitat.Env."""

    def __init__(self, sim: FakeSim, episode: VLNEpisode, measures: list[Measure]) -> None:
        self.sim, self.episode = sim, episode
        self.task = FakeTask(measures)
        self.sim.position = np.asarray(episode.start_position, dtype=np.float64)
        self.task.measurements.reset_measures(episode=episode, task=self.task, observations={})

    def metrics(self) -> dict[str, Any]:
        return dict(self.task.measurements.get_metrics())

    def step(self, action: int, position: Sequence[float] | None = None) -> dict[str, Any]:
        if action == STOP:
            self.task.is_stop_called = True
        elif position is not None:
            self.sim.position = np.asarray(position, dtype=np.float64)
        self.task.measurements.update_measures(
            episode=self.episode, action={"action": action}, task=self.task, observations={}
        )
        return self.metrics()


def structured(node: Any) -> Any:
    return OmegaConf.structured(node)


# ---------------------------------------------------------------------------------------------


def test_registered_under_class_names_with_snake_case_uuids():
    expected = {
        "PathLength": (PathLength, "path_length"),
        "OracleNavigationError": (OracleNavigationError, "oracle_navigation_error"),
        "OracleSuccess": (OracleSuccess, "oracle_success"),
        "OracleSPL": (OracleSPL, "oracle_spl"),
        "StepsTaken": (StepsTaken, "steps_taken"),
        "NDTW": (NDTW, "ndtw"),
        "SDTW": (SDTW, "sdtw"),
    }
    for name, (cls, uuid) in expected.items():
        assert registry.get_measure(name) is cls
        assert cls.cls_uuid == uuid


def test_path_length_of_a_known_polyline():
    sim = FakeSim((0, 0, 0))
    run = Run(
        sim, make_episode(), [PathLength(sim=sim, config=structured(PathLengthMeasurementConfig()))]
    )
    assert run.metrics()["path_length"] == 0.0
    # (0,0,0) -> (3,0,4): 5; turn in place: 0; -> (3,0,0): 4; -> (0,0,0): 3; STOP: 0  => 12
    run.step(FORWARD, (3, 0, 4))
    assert run.metrics()["path_length"] == pytest.approx(5.0)
    run.step(LEFT)
    run.step(FORWARD, (3, 0, 0))
    run.step(FORWARD, (0, 0, 0))
    assert run.step(STOP)["path_length"] == pytest.approx(12.0)


def test_oracle_navigation_error_and_oracle_success_latch():
    sim = FakeSim((0, 0, 0))
    measures = nav_measures(sim) + [
        OracleNavigationError(sim=sim, config=structured(OracleNavigationErrorMeasurementConfig())),
        OracleSuccess(sim=sim, config=structured(OracleSuccessMeasurementConfig())),
    ]
    run = Run(sim, make_episode(goal=(10, 0, 0)), measures)
    m = run.metrics()
    assert m["oracle_navigation_error"] == pytest.approx(10.0)
    assert m["oracle_success"] == 0.0
    m = run.step(FORWARD, (5, 0, 0))  # 5 m from the goal
    assert (m["oracle_navigation_error"], m["oracle_success"]) == (pytest.approx(5.0), 0.0)
    m = run.step(FORWARD, (8, 0, 0))  # 2 m < 3 m: oracle success
    assert (m["oracle_navigation_error"], m["oracle_success"]) == (pytest.approx(2.0), 1.0)
    m = run.step(FORWARD, (4, 0, 0))  # walks away to 6 m: both stay at their best
    assert (m["oracle_navigation_error"], m["oracle_success"]) == (pytest.approx(2.0), 1.0)
    m = run.step(STOP)
    assert m["success"] == 0.0  # stopped 6 m away
    assert (m["oracle_navigation_error"], m["oracle_success"]) == (pytest.approx(2.0), 1.0)


def test_oracle_success_default_distance_is_vlnce_three_metres():
    assert OracleSuccessMeasurementConfig().success_distance == 3.0
    sim = FakeSim((0, 0, 0))
    measures = nav_measures(sim) + [
        OracleSuccess(sim=sim, config=structured(OracleSuccessMeasurementConfig()))
    ]
    run = Run(sim, make_episode(goal=(10, 0, 0)), measures)
    assert run.step(FORWARD, (7, 0, 0))["oracle_success"] == 0.0  # exactly 3 m: not < 3
    assert run.step(FORWARD, (7.01, 0, 0))["oracle_success"] == 1.0


def test_oracle_spl_with_habitat_spl():
    sim = FakeSim((0, 0, 0))
    measures = nav_measures(sim) + [
        OracleSPL(sim=sim, config=structured(OracleSPLMeasurementConfig()))
    ]
    run = Run(sim, make_episode(goal=(10, 0, 0)), measures)
    assert run.metrics()["oracle_spl"] == 0.0
    # detour: 2 m sideways then 9 m along x (path 11 m), ending sqrt(1 + 4) = 2.24 m from the goal
    run.step(FORWARD, (0, 0, 2))
    m = run.step(FORWARD, (9, 0, 2))
    assert m["oracle_spl"] == 0.0  # SPL is 0 until STOP
    m = run.step(STOP)
    # SPL = success * 10 / max(10, 11) = 10/11
    assert m["spl"] == pytest.approx(10 / 11)
    assert m["oracle_spl"] == pytest.approx(10 / 11)


class ScriptedSPL(Measure):
    """Stands in for habitat's SPL (uuid "spl") with chosen values."""

    def __init__(self, values: list[float]) -> None:
        self._values = list(values)
        super().__init__()

    def _get_uuid(self, *args: Any, **kwargs: Any) -> str:
        return "spl"

    def reset_metric(self, *args: Any, **kwargs: Any) -> None:
        self._metric = self._values.pop(0)

    def update_metric(self, *args: Any, **kwargs: Any) -> None:
        self._metric = self._values.pop(0)


def test_oracle_spl_is_the_running_maximum():
    sim = FakeSim((0, 0, 0))
    measures = [
        ScriptedSPL([0.0, 0.2, 0.7, 0.4]),
        OracleSPL(sim=sim, config=structured(OracleSPLMeasurementConfig())),
    ]
    run = Run(sim, make_episode(), measures)
    assert [run.step(FORWARD, (i, 0, 0))["oracle_spl"] for i in range(1, 4)] == [0.2, 0.7, 0.7]


def test_steps_taken_counts_stop():
    sim = FakeSim((0, 0, 0))
    run = Run(
        sim, make_episode(), [StepsTaken(sim=sim, config=structured(StepsTakenMeasurementConfig()))]
    )
    assert run.metrics()["steps_taken"] == 0
    run.step(FORWARD, (1, 0, 0))
    run.step(LEFT)
    run.step(FORWARD, (1, 0, 1))
    assert run.step(STOP)["steps_taken"] == 4
    run = Run(sim, make_episode(episode_id="2"), list(run.task.measurements.measures.values()))
    assert run.metrics()["steps_taken"] == 0


def test_dtw_distance_by_hand():
    # one point each: the Euclidean distance |(3,0,4)| = 5
    assert dtw_distance([[0, 0, 0]], [[3, 0, 4]]) == pytest.approx(5.0)
    # a = x 0, 3, 4 against b = x 0, 2, 4 (see test_ndtw_three_point_path_by_hand): DTW = 1
    a = [[0, 0, 0], [3, 0, 0], [4, 0, 0]]
    b = [[0, 0, 0], [2, 0, 0], [4, 0, 0]]
    assert dtw_distance(a, b) == pytest.approx(1.0)
    assert dtw_distance(b, a) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="non-empty"):
        dtw_distance([], b)


def ndtw_measure(sim: FakeSim, **cfg: Any) -> NDTW:
    return NDTW(sim=sim, config=structured(NDTWMeasurementConfig(**cfg)))


def test_ndtw_three_point_path_by_hand():
    # Reference r = x 0, 2, 4; agent a = x 0, 3, (turn in place: not appended), 4.
    # Costs |a_i - r_j|:  a0: 0 2 4 | a1: 3 1 1 | a2: 4 2 0
    # DTW table D[i][j] = cost + min(D[i-1][j], D[i][j-1], D[i-1][j-1]):
    #   row a0: 0  2  6          -> after reset DTW = 6
    #   row a1: 3  1  2          -> DTW = 2
    #   row a2: 7  3  1          -> DTW = 1
    # ndtw = exp(-DTW / (3 points * 3.0 m)): exp(-6/9), exp(-2/9), exp(-1/9) = 0.894839...
    # (had the unchanged a1 been appended twice, the final DTW would be 2, not 1)
    reference = [[0, 0, 0], [2, 0, 0], [4, 0, 0]]
    sim = FakeSim((0, 0, 0))
    run = Run(sim, make_episode(goal=(4, 0, 0), reference_path=reference), [ndtw_measure(sim)])
    assert run.metrics()["ndtw"] == pytest.approx(math.exp(-6 / 9))
    assert run.step(FORWARD, (3, 0, 0))["ndtw"] == pytest.approx(math.exp(-2 / 9))
    assert run.step(LEFT)["ndtw"] == pytest.approx(math.exp(-2 / 9))
    assert run.step(FORWARD, (4, 0, 0))["ndtw"] == pytest.approx(math.exp(-1 / 9))
    assert run.step(STOP)["ndtw"] == pytest.approx(0.8948393168)


def test_ndtw_is_one_for_a_perfect_path():
    reference = [[0, 0, 0], [1, 0, 0], [1, 0, 1], [2, 0, 1]]
    sim = FakeSim((0, 0, 0))
    run = Run(sim, make_episode(goal=(2, 0, 1), reference_path=reference), [ndtw_measure(sim)])
    for point in reference[1:]:
        run.step(LEFT)  # turning in place does not add a point
        run.step(FORWARD, point)
    assert run.step(STOP)["ndtw"] == pytest.approx(1.0)


def test_ndtw_incremental_matches_full_dtw_on_a_random_walk():
    rng = np.random.default_rng(0)
    reference = np.cumsum(rng.normal(size=(9, 3)), axis=0).tolist()
    walk = np.cumsum(rng.normal(size=(30, 3)), axis=0)
    sim = FakeSim(reference[0])
    episode = make_episode(start=reference[0], goal=reference[-1], reference_path=reference)
    run = Run(sim, episode, [ndtw_measure(sim, success_distance=2.0)])
    for point in walk:
        run.step(FORWARD, point)
    expected = math.exp(-dtw_distance([reference[0], *walk], reference) / (9 * 2.0))
    assert run.metrics()["ndtw"] == pytest.approx(expected)


def test_sdtw_is_zero_without_success_and_ndtw_with_it():
    reference = [[0, 0, 0], [2, 0, 0], [4, 0, 0]]
    sim = FakeSim((0, 0, 0))

    def measures() -> list[Measure]:
        return nav_measures(sim) + [
            ndtw_measure(sim),
            SDTW(sim=sim, config=structured(SDTWMeasurementConfig())),
        ]

    far = make_episode(goal=(10, 0, 0), reference_path=reference)  # stops 6 m from the goal
    run = Run(sim, far, measures())
    run.step(FORWARD, (2, 0, 0))
    run.step(FORWARD, (4, 0, 0))
    m = run.step(STOP)
    assert m["ndtw"] == pytest.approx(1.0)
    assert (m["success"], m["sdtw"]) == (0.0, 0.0)

    near = make_episode(goal=(4, 0, 0), reference_path=reference)
    run = Run(sim, near, measures())
    run.step(FORWARD, (3, 0, 0))
    run.step(FORWARD, (4, 0, 0))
    m = run.step(STOP)
    assert m["success"] == 1.0
    assert m["sdtw"] == pytest.approx(math.exp(-1 / 9))  # = ndtw of the hand-computed path


def test_sdtw_must_follow_its_dependencies():
    sim = FakeSim((0, 0, 0))
    measures = nav_measures(sim) + [
        SDTW(sim=sim, config=structured(SDTWMeasurementConfig())),
        ndtw_measure(sim),
    ]
    with pytest.raises(AssertionError, match="ndtw"):
        Run(sim, make_episode(), measures)


def write_gt(path: Any, episodes: dict[str, list[list[float]]]) -> None:
    data = {
        key: {"locations": locs, "actions": [1] * (len(locs) - 1) + [0]}
        for key, locs in episodes.items()
    }
    with gzip.open(path, "wt") as f:
        json.dump(data, f)


def test_ndtw_reads_the_reference_from_the_gt_file(tmp_path):
    write_gt(tmp_path / "val_unseen_gt.json.gz", {"7": [[0, 0, 0], [2, 0, 0], [4, 0, 0]]})
    sim = FakeSim((0, 0, 0))
    measure = ndtw_measure(sim, gt_path=str(tmp_path / "{split}_gt.json.gz"), split="val_unseen")
    # the episode's own reference_path is different and must be ignored
    episode = make_episode(goal=(4, 0, 0), reference_path=[[0, 0, 0], [0, 0, 9]], episode_id="7")
    run = Run(sim, episode, [measure])
    run.step(FORWARD, (3, 0, 0))
    assert run.step(FORWARD, (4, 0, 0))["ndtw"] == pytest.approx(math.exp(-1 / 9))


def test_ndtw_gt_errors_name_the_file_and_the_episode(tmp_path):
    missing = tmp_path / "nowhere" / "{split}_gt.json.gz"
    with pytest.raises(FileNotFoundError, match="nowhere/val_seen_gt.json.gz"):
        ndtw_measure(FakeSim((0, 0, 0)), gt_path=str(missing), split="val_seen")

    write_gt(tmp_path / "train_gt.json.gz", {"7": [[0, 0, 0], [1, 0, 0]]})
    sim = FakeSim((0, 0, 0))
    measure = ndtw_measure(sim, gt_path=str(tmp_path / "{split}_gt.json.gz"), split="train")
    with pytest.raises(KeyError, match=r"'8'.*train_gt\.json\.gz"):
        Run(sim, make_episode(episode_id="8"), [measure])


def test_frame_camera_position_quality_scores_in_view_cameras_only():
    """A hand-made view: memory step 0's camera 2 m straight ahead (IN_VIEW), step 3's behind.
    The exact Gaussian scores KL ~ 0, IoU 1, peak 0; the behind camera is not scored; a step
    without a camera-position prediction counts as missing (and frame_heatmap_quality skips
    a prediction without covisibility maps)."""
    from habitat_fih.geometry import CameraStatus, camera_position_heatmaps
    from habitat_fih.tasks.heatmap_measures import FrameCameraPositionQuality, FrameHeatmapQuality

    ahead, behind = np.eye(4), np.eye(4)
    ahead[2, 3], behind[2, 3] = -2.0, 2.0  # habitat cameras look along -z
    poses = np.stack([ahead, behind, np.eye(4)])
    depth = np.full((32, 32), 10.0, np.float32)
    expected = camera_position_heatmaps(depth, np.eye(4), poses[:2], 90.0, (16, 16), sigma=2.0)
    assert expected.status.tolist() == [int(CameraStatus.IN_VIEW), int(CameraStatus.BEHIND)]
    targets = SimpleNamespace(
        memory_steps=np.array([0, 3, -1]),
        memory_poses=poses,
        current=SimpleNamespace(depth=depth, pose=np.eye(4)),
    )
    pred = {
        "camera_position": {
            "maps": np.stack([expected.maps[0], np.full((16, 16), 0.5)]),
            "frame_indices": np.array([0, 3]),
        },
        "frame_indices": np.array([0, 3]),
    }
    task = SimpleNamespace(
        prediction=pred, prediction_targets=targets, hfov=90.0, abs_tol=0.05, rel_tol=0.02
    )
    cfg = SimpleNamespace(camera_sigma=2.0, eps=1e-8, min_overlap=0.01)
    measure = FrameCameraPositionQuality(None, cfg)
    measure.reset_metric(task=task)
    measure.update_metric(task=task)
    m = measure.get_metric()
    assert m["scored"] == 1 and m["missing_steps"] == 0
    assert m["kl"] == pytest.approx(0.0, abs=1e-5) and m["iou"] == pytest.approx(1.0)
    assert m["peak_error"] == 0.0
    cov = FrameHeatmapQuality(None, cfg)
    cov.reset_metric(task=task)
    cov.update_metric(task=task)
    assert cov.get_metric()["missing_steps"] == 1 and cov.get_metric()["scored"] == 0
    task.prediction = {"maps": np.zeros((0, 16, 16)), "frame_indices": np.zeros(0)}
    measure.update_metric(task=task)
    assert measure.get_metric()["missing_steps"] == 1 and measure.get_metric()["scored"] == 1
