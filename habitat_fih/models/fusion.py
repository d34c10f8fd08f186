"""Fusion of VGGT (3D) and DINOv3 (2D) keyframe tokens into LLM-sized visual tokens.

``SpatialFusion`` takes each keyframe's VGGT patch tokens ``[B, F, gh_v, gw_v, Cv]`` (14-px
grid) and DINOv3 patch tokens ``[B, F, gh_d, gw_d, Cd]`` (16-px grid), bilinearly resizes the
DINOv3 grid to VGGT's, and returns ``[B, F, T, out_dim]`` tokens for Qwen2.5-VL plus their grid
``(th, tw)`` with ``T = th * tw <= max_tokens_per_frame``.

Per stream, tokens are normalised (LayerNorm or RMSNorm; VGGT and DINOv3 features live on very
different scales, so each stream gets its own norm), then merged spatially, then projected by a
two-layer MLP (Linear -> GELU -> Linear), in the order of Qwen2.5-VL's own patch merger
(norm -> 2x2 group -> MLP), so the MLP runs on the merged tokens only.

Modes:
- ``concat`` (default, the user's design): the two normalised streams are concatenated on the
  channel axis and one MLP maps ``k * (Cv + Cd)`` to ``out_dim``.
- ``add`` (Spatial-MLLM / JanusVLN style): each stream has its own MLP to ``out_dim`` and the
  result is ``dino + add_scale * vggt`` (JanusVLN uses 0.2 for VGGT on the image path).

Merges:
- ``spatial2x2``: groups each 2x2 neighbourhood into one token with 4x the channels (like
  Qwen's merger; an odd grid is edge-padded first); if the merged grid still exceeds
  ``max_tokens_per_frame`` it is then adaptively average-pooled down to fit.
- ``pool``: adaptive average pooling straight to the largest aspect-preserving grid within
  ``max_tokens_per_frame``.
- ``none``: keep the grid; it must already fit ``max_tokens_per_frame``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

FusionMode = Literal["concat", "add"]
MergeMode = Literal["spatial2x2", "pool", "none"]
NormKind = Literal["layernorm", "rmsnorm"]

_MODES = ("concat", "add")
_MERGES = ("spatial2x2", "pool", "none")
_NORMS = ("layernorm", "rmsnorm")


@dataclass
class FusionConfig:
    """Typed config for :class:`SpatialFusion`.

    Attributes:
        mode: ``concat`` or ``add`` (see the module docstring).
        vggt_dim: channels of the VGGT tokens (2048 for VGGT-1B's aggregator output).
        dino_dim: channels of the DINOv3 tokens (1024 for ViT-L).
        out_dim: LLM hidden size (2048 for Qwen2.5-VL-3B, 3584 for 7B).
        hidden_dim: MLP hidden width; None means ``out_dim``.
        norm: per-stream pre-norm, ``layernorm`` or ``rmsnorm``.
        merge: ``spatial2x2``, ``pool`` or ``none``.
        max_tokens_per_frame: upper bound on tokens per frame after merging (64 keeps a 224²
            frame at 8x8 tokens).
        add_scale: weight of the VGGT projection in ``add`` mode.
        align_corners: passed to the bilinear resize of the DINOv3 grid.
    """

    mode: FusionMode = "concat"
    vggt_dim: int = 2048
    dino_dim: int = 1024
    out_dim: int = 2048
    hidden_dim: int | None = None
    norm: NormKind = "layernorm"
    merge: MergeMode = "spatial2x2"
    max_tokens_per_frame: int = 64
    add_scale: float = 0.2
    align_corners: bool = False

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"FusionConfig.mode must be one of {_MODES}, got {self.mode!r}")
        if self.merge not in _MERGES:
            raise ValueError(f"FusionConfig.merge must be one of {_MERGES}, got {self.merge!r}")
        if self.norm not in _NORMS:
            raise ValueError(f"FusionConfig.norm must be one of {_NORMS}, got {self.norm!r}")
        for name in ("vggt_dim", "dino_dim", "out_dim", "max_tokens_per_frame"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"FusionConfig.{name} must be a positive int, got {value!r}")
        if self.hidden_dim is not None and (
            not isinstance(self.hidden_dim, int) or self.hidden_dim <= 0
        ):
            raise ValueError(
                f"FusionConfig.hidden_dim must be a positive int or None, got {self.hidden_dim!r}"
            )
        if not math.isfinite(self.add_scale):
            raise ValueError(f"FusionConfig.add_scale must be finite, got {self.add_scale!r}")


def resize_grid(
    tokens: torch.Tensor, size: tuple[int, int], align_corners: bool = False
) -> torch.Tensor:
    """Bilinearly resize a token grid.

    Args:
        tokens: ``[N, h, w, C]``.
        size: target ``(H, W)``.

    Returns:
        ``[N, H, W, C]``; ``tokens`` itself when the grid already has that size.
    """
    if tokens.ndim != 4:
        raise ValueError(f"tokens must be [N, h, w, C], got {tuple(tokens.shape)}")
    if tuple(tokens.shape[1:3]) == tuple(size):
        return tokens
    grid = tokens.permute(0, 3, 1, 2)  # [N, C, h, w]
    grid = F.interpolate(grid, size=size, mode="bilinear", align_corners=align_corners)
    return grid.permute(0, 2, 3, 1)  # [N, H, W, C]


def pooled_grid_size(height: int, width: int, max_tokens: int) -> tuple[int, int]:
    """Largest grid ``(th, tw)`` with ``th * tw <= max_tokens``, ``th <= height``,
    ``tw <= width`` that keeps the aspect ratio of ``height x width`` as closely as it can."""
    if height * width <= max_tokens:
        return height, width
    scale = math.sqrt(max_tokens / (height * width))
    th = max(1, min(height, math.floor(height * scale)))
    tw = max(1, min(width, math.floor(width * scale)))
    while th * tw > max_tokens:  # rounding guard
        if th >= tw:
            th -= 1
        else:
            tw -= 1
    # grow one side while room remains (e.g. very thin grids)
    while True:
        if th < height and (th + 1) * tw <= max_tokens and th / tw <= height / width:
            th += 1
        elif tw < width and th * (tw + 1) <= max_tokens:
            tw += 1
        else:
            break
    return th, tw


def merge_tokens(
    tokens: torch.Tensor, merge: MergeMode, max_tokens: int
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Spatially merge a token grid to at most ``max_tokens`` tokens.

    Args:
        tokens: ``[N, h, w, C]``.
        merge: ``spatial2x2`` (channels become ``4 * C``), ``pool`` or ``none``.

    Returns:
        ``([N, th, tw, C'], (th, tw))`` with ``th * tw <= max_tokens``.
    """
    n, h, w, c = tokens.shape
    if merge == "spatial2x2":
        if h % 2 or w % 2:  # edge-pad odd grids to even
            grid = tokens.permute(0, 3, 1, 2)  # [N, C, h, w]
            grid = F.pad(grid, (0, w % 2, 0, h % 2), mode="replicate")
            tokens = grid.permute(0, 2, 3, 1)  # [N, h', w', C]
            h, w = h + h % 2, w + w % 2
        tokens = tokens.reshape(n, h // 2, 2, w // 2, 2, c)  # [N, h/2, 2, w/2, 2, C]
        tokens = tokens.permute(0, 1, 3, 2, 4, 5)  # [N, h/2, w/2, 2, 2, C]
        tokens = tokens.reshape(n, h // 2, w // 2, 4 * c)  # [N, h/2, w/2, 4C]
        h, w = h // 2, w // 2
        if h * w <= max_tokens:
            return tokens, (h, w)
    elif merge == "none":
        if h * w > max_tokens:
            raise ValueError(
                f"merge='none' keeps the {h}x{w} grid, above max_tokens_per_frame={max_tokens}"
            )
        return tokens, (h, w)
    th, tw = pooled_grid_size(h, w, max_tokens)
    if (th, tw) == (h, w):
        return tokens, (h, w)
    grid = F.adaptive_avg_pool2d(tokens.permute(0, 3, 1, 2), (th, tw))  # [N, C', th, tw]
    return grid.permute(0, 2, 3, 1), (th, tw)  # [N, th, tw, C']


class _RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def _norm(kind: NormKind, dim: int) -> nn.Module:
    return nn.LayerNorm(dim) if kind == "layernorm" else _RMSNorm(dim)


def _mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, out_dim))


class SpatialFusion(nn.Module):
    """Learned VGGT + DINOv3 token fusion with a bounded number of tokens per frame."""

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden_dim or config.out_dim
        group = 4 if config.merge == "spatial2x2" else 1  # channel growth from 2x2 grouping
        self.norm_vggt = _norm(config.norm, config.vggt_dim)
        self.norm_dino = _norm(config.norm, config.dino_dim)
        if config.mode == "concat":
            self.mlp = _mlp(group * (config.vggt_dim + config.dino_dim), hidden, config.out_dim)
        else:
            self.mlp_vggt = _mlp(group * config.vggt_dim, hidden, config.out_dim)
            self.mlp_dino = _mlp(group * config.dino_dim, hidden, config.out_dim)

    def output_grid(self, vggt_grid: tuple[int, int]) -> tuple[int, int]:
        """Token grid ``(th, tw)`` produced for a VGGT patch grid ``(gh_v, gw_v)``."""
        h, w = vggt_grid
        merge, cap = self.config.merge, self.config.max_tokens_per_frame
        if merge == "spatial2x2":
            h, w = (h + 1) // 2, (w + 1) // 2
        elif merge == "none":
            if h * w > cap:
                raise ValueError(
                    f"merge='none' keeps the {h}x{w} grid, above max_tokens_per_frame={cap}"
                )
            return h, w
        return pooled_grid_size(h, w, cap)

    def forward(
        self, vggt_tokens: torch.Tensor, dino_tokens: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """Fuse the two feature paths of F frames.

        Args:
            vggt_tokens: ``[B, F, gh_v, gw_v, Cv]`` VGGT patch tokens (``Cv = vggt_dim``).
            dino_tokens: ``[B, F, gh_d, gw_d, Cd]`` DINOv3 patch tokens (``Cd = dino_dim``);
                resized bilinearly to ``(gh_v, gw_v)`` when the grids differ.

        Returns:
            ``(fused, (th, tw))``: ``fused`` is ``[B, F, T, out_dim]`` with ``T = th * tw <=
            max_tokens_per_frame``, tokens row-major over the ``th x tw`` grid.
        """
        cfg = self.config
        if vggt_tokens.ndim != 5 or dino_tokens.ndim != 5:
            raise ValueError(
                "vggt_tokens and dino_tokens must be [B, F, h, w, C], got "
                f"{tuple(vggt_tokens.shape)} and {tuple(dino_tokens.shape)}"
            )
        b, f, gh, gw, cv = vggt_tokens.shape
        if tuple(dino_tokens.shape[:2]) != (b, f):
            raise ValueError(
                f"batch/frame dims differ: vggt {tuple(vggt_tokens.shape[:2])}, "
                f"dino {tuple(dino_tokens.shape[:2])}"
            )
        if cv != cfg.vggt_dim or dino_tokens.shape[-1] != cfg.dino_dim:
            raise ValueError(
                f"channel dims (vggt {cv}, dino {dino_tokens.shape[-1]}) do not match the config "
                f"(vggt_dim {cfg.vggt_dim}, dino_dim {cfg.dino_dim})"
            )
        vggt = self.norm_vggt(vggt_tokens.reshape(b * f, gh, gw, cv))  # [BF, gh, gw, Cv]
        dino = dino_tokens.reshape(b * f, *dino_tokens.shape[2:])  # [BF, gh_d, gw_d, Cd]
        dino = resize_grid(dino.to(vggt.dtype), (gh, gw), cfg.align_corners)  # [BF, gh, gw, Cd]
        dino = self.norm_dino(dino)
        cap = cfg.max_tokens_per_frame
        if cfg.mode == "concat":
            both = torch.cat([vggt, dino], dim=-1)  # [BF, gh, gw, Cv + Cd]
            merged, (th, tw) = merge_tokens(both, cfg.merge, cap)  # [BF, th, tw, k(Cv+Cd)]
            fused = self.mlp(merged)  # [BF, th, tw, out_dim]
        else:
            vggt_m, (th, tw) = merge_tokens(vggt, cfg.merge, cap)  # [BF, th, tw, k Cv]
            dino_m, _ = merge_tokens(dino, cfg.merge, cap)  # [BF, th, tw, k Cd]
            fused = self.mlp_dino(dino_m) + cfg.add_scale * self.mlp_vggt(vggt_m)
        return fused.reshape(b, f, th * tw, cfg.out_dim), (th, tw)  # [B, F, T, out_dim]
