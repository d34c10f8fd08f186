"""Cross-frame token correspondences (habitat_fih.trainers.correspondences) against closed forms.

Hand-built cases: two pinhole cameras (hfov 90 deg, 64 x 64 px, so f = 32 px; a 4 x 4 token grid
of 16-px cells with centres at normalised x = -0.75, -0.25, 0.25, 0.75) looking at a
fronto-parallel wall, with a known relative pose; the expected (current cell, keyframe cell)
pairs follow by hand. Then the real FIH-VLN-v0 sensors on FIHSim-v0: after a turn in place
every pair obeys the rotation's closed form, whatever the scene's depth.
"""

from __future__ import annotations

import numpy as np
import pytest

from habitat_fih.trainers.correspondences import (
    CorrespondenceSettings,
    pair_generator,
    token_correspondences,
    view_correspondences,
)

K = np.array([[32.0, 0.0, 32.0], [0.0, 32.0, 32.0], [0.0, 0.0, 1.0]])  # 64 x 64, hfov 90
IDENTITY = np.hstack([np.eye(3), np.zeros((3, 1))])  # OpenCV camera-from-world


def _extrinsic(rotation: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """[R | -R C]: camera-from-world of a camera at `centre` with world-to-camera `rotation`."""
    return np.hstack([rotation, -(rotation @ centre)[:, None]])


def _pairs(depth: float, key_extrinsic: np.ndarray, cov=None, num_pairs=32, seed=0, grid=(4, 4)):
    cov = np.ones((1, 16, 16)) if cov is None else cov
    return token_correspondences(
        np.full((64, 64), depth, np.float32),
        IDENTITY,
        key_extrinsic[None],
        K,
        cov,
        grid,
        num_pairs,
        [np.random.default_rng(seed)],
    )


def _as_set(pairs: np.ndarray, mask: np.ndarray) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in pairs[mask]}


def test_sideways_translation_shifts_every_cell_by_one() -> None:
    """Keyframe 1 m to the right of the current camera, wall 2 m away: a point's keyframe pixel is
    u - f * 1 / 2 = u - 16, exactly one cell to the left; the left column leaves the image."""
    pairs, mask = _pairs(2.0, _extrinsic(np.eye(3), np.array([1.0, 0.0, 0.0])))
    expected = {(r * 4 + c, r * 4 + c - 1) for r in range(4) for c in range(1, 4)}
    assert pairs.shape == (1, 32, 2) and mask.shape == (1, 32)
    assert int(mask.sum()) == 12 and _as_set(pairs[0], mask[0]) == expected
    assert not pairs[0][~mask[0]].any()  # padding is zeros


def test_turn_in_place_follows_the_rotation_whatever_the_depth() -> None:
    """Keyframe turned 45 deg to the right: x' = tan(atan(x) - 45 deg), so current columns
    x = 0.75 / 0.25 land at x' = -1/7 / -0.6 (keyframe columns 1 / 0), rows unchanged (the
    vertical scale 1 / (cos 45 (1 + x)) keeps every centre in its row); the left half of the
    current view is outside the keyframe."""
    t = np.radians(45.0)
    turned = np.array([[np.cos(t), 0.0, -np.sin(t)], [0.0, 1.0, 0.0], [np.sin(t), 0.0, np.cos(t)]])
    expected = {(r * 4 + 3, r * 4 + 1) for r in range(4)} | {(r * 4 + 2, r * 4) for r in range(4)}
    for depth in (0.7, 2.0, 9.0):
        pairs, mask = _pairs(depth, _extrinsic(turned, np.zeros(3)))
        assert _as_set(pairs[0], mask[0]) == expected, depth


