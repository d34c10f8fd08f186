"""DINOv3 2D feature path: a thin wrapper over transformers' ``DINOv3ViTModel``.

``DINOv3Backbone`` turns keyframe images ``[N, 3, H, W]`` in ``[0, 1]`` into a grid of patch
tokens ``[N, H/16, W/16, C]``. ImageNet mean/std normalisation happens inside, and the CLS and
register tokens are dropped (transformers' ``last_hidden_state`` is ``[CLS, registers,
patches row-major]``). Weights come either from a local checkpoint directory in Hugging Face
layout (the released checkpoints are gated, so nothing is downloaded here) or from a
``DINOv3ViTConfig`` dictionary with random initialisation (tiny configs in tests).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DINOv3ViTConfig, DINOv3ViTModel

logger = logging.getLogger(__name__)

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: Files a local DINOv3 checkpoint directory must hold: the config and one weight layout.
HF_CONFIG_FILE = "config.json"
DINOV3_WEIGHT_FILES: tuple[str, ...] = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def check_hf_checkpoint_dir(path: str, weight_files: tuple[str, ...], what: str) -> Path:
    """Check that ``path`` is a local Hugging Face checkpoint directory.

    Raises:
        FileNotFoundError: naming ``path`` and the expected files when the directory, its
            ``config.json`` or every accepted weight file is missing.
    """
    root = Path(path).expanduser()
    expected = f"{HF_CONFIG_FILE} and one of {', '.join(weight_files)}"
    if not root.is_dir():
        raise FileNotFoundError(
            f"{what} checkpoint directory {str(root)!r} does not exist; expected a local "
            f"Hugging Face directory holding {expected}"
        )
    missing: list[str] = []
    if not (root / HF_CONFIG_FILE).is_file():
        missing.append(HF_CONFIG_FILE)
    if not any((root / name).is_file() for name in weight_files):
        missing.append(f"one of {', '.join(weight_files)}")
    if missing:
        raise FileNotFoundError(
            f"{what} checkpoint directory {str(root)!r} lacks {'; '.join(missing)} "
            f"(expected {expected})"
        )
    return root


@dataclass
class DINOv3BackboneConfig:
    """Typed config for :class:`DINOv3Backbone`.

    Exactly one of ``pretrained_dir`` (a local Hugging Face directory, e.g. a copy of
    ``facebook/dinov3-vitl16-pretrain-lvd1689m``) and ``model_config`` (keyword arguments of
    ``transformers.DINOv3ViTConfig``, random initialisation) must be set.

    Attributes:
        pretrained_dir: local checkpoint directory, or None.
        model_config: ``DINOv3ViTConfig`` keyword arguments, or None.
        image_size: ``(H, W)`` the frames are resized to (bilinear, antialiased) before the
            model, or None to use the frames as given (H and W must then be multiples of the
            patch size, 16).
        frozen: freeze all weights and keep the model in eval mode (no RoPE coordinate
            augmentation, no dropout) whatever the parent's mode.
        dtype: parameter dtype, one of ``float32``, ``bfloat16``, ``float16``.
    """

    pretrained_dir: str | None = None
    model_config: dict[str, Any] | None = field(default=None)
    image_size: tuple[int, int] | None = (224, 224)
    frozen: bool = True
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if (self.pretrained_dir is None) == (self.model_config is None):
            raise ValueError(
                "DINOv3BackboneConfig needs exactly one of pretrained_dir and model_config, got "
                f"pretrained_dir={self.pretrained_dir!r}, model_config={self.model_config!r}"
            )
        if self.image_size is not None:
            self.image_size = tuple(int(v) for v in self.image_size)  # type: ignore[assignment]
            if len(self.image_size) != 2 or min(self.image_size) <= 0:
                raise ValueError(f"image_size must be two positive ints, got {self.image_size!r}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")


class DINOv3Backbone(nn.Module):
    """DINOv3 ViT returning a row-major grid of normalised patch tokens per image."""

    def __init__(self, config: DINOv3BackboneConfig) -> None:
        super().__init__()
        self.config = config
        dtype = _DTYPES[config.dtype]
        if config.pretrained_dir is not None:
            root = check_hf_checkpoint_dir(config.pretrained_dir, DINOV3_WEIGHT_FILES, "DINOv3")
            self.model = DINOv3ViTModel.from_pretrained(
                str(root), local_files_only=True, dtype=dtype
            )
        else:
            assert config.model_config is not None
            self.model = DINOv3ViTModel(DINOv3ViTConfig(**config.model_config)).to(dtype)
        vit_cfg = self.model.config
        patch = vit_cfg.patch_size
        if not isinstance(patch, int):
            if len(set(patch)) != 1:
                raise ValueError(f"only square DINOv3 patches are supported, got {patch!r}")
            patch = int(patch[0])
        self.patch_size: int = int(patch)
        self.num_register_tokens: int = int(vit_cfg.num_register_tokens)
        self.hidden_size: int = int(vit_cfg.hidden_size)
        if config.image_size is not None and any(s % self.patch_size for s in config.image_size):
            raise ValueError(
                f"image_size {config.image_size} must be multiples of the patch size "
                f"{self.patch_size}"
            )
        self.register_buffer(
            "pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False
        )
        if config.frozen:
            self.model.requires_grad_(False)
            self.model.eval()
        logger.info(
            "DINOv3 backbone: %s, hidden %d, %d registers, patch %d, frozen=%s",
            config.pretrained_dir or "random init",
            self.hidden_size,
            self.num_register_tokens,
            self.patch_size,
            config.frozen,
        )

    def train(self, mode: bool = True) -> DINOv3Backbone:
        """Set train mode; a frozen backbone keeps its ViT in eval mode."""
        super().train(mode)
        if self.config.frozen:
            self.model.eval()
        return self

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid ``(gh, gw)`` produced for input frames of ``height`` x ``width``."""
        if self.config.image_size is not None:
            height, width = self.config.image_size
        return height // self.patch_size, width // self.patch_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encode images into patch tokens.

        Args:
            images: ``[N, 3, H, W]`` RGB in ``[0, 1]``. Resized to ``config.image_size`` when
                set; otherwise H and W must be multiples of the patch size (16).

        Returns:
            ``[N, gh, gw, C]`` patch tokens (after the final LayerNorm), row-major, with
            ``gh = H / 16``, ``gw = W / 16`` and ``C`` the ViT hidden size. CLS and register
            tokens are dropped.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [N, 3, H, W], got {tuple(images.shape)}")
        if (
            self.config.image_size is not None
            and tuple(images.shape[-2:]) != self.config.image_size
        ):
            images = F.interpolate(
                images.float(),
                size=self.config.image_size,
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        n, _, h, w = images.shape
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(
                f"image size {h}x{w} is not a multiple of the DINOv3 patch size {self.patch_size}"
            )
        gh, gw = h // self.patch_size, w // self.patch_size
        pixels = (images.float() - self.pixel_mean) / self.pixel_std  # [N, 3, H, W]
        hidden = self.model(pixel_values=pixels).last_hidden_state  # [N, 1 + R + gh*gw, C]
        prefix = 1 + self.num_register_tokens
        if hidden.shape[1] != prefix + gh * gw:
            raise ValueError(
                f"DINOv3 returned {hidden.shape[1]} tokens, expected 1 CLS + "
                f"{self.num_register_tokens} registers + {gh}x{gw} patches"
            )
        return hidden[:, prefix:].reshape(n, gh, gw, hidden.shape[-1])  # [N, gh, gw, C]
