"""Typed configuration for our VGGT implementation.

`VGGTConfig` holds the aggregator hyper-parameters plus three sub-configs: the DINOv2 patch
embedder (`DinoV2Config`), the camera head (`CameraHeadConfig`) and the two DPT heads
(`DPTHeadConfig`). `VGGTConfig.vggt_1b()` reproduces the released VGGT-1B layout (key- and
shape-compatible with its checkpoint, without the track head); `VGGTConfig.tiny()` is a
few-thousand-parameter model for CPU tests. Every `__post_init__` names the bad value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass
class DinoV2Config:
    """The DINOv2 ViT (with registers) used as the per-frame patch embedder.

    Its width must equal the aggregator width (`VGGTConfig.embed_dim`); its own CLS and
    register tokens are discarded, only the normalised patch tokens are used.
    """

    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4
    layerscale_init: float = 1.0
    norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        _require(self.embed_dim > 0, f"DinoV2Config.embed_dim must be > 0, got {self.embed_dim}")
        _require(self.depth >= 0, f"DinoV2Config.depth must be >= 0, got {self.depth}")
        _require(
            self.num_heads > 0 and self.embed_dim % self.num_heads == 0,
            f"DinoV2Config.num_heads={self.num_heads} must divide embed_dim={self.embed_dim}",
        )
        _require(self.mlp_ratio > 0, f"DinoV2Config.mlp_ratio must be > 0, got {self.mlp_ratio}")
        _require(
            self.num_register_tokens >= 0,
            f"DinoV2Config.num_register_tokens must be >= 0, got {self.num_register_tokens}",
        )


@dataclass
class CameraHeadConfig:
    """Iterative camera head: trunk of `trunk_depth` blocks at width 2·embed_dim."""

    trunk_depth: int = 4
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_iterations: int = 4
    layerscale_init: float = 0.01

    def __post_init__(self) -> None:
        _require(
            self.trunk_depth >= 1,
            f"CameraHeadConfig.trunk_depth must be >= 1, got {self.trunk_depth}",
        )
        _require(
            self.num_heads > 0, f"CameraHeadConfig.num_heads must be > 0, got {self.num_heads}"
        )
        _require(
            self.num_iterations >= 1,
            f"CameraHeadConfig.num_iterations must be >= 1, got {self.num_iterations}",
        )


@dataclass
class DPTHeadConfig:
    """Shared layout of the depth and point DPT heads."""

    layer_indices: tuple[int, int, int, int] = (4, 11, 17, 23)
    features: int = 256
    out_channels: tuple[int, int, int, int] = (256, 512, 1024, 1024)
    hidden_channels: int = 32  # width of the last 3x3 conv before the 1x1 output conv
    pos_embed: bool = True
    frames_chunk_size: int = 8  # frames decoded at once (memory bound); <= 0 means all

    def __post_init__(self) -> None:
        self.layer_indices = tuple(self.layer_indices)  # type: ignore[assignment]
        self.out_channels = tuple(self.out_channels)  # type: ignore[assignment]
        _require(
            len(self.layer_indices) == 4,
            f"DPTHeadConfig.layer_indices needs 4 entries, got {self.layer_indices}",
        )
        _require(
            len(self.out_channels) == 4 and all(c > 0 for c in self.out_channels),
            f"DPTHeadConfig.out_channels needs 4 positive entries, got {self.out_channels}",
        )
        _require(
            self.features > 0 and self.features % 2 == 0,
            f"DPTHeadConfig.features must be positive and even, got {self.features}",
        )
        _require(
            self.hidden_channels > 0,
            f"DPTHeadConfig.hidden_channels must be > 0, got {self.hidden_channels}",
        )


@dataclass
class VGGTConfig:
    """Aggregator hyper-parameters, head switches and sub-configs.

    The released VGGT-1B: img 518, patch 14, dim 1024, depth 24, heads 16, mlp_ratio 4,
    4 register tokens, q/k LayerNorm, 2D RoPE frequency 100, LayerScale init 0.01.
    """

    img_size: int = 518
    patch_size: int = 14
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4
    qk_norm: bool = True
    rope_freq: float = 100.0
    layerscale_init: float = 0.01
    enable_camera: bool = True
    enable_depth: bool = True
    enable_point: bool = True
    enable_track: bool = False
    gradient_checkpointing: bool = False
    patch_embed: DinoV2Config = field(default_factory=DinoV2Config)
    camera_head: CameraHeadConfig = field(default_factory=CameraHeadConfig)
    dpt: DPTHeadConfig = field(default_factory=DPTHeadConfig)

    def __post_init__(self) -> None:
        if isinstance(self.patch_embed, dict):
            self.patch_embed = DinoV2Config(**self.patch_embed)
        if isinstance(self.camera_head, dict):
            self.camera_head = CameraHeadConfig(**self.camera_head)
        if isinstance(self.dpt, dict):
            self.dpt = DPTHeadConfig(**self.dpt)
        _require(self.patch_size > 0, f"VGGTConfig.patch_size must be > 0, got {self.patch_size}")
        _require(
            self.img_size > 0 and self.img_size % self.patch_size == 0,
            f"VGGTConfig.img_size={self.img_size} must be a positive multiple of "
            f"patch_size={self.patch_size}",
        )
        _require(self.depth >= 1, f"VGGTConfig.depth must be >= 1, got {self.depth}")
        _require(
            self.num_heads > 0 and self.embed_dim % self.num_heads == 0,
            f"VGGTConfig.num_heads={self.num_heads} must divide embed_dim={self.embed_dim}",
        )
        head_dim = self.embed_dim // self.num_heads
        _require(
            head_dim % 4 == 0,
            f"VGGTConfig head_dim={head_dim} (embed_dim/num_heads) must be a multiple of 4 "
            "for 2D RoPE",
        )
        _require(self.mlp_ratio > 0, f"VGGTConfig.mlp_ratio must be > 0, got {self.mlp_ratio}")
        _require(
            self.num_register_tokens >= 0,
            f"VGGTConfig.num_register_tokens must be >= 0, got {self.num_register_tokens}",
        )
        _require(self.rope_freq > 0, f"VGGTConfig.rope_freq must be > 0, got {self.rope_freq}")
        _require(
            self.patch_embed.embed_dim == self.embed_dim,
            f"VGGTConfig.patch_embed.embed_dim={self.patch_embed.embed_dim} must equal "
            f"embed_dim={self.embed_dim}",
        )
        _require(
            (2 * self.embed_dim) % self.camera_head.num_heads == 0,
            f"VGGTConfig.camera_head.num_heads={self.camera_head.num_heads} must divide "
            f"2*embed_dim={2 * self.embed_dim}",
        )
        bad = [i for i in self.dpt.layer_indices if not -self.depth <= i < self.depth]
        _require(
            not bad,
            f"VGGTConfig.dpt.layer_indices {self.dpt.layer_indices} out of range for "
            f"depth={self.depth}: {bad}",
        )
        _require(
            not self.enable_track,
            "VGGTConfig.enable_track=True is not supported: this implementation has no track "
            "head (checkpoint track_head.* keys are ignored and reported when loading)",
        )

    @property
    def patch_start_idx(self) -> int:
        """Index of the first patch token per frame: camera token + registers."""
        return 1 + self.num_register_tokens

    def to_dict(self) -> dict[str, Any]:
        """Plain (JSON-serialisable) dict; `VGGTConfig(**d)` restores it."""
        d = asdict(self)
        d["dpt"]["layer_indices"] = list(self.dpt.layer_indices)
        d["dpt"]["out_channels"] = list(self.dpt.out_channels)
        return d

    @classmethod
    def vggt_1b(cls, **overrides: Any) -> VGGTConfig:
        """The released VGGT-1B layout (defaults), optionally with top-level overrides."""
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> VGGTConfig:
        """A tiny model for CPU tests: dim 32, 4 layers, 2 heads, 4-px patches, 16-px images."""
        kwargs: dict[str, Any] = dict(
            img_size=16,
            patch_size=4,
            embed_dim=32,
            depth=4,
            num_heads=2,
            mlp_ratio=2.0,
            num_register_tokens=2,
            patch_embed=DinoV2Config(
                embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, num_register_tokens=2
            ),
            camera_head=CameraHeadConfig(trunk_depth=1, num_heads=2, mlp_ratio=2.0),
            dpt=DPTHeadConfig(
                layer_indices=(0, 1, 2, 3),
                features=16,
                out_channels=(8, 16, 32, 32),
                hidden_channels=8,
                frames_chunk_size=2,
            ),
        )
        kwargs.update(overrides)
        return cls(**kwargs)


def vggt_1b(**overrides: Any) -> VGGTConfig:
    """Module-level alias of `VGGTConfig.vggt_1b`."""
    return VGGTConfig.vggt_1b(**overrides)


def tiny(**overrides: Any) -> VGGTConfig:
    """Module-level alias of `VGGTConfig.tiny`."""
    return VGGTConfig.tiny(**overrides)
