"""DINOv2 ViT with register tokens, used by the VGGT aggregator as its per-frame patch embedder.

Layout of the released checkpoint (under `aggregator.patch_embed.`): `cls_token` [1, 1, C],
`pos_embed` [1, 1 + G*G, C] for the pre-training grid G = img_size / patch_size (37 for
518 / 14), `register_tokens` [1, R, C], `mask_token` [1, C] (unused at inference),
`patch_embed.proj` (Conv2d patch x patch), `blocks.N.*` and the final `norm`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from habitat_fih.models.vggt.config import DinoV2Config
from habitat_fih.models.vggt.layers import Block


class PatchProjection(nn.Module):
    """Non-overlapping patch projection: [N, 3, H, W] -> [N, (H/p)*(W/p), C]."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x)  # [N, C, h, w]
        return x.flatten(2).transpose(1, 2)  # [N, h*w, C]


class DinoV2(nn.Module):
    """DINOv2 ViT with registers, returning the normalised patch tokens only."""

    def __init__(self, config: DinoV2Config, img_size: int, patch_size: int) -> None:
        super().__init__()
        c = config.embed_dim
        self.patch_size = patch_size
        self.grid = img_size // patch_size  # pre-training grid side (37 for 518/14)
        self.num_register_tokens = config.num_register_tokens
        # Direct parameters in checkpoint order.
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid * self.grid, c))
        self.register_tokens = nn.Parameter(torch.zeros(1, config.num_register_tokens, c))
        self.mask_token = nn.Parameter(torch.zeros(1, c), requires_grad=False)
        self.patch_embed = PatchProjection(patch_size, 3, c)
        self.blocks = nn.ModuleList(
            Block(
                c,
                config.num_heads,
                mlp_ratio=config.mlp_ratio,
                qk_norm=False,
                layerscale_init=config.layerscale_init,
                norm_eps=config.norm_eps,
            )
            for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(c, eps=config.norm_eps)
        if not self.pos_embed.is_meta:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
            nn.init.normal_(self.cls_token, std=1e-6)
            nn.init.normal_(self.register_tokens, std=1e-6)

    def interpolate_pos_embed(self, h: int, w: int) -> Tensor:
        """Patch position embedding for an h x w grid: [1, h*w, C] (bicubic, antialiased)."""
        patch_pos = self.pos_embed[:, 1:]  # [1, G*G, C]
        if h == self.grid and w == self.grid:
            return patch_pos
        g = int(math.isqrt(patch_pos.shape[1]))
        dim = patch_pos.shape[-1]
        grid = patch_pos.float().reshape(1, g, g, dim).permute(0, 3, 1, 2)  # [1, C, G, G]
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", antialias=True)  # [1, C, h, w]
        return grid.permute(0, 2, 3, 1).reshape(1, h * w, dim).to(patch_pos.dtype)

    def forward(self, images: Tensor) -> Tensor:
        """Normalised images [N, 3, H, W] -> normalised patch tokens [N, (H/p)*(W/p), C]."""
        n, _, height, width = images.shape
        h, w = height // self.patch_size, width // self.patch_size
        x = self.patch_embed(images)  # [N, h*w, C]
        x = x + self.interpolate_pos_embed(h, w).to(x.dtype)
        cls = (self.cls_token + self.pos_embed[:, :1]).to(x.dtype).expand(n, -1, -1)
        regs = self.register_tokens.to(x.dtype).expand(n, -1, -1)
        x = torch.cat([cls, regs, x], dim=1)  # [N, 1 + R + h*w, C]
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return x[:, 1 + self.num_register_tokens :]  # [N, h*w, C]
