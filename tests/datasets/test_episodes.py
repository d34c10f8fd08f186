"""Every bundled episode is valid (navigable start/goal, geodesic in [5, 20] m, reference path
through navigable space) and the oracle reaches every val goal within 500 steps."""

from __future__ import annotations

import numpy as np
import pytest

from habitat_fih.datasets.episodes import EpisodeSpec, oracle_rollout

from .conftest import SPLITS, navgrid, split_data, split_gt


@pytest.mark.parametrize("split", SPLITS)
def test_every_episode_is_valid(bundled, split):
    eps = split_data(split)["episodes"]
    assert len(eps) >= 40
    for ep in eps:
        nav = navgrid(ep["scene_id"])
        start = np.asarray(ep["start_position"], dtype=np.float64)
        goal = np.asarray(ep["goals"][0]["position"], dtype=np.float64)
        assert ep["goals"][0]["radius"] == 3.0
        assert nav.is_navigable(start), (ep["episode_id"], start)
        assert nav.is_navigable(goal), (ep["episode_id"], goal)
        geo = nav.geodesic_distance(start, [goal])
        assert np.isfinite(geo) and 5.0 - 0.05 <= geo <= 20.0 + 0.05, (ep["episode_id"], geo)
        assert abs(geo - ep["info"]["geodesic_distance"]) < 0.05
        path = [np.asarray(p, dtype=np.float64) for p in ep["reference_path"]]
        assert np.allclose(path[0], start, atol=1e-3) and np.allclose(path[-1], goal, atol=1e-3)
        for a, b in zip(path[:-1], path[1:], strict=True):
            # every point of the segment (1 cm apart) lies on the navigable floor (2 cm tolerance)
            n = max(2, int(np.linalg.norm(b - a) / 0.01))
            for p in np.linspace(a, b, n):
                assert nav.locate(p, max_y_delta=0.5, tol=0.02) >= 0, (ep["episode_id"], a, b, p)
        q = ep["start_rotation"]
        assert q[0] == 0.0 and q[2] == 0.0 and abs(np.hypot(q[1], q[3]) - 1) < 1e-5


@pytest.mark.parametrize("split", ["val_seen", "val_unseen"])
def test_oracle_reaches_every_val_goal(bundled, split):
    """The greedy geodesic follower (habitat-sim semantics, goal radius 0.5 m) from each start; its
    actions also equal the stored ground truth."""
    spec = EpisodeSpec()
    gt = split_gt(split)
    done: dict[tuple, tuple] = {}
    for ep in split_data(split)["episodes"]:
        key = (ep["scene_id"], tuple(ep["start_position"]), tuple(ep["start_rotation"]),
               tuple(ep["goals"][0]["position"]))
        if key not in done:
            nav = navgrid(ep["scene_id"])
            done[key] = oracle_rollout(nav, np.asarray(ep["start_position"]), ep["start_rotation"],
                                       np.asarray(ep["goals"][0]["position"]), spec)
        result = done[key]
        assert result is not None, f"oracle failed on episode {ep['episode_id']}"
        locations, actions = result
        assert len(actions) <= 500 and actions[-1] == 0
        nav = navgrid(ep["scene_id"])
        final = np.asarray(locations[-1])
        assert nav.geodesic_distance(final, [np.asarray(ep["goals"][0]["position"])]) < 3.0
        assert gt[str(ep["episode_id"])]["actions"] == actions
        assert np.allclose(gt[str(ep["episode_id"])]["locations"], locations, atol=1e-4)


def test_most_episodes_change_room(bundled):
    from habitat_fih.datasets.instructions import room_at

    from .conftest import metadata

    eps = split_data("train")["episodes"]
    changed = 0
    for ep in eps:
        meta = metadata(ep["scene_id"])
        a, b = room_at(meta, ep["start_position"]), room_at(meta, ep["goals"][0]["position"])
        changed += a is not None and b is not None and a["id"] != b["id"]
    assert changed / len(eps) > 0.75
