"""Expert sensors (habitat_fih.tasks.sensors): ShortestPathSensor against a scripted
``make_greedy_follower`` result, VLNOracleProgressSensor against known geodesics. Sensors are
called the way habitat's task calls them: without ``action`` on reset, with it on a step."""

from __future__ import annotations

import habitat_fih  # noqa: F401  (first: installs the habitat-sim import compatibility)
import habitat_fih.tasks  # noqa: F401  (registers the measures, sensors and their configs)

# isort: split

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import habitat_sim  # the real module, or habitat_fih.compat's stand-in (same exception class)
import numpy as np
import pytest
from habitat.core.registry import registry
from habitat.tasks.nav.nav import NavigationEpisode, NavigationGoal
from omegaconf import OmegaConf

from habitat_fih.config.default_structured_configs import (
    ShortestPathSensorConfig,
    VLNOracleProgressSensorConfig,
)
from habitat_fih.tasks.sensors import ShortestPathSensor, VLNOracleProgressSensor

STEP = {"action": 1}


def make_episode(
    episode_id: str = "1",
    start: Sequence[float] = (0.0, 0.0, 0.0),
    goal: Sequence[float] = (10.0, 0.0, 0.0),
) -> NavigationEpisode:
    return NavigationEpisode(
        episode_id=episode_id,
        scene_id="plane",
        start_position=list(start),
        start_rotation=[0.0, 0.0, 0.0, 1.0],
        goals=[NavigationGoal(position=list(goal), radius=None)],
    )


class ScriptedFollower:
    """What ``sim.make_greedy_follower`` returns: answers a scripted list of actions."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.goals: list[list[float]] = []

    def next_action_along(self, goal: Any) -> Any:
        self.goals.append(list(goal))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class FollowerSim:
    """The part of a simulator habitat's ShortestPathFollower uses."""

    def __init__(self, answers: list[Any]) -> None:
        self.habitat_config = SimpleNamespace(scene="plane.glb")
        self.answers = answers
        self.calls: list[dict[str, Any]] = []
        self.followers: list[ScriptedFollower] = []

    def make_greedy_follower(
        self, agent_id: int = 0, goal_radius: float | None = None, **keys: Any
    ):
        self.calls.append({"agent_id": agent_id, "goal_radius": goal_radius, **keys})
        self.followers.append(ScriptedFollower(self.answers))
        return self.followers[-1]


def shortest_path_sensor(sim: FollowerSim, **cfg: Any) -> ShortestPathSensor:
    return ShortestPathSensor(sim=sim, config=OmegaConf.structured(ShortestPathSensorConfig(**cfg)))


def test_registered_with_uuids():
    assert registry.get_sensor("ShortestPathSensor") is ShortestPathSensor
    assert registry.get_sensor("VLNOracleProgressSensor") is VLNOracleProgressSensor
    assert shortest_path_sensor(FollowerSim([])).uuid == "shortest_path_sensor"
    progress = VLNOracleProgressSensor(
        sim=PlaneSim(), config=OmegaConf.structured(VLNOracleProgressSensorConfig())
    )
    assert progress.uuid == "progress"


def test_shortest_path_sensor_returns_the_followers_action():
    sim = FollowerSim([1, 2, 3, 0])
    sensor = shortest_path_sensor(sim)
    episode = make_episode(goal=(4.0, 0.0, -2.0))
    space = sensor.observation_space
    assert space.shape == (1,) and space.dtype == np.int64

    observations = [sensor.get_observation(observations={}, episode=episode, task=None)]
    for _ in range(3):
        observations.append(
            sensor.get_observation(observations={}, episode=episode, action=STEP, task=None)
        )
    for obs in observations:
        assert obs.shape == (1,) and obs.dtype == np.int64 and space.contains(obs)
    assert [int(o[0]) for o in observations] == [1, 2, 3, 0]
    # one follower for the episode, built with VLN-CE's goal radius and habitat's action keys
    assert sim.calls == [
        {
            "agent_id": 0,
            "goal_radius": 0.5,
            "stop_key": 0,
            "forward_key": 1,
            "left_key": 2,
            "right_key": 3,
        }
    ]
    assert sim.followers[0].goals == [[4.0, 0.0, -2.0]] * 4


def test_shortest_path_sensor_goal_radius_from_config():
    sim = FollowerSim([1])
    shortest_path_sensor(sim, goal_radius=0.25).get_observation(episode=make_episode())
    assert sim.calls[0]["goal_radius"] == 0.25


