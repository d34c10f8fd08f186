"""Features of the pretraining cross-frame alignment term, gathered at token-cell pairs.

`alignment_features` takes the model's per-slot token features, the keyframe slots the sampler
chose and, for EVERY slot of the input's S axis, N (current-view cell, keyframe cell) pairs with
their validity (made from simulator geometry by `habitat_fih.trainers.correspondences`), and
returns, per (sample, keyframe slot), the keyframe-cell features ``feats_a`` and the
current-view-cell features ``feats_b`` of the chosen keyframe's pairs: the inputs of
`habitat_fih.models.losses.feature_alignment_loss` (one InfoNCE row per pair of frames).

Which features: `FIHOutput.fused_tokens`, the fusion of VGGT's and DINOv3's patch tokens of each
frame that the LLM reads — the design aligns the fused spatial features, and they are what the
pretraining stage trains (fusion and heatmap head; the LLM is frozen there). They are per frame,
so aligning them asks the frame encoder itself to give the same surface the same feature in two
views; the LLM's visual hidden states could instead match through attention across frames.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["alignment_features"]


def alignment_features(
    tokens: Tensor, keyframe_slots: Tensor, pairs: Tensor, pair_mask: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Per (sample, keyframe slot) the features of its pairs with the current view.

    Args:
        tokens: [B, K + 1, T, D] per-slot token features (keyframe slots, the current view last;
            `FIHOutput.fused_tokens`).
        keyframe_slots: [B, K] position of each keyframe in the input's S axis, -1 = padding.
        pairs: [B, S, N, 2] integer flat token indices (current-view cell, keyframe cell) of each
            input slot's pairs (row-major over the token grid).
        pair_mask: [B, S, N] bool, False at padding pairs.

    Returns:
        ``feats_a`` [B*K, N, D] (keyframe cells), ``feats_b`` [B*K, N, D] (current-view cells)
        and ``mask`` [B*K, N] (False for padding pairs and padding keyframe slots); row
        ``b * K + k`` is keyframe slot k of sample b.

    Raises:
        ValueError: mismatched shapes, or a valid pair's cell outside ``[0, T)``.
    """
    b, kp1, t, d = tokens.shape
    k = kp1 - 1
    if tuple(keyframe_slots.shape) != (b, k):
        raise ValueError(
            f"keyframe_slots must be [B={b}, K={k}], got shape {tuple(keyframe_slots.shape)}"
        )
    if pairs.dim() != 4 or pairs.shape[0] != b or pairs.shape[-1] != 2:
        raise ValueError(f"pairs must be [B={b}, S, N, 2], got shape {tuple(pairs.shape)}")
    if tuple(pair_mask.shape) != tuple(pairs.shape[:-1]):
        raise ValueError(
            f"pair mask must be {tuple(pairs.shape[:-1])} like pairs, got {tuple(pair_mask.shape)}"
        )
    device = tokens.device
    slots = keyframe_slots.to(device).long()
    pairs, pair_mask = pairs.to(device).long(), pair_mask.to(device).bool()
    rows = torch.arange(b, device=device)[:, None]
    chosen = pairs[rows, slots.clamp_min(0)]  # [B, K, N, 2]
    mask = pair_mask[rows, slots.clamp_min(0)] & (slots >= 0)[..., None]  # [B, K, N]
    bad = mask & ((chosen < 0) | (chosen >= t)).any(-1)
    if bool(bad.any()):
        raise ValueError(
            f"alignment pairs index token cells outside [0, {t}) (the model's token grid has "
            f"{t} cells): were they made for another grid?"
        )
    chosen = torch.where(mask[..., None], chosen, torch.zeros_like(chosen))
    n = chosen.shape[2]
    key_idx = chosen[..., 1, None].expand(b, k, n, d)  # [B, K, N, D]
    cur_idx = chosen[..., 0, None].expand(b, k, n, d)
    feats_a = tokens[:, :k].gather(2, key_idx)  # keyframe cells
    feats_b = tokens[:, k, None].expand(b, k, t, d).gather(2, cur_idx)  # current-view cells
    return feats_a.reshape(b * k, n, d), feats_b.reshape(b * k, n, d), mask.reshape(b * k, n)
