"""Tests for habitat_fih.models.sampling: fast / quality / enhanced keyframe samplers."""

from __future__ import annotations

import itertools

import pytest
import torch

from habitat_fih.models.sampling import (
    ALGORITHMS,
    SamplerConfig,
    select_keyframes,
    select_keyframes_batched,
    voxelize_frames,
)

H, W = 6, 6  # 36 pixels per frame

# A 3 x 3 x 4 lattice (spacing 1): 36 distinct points whose bbox has smallest extent 2, so the
# voxel size is 2 / 20 = 0.1 and every lattice point falls in its own voxel.
_LATTICE = torch.stack(
    torch.meshgrid(torch.arange(3.0), torch.arange(3.0), torch.arange(4.0), indexing="ij"),
    dim=-1,
).reshape(36, 3)


def region_frame(region: int, drop: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """One frame seeing region ``region`` (lattice shifted by 10 in x); ``drop`` points get
    confidence 0 (unreliable). Returns ``([H, W, 3], [H, W])``."""
    pts = _LATTICE + torch.tensor([10.0 * region, 0.0, 0.0])
    conf = torch.ones(36)
    conf[:drop] = 0.0
    return pts.reshape(H, W, 3), conf.reshape(H, W)


def scene(frames: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``frames`` = [(region, drop), ...] -> ``([S, H, W, 3], [S, H, W])``."""
    pts, conf = zip(*(region_frame(r, d) for r, d in frames), strict=True)
    return torch.stack(pts), torch.stack(conf)


def random_lattice_scene(num_frames: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each frame sees 36 random points of a 3-region world (108 distinct lattice points)."""
    gen = torch.Generator().manual_seed(seed)
    world = torch.cat([_LATTICE + torch.tensor([10.0 * r, 0.0, 0.0]) for r in range(3)])
    idx = torch.randint(0, world.shape[0], (num_frames, 36), generator=gen)
    return world[idx].reshape(num_frames, H, W, 3), torch.ones(num_frames, H, W)


def distinct_points(world_points: torch.Tensor, indices: torch.Tensor) -> int:
    """Independent coverage count: distinct world points seen by the selected frames."""
    seen = {tuple(p) for p in world_points[indices].reshape(-1, 3).tolist()}
    return len(seen)


# --------------------------------------------------------------------------- fast


@pytest.mark.parametrize("s,k", [(10, 4), (7, 7), (5, 1), (32, 8), (4, 3), (100, 16), (9, 2)])
def test_fast_equals_rounded_linspace(s: int, k: int) -> None:
    pts, conf = torch.randn(s, 2, 2, 3), torch.rand(s, 2, 2)
    got = select_keyframes(pts, conf, k, SamplerConfig(algorithm="fast"))
    expected = torch.linspace(0, s - 1, k).round().long()
    assert torch.equal(got, expected)


# --------------------------------------------------------------------------- voxels


def test_voxel_size_and_counts_follow_the_rule() -> None:
    pts, conf = scene([(0, 0), (1, 5)])
    vox = voxelize_frames(pts, conf)
    # reliable points span x in [0, 12], y in [0, 2], z in [0, 3] -> smallest extent 2.
    assert vox.voxel_size == pytest.approx(2.0 / 20.0)
    assert vox.occupancy.shape == (2, 36 + 31)
    assert vox.occupancy.sum(1).tolist() == [36, 31]
    assert vox.covered([0, 1]) == 67
    assert vox.covered(torch.tensor([1, -1])) == 31


def test_median_and_min_conf_filter() -> None:
    pts, _ = scene([(0, 0), (1, 0)])
    # frame 0: 20 points at 0.2, 16 at 0.5; frame 1: all 36 at 2.0.
    # 72 sorted confs -> lower median (36th) = 0.5: frame 0 keeps only its 16 points at 0.5.
    conf = torch.full((2, H, W), 2.0)
    conf[0] = 0.5
    conf[0].view(-1)[:20] = 0.2
    assert voxelize_frames(pts, conf).occupancy.sum(1).tolist() == [16, 36]
    # frame 0 at 0.05: the median (0.05) keeps it but min_conf (> 0.1) drops it.
    conf[0] = 0.05
    assert voxelize_frames(pts, conf).occupancy.sum(1).tolist() == [0, 36]
    # conf_quantile 0 keeps everything above min_conf.
    conf[0] = 0.2
    conf[0].view(-1)[:20] = 0.15
    cfg = SamplerConfig(conf_quantile=0.0)
    assert voxelize_frames(pts, conf, cfg).occupancy.sum(1).tolist() == [36, 36]


def test_non_finite_points_are_ignored() -> None:
    pts, conf = scene([(0, 0), (1, 0)])
    pts[0, 0, 0] = float("nan")
    conf[1, 0, 0] = float("inf")
    vox = voxelize_frames(pts, conf)
    assert vox.occupancy.sum(1).tolist() == [35, 35]


# --------------------------------------------------------------------------- quality


@pytest.mark.parametrize("algorithm", ["quality", "enhanced"])
def test_never_picks_both_duplicates_when_a_distinct_frame_exists(algorithm: str) -> None:
    # frames 0 and 2 are identical and the largest; frames 1 and 3 are distinct but smaller.
    pts, conf = scene([(0, 0), (1, 10), (0, 0), (2, 12)])
    cfg = SamplerConfig(algorithm=algorithm)
    for k in (2, 3):
        got = select_keyframes(pts, conf, k, cfg).tolist()
        assert not {0, 2} <= set(got), (k, got)


def test_quality_greedy_order_and_fill() -> None:
    # All frames identical: greedy takes frame 0, then gain is zero and the remaining
    # slots are filled farthest-in-time (4, then 2).
    pts, conf = scene([(0, 0)] * 5)
    got = select_keyframes(pts, conf, 3, SamplerConfig(algorithm="quality"))
    assert got.tolist() == [0, 2, 4]
    # No reliable points at all (conf <= 0.1): pure farthest-in-time fill from frame 0.
    got = select_keyframes(pts, torch.full_like(conf, 0.05), 3, SamplerConfig(algorithm="quality"))
    assert got.tolist() == [0, 2, 4]


@pytest.mark.parametrize("algorithm", ["quality", "enhanced"])
@pytest.mark.parametrize("seed", [0, 1])
def test_coverage_is_monotone_in_k(algorithm: str, seed: int) -> None:
    pts, conf = random_lattice_scene(10, seed)
    cfg = SamplerConfig(algorithm=algorithm)
    covered = [distinct_points(pts, select_keyframes(pts, conf, k, cfg)) for k in range(1, 11)]
    assert all(b >= a for a, b in itertools.pairwise(covered)), covered
    assert covered[-1] == distinct_points(pts, torch.arange(10))


def test_quality_first_pick_is_largest_and_greedy_is_optimal_on_disjoint_sets() -> None:
    pts, conf = scene([(0, 20), (1, 0), (2, 5), (3, 30)])
    got = select_keyframes(pts, conf, 2, SamplerConfig(algorithm="quality"))
    assert got.tolist() == [1, 2]  # 36 and 31 voxels


# --------------------------------------------------------------------------- regions


@pytest.mark.parametrize("algorithm", ["quality", "enhanced"])
@pytest.mark.parametrize("interleave", [False, True])
def test_one_keyframe_per_disjoint_region(algorithm: str, interleave: bool) -> None:
    regions = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    if interleave:  # so temporal novelty alone cannot explain the result
        regions = [0, 1, 2, 3, 3, 2, 1, 0, 0, 2, 1, 3]
    frames = [(r, i % 3) for i, r in enumerate(regions)]
    pts, conf = scene(frames)
    got = select_keyframes(pts, conf, 4, SamplerConfig(algorithm=algorithm))
    assert sorted(regions[i] for i in got.tolist()) == [0, 1, 2, 3]


def test_enhanced_uses_given_features_for_diversity() -> None:
    # Geometry is identical everywhere, so only the descriptors separate the frames.
    pts, conf = scene([(0, 0)] * 6)
    feats = torch.tensor([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3)
    cfg = SamplerConfig(algorithm="enhanced", novelty_weight=0.0)
    got = select_keyframes(pts, conf, 2, cfg, features=feats).tolist()
    assert got[0] < 3 <= got[1]


def test_enhanced_camera_centre_novelty() -> None:
    pts, conf = scene([(0, 0)] * 4)
    centres = torch.tensor([[0.0, 0, 0], [0.1, 0, 0], [0.2, 0, 0], [5.0, 0, 0]])
    cfg = SamplerConfig(algorithm="enhanced")
    got = select_keyframes(pts, conf, 2, cfg, camera_centers=centres)
    assert got.tolist() == [0, 3]


# --------------------------------------------------------------------------- contracts


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_output_sorted_unique_long_and_deterministic(algorithm: str) -> None:
    pts, conf = random_lattice_scene(12, 3)
    cfg = SamplerConfig(algorithm=algorithm)
    for k in (1, 5, 12):
        a = select_keyframes(pts, conf, k, cfg)
        b = select_keyframes(pts, conf, k, cfg)
        assert a.dtype == torch.long and a.shape == (k,)
        assert torch.equal(a, b)
        assert torch.equal(a, torch.unique(a))  # sorted and unique
        assert 0 <= int(a.min()) and int(a.max()) < 12


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_always_include(algorithm: str) -> None:
    pts, conf = random_lattice_scene(9, 4)
    got = select_keyframes(
        pts, conf, 3, SamplerConfig(algorithm=algorithm), always_include=(-1, 4)
    ).tolist()
    assert {4, 8} <= set(got) and len(got) == 3


def test_default_k_comes_from_config() -> None:
    pts, conf = random_lattice_scene(10, 5)
    assert select_keyframes(pts, conf).shape == (8,)
    assert select_keyframes(pts, conf, config=SamplerConfig(num_keyframes=3)).shape == (3,)


def test_bad_inputs_raise_value_errors_naming_values() -> None:
    pts, conf = random_lattice_scene(4, 0)
    with pytest.raises(ValueError, match="empty video"):
        select_keyframes(pts[:0], conf[:0], 1)
    with pytest.raises(ValueError, match="num_keyframes must be >= 1, got 0"):
        select_keyframes(pts, conf, 0)
    with pytest.raises(ValueError, match="num_keyframes=5 exceeds .* S=4"):
        select_keyframes(pts, conf, 5)
    with pytest.raises(ValueError, match=r"world_points must be \[S, H, W, 3\]"):
        select_keyframes(pts[..., :2], conf, 2)
    with pytest.raises(ValueError, match="world_points_conf"):
        select_keyframes(pts, conf[:, :2], 2)
    with pytest.raises(ValueError, match="features must be"):
        select_keyframes(pts, conf, 2, features=torch.randn(3, 5))
    with pytest.raises(ValueError, match="camera_centers"):
        select_keyframes(pts, conf, 2, camera_centers=torch.randn(4, 2))
    with pytest.raises(ValueError, match="always_include index 7"):
        select_keyframes(pts, conf, 2, always_include=(7,))
    with pytest.raises(ValueError, match="always_include has 3"):
        select_keyframes(pts, conf, 2, always_include=(0, 1, 2))


def test_clamping_is_explicit() -> None:
    pts, conf = random_lattice_scene(4, 0)
    got = select_keyframes(pts, conf, 9, SamplerConfig(clamp_num_keyframes=True))
    assert got.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="num_keyframes must be >= 1"):
        select_keyframes(pts, conf, 0, SamplerConfig(clamp_num_keyframes=True))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"algorithm": "best"}, "algorithm must be one of .*'best'"),
        ({"num_keyframes": 0}, "num_keyframes must be >= 1, got 0"),
        ({"diversity_weight": -0.1}, "diversity_weight .* got -0.1"),
        ({"coverage_weight": 0, "diversity_weight": 0, "novelty_weight": 0}, "all be zero"),
        ({"conf_quantile": 1.5}, "conf_quantile .* got 1.5"),
        ({"voxel_divisor": 0.0}, "voxel_divisor .* got 0.0"),
        ({"point_stride": 0}, "point_stride .* got 0"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SamplerConfig(**kwargs)


# --------------------------------------------------------------------------- batched


def test_batched_matches_per_video_and_pads() -> None:
    pts_a, conf_a = random_lattice_scene(10, 1)
    pts_b, conf_b = random_lattice_scene(10, 2)
    pts, conf = torch.stack([pts_a, pts_b]), torch.stack([conf_a, conf_b])
    cfg = SamplerConfig(algorithm="quality", clamp_num_keyframes=True)
    out = select_keyframes_batched(pts, conf, 6, cfg, num_frames=[10, 4])
    assert out.shape == (2, 6)
    assert torch.equal(out[0], select_keyframes(pts_a, conf_a, 6, cfg))
    assert out[1].tolist() == [0, 1, 2, 3, -1, -1]
    with pytest.raises(ValueError, match="exceeds"):
        select_keyframes_batched(pts, conf, 6, SamplerConfig(), num_frames=[10, 4])
    with pytest.raises(ValueError, match="num_frames must hold B=2"):
        select_keyframes_batched(pts, conf, 2, num_frames=[10])
    with pytest.raises(ValueError, match=r"features must be \[B=2, S=10"):
        select_keyframes_batched(pts, conf, 2, features=torch.randn(2, 9, 4))


def test_runs_under_float64_and_point_stride() -> None:
    pts, conf = random_lattice_scene(8, 6)
    cfg = SamplerConfig(point_stride=2)
    got = select_keyframes(pts.double(), conf.double(), 4, cfg)
    assert got.shape == (4,)
