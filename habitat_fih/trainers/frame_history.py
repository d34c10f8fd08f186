"""Per-environment frame history of the collector (`FrameHistory`): the RGB frames of the task's
memory (step indices in ``frame_heatmaps.frame_indices``) plus the current one, resized for the
model; in the ``vggt`` stage also each frame's camera and depth (`DepthKeeping`, `KeptGeometry`),
optionally for the last ``max_frames`` consecutive steps instead of the memory frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from habitat_fih.geometry.surface import working_depth
from habitat_fih.trainers.vggt_samples import geometry_rows

__all__ = ["GEOMETRY_UUID", "VGGT_SEQUENCES", "DepthKeeping", "FrameHistory", "KeptGeometry"]

#: The ``frame_geometry`` sensor's uuid (cameras and current depth of every frame).
GEOMETRY_UUID = "frame_geometry"


#: Which frames make a ``vggt``-stage sequence (``collection.vggt_sequence``).
VGGT_SEQUENCES: tuple[str, ...] = ("memory", "recent")


@dataclass(frozen=True)
class DepthKeeping:
    """How `FrameHistory` keeps each frame's geometry for the ``vggt`` stage's targets: its
    camera (the ``frame_geometry`` row of the step it was taken at: OpenCV extrinsics relative to
    the episode's first camera, intrinsics) and its depth, the task's working depth resampled to
    ``size`` x ``size`` (VGGT's input) with `habitat_fih.geometry.surface.working_depth` (exact
    on planes; the covisibility tolerances ``abs_tol`` / ``rel_tol``; 0 at and beyond
    ``max_depth``). ``sequence`` picks a sample's frames: ``memory`` (the FIH model's own frame
    set, `FrameHistory.slots`) or ``recent`` (the last ``max_frames`` steps, consecutive: small
    baselines, what a from-scratch VGGT learns relative poses from first)."""

    size: int
    abs_tol: float
    rel_tol: float
    max_depth: float
    sequence: str = "memory"

    def __post_init__(self) -> None:
        if self.sequence not in VGGT_SEQUENCES:
            raise ValueError(
                f"collection.vggt_sequence must be one of {VGGT_SEQUENCES}, got {self.sequence!r}"
            )

    def resample(self, depth: np.ndarray) -> np.ndarray:
        return working_depth(
            depth, (self.size, self.size), self.abs_tol, self.rel_tol, self.max_depth
        )


@dataclass(frozen=True)
class NavDepth:
    """The action head's ``depth`` input (`ActionHeadConfig.inputs`): the depth sensor's
    observation ``uuid`` in metres (habitat's ``normalize_depth`` undone with the sensor's
    ``min_depth`` / ``max_depth``), area-resized to ``size`` x ``size`` (the frames' size)."""

    uuid: str
    size: int
    min_depth: float
    max_depth: float
    normalized: bool

    def __call__(self, depth: np.ndarray) -> np.ndarray:
        """[size, size] float32 metres from a depth observation [H, W] or [H, W, 1]."""
        d = np.asarray(depth, dtype=np.float32)
        if d.ndim == 3 and d.shape[-1] == 1:
            d = d[..., 0]
        if d.ndim != 2:
            raise ValueError(
                f"depth observation {self.uuid!r} must be [H, W] or [H, W, 1], got {d.shape}"
            )
        if self.normalized:
            d = self.min_depth + d * (self.max_depth - self.min_depth)
        return cv2.resize(d, (self.size, self.size), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class KeptGeometry:
    """[S, ...] geometry of a view's frames kept by `FrameHistory` (`DepthKeeping`)."""

    depths: np.ndarray  # [S, R, R] metres, 0 = invalid
    extrinsics: np.ndarray  # [S, 3, 4] OpenCV, relative to the episode's first camera
    intrinsics: np.ndarray  # [S, 3, 3] at the frame_geometry sensor's image size


class FrameHistory:
    """RGB frames of one environment's memory plus the current frame (see module docstring)."""

    def __init__(
        self,
        frame_size: int,
        max_frames: int,
        depth: DepthKeeping | None = None,
        nav_depth: NavDepth | None = None,
    ) -> None:
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        self.frame_size = frame_size
        self.max_frames = max_frames
        self.depth = depth
        self.nav_depth = nav_depth
        self.frames: dict[int, np.ndarray] = {}
        self.geometry: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.current_depth: np.ndarray | None = None  # with nav_depth: the current view's

    def reset(self) -> None:
        self.frames = {}
        self.geometry = {}
        self.current_depth = None

    @property
    def recent(self) -> bool:
        """Whether samples are the last `max_frames` steps (``vggt_sequence: recent``)."""
        return self.depth is not None and self.depth.sequence == "recent"

    def update(
        self,
        step: int,
        rgb: np.ndarray,
        memory_indices: np.ndarray,
        geometry: dict[str, Any] | None = None,
        observations: dict[str, Any] | None = None,
    ) -> None:
        """Store the current frame (and, with `depth`, its camera and depth from the
        ``frame_geometry`` observation `geometry`; with `nav_depth`, the current depth input
        from `observations`); drop frames that left the task's memory (and, with ``recent``
        sequences, the last `max_frames` steps)."""
        if self.nav_depth is not None:
            uuid = self.nav_depth.uuid
            if observations is None or uuid not in observations:
                raise ValueError(
                    f"the action head's depth input needs the depth sensor's observation "
                    f"{uuid!r} (habitat.simulator.agents.main_agent.sim_sensors.depth_sensor); "
                    f"got keys {sorted(observations or {})}"
                )
            self.current_depth = self.nav_depth(observations[uuid])
        keep = {int(i) for i in memory_indices if i >= 0} | {step}
        if self.recent:
            keep |= set(range(max(0, step - self.max_frames + 1), step + 1))
        self.frames = {k: v for k, v in self.frames.items() if k in keep}
        self.frames[step] = cv2.resize(
            np.ascontiguousarray(rgb[..., :3]),
            (self.frame_size, self.frame_size),
            interpolation=cv2.INTER_AREA,
        )
        if self.depth is not None:
            if geometry is None:
                raise ValueError(
                    f"keeping each frame's camera and depth needs the {GEOMETRY_UUID!r} sensor: "
                    "add it to habitat.task.lab_sensors"
                )
            (row,) = geometry_rows(geometry, [step])
            self.geometry = {k: v for k, v in self.geometry.items() if k in keep}
            self.geometry[step] = (
                self.depth.resample(np.asarray(geometry["current_depth"])),
                np.asarray(geometry["extrinsics"], dtype=np.float64)[row],
                np.asarray(geometry["intrinsics"], dtype=np.float64)[row],
            )

    def view_geometry(self, slots: Sequence[int]) -> KeptGeometry | None:
        """The kept geometry of `slots` (None when none is kept)."""
        if self.depth is None:
            return None
        depths, extrinsics, intrinsics = zip(*(self.geometry[s] for s in slots), strict=True)
        return KeptGeometry(np.stack(depths), np.stack(extrinsics), np.stack(intrinsics))

    def sequence_slots(self, step: int, memory_indices: np.ndarray) -> list[int]:
        """The frames of a ``vggt``-stage sample: `slots` (``memory``) or the last
        `max_frames` steps (``recent``; fewer at an episode's start)."""
        if self.recent:
            return list(range(max(0, step - self.max_frames + 1), step + 1))
        return self.slots(step, memory_indices)

    def slots(self, step: int, memory_indices: np.ndarray) -> list[int]:
        """Step indices of the sample's frames: memory frames (subsampled uniformly to
        max_frames - 1, first and latest kept; with room for one, the latest) then the current
        step."""
        past = sorted(int(i) for i in memory_indices if 0 <= i < step and int(i) in self.frames)
        room = self.max_frames - 1
        if len(past) > room:
            if room <= 1:
                pick = [len(past) - 1][:room]  # the latest, or none
            else:
                pick = np.unique(np.round(np.linspace(0, len(past) - 1, room)).astype(int))
            past = [past[int(i)] for i in pick]
        return [*past, step]
