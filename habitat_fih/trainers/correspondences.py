"""Cross-frame token correspondences for the pretraining feature-alignment loss.

The pretraining stage's cross-frame feature alignment (`habitat_fih.models.losses.
feature_alignment_loss`, symmetric InfoNCE) needs pairs of model tokens that see the same
surface: a cell of the CURRENT view's token grid and a cell of a past frame's (keyframe's) token
grid. They come from simulator geometry at collection time, per past frame of a sample:

1. **Covisible current cells.** The ``frame_heatmaps`` sensor's covisibility of that frame on the
   current view (area fractions of the task's occlusion-aware per-pixel rule, see
   `habitat_fih.geometry.targets`) is area-averaged onto the model's token grid ``th x tw``; a
   current cell is a candidate only when ALL of it is covisible (fraction >= 1 - 1e-4). That is
   the occlusion test: every working pixel of the cell saw a surface the past frame also saw,
   within the task's depth tolerance, so no separate keyframe-depth test is needed.
2. **The surface point at the cell centre.** The current frame's working-resolution depth (the
   ``frame_geometry`` sensor's ``current_depth``, the depth the targets were computed from) is
   resampled at the token cells' centres (`habitat_fih.geometry.surface.resample_depth`: exact
   on planes, the nearest surface at a depth edge) and back-projected with the sensor's
   intrinsics (principal point at the image centre; cell centre ``u = (c + 0.5) W / tw``,
   ``v = (r + 0.5) H / th``) and its OpenCV extrinsics (camera-from-world relative to the first
   frame; planar depth = OpenCV ``z``).
3. **Its keyframe cell.** The point is projected into the past frame; the cell containing the
   projection, ``(floor(v' th / H), floor(u' tw / W))``, is the pair's keyframe cell (a point
   behind that camera or outside its image gives no pair).
4. **Deterministic sampling.** Candidates are shuffled by a generator seeded with (run seed,
   episode id, step, past frame's step), so a sample's pairs depend on nothing else (not on the
   order of collection nor on other random streams), and taken in that order while their
   keyframe cell is not taken yet, up to ``num_pairs``: every pair has its own current cell AND
   its own keyframe cell. InfoNCE treats the other pairs of the same (keyframe, current view) as
   negatives, so two pairs sharing a cell (moving forward, several current cells land in one
   keyframe cell) would be a positive scored as a negative.

Pairs are flat token indices (``r * tw + c``, row-major as the model's tokens), ``[S, N, 2]``
int32 with ``[..., 0]`` the current-view cell and ``[..., 1]`` the keyframe cell, plus a
validity mask ``[S, N]`` (a frame with fewer eligible cells is padded; the current view's own
row is all False).

Assumptions: the RGB frames the model reads share the depth sensor's pose and field of view (as
in every bundled config, and as the frustum prior assumes), and the model resizes frames without
cropping, so token cells cover equal fractions of the image (exact when the patch grid merges
evenly: the tiny model's 8 x 8 patches -> 4 x 4 tokens, 224 px / 14 = 16 x 16 -> 8 x 8; an odd
patch grid is edge-padded by the fusion's 2 x 2 merge, which shifts its last cells by up to half
a patch).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from habitat_fih.geometry.camera import MIN_DEPTH
from habitat_fih.geometry.surface import resample_depth
from habitat_fih.geometry.targets import area_average

__all__ = [
    "FULL_CELL",
    "CorrespondenceSettings",
    "pair_generator",
    "token_correspondences",
    "view_correspondences",
]

#: A current-view token cell is a candidate when at least this fraction of it is covisible.
FULL_CELL = 1.0 - 1e-4


@dataclass(frozen=True)
class CorrespondenceSettings:
    """How the collector makes alignment pairs.

    Attributes:
        grid: the model's token grid ``(th, tw)`` (`FIHModel.token_grid`).
        num_pairs: N, pairs per past frame (`PretrainLossConfig.alignment_pairs`).
        seed: run seed of the pair generators (`pair_generator`).
        abs_tol / rel_tol: planarity tolerance of the depth resampling (the task's
            ``covisibility_abs_tol`` / ``covisibility_rel_tol``).
    """

    grid: tuple[int, int]
    num_pairs: int = 32
    seed: int = 0
    abs_tol: float = 0.05
    rel_tol: float = 0.02

    def __post_init__(self) -> None:
        th, tw = self.grid
        if th < 1 or tw < 1:
            raise ValueError(f"token grid must be positive, got {self.grid}")
        if not isinstance(self.num_pairs, int) or self.num_pairs < 1:
            raise ValueError(f"num_pairs must be an integer >= 1, got {self.num_pairs!r}")


def pair_generator(seed: int, episode_id: str, step: int, frame_step: int) -> np.random.Generator:
    """The generator that shuffles one (current view, past frame) pair's candidates."""
    episode = zlib.crc32(str(episode_id).encode("utf-8"))
    return np.random.default_rng([int(seed), episode, int(step), int(frame_step)])


