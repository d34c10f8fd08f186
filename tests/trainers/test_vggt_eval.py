"""`habitat_fih.trainers.vggt_eval`: VGGT's geometry scored against recorded simulator episodes.

The reference for the targets is independent code: fih-infer's `sidecar_pose_encodings` (the
cameras a ``geometry_prior: input`` model reads) and the sidecar's own metric depth. Fed back as
predictions they must score as perfect (relative pose errors are blind to the world frame and,
after the scale fit / median scaling, to the metric scale the targets normalise away).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from habitat_fih.datasets.record import record
from habitat_fih.datasets.sidecar import read_sidecar, sidecar_path
from habitat_fih.infer.geometry_maps import sidecar_pose_encodings
from habitat_fih.models.vggt.metrics import geometry_metrics
from habitat_fih.models.vggt.targets import stack_targets
from habitat_fih.trainers.vggt_eval import episode_ids, evaluate_geometry, main, sequence_targets

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def chdir_repo():
    cwd = os.getcwd()
    os.chdir(REPO)  # the configs' data paths are relative to the repo root
    yield
    os.chdir(cwd)


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory, chdir_repo):
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    record(episode=episode_ids("val_seen")[0], out=str(out), split="val_seen", max_steps=14)
    return read_sidecar(sidecar_path(out))


def test_truth_fed_back_scores_perfect(sidecar) -> None:
    size = 32
    indices = np.array([0, 3, 6, 9, 12, 14])
    targets = stack_targets([sequence_targets(sidecar, indices, size)])
    pose_enc = sidecar_pose_encodings(sidecar, indices)[None]  # metres, world = first frame
    depth = np.stack(
        [
            cv2.resize(sidecar.depth[i], (size, size), interpolation=cv2.INTER_NEAREST)
            for i in indices
        ]
    )
    metrics = geometry_metrics(
        {"pose_enc": pose_enc, "depth": torch.from_numpy(depth)[None, ..., None]}, targets
    )
    assert metrics["rre_deg"] == pytest.approx(0.0, abs=1e-3)
    assert metrics["rte_deg"] == pytest.approx(0.0, abs=1e-2)
    assert metrics["rte_m"] == pytest.approx(0.0, abs=1e-4)
    assert metrics["auc_30"] == pytest.approx(1.0)
    assert metrics["depth_abs_rel_median"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["depth_delta_1.25_median"] == pytest.approx(1.0)
    # unaligned, the metric depth is the targets' normalised depth times the scale
    scale = float(targets.scale[0])
    assert metrics["depth_abs_rel"] == pytest.approx(abs(scale - 1.0), rel=1e-4)
    # the path moved: the scale (mean distance of the points to the first camera) is metres
    assert 0.5 < scale < 20.0


def test_program_writes_stats_for_each_episode(tmp_path, chdir_repo) -> None:
    out = tmp_path / "stats.json"
    assert main(["--split", "val_seen", "--episodes", "2", "--frames", "4", "--out", str(out)]) == 0
    stats = json.loads(out.read_text())
    assert stats["num_episodes"] == 2 and stats["vggt"] == "random-init tiny"
    assert [row["episode_id"] for row in stats["episodes"]] == episode_ids("val_seen")[:2]
    for key in ("rre_deg", "rte_deg", "auc_30", "depth_abs_rel", "depth_delta_1.25_median"):
        assert np.isfinite(stats["means"][key]) and stats["means"][f"{key}.episodes"] == 2
        rows = [row[key] for row in stats["episodes"]]
        assert stats["means"][key] == pytest.approx(sum(rows) / 2)
    assert all(len(row["frames"]) == 4 and row["frames"][0] == 0 for row in stats["episodes"])


def test_reference_current_reads_the_last_frame_first(tmp_path, chdir_repo) -> None:
    """``vggt_reference: current`` checkpoints are fed [last frame, then the others oldest
    first], and the targets follow (the true cameras fed back in that order score perfect)."""
    from habitat_fih.infer.video import read_video

    seen: list[torch.Tensor] = []
    episode = episode_ids("val_seen")[0]
    clip = tmp_path / f"val_seen_{episode}.mp4"

    def truth(images: torch.Tensor) -> dict[str, torch.Tensor]:
        seen.append(images.clone())
        video = read_video(str(clip), 4, "uniform", 32, 32)
        order = [3, 0, 1, 2]
        sidecar = read_sidecar(sidecar_path(clip))
        return {"pose_enc": sidecar_pose_encodings(sidecar, video.indices[order])[None]}

    stats = evaluate_geometry(truth, "val_seen", 1, 4, 32, tmp_path, reference="current")
    video = read_video(str(clip), 4, "uniform", 32, 32)
    expected = torch.from_numpy(video.frames[[3, 0, 1, 2]]).permute(0, 3, 1, 2).float() / 255.0
    torch.testing.assert_close(seen[0][0], expected)
    row = stats["episodes"][0]
    assert stats["reference"] == "current"
    assert row["frames"] == video.indices[[3, 0, 1, 2]].tolist()
    assert row["rre_deg"] == pytest.approx(0.0, abs=1e-3)
    assert row["rre_ref_deg"] == pytest.approx(0.0, abs=1e-3)
    with pytest.raises(ValueError, match="reference must be one of"):
        evaluate_geometry(truth, "val_seen", 1, 4, 32, tmp_path, reference="last")


def test_overlapping_rre_scores_only_frames_that_see_the_reference() -> None:
    """Frame 1 turned 180 degrees (sees none of the reference's wall), frame 2 the reference
    camera itself. Predicted: frame 1 off by 90 degrees, frame 2 by 10 degrees of yaw; only
    frame 2 counts: 10 degrees, one frame (rre_ref_deg, over both, is 50)."""
    from habitat_fih.models.vggt.pose_encoding import extri_intri_to_pose_encoding
    from habitat_fih.models.vggt.targets import vggt_targets
    from habitat_fih.trainers.vggt_eval import overlapping_rre

    def pose(yaw: float) -> np.ndarray:
        c, s = np.cos(yaw), np.sin(yaw)
        out = np.eye(4)
        out[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
        return out

    targets = stack_targets(
        [vggt_targets(np.stack([pose(0), pose(np.pi), pose(0)]), 90.0, np.full((3, 8, 8), 2.0))]
    )
    extr = targets.extrinsics.clone().double()
    for frame, yaw in ((1, np.radians(90)), (2, np.radians(10))):
        c, s = np.cos(yaw), np.sin(yaw)
        turn = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=torch.float64)
        extr[0, frame, :, :3] = turn @ extr[0, frame, :, :3]
    pred = extri_intri_to_pose_encoding(extr, targets.intrinsics.double(), (8, 8)).float()
    got = overlapping_rre(pred, targets)
    assert got["overlap_frames"] == 1
    assert got["rre_ref_overlap_deg"] == pytest.approx(10.0, abs=1e-3)
    assert geometry_metrics({"pose_enc": pred}, targets)["rre_ref_deg"] == pytest.approx(
        50.0, abs=1e-3
    )
    alone = overlapping_rre(
        pred[:, :2],
        stack_targets(
            [vggt_targets(np.stack([pose(0), pose(np.pi)]), 90.0, np.full((2, 8, 8), 2.0))]
        ),
    )
    assert alone == {"rre_ref_overlap_deg": None, "overlap_frames": 0}