def test_shortest_path_sensor_answers_stop_without_a_path():
    error = habitat_sim.errors.GreedyFollowerError("no path")
    sim = FollowerSim([None, error])
    sensor = shortest_path_sensor(sim)
    episode = make_episode()
    assert int(sensor.get_observation(episode=episode)[0]) == 0
    assert int(sensor.get_observation(episode=episode, action=STEP)[0]) == 0


def test_shortest_path_sensor_builds_a_fresh_follower_per_episode():
    sim = FollowerSim([1] * 6)
    sensor = shortest_path_sensor(sim)
    first, second = make_episode("1"), make_episode("2")
    sensor.get_observation(episode=first)  # reset
    sensor.get_observation(episode=first, action=STEP)
    assert len(sim.followers) == 1
    sensor.get_observation(episode=first)  # the same episode again: reset
    assert len(sim.followers) == 2
    sensor.get_observation(episode=second, action=STEP)  # a new episode seen on a step
    sensor.get_observation(episode=second, action=STEP)
    assert len(sim.followers) == 3


class PlaneSim:
    """Agent position you set; geodesic distance = Euclidean to the nearest end (inf if blocked)."""

    def __init__(self) -> None:
        self.position = np.zeros(3)
        self.blocked = False

    def get_agent_state(self) -> SimpleNamespace:
        return SimpleNamespace(position=self.position.copy())

    def geodesic_distance(self, position_a: Any, position_b: Any, episode: Any = None) -> float:
        if self.blocked:
            return float("inf")
        ends = np.asarray(position_b, dtype=np.float64).reshape(-1, 3)
        return float(
            np.min(np.linalg.norm(ends - np.asarray(position_a, dtype=np.float64), axis=1))
        )


def progress_sensor(sim: PlaneSim) -> VLNOracleProgressSensor:
    return VLNOracleProgressSensor(
        sim=sim, config=OmegaConf.structured(VLNOracleProgressSensorConfig())
    )


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ((0, 0, 0), 0.0),  # at the start: 1 - 10/10
        ((4, 0, 0), 0.4),  # 1 - 6/10
        ((7, 0, 4), 0.5),  # 1 - |(3, 0, 4)|/10 = 1 - 5/10
        ((10, 0, 0), 1.0),  # at the goal
        ((12, 0, 0), 0.8),  # past the goal: 1 - 2/10
        ((-5, 0, 0), 0.0),  # behind the start: 1 - 15/10 clipped to 0
    ],
)
def test_progress_with_known_geodesics(position, expected):
    sim = PlaneSim()
    sensor = progress_sensor(sim)
    episode = make_episode(start=(0, 0, 0), goal=(10, 0, 0))
    sensor.get_observation(episode=episode)  # reset at the start
    sim.position = np.asarray(position, dtype=np.float64)
    obs = sensor.get_observation(episode=episode, action=STEP)
    assert obs.shape == (1,) and obs.dtype == np.float32
    assert sensor.observation_space.contains(obs)
    assert float(obs[0]) == pytest.approx(expected, abs=1e-6)


def test_progress_start_distance_is_per_episode():
    sim = PlaneSim()
    sensor = progress_sensor(sim)
    sim.position = np.array([0.0, 0.0, 0.0])
    long = make_episode("1", start=(0, 0, 0), goal=(10, 0, 0))
    short = make_episode("2", start=(0, 0, 0), goal=(4, 0, 0))
    sensor.get_observation(episode=long)
    sim.position = np.array([2.0, 0.0, 0.0])
    assert float(sensor.get_observation(episode=long, action=STEP)[0]) == pytest.approx(0.2)
    sim.position = np.array([0.0, 0.0, 0.0])
    sensor.get_observation(episode=short)  # reset: start distance now 4
    sim.position = np.array([2.0, 0.0, 0.0])
    assert float(sensor.get_observation(episode=short, action=STEP)[0]) == pytest.approx(0.5)


def test_progress_edge_cases():
    sim = PlaneSim()
    sensor = progress_sensor(sim)
    at_goal = make_episode(start=(3, 0, 3), goal=(3, 0, 3))
    sim.position = np.array([3.0, 0.0, 3.0])
    assert float(sensor.get_observation(episode=at_goal)[0]) == 1.0
    sim.blocked = True
    assert float(sensor.get_observation(episode=make_episode("2"))[0]) == 0.0
