"""The geometry sidecar: round trip and the checks of read_sidecar."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from habitat_fih.datasets.sidecar import (
    Sidecar,
    SidecarError,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)


def _sidecar(n: int = 3) -> Sidecar:
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, 0, 3] = np.arange(n) * 0.25
    return Sidecar(
        poses=poses,
        intrinsics=np.tile(np.array([[32.0, 0, 32], [0, 32, 32], [0, 0, 1]]), (n, 1, 1)),
        hfov=90.0,
        depth=np.full((n, 64, 64), 2.0, np.float32),
        max_depth=10.0,
        frame_indices=np.arange(n),
        actions=np.array([1] * (n - 1) + [-1]),
        working_resolution=64,
        abs_tol=0.05,
        rel_tol=0.02,
        min_overlap=0.01,
        episode_id="7",
        instruction="go",
    )


def test_round_trip(tmp_path: Path) -> None:
    path = write_sidecar(tmp_path / "c.geometry.npz", _sidecar())
    back = read_sidecar(path)
    assert back.num_frames == 3 and back.episode_id == "7" and back.instruction == "go"
    np.testing.assert_array_equal(back.poses, _sidecar().poses)
    assert sidecar_path("a/clip.mp4") == Path("a/clip.geometry.npz")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"hfov": 180.0}, "hfov"),
        ({"frame_indices": np.array([0, 2, 1])}, "frame_indices must be 0..N-1"),
        ({"depth": np.full((3, 8, 8), -1.0, np.float32)}, "depth must be finite and >= 0"),
        ({"min_overlap": 1.5}, "min_overlap"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, change: dict, needle: str) -> None:
    with pytest.raises(SidecarError, match=needle):
        write_sidecar(tmp_path / "c.geometry.npz", replace(_sidecar(), **change))
    assert not any(tmp_path.iterdir())


def test_non_rigid_pose(tmp_path: Path) -> None:
    bad = _sidecar()
    bad.poses[1, :3, :3] *= 2.0
    with pytest.raises(SidecarError, match="not rigid"):
        write_sidecar(tmp_path / "c.geometry.npz", bad)


def test_unreadable_and_versionless(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"junk")
    with pytest.raises(SidecarError, match="not a readable"):
        read_sidecar(junk)
    old = tmp_path / "old.npz"
    np.savez(old, poses=np.eye(4)[None])
    with pytest.raises(SidecarError, match="format_version None"):
        read_sidecar(old)
    with pytest.raises(SidecarError, match="no such file"):
        read_sidecar(tmp_path / "none.npz")
