"""Greedy geodesic follower for FIHSim-v0 (habitat-sim's ``GreedyGeodesicFollower``).

At each call the follower measures the geodesic distance ``g0`` from the agent to the goal on a
:class:`~habitat_fih.sim.navigation.NavGrid`. ``inf`` raises ``GreedyFollowerError`` (habitat-sim's
class; with habitat-sim absent, the stand-in installed by ``habitat_fih.compat``); ``g0 <
goal_radius`` returns ``stop_key``. Otherwise it simulates the motion primitives ``[LEFT]*n +
[FORWARD]`` and ``[RIGHT]*n + [FORWARD]`` for ``n = 0 .. 180 deg / turn`` with the grid's
``try_step`` and scores each by the geodesic progress of its single forward step, minus small
penalties for turning, for colliding and for ending within 0.2 m of an obstacle, and returns the
first action of the best. Progress is NOT divided by the primitive's length: turns cost no path
length (habitat's SPL counts metres walked), so the follower turns in place until the forward step
makes the most progress; dividing by the length would prefer walking at a poor heading (0.25 m at
69 deg off makes 0.09 m of progress, more than 0.25 m / 5 actions) and spiral in towards the goal.
If the last ``thrashing_threshold`` actions alternate left/right, it commits to a whole primitive.

Rotations are numpy-quaternions in habitat's convention: the agent looks down its local -Z and
``turn_left`` rotates by ``+turn_angle`` about +Y (``rotation * quat(axis=+Y, angle)``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable

import numpy as np
import quaternion  # noqa: F401  (registers np.quaternion)
from habitat_sim.errors import GreedyFollowerError

from habitat_fih.sim.motion import try_step
from habitat_fih.sim.navigation import NavGrid

__all__ = ["GreedyGeodesicFollower", "BoundGreedyFollower", "GreedyFollowerError", "yaw_of", "turn"]

#: Score penalties (metres of geodesic progress per action). The collision penalty is chosen so that
#: a forward step that slides along a wall at 15 deg or more loses to turning first (0.25 cos 15 -
#: 0.15 < 0.25 / 2): with a smaller one the per-step score prefers crawling along walls.
TURN_PENALTY = 1e-3
COLLISION_PENALTY = 0.15
NEAR_OBSTACLE_PENALTY = 1e-2
NEAR_OBSTACLE_DISTANCE = 0.2


def yaw_of(rotation: np.quaternion) -> float:
    """Heading angle (rad) about +Y: the agent's forward is ``(-sin yaw, 0, -cos yaw)``."""
    fwd = quaternion.rotate_vectors(rotation, np.array([0.0, 0.0, -1.0]))
    return math.atan2(-float(fwd[0]), -float(fwd[2]))


def turn(rotation: np.quaternion, angle_rad: float) -> np.quaternion:
    """``rotation`` turned by ``angle_rad`` about +Y (positive = left), as habitat's turn actions."""
    q = np.quaternion(math.cos(angle_rad / 2), 0.0, math.sin(angle_rad / 2), 0.0)
    return (rotation * q).normalized()


