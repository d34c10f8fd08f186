"""Scores of a keyframe selection, to compare the samplers (`fih-infer --benchmark`).

For a selection ``T`` (K frames) out of ``S`` frames with voxel sets ``V_i`` (the samplers' own
voxelisation, :func:`habitat_fih.models.sampling.voxelize_frames`):

* ``coverage`` = ``|U_{i in T} V_i| / |U_i V_i|``: the share of everything the video saw that
  the keyframes see (1 when no frame has a reliable point);
* ``diversity`` = ``1 - mean_{i < j in T} cos(V_i, V_j)`` with ``cos = |V_i ∩ V_j| /
  sqrt(|V_i| |V_j|)`` (the ``enhanced`` sampler's default descriptor); 1 for K < 2, and a pair
  with an empty set counts as cosine 0;
* ``novelty`` = the mean over ``T`` of the gap to the nearest other keyframe in time, divided by
  the even spacing ``(S - 1) / (K - 1)``: 1 for evenly spaced keyframes, towards 0 when they
  bunch up (0 for K < 2).

All three lie in [0, 1] and are computed the same way for every sampler, so they compare
``fast`` / ``quality`` / ``enhanced`` on one footing (``enhanced`` maximises its own greedy
versions of them step by step, not these totals). `jaccard` is the agreement of two selections.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from habitat_fih.models.sampling import SamplerConfig, voxelize_frames

__all__ = ["jaccard", "selection_scores"]


def selection_scores(
    world_points: Tensor,
    world_points_conf: Tensor,
    selected: Sequence[int],
    config: SamplerConfig | None = None,
) -> dict[str, float]:
    """``{"coverage", "diversity", "novelty"}`` of frames `selected` (positions in ``[0, S)``)
    of one video's geometry ``[S, H, W, 3]`` / ``[S, H, W]`` (module docstring)."""
    config = config or SamplerConfig()
    num_frames = int(world_points.shape[0])
    chosen = sorted({int(i) for i in selected})
    if not chosen or chosen[0] < 0 or chosen[-1] >= num_frames:
        raise ValueError(f"selected must be non-empty positions in [0, {num_frames}), got {selected}")
    occ = voxelize_frames(world_points, world_points_conf, config).occupancy  # [S, V]
    total = int(occ.any(0).sum())
    sel = occ[chosen]  # [K, V]
    coverage = float(sel.any(0).sum()) / total if total else 1.0
    k = len(chosen)
    if k < 2:
        return {"coverage": coverage, "diversity": 1.0, "novelty": 0.0}
    counts = sel.sum(1).double()  # [K]
    inter = sel.double() @ sel.double().T  # [K, K]
    norm = (counts[:, None] * counts[None, :]).sqrt()
    cos = torch.where(norm > 0, inter / norm.clamp_min(1e-12), torch.zeros_like(inter))
    pairs = torch.triu_indices(k, k, offset=1)
    diversity = 1.0 - float(cos[pairs[0], pairs[1]].mean())
    t = torch.tensor(chosen, dtype=torch.float64)
    gaps = (t[:, None] - t[None, :]).abs() + torch.diag(torch.full((k,), float("inf")))
    spacing = (num_frames - 1) / (k - 1)
    novelty = float(gaps.min(1).values.mean()) / spacing
    return {"coverage": coverage, "diversity": diversity, "novelty": min(novelty, 1.0)}


def jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    """``|A ∩ B| / |A ∪ B|`` of two index selections (1 for two empty ones)."""
    sa, sb = {int(i) for i in a}, {int(i) for i in b}
    union = sa | sb
    return len(sa & sb) / len(union) if union else 1.0
