"""The per-frame encoders of `FIHModel.forward`: VGGT over the history and DINOv3 on the chosen
frames, batched (training) or with a `FrameCache` per sample (acting step by step).

VGGT (`encode_history`): the valid frames of each sample, grouped by their count, through
`VGGT.forward` with the heads the model needs (`vggt_heads`) and, for
``vggt_history: causal_cache``, the block-causal mask; with caches, per sample: the causal
stream (each frame aggregated once), or for ``full`` VGGT on the whole history from cached
per-frame patch embeddings. DINOv3 (`encode_dinov3`): one batch of the frames no cache holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.dinov3_backbone import DINOv3Backbone
from habitat_fih.models.frame_cache import FrameCache
from habitat_fih.models.vggt.model import VGGT
from habitat_fih.models.vggt.streaming import CausalVGGTStream

__all__ = ["GEOMETRY_KEYS", "encode_dinov3", "encode_history", "vggt_heads"]

#: VGGT outputs `encode_history` returns per frame (those of the heads that ran).
GEOMETRY_KEYS = ("pose_enc", "depth", "depth_conf", "world_points", "world_points_conf")


def vggt_heads(config: FIHModelConfig) -> tuple[str, ...]:
    """The VGGT heads the model runs (`FIHModelConfig.vggt_heads`): the point head always (the
    keyframe sampler reads world points), the camera head for ``geometry_prior: vggt`` or
    ``vggt_heads: all``, the depth head for ``all``."""
    heads = ["point"]
    if config.geometry_prior == "vggt" or config.vggt_heads == "all":
        heads.append("camera")
    if config.vggt_heads == "all":
        heads.append("depth")
    return tuple(heads)


def causal_window(config: FIHModelConfig) -> int | None:
    """W for ``vggt_history: causal_cache``, else None (VGGT's full attention)."""
    return config.vggt_cache_window if config.vggt_history == "causal_cache" else None


def _check_increasing(indices: Tensor, mask: Tensor) -> None:
    for row in range(indices.shape[0]):
        values = indices[row][mask[row]]
        if values.numel() > 1 and not bool((values[1:] > values[:-1]).all()):
            raise ValueError(
                "vggt_history='causal_cache' needs each sample's valid frames in increasing "
                f"frame-index order (the causal mask follows it), sample {row} has "
                f"{values.tolist()}"
            )


def _place(
    store: dict[str, Tensor], key: str, value: Tensor, rows: Tensor, slots: Tensor, shape: tuple
) -> None:
    """store[key][rows[:, None], slots] = value, creating a zero [B, S, ...] tensor first."""
    if key not in store:
        store[key] = value.new_zeros(*shape, *value.shape[2:])
    store[key][rows[:, None], slots] = value


def encode_history(
    vggt: VGGT,
    config: FIHModelConfig,
    frames: Tensor,
    frame_mask: Tensor,
    frame_indices: Tensor,
    caches: Sequence[FrameCache] | None = None,
) -> tuple[dict[str, Tensor], Tensor]:
    """VGGT over each sample's valid frames (in slot order, or with ``vggt_reference:
    current`` the current view - the last valid slot - first, then the rest in slot order; the
    outputs are placed back at their slots either way).

    Args:
        frames: [B, S, 3, R, R] in [0, 1]; frame_mask [B, S] bool; frame_indices [B, S] long.
        caches: one `FrameCache` per sample (inference), or None.

    Returns:
        padded geometry ([B, S, ...] per `GEOMETRY_KEYS` entry that ran, zeros at invalid
        slots) and the patch tokens of layer `config.vggt_layer` as [B, S, gh, gw, 2C].
    """
    b, s, _, h, w = frames.shape
    p = config.vggt.patch_size
    gh, gw = h // p, w // p
    device = frames.device
    heads = vggt_heads(config)
    window = causal_window(config)
    geometry: dict[str, Tensor] = {}
    tokens_out: dict[str, Tensor] = {}
    if caches is None and window is not None:
        _check_increasing(frame_indices, frame_mask)
    counts = frame_mask.sum(1).tolist()
    if caches is not None and window is not None:
        groups = [[i] for i in range(b)]  # one causal stream per sample
    else:  # samples with the same frame count share one VGGT call
        groups = [[i for i, c in enumerate(counts) if c == n] for n in sorted(set(counts))]
    for rows in groups:
        slots = torch.stack([frame_mask[i].nonzero().flatten() for i in rows])  # [b_g, n]
        if config.vggt_reference == "current":  # the current view (last valid) goes first
            slots = slots.roll(1, dims=1)
        row_t = torch.tensor(rows, device=device)
        group = frames[row_t[:, None], slots]  # [b_g, n, 3, R, R]
        if caches is None:
            out = vggt(group, heads=heads, causal_window=window)
        elif window is None:  # full attention over cached per-frame patch embeddings
            patches = torch.cat(
                [
                    cached_patches(vggt, caches[i], group[j], frame_indices[i][slots[j]])
                    for j, i in enumerate(rows)
                ]
            )  # [b_g * n, h*w, C]
            out = vggt(group, heads=heads, patches=patches)
        else:
            out = causal_step(
                vggt,
                config,
                group[0],
                frame_indices[rows[0]][slots[0]],
                caches[rows[0]],
                heads,
                window,
            )
        layer = out["aggregated_tokens"][config.vggt_layer]  # [b_g, n, P, 2C]
        tokens = layer[:, :, vggt.aggregator.patch_start_idx :]  # [b_g, n, gh*gw, 2C]
        tokens = tokens.reshape(len(rows), -1, gh, gw, tokens.shape[-1])
        _place(tokens_out, "tokens", tokens, row_t, slots, (b, s))
        for key in GEOMETRY_KEYS:
            if key in out:
                _place(geometry, key, out[key], row_t, slots, (b, s))
    return geometry, tokens_out["tokens"]


def cached_patches(vggt: VGGT, cache: FrameCache, images: Tensor, indices: Tensor) -> Tensor:
    """VGGT's patch embeddings [n, h*w, C] of one sample's frames [n, 3, R, R], each computed
    once per frame (`FrameCache.patches`)."""
    index_list = [int(i) for i in indices.tolist()]
    cache.check(index_list, images)
    todo = cache.missing(cache.patches, index_list)
    if todo:
        where = {index: j for j, index in enumerate(index_list)}
        fresh = vggt.aggregator.embed(images[[where[i] for i in todo]])  # [m, h*w, C]
        cache.patches.update(zip(todo, fresh, strict=True))
    return torch.stack([cache.patches[i] for i in index_list])


def causal_step(
    vggt: VGGT,
    config: FIHModelConfig,
    images: Tensor,
    indices: Tensor,
    cache: FrameCache,
    heads: tuple[str, ...],
    window: int,
) -> dict[str, Tensor]:
    """One sample's frames [n, 3, R, R] through its causal stream (new frames aggregated, the
    rest read back) -> VGGT's output layout for batch 1: geometry [1, n, ...] and
    ``aggregated_tokens`` (only `config.vggt_layer` filled)."""
    index_list = [int(i) for i in indices.tolist()]
    cache.check(index_list, images)
    if cache.stream is None:
        cache.stream = CausalVGGTStream(
            vggt, window, [config.vggt_layer], heads, config.frame_cache_capacity
        )
    cache.stream.add(images, index_list)
    found, tokens = cache.stream.gather(index_list)
    depth = vggt.aggregator.depth
    layers: list[Tensor | None] = [None] * depth
    layers[config.vggt_layer % depth] = tokens[config.vggt_layer % depth][None]
    return {**{key: value[None] for key, value in found.items()}, "aggregated_tokens": layers}


def encode_dinov3(
    dinov3: DINOv3Backbone,
    images: Tensor,
    keys: Sequence[tuple[int, int]] | None = None,
    caches: Sequence[FrameCache] | None = None,
) -> Tensor:
    """DINOv3 tokens [N, gh, gw, Cd] of images [N, 3, R, R]; with caches, `keys` names each
    image (sample row, frame index) and only images no cache holds are encoded."""
    if caches is None:
        return dinov3(images)
    assert keys is not None
    todo: list[int] = []
    seen: set[tuple[int, int]] = set()
    for j, (row, index) in enumerate(keys):
        cache = caches[row]
        if index in cache.dino or (row, index) in seen:
            cache.hits += 1
            continue
        seen.add((row, index))
        cache.misses += 1
        todo.append(j)
    if todo:
        fresh = dinov3(images[todo])  # [m, gh, gw, Cd]
        for j, value in zip(todo, fresh, strict=True):
            row, index = keys[j]
            caches[row].dino[index] = value
    return torch.stack([caches[row].dino[index] for row, index in keys])
