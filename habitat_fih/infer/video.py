"""Reading a video for fih-infer: a video file or a folder / glob of images -> N RGB frames.

- Sources: a video file (``.mp4``, ``.avi``, ``.mov``, ``.mkv``, ``.webm``; OpenCV / FFmpeg), a
  folder of images (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``; in natural name order, so
  ``f2.png`` comes before ``f10.png``) or a glob pattern of images (``'clip/*.png'``).
- Which frames (``video.selection``): ``uniform`` (default) takes ``max_frames`` frames evenly
  spread over the WHOLE video, the first and the last included
  (``round(linspace(0, total - 1, max_frames))``): a user asks about the whole walk, and the
  current view is its end. ``first`` takes the first ``max_frames`` frames (the design
  document's reading). A video with at most ``max_frames`` frames is taken whole. The frame
  index of every output is the frame's ORIGINAL index in the video (0-based).
- OpenCV decodes to BGR; frames are converted to RGB. Each frame is kept twice: resized (area
  interpolation, no crop) to the model's ``image_size`` square — as the trainer's frame history
  does — and at ``display_size`` on its longer side for the pictures.
- A video file is read in two passes (count by grabbing, then decode only the chosen frames),
  so a long video never sits in memory; the count comes from decoding, not from the container's
  frame-count field, which is often wrong.

Errors are one `InferInputError` line: missing path, not a video, no decodable frame, a single
frame (fih-infer needs a keyframe and a current view), a folder / glob without images, or an
image that does not decode.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from habitat_fih.infer.settings import InferInputError

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Video",
    "read_video",
    "select_frame_indices",
    "video_name",
]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DEFAULT_FPS = 5.0


@dataclass
class Video:
    """Frames chosen from one video.

    Attributes:
        name: the output folder's name (file stem, folder name, or the glob's folder).
        source: the path or pattern given.
        frames: [N, R, R, 3] uint8 RGB at the model's image size.
        display: [N, h, w, 3] uint8 RGB, longer side = display_size (aspect kept).
        indices: [N] int64 original frame indices, ascending.
        total_frames: frames in the whole video.
        fps: the video's frame rate (DEFAULT_FPS for images or when the file has none).
        size: (height, width) of the original frames.
    """

    name: str
    source: str
    frames: np.ndarray
    display: np.ndarray
    indices: np.ndarray
    total_frames: int
    fps: float
    size: tuple[int, int]


def select_frame_indices(total: int, max_frames: int, selection: str) -> np.ndarray:
    """Original indices of the frames to use (module docstring), ascending and unique."""
    if total <= max_frames:
        return np.arange(total, dtype=np.int64)
    if selection == "first":
        return np.arange(max_frames, dtype=np.int64)
    picked = np.round(np.linspace(0, total - 1, max_frames)).astype(np.int64)
    return np.unique(picked)  # max_frames <= total keeps them distinct


def _is_pattern(source: str) -> bool:
    return any(ch in source for ch in "*?[")


def video_name(source: str) -> str:
    """The output folder's name of `source`: a folder's own name, a glob's folder's name, else
    the file's stem."""
    if os.path.isdir(source):
        return Path(source).resolve().name
    if _is_pattern(source):
        return Path(os.path.dirname(source) or ".").resolve().name
    return Path(source).stem


def _natural_key(path: str) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", os.path.basename(path))]


def _image_list(source: str) -> list[str] | None:
    """Sorted image paths when `source` is a folder or a glob, else None."""
    if os.path.isdir(source):
        paths = [
            os.path.join(source, f)
            for f in os.listdir(source)
            if f.lower().endswith(IMAGE_SUFFIXES)
        ]
        if not paths:
            raise InferInputError(
                f"--video {source!r}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)})"
            )
        return sorted(paths, key=_natural_key)
    if _is_pattern(source):
        paths = [p for p in glob.glob(source) if p.lower().endswith(IMAGE_SUFFIXES)]
        if not paths:
            raise InferInputError(f"--video {source!r}: the pattern matches no image file")
        return sorted(paths, key=_natural_key)
    return None


