"""VGGT geometry metrics on hand-made poses and depth maps."""

from __future__ import annotations

import math

import pytest
import torch

from habitat_fih.models.vggt.metrics import (
    depth_metrics,
    geometry_metrics,
    pose_auc,
    pose_metrics,
    relative_pose_errors,
)
from habitat_fih.models.vggt.targets import VGGTTargets


def _quat(axis: tuple[float, float, float], deg: float) -> list[float]:
    """XYZW quaternion of a rotation by ``deg`` about ``axis``."""
    n = torch.tensor(axis, dtype=torch.float64)
    n = n / n.norm()
    half = math.radians(deg) / 2
    return [*(math.sin(half) * n).tolist(), math.cos(half)]


def _enc(*frames: tuple[list[float], list[float]]) -> torch.Tensor:
    """[1, S, 9] from (translation, quaternion XYZW) per frame, FoVs 1.0."""
    return torch.tensor([[[*t, *q, 1.0, 1.0] for t, q in frames]], dtype=torch.float64)


IDENTITY = [0.0, 0.0, 0.0, 1.0]


def test_identical_poses_have_zero_error_and_auc_one() -> None:
    gt = _enc(
        ([0, 0, 0], IDENTITY),
        ([1, 0, 0.5], _quat((0, 1, 0), 30)),
        ([0, -1, 2], _quat((1, 1, 0), -70)),
    )
    m = pose_metrics(gt.clone(), gt, scale=2.0)
    assert m["rre_deg"] == pytest.approx(0.0, abs=1e-5)
    assert m["rte_deg"] == pytest.approx(0.0, abs=1e-5)
    assert m["rte_m"] == pytest.approx(0.0, abs=1e-9)
    assert m["rte_m_as_trained"] == pytest.approx(0.0, abs=1e-9)
    assert m["auc_30"] == 1.0


def test_fov_error_in_degrees() -> None:
    gt = _enc(([0, 0, 0], IDENTITY), ([1, 0, 0], IDENTITY))  # FoVs 1 rad
    pred = gt.clone()
    pred[0, 1, 8] = 0.0  # a dead FoV: 1 rad off on one of the four FoV values
    pred[0, 0, 7] = 1.0 + math.radians(2.0)  # 2 degrees off on another
    m = pose_metrics(pred, gt)
    assert m["fov_err_deg"] == pytest.approx((math.degrees(1.0) + 2.0) / 4)
    assert pose_metrics(gt.clone(), gt)["fov_err_deg"] == 0.0


def test_a_known_10_degree_rotation_error() -> None:
    # GT rotations R_0, R_1, R_2; the prediction is R^_2 = Q R_2 with Q a 10-degree rotation,
    # the rest exact. Pair (0, 1) is exact; for i = 0, 1: R^_i2 = Q R_2 R_i^T, R_i2 = R_2 R_i^T,
    # so R^_i2^T R_i2 = (R_i R_2^T) Q^T (R_i R_2^T)^T, a conjugate of Q^T: 10 degrees.
    a, b, c = _quat((0, 1, 0), 20), _quat((1, 0, 0), -35), _quat((0.3, 1, 0.2), 50)
    gt = _enc(([0, 0, 0], a), ([1, 0, 0], b), ([0, 0, 1], c))
    q10 = torch.tensor(_quat((1, 2, 3), 10), dtype=torch.float64)
    cq = torch.tensor(c, dtype=torch.float64)
    # Hamilton product q10 * c (XYZW): the rotation "c, then 10 degrees".
    x1, y1, z1, w1 = q10
    x2, y2, z2, w2 = cq
    qc = [
        float(w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2),
        float(w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2),
        float(w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2),
        float(w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2),
    ]
    pred = gt.clone()
    pred[0, 2, 3:7] = torch.tensor(qc, dtype=torch.float64)
    errs = relative_pose_errors(pred, gt)
    torch.testing.assert_close(
        errs.rre_deg[0], torch.tensor([0.0, 10.0, 10.0], dtype=torch.float64), atol=1e-5, rtol=0
    )
    assert pose_metrics(pred, gt)["rre_deg"] == pytest.approx(20.0 / 3.0, abs=1e-5)
    # against the reference frame 0 only: pairs (0, 1) and (0, 2)
    assert pose_metrics(pred, gt)["rre_ref_deg"] == pytest.approx(5.0, abs=1e-5)


