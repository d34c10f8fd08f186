"""A tiny random-init VGGT trained with `vggt_loss` on `vggt_targets` of 8 fixed simulator frame
sets learns their cameras: the relative rotation error (`pose_metrics`, against the exact
simulator poses) falls from ~21 degrees to below 2 (issue 17's overfit check; ~3 min on 2 cores,
camera head only so that the DPT heads do not dominate the time).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from habitat_fih.datasets.record import record
from habitat_fih.datasets.sidecar import read_sidecar, sidecar_path
from habitat_fih.infer.video import read_video
from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.vggt.losses import VGGTLossConfig, vggt_loss
from habitat_fih.models.vggt.metrics import pose_metrics
from habitat_fih.models.vggt.model import VGGT
from habitat_fih.models.vggt.targets import stack_targets
from habitat_fih.trainers.vggt_eval import episode_ids, sequence_targets

REPO = Path(__file__).resolve().parents[3]
SIZE, SETS, FRAMES, STEPS = 32, 8, 4, 1000


def test_tiny_vggt_overfits_eight_frame_sets(tmp_path) -> None:
    cwd = os.getcwd()
    os.chdir(REPO)  # the configs' data paths are relative to the repo root
    try:
        clip = tmp_path / "clip.mp4"
        record(episode=episode_ids("val_seen")[0], out=str(clip), split="val_seen", max_steps=40)
    finally:
        os.chdir(cwd)
    sidecar = read_sidecar(sidecar_path(clip))
    video = read_video(str(clip), 1000, "uniform", SIZE, SIZE)
    assert len(video.indices) >= SETS * FRAMES  # 8 disjoint sets of 4 consecutive frames
    sets = [np.arange(k * FRAMES, (k + 1) * FRAMES) for k in range(SETS)]
    images = torch.stack(
        [torch.from_numpy(video.frames[s]).permute(0, 3, 1, 2).float() / 255.0 for s in sets]
    )  # [8, 4, 3, R, R]
    targets = stack_targets([sequence_targets(sidecar, video.indices[s], SIZE) for s in sets])
    torch.manual_seed(0)
    vggt = VGGT(FIHModelConfig.tiny().vggt)
    config = VGGTLossConfig(depth_weight=0.0, point_weight=0.0)
    optimizer = torch.optim.AdamW(vggt.parameters(), lr=3e-3)

    def rotation_error() -> float:
        with torch.no_grad():
            pose = vggt.eval()(images, heads=("camera",))["pose_enc"]
        return pose_metrics(pose, targets.pose_enc, targets.scale)["rre_deg"]

    before = rotation_error()
    vggt.train()
    for _ in range(STEPS):
        loss, _ = vggt_loss(vggt(images, heads=("camera",)), targets, config)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = rotation_error()
    assert before > 10.0  # the sets turn: a random camera head is far off
    assert after < 2.0, f"relative rotation error {after:.2f} deg after {STEPS} updates"
