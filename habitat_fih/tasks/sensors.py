"""Expert sensors for VLN-CE training, registered with habitat's sensor registry.

- :class:`ShortestPathSensor` (uuid ``shortest_path_sensor``): the expert's next action (int in
  ``[0, 3]``: STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT) from habitat's ``ShortestPathFollower``
  toward the episode's goal, as VLN-CE's teacher-forcing / DAgger expert.
- :class:`VLNOracleProgressSensor` (uuid ``progress``): ``1 - geodesic(agent, goal) /
  geodesic(start, goal)`` clipped to ``[0, 1]``, VLN-CE's progress-monitor target.

Both use only habitat's simulator interface (``make_greedy_follower`` through
``ShortestPathFollower``, ``geodesic_distance``, ``get_agent_state``), so they run on FIHSim-v0 and
on habitat-sim's Sim-v0. Per-episode state is rebuilt when the task resets (habitat's task calls
the sensors without an ``action`` on reset) or the episode changes. Structured configs live in
:mod:`habitat_fih.config.default_structured_configs`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from gym import spaces
from habitat.core.registry import registry
from habitat.core.simulator import Sensor, SensorTypes, Simulator
from habitat.sims.habitat_simulator.actions import HabitatSimActions
from habitat.tasks.nav.shortest_path_follower import ShortestPathFollower

if TYPE_CHECKING:
    from habitat.core.dataset import Episode
    from omegaconf import DictConfig

__all__ = ["ShortestPathSensor", "VLNOracleProgressSensor"]


def _episode_key(episode: Episode) -> tuple[str, str]:
    return (str(episode.episode_id), str(episode.scene_id))


def _goal_positions(episode: Episode) -> list[list[float]]:
    return [list(goal.position) for goal in episode.goals]


class _PerEpisodeSensor(Sensor):
    """A sensor whose state is rebuilt at each task reset or change of episode."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._episode_key: tuple[str, str] | None = None
        super().__init__(*args, **kwargs)

    def _is_new_episode(self, episode: Episode, action: Any) -> bool:
        """True on the task's reset call (no ``action``) or when the episode changed."""
        key = _episode_key(episode)
        new = action is None or key != self._episode_key
        self._episode_key = key
        return new


@registry.register_sensor
class ShortestPathSensor(_PerEpisodeSensor):
    """The expert's next action toward the episode's (first) goal, shape ``[1]`` int64.

    Config: ``goal_radius`` (VLN-CE: 0.5 m), the follower's stopping radius. A fresh
    ``ShortestPathFollower(sim, goal_radius, return_one_hot=False)`` is built per episode, so the
    greedy follower's internal state never carries over. A follower that finds no action (None)
    or no path answers STOP.
    """

    cls_uuid: str = "shortest_path_sensor"

    def __init__(self, sim: Simulator, config: DictConfig, *args: Any, **kwargs: Any) -> None:
        self._sim = sim
        self._goal_radius = float(config.goal_radius)
        self._follower: ShortestPathFollower | None = None
        super().__init__(config=config)

    def _get_uuid(self, *args: Any, **kwargs: Any) -> str:
        return self.cls_uuid

    def _get_sensor_type(self, *args: Any, **kwargs: Any) -> SensorTypes:
        return SensorTypes.TACTILE

    def _get_observation_space(self, *args: Any, **kwargs: Any) -> spaces.Box:
        return spaces.Box(low=0, high=3, shape=(1,), dtype=np.int64)

    def get_observation(
        self, *args: Any, episode: Episode, action: Any = None, **kwargs: Any
    ) -> np.ndarray:
        new_episode = self._is_new_episode(episode, action)
        if new_episode or self._follower is None:
            self._follower = ShortestPathFollower(
                self._sim, self._goal_radius, return_one_hot=False
            )
        best_action = self._follower.get_next_action(episode.goals[0].position)
        if best_action is None:
            best_action = HabitatSimActions.stop
        return np.array([int(best_action)], dtype=np.int64)


@registry.register_sensor
class VLNOracleProgressSensor(_PerEpisodeSensor):
    """Progress toward the goal, ``1 - d(agent, goal) / d(start, goal)`` in ``[0, 1]``, ``[1]``.

    ``d`` is the simulator's geodesic distance to the nearest episode goal; ``d(start, goal)`` is
    computed once per episode from ``episode.start_position``. A start already at the goal gives
    1; an unreachable goal (infinite or NaN distance) gives 0.
    """

    cls_uuid: str = "progress"

    def __init__(self, sim: Simulator, config: DictConfig, *args: Any, **kwargs: Any) -> None:
        self._sim = sim
        self._start_distance = math.nan
        super().__init__(config=config)

    def _get_uuid(self, *args: Any, **kwargs: Any) -> str:
        return self.cls_uuid

    def _get_sensor_type(self, *args: Any, **kwargs: Any) -> SensorTypes:
        return SensorTypes.MEASUREMENT

    def _get_observation_space(self, *args: Any, **kwargs: Any) -> spaces.Box:
        return spaces.Box(low=0.0, high=1.0, shape=(1,), dtype=np.float32)

    def get_observation(
        self, *args: Any, episode: Episode, action: Any = None, **kwargs: Any
    ) -> np.ndarray:
        goals = _goal_positions(episode)
        new_episode = self._is_new_episode(episode, action)
        if new_episode or math.isnan(self._start_distance):
            self._start_distance = float(
                self._sim.geodesic_distance(list(episode.start_position), goals, episode)
            )
        position = self._sim.get_agent_state().position
        current = float(self._sim.geodesic_distance(position, goals, episode))
        return np.array([self._progress(current)], dtype=np.float32)

    def _progress(self, current: float) -> float:
        start = self._start_distance
        if not (math.isfinite(start) and math.isfinite(current)):
            return 0.0
        if start <= 0.0:
            return 1.0
        return float(np.clip(1.0 - current / start, 0.0, 1.0))