def test_translation_direction_error_and_sign_folding() -> None:
    # Frame 0 at the origin with identity rotation, so t_01 = t_1.
    gt = _enc(([0, 0, 0], IDENTITY), ([1, 0, 0], IDENTITY))
    c, s = math.cos(math.radians(20.5)), math.sin(math.radians(20.5))
    pred = _enc(([0, 0, 0], IDENTITY), ([2 * c, 2 * s, 0], IDENTITY))
    assert float(relative_pose_errors(pred, gt).rte_deg[0, 0]) == pytest.approx(20.5, abs=1e-6)
    flipped = _enc(([0, 0, 0], IDENTITY), ([-1, 0, 0], IDENTITY))
    assert float(relative_pose_errors(flipped, gt).rte_deg[0, 0]) == pytest.approx(0.0, abs=1e-6)
    unfolded = relative_pose_errors(flipped, gt, fold_translation_sign=False).rte_deg
    assert float(unfolded[0, 0]) == pytest.approx(180.0, abs=1e-6)
    # AUC with RRE 0, RTE 20.5: the pair counts for thresholds 21..30 -> 10 / 30.
    assert pose_metrics(pred, gt)["auc_30"] == pytest.approx(10 / 30)


def test_zero_baseline_pairs_have_no_direction() -> None:
    # Frame 1 turns in place (same centre): t_01 = 0; RTE undefined, AUC uses its RRE (5.5 deg).
    gt = _enc(([0, 0, 0], IDENTITY), ([0, 0, 0], _quat((0, 1, 0), 90)))
    pred = _enc(([0, 0, 0], IDENTITY), ([0.3, 0, 0], _quat((0, 1, 0), 95.5)))
    errs = relative_pose_errors(pred, gt)
    assert math.isnan(float(errs.rte_deg[0, 0]))
    m = pose_metrics(pred, gt)
    assert math.isnan(m["rte_deg"])
    assert m["rre_deg"] == pytest.approx(5.5, abs=1e-5)
    assert m["auc_30"] == pytest.approx(25 / 30)  # 5.5 < τ for τ = 6..30


def test_translation_error_in_metres() -> None:
    # One pair: t = (2, 0, 0), t^ = (2, 2, 0). Least squares σ = t^.t / |t^|² = 4 / 8 = 0.5,
    # aligned (1, 1, 0), error |(-1, 1, 0)| = sqrt(2) GT units = 3 sqrt(2) m at 3 m per unit.
    # Unaligned: |(0, 2, 0)| = 2 units = 6 m.
    gt = _enc(([0, 0, 0], IDENTITY), ([2, 0, 0], IDENTITY))
    pred = _enc(([0, 0, 0], IDENTITY), ([2, 2, 0], IDENTITY))
    m = pose_metrics(pred, gt, scale=torch.tensor([3.0]))
    assert m["rte_m"] == pytest.approx(3 * math.sqrt(2))
    assert m["rte_m_as_trained"] == pytest.approx(6.0)
    # A prediction at half the scale is exact after alignment.
    half = _enc(([0, 0, 0], IDENTITY), ([1, 0, 0], IDENTITY))
    assert pose_metrics(half, gt, scale=3.0)["rte_m"] == pytest.approx(0.0, abs=1e-12)
    assert pose_metrics(half, gt, scale=3.0)["rte_m_as_trained"] == pytest.approx(3.0)


