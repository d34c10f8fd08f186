"""fih-infer end to end on CPU with the tiny model, on a clip recorded from a bundled episode."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from habitat_fih.datasets.sidecar import read_sidecar, sidecar_path
from habitat_fih.infer.cli import main

REPO = Path(__file__).resolve().parents[2]
INSTRUCTION = "walk down the hallway and stop at the door"
OUTPUTS = {"keyframes.png", "heatmaps.png", "heatmaps.npz", "metrics.json"}


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _frames(video: Path) -> int:
    cap = cv2.VideoCapture(str(video))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def test_random_tiny_model_writes_every_output(clip: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code, stdout, err = _run(
        capsys, "--video", str(clip), "--instruction", INSTRUCTION, "--output-dir", str(out)
    )
    assert code == 0, err
    assert "RANDOM-INIT tiny model" in err  # said, not silent
    assert len([line for line in err.splitlines() if "RANDOM-INIT" in line]) == 1
    folder = out / "clip"
    assert {p.name for p in folder.iterdir()} == OUTPUTS
    metrics = json.loads((folder / "metrics.json").read_text())
    n = read_sidecar(sidecar_path(clip)).num_frames
    assert metrics["frames_in_video"] == n and metrics["frame_indices"] == list(range(n))
    keys = metrics["keyframe_indices"]
    assert len(keys) == 4 and keys == sorted(keys) and max(keys) < n - 1  # tiny model: K = 4
    assert metrics["current_index"] == n - 1
    assert set(metrics["stages"]) >= {"read", "vggt", "sampling", "dinov3", "llm", "heads"}
    assert metrics["memory"]["cpu_peak_rss_mib"] > 0
    assert metrics["model_source"].startswith("random init")
    with np.load(folder / "heatmaps.npz") as data:
        assert sorted(k for k in data.files if k.startswith("map_")) == sorted(
            f"map_{k}" for k in keys
        )
        assert data["keyframe_indices"].tolist() == keys
        for k in keys:
            m = data[f"map_{k}"]
            assert m.shape == (16, 16) and m.min() >= 0 and m.max() <= 1
    for name in ("keyframes.png", "heatmaps.png"):
        assert cv2.imread(str(folder / name)) is not None
    # no temporary folder is left behind
    assert [p.name for p in out.iterdir()] == ["clip"]


def test_long_video_is_covered_uniformly(clip: Path, tmp_path: Path, capsys) -> None:
    code, _, err = _run(
        capsys, "--video", str(clip), "--instruction", INSTRUCTION, "--output-dir",
        str(tmp_path), "--max-frames", "5", "--num-keyframes", "2", "--algorithm", "fast",
    )
    assert code == 0, err
    metrics = json.loads((tmp_path / "clip" / "metrics.json").read_text())
    n = read_sidecar(sidecar_path(clip)).num_frames  # 12
    expected = np.unique(np.round(np.linspace(0, n - 1, 5)).astype(int)).tolist()
    assert metrics["frame_indices"] == expected == [0, 3, 6, 8, 11]
    # fast = linspace over the 4 history frames [0, 3, 6, 8] -> positions 0 and 3
    assert metrics["keyframe_indices"] == [0, 8]


def test_geometry_from_sidecar_reproduces_the_task_targets(clip: Path, tmp_path: Path, capsys) -> None:
    """Every chosen frame as the current view: the maps of its keyframes equal the FIH task's
    covisibility targets at that step (habitat.Env with FIH-VLN-v0 along the same actions)."""
    sidecar = read_sidecar(sidecar_path(clip))
    code, _, err = _run(
        capsys, "--video", str(clip), "--instruction", INSTRUCTION, "--output-dir",
        str(tmp_path), "--heatmaps", "geometry", "--geometry-from", str(sidecar_path(clip)),
        "--current-frame", "all", "--num-keyframes", "6",
    )
    assert code == 0, err
    folder = tmp_path / "clip"
    assert {p.name for p in folder.iterdir()} == OUTPUTS | {"heatmaps.mp4"}
    assert _frames(folder / "heatmaps.mp4") == sidecar.num_frames
    with np.load(folder / "heatmaps.npz") as data:
        currents = data["all_current_indices"].tolist()
        keys, maps = data["all_keyframe_indices"], data["all_maps"]
        last = {k: data[f"map_{k}"] for k in data["keyframe_indices"].tolist()}
    assert currents == list(range(sidecar.num_frames))
    targets = _task_targets(sidecar)
    inter = union = 0.0
    compared = 0
    for t, step in enumerate(currents):
        memory = targets[step]
        for j, k in enumerate(keys[t].tolist()):
            if k < 0:
                continue
            assert k < step  # keyframes come from before the current view
            target = memory[k]
            inter += np.minimum(maps[t, j], target).sum()
            union += np.maximum(maps[t, j], target).sum()
            np.testing.assert_allclose(maps[t, j], target, atol=1e-6)
            compared += 1
    assert compared >= 40
    assert inter / union >= 0.99
    for k, m in last.items():  # the last view's maps are the all_maps row of the last frame
        np.testing.assert_array_equal(m, maps[-1, keys[-1].tolist().index(k)])


def _task_targets(sidecar) -> list[dict[int, np.ndarray]]:
    """Per step: {memory step: covisibility target [16, 16]} from the FIH task itself."""
    import os

    from habitat import Env

    from habitat_fih.config import get_config

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        cfg = get_config("fih/synthetic_tiny", [f"habitat.dataset.split={sidecar.split}"])
        with Env(config=cfg) as env:
            env.current_episode = next(
                e for e in env.episodes if str(e.episode_id) == sidecar.episode_id
            )
            obs = env.reset()
            out = []
            for t in range(sidecar.num_frames):
                heat = obs["frame_heatmaps"]
                out.append(
                    {
                        int(s): heat["covisibility"][j]
                        for j, s in enumerate(heat["frame_indices"])
                        if s >= 0
                    }
                )
                pose = env.task.current_frame(obs).pose
                np.testing.assert_allclose(pose, sidecar.poses[t], atol=1e-9)
                if t + 1 < sidecar.num_frames:
                    obs = env.step(int(sidecar.actions[t]))
    finally:
        os.chdir(cwd)
    return out


def test_batch_reports_a_corrupt_video_and_writes_the_others(
    clip: Path, tmp_path: Path, capsys
) -> None:
    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    second = tmp_path / "again.mp4"
    shutil.copy(clip, second)
    out = tmp_path / "out"
    code, stdout, err = _run(
        capsys, "--batch", str(clip), str(corrupt), str(second), "--instruction", INSTRUCTION,
        "--output-dir", str(out), "--algorithm", "quality",
    )
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["again", "batch_summary.json", "clip"]
    summary = json.loads((out / "batch_summary.json").read_text())
    status = {Path(r["video"]).name: r["status"] for r in summary["videos"]}
    assert status == {"clip.mp4": "ok", "broken.mp4": "failed", "again.mp4": "ok"}
    failed = next(r for r in summary["videos"] if r["status"] == "failed")
    assert "broken.mp4" in failed["error"]
    assert "broken.mp4" in stdout and "failed" in stdout


def test_benchmark_prints_a_row_per_algorithm(clip: Path, tmp_path: Path, capsys) -> None:
    code, stdout, err = _run(
        capsys, "--benchmark", "--video", str(clip), "--instruction", INSTRUCTION,
        "--output-dir", str(tmp_path),
    )
    assert code == 0, err
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("algorithm"))
    rows = [line.split("|")[0].strip() for line in lines[header + 2 : header + 5]]
    assert rows == ["fast", "quality", "enhanced"]
    for col in ("vggt s", "sampling s", "coverage", "diversity", "novelty", "J(fast)"):
        assert col in lines[header]
    saved = json.loads((tmp_path / "clip.benchmark.json").read_text())
    assert [r["algorithm"] for r in saved["rows"]] == ["fast", "quality", "enhanced"]
    for row in saved["rows"]:
        assert row["agreement"][row["algorithm"]] == 1.0  # with itself


def test_trainer_checkpoint_loads(clip: Path, trained_checkpoint: Path, tmp_path: Path, capsys) -> None:
    # fih/synthetic_tiny trains with geometry_prior: input: the model needs known cameras
    code, _, err = _run(
        capsys, "--video", str(clip), "--instruction", INSTRUCTION, "--output-dir",
        str(tmp_path / "a"), "--checkpoint", str(trained_checkpoint),
    )
    assert code == 2
    assert "geometry_prior='input'" in err and "--geometry-from" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists()
    code, _, err = _run(
        capsys, "--video", str(clip), "--instruction", INSTRUCTION, "--output-dir",
        str(tmp_path / "b"), "--checkpoint", str(trained_checkpoint),
        "--geometry-from", str(sidecar_path(clip)),
    )
    assert code == 0, err
    assert "RANDOM-INIT" not in err
    metrics = json.loads((tmp_path / "b" / "clip" / "metrics.json").read_text())
    assert metrics["model_source"].startswith(f"checkpoint; {trained_checkpoint}")
    assert abs(sum(metrics["action_probs"].values()) - 1.0) < 1e-5


def test_module_entry_point(tmp_path: Path) -> None:
    """`python -m habitat_fih.infer` is the program; a bad input is one line, exit 2."""
    proc = subprocess.run(
        [sys.executable, "-m", "habitat_fih.infer", "--video", str(tmp_path / "nope.mp4"),
         "--instruction", "x", "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("fih-infer")]
    assert lines == [f"fih-infer: --video {str(tmp_path / 'nope.mp4')!r}: no such file, folder or image pattern"]
    assert not (tmp_path / "out").exists()


def test_console_script_is_installed() -> None:
    """`pip install -e .` installs the `fih-infer` console script next to the interpreter."""
    script = Path(sys.executable).parent / "fih-infer"
    assert script.is_file(), f"{script} missing: reinstall the package (make test does)"
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0
    for flag in ("--video", "--batch", "--benchmark", "--geometry-from", "--current-frame"):
        assert flag in proc.stdout


def test_config_file_and_model_maps_for_every_frame(clip: Path, tmp_path: Path, capsys) -> None:
    """Settings come from --config (flags win); with current_frame all the model maps every
    chosen frame, each from the keyframes before it."""
    out = tmp_path / "from_config"
    config = tmp_path / "infer.yaml"
    config.write_text(
        "model: {preset: tiny}\n"
        "current_frame: all\n"
        "video: {max_frames: 6, selection: first}\n"
        "sampling: {algorithm: quality, num_keyframes: 3}\n"
        f"output: {{output_dir: {out}, fps: 2}}\n"
    )
    code, _, err = _run(
        capsys, "--video", str(clip), "--instruction", INSTRUCTION, "--config", str(config),
        "--num-keyframes", "2",
    )
    assert code == 0, err
    folder = out / "clip"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["frame_indices"] == [0, 1, 2, 3, 4, 5]  # selection: first
    assert metrics["algorithm"] == "quality" and len(metrics["keyframe_indices"]) == 2  # flag won
    cap = cv2.VideoCapture(str(folder / "heatmaps.mp4"))
    assert abs(cap.get(cv2.CAP_PROP_FPS) - 2) < 1e-6
    cap.release()
    assert _frames(folder / "heatmaps.mp4") == 6
    with np.load(folder / "heatmaps.npz") as data:
        keys = data["all_keyframe_indices"]
        assert data["all_current_indices"].tolist() == [0, 1, 2, 3, 4, 5]
        # frame t sees min(t, 2) keyframes, all before it
        for t, row in enumerate(keys.tolist()):
            real = [k for k in row if k >= 0]
            assert len(real) == min(t, 2) and all(k < t for k in real)
        assert np.all(data["all_maps"][0] == 0)