def _cell_centres(grid: tuple[int, int], height: float, width: float) -> np.ndarray:
    """Pixel coordinates ``(u, v)`` [th * tw, 2] of the token cells' centres, row-major."""
    th, tw = grid
    v = (np.arange(th) + 0.5) * (height / th)
    u = (np.arange(tw) + 0.5) * (width / tw)
    uu, vv = np.meshgrid(u, v)  # [th, tw]
    return np.stack([uu.ravel(), vv.ravel()], axis=-1)


def token_correspondences(
    current_depth: np.ndarray,
    current_extrinsic: np.ndarray,
    key_extrinsics: np.ndarray,
    intrinsics: np.ndarray,
    covisibility: np.ndarray,
    grid: tuple[int, int],
    num_pairs: int,
    generators: Sequence[np.random.Generator],
    abs_tol: float = 0.05,
    rel_tol: float = 0.02,
) -> tuple[np.ndarray, np.ndarray]:
    """Token-cell pairs of F past frames with the current view (see the module docstring).

    Args:
        current_depth: [h0, w0] planar depth of the current view in metres, 0 = invalid.
        current_extrinsic: [3, 4] OpenCV camera-from-world of the current view.
        key_extrinsics: [F, 3, 4] OpenCV camera-from-world of the past frames (same world).
        intrinsics: [3, 3] pinhole intrinsics of an ``H x W`` image with the principal point at
            its centre (``W = 2 cx``, ``H = 2 cy``); any resolution (only ratios matter).
        covisibility: [F, h, w] covisible fraction of each current-view cell of any ``h x w``
            grid (the ``frame_heatmaps`` covisibility), area-averaged onto ``grid`` here.
        grid: token grid ``(th, tw)``.
        num_pairs: N.
        generators: F generators (`pair_generator`), one per past frame.
        abs_tol / rel_tol: planarity tolerance of the depth resampling.

    Returns:
        ``pairs`` [F, N, 2] int32 (current cell, keyframe cell; flat row-major indices, 0 at
        padding) and ``mask`` [F, N] bool.
    """
    th, tw = (int(grid[0]), int(grid[1]))
    key_extrinsics = np.asarray(key_extrinsics, dtype=np.float64).reshape(-1, 3, 4)
    n_frames = len(key_extrinsics)
    covisibility = np.asarray(covisibility)
    if covisibility.ndim != 3 or len(covisibility) != n_frames:
        raise ValueError(
            f"covisibility must be [F={n_frames}, h, w], got shape {covisibility.shape}"
        )
    if len(generators) != n_frames:
        raise ValueError(f"need {n_frames} generators, got {len(generators)}")
    pairs = np.zeros((n_frames, num_pairs, 2), dtype=np.int32)
    mask = np.zeros((n_frames, num_pairs), dtype=bool)
    if n_frames == 0:
        return pairs, mask
    K = np.asarray(intrinsics, dtype=np.float64)
    width, height = 2.0 * K[0, 2], 2.0 * K[1, 2]
    # the surface point at each token cell's centre, in world (first-frame OpenCV) coordinates
    depth = resample_depth(np.asarray(current_depth, np.float32), (th, tw), abs_tol, rel_tol)
    d = depth.astype(np.float64).ravel()  # [T]
    uv = _cell_centres((th, tw), height, width)  # [T, 2]
    cam = np.stack(
        [(uv[:, 0] - K[0, 2]) / K[0, 0] * d, (uv[:, 1] - K[1, 2]) / K[1, 1] * d, d], axis=-1
    )  # [T, 3]
    ext = np.asarray(current_extrinsic, dtype=np.float64)
    world = (cam - ext[:, 3]) @ ext[:, :3]  # R^T (x - t), as row vectors
    # ... seen from every past frame
    key = world[None] @ key_extrinsics[:, :, :3].transpose(0, 2, 1) + key_extrinsics[:, None, :, 3]
    z = key[..., 2]  # [F, T]
    in_front = z > MIN_DEPTH
    safe = np.where(in_front, z, 1.0)
    u_k = K[0, 2] + K[0, 0] * key[..., 0] / safe
    v_k = K[1, 2] + K[1, 1] * key[..., 1] / safe
    col = np.floor(u_k * (tw / width))
    row = np.floor(v_k * (th / height))
    inside = in_front & (col >= 0) & (col < tw) & (row >= 0) & (row < th)
    full = area_average(covisibility.astype(np.float64), (th, tw)).reshape(n_frames, -1)
    eligible = inside & (full >= FULL_CELL) & (d > 0)[None]  # [F, T]
    key_cell = np.where(inside, row * tw + col, -1).astype(np.int64)  # [F, T]
    for f in range(n_frames):
        cand = np.flatnonzero(eligible[f])  # current cells
        if cand.size == 0:
            continue
        cand = cand[generators[f].permutation(cand.size)]
        # keep each keyframe cell's first candidate in the shuffled order
        _, first = np.unique(key_cell[f, cand], return_index=True)
        chosen = cand[np.sort(first)][:num_pairs]
        pairs[f, : chosen.size, 0] = chosen
        pairs[f, : chosen.size, 1] = key_cell[f, chosen]
        mask[f, : chosen.size] = True
    return pairs, mask