def test_auc_on_hand_made_errors() -> None:
    # max errors 0.5, 5.5, 29.5, 40: below τ for 30, 25 (τ = 6..30), 1 (τ = 30) and 0 of the
    # 30 thresholds -> (30 + 25 + 1 + 0) / (4 * 30).
    rre = torch.tensor([0.5, 5.5, 29.5, 40.0])
    rte = torch.tensor([0.0, 1.0, 29.0, 3.0])
    assert pose_auc(rre, rte) == pytest.approx(56 / 120)
    # The larger of the two errors counts; a NaN RTE leaves the RRE.
    assert pose_auc(torch.tensor([0.5]), torch.tensor([10.2])) == pytest.approx(20 / 30)
    assert pose_auc(torch.tensor([0.5]), torch.tensor([math.nan])) == 1.0
    # T = 10: 4.5 < τ for τ = 5..10, 6 of 10.
    assert pose_auc(torch.tensor([4.5]), torch.tensor([0.0]), max_threshold=10) == pytest.approx(
        0.6
    )
    assert math.isnan(pose_auc(torch.zeros(0), torch.zeros(0)))


def test_depth_abs_rel_and_delta_by_hand() -> None:
    gt = torch.tensor([1.0, 2.0, 4.0, 7.0]).reshape(1, 1, 1, 4)
    pred = torch.tensor([1.1, 2.0, 3.0, 100.0]).reshape(1, 1, 1, 4, 1)
    valid = torch.tensor([True, True, True, False]).reshape(1, 1, 1, 4)
    # AbsRel = (0.1 / 1 + 0 + 1 / 4) / 3; δ: 1.1 and 1 pass, 4 / 3 fails -> 2 / 3.
    m = depth_metrics(pred, gt, valid)
    assert m["abs_rel"] == pytest.approx(0.35 / 3, rel=1e-6)
    assert m["delta_1.25"] == pytest.approx(2 / 3)


def test_depth_median_alignment() -> None:
    gt = torch.tensor([[[1.0, 2.0]], [[4.0, 8.0]]]).reshape(2, 1, 1, 2)
    pred = gt * torch.tensor([0.5, 3.0]).reshape(2, 1, 1, 1)  # per-sequence scale errors
    valid = torch.ones_like(gt, dtype=torch.bool)
    aligned = depth_metrics(pred, gt, valid, alignment="median")
    assert aligned["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert aligned["delta_1.25"] == 1.0
    raw = depth_metrics(pred, gt, valid)
    # AbsRel |0.5 - 1| = 0.5 on sequence 0 and |3 - 1| = 2 on sequence 1 -> mean 1.25; δ 0.
    assert raw["abs_rel"] == pytest.approx(1.25)
    assert raw["delta_1.25"] == 0.0
    assert math.isnan(depth_metrics(pred, gt, torch.zeros_like(valid))["abs_rel"])
    with pytest.raises(ValueError, match="alignment"):
        depth_metrics(pred, gt, valid, alignment="mean")  # type: ignore[arg-type]


def test_geometry_metrics_keys_on_perfect_outputs() -> None:
    gt = _enc(([0, 0, 0], IDENTITY), ([1, 0, 0], _quat((0, 1, 0), 15))).float()
    depth = torch.rand(1, 2, 3, 4) + 0.5
    targets = VGGTTargets(
        pose_enc=gt,
        extrinsics=torch.zeros(1, 2, 3, 4),
        intrinsics=torch.zeros(1, 2, 3, 3),
        depth=depth,
        world_points=torch.zeros(1, 2, 3, 4, 3),
        valid=torch.ones(1, 2, 3, 4, dtype=torch.bool),
        scale=torch.tensor([2.0]),
    )
    m = geometry_metrics({"pose_enc": gt.clone(), "depth": depth[..., None].clone()}, targets)
    assert set(m) == {
        "rre_deg",
        "rre_ref_deg",
        "rte_deg",
        "rte_m",
        "rte_m_as_trained",
        "auc_30",
        "fov_err_deg",
        "depth_abs_rel",
        "depth_delta_1.25",
        "depth_abs_rel_median",
        "depth_delta_1.25_median",
    }
    assert m["auc_30"] == 1.0 and m["depth_abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert m["depth_delta_1.25_median"] == 1.0
