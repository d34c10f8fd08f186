"""Geometry maps from VGGT-format predictions: fed the TRUE geometry of a recorded clip in VGGT's
conventions (pose encoding of OpenCV extrinsics relative to the first frame, depth, FoV), they
must give the maps of the known cameras (the sidecar path, i.e. the FIH task's targets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from habitat_fih.datasets.sidecar import read_sidecar, sidecar_path
from habitat_fih.geometry.camera import depth_to_world_points
from habitat_fih.infer.geometry_maps import from_sidecar, from_vggt, sidecar_pose_encodings
from habitat_fih.infer.settings import GeometrySettings


def test_vggt_conventions_reproduce_the_known_geometry(clip: Path) -> None:
    sidecar = read_sidecar(sidecar_path(clip))
    n = sidecar.num_frames
    indices = np.arange(n)
    truth = from_sidecar(sidecar, indices, n, "clip")
    # what a perfect VGGT would output for these frames (world = frame 0's camera)
    enc = sidecar_pose_encodings(sidecar, indices)  # [N, 9]
    depth = torch.from_numpy(truth.depth)[None, ..., None]  # [1, N, 64, 64, 1]
    points = depth_to_world_points(truth.depth, truth.poses, truth.hfov)  # any frame works
    out = {
        "pose_enc": enc[None],
        "depth": depth,
        "world_points": torch.from_numpy(points).float()[None],
        "world_points_conf": torch.from_numpy(truth.world_points_conf)[None],
    }
    settings = GeometrySettings(
        working_resolution=sidecar.working_resolution,
        abs_tol=sidecar.abs_tol,
        rel_tol=sidecar.rel_tol,
        min_overlap=sidecar.min_overlap,
    )
    predicted = from_vggt(out, (64, 64), settings)
    assert abs(predicted.hfov - sidecar.hfov) < 1e-4
    # relative poses agree (the world frames differ: VGGT's is the first camera's)
    rel_true = np.linalg.inv(truth.poses[0]) @ truth.poses
    rel_pred = np.linalg.inv(predicted.poses[0]) @ predicted.poses
    np.testing.assert_allclose(rel_pred, rel_true, atol=1e-5)
    np.testing.assert_array_equal(predicted.depth, truth.depth)
    inter = union = 0.0
    for current in range(1, n):
        keys = list(range(current))
        a, _, _ = truth.maps(current, keys, (16, 16))
        b, _, _ = predicted.maps(current, keys, (16, 16))
        inter += np.minimum(a, b).sum()
        union += np.maximum(a, b).sum()
        assert np.abs(a - b).mean() < 1e-3
    assert inter / union >= 0.99