def test_forward_motion_keeps_each_keyframe_cell_once() -> None:
    """The current camera 2 m closer to a wall the keyframe sees 4 m away: the view shrinks by
    half in the keyframe (x' = x / 2), so current columns 0, 1 -> keyframe column 1 and 2, 3 -> 2
    (rows likewise). 16 candidates share 4 keyframe cells: one pair per keyframe cell, each with
    a correct partner, and the choice depends only on the generator."""
    # world = the current camera; the keyframe stands 2 m behind it (wall at z = 2 for current)
    key = _extrinsic(np.eye(3), np.array([0.0, 0.0, -2.0]))
    to_key = {0: 1, 1: 1, 2: 2, 3: 2}
    chosen = []
    for seed in range(6):
        pairs, mask = _pairs(2.0, key, seed=seed)
        got = _as_set(pairs[0], mask[0])
        assert len(got) == 4 and {b for _, b in got} == {5, 6, 9, 10}
        for cur, kf in got:
            assert kf == to_key[cur // 4] * 4 + to_key[cur % 4]
        again = _pairs(2.0, key, seed=seed)
        assert np.array_equal(again[0], pairs) and np.array_equal(again[1], mask)
        chosen.append(frozenset(got))
    assert len(set(chosen)) > 1  # another seed, another draw among the duplicates


def test_only_fully_covisible_cells_and_at_most_n_pairs() -> None:
    """A current cell is a candidate only when all of it is covisible: one of the 16 sensor
    cells (16 x 16 map) inside current cell (0, 1) not covisible leaves that cell out; invalid
    depth gives no pair; N caps the pairs."""
    key = _extrinsic(np.eye(3), np.array([1.0, 0.0, 0.0]))
    cov = np.ones((1, 16, 16))
    cov[0, 0, 4] = 0.0  # inside current cell (0, 1): 15/16 covisible
    pairs, mask = _pairs(2.0, key, cov=cov)
    expected = {(r * 4 + c, r * 4 + c - 1) for r in range(4) for c in range(1, 4)} - {(1, 0)}
    assert _as_set(pairs[0], mask[0]) == expected
    pairs, mask = _pairs(2.0, key, num_pairs=5)
    assert int(mask.sum()) == 5 and _as_set(pairs[0], mask[0]) < expected | {(1, 0)}
    depth = np.full((64, 64), 2.0, np.float32)
    depth[:, 32:] = 0.0  # the right half has no depth
    pairs, mask = token_correspondences(
        depth, IDENTITY, key[None], K, np.ones((1, 4, 4)), (4, 4), 32, [np.random.default_rng(0)]
    )
    assert {a % 4 for a, _ in _as_set(pairs[0], mask[0])} == {1}  # column 1 only


def test_view_correspondences_reads_the_sensor_observations() -> None:
    """From frame_geometry / frame_heatmaps observations: each history frame's own row (an empty
    memory slot and unknown frames are skipped), the current view's row all False, the pairs
    seeded by (seed, episode, step, frame)."""
    key = _extrinsic(np.eye(3), np.array([1.0, 0.0, 0.0]))
    geometry = {
        "frame_indices": np.array([0, 3, -1, 5]),  # memory 0, 3, an empty slot, current 5
        "valid": np.array([1, 1, 0, 1], np.uint8),
        "extrinsics": np.stack([key, IDENTITY, np.zeros((3, 4)), IDENTITY]).astype(np.float32),
        "intrinsics": np.stack([K * np.array([[7.0], [7.0], [1.0]])] * 4).astype(np.float32),
        "current_depth": np.full((64, 64), 2.0, np.float32),
    }  # intrinsics of a 448 x 448 image: only ratios matter
    heatmaps = {"frame_indices": np.array([0, 3, -1]), "covisibility": np.ones((3, 16, 16))}
    settings = CorrespondenceSettings(grid=(4, 4), num_pairs=20, seed=7)
    pairs, mask = view_correspondences(geometry, heatmaps, [0, 3, 5], settings, "ep1", 5)
    assert pairs.shape == (3, 20, 2) and mask.shape == (3, 20)
    shift = {(r * 4 + c, r * 4 + c - 1) for r in range(4) for c in range(1, 4)}
    same = {(t, t) for t in range(16)}  # frame 3 stands where the current view is
    assert _as_set(pairs[0], mask[0]) == shift and _as_set(pairs[1], mask[1]) == same
    assert not mask[2].any()
    expect, _ = token_correspondences(
        geometry["current_depth"],
        IDENTITY,
        key[None],
        geometry["intrinsics"][0],
        heatmaps["covisibility"][:1],
        (4, 4),
        20,
        [pair_generator(7, "ep1", 5, 0)],
    )
    assert np.array_equal(pairs[:1], expect)  # the order is the seeded draw
    assert view_correspondences(None, heatmaps, [0, 5], settings, "ep1", 5) is None
    no_cov = {"frame_indices": heatmaps["frame_indices"]}
    assert view_correspondences(geometry, no_cov, [0, 5], settings, "ep1", 5) is None


def test_turn_on_the_real_sensors_obeys_the_closed_form(tmp_path, monkeypatch) -> None:
    """FIH-VLN-v0 on FIHSim-v0 (bundled data): three 15-deg left turns in place; every pair of
    the first frame with the current view matches the 45-deg rotation's closed form (the sensor
    sits on the turning axis, so depth does not matter), there are some, and frame_geometry's
    current_depth is the task's working depth."""
    from pathlib import Path

    from habitat import Env

    from habitat_fih.config import get_config

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    cfg = get_config(
        "benchmark/nav/fih_vln_synthetic",
        [
            "habitat.dataset.split=val_seen",
            "habitat.task.measurements.ndtw.gt_path=''",
            "habitat.task.lab_sensors.frame_heatmaps.height=16",
            "habitat.task.lab_sensors.frame_heatmaps.width=16",
            "habitat.task.lab_sensors.frame_heatmaps.target_kinds=[covisibility]",
            "habitat.simulator.agents.main_agent.sim_sensors.depth_sensor.width=64",
            "habitat.simulator.agents.main_agent.sim_sensors.depth_sensor.height=64",
            "habitat.simulator.agents.main_agent.sim_sensors.rgb_sensor.width=32",
            "habitat.simulator.agents.main_agent.sim_sensors.rgb_sensor.height=32",
        ],
    )
    settings = CorrespondenceSettings(grid=(8, 8), num_pairs=64)
    with Env(config=cfg) as env:
        env.reset()
        for _ in range(3):
            obs = env.step(2)  # TURN_LEFT 15 deg
        geometry, heat = obs["frame_geometry"], obs["frame_heatmaps"]
        task = env.task
        np.testing.assert_array_equal(geometry["current_depth"], task.targets(obs).current.depth)
        pairs, mask = view_correspondences(geometry, heat, [0, 3], settings, "e", 3)
    got = _as_set(pairs[0], mask[0])
    assert len(got) >= 8 and not mask[1].any()
    # the current camera is turned 45 deg left of frame 0, i.e. frame 0 looks 45 deg right of
    # it: frame 0 sees the current view's direction x at x' = tan(atan(x) - 45 deg), with the
    # vertical scale 1 / (cos 45 (1 + x)) (as in the hand-built turn)
    t = np.radians(45.0)
    for cur, kf in got:
        r, c = divmod(cur, 8)
        x, y = (c + 0.5) / 4 - 1, (r + 0.5) / 4 - 1
        xk = (x - np.tan(t)) / (1 + x * np.tan(t))
        yk = y / (np.cos(t) * (1 + x * np.tan(t)))
        expect = int(np.floor((yk + 1) * 4)) * 8 + int(np.floor((xk + 1) * 4))
        assert kf == expect, (cur, kf, expect)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="num_pairs"):
        CorrespondenceSettings(grid=(4, 4), num_pairs=0)
    with pytest.raises(ValueError, match="token grid"):
        CorrespondenceSettings(grid=(0, 4))
