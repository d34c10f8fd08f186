"""DPT dense-prediction head used by VGGT for depth (2 channels) and world points (4 channels).

Tokens of four aggregator layers are LayerNorm-ed (`norm`), reshaped to the patch grid,
projected by 1x1 convs (`projects`) to `out_channels`, resampled to 4x, 2x, 1x and 1/2x the
grid (`resize_layers`), reduced to `features` channels (`scratch.layerN_rn`) and fused coarse to
fine by `scratch.refinenet4..1` (residual conv units, bilinear 2x upsampling). A 3x3 conv
(`output_conv1`) halves the width, the map is resized to the image resolution, and
`output_conv2` (3x3 conv, ReLU, 1x1 conv) gives the raw channels. A fixed sin/cos UV
position embedding (scale 0.1) is added after each projection and before `output_conv2`.

Activations: depth `exp`, points `inv_log` (sign(x) * (exp|x| - 1)); confidence `1 + exp`.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from habitat_fih.models.vggt.config import DPTHeadConfig

Activation = Literal["exp", "inv_log"]


def uv_grid(width: int, height: int, aspect_ratio: float, device: torch.device) -> Tensor:
    """Cell-centred UV coordinates [height, width, 2] spanning the unit-diagonal rectangle."""
    diag = (aspect_ratio**2 + 1.0) ** 0.5
    span_x, span_y = aspect_ratio / diag, 1.0 / diag
    xs = torch.linspace(
        -span_x * (width - 1) / width, span_x * (width - 1) / width, width, device=device
    )
    ys = torch.linspace(
        -span_y * (height - 1) / height, span_y * (height - 1) / height, height, device=device
    )
    vv, uu = torch.meshgrid(ys, xs, indexing="ij")  # [height, width] each
    return torch.stack([uu, vv], dim=-1)


def sincos_embed(coords: Tensor, dim: int, omega_0: float = 100.0) -> Tensor:
    """1D sin/cos embedding of coords [N] -> [N, dim] (dim even): [sin(p*w), cos(p*w)]."""
    omega = torch.arange(dim // 2, dtype=torch.float64, device=coords.device) / (dim / 2.0)
    omega = 1.0 / omega_0**omega  # [dim/2]
    angles = coords.double()[:, None] * omega[None]  # [N, dim/2]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def uv_position_embedding(
    channels: int, height: int, width: int, aspect_ratio: float, device: torch.device
) -> Tensor:
    """[channels, height, width]: half the channels encode u, half encode v."""
    uv = uv_grid(width, height, aspect_ratio, device).reshape(-1, 2)  # [h*w, 2]
    emb = torch.cat(
        [sincos_embed(uv[:, 0], channels // 2), sincos_embed(uv[:, 1], channels // 2)], dim=-1
    )  # [h*w, channels]
    return emb.reshape(height, width, channels).permute(2, 0, 1)


class ResidualConvUnit(nn.Module):
    """`relu(x) + conv2(relu(conv1(relu(x))))`.

    The skip adds the *activated* input: the released model applies an in-place ReLU to its
    input before the skip, so this reproduces its numbers with the released weights.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(x)
        return x + self.conv2(F.relu(self.conv1(x)))