class GreedyGeodesicFollower:
    """Greedy action-space follower of the geodesic to a goal (habitat-sim semantics).

    Args:
        navgrid: the navigability grid (geodesics, ``try_step``).
        goal_radius: stop when the geodesic distance is below this (metres).
        stop_key, forward_key, left_key, right_key: values returned for the four actions.
        forward_amount: metres per forward step.
        turn_angle_deg: degrees per turn.
        allow_sliding: forwarded to ``try_step`` when simulating primitives.
        thrashing_threshold: alternating left/right actions before committing to a primitive
            (None disables the fix, as habitat-sim's ``fix_thrashing=False``).
    """

    def __init__(
        self,
        navgrid: NavGrid,
        *,
        goal_radius: float,
        stop_key: Hashable = None,
        forward_key: Hashable = None,
        left_key: Hashable = None,
        right_key: Hashable = None,
        forward_amount: float = 0.25,
        turn_angle_deg: float = 15.0,
        allow_sliding: bool = True,
        thrashing_threshold: int | None = 16,
    ) -> None:
        if goal_radius <= 0:
            raise ValueError(f"goal_radius must be positive; got {goal_radius}")
        if not 0 < turn_angle_deg <= 180:
            raise ValueError(f"turn_angle_deg must be in (0, 180]; got {turn_angle_deg}")
        self.navgrid = navgrid
        self.goal_radius = float(goal_radius)
        self.stop_key, self.forward_key = stop_key, forward_key
        self.left_key, self.right_key = left_key, right_key
        self.forward_amount = float(forward_amount)
        self.turn_angle = float(np.deg2rad(turn_angle_deg))
        self.max_turns = int(round(180.0 / float(turn_angle_deg)))
        self.allow_sliding = bool(allow_sliding)
        self.thrashing_threshold = thrashing_threshold
        self._history: deque = deque(maxlen=thrashing_threshold or 1)
        self._plan: list = []

    def reset(self) -> None:
        """Forget the action history and any committed primitive."""
        self._history.clear()
        self._plan = []

    def bind(self, state_fn: Callable[[], tuple[np.ndarray, np.quaternion]]) -> BoundGreedyFollower:
        """Follower whose ``next_action_along(goal)`` reads ``(position, rotation) = state_fn()``."""
        return BoundGreedyFollower(self, state_fn)

    # ------------------------------------------------------------------ core
    def _geodesic(self, position: np.ndarray, goal: np.ndarray) -> float:
        return self.navgrid.geodesic_distance(position, [goal])

    def _best_primitive(
        self, position: np.ndarray, yaw: float, goal: np.ndarray, g0: float
    ) -> list:
        best_score, best = -np.inf, [self.forward_key]
        for key, sign in ((self.left_key, 1.0), (self.right_key, -1.0)):
            for n in range(self.max_turns + 1):
                if n == 0 and sign < 0:
                    continue
                heading = yaw + sign * n * self.turn_angle
                target = position + self.forward_amount * np.array(
                    [-math.sin(heading), 0.0, -math.cos(heading)]
                )
                new, collided = try_step(self.navgrid, position, target, self.allow_sliding)
                g = self._geodesic(new, goal)
                if not np.isfinite(g):
                    continue
                score = (g0 - g) - TURN_PENALTY * n
                if collided:
                    score -= COLLISION_PENALTY
                if self.navgrid.distance_to_obstacle(new) < NEAR_OBSTACLE_DISTANCE:
                    score -= NEAR_OBSTACLE_PENALTY
                if score > best_score:
                    best_score, best = score, [key] * n + [self.forward_key]
        return best

    def _thrashing(self) -> bool:
        h = self._history
        if self.thrashing_threshold is None or len(h) < self.thrashing_threshold:
            return False
        turns = (self.left_key, self.right_key)
        return all(a in turns for a in h) and all(
            a != b for a, b in zip(list(h)[:-1], list(h)[1:], strict=True)
        )

    def next_action_along(
        self, agent_position: np.ndarray, agent_rotation: np.quaternion, goal: np.ndarray
    ) -> Hashable:
        """Next action key from the agent's state toward ``goal`` (float [3]).

        Raises:
            GreedyFollowerError: the goal is unreachable from the agent's position.
        """
        position = np.asarray(agent_position, dtype=np.float64)
        goal = np.asarray(goal, dtype=np.float64)
        g0 = self._geodesic(position, goal)
        if not np.isfinite(g0):
            self.reset()
            raise GreedyFollowerError(
                f"no navigable path from {position.tolist()} to {goal.tolist()} in scene {self.navgrid.name!r}"
            )
        if g0 < self.goal_radius:
            self.reset()
            return self.stop_key
        if not self._plan:
            primitive = self._best_primitive(position, yaw_of(agent_rotation), goal, g0)
            if self._thrashing():
                self._plan = primitive
                self._history.clear()
            else:
                self._plan = primitive[:1]
        action = self._plan.pop(0)
        self._history.append(action)
        return action

    def find_path(
        self,
        agent_position: np.ndarray,
        agent_rotation: np.quaternion,
        goal: np.ndarray,
        max_steps: int = 5000,
    ) -> list:
        """Actions from the given state to ``goal`` (simulated with ``try_step``), ending with ``stop_key``.

        Raises:
            GreedyFollowerError: the goal is unreachable or not reached within ``max_steps``.
        """
        sim = GreedyGeodesicFollower(
            self.navgrid,
            goal_radius=self.goal_radius,
            stop_key=self.stop_key,
            forward_key=self.forward_key,
            left_key=self.left_key,
            right_key=self.right_key,
            forward_amount=self.forward_amount,
            turn_angle_deg=float(np.rad2deg(self.turn_angle)),
            allow_sliding=self.allow_sliding,
            thrashing_threshold=self.thrashing_threshold,
        )
        position = np.asarray(agent_position, dtype=np.float64).copy()
        rotation = agent_rotation
        actions: list = []
        for _ in range(max_steps):
            action = sim.next_action_along(position, rotation, goal)
            actions.append(action)
            if action == self.stop_key:
                return actions
            position, rotation = self.apply(position, rotation, action)
        raise GreedyFollowerError(
            f"goal {np.asarray(goal).tolist()} not reached within {max_steps} actions"
        )

    def apply(
        self, position: np.ndarray, rotation: np.quaternion, action: Hashable
    ) -> tuple[np.ndarray, np.quaternion]:
        """Simulate one action: ``(new position, new rotation)`` (stop leaves the state unchanged)."""
        if action == self.forward_key:
            yaw = yaw_of(rotation)
            target = position + self.forward_amount * np.array([-math.sin(yaw), 0.0, -math.cos(yaw)])
            return try_step(self.navgrid, position, target, self.allow_sliding)[0], rotation
        if action == self.left_key:
            return position, turn(rotation, self.turn_angle)
        if action == self.right_key:
            return position, turn(rotation, -self.turn_angle)
        return position, rotation


class BoundGreedyFollower:
    """A follower bound to a state source: ``next_action_along(goal)`` as habitat-sim's follower."""

    def __init__(
        self,
        follower: GreedyGeodesicFollower,
        state_fn: Callable[[], tuple[np.ndarray, np.quaternion]],
    ) -> None:
        self.follower = follower
        self._state_fn = state_fn

    def next_action_along(self, goal: np.ndarray) -> Hashable:
        position, rotation = self._state_fn()
        return self.follower.next_action_along(position, rotation, goal)

    def find_path(self, goal: np.ndarray) -> list:
        position, rotation = self._state_fn()
        return self.follower.find_path(position, rotation, goal)

    def reset(self) -> None:
        self.follower.reset()
