"""Space-aware keyframe sampling from VGGT geometry.

Three samplers pick ``K`` keyframes out of ``S`` video frames from VGGT's world points and
their confidences (the document's ``fast`` / ``quality`` / ``enhanced`` variants):

``fast``
    The document's uniform fallback: ``linspace(0, S - 1, K)`` rounded to the nearest integer
    (``torch.round``, half to even).
``quality``
    Spatial-MLLM's greedy maximum voxel coverage. Each frame is reduced to the set of voxels
    its reliable world points fall in; frames are added greedily by the number of voxels they
    cover that the selection does not yet cover, until ``K`` frames or zero gain.
``enhanced`` (default)
    Greedy on a weighted score of coverage gain, descriptor diversity and temporal (or camera)
    novelty, each in ``[0, 1]`` (definitions in :func:`select_keyframes`).

Voxelisation (shared by ``quality`` and ``enhanced``, :func:`voxelize_frames`):

* a point is *reliable* when it and its confidence are finite, its confidence is at least the
  ``conf_quantile`` quantile of all finite confidences of the video (0.5: the global median;
  the lower median for an even count) AND strictly greater than ``min_conf`` (0.1) — the
  Spatial-MLLM rule;
* voxel size = (smallest extent of the reliable points' axis-aligned bounding box) /
  ``voxel_divisor`` (20). Extents at or below ``1e-6`` times the largest extent count as
  degenerate (a flat scene) and are skipped; if every extent is degenerate (a single point)
  the voxel size is 1;
* a frame's set = the unique voxel ids of its reliable points (``torch.unique`` on integer
  keys), stored as a dense boolean occupancy matrix ``[S, V]``.

Every sampler returns SORTED, unique, original frame indices as a ``LongTensor [K]`` on the
input's device. All choices are deterministic: ties go to the lowest frame index.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "ALGORITHMS",
    "FrameVoxels",
    "SamplerConfig",
    "select_keyframes",
    "select_keyframes_batched",
    "voxelize_frames",
]

ALGORITHMS: tuple[str, ...] = ("fast", "quality", "enhanced")

# Extents at or below this fraction of the largest bbox extent are treated as degenerate.
_DEGENERATE_EXTENT = 1e-6


@dataclass
class SamplerConfig:
    """Keyframe sampler settings (the document's ``sampling`` block plus the voxel rule).

    Attributes:
        algorithm: ``"fast"``, ``"quality"`` or ``"enhanced"``.
        num_keyframes: default ``K`` when :func:`select_keyframes` gets none.
        diversity_weight / coverage_weight / novelty_weight: weights of the ``enhanced``
            score (document: 0.4 / 0.3 / 0.3). Used as given, not renormalised.
        conf_quantile: reliable points have confidence >= this quantile of the video's
            finite confidences (0.5 = global median, Spatial-MLLM).
        min_conf: reliable points also have confidence strictly greater than this.
        voxel_divisor: voxel size = smallest bbox extent of the reliable points / this.
        point_stride: keep every ``point_stride``-th row and column of each point map before
            voxelising (1 = all points); a deterministic way to bound the cost.
        clamp_num_keyframes: if True, ``K > S`` is clamped to ``S``; if False it raises.
    """

    algorithm: str = "enhanced"
    num_keyframes: int = 8
    diversity_weight: float = 0.4
    coverage_weight: float = 0.3
    novelty_weight: float = 0.3
    conf_quantile: float = 0.5
    min_conf: float = 0.1
    voxel_divisor: float = 20.0
    point_stride: int = 1
    clamp_num_keyframes: bool = False

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(
                f"SamplerConfig.algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}"
            )
        if isinstance(self.num_keyframes, bool) or not isinstance(self.num_keyframes, int):
            raise ValueError(
                f"SamplerConfig.num_keyframes must be an int, got {self.num_keyframes!r}"
            )
        if self.num_keyframes < 1:
            raise ValueError(f"SamplerConfig.num_keyframes must be >= 1, got {self.num_keyframes}")
        weights = {
            "diversity_weight": self.diversity_weight,
            "coverage_weight": self.coverage_weight,
            "novelty_weight": self.novelty_weight,
        }
        for name, value in weights.items():
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"SamplerConfig.{name} must be finite and >= 0, got {value}")
        if sum(weights.values()) <= 0:
            raise ValueError(f"SamplerConfig weights must not all be zero, got {weights}")
        if not 0.0 <= self.conf_quantile <= 1.0:
            raise ValueError(
                f"SamplerConfig.conf_quantile must be in [0, 1], got {self.conf_quantile}"
            )
        if not math.isfinite(self.min_conf):
            raise ValueError(f"SamplerConfig.min_conf must be finite, got {self.min_conf}")
        if not math.isfinite(self.voxel_divisor) or self.voxel_divisor <= 0:
            raise ValueError(
                f"SamplerConfig.voxel_divisor must be finite and > 0, got {self.voxel_divisor}"
            )
        if self.point_stride < 1:
            raise ValueError(f"SamplerConfig.point_stride must be >= 1, got {self.point_stride}")


@dataclass(frozen=True)
class FrameVoxels:
    """Per-frame voxel sets of one video.

    Attributes:
        occupancy: ``[S, V]`` bool, ``occupancy[s, v]`` is True when frame ``s`` has a reliable
            point in voxel ``v`` (``V`` = number of distinct occupied voxels, may be 0).
        voxel_size: edge length of a voxel in world units (0.0 when no point is reliable).
    """

    occupancy: Tensor
    voxel_size: float

    @property
    def num_voxels(self) -> int:
        return int(self.occupancy.shape[1])

    def covered(self, indices: Sequence[int] | Tensor) -> int:
        """Number of distinct voxels covered by the frames ``indices`` (``-1`` entries ignored)."""
        idx = torch.as_tensor(indices, dtype=torch.long, device=self.occupancy.device).flatten()
        idx = idx[idx >= 0]
        if idx.numel() == 0 or self.num_voxels == 0:
            return 0
        return int(self.occupancy[idx].any(0).sum())


def _check_geometry(world_points: Tensor, world_points_conf: Tensor) -> int:
    if world_points.dim() != 4 or world_points.shape[-1] != 3:
        raise ValueError(
            f"world_points must be [S, H, W, 3], got shape {tuple(world_points.shape)}"
        )
    if world_points_conf.shape != world_points.shape[:-1]:
        raise ValueError(
            f"world_points_conf must be [S, H, W] = {tuple(world_points.shape[:-1])}, "
            f"got shape {tuple(world_points_conf.shape)}"
        )
    num_frames = int(world_points.shape[0])
    if num_frames == 0:
        raise ValueError("cannot sample keyframes from an empty video (S == 0)")
    return num_frames


def voxelize_frames(
    world_points: Tensor, world_points_conf: Tensor, config: SamplerConfig | None = None
) -> FrameVoxels:
    """Voxelise each frame's reliable world points (rule in the module docstring).

    Args:
        world_points: ``[S, H, W, 3]`` VGGT world points.
        world_points_conf: ``[S, H, W]`` their confidences.
        config: sampler settings (``conf_quantile``, ``min_conf``, ``voxel_divisor``,
            ``point_stride``).

    Returns:
        :class:`FrameVoxels` with ``occupancy [S, V]`` on the input's device.
    """
    config = config or SamplerConfig()
    num_frames = _check_geometry(world_points, world_points_conf)
    stride = config.point_stride
    pts = world_points[:, ::stride, ::stride].reshape(num_frames, -1, 3).float()  # [S, P, 3]
    conf = world_points_conf[:, ::stride, ::stride].reshape(num_frames, -1).float()  # [S, P]
    device = pts.device

    finite = torch.isfinite(pts).all(-1) & torch.isfinite(conf)  # [S, P]
    num_finite = int(finite.sum())
    if num_finite == 0:
        return FrameVoxels(torch.zeros(num_frames, 0, dtype=torch.bool, device=device), 0.0)
    k = int(math.floor(config.conf_quantile * (num_finite - 1))) + 1
    threshold = torch.kthvalue(conf[finite], k).values
    keep = finite & (conf >= threshold) & (conf > config.min_conf)  # [S, P]
    if not bool(keep.any()):
        return FrameVoxels(torch.zeros(num_frames, 0, dtype=torch.bool, device=device), 0.0)

    frame_id = torch.arange(num_frames, device=device)[:, None].expand_as(keep)[keep]  # [N]
    points = pts[keep]  # [N, 3]
    lo = points.min(0).values
    extent = points.max(0).values - lo  # [3]
    largest = float(extent.max())
    usable = extent[extent > _DEGENERATE_EXTENT * largest] if largest > 0 else extent[:0]
    voxel_size = float(usable.min()) / config.voxel_divisor if usable.numel() else 1.0

    ijk = torch.floor((points - lo) / voxel_size).long()  # [N, 3], all >= 0
    dims = [int(d) + 1 for d in ijk.max(0).values]
    if math.prod(dims) < 2**62:
        key = (ijk[:, 0] * dims[1] + ijk[:, 1]) * dims[2] + ijk[:, 2]  # [N] mixed radix
        _, voxel_id = torch.unique(key, return_inverse=True)
    else:  # keys would overflow int64: unique on the integer triples
        _, voxel_id = torch.unique(ijk, dim=0, return_inverse=True)
    num_voxels = int(voxel_id.max()) + 1
    occupancy = torch.zeros(num_frames, num_voxels, dtype=torch.bool, device=device)
    occupancy[frame_id, voxel_id] = True  # [S, V]
    return FrameVoxels(occupancy, voxel_size)


def _resolve_k(num_keyframes: int | None, num_frames: int, config: SamplerConfig) -> int:
    k = config.num_keyframes if num_keyframes is None else num_keyframes
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"num_keyframes must be an int, got {k!r}")
    if k < 1:
        raise ValueError(f"num_keyframes must be >= 1, got {k}")
    if k > num_frames:
        if not config.clamp_num_keyframes:
            raise ValueError(
                f"num_keyframes={k} exceeds the number of frames S={num_frames} "
                "(set SamplerConfig.clamp_num_keyframes=True to clamp K to S)"
            )
        k = num_frames
    return k


def _resolve_forced(always_include: Sequence[int], num_frames: int, k: int) -> list[int]:
    forced: list[int] = []
    for raw in always_include:
        idx = int(raw)
        if idx < 0:
            idx += num_frames  # allow -1 for "the current (last) frame"
        if not 0 <= idx < num_frames:
            raise ValueError(
                f"always_include index {int(raw)} is out of range for S={num_frames} frames"
            )
        if idx not in forced:
            forced.append(idx)
    if len(forced) > k:
        raise ValueError(
            f"always_include has {len(forced)} distinct frames {forced} > num_keyframes={k}"
        )
    return forced


def _fill_farthest_in_time(selected: list[int], num_frames: int, k: int, device) -> list[int]:
    """Fill up to ``k`` frames, each time adding the frame farthest in time from the selection.

    With an empty selection the first pick is frame 0. Ties go to the lowest index.
    """
    selected = list(selected)
    if len(selected) >= k:
        return selected
    t = torch.arange(num_frames, device=device, dtype=torch.float64)
    available = torch.ones(num_frames, dtype=torch.bool, device=device)
    if selected:
        chosen = torch.tensor(selected, device=device)
        available[chosen] = False
        dist = (t[:, None] - t[chosen][None, :]).abs().min(1).values  # [S]
    else:
        dist = torch.full((num_frames,), math.inf, dtype=torch.float64, device=device)
    while len(selected) < k:
        best = int(dist.masked_fill(~available, -1.0).argmax())
        selected.append(best)
        available[best] = False
        dist = torch.minimum(dist, (t - t[best]).abs())
    return selected


def _sample_fast(num_frames: int, k: int, forced: list[int], device) -> list[int]:
    if not forced:
        grid = torch.linspace(0, num_frames - 1, k, dtype=torch.float64).round().long()
        return grid.tolist()
    return _fill_farthest_in_time(forced, num_frames, k, device)


def _sample_quality(voxels: FrameVoxels, k: int, forced: list[int]) -> list[int]:
    occ = voxels.occupancy  # [S, V]
    num_frames, device = occ.shape[0], occ.device
    selected = list(forced)
    available = torch.ones(num_frames, dtype=torch.bool, device=device)
    covered = torch.zeros(occ.shape[1], dtype=torch.bool, device=device)  # [V]
    for idx in selected:
        available[idx] = False
        covered |= occ[idx]
    while len(selected) < k:
        gain = (occ & ~covered).sum(1).masked_fill(~available, -1)  # [S] new voxels
        best = int(gain.argmax())
        if int(gain[best]) <= 0:
            break
        selected.append(best)
        available[best] = False
        covered |= occ[best]
    return _fill_farthest_in_time(selected, num_frames, k, device)


def _sample_enhanced(
    voxels: FrameVoxels,
    k: int,
    forced: list[int],
    config: SamplerConfig,
    features: Tensor | None,
    camera_centers: Tensor | None,
) -> list[int]:
    occ = voxels.occupancy  # [S, V]
    num_frames, device = occ.shape[0], occ.device

    # Descriptors [S, E] (unit norm or zero) and their cosine similarities [S, S].
    if features is not None:
        desc = torch.nn.functional.normalize(features.float(), dim=-1)
    else:
        occ_f = occ.float()
        desc = occ_f / occ_f.sum(1, keepdim=True).sqrt().clamp_min(1.0)
    has_desc = desc.norm(dim=-1) > 0  # [S]
    sim = desc @ desc.T  # [S, S]

    # Novelty distances [S, S], normalised to [0, 1].
    if camera_centers is not None:
        c = camera_centers.to(device=device, dtype=torch.float64)
        dist = torch.cdist(c, c)
        span = float(dist.max())
        dist = dist / span if span > 0 else torch.zeros_like(dist)
    else:
        t = torch.arange(num_frames, device=device, dtype=torch.float64)
        dist = (t[:, None] - t[None, :]).abs() / max(num_frames - 1, 1)
    dist = dist.float()

    selected: list[int] = []
    available = torch.ones(num_frames, dtype=torch.bool, device=device)
    covered = torch.zeros(occ.shape[1], dtype=torch.bool, device=device)
    max_sim = torch.full((num_frames,), -math.inf, device=device)
    min_dist = torch.full((num_frames,), math.inf, device=device)

    def add(idx: int) -> None:
        nonlocal covered, max_sim, min_dist
        selected.append(idx)
        available[idx] = False
        covered = covered | occ[idx]
        max_sim = torch.maximum(max_sim, sim[idx])
        min_dist = torch.minimum(min_dist, dist[idx])

    for idx in forced:
        add(idx)
    while len(selected) < k:
        gain = (occ & ~covered).sum(1).float()  # [S]
        best_gain = float(gain.masked_fill(~available, 0.0).max())
        coverage = gain / best_gain if best_gain > 0 else torch.zeros_like(gain)
        if selected:
            diversity = (1.0 - max_sim).clamp(0.0, 1.0) * has_desc
            novelty = min_dist.clamp(0.0, 1.0)
        else:
            diversity = has_desc.float()
            novelty = torch.ones_like(gain)
        score = (
            config.coverage_weight * coverage
            + config.diversity_weight * diversity
            + config.novelty_weight * novelty
        )
        add(int(score.masked_fill(~available, -math.inf).argmax()))
    return selected


def select_keyframes(
    world_points: Tensor,
    world_points_conf: Tensor,
    num_keyframes: int | None = None,
    config: SamplerConfig | None = None,
    *,
    features: Tensor | None = None,
    always_include: Sequence[int] = (),
    camera_centers: Tensor | None = None,
) -> Tensor:
    """Pick keyframes of one video from its VGGT geometry.

    Args:
        world_points: ``[S, H, W, 3]`` world points.
        world_points_conf: ``[S, H, W]`` confidences.
        num_keyframes: ``K`` (default ``config.num_keyframes``). ``K < 1`` raises; ``K > S``
            raises unless ``config.clamp_num_keyframes`` (then ``K = S``).
        config: sampler settings (default :class:`SamplerConfig`).
        features: optional ``[S, D]`` per-frame descriptors for ``enhanced``'s diversity.
        always_include: frames that must be selected (e.g. ``-1`` for the current frame);
            negative indices count from the end. They seed the greedy selection (their
            voxels count as covered) and are always in the output.
        camera_centers: optional ``[S, 3]`` camera centres; ``enhanced``'s novelty then uses
            camera distance instead of time.

    Returns:
        ``LongTensor [K]``: sorted, unique original frame indices, on the input's device.

    ``quality``: greedy max coverage (module docstring) until ``K`` frames or zero gain; the
    remaining slots are then filled deterministically by farthest-in-time sampling (each time
    the frame whose minimum ``|t - t_selected|`` is largest; frame 0 first if nothing is
    selected; ties to the lowest index).

    ``enhanced``: every step adds the unselected frame maximising
    ``w_cov * coverage + w_div * diversity + w_nov * novelty`` where, for candidate ``i``:

    * ``coverage = new_i / max_j new_j`` with ``new_i`` the number of voxels of frame ``i``
      not yet covered and the max over unselected frames (0 when no frame adds any voxel).
      Normalising by the step's best gain, not by the total voxel count, keeps the term on
      the same ``[0, 1]`` scale as the other two, so the weights mean what they say;
    * ``diversity = clamp(1 - max_s cos(d_i, d_s), 0, 1)`` over selected frames ``s``, where
      ``d`` is the per-frame feature if given, else the frame's L2-normalised binary voxel
      occupancy vector (then ``cos`` = ``|A ∩ B| / sqrt(|A| |B|)``). A frame with a zero
      descriptor (no reliable point) gets diversity 0;
    * ``novelty = min_s |t_i - t_s| / (S - 1)`` (temporal), or, with ``camera_centers``,
      ``min_s ||c_i - c_s|| / max_{a,b} ||c_a - c_b||``.

    With nothing selected yet, diversity (for frames with a descriptor) and novelty are 1, so
    the first pick is the frame with the most voxels. ``enhanced`` never stops early.

    ``fast``: ``linspace(0, S - 1, K)`` rounded; with ``always_include`` it instead fills the
    forced frames up to ``K`` by farthest-in-time sampling.
    """
    config = config or SamplerConfig()
    num_frames = _check_geometry(world_points, world_points_conf)
    k = _resolve_k(num_keyframes, num_frames, config)
    forced = _resolve_forced(always_include, num_frames, k)
    device = world_points.device
    if features is not None and (features.dim() != 2 or features.shape[0] != num_frames):
        raise ValueError(
            f"features must be [S, D] with S={num_frames}, got shape {tuple(features.shape)}"
        )
    if camera_centers is not None and tuple(camera_centers.shape) != (num_frames, 3):
        raise ValueError(
            f"camera_centers must be [S, 3] with S={num_frames}, "
            f"got shape {tuple(camera_centers.shape)}"
        )

    if config.algorithm == "fast":
        chosen = _sample_fast(num_frames, k, forced, device)
    else:
        voxels = voxelize_frames(world_points, world_points_conf, config)
        if config.algorithm == "quality":
            chosen = _sample_quality(voxels, k, forced)
        else:
            feats = None if features is None else features.to(device)
            chosen = _sample_enhanced(voxels, k, forced, config, feats, camera_centers)
    out = torch.tensor(sorted(set(chosen)), dtype=torch.long, device=device)
    if out.numel() != k:  # internal invariant, not a user error
        raise RuntimeError(f"sampler produced {out.tolist()} for K={k}")
    return out


def select_keyframes_batched(
    world_points: Tensor,
    world_points_conf: Tensor,
    num_keyframes: int | None = None,
    config: SamplerConfig | None = None,
    *,
    features: Tensor | None = None,
    num_frames: Sequence[int] | Tensor | None = None,
    always_include: Sequence[int] = (),
    camera_centers: Tensor | None = None,
) -> Tensor:
    """Batched :func:`select_keyframes` over videos padded to a common length.

    Args:
        world_points: ``[B, S, H, W, 3]``.
        world_points_conf: ``[B, S, H, W]``.
        num_keyframes: ``K`` (default ``config.num_keyframes``).
        config: sampler settings.
        features: optional ``[B, S, D]``.
        num_frames: optional per-video valid lengths ``[B]`` (frames ``>=`` the length are
            padding and never selected); default: all ``S`` frames are valid.
        always_include: frames forced into every video's selection (negative indices count
            from the end of each video's valid frames).
        camera_centers: optional ``[B, S, 3]``.

    Returns:
        ``LongTensor [B, K]``: each row sorted; when ``clamp_num_keyframes`` lets a short video
        yield fewer than ``K`` frames, its row is right-padded with ``-1``.
    """
    config = config or SamplerConfig()
    if world_points.dim() != 5 or world_points.shape[-1] != 3:
        raise ValueError(
            f"world_points must be [B, S, H, W, 3], got shape {tuple(world_points.shape)}"
        )
    if world_points_conf.shape != world_points.shape[:-1]:
        raise ValueError(
            f"world_points_conf must be [B, S, H, W] = {tuple(world_points.shape[:-1])}, "
            f"got shape {tuple(world_points_conf.shape)}"
        )
    batch, max_frames = int(world_points.shape[0]), int(world_points.shape[1])
    if num_frames is None:
        lengths = [max_frames] * batch
    else:
        lengths = [int(n) for n in torch.as_tensor(num_frames).flatten().tolist()]
        if len(lengths) != batch or any(not 0 <= n <= max_frames for n in lengths):
            raise ValueError(
                f"num_frames must hold B={batch} lengths in [0, {max_frames}], got {lengths}"
            )
    extras = (("features", features, None), ("camera_centers", camera_centers, 3))
    for name, extra, trailing in extras:
        if extra is None:
            continue
        if (
            extra.dim() != 3
            or tuple(extra.shape[:2]) != (batch, max_frames)
            or (trailing is not None and extra.shape[2] != trailing)
        ):
            raise ValueError(
                f"{name} must be [B={batch}, S={max_frames}, {trailing or 'D'}], "
                f"got shape {tuple(extra.shape)}"
            )
    k = config.num_keyframes if num_keyframes is None else num_keyframes
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"num_keyframes must be an int >= 1, got {k!r}")
    rows = []
    for b, n in enumerate(lengths):
        rows.append(
            select_keyframes(
                world_points[b, :n],
                world_points_conf[b, :n],
                k,
                config,
                features=None if features is None else features[b, :n],
                always_include=always_include,
                camera_centers=None if camera_centers is None else camera_centers[b, :n],
            )
        )
    out = torch.full((batch, k), -1, dtype=torch.long, device=world_points.device)
    for b, row in enumerate(rows):
        out[b, : row.numel()] = row
    return out
