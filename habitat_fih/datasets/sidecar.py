"""The geometry sidecar of a recorded video: known cameras and depth for every frame.

``python -m habitat_fih.datasets.record`` writes a video ``clip.mp4`` and, next to it,
``clip.geometry.npz`` (:func:`sidecar_path`); ``fih-infer --geometry-from clip.geometry.npz``
reads it to use the known geometry instead of VGGT's predictions. Frame ``i`` of the video is
step ``i`` of the episode (the reset is frame 0).

Keys (N frames, depth H x W):

================== ================= ==========================================================
``poses``          [N, 4, 4] float64 camera-to-world pose of the depth camera, habitat's
                                     convention (+X right, +Y up, looking down -Z, world Y up)
``intrinsics``     [N, 3, 3] float64 pinhole intrinsics for the depth image's H x W
``hfov``           () float64        horizontal field of view in degrees (square pixels)
``depth``          [N, H, W] float32 planar depth in metres at the sensor's resolution;
                                     0 = invalid (no hit, or at / beyond ``max_depth``)
``max_depth``      () float64        the depth sensor's range
``frame_indices``  [N] int64         0..N-1 (original step of each frame)
``actions``        [N] int64         the action taken after frame i (-1 after the last frame)
``working_resolution``, ``abs_tol``, ``rel_tol``, ``min_overlap``
                                     the FIH task's target settings when it was recorded, so
                                     the targets can be recomputed exactly
``episode_id``, ``scene_id``, ``split``, ``instruction``   str
``format_version`` () int64          :data:`FORMAT_VERSION` (a file without it, or with another
                                     version, is refused)
================== ================= ==========================================================

``clip.mp4`` and ``clip.avi`` in one folder would share ``clip.geometry.npz``; the recorder
refuses such a name.

Writes are atomic (a temporary file, then a rename). :func:`read_sidecar` checks every key and
shape and names the first problem in one `SidecarError`.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from habitat_fih.utils import atomic_write_bytes

__all__ = ["Sidecar", "SidecarError", "read_sidecar", "sidecar_path", "write_sidecar"]

SUFFIX = ".geometry.npz"
FORMAT_VERSION = 1
_STRINGS = ("episode_id", "scene_id", "split", "instruction")
_SCALARS = ("hfov", "max_depth", "working_resolution", "abs_tol", "rel_tol", "min_overlap")


class SidecarError(ValueError):
    """A sidecar file is missing, unreadable or inconsistent (the message names what)."""


@dataclass(frozen=True)
class Sidecar:
    """The contents of a geometry sidecar (module docstring)."""

    poses: np.ndarray
    intrinsics: np.ndarray
    hfov: float
    depth: np.ndarray
    max_depth: float
    frame_indices: np.ndarray
    actions: np.ndarray
    working_resolution: int
    abs_tol: float
    rel_tol: float
    min_overlap: float
    episode_id: str = ""
    scene_id: str = ""
    split: str = ""
    instruction: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])


def sidecar_path(video: str | os.PathLike[str]) -> Path:
    """``clip.mp4`` -> ``clip.geometry.npz`` (same folder)."""
    video = Path(video)
    return video.with_name(video.stem + SUFFIX)


def write_sidecar(path: str | os.PathLike[str], sidecar: Sidecar) -> Path:
    """Validate and write `sidecar` atomically to `path`."""
    _check(sidecar, str(path))
    arrays: dict[str, np.ndarray] = {
        "poses": np.asarray(sidecar.poses, np.float64),
        "intrinsics": np.asarray(sidecar.intrinsics, np.float64),
        "depth": np.asarray(sidecar.depth, np.float32),
        "frame_indices": np.asarray(sidecar.frame_indices, np.int64),
        "actions": np.asarray(sidecar.actions, np.int64),
    }
    for key in _SCALARS:
        arrays[key] = np.asarray(float(getattr(sidecar, key)), np.float64)
    for key in _STRINGS:
        arrays[key] = np.asarray(str(getattr(sidecar, key)))
    arrays["format_version"] = np.asarray(FORMAT_VERSION, np.int64)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def read_sidecar(path: str | os.PathLike[str]) -> Sidecar:
    """Read and check a sidecar; `SidecarError` names the file and the first problem."""
    name = str(path)
    if not os.path.isfile(name):
        raise SidecarError(f"--geometry-from {name!r}: no such file (expected a {SUFFIX} sidecar)")
    try:
        with np.load(name, allow_pickle=False) as data:
            raw = {key: data[key] for key in data.files}
    except Exception as exc:  # noqa: BLE001 - any failure of np.load means an unreadable file
        raise SidecarError(
            f"--geometry-from {name!r}: not a readable .npz sidecar ({type(exc).__name__}: {exc})"
        ) from None
    version = int(raw["format_version"]) if "format_version" in raw else None
    if version != FORMAT_VERSION:
        raise SidecarError(
            f"--geometry-from {name!r}: format_version {version} (expected {FORMAT_VERSION}); "
            "record it again with python -m habitat_fih.datasets.record"
        )
    needed = ("poses", "intrinsics", "depth", "frame_indices", "actions", *_SCALARS)
    missing = [key for key in needed if key not in raw]
    if missing:
        raise SidecarError(f"--geometry-from {name!r}: missing keys {missing} (see {__name__})")
    sidecar = Sidecar(
        poses=raw["poses"].astype(np.float64),
        intrinsics=raw["intrinsics"].astype(np.float64),
        hfov=float(raw["hfov"]),
        depth=raw["depth"].astype(np.float32),
        max_depth=float(raw["max_depth"]),
        frame_indices=raw["frame_indices"].astype(np.int64),
        actions=raw["actions"].astype(np.int64),
        working_resolution=int(raw["working_resolution"]),
        abs_tol=float(raw["abs_tol"]),
        rel_tol=float(raw["rel_tol"]),
        min_overlap=float(raw["min_overlap"]),
        **{key: str(raw[key]) for key in _STRINGS if key in raw},
    )
    _check(sidecar, name)
    return sidecar


def _check(s: Sidecar, name: str) -> None:
    shape = np.shape(s.poses)
    if len(shape) != 3 or shape[0] < 1 or shape[1:] != (4, 4):
        raise SidecarError(f"sidecar {name!r}: poses must be [N >= 1, 4, 4], got {shape}")
    n = shape[0]
    problems = []
    poses = np.asarray(s.poses, np.float64)
    if not np.isfinite(poses).all():
        problems.append("poses hold non-finite values")
    else:
        rot = poses[:, :3, :3]
        ortho = np.abs(rot @ np.swapaxes(rot, 1, 2) - np.eye(3)).max()
        bottom = np.abs(poses[:, 3] - [0.0, 0.0, 0.0, 1.0]).max()
        if ortho > 1e-5 or bottom > 1e-9 or (np.linalg.det(rot) <= 0).any():
            problems.append("poses are not rigid camera-to-world transforms")
    if np.shape(s.intrinsics) != (n, 3, 3) or not np.isfinite(s.intrinsics).all():
        problems.append(f"intrinsics must be finite [N={n}, 3, 3], got {np.shape(s.intrinsics)}")
    if np.ndim(s.depth) != 3 or np.shape(s.depth)[0] != n:
        problems.append(f"depth must be [N={n}, H, W], got {np.shape(s.depth)}")
    elif not np.isfinite(s.depth).all() or (np.asarray(s.depth) < 0).any():
        problems.append("depth must be finite and >= 0 (0 = invalid)")
    if np.shape(s.frame_indices) != (n,) or np.shape(s.actions) != (n,):
        problems.append(
            f"frame_indices and actions must be [N={n}], got {np.shape(s.frame_indices)} and "
            f"{np.shape(s.actions)}"
        )
    elif not np.array_equal(s.frame_indices, np.arange(n)):
        problems.append("frame_indices must be 0..N-1 (frame i of the video is step i)")
    if not 0.0 < s.hfov < 180.0:
        problems.append(f"hfov must be in (0, 180) degrees, got {s.hfov}")
    if not s.max_depth > 0:
        problems.append(f"max_depth must be > 0, got {s.max_depth}")
    if s.working_resolution < 1:
        problems.append(f"working_resolution must be >= 1, got {s.working_resolution}")
    for key in ("abs_tol", "rel_tol"):
        if not getattr(s, key) >= 0:
            problems.append(f"{key} must be >= 0, got {getattr(s, key)}")
    if not 0.0 <= s.min_overlap < 1.0:
        problems.append(f"min_overlap must be in [0, 1), got {s.min_overlap}")
    if problems:
        raise SidecarError(f"sidecar {name!r}: " + "; ".join(problems))