def _resize_pair(rgb: np.ndarray, image_size: int, display_size: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = rgb.shape[:2]
    model = cv2.resize(rgb, (image_size, image_size), interpolation=cv2.INTER_AREA)
    scale = display_size / max(h, w)
    dsize = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return model, cv2.resize(rgb, dsize, interpolation=interp)


def _to_rgb(bgr: np.ndarray, where: str) -> np.ndarray:
    if bgr.ndim == 2:
        return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    if bgr.ndim != 3 or bgr.shape[2] not in (3, 4):
        raise InferInputError(f"{where}: unexpected image shape {bgr.shape}")
    code = cv2.COLOR_BGRA2RGB if bgr.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(bgr, code)


def _count_frames(source: str) -> tuple[int, float]:
    cap = cv2.VideoCapture(source)
    try:
        if not cap.isOpened():
            raise InferInputError(f"--video {source!r}: OpenCV cannot open it as a video")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        total = 0
        while cap.grab():
            total += 1
    finally:
        cap.release()
    return total, fps if fps > 0 else DEFAULT_FPS


def _read_video_file(source: str, wanted: np.ndarray) -> list[np.ndarray]:
    cap = cv2.VideoCapture(source)
    out: list[np.ndarray] = []
    try:
        want = set(int(i) for i in wanted)
        index = 0
        last = int(wanted[-1])
        while index <= last:
            if index in want:
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                out.append(_to_rgb(bgr, f"--video {source!r} frame {index}"))
            elif not cap.grab():
                break
            index += 1
    finally:
        cap.release()
    if len(out) != len(wanted):
        raise InferInputError(
            f"--video {source!r}: frame {int(wanted[len(out)])} did not decode on the second "
            f"read (counted frames first); the file may be corrupt"
        )
    return out


def read_video(
    source: str, max_frames: int, selection: str, image_size: int, display_size: int
) -> Video:
    """Read `source` (module docstring). Raises `InferInputError` on bad input."""
    images = _image_list(source)
    if images is None:
        if not os.path.exists(source):
            raise InferInputError(f"--video {source!r}: no such file, folder or image pattern")
        if not source.lower().endswith(VIDEO_SUFFIXES):
            raise InferInputError(
                f"--video {source!r}: expected a video file ({', '.join(VIDEO_SUFFIXES)}), a "
                f"folder of images or a glob pattern of images"
            )
        if os.path.getsize(source) == 0:
            raise InferInputError(f"--video {source!r}: the file is empty (0 bytes)")
        total, fps = _count_frames(source)
    else:
        paths = images
        total, fps = len(paths), DEFAULT_FPS
    if total == 0:
        raise InferInputError(f"--video {source!r}: no frame could be decoded (corrupt or empty)")
    if total == 1:
        raise InferInputError(
            f"--video {source!r}: has 1 frame; fih-infer needs at least 2 (a keyframe and the "
            "current view)"
        )
    wanted = select_frame_indices(total, max_frames, selection)
    if images is None:
        rgbs = _read_video_file(source, wanted)
    else:
        rgbs = []
        for i in wanted:
            bgr = cv2.imread(paths[int(i)], cv2.IMREAD_COLOR)
            if bgr is None:
                raise InferInputError(f"--video {source!r}: image {paths[int(i)]!r} does not decode")
            rgbs.append(_to_rgb(bgr, f"--video image {paths[int(i)]!r}"))
    sizes = {rgb.shape[:2] for rgb in rgbs}
    if len(sizes) > 1:
        raise InferInputError(f"--video {source!r}: frames differ in size {sorted(sizes)}")
    pairs = [_resize_pair(rgb, image_size, display_size) for rgb in rgbs]
    return Video(
        name=video_name(source),
        source=source,
        frames=np.stack([p[0] for p in pairs]),
        display=np.stack([p[1] for p in pairs]),
        indices=wanted,
        total_frames=total,
        fps=fps,
        size=tuple(int(v) for v in rgbs[0].shape[:2]),  # type: ignore[arg-type]
    )
