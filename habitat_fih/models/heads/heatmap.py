"""Frame-indexed heatmap head: one map per keyframe, drawn on the CURRENT view.

For every keyframe ``k`` the head answers "where, in the current view, is what keyframe ``k``
saw?" (with ``out_channels = C > 1``, C maps per keyframe, one per target kind, e.g.
covisibility and the keyframe camera's position; they share everything but the last 1x1 conv).
It is cross-frame by construction:

1. current-view tokens ``[B, Tc, D]`` and keyframe tokens ``[B, K, Tk, D]`` (LLM hidden states)
   are layer-normalised and projected to ``hidden_dim``; a sinusoidal embedding of each
   keyframe's ORIGINAL frame index is added to its tokens (optional);
2. per keyframe, multi-head cross-attention of the current-view tokens (queries) to that
   keyframe's tokens (keys / values), plus the per-head maximum query-key correlation (a
   direct "is this pixel seen in the keyframe" cue);
3. ``[current, attended, max-correlation]`` is fused per token, laid out on the current view's
   ``(gh, gw)`` token grid (row-major) and decoded by a small conv / bilinear-upsampling
   decoder (GroupNorm, so each map is normalised on its own) to ``out_size`` logits;
4. optionally (``prior_channels > 0``) per-keyframe geometric prior maps at ``out_size``
   (`habitat_fih.models.geometry_prior.frustum_prior`) are concatenated to the decoder's last
   features and mixed by one more conv block before the logits, plus a direct 1x1 path from
   the prior to the logits.

Keyframes never interact: map ``k`` depends only on keyframe ``k``'s states, its frame index
and the current view's states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FrameIndexedHeatmapHead", "HeatmapHeadConfig", "HeatmapOutput"]


@dataclass
class HeatmapHeadConfig:
    """Settings of :class:`FrameIndexedHeatmapHead`.

    Attributes:
        input_dim: ``D`` of the incoming token states (the LLM hidden size).
        hidden_dim: width of the cross-attention projections.
        num_heads: attention heads (must divide ``hidden_dim``).
        fuse_channels: channels of the per-token fused features fed to the decoder.
        decoder_channels: channels of each decoder stage; every stage first upsamples x2
            (bilinear, capped at ``out_size``) while the map is smaller than ``out_size``.
        out_size: ``(h, w)`` of the output logits (default 64x64).
        use_frame_index_embedding: add a sinusoidal embedding of the keyframe's original frame
            index to its tokens.
        dropout: dropout on the attention weights (0 = off).
        prior_channels: number of per-keyframe prior maps the forward pass takes
            (0 = none; set by `FIHModelConfig.geometry_prior`).
        out_channels: logit maps per keyframe, one per target kind (1 = the covisibility map
            only; set by `FIHModelConfig.target_kinds`). The last 1x1 conv (and the prior's
            skip path) gives this many channels; everything before is shared.
    """

    input_dim: int
    hidden_dim: int = 256
    num_heads: int = 8
    fuse_channels: int = 128
    decoder_channels: tuple[int, ...] = (64, 32)
    out_size: tuple[int, int] = (64, 64)
    use_frame_index_embedding: bool = True
    dropout: float = 0.0
    prior_channels: int = 0
    out_channels: int = 1

    def __post_init__(self) -> None:
        for name in ("input_dim", "hidden_dim", "num_heads", "fuse_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"HeatmapHeadConfig.{name} must be an int >= 1, got {value!r}")
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                f"HeatmapHeadConfig.hidden_dim={self.hidden_dim} must be divisible by "
                f"num_heads={self.num_heads}"
            )
        self.decoder_channels = tuple(self.decoder_channels)
        if any(not isinstance(c, int) or c < 1 for c in self.decoder_channels):
            raise ValueError(
                f"HeatmapHeadConfig.decoder_channels must be ints >= 1, got {self.decoder_channels}"
            )
        self.out_size = tuple(self.out_size)
        if len(self.out_size) != 2 or any(not isinstance(s, int) or s < 1 for s in self.out_size):
            raise ValueError(
                f"HeatmapHeadConfig.out_size must be two ints >= 1, got {self.out_size}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"HeatmapHeadConfig.dropout must be in [0, 1), got {self.dropout}")
        if not isinstance(self.prior_channels, int) or self.prior_channels < 0:
            raise ValueError(
                f"HeatmapHeadConfig.prior_channels must be an int >= 0, got {self.prior_channels!r}"
            )
        c = self.out_channels
        if isinstance(c, bool) or not isinstance(c, int) or c < 1:
            raise ValueError(f"HeatmapHeadConfig.out_channels must be an int >= 1, got {c!r}")


@dataclass
class HeatmapOutput:
    """Result of :class:`FrameIndexedHeatmapHead`.

    Attributes:
        logits: ``[B, K, h, w]`` map logits (padding slots hold finite, meaningless values) of
            the FIRST output channel.
        frame_indices: ``[B, K]`` original frame indices, ``-1`` for padding.
        channel_logits: ``[B, K, C, h, w]`` logits of every channel (``C = out_channels``;
            ``[:, :, 0]`` is `logits`); None from a head with one channel.
    """

    logits: Tensor
    frame_indices: Tensor
    channel_logits: Tensor | None = None

    @property
    def valid(self) -> Tensor:
        """``[B, K]`` bool, False for padding slots."""
        return self.frame_indices >= 0

    def to_frame_dicts(self, activation: str = "none") -> list[dict[int, Tensor]]:
        """Per batch element ``{original_frame_index: map [h, w]}``, padding skipped.

        ``activation``: ``"none"`` (logits), ``"sigmoid"`` (per-pixel probability) or
        ``"softmax"`` (a distribution over the map's pixels).
        """
        if activation == "none":
            maps = self.logits
        elif activation == "sigmoid":
            maps = torch.sigmoid(self.logits)
        elif activation == "softmax":
            flat = self.logits.flatten(2).softmax(-1)  # [B, K, h*w]
            maps = flat.view_as(self.logits)
        else:
            raise ValueError(
                f"activation must be 'none', 'sigmoid' or 'softmax', got {activation!r}"
            )
        out: list[dict[int, Tensor]] = []
        for b in range(maps.shape[0]):
            idx = self.frame_indices[b].tolist()
            out.append({int(i): maps[b, k] for k, i in enumerate(idx) if i >= 0})
        return out


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class _ConvBlock(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(nn.Conv2d(in_ch, out_ch, 3, padding=1), _group_norm(out_ch), nn.GELU())


def _sinusoidal(positions: Tensor, dim: int) -> Tensor:
    """``[...]`` integer positions -> ``[..., dim]`` sin/cos embedding."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, device=positions.device, dtype=torch.float32) / half
    )
    angles = positions.float()[..., None] * freqs  # [..., half]
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class FrameIndexedHeatmapHead(nn.Module):
    """Per-keyframe heatmaps on the current view (see the module docstring)."""

    def __init__(self, config: HeatmapHeadConfig) -> None:
        super().__init__()
        self.config = config
        d, hd = config.input_dim, config.hidden_dim
        self.num_heads = config.num_heads
        self.head_dim = hd // config.num_heads
        self.cur_norm = nn.LayerNorm(d)
        self.key_norm = nn.LayerNorm(d)
        self.cur_proj = nn.Linear(d, hd)
        self.q_proj = nn.Linear(hd, hd)
        self.k_proj = nn.Linear(d, hd)
        self.v_proj = nn.Linear(d, hd)
        self.index_proj = nn.Linear(hd, hd) if config.use_frame_index_embedding else None
        self.attn_drop = nn.Dropout(config.dropout)
        self.out_proj = nn.Linear(hd, hd)
        self.fuse = nn.Sequential(
            nn.Linear(2 * hd + config.num_heads, config.fuse_channels), nn.GELU()
        )
        self.stem = _ConvBlock(config.fuse_channels, config.fuse_channels)
        stages = []
        prev = config.fuse_channels
        for ch in config.decoder_channels:
            stages.append(_ConvBlock(prev, ch))
            prev = ch
        self.stages = nn.ModuleList(stages)
        p = config.prior_channels
        self.prior_block = _ConvBlock(prev + p, prev) if p > 0 else None
        # a direct linear path from the prior to the logits (not through GroupNorm, so a
        # map's absolute prior level reaches its logits)
        c = config.out_channels
        self.prior_skip = nn.Conv2d(p, c, 1) if p > 0 else None
        self.to_logits = nn.Conv2d(prev, c, 1)

    def _validate(
        self,
        key_states: Tensor,
        cur_states: Tensor,
        grid: tuple[int, int],
        frame_indices: Tensor,
        key_token_mask: Tensor | None,
        prior: Tensor | None,
    ) -> None:
        d = self.config.input_dim
        if key_states.dim() != 4 or key_states.shape[-1] != d:
            raise ValueError(
                f"key_states must be [B, K, Tk, D={d}], got shape {tuple(key_states.shape)}"
            )
        b, k, tk, _ = key_states.shape
        if k < 1 or tk < 1:
            raise ValueError(f"key_states needs K >= 1 and Tk >= 1, got K={k}, Tk={tk}")
        if cur_states.dim() != 3 or cur_states.shape[0] != b or cur_states.shape[-1] != d:
            raise ValueError(
                f"cur_states must be [B={b}, Tc, D={d}], got shape {tuple(cur_states.shape)}"
            )
        if len(grid) != 2 or any(int(g) < 1 for g in grid):
            raise ValueError(f"grid must be (gh, gw) with gh, gw >= 1, got {grid}")
        gh, gw = int(grid[0]), int(grid[1])
        if cur_states.shape[1] != gh * gw:
            raise ValueError(
                f"cur_states has Tc={cur_states.shape[1]} tokens but grid {gh}x{gw} needs {gh * gw}"
            )
        if tuple(frame_indices.shape) != (b, k):
            raise ValueError(
                f"frame_indices must be [B={b}, K={k}], got shape {tuple(frame_indices.shape)}"
            )
        if frame_indices.dtype.is_floating_point or frame_indices.dtype == torch.bool:
            raise ValueError(f"frame_indices must be an integer tensor, got {frame_indices.dtype}")
        if bool((frame_indices < -1).any()):
            raise ValueError(
                f"frame_indices must be >= 0 or -1 (padding), got {frame_indices.tolist()}"
            )
        ordered = frame_indices.sort(-1).values  # [B, K]
        repeated = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
        if bool(repeated.any()):
            row = frame_indices[repeated.any(-1)][0].tolist()
            raise ValueError(f"frame_indices repeat an original index in a row: {row}")
        if key_token_mask is not None and tuple(key_token_mask.shape) != (b, k, tk):
            raise ValueError(
                f"key_token_mask must be [B={b}, K={k}, Tk={tk}], "
                f"got shape {tuple(key_token_mask.shape)}"
            )
        p = self.config.prior_channels
        expected = (b, k, p, *self.config.out_size)
        if p == 0 and prior is not None:
            raise ValueError("this head has prior_channels=0 but a prior was given")
        if p > 0 and (prior is None or tuple(prior.shape) != expected):
            got = None if prior is None else tuple(prior.shape)
            raise ValueError(f"prior must be [B, K, P, h, w] = {expected}, got {got}")

    def forward(
        self,
        key_states: Tensor,
        cur_states: Tensor,
        grid: tuple[int, int],
        frame_indices: Tensor,
        key_token_mask: Tensor | None = None,
        prior: Tensor | None = None,
    ) -> HeatmapOutput:
        """Decode one current-view heatmap per keyframe.

        Args:
            key_states: ``[B, K, Tk, D]`` keyframe token states.
            cur_states: ``[B, Tc, D]`` current-view token states, row-major on ``grid``.
            grid: ``(gh, gw)`` current-view token grid, ``Tc = gh * gw``.
            frame_indices: ``[B, K]`` integer original frame indices, ``-1`` for padding.
            key_token_mask: optional ``[B, K, Tk]`` bool, False for padded keyframe tokens.
            prior: ``[B, K, prior_channels, h, w]`` prior maps; required iff
                ``config.prior_channels > 0``.

        Returns:
            :class:`HeatmapOutput` with ``logits [B, K, h, w]`` (``(h, w) = config.out_size``;
            the first channel), ``frame_indices [B, K]`` and, with ``out_channels > 1``,
            ``channel_logits [B, K, C, h, w]``.
        """
        self._validate(key_states, cur_states, grid, frame_indices, key_token_mask, prior)
        b, k, tk, _ = key_states.shape
        gh, gw = int(grid[0]), int(grid[1])
        tc = gh * gw
        nh, hd = self.num_heads, self.head_dim

        cur = self.cur_proj(self.cur_norm(cur_states))  # [B, Tc, Hd]
        q = self.q_proj(cur).view(b, 1, tc, nh, hd).transpose(2, 3)  # [B, 1, nh, Tc, hd]
        keys = self.key_norm(key_states)
        kk = self.k_proj(keys)  # [B, K, Tk, Hd]
        vv = self.v_proj(keys)  # [B, K, Tk, Hd]
        if self.index_proj is not None:
            idx_emb = _sinusoidal(frame_indices.clamp_min(0), self.config.hidden_dim)
            idx_emb = self.index_proj(idx_emb.to(kk.dtype))[:, :, None, :]  # [B, K, 1, Hd]
            kk = kk + idx_emb
            vv = vv + idx_emb
        kk = kk.view(b, k, tk, nh, hd).transpose(2, 3)  # [B, K, nh, Tk, hd]
        vv = vv.view(b, k, tk, nh, hd).transpose(2, 3)  # [B, K, nh, Tk, hd]

        scores = q @ kk.transpose(-1, -2) / math.sqrt(hd)  # [B, K, nh, Tc, Tk]
        if key_token_mask is not None:
            keep = key_token_mask[:, :, None, None, :]  # [B, K, 1, 1, Tk]
            scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
            any_token = key_token_mask.any(-1)[:, :, None, None]  # [B, K, 1, 1]
        attn = self.attn_drop(scores.softmax(-1))
        attended = (attn @ vv).transpose(2, 3).reshape(b, k, tc, nh * hd)  # [B, K, Tc, Hd]
        attended = self.out_proj(attended)
        max_corr = scores.max(-1).values  # [B, K, nh, Tc]
        if key_token_mask is not None:
            max_corr = torch.where(any_token, max_corr, torch.zeros_like(max_corr))
            attended = attended * any_token.to(attended.dtype)  # [B, K, 1, 1] broadcast
        max_corr = max_corr.transpose(2, 3)  # [B, K, Tc, nh]

        fused = torch.cat([cur[:, None].expand(b, k, tc, -1), attended, max_corr], dim=-1)
        fused = self.fuse(fused)  # [B, K, Tc, C]
        x = fused.reshape(b * k, gh, gw, -1).permute(0, 3, 1, 2)  # [B*K, C, gh, gw]
        x = self.stem(x)
        out_h, out_w = self.config.out_size
        for stage in self.stages:
            cur_h, cur_w = x.shape[-2:]
            size = (
                min(2 * cur_h, out_h) if cur_h < out_h else cur_h,
                min(2 * cur_w, out_w) if cur_w < out_w else cur_w,
            )
            if size != (cur_h, cur_w):
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            x = stage(x)
        if tuple(x.shape[-2:]) != (out_h, out_w):
            x = F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=False)
        if self.prior_block is not None:
            assert prior is not None
            extra = prior.reshape(b * k, -1, out_h, out_w).to(x.dtype)
            x = self.prior_block(torch.cat([x, extra], dim=1))
            assert self.prior_skip is not None
            x_logits = self.to_logits(x) + self.prior_skip(extra)
        else:
            x_logits = self.to_logits(x)
        c = self.config.out_channels
        if c == 1:
            logits = x_logits.view(b, k, out_h, out_w)  # [B, K, h, w]
            return HeatmapOutput(logits=logits, frame_indices=frame_indices)
        channels = x_logits.view(b, k, c, out_h, out_w)  # [B, K, C, h, w]
        return HeatmapOutput(
            logits=channels[:, :, 0], frame_indices=frame_indices, channel_logits=channels
        )

    def as_frame_dicts(self, output: HeatmapOutput) -> list[dict[int, Tensor]]:
        """``{original_frame_index: logits [h, w]}`` per batch element (padding skipped)."""
        return output.to_frame_dicts()