class FusionBlock(nn.Module):
    """`out_conv(upsample(rcu2(x + rcu1(skip))))`; the coarsest block has no skip input."""

    def __init__(self, features: int, has_residual: bool = True) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1)
        if has_residual:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.has_residual = has_residual
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(
        self, x: Tensor, skip: Tensor | None = None, size: tuple[int, int] | None = None
    ) -> Tensor:
        if self.has_residual:
            if skip is None:
                raise ValueError("FusionBlock with has_residual=True needs a skip input")
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class Scratch(nn.Module):
    """Container matching the checkpoint's `scratch.*` names."""

    def __init__(
        self, in_channels: tuple[int, ...], features: int, out_dim: int, hidden: int
    ) -> None:
        super().__init__()
        self.layer1_rn = nn.Conv2d(in_channels[0], features, 3, padding=1, bias=False)
        self.layer2_rn = nn.Conv2d(in_channels[1], features, 3, padding=1, bias=False)
        self.layer3_rn = nn.Conv2d(in_channels[2], features, 3, padding=1, bias=False)
        self.layer4_rn = nn.Conv2d(in_channels[3], features, 3, padding=1, bias=False)
        self.refinenet1 = FusionBlock(features)
        self.refinenet2 = FusionBlock(features)
        self.refinenet3 = FusionBlock(features)
        self.refinenet4 = FusionBlock(features, has_residual=False)
        self.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
        self.output_conv2 = nn.Sequential(
            nn.Conv2d(features // 2, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, out_dim, 1),
        )


class DPTHead(nn.Module):
    """Dense head: aggregator tokens -> (prediction [B, S, H, W, out_dim-1], conf [B, S, H, W])."""

    def __init__(
        self,
        dim_in: int,
        patch_size: int,
        out_dim: int,
        activation: Activation,
        config: DPTHeadConfig,
    ) -> None:
        super().__init__()
        if activation not in ("exp", "inv_log"):
            raise ValueError(f"activation must be 'exp' or 'inv_log', got {activation!r}")
        if out_dim < 2:
            raise ValueError(f"out_dim must be >= 2 (values + confidence), got {out_dim}")
        oc = config.out_channels
        self.patch_size = patch_size
        self.activation = activation
        self.layer_indices = tuple(config.layer_indices)
        self.use_pos_embed = config.pos_embed
        self.frames_chunk_size = config.frames_chunk_size
        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList(nn.Conv2d(dim_in, c, 1) for c in oc)
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(oc[0], oc[0], kernel_size=4, stride=4),  # 4x up
                nn.ConvTranspose2d(oc[1], oc[1], kernel_size=2, stride=2),  # 2x up
                nn.Identity(),  # 1x
                nn.Conv2d(oc[3], oc[3], kernel_size=3, stride=2, padding=1),  # 2x down
            ]
        )
        self.scratch = Scratch(oc, config.features, out_dim, config.hidden_channels)
        # fixed UV embeddings by (channels, h, w, aspect, device, dtype); not state
        self._pos_cache: dict[tuple, Tensor] = {}

    def _pos(self, x: Tensor, height: int, width: int) -> Tensor:
        if not self.use_pos_embed:
            return x
        key = (x.shape[1], x.shape[2], x.shape[3], width / height, x.device, x.dtype)
        emb = self._pos_cache.get(key)
        if emb is None:  # a pure function of the key: computed once per shape and device
            emb = uv_position_embedding(key[0], key[1], key[2], key[3], x.device).to(x.dtype)
            self._pos_cache[key] = emb
        return x + 0.1 * emb[None]

    def _decode(
        self, tokens: list[Tensor], patch_start_idx: int, height: int, width: int
    ) -> Tensor:
        """tokens: the selected layers, each [B, s, P, 2C] -> raw map [B*s, out_dim, H, W]."""
        B, s = tokens[0].shape[:2]
        h, w = height // self.patch_size, width // self.patch_size
        feats = []
        for i, layer in enumerate(tokens):
            x = layer[:, :, patch_start_idx:].float().reshape(B * s, h * w, -1)  # [B*s, hw, 2C]
            x = self.norm(x)
            x = x.transpose(1, 2).reshape(B * s, -1, h, w)  # [B*s, 2C, h, w]
            x = self._pos(self.projects[i](x), height, width)  # [B*s, oc_i, h, w]
            feats.append(self.resize_layers[i](x))
        sc = self.scratch
        l1, l2, l3, l4 = (
            sc.layer1_rn(feats[0]),
            sc.layer2_rn(feats[1]),
            sc.layer3_rn(feats[2]),
            sc.layer4_rn(feats[3]),
        )
        out = sc.refinenet4(l4, size=tuple(l3.shape[-2:]))
        out = sc.refinenet3(out, l3, size=tuple(l2.shape[-2:]))
        out = sc.refinenet2(out, l2, size=tuple(l1.shape[-2:]))
        out = sc.refinenet1(out, l1)  # 2x of the finest level
        out = sc.output_conv1(out)  # [B*s, features/2, ., .]
        out = F.interpolate(
            out,
            size=(h * self.patch_size, w * self.patch_size),
            mode="bilinear",
            align_corners=True,
        )  # [B*s, features/2, H, W]
        out = self._pos(out, height, width)
        return sc.output_conv2(out)  # [B*s, out_dim, H, W]

    def _activate(self, raw: Tensor) -> tuple[Tensor, Tensor]:
        fmap = raw.permute(0, 2, 3, 1)  # [N, H, W, out_dim]
        values, conf = fmap[..., :-1], fmap[..., -1]
        if self.activation == "exp":
            values = torch.exp(values)
        else:
            values = torch.sign(values) * torch.expm1(values.abs())
        return values, 1.0 + conf.exp()

    def forward(
        self, tokens: list[Tensor], image_hw: tuple[int, int], patch_start_idx: int
    ) -> tuple[Tensor, Tensor]:
        """Decode dense maps.

        Args:
            tokens: all aggregator outputs, each [B, S, P, 2C].
            image_hw: (H, W) of the input images.
            patch_start_idx: index of the first patch token.

        Returns:
            values [B, S, H, W, out_dim - 1] and confidence [B, S, H, W], both float32.
        """
        height, width = image_hw
        selected = [tokens[i] for i in self.layer_indices]
        B, S = selected[0].shape[:2]
        chunk = self.frames_chunk_size if self.frames_chunk_size > 0 else S
        values, confs = [], []
        for start in range(0, S, chunk):
            part = [t[:, start : start + chunk] for t in selected]
            s = part[0].shape[1]
            v, c = self._activate(self._decode(part, patch_start_idx, height, width))
            values.append(v.reshape(B, s, height, width, -1))  # [B, s, H, W, out_dim-1]
            confs.append(c.reshape(B, s, height, width))
        return torch.cat(values, dim=1), torch.cat(confs, dim=1)
