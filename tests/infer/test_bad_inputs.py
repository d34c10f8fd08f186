"""Each bad input to fih-infer: ONE line on stderr naming the value and what was expected,
exit status 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from habitat_fih.datasets.sidecar import sidecar_path
from habitat_fih.infer.cli import main


def _write_video(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (32, 32))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write((rng.random((32, 32, 3)) * 255).astype(np.uint8))
    writer.release()
    return path


def _check(capsys, tmp_path: Path, argv: list[str], *needles: str) -> None:
    out = tmp_path / "out"
    code = main([*argv, "--instruction", "go", "--output-dir", str(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("fih-infer: "), lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir())  # nothing half-written


def test_missing_file(tmp_path: Path, capsys) -> None:
    _check(capsys, tmp_path, ["--video", str(tmp_path / "none.mp4")], "none.mp4", "no such file")


def test_empty_file(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    _check(capsys, tmp_path, ["--video", str(empty)], "empty.mp4", "empty (0 bytes)")


def test_corrupt_file(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"RIFF" + bytes(range(256)) * 4)
    _check(capsys, tmp_path, ["--video", str(bad)], "bad.avi")


def test_not_a_video(tmp_path: Path, capsys) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    _check(capsys, tmp_path, ["--video", str(text)], "notes.txt", "expected a video file")


def test_one_frame_video(tmp_path: Path, capsys) -> None:
    one = _write_video(tmp_path / "one.mp4", 1)
    _check(capsys, tmp_path, ["--video", str(one)], "one.mp4", "has 1 frame", "at least 2")


def test_folder_without_images(tmp_path: Path, capsys) -> None:
    (tmp_path / "nothing").mkdir()
    _check(capsys, tmp_path, ["--video", str(tmp_path / "nothing")], "no images")


def test_more_keyframes_than_frames(tmp_path: Path, capsys) -> None:
    video = _write_video(tmp_path / "five.mp4", 5)
    _check(
        capsys,
        tmp_path,
        ["--video", str(video), "--num-keyframes", "5"],
        "--num-keyframes 5",
        "5 frames",
        "at most 4 keyframes",
    )


def test_unknown_algorithm(tmp_path: Path, capsys) -> None:
    video = _write_video(tmp_path / "v.mp4", 5)
    _check(capsys, tmp_path, ["--video", str(video), "--algorithm", "best"], "--algorithm", "best")


def test_bad_numbers(tmp_path: Path, capsys) -> None:
    video = _write_video(tmp_path / "v.mp4", 5)
    _check(capsys, tmp_path, ["--video", str(video), "--max-frames", "1"], "--max-frames 1", ">= 2")
    _check(capsys, tmp_path, ["--video", str(video), "--num-keyframes", "0"], "--num-keyframes 0")


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        # geometry_prior: input needs the cameras from a sidecar (--geometry-from)
        ("{geometry_prior: input}", ("geometry_prior='input'", "--geometry-from")),
        # a video has no depth sensor nor previous actions: refused, not fed made-up values
        (
            "{action: {inputs: [depth]}}",
            ("action head reads ['depth']", "FIHModelConfig.action.inputs"),
        ),
    ],
)
def test_model_needing_inputs_a_video_lacks(
    tmp_path: Path, capsys, overrides: str, needles: tuple[str, ...]
) -> None:
    config = tmp_path / "model.yaml"
    config.write_text(f"model:\n  preset: tiny\n  overrides: {overrides}\n")
    video = _write_video(tmp_path / "v.mp4", 5)
    _check(capsys, tmp_path, ["--video", str(video), "--config", str(config)], *needles)


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("outptu: {output_dir: x}\n", ("unknown keys ['outptu']",)),
        ("video: {max_frame: 3}\n", ("video: unknown keys ['max_frame']",)),
        ("model: [1, 2]\n", ("model must be a mapping",)),
        ("model: {preset: huge}\n", ("model.preset", "'huge'")),
        ("sampling: {algorithm: best}\n", ("--algorithm 'best'",)),
        ("video: {max_frames: 32\n", ("not valid yaml",)),
        ("- 1\n- 2\n", ("expected a yaml mapping",)),
    ],
)
def test_bad_config_file(tmp_path: Path, capsys, text: str, needles: tuple[str, ...]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    video = _write_video(tmp_path / "v.mp4", 5)
    _check(capsys, tmp_path, ["--video", str(video), "--config", str(config)], *needles)


def test_missing_config_and_checkpoint(tmp_path: Path, capsys) -> None:
    video = _write_video(tmp_path / "v.mp4", 5)
    _check(
        capsys, tmp_path, ["--video", str(video), "--config", str(tmp_path / "c.yaml")], "c.yaml"
    )
    _check(
        capsys, tmp_path, ["--video", str(video), "--checkpoint", str(tmp_path / "c.pth")], "c.pth"
    )


def test_corrupt_checkpoint(tmp_path: Path, capsys) -> None:
    video = _write_video(tmp_path / "v.mp4", 5)
    ckpt = tmp_path / "ckpt.0.pth"
    ckpt.write_bytes(b"not a torch file")
    _check(
        capsys,
        tmp_path,
        ["--video", str(video), "--checkpoint", str(ckpt)],
        "ckpt.0.pth",
        "corrupt",
    )


def test_sidecar_of_another_video(clip: Path, tmp_path: Path, capsys) -> None:
    video = _write_video(tmp_path / "v.mp4", 5)
    _check(
        capsys,
        tmp_path,
        [
            "--video",
            str(video),
            "--heatmaps",
            "geometry",
            "--geometry-from",
            str(sidecar_path(clip)),
        ],
        "describes 12 frames",
        "the video has 5",
    )


def test_unreadable_sidecar(tmp_path: Path, capsys) -> None:
    video = _write_video(tmp_path / "v.mp4", 5)
    bad = tmp_path / "v.geometry.npz"
    bad.write_bytes(b"garbage")
    _check(
        capsys,
        tmp_path,
        ["--video", str(video), "--heatmaps", "geometry", "--geometry-from", str(bad)],
        "v.geometry.npz",
        "not a readable",
    )
