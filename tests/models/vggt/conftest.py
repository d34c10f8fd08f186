"""Shared fixtures for the VGGT tests: a seeded tiny model and the released-layout tensor list."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from habitat_fih.models.vggt import VGGT, VGGTConfig

TSV = Path(__file__).resolve().parents[2] / "data" / "vggt_1b_state_dict.tsv"


def read_tsv() -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of every tensor of the released VGGT-1B checkpoint, in file order."""
    rows = []
    for line in TSV.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, shape, _dtype = line.split("\t")
        rows.append((key, tuple(int(d) for d in shape.split("x"))))
    return rows


@pytest.fixture
def tiny_config() -> VGGTConfig:
    return VGGTConfig.tiny()


@pytest.fixture
def tiny_model(tiny_config: VGGTConfig) -> VGGT:
    torch.manual_seed(0)
    return VGGT(tiny_config).eval()
