"""Tests for habitat_fih.geometry.targets_torch: equal to the numpy targets, batched and masked.

Scenes are box rooms rendered analytically in this file (ray / axis-aligned box exit).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from habitat_fih.geometry import (
    MASKED,
    SAME_POSITION,
    camera_position_heatmaps,
    covisibility_heatmaps,
)
from habitat_fih.geometry.targets_torch import (
    camera_position_heatmaps_torch,
    covisibility_heatmaps_torch,
)

HALF = np.array([4.0, 1.5, 3.0])  # room half extents (metres)


def room_pose(rng: np.random.Generator) -> np.ndarray:
    yaw, pitch = rng.uniform(-math.pi, math.pi), rng.uniform(-0.3, 0.3)
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    pose = np.eye(4)
    pose[:3, :3] = ry @ rx
    pose[:3, 3] = rng.uniform(-HALF + 0.5, HALF - 0.5)
    return pose


def room_depth(pose: np.ndarray, hfov: float, H: int, W: int) -> np.ndarray:
    """Planar depth inside the box |X| <= HALF: exit distance along rays with camera z = -1."""
    f = (W / 2) / math.tan(math.radians(hfov) / 2)
    jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    rays = np.stack([(jj - W / 2) / f, (H / 2 - ii) / f, -np.ones_like(jj)], axis=-1)
    dirs = rays @ pose[:3, :3].T
    o = pose[:3, 3]
    with np.errstate(divide="ignore"):
        t = np.where(dirs > 0, (HALF - o) / dirs, np.where(dirs < 0, (-HALF - o) / dirs, np.inf))
    return t.min(axis=-1)


def make_batch(
    b: int, n: int, size: int, seed: int, src_size: int | None = None
) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    src_size = src_size or size
    tp = np.stack([room_pose(rng) for _ in range(b)])
    sp = np.stack([[room_pose(rng) for _ in range(n)] for _ in range(b)])
    td = np.stack([room_depth(p, 90.0, size, size) for p in tp]).astype(np.float32)
    sd = np.stack([[room_depth(p, 90.0, src_size, src_size) for p in row] for row in sp]).astype(
        np.float32
    )
    td[:, :3, :5] = 0.0  # some invalid pixels
    # A few sources share the target's pose (so some overlaps are large).
    sp[:, 0] = tp
    sd[:, 0] = np.stack([room_depth(p, 90.0, src_size, src_size) for p in tp])
    return td, tp, sd, sp


def t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


@pytest.mark.parametrize(
    ("size", "src_size", "out"),
    [(64, 64, (16, 16)), (32, 48, (32, 32)), (40, 40, (12, 9))],
)
def test_covisibility_matches_numpy(size: int, src_size: int, out: tuple[int, int]) -> None:
    td, tp, sd, sp = make_batch(3, 6, size, seed=size, src_size=src_size)
    res = covisibility_heatmaps_torch(t(td), t(tp), t(sd), t(sp), 90.0, out)
    assert res.maps.shape == (3, 6, *out) and res.maps.dtype == torch.float32
    overlaps = []
    for k in range(3):
        ref = covisibility_heatmaps(td[k], tp[k], sd[k], sp[k], 90.0, out)
        np.testing.assert_allclose(res.maps[k].numpy(), ref.maps, atol=1e-5)
        np.testing.assert_allclose(res.normalized[k].numpy(), ref.normalized, atol=1e-5)
        np.testing.assert_array_equal(res.valid[k].numpy(), ref.valid)
        np.testing.assert_allclose(res.overlap[k].numpy(), ref.overlap, atol=1e-6)
        overlaps.append(ref.overlap)
    overlaps = np.concatenate(overlaps)
    assert (overlaps > 0.5).any() and ((overlaps > 0) & (overlaps < 0.5)).any()


def test_covisibility_mask_and_batch_consistency() -> None:
    td, tp, sd, sp = make_batch(2, 5, 32, seed=7)
    mask = torch.tensor([[True, True, False, True, False], [True] * 5])
    sp_padded = sp.copy()
    sp_padded[0, 2] = 0.0  # padded slots may hold garbage poses
    res = covisibility_heatmaps_torch(
        t(td), t(tp), t(sd), t(sp_padded), 90.0, (8, 8), source_mask=mask
    )
    assert res.maps[0, 2].sum() == 0 and res.maps[0, 4].sum() == 0
    assert not res.valid[0, 2] and not res.valid[0, 4]
    full = covisibility_heatmaps_torch(t(td), t(tp), t(sd), t(sp), 90.0, (8, 8))
    keep = mask.numpy()
    np.testing.assert_array_equal(res.maps.numpy()[keep], full.maps.numpy()[keep])
    # Batch of B equals B single-element batches.
    for k in range(2):
        one = covisibility_heatmaps_torch(
            t(td[k : k + 1]), t(tp[k : k + 1]), t(sd[k : k + 1]), t(sp[k : k + 1]), 90.0, (8, 8)
        )
        np.testing.assert_array_equal(one.maps[0].numpy(), full.maps[k].numpy())


def test_camera_positions_match_numpy() -> None:
    td, tp, sd, sp = make_batch(3, 8, 48, seed=3)
    res = camera_position_heatmaps_torch(t(td), t(tp), t(sp), 90.0, (12, 12), sigma=1.5)
    statuses = []
    for k in range(3):
        ref = camera_position_heatmaps(td[k], tp[k], sp[k], 90.0, (12, 12), sigma=1.5)
        np.testing.assert_array_equal(res.status[k].numpy(), ref.status)
        np.testing.assert_allclose(res.uv[k].numpy(), ref.uv, atol=1e-6)
        np.testing.assert_allclose(res.depth[k].numpy(), ref.depth, atol=1e-9)
        np.testing.assert_allclose(res.maps[k].numpy(), ref.maps, atol=1e-5)
        statuses.append(ref.status)
    assert len(set(np.concatenate(statuses).tolist())) >= 2
    # a source at the target's own centre (a turn in place) is SAME_POSITION in both
    sp_same = sp.copy()
    sp_same[0, 2, :3, 3] = tp[0, :3, 3] + 1e-4
    same = camera_position_heatmaps_torch(t(td), t(tp), t(sp_same), 90.0, (12, 12))
    ref = camera_position_heatmaps(td[0], tp[0], sp_same[0], 90.0, (12, 12))
    assert same.status[0, 2] == ref.status[2] == SAME_POSITION
    assert torch.isnan(same.uv[0, 2]).all() and same.maps[0, 2].sum() == 0
    mask = torch.ones(3, 8, dtype=torch.bool)
    mask[1, 3] = False
    masked = camera_position_heatmaps_torch(t(td), t(tp), t(sp), 90.0, (12, 12), source_mask=mask)
    assert masked.status[1, 3] == MASKED and masked.maps[1, 3].sum() == 0
    assert torch.isnan(masked.uv[1, 3]).all()


def test_torch_empty_and_bad_input() -> None:
    td, tp, sd, sp = make_batch(1, 2, 16, seed=1)
    empty = covisibility_heatmaps_torch(t(td), t(tp), t(sd[:, :0]), t(sp[:, :0]), 90.0, (4, 4))
    assert empty.maps.shape == (1, 0, 4, 4)
    bad = td.copy()
    bad[0, 5, 6] = np.nan
    with pytest.raises(ValueError, match=r"target_depth.*nan.*\(0, 5, 6\)"):
        covisibility_heatmaps_torch(t(bad), t(tp), t(sd), t(sp), 90.0, (4, 4))
    with pytest.raises(ValueError, match=r"source_poses.*\(1, 3, 4, 4\)"):
        covisibility_heatmaps_torch(t(td), t(tp), t(sd), t(np.zeros((1, 3, 4, 4))), 90.0, (4, 4))
    with pytest.raises(ValueError, match="source_poses.*rigid"):
        covisibility_heatmaps_torch(t(td), t(tp), t(sd), t(sp * 2.0), 90.0, (4, 4))
    with pytest.raises(ValueError, match="hfov.*0"):
        camera_position_heatmaps_torch(t(td), t(tp), t(sp), 0.0, (4, 4))
