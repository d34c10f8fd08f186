"""The VGGT model: aggregator + camera head + depth and point DPT heads (no track head).

Submodule names and parameter shapes match the released VGGT-1B checkpoint
(`aggregator.*`, `camera_head.*`, `point_head.*`, `depth_head.*`); the checkpoint's
`track_head.*` tensors have no counterpart here (see `checkpoint.load_vggt`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection

import torch
from torch import Tensor, nn

from habitat_fih.models.vggt.aggregator import Aggregator
from habitat_fih.models.vggt.camera_head import CameraHead
from habitat_fih.models.vggt.config import VGGTConfig
from habitat_fih.models.vggt.dpt_head import DPTHead


class VGGT(nn.Module):
    """Visual Geometry Grounded Transformer (feed-forward multi-view geometry)."""

    def __init__(self, config: VGGTConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or VGGTConfig.vggt_1b()
        dim_out = 2 * config.embed_dim
        self.aggregator = Aggregator(config)
        # Registration order = checkpoint order: camera, point, depth.
        self.camera_head = CameraHead(dim_out, config.camera_head) if config.enable_camera else None
        self.point_head = (
            DPTHead(dim_out, config.patch_size, 4, "inv_log", config.dpt)
            if config.enable_point
            else None
        )
        self.depth_head = (
            DPTHead(dim_out, config.patch_size, 2, "exp", config.dpt)
            if config.enable_depth
            else None
        )

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        """Recompute aggregator blocks in backward (training only) to save activation memory."""
        self.aggregator.gradient_checkpointing = enabled

    def check_images(self, images: Tensor) -> Tensor:
        """Validate and return images as [B, S, 3, H, W]; raises ValueError naming the shape."""
        given = tuple(images.shape)
        if images.ndim == 4:
            images = images.unsqueeze(0)  # [S, 3, H, W] -> [1, S, 3, H, W]
        p = self.config.patch_size
        if (
            images.ndim != 5
            or images.shape[2] != 3
            or images.shape[1] < 1
            or images.shape[-2] % p != 0
            or images.shape[-1] % p != 0
            or images.shape[-2] == 0
            or images.shape[-1] == 0
        ):
            raise ValueError(
                f"images must be [S, 3, H, W] or [B, S, 3, H, W] with S >= 1 and H, W positive "
                f"multiples of patch_size={p}; got shape {given}"
            )
        return images

    def no_autocast(self, device_type: str) -> contextlib.AbstractContextManager[None]:
        """The heads run in float32: autocast off where the device type has one."""
        if torch.amp.is_autocast_available(device_type):
            return torch.autocast(device_type=device_type, enabled=False)
        return contextlib.nullcontext()

    def forward(
        self,
        images: Tensor,
        heads: Collection[str] | None = None,
        patches: Tensor | None = None,
        causal_window: int | None = None,
    ) -> dict[str, Tensor | list[Tensor] | int]:
        """Predict cameras, depth and world points for each frame.

        Args:
            images: [S, 3, H, W] or [B, S, 3, H, W], RGB in [0, 1]; H and W multiples of the
                patch size (14 for VGGT-1B). The first frame of each sequence defines the world
                frame. ImageNet normalisation happens inside.
            heads: which enabled heads to run (``camera``, ``depth``, ``point``); None = all.
            patches: precomputed per-frame patch embeddings [B*S, h*w, C]
                (`Aggregator.embed`), or None.
            causal_window: None (VGGT's global attention), or the causal window W of
                `Aggregator.forward`.

        Returns:
            dict with (P = 1 + registers + (H/p)*(W/p), C = embed_dim):
              - "pose_enc": [B, S, 9] T(3), quaternion XYZW(4), fov_h, fov_w (camera head).
              - "pose_enc_list": list of [B, S, 9], one per refinement round (camera head).
              - "depth": [B, S, H, W, 1] and "depth_conf": [B, S, H, W] (depth head).
              - "world_points": [B, S, H, W, 3] and "world_points_conf": [B, S, H, W]
                (point head).
              - "aggregated_tokens": list of `depth` tensors [B, S, P, 2C].
              - "patch_start_idx": int, index of the first patch token.
              - "images": the input as [B, S, 3, H, W].
            Head outputs are float32 (heads run with autocast disabled).
        """
        images = self.check_images(images)
        height, width = images.shape[-2:]
        tokens, patch_start_idx = self.aggregator(images, patches, causal_window)
        out: dict[str, Tensor | list[Tensor] | int] = {}
        run = {"camera", "depth", "point"} if heads is None else set(heads)
        unknown = run - {"camera", "depth", "point"}
        if unknown:
            raise ValueError(f"unknown VGGT heads {sorted(unknown)}; expected camera, depth, point")
        with self.no_autocast(images.device.type):
            if self.camera_head is not None and "camera" in run:
                estimates = self.camera_head(tokens)
                out["pose_enc"] = estimates[-1]
                out["pose_enc_list"] = estimates
            if self.depth_head is not None and "depth" in run:
                out["depth"], out["depth_conf"] = self.depth_head(
                    tokens, (height, width), patch_start_idx
                )
            if self.point_head is not None and "point" in run:
                out["world_points"], out["world_points_conf"] = self.point_head(
                    tokens, (height, width), patch_start_idx
                )
        out["aggregated_tokens"] = tokens
        out["patch_start_idx"] = patch_start_idx
        out["images"] = images
        return out


def build_vggt(config: VGGTConfig | None = None) -> VGGT:
    """Factory: a randomly initialised VGGT for `config` (VGGT-1B layout by default)."""
    return VGGT(config)
