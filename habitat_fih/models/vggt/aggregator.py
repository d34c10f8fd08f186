"""VGGT aggregator: DINOv2 patch embedding followed by alternating frame / global attention.

Per frame the token sequence is `[camera (1), registers (R), patches (h*w)]`, so the patch
tokens start at `patch_start_idx = 1 + R`. The learned `camera_token` [1, 2, 1, C] and
`register_token` [1, 2, R, C] have two slots: slot 0 is used by the first frame of each
sequence, slot 1 by every other frame (this is the only thing that tells frames apart: there
is no per-frame positional encoding). RoPE positions are `(y + 1, x + 1)` for the patch at
grid cell (y, x) and `(0, 0)` for the special tokens.

Step i runs `frame_blocks[i]` on [B*S, P, C] (attention within each frame) and then
`global_blocks[i]` on [B, S*P, C] (attention across all frames); the two outputs are
concatenated into one [B, S, P, 2C] tensor per step.

`forward(..., causal_window=W)` is the causal variant (`FIHModelConfig.vggt_history:
causal_cache`): in the global blocks frame j attends only to the first frame and frames
j - W .. j, so a frame's tokens never depend on later frames and can be computed once, when the
frame arrives, with a per-block key / value cache over the earlier frames
(`habitat_fih.models.vggt.streaming.CausalVGGTStream`, the same numbers as this batched form).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from habitat_fih.models.vggt.config import VGGTConfig
from habitat_fih.models.vggt.dinov2 import DinoV2
from habitat_fih.models.vggt.layers import Block, RopeTables, RotaryEmbedding2D

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def patch_positions(h: int, w: int, num_special: int, device: torch.device) -> Tensor:
    """RoPE positions of one frame: [num_special + h*w, 2] (long); specials (0, 0), patch (y+1, x+1)."""
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij"
    )
    grid = torch.stack([ys.reshape(-1), xs.reshape(-1)], dim=-1) + 1  # [h*w, 2], row-major
    special = torch.zeros(num_special, 2, dtype=grid.dtype, device=device)
    return torch.cat([special, grid], dim=0)


class Aggregator(nn.Module):
    """Alternating-attention trunk of VGGT."""

    def __init__(self, config: VGGTConfig) -> None:
        super().__init__()
        c = config.embed_dim
        self.patch_size = config.patch_size
        self.depth = config.depth
        self.patch_start_idx = config.patch_start_idx
        self.gradient_checkpointing = config.gradient_checkpointing
        # Direct parameters first: their order matches the released state dict.
        self.camera_token = nn.Parameter(torch.zeros(1, 2, 1, c))
        self.register_token = nn.Parameter(torch.zeros(1, 2, config.num_register_tokens, c))
        self.patch_embed = DinoV2(config.patch_embed, config.img_size, config.patch_size)
        self.rope = RotaryEmbedding2D(config.rope_freq)

        def make_block() -> Block:
            return Block(
                c,
                config.num_heads,
                mlp_ratio=config.mlp_ratio,
                qk_norm=config.qk_norm,
                layerscale_init=config.layerscale_init,
                rope=self.rope,
            )

        self.frame_blocks = nn.ModuleList(make_block() for _ in range(config.depth))
        self.global_blocks = nn.ModuleList(make_block() for _ in range(config.depth))
        if not self.camera_token.is_meta:
            nn.init.normal_(self.camera_token, std=1e-6)
            nn.init.normal_(self.register_token, std=1e-6)

    def _run(
        self, block: nn.Module, x: Tensor, pos: RopeTables, mask: Tensor | None = None
    ) -> Tensor:
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, x, pos, mask, use_reentrant=False)
        return block(x, pos=pos, attn_mask=mask)

    def embed(self, images: Tensor) -> Tensor:
        """Per-frame patch embedding: images [N, 3, H, W] in [0, 1] -> [N, h*w, C] (ImageNet
        normalisation, then the DINOv2 embedder). Depends on each frame alone, so a caller
        may compute it once per frame (`habitat_fih.models.frame_cache`)."""
        mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return self.patch_embed((images - mean) / std)  # [N, h*w, C]

    def rope_tables(self, pos: Tensor) -> RopeTables:
        """RoPE tables of positions [1, N, 2] for every block (computed once per forward)."""
        return self.rope.tables(pos, self.frame_blocks[0].attn.head_dim, torch.float32)

    def frame_tokens(self, patches: Tensor, first: Tensor) -> Tensor:
        """Prepend the camera / register tokens: patches [N, h*w, C], first [N] bool (slot 0
        for a sequence's first frame, slot 1 otherwise) -> [N, P, C]."""
        pick = (~first).long()  # [N] slot index
        camera = self.camera_token[0, pick].to(patches.dtype)  # [N, 1, C]
        registers = self.register_token[0, pick].to(patches.dtype)  # [N, R, C]
        return torch.cat([camera, registers, patches], dim=1)

    def forward(
        self,
        images: Tensor,
        patches: Tensor | None = None,
        causal_window: int | None = None,
    ) -> tuple[list[Tensor], int]:
        """Aggregate a batch of frame sequences.

        Args:
            images: [B, S, 3, H, W] in [0, 1]; H and W multiples of the patch size.
            patches: optional precomputed `embed` output of the B*S frames [B*S, h*w, C]
                (then `images` only gives the shapes).
            causal_window: None (VGGT: global attention over all frames), or W >= 0: frame j
                attends only to frame 0 and frames j - W .. j (`causal_frame_mask`), the
                batched form of the streaming cache (`habitat_fih.models.vggt.streaming`).

        Returns:
            (tokens, patch_start_idx): `tokens` is a list of `depth` tensors [B, S, P, 2C]
            with P = patch_start_idx + (H/p)*(W/p); channels [:C] come from the frame block and
            [C:] from the global block of that step.
        """
        B, S, _, H, W = images.shape
        h, w = H // self.patch_size, W // self.patch_size
        if patches is None:
            patches = self.embed(images.reshape(B * S, 3, H, W))  # [B*S, h*w, C]
        C = patches.shape[-1]
        first = (torch.arange(S, device=patches.device) == 0).repeat(B)  # [B*S]
        tokens = self.frame_tokens(patches, first)  # [B*S, P, C]
        P = tokens.shape[1]
        pos = patch_positions(h, w, self.patch_start_idx, images.device)  # [P, 2]
        pos_frame = self.rope_tables(pos[None])  # for [B*S, P] tokens
        pos_global = self.rope_tables(pos.repeat(S, 1)[None])  # for [B, S*P] tokens
        mask = None
        if causal_window is not None:
            frames = causal_frame_mask(S, causal_window, images.device)  # [S, S]
            mask = frames.repeat_interleave(P, 0).repeat_interleave(P, 1)  # [S*P, S*P]

        outputs: list[Tensor] = []
        for frame_block, global_block in zip(self.frame_blocks, self.global_blocks, strict=True):
            tokens = self._run(frame_block, tokens.reshape(B * S, P, C), pos_frame)  # [B*S, P, C]
            frame_out = tokens.reshape(B, S, P, C)
            tokens = self._run(global_block, tokens.reshape(B, S * P, C), pos_global, mask)
            global_out = tokens.reshape(B, S, P, C)  # [B, S, P, C]
            outputs.append(torch.cat([frame_out, global_out], dim=-1))  # [B, S, P, 2C]
        return outputs, self.patch_start_idx


def causal_frame_mask(frames: int, window: int, device: torch.device | None = None) -> Tensor:
    """[frames, frames] bool, True where query frame j may attend key frame i: i == 0 (the
    first frame, VGGT's reference) or j - window <= i <= j."""
    if window < 0:
        raise ValueError(f"causal window must be >= 0, got {window}")
    j = torch.arange(frames, device=device)[:, None]
    i = torch.arange(frames, device=device)[None, :]
    return (i == 0) | ((i <= j) & (i >= j - window))
