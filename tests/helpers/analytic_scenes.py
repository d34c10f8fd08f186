"""Exact analytic ray casting for closed-form geometry tests (vectorised numpy, float64).

Independent of ``habitat_fih.geometry`` on purpose.  Habitat conventions: camera frame +X right,
+Y up, looking down -Z; world Y up; PLANAR depth (0 = no hit); 4x4 camera-to-world poses;
``f = (W/2) / tan(hfov/2)``, pixel (i, j) has centre (j + .5, i + .5), rows grow along -Y.

A scene is a list of primitives (:class:`Plane`, :class:`Rect`, :class:`Box`); each one's
``distance(o, d)`` is the ray parameter of its hit along ``o + t d`` (any sign, inf if none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _v(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class Plane:
    """Infinite plane through ``point`` with normal ``normal`` (hit from either side)."""

    point: tuple[float, float, float]
    normal: tuple[float, float, float]

    def distance(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        n = _v(self.normal)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((_v(self.point) - o) @ n) / (d @ n)
        return np.where(np.isfinite(t), t, np.inf)


@dataclass(frozen=True)
class Rect:
    """Planar rectangle ``centre + s e1 + r e2`` with ``|s|, |r| <= 1`` (e1 orthogonal to e2)."""

    centre: tuple[float, float, float]
    e1: tuple[float, float, float]
    e2: tuple[float, float, float]

    def distance(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        c, e1, e2 = _v(self.centre), _v(self.e1), _v(self.e2)
        t = Plane(self.centre, np.cross(e1, e2)).distance(o, d)
        rel = o + np.where(np.isfinite(t), t, 0.0)[..., None] * d - c
        inside = (np.abs(rel @ e1) <= e1 @ e1) & (np.abs(rel @ e2) <= e2 @ e2)
        return np.where(inside, t, np.inf)


@dataclass(frozen=True)
class Box:
    """Solid axis-aligned box ``lo <= X <= hi``; the hit is where the ray enters it."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]

    def distance(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (_v(self.lo) - o) / d, (_v(self.hi) - o) / d
        t_in = np.fmax.reduce(np.fmin(t1, t2), axis=-1)  # fmin / fmax skip 0/0 NaNs
        t_out = np.fmin.reduce(np.fmax(t1, t2), axis=-1)
        return np.where(t_in <= t_out, t_in, np.inf)


def first_hit(scene, origins, dirs, t_min: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """First hit ``(t [...], primitive index [...])`` along ``origins + t dirs`` with t > t_min.

    ``t`` is inf and the index -1 where nothing is hit.  origins / dirs broadcast ([..., 3]).
    """
    o, d = np.broadcast_arrays(_v(origins), _v(dirs))
    ts = np.stack([p.distance(o, d) for p in scene])  # [K, ...]
    ts = np.where(ts > t_min, ts, np.inf)
    idx = np.argmin(ts, axis=0)
    t = np.take_along_axis(ts, idx[None], axis=0)[0]
    return t, np.where(np.isfinite(t), idx, -1)


def first_hit_distance(scene, origins, dirs) -> np.ndarray:
    return first_hit(scene, origins, dirs)[0]


# --------------------------------------------------------------------------- cameras
def focal(hfov: float, W: int) -> float:
    return (W / 2.0) / math.tan(math.radians(hfov) / 2.0)


def ray_through(u, v, hfov: float, H: int, W: int) -> np.ndarray:
    """Camera-frame rays [..., 3] through continuous pixel coordinates (u, v), z = -1."""
    f = focal(hfov, W)
    u, v = np.broadcast_arrays(_v(u), _v(v))
    return np.stack([(u - W / 2.0) / f, (H / 2.0 - v) / f, -np.ones_like(u)], axis=-1)


def pixel_rays(hfov: float, H: int, W: int) -> np.ndarray:
    """Pixel-centre rays [H, W, 3] in the camera frame, scaled to planar depth 1."""
    v, u = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    return ray_through(u, v, hfov, H, W)


def yaw_pose(deg: float, position) -> np.ndarray:
    """Level camera turned left by ``deg`` about world +Y, centre at ``position``."""
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    pose = np.eye(4)
    pose[:3, :3] = [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
    pose[:3, 3] = position
    return pose


def forward(pose: np.ndarray) -> np.ndarray:
    """World viewing direction (camera -Z) of a pose."""
    return -pose[:3, 2]


def cast(scene, pose: np.ndarray, hfov: float, H: int, W: int):
    """Per-pixel first hits ``(planar depth [H, W] (inf = none), index [H, W], X [H, W, 3])``."""
    dirs = pixel_rays(hfov, H, W) @ pose[:3, :3].T  # world; planar depth = ray parameter
    t, idx = first_hit(scene, pose[:3, 3], dirs)
    X = pose[:3, 3] + np.where(np.isfinite(t), t, 0.0)[..., None] * dirs
    return t, idx, X


def render_depth(scene, pose, hfov: float, H: int, W: int, max_depth=math.inf) -> np.ndarray:
    """float32 planar depth [H, W] of the first hit per pixel centre (0 = none / beyond max)."""
    t = cast(scene, pose, hfov, H, W)[0]
    return np.where(np.isfinite(t) & (t <= max_depth), t, 0.0).astype(np.float32)


def project(points_world, pose: np.ndarray, hfov: float, H: int, W: int):
    """``(u, v, d)`` of world points [..., 3] in the camera ``pose`` (d = planar depth)."""
    q = (_v(points_world) - pose[:3, 3]) @ pose[:3, :3]  # R^T (X - t), row-vector form
    d = -q[..., 2]
    f = focal(hfov, W)
    with np.errstate(divide="ignore", invalid="ignore"):
        return W / 2.0 + f * q[..., 0] / d, H / 2.0 - f * q[..., 1] / d, d


def in_image(u, v, d, H: int, W: int) -> np.ndarray:
    return (d > 0) & (u >= 0) & (u < W) & (v >= 0) & (v < H)


def segment_blocked(scene, a, b, eps: float = 1e-4) -> np.ndarray:
    """Whether a surface lies strictly between a and b (hits within ``eps`` of b do not count)."""
    a, b = np.broadcast_arrays(_v(a), _v(b))
    seg = b - a
    length = np.linalg.norm(seg, axis=-1)
    t = first_hit_distance(scene, a, seg / length[..., None])
    return t < length - eps


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


# --------------------------------------------------------------------------- scenes
FLOOR = Plane((0.0, 0.0, 0.0), (0.0, 1.0, 0.0))


def grazing_wall(angle_deg: float = 10.0, offset: float = 0.75) -> Plane:
    """Vertical plane through (offset, 0, 0) running at ``angle_deg`` to the -Z axis, crossing
    it ahead (a camera at x = 0 looking down -Z sees it on its right at a grazing angle)."""
    a = math.radians(angle_deg)
    return Plane((offset, 0.0, 0.0), (math.cos(a), 0.0, -math.sin(a)))


def staircase(steps: int = 5, rise: float = 0.2, tread: float = 0.3, start: float = 2.0):
    """Boxes of a staircase climbing along -Z from z = -start, 6 m wide (x in [-3, 3])."""
    return [
        Box((-3.0, 0.0, -(start + tread * (k + 1))), (3.0, rise * (k + 1), -(start + tread * k)))
        for k in range(steps)
    ]
