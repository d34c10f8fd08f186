"""Procedural surface textures for the synthetic houses (wood, tiles, carpet, paint, fabric, ...).

Every texture is a small RGB image built from a greyscale *pattern* (structure: planks, grout,
weave, leaves, noise) multiplied by a base colour, so rendered frames carry real visual structure
rather than flat colour. Images are returned JPEG-encoded (``Image.format == "JPEG"``) so trimesh
keeps them as JPEG inside the .glb, which keeps the bundled scenes small. Everything is
deterministic given the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

__all__ = ["TEXTURE_KINDS", "pattern", "procedural_texture", "texture_image"]

TEXTURE_KINDS: tuple[str, ...] = (
    "wood", "tiles", "carpet", "paint", "fabric", "marble", "leaves", "plastic", "metal", "canvas",
)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Value noise in [0, 1]: a ``cells x cells`` random lattice bilinearly upsampled (tileable)."""
    lattice = rng.random((cells, cells), dtype=np.float32)
    t = np.arange(size, dtype=np.float32) * cells / size
    i0 = np.floor(t).astype(np.int64)
    f = t - i0
    f = f * f * (3 - 2 * f)
    i1 = (i0 + 1) % cells
    rows = lattice[i0] * (1 - f)[:, None] + lattice[i1] * f[:, None]  # [size, cells]
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i1] * f[None, :]


def pattern(kind: str, rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """Greyscale structure ``float32 [size, size]`` around 1.0 for texture ``kind``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    noise = rng.random((size, size), dtype=np.float32)
    if kind == "wood":
        planks = int(rng.integers(3, 7))
        plank = np.floor(xx * planks)
        offset = rng.random(planks).astype(np.float32)[plank.astype(np.int64)]
        grain = 0.5 + 0.5 * np.sin(2 * np.pi * (18 * yy + 5 * offset) + 4 * _smooth_noise(rng, size, 8))
        seam = (np.mod(xx * planks, 1.0) < 0.03) | (np.mod(yy + offset, 1.0) < 0.015)
        shade = 0.82 + 0.12 * grain + 0.08 * (offset - 0.5) + 0.04 * noise
        shade = np.where(seam, 0.55, shade)
    elif kind == "tiles":
        n = int(rng.choice([4, 6, 8]))
        grout = (np.mod(xx * n, 1.0) < 0.05) | (np.mod(yy * n, 1.0) < 0.05)
        tile_id = (np.floor(xx * n) * 7 + np.floor(yy * n) * 13) % 5
        shade = np.where(grout, 0.55, 0.92 + 0.03 * tile_id / 4 + 0.05 * noise)
    elif kind == "carpet":
        shade = 0.8 + 0.12 * _smooth_noise(rng, size, 16) + 0.15 * noise
    elif kind == "fabric":
        f = float(rng.uniform(40, 70))
        weave = 0.5 + 0.5 * np.sin(f * xx * np.pi) * np.sin(f * yy * np.pi)
        shade = 0.78 + 0.15 * weave + 0.07 * noise
    elif kind == "paint":
        shade = 0.93 + 0.06 * _smooth_noise(rng, size, 8) + 0.02 * noise
    elif kind == "marble":
        veins = np.abs(np.sin(2 * np.pi * (xx + yy + 1.5 * _smooth_noise(rng, size, 4))))
        shade = 0.85 + 0.12 * veins ** 0.3 + 0.03 * noise
    elif kind == "leaves":
        blobs = _smooth_noise(rng, size, 16)
        shade = 0.55 + 0.6 * blobs + 0.15 * noise
    elif kind == "plastic":
        shade = 0.95 + 0.05 * noise
    elif kind == "metal":
        brushed = np.repeat(rng.random((size, 1), dtype=np.float32), size, axis=1)
        shade = 0.85 + 0.1 * brushed + 0.03 * noise
    elif kind == "canvas":  # a framed picture: random colour blobs inside a dark frame
        blobs = _smooth_noise(rng, size, 4)
        frame = (xx < 0.08) | (xx > 0.92) | (yy < 0.08) | (yy > 0.92)
        shade = np.where(frame, 0.25, 0.5 + 0.9 * blobs)
    else:
        raise ValueError(f"unknown texture kind {kind!r}; expected one of {', '.join(TEXTURE_KINDS)}")
    return shade.astype(np.float32)


def texture_image(shade: np.ndarray, rgb: tuple[float, float, float], rng: np.random.Generator | None = None,
                  hue_jitter: float = 0.0) -> Image.Image:
    """Colourise a pattern with ``rgb`` (floats in [0, 1]); returns a JPEG-backed PIL image."""
    base = np.asarray(rgb, dtype=np.float32)
    if rng is not None and hue_jitter > 0:
        base = base * rng.uniform(1 - hue_jitter, 1 + hue_jitter, size=3).astype(np.float32)
    out = np.clip(shade[..., None] * base[None, None, :], 0, 1)
    image = Image.fromarray((out * 255 + 0.5).astype(np.uint8), mode="RGB")
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=85)
    buf.seek(0)
    jpeg = Image.open(buf)
    jpeg.load()
    return jpeg


def procedural_texture(kind: str, rng: np.random.Generator, size: int = 128,
                       rgb: tuple[float, float, float] | None = None) -> Image.Image:
    """An RGB texture of ``kind`` (see :data:`TEXTURE_KINDS`), coloured ``rgb`` or a random colour."""
    shade = pattern(kind, rng, size)
    if rgb is None:
        rgb = tuple(float(c) for c in rng.uniform(0.35, 0.85, size=3))
    return texture_image(shade, rgb)
