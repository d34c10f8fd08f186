"""Tests for habitat_fih.sim.follower (greedy geodesic follower, habitat-sim semantics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import quaternion
import trimesh

import habitat_fih  # noqa: F401  (installs the habitat-sim stand-ins)
from habitat_fih.sim.follower import GreedyGeodesicFollower, turn, yaw_of
from habitat_fih.sim.motion import try_step
from habitat_fih.sim.navigation import NavGrid

STOP, FORWARD, LEFT, RIGHT = 0, 1, 2, 3


def box(lo, hi) -> trimesh.Trimesh:
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    b = trimesh.creation.box(extents=hi - lo)
    b.apply_translation((lo + hi) / 2)
    return b


def P(x, y, z) -> np.ndarray:
    return np.array([x, y, z], dtype=np.float64)


@pytest.fixture(scope="module")
def l_corridor() -> NavGrid:
    """L-shaped corridor 1 m wide (leg A x in [0, 6], z in [0, 1]; leg B x in [5, 6], z in [0, 6])
    plus a separate closed room at x in [8, 10] (an island)."""
    parts = [
        box([0, -0.2, 0], [6, 0, 1]),
        box([5, -0.2, 1], [6, 0, 6]),
        box([-0.1, -0.1, -0.1], [6.1, 2.5, 0]),
        box([-0.1, -0.1, 0], [0, 2.5, 1]),
        box([-0.1, -0.1, 1], [5, 2.5, 1.1]),
        box([4.9, -0.1, 1.1], [5, 2.5, 6.1]),
        box([6, -0.1, -0.1], [6.1, 2.5, 6.1]),
        box([4.9, -0.1, 6], [6.1, 2.5, 6.1]),
        box([8, -0.2, 0], [10, 0, 2]),
        box([7.9, -0.1, -0.1], [10.1, 2.5, 0]),
        box([7.9, -0.1, 2], [10.1, 2.5, 2.1]),
        box([7.9, -0.1, 0], [8, 2.5, 2]),
        box([10, -0.1, 0], [10.1, 2.5, 2]),
    ]
    m = trimesh.util.concatenate(parts)
    return NavGrid.from_mesh(m.vertices, m.faces)


def make(grid: NavGrid, goal_radius: float = 0.25) -> GreedyGeodesicFollower:
    return GreedyGeodesicFollower(
        grid,
        goal_radius=goal_radius,
        stop_key=STOP,
        forward_key=FORWARD,
        left_key=LEFT,
        right_key=RIGHT,
    )


def yaw_quat(yaw: float) -> np.quaternion:
    return quaternion.from_rotation_vector([0.0, yaw, 0.0])


def test_turn_convention():
    q = np.quaternion(1, 0, 0, 0)  # looking down -Z
    assert yaw_of(q) == pytest.approx(0.0)
    left = turn(q, math.radians(90))  # turn_left: +90 deg about +Y -> looking down -X
    fwd = quaternion.rotate_vectors(left, np.array([0.0, 0.0, -1.0]))
    np.testing.assert_allclose(fwd, [-1, 0, 0], atol=1e-9)
    assert yaw_of(left) == pytest.approx(math.pi / 2)


@pytest.mark.parametrize(
    "start, yaw",
    [
        (P(0.6, 0, 0.5), -math.pi / 2),
        (P(1.5, 0, 0.3), 0.0),
        (P(3.0, 0, 0.7), math.pi),
        (P(5.5, 0, 1.5), math.pi / 2),
    ],
)
def test_reaches_goal_and_stops(l_corridor: NavGrid, start: np.ndarray, yaw: float):
    goal = P(5.5, 0, 5.2)
    f = make(l_corridor)
    pos, rot = start.copy(), yaw_quat(yaw)
    geo = l_corridor.geodesic_distance(start, [goal])
    steps = turns = forwards = 0
    while steps < 400:
        action = f.next_action_along(pos, rot, goal)
        steps += 1
        if action == STOP:
            break
        if action == FORWARD:
            forwards += 1
            heading = yaw_of(rot)
            target = pos + 0.25 * np.array([-math.sin(heading), 0.0, -math.cos(heading)])
            pos = try_step(l_corridor, pos, target, True)[0]
        else:
            turns += 1
            rot = turn(rot, math.radians(15.0) * (1 if action == LEFT else -1))
        assert l_corridor.is_navigable(pos)
    assert action == STOP
    assert l_corridor.geodesic_distance(pos, [goal]) < 0.25
    assert f.next_action_along(pos, rot, goal) == STOP
    # forward steps close to geodesic / 0.25 (15-degree headings zigzag and the follower keeps off
    # walls, so allow 20 %); turns bounded by the heading changes needed (<= 180 + 90 deg, + slack)
    assert (geo - 0.25) / 0.25 <= forwards <= 1.2 * geo / 0.25 + 2
    assert turns <= 12 + 6 + 6


def test_find_path_matches_stepping(l_corridor: NavGrid):
    f = make(l_corridor)
    start, goal = P(1.0, 0, 0.5), P(5.5, 0, 4.0)
    actions = f.find_path(start, yaw_quat(-math.pi / 2), goal)
    assert actions[-1] == STOP and actions.count(STOP) == 1
    pos, rot = start, yaw_quat(-math.pi / 2)
    for a in actions[:-1]:
        pos, rot = f.apply(pos, rot, a)
    assert l_corridor.geodesic_distance(pos, [goal]) < 0.25


def test_bound_follower_reads_state(l_corridor: NavGrid):
    state = {"pos": P(5.5, 0, 3.0), "rot": yaw_quat(0.0)}  # facing -Z, goal behind
    bound = make(l_corridor).bind(lambda: (state["pos"], state["rot"]))
    assert bound.next_action_along(P(5.5, 0, 5.0)) in (LEFT, RIGHT)
    state["rot"] = yaw_quat(math.pi)  # facing +Z: straight at the goal
    assert bound.next_action_along(P(5.5, 0, 5.0)) == FORWARD


def test_unreachable_goal_raises(l_corridor: NavGrid):
    from habitat_sim.errors import GreedyFollowerError

    f = make(l_corridor)
    with pytest.raises(GreedyFollowerError):
        f.next_action_along(P(1, 0, 0.5), yaw_quat(0.0), P(9, 0, 1))


def test_thrashing_commits_to_primitive(l_corridor: NavGrid):
    f = make(l_corridor)
    for i in range(16):
        f._history.append(LEFT if i % 2 == 0 else RIGHT)
    pos, rot = P(1.0, 0, 0.5), yaw_quat(math.pi / 2 + 0.01)  # facing -X: goal behind
    first = f.next_action_along(pos, rot, P(4.0, 0, 0.5))
    assert first in (LEFT, RIGHT)
    plan = [first]
    while plan[-1] != FORWARD:
        plan.append(f.next_action_along(pos, rot, P(4.0, 0, 0.5)))  # committed: state unchanged
    assert set(plan[:-1]) == {first} and len(plan) >= 2
