"""Causal VGGT over a growing frame sequence: each frame is aggregated once, when it arrives.

`CausalVGGTStream` is the streaming form of `Aggregator.forward(..., causal_window=W)`
(`FIHModelConfig.vggt_history: causal_cache`, a JanusVLN-style history cache): in every global
block a new frame's queries attend to the keys / values of the stream's FIRST frame (VGGT's
reference frame), of the W most recent earlier frames and of itself. Those keys / values are
kept per block and per frame (the cache keeps the first frame and the W most recent ones, the
only ones a later frame can attend to), so a new frame costs one frame's patch embedding, its
frame blocks and global blocks over (W + 2) frames, and its DPT heads, instead of VGGT over the
whole history. Per processed frame the stream keeps what the FIH model reads later: the patch
tokens of the layers it asks for, the world points (and depth) of the DPT heads and the last
layer's camera token (the camera head runs across the requested frames at `gather`, as VGGT's
does: its trunk attends across frames and is cheap).

Frames fed in increasing index order, one call per step or all at once, give the batched causal
forward's numbers (tests/models/test_vggt_streaming.py). A frame that arrives after later ones
(possible when the caller's history is a subsample) attends to the cached frames of lower
index; frames already processed are never revised (that is what causal means here).

Memory per frame: the per-block keys / values of the first + W cached frames
(2 x depth x P x C values each; VGGT-1B at 224²: 24 x 2 x 261 x 1024, ~25 MB in bf16) and the
per-frame outputs of at most `capacity` frames (least recently used dropped first; a dropped
frame that is asked for again is recomputed against the current cache).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from habitat_fih.models.vggt.aggregator import patch_positions
from habitat_fih.models.vggt.model import VGGT

__all__ = ["CausalVGGTStream"]


@dataclass
class _Frame:
    """What the stream keeps of one processed frame."""

    tokens: dict[int, Tensor]  # layer -> [P, 2C]
    camera: Tensor  # [2C], camera token of the last layer
    maps: dict[str, Tensor] = field(default_factory=dict)  # head output -> [H, W, ...]


class CausalVGGTStream:
    """Per-sequence causal VGGT state (one per environment / video; `reset` per episode).

    Args:
        vggt: the model (its aggregator, heads and patch size are used; it is not copied).
        window: W, the earlier frames a new frame attends to besides the first one.
        keep_layers: aggregator layers whose tokens `gather` returns (negative = from the end).
        heads: heads to run (``point``, ``depth``, ``camera``), as `VGGT.forward`'s `heads`.
        capacity: processed frames whose outputs are kept (least recently used dropped).
    """

    def __init__(
        self,
        vggt: VGGT,
        window: int,
        keep_layers: Sequence[int],
        heads: Collection[str] = ("point",),
        capacity: int = 64,
    ) -> None:
        depth = vggt.aggregator.depth
        if window < 0:
            raise ValueError(f"causal window must be >= 0, got {window}")
        if capacity < 1:
            raise ValueError(f"stream capacity must be >= 1, got {capacity}")
        self.vggt = vggt
        self.window = int(window)
        self.keep_layers = sorted({int(i) % depth for i in keep_layers})
        self.heads = set(heads)
        self.capacity = int(capacity)
        self.reset()

    def reset(self) -> None:
        """Forget every frame (a new episode / video)."""
        self.first: int | None = None
        # per cached frame index: per block (k, v), each [1, heads, P, d]
        self.kv: dict[int, list[tuple[Tensor, Tensor]]] = {}
        self.frames: OrderedDict[int, _Frame] = OrderedDict()

    def __contains__(self, index: int) -> bool:
        return int(index) in self.frames

    # ------------------------------------------------------------------ processing
    def _layers_needed(self) -> list[int]:
        depth = self.vggt.aggregator.depth
        need = set(self.keep_layers) | {depth - 1}
        for name in ("point", "depth"):
            head = getattr(self.vggt, f"{name}_head")
            if head is not None and name in self.heads:
                need |= {int(i) % depth for i in head.layer_indices}
        return sorted(need)

    def _attend_mask(self, cached: list[int], new: list[int], device: torch.device) -> Tensor:
        """[n, M + n] bool frame mask of the new frames (queries) over cached + new keys."""
        keys = cached + new
        mask = torch.zeros(len(new), len(keys), dtype=torch.bool)
        for q, index in enumerate(new):
            earlier = sorted((j for j, k in enumerate(keys) if k < index), key=lambda j: keys[j])
            allowed = set(earlier[max(0, len(earlier) - self.window) :])
            allowed.add(len(cached) + q)
            if self.first is not None and self.first in keys:
                allowed.add(keys.index(self.first))
            mask[q, sorted(allowed)] = True
        return mask.to(device)

    @torch.no_grad()
    def add(self, images: Tensor, indices: Sequence[int]) -> None:
        """Process the frames of `indices` not seen yet (in increasing index order).

        Args:
            images: [n, 3, H, W] in [0, 1], the frames of `indices` (already-processed ones are
                skipped; their images are not read).
            indices: n distinct integer frame indices (e.g. episode steps).
        """
        indices = [int(i) for i in indices]
        if images.ndim != 4 or images.shape[0] != len(indices):
            raise ValueError(
                f"images must be [n={len(indices)}, 3, H, W], got shape {tuple(images.shape)}"
            )
        if len(set(indices)) != len(indices):
            raise ValueError(f"frame indices must be distinct, got {indices}")
        todo = sorted((i, j) for j, i in enumerate(indices) if i not in self.frames)
        if not todo:
            return
        new = [i for i, _ in todo]
        x = self.vggt.check_images(images[[j for _, j in todo]][None])[0]  # [n, 3, H, W]
        agg = self.vggt.aggregator
        n, _, height, width = x.shape
        h, w = height // agg.patch_size, width // agg.patch_size
        first = torch.zeros(n, dtype=torch.bool, device=x.device)
        if self.first is None:
            self.first = new[0]
            first[0] = True
        tokens = agg.frame_tokens(agg.embed(x), first)  # [n, P, C]
        P, C = tokens.shape[1:]
        cached = sorted(self.kv)
        frame_mask = self._attend_mask(cached, new, x.device)  # [n, M + n]
        mask = None  # one new frame after the eviction: it may attend to every cached one
        if not bool(frame_mask.all()):
            mask = frame_mask.repeat_interleave(P, 0).repeat_interleave(P, 1)  # [n*P, (M+n)*P]
        pos = patch_positions(h, w, agg.patch_start_idx, x.device)  # [P, 2]
        pos_frame = agg.rope_tables(pos[None])  # for [n, P] tokens
        pos_global = agg.rope_tables(pos.repeat(n, 1)[None])  # for [1, n*P] tokens
        layers = self._layers_needed()
        outputs: dict[int, Tensor] = {}
        new_kv: list[list[tuple[Tensor, Tensor]]] = [[] for _ in new]
        for layer, (frame_block, global_block) in enumerate(
            zip(agg.frame_blocks, agg.global_blocks, strict=True)
        ):
            tokens = frame_block(tokens, pos=pos_frame)  # [n, P, C]
            frame_out = tokens
            past_k = torch.cat([self.kv[i][layer][0] for i in cached], 2) if cached else None
            past_v = torch.cat([self.kv[i][layer][1] for i in cached], 2) if cached else None
            flat, k, v = global_block.forward_cached(
                tokens.reshape(1, n * P, C), pos_global, past_k, past_v, mask
            )  # [1, n*P, C]; k, v [1, heads, n*P, d]
            for f in range(n):
                new_kv[f].append((k[:, :, f * P : (f + 1) * P], v[:, :, f * P : (f + 1) * P]))
            tokens = flat.reshape(n, P, C)
            if layer in layers:
                outputs[layer] = torch.cat([frame_out, tokens], dim=-1)  # [n, P, 2C]
        maps = self._run_dense_heads(outputs, (height, width))
        depth = agg.depth
        for f, index in enumerate(new):
            self.kv[index] = new_kv[f]
            self.frames[index] = _Frame(
                tokens={layer: outputs[layer][f] for layer in self.keep_layers},
                camera=outputs[depth - 1][f, 0],
                maps={key: value[f] for key, value in maps.items()},
            )
        self._evict(keep=set(indices))

    def _run_dense_heads(
        self, outputs: dict[int, Tensor], image_hw: tuple[int, int]
    ) -> dict[str, Tensor]:
        """DPT heads on the new frames' tokens -> {"world_points": [n, H, W, 3], ...}."""
        depth = self.vggt.aggregator.depth
        layer_list = [outputs[i][None] if i in outputs else None for i in range(depth)]
        start = self.vggt.aggregator.patch_start_idx
        maps: dict[str, Tensor] = {}
        device_type = next(iter(outputs.values())).device.type
        with self.vggt.no_autocast(device_type):
            if self.vggt.point_head is not None and "point" in self.heads:
                points, conf = self.vggt.point_head(layer_list, image_hw, start)
                maps["world_points"], maps["world_points_conf"] = points[0], conf[0]
            if self.vggt.depth_head is not None and "depth" in self.heads:
                d, conf = self.vggt.depth_head(layer_list, image_hw, start)
                maps["depth"], maps["depth_conf"] = d[0], conf[0]
        return maps

    def _evict(self, keep: set[int]) -> None:
        """Keep the keys / values of the first + W most recent frames, and at most
        `capacity` frames' outputs (those of `keep` always)."""
        recent = sorted(self.kv)[-self.window :] if self.window else []
        stay = set(recent) | ({self.first} if self.first is not None else set())
        for index in [i for i in self.kv if i not in stay]:
            del self.kv[index]
        for index in sorted(keep & set(self.frames)):
            self.frames.move_to_end(index)  # most recently used last
        while len(self.frames) > max(self.capacity, len(keep)):
            oldest = next(iter(self.frames))
            if oldest in keep:
                break
            del self.frames[oldest]

    # ------------------------------------------------------------------ reading
    @torch.no_grad()
    def gather(self, indices: Sequence[int]) -> tuple[dict[str, Tensor], dict[int, Tensor]]:
        """Outputs of processed frames, in the order of `indices`.

        Returns:
            (geometry, tokens): geometry holds [S, ...] per head output (``world_points``
            [S, H, W, 3], ``world_points_conf`` [S, H, W], ``depth`` [S, H, W, 1],
            ``depth_conf``; ``pose_enc`` [S, 9] from the camera head run across these frames,
            when asked for); tokens maps each kept layer to [S, P, 2C].
        """
        missing = [int(i) for i in indices if int(i) not in self.frames]
        if missing:
            raise KeyError(f"frames {missing} were not added to the stream")
        frames = [self.frames[int(i)] for i in indices]
        geometry = {key: torch.stack([f.maps[key] for f in frames]) for key in frames[0].maps}
        if self.vggt.camera_head is not None and "camera" in self.heads:
            camera = torch.stack([f.camera for f in frames])[None, :, None]  # [1, S, 1, 2C]
            with self.vggt.no_autocast(camera.device.type):
                geometry["pose_enc"] = self.vggt.camera_head([camera])[-1][0]  # [S, 9]
        tokens = {
            layer: torch.stack([f.tokens[layer] for f in frames]) for layer in self.keep_layers
        }
        return geometry, tokens