def view_correspondences(
    geometry: dict[str, Any] | None,
    heatmaps: dict[str, Any],
    indices: Sequence[int],
    settings: CorrespondenceSettings,
    episode_id: str,
    step: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Pairs [S, N, 2] and mask [S, N] of one view's frames (`indices`, the current step last)
    from its ``frame_geometry`` and ``frame_heatmaps`` observations, or None when they lack what
    is needed (no geometry sensor, no ``current_depth``, no covisibility targets)."""
    if geometry is None or "current_depth" not in geometry or "covisibility" not in heatmaps:
        return None
    n, big_n = len(indices), settings.num_pairs
    pairs = np.zeros((n, big_n, 2), dtype=np.int32)
    mask = np.zeros((n, big_n), dtype=bool)
    cams = {
        int(f): j
        for j, (f, ok) in enumerate(zip(geometry["frame_indices"], geometry["valid"], strict=True))
        if f >= 0 and ok
    }
    heat = {int(f): j for j, f in enumerate(heatmaps["frame_indices"]) if f >= 0}
    rows = [
        (i, int(s))
        for i, s in enumerate(indices[:-1])
        if int(s) in cams and int(s) in heat and int(s) != int(step)
    ]
    if int(step) not in cams or not rows:
        return pairs, mask
    extrinsics = np.asarray(geometry["extrinsics"])
    got_pairs, got_mask = token_correspondences(
        np.asarray(geometry["current_depth"]),
        extrinsics[cams[int(step)]],
        extrinsics[[cams[s] for _, s in rows]],
        np.asarray(geometry["intrinsics"])[cams[int(step)]],
        np.asarray(heatmaps["covisibility"])[[heat[s] for _, s in rows]],
        settings.grid,
        big_n,
        [pair_generator(settings.seed, episode_id, step, s) for _, s in rows],
        settings.abs_tol,
        settings.rel_tol,
    )
    where = [i for i, _ in rows]
    pairs[where], mask[where] = got_pairs, got_mask
    return pairs, mask
