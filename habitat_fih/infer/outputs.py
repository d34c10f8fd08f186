"""What fih-infer writes for one video, under ``output_dir/<video name>/``:

- ``keyframes.png``: the K keyframes and the current view, each labelled with its ORIGINAL
  frame index in the video;
- ``heatmaps.png``: each keyframe's map overlaid on the current view (jet colour map, 50 %
  blend, map cells drawn as blocks — the map's own resolution, not smoothed), labelled with the
  keyframe's frame index, with a 0..1 colour bar and the instruction;
- ``heatmaps.mp4`` (``current_frame: all``): for every chosen frame as the current view, the maps
  of the keyframes before it, one tile per keyframe;
- ``heatmaps.npz``: ``map_<i>`` [h, w] float32 for each keyframe ``i`` (original index) on the
  last frame, ``keyframe_indices`` [K], ``current_index``, ``frame_indices`` (the chosen frames),
  ``score_coverage`` / ``score_diversity`` / ``score_novelty``; with ``current_frame: all`` also
  ``all_current_indices`` [N], ``all_keyframe_indices`` [N, K] (-1 = none) and ``all_maps``
  [N, K, h, w];
- ``metrics.json``: the video, the chosen frames, the keyframes, per-stage times, memory, the
  sampler scores, the model's source, ``map_kind`` (covisibility, or for a model trained on
  camera-position targets first, camera_position: a model's maps are its FIRST target kind)
  and, for model maps, the action probabilities.

Nothing is half-written: the files go to a hidden temporary folder next to the target, which is
then renamed into place (an older result of the same name is replaced only after the new one is
complete).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from habitat_fih.infer.engine import FrameMaps, InferResult

__all__ = ["publish", "write_result"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _label(img: np.ndarray, text: str) -> np.ndarray:
    """`img` with a black bar on top holding `text` (white)."""
    h, w = img.shape[:2]
    scale = max(0.35, min(0.6, w / 400))
    bar = np.zeros((int(22 * scale / 0.5), w, 3), np.uint8)
    cv2.putText(bar, text, (4, bar.shape[0] - 6), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([bar, img], axis=0)


def _heat(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    m = cv2.resize(np.clip(m, 0, 1).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    return cv2.applyColorMap((m * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]


def overlay(rgb: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The map `m` [h, w] in [0, 1] blended over `rgb` [H, W, 3] (50 %)."""
    return (0.5 * rgb + 0.5 * _heat(m, rgb.shape[:2])).astype(np.uint8)


