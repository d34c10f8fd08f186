"""The random-init camera head's FoV outputs: alive (ReLU not dead) and starting at 90°."""

from __future__ import annotations

import math

import pytest
import torch

from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.vggt.model import VGGT


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_init_fov_is_positive_and_learns(seed: int) -> None:
    torch.manual_seed(seed)
    vggt = VGGT(FIHModelConfig.tiny().vggt)
    images = torch.rand(2, 3, 3, 32, 32)
    out = vggt(images, heads=("camera",))
    rounds = out["pose_enc_list"]
    n = len(rounds)
    for k, estimate in enumerate(rounds):  # round k: (k + 1) / n of 90°, for every input
        fov = estimate[..., 7:]
        assert torch.allclose(fov, torch.full_like(fov, math.pi / 2 * (k + 1) / n), atol=1e-6)
    # a loss on the FoVs reaches the head's parameters (a dead ReLU would give no gradient)
    (out["pose_enc"][..., 7:] - 1.0).abs().sum().backward()
    grad = vggt.camera_head.pose_branch.fc2.bias.grad
    assert grad is not None and bool((grad[7:].abs() > 0).all())
