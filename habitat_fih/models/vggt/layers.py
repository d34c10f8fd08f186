"""Transformer building blocks shared by the VGGT aggregator, its DINOv2 patch embedder and the
camera head: LayerScale (`gamma`), MLP (`fc1`/`fc2`), 2D rotary position embedding, attention
with fused `qkv`, optional q/k LayerNorm and RoPE, and the pre-norm `Block`.

Parameter names follow the released VGGT-1B checkpoint (`norm1`, `attn.qkv`, `attn.q_norm`,
`attn.k_norm`, `attn.proj`, `ls1.gamma`, `norm2`, `mlp.fc1`, `mlp.fc2`, `ls2.gamma`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerScale(nn.Module):
    """Per-channel residual scale `x * gamma`, with `gamma` initialised to `init_value`."""

    def __init__(self, dim: int, init_value: float) -> None:
        super().__init__()
        self.init_value = init_value
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """`fc2(GELU(fc1(x)))`."""

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        out_features: int | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


@dataclass(frozen=True)
class RopeTables:
    """cos / sin of `RotaryEmbedding2D` for one set of positions, per axis (row y, column x):
    each [b, 1, N, head_dim / 2] (b = 1 broadcasts over the batch). Computing them once per
    forward instead of once per block and per q / k is what keeps small models fast; the
    numbers are those of passing the positions themselves."""

    cos: tuple[Tensor, Tensor]
    sin: tuple[Tensor, Tensor]

    @property
    def length(self) -> int:
        return int(self.cos[0].shape[2])


class RotaryEmbedding2D(nn.Module):
    """2D rotary position embedding over a (y, x) integer grid.

    The head dimension is split in two halves: the first half is rotated by the token's row
    `y`, the second by its column `x`. Within a half of width `d`, channel pairs
    `(i, i + d/2)` rotate by the angle `p * base ** (-2i / d)` ("rotate-half" layout). Because
    each half is an ordinary 1D RoPE, `<rope(q, p1), rope(k, p2)>` depends on `p1 - p2` only.
    Has no parameters and no buffers (angles are computed per call from the positions, or
    given precomputed as `RopeTables`).
    """

    def __init__(self, base: float = 100.0) -> None:
        super().__init__()
        self.base = float(base)

    def _cos_sin(self, pos: Tensor, width: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """cos / sin of the rotation angles for 1D positions pos [B, N] -> [B, 1, N, width]."""
        inv_freq = 1.0 / self.base ** (
            torch.arange(0, width, 2, device=pos.device, dtype=torch.float32) / width
        )  # [width/2]
        angles = pos.float()[..., None] * inv_freq  # [B, N, width/2]
        angles = torch.cat((angles, angles), dim=-1)[:, None]  # [B, 1, N, width]
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def tables(self, pos: Tensor, head_dim: int, dtype: torch.dtype) -> RopeTables:
        """The `RopeTables` of positions pos [B, N, 2] (long, (y, x)) for heads of
        `head_dim` channels."""
        if head_dim % 4 != 0:
            raise ValueError(f"2D RoPE needs head_dim divisible by 4, got {head_dim}")
        if pos.ndim != 3 or pos.shape[-1] != 2:
            raise ValueError(f"RoPE positions must be [B, N, 2], got {tuple(pos.shape)}")
        y = self._cos_sin(pos[..., 0], head_dim // 2, dtype)
        x = self._cos_sin(pos[..., 1], head_dim // 2, dtype)
        return RopeTables(cos=(y[0], x[0]), sin=(y[1], x[1]))

    @staticmethod
    def _rotate_half(x: Tensor) -> Tensor:
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)

    def forward(self, x: Tensor, pos: Tensor | RopeTables) -> Tensor:
        """Rotate `x` [B, heads, N, head_dim] by positions `pos` [B, N, 2] (long, (y, x)) or
        their precomputed `RopeTables`."""
        if x.shape[-1] % 4 != 0:
            raise ValueError(f"2D RoPE needs head_dim divisible by 4, got x.shape={tuple(x.shape)}")
        if isinstance(pos, Tensor):
            if pos.shape != (x.shape[0], x.shape[2], 2):
                raise ValueError(
                    f"RoPE positions must be [B, N, 2] = {(x.shape[0], x.shape[2], 2)}, "
                    f"got {tuple(pos.shape)}"
                )
            pos = self.tables(pos, x.shape[-1], x.dtype)
        elif pos.length != x.shape[2] or pos.cos[0].shape[-1] * 2 != x.shape[-1]:
            raise ValueError(
                f"RoPE tables for {pos.length} tokens of head_dim {pos.cos[0].shape[-1] * 2} do "
                f"not fit x.shape={tuple(x.shape)}"
            )
        out = []
        for axis, part in enumerate(x.chunk(2, dim=-1)):  # axis 0: row y, axis 1: column x
            cos, sin = pos.cos[axis], pos.sin[axis]
            if cos.dtype != x.dtype:
                cos, sin = cos.to(x.dtype), sin.to(x.dtype)
            out.append(part * cos + self._rotate_half(part) * sin)
        return torch.cat(out, dim=-1)


class Attention(nn.Module):
    """Multi-head self-attention: fused `qkv`, optional q/k LayerNorm, optional RoPE, SDPA."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        qk_norm: bool = False,
        rope: RotaryEmbedding2D | None = None,
    ) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"num_heads={num_heads} must divide dim={dim}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.rope = rope

    def heads(
        self, x: Tensor, pos: Tensor | RopeTables | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """q, k, v [B, heads, N, head_dim] of x [B, N, C] (q / k normalised and rotated)."""
        B, N, _ = x.shape
        # [B, N, 3C] -> [3, B, heads, N, head_dim]
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope is not None and pos is not None:
            if isinstance(pos, Tensor):  # one table for q and k
                if pos.shape != (B, N, 2):
                    raise ValueError(
                        f"RoPE positions must be [B, N, 2] = {(B, N, 2)}, got {tuple(pos.shape)}"
                    )
                pos = self.rope.tables(pos, self.head_dim, q.dtype)
            q, k = self.rope(q, pos), self.rope(k, pos)
        return q, k, v

    def attend(self, q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """SDPA of q [B, heads, N, d] over k / v [B, heads, M, d] (`attn_mask` [N, M] bool,
        True = attend, or None) and the output projection -> [B, N, C]."""
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # [B, heads, N, d]
        B, _, N, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(B, N, -1))  # [B, N, C]

    def forward(
        self, x: Tensor, pos: Tensor | RopeTables | None = None, attn_mask: Tensor | None = None
    ) -> Tensor:
        """x [B, N, C], pos [B, N, 2] (or its `RopeTables`) or None, attn_mask [N, N] bool (True = attend) or None
        -> [B, N, C]."""
        return self.attend(*self.heads(x, pos), attn_mask)


class Block(nn.Module):
    """Pre-norm transformer block: `x + ls1(attn(norm1 x))`, then `x + ls2(mlp(norm2 x))`."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qk_norm: bool = False,
        layerscale_init: float = 0.01,
        norm_eps: float = 1e-5,
        rope: RotaryEmbedding2D | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qk_norm=qk_norm, rope=rope)
        self.ls1 = LayerScale(dim, layerscale_init)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, layerscale_init)

    def forward(
        self, x: Tensor, pos: Tensor | RopeTables | None = None, attn_mask: Tensor | None = None
    ) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), pos=pos, attn_mask=attn_mask))
        return x + self.ls2(self.mlp(self.norm2(x)))

    def forward_cached(
        self,
        x: Tensor,
        pos: Tensor | RopeTables,
        past_k: Tensor | None,
        past_v: Tensor | None,
        attn_mask: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The block on new tokens x [B, N, C] whose attention also sees cached keys / values
        [B, heads, M, d] of earlier tokens (`attn_mask` [N, M + N] bool over [past, new], or
        None = all). Returns (output [B, N, C], the new tokens' k, v [B, heads, N, d]) - the
        same numbers as `forward` on the whole sequence for the rows of x when the mask
        agrees."""
        q, k, v = self.attn.heads(self.norm1(x), pos)
        keys = k if past_k is None else torch.cat([past_k, k], dim=2)
        values = v if past_v is None else torch.cat([past_v, v], dim=2)
        x = x + self.ls1(self.attn.attend(q, keys, values, attn_mask))
        return x + self.ls2(self.mlp(self.norm2(x))), k, v