def colour_bar(height: int, width: int = 44) -> np.ndarray:
    """A vertical 0..1 jet colour bar with ticks (1 on top)."""
    strip = np.linspace(1, 0, height)[:, None].repeat(14, axis=1)
    bar = np.full((height, width, 3), 255, np.uint8)
    bar[:, :14] = cv2.applyColorMap((strip * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    for value in (0.0, 0.5, 1.0):
        y = int(round((1 - value) * (height - 1)))
        y_text = min(max(y + 4, 10), height - 2)
        cv2.putText(bar, f"{value:g}", (16, y_text), _FONT, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def _grid(tiles: list[np.ndarray], columns: int) -> np.ndarray:
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    padded = [np.pad(t, ((0, h - t.shape[0]), (0, w - t.shape[1]), (0, 0))) for t in tiles]
    while len(padded) % columns:
        padded.append(np.zeros((h, w, 3), np.uint8))
    rows = [np.concatenate(padded[i : i + columns], axis=1) for i in range(0, len(padded), columns)]
    return np.concatenate(rows, axis=0)


def _display(result: InferResult, index: int) -> np.ndarray:
    pos = {int(i): p for p, i in enumerate(result.video.indices)}
    return result.video.display[pos[index]]


def keyframes_image(result: InferResult) -> np.ndarray:
    last = result.last
    tiles = [_label(_display(result, i), f"frame {i}") for i in last.keyframes]
    tiles.append(_label(_display(result, last.current), f"current {last.current}"))
    return _grid(tiles, min(len(tiles), 5))


def _map_tiles(result: InferResult, maps: FrameMaps) -> list[np.ndarray]:
    current = _display(result, maps.current)
    tiles = []
    for j, (index, m) in enumerate(zip(maps.keyframes, maps.maps, strict=True)):
        text = f"frame {index}"
        if maps.valid is not None and not maps.valid[j]:
            text += " (no overlap)"
        tiles.append(_label(overlay(current, m), text))
    return tiles


def heatmaps_image(result: InferResult) -> np.ndarray:
    tiles = _map_tiles(result, result.last)
    grid = _grid(tiles, min(len(tiles), 4))
    grid = np.concatenate([grid, colour_bar(grid.shape[0])], axis=1)
    title = (
        f"keyframes on frame {result.last.current} ({result.heatmap_source}, "
        f"{result.algorithm}): {result.instruction}"
    )
    if len(title) > 110:
        title = title[:107] + "..."
    return _label(grid, title)


def _video_frames(result: InferResult, k: int) -> list[np.ndarray]:
    frames = []
    for maps in result.per_frame or []:
        current = _display(result, maps.current)
        tiles = _map_tiles(result, maps)
        blank = _label(current, f"frame {maps.current}: no keyframe yet")
        while len(tiles) < k:
            tiles.append(blank if not tiles else np.zeros_like(tiles[0]))
        row = _grid(tiles[:k], k)
        frames.append(np.concatenate([row, colour_bar(row.shape[0])], axis=1))
    return frames


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise OSError(f"PNG encoding failed for {path}")
    path.write_bytes(data.tobytes())


def _write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> None:
    h, w = frames[0].shape[:2]
    h2, w2 = h + h % 2, w + w % 2  # even sizes for the codec
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w2, h2))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {path} (mp4v)")
    try:
        for rgb in frames:
            rgb = np.pad(rgb, ((0, h2 - h), (0, w2 - w), (0, 0)))
            writer.write(np.ascontiguousarray(rgb[..., ::-1]))
    finally:
        writer.release()


def _npz(result: InferResult) -> bytes:
    last = result.last
    arrays: dict[str, np.ndarray] = {
        f"map_{i}": m.astype(np.float32) for i, m in zip(last.keyframes, last.maps, strict=True)
    }
    arrays["keyframe_indices"] = np.asarray(last.keyframes, np.int64)
    arrays["current_index"] = np.asarray(last.current, np.int64)
    arrays["frame_indices"] = np.asarray(result.video.indices, np.int64)
    for name, value in result.scores.items():
        arrays[f"score_{name}"] = np.asarray(value, np.float64)
    if result.per_frame is not None:
        n, k = len(result.per_frame), len(last.keyframes)
        h, w = last.maps.shape[1:]
        keys = np.full((n, k), -1, np.int64)
        maps = np.zeros((n, k, h, w), np.float32)
        for t, fm in enumerate(result.per_frame):
            keys[t, : len(fm.keyframes)] = fm.keyframes
            maps[t, : len(fm.keyframes)] = fm.maps
        arrays["all_current_indices"] = np.asarray([fm.current for fm in result.per_frame], np.int64)
        arrays["all_keyframe_indices"] = keys
        arrays["all_maps"] = maps
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def metrics(result: InferResult, extra: dict[str, Any]) -> dict[str, Any]:
    video = result.video
    last = result.last
    out: dict[str, Any] = {
        "video": video.source,
        "instruction": result.instruction,
        "frames_in_video": video.total_frames,
        "frame_indices": [int(i) for i in video.indices],
        "frame_size": list(video.size),
        "heatmaps": result.heatmap_source,
        "algorithm": result.algorithm,
        "current_index": last.current,
        "keyframe_indices": last.keyframes,
        "sampler_scores": result.scores,
        "stages": result.monitor.get("stages", {}),
        "memory": result.monitor.get("memory", {}),
    }
    if last.valid is not None:
        out["keyframe_overlap_valid"] = last.valid
    if last.action_probs is not None:
        out["action_probs"] = last.action_probs
    out.update(extra)
    return out


def publish(folder: Path, write: Any) -> Path:
    """Call ``write(tmp_folder)`` then rename the temporary folder to `folder`."""
    folder = Path(os.path.abspath(folder))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write(tmp)
        if folder.exists():
            old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def write_result(result: InferResult, folder: Path, extra: dict[str, Any], fps: float | None) -> Path:
    """Write every output of `result` (module docstring) to `folder`, atomically."""

    def write(tmp: Path) -> None:
        _write_png(tmp / "keyframes.png", keyframes_image(result))
        _write_png(tmp / "heatmaps.png", heatmaps_image(result))
        if result.per_frame is not None:
            frames = _video_frames(result, len(result.last.keyframes))
            _write_mp4(tmp / "heatmaps.mp4", frames, fps or result.video.fps)
        (tmp / "heatmaps.npz").write_bytes(_npz(result))
        (tmp / "metrics.json").write_text(json.dumps(metrics(result, extra), indent=2) + "\n")

    return publish(folder, write)
