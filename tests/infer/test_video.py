"""Reading videos for fih-infer: which frames, their colours and their original indices."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from habitat_fih.infer.settings import InferInputError
from habitat_fih.infer.video import read_video, select_frame_indices


def test_uniform_selection_covers_the_whole_video() -> None:
    picked = select_frame_indices(100, 5, "uniform")
    assert picked.tolist() == [0, 25, 50, 74, 99]  # round(linspace(0, 99, 5)), half to even
    assert select_frame_indices(100, 5, "first").tolist() == [0, 1, 2, 3, 4]
    assert select_frame_indices(4, 32, "uniform").tolist() == [0, 1, 2, 3]
    many = select_frame_indices(33, 32, "uniform")
    assert len(many) == 32 and many[0] == 0 and many[-1] == 32 and len(set(many)) == 32


def _coloured(i: int) -> np.ndarray:
    """Frame i as BGR: blue channel = 10 i, green 0, red 200 (a solid colour survives mp4v)."""
    img = np.zeros((48, 64, 3), np.uint8)
    img[..., 0] = 10 * i
    img[..., 2] = 200
    return img


def test_video_file_rgb_order_and_indices(tmp_path: Path) -> None:
    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 7, (64, 48))
    for i in range(20):
        writer.write(_coloured(i))
    writer.release()
    video = read_video(str(path), 5, "uniform", 32, 128)
    assert video.total_frames == 20 and video.name == "v" and video.size == (48, 64)
    assert video.indices.tolist() == [0, 5, 10, 14, 19]
    assert video.frames.shape == (5, 32, 32, 3) and video.display.shape == (5, 96, 128, 3)
    assert abs(video.fps - 7) < 1e-6
    for frame, i in zip(video.frames, video.indices, strict=True):
        r, g, b = frame.reshape(-1, 3).mean(0)
        assert abs(r - 200) < 6 and g < 6 and abs(b - 10 * i) < 6  # RGB, and the right frame


def test_image_folder_in_natural_order(tmp_path: Path) -> None:
    for i in range(12):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), _coloured(i))
    (tmp_path / "notes.txt").write_text("ignored")
    video = read_video(str(tmp_path), 32, "uniform", 32, 64)
    assert video.indices.tolist() == list(range(12))
    blues = [int(round(f[..., 2].mean())) for f in video.frames]
    assert blues == [10 * i for i in range(12)]  # f2 before f10
    globbed = read_video(str(tmp_path / "f1*.png"), 32, "uniform", 32, 64)
    assert [int(round(f[..., 2].mean())) for f in globbed.frames] == [10, 100, 110]


def test_frames_of_different_sizes(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((9, 8, 3), np.uint8))
    with pytest.raises(InferInputError, match="frames differ in size"):
        read_video(str(tmp_path), 32, "uniform", 32, 64)
