"""VGGT camera head: iterative refinement of the 9-d pose encoding from the camera tokens.

Input: the camera token (index 0) of the last aggregator layer, [B, S, 2C]. Each of
`num_iterations` rounds embeds the previous (detached) estimate — or the learned
`empty_pose_tokens` in the first round — into shift/scale/gate vectors (adaLN), modulates the
normalised tokens, runs the `trunk` blocks (attention across the S frames) and adds the
`pose_branch` output as a delta. Activation of the 9-d encoding `absT_quaR_FoV`:
translation (3) and quaternion XYZW (4) linear, the two FoVs (fov_h, fov_w) through ReLU.

Random initialisation (our choice; released weights replace it): the FoV rows of the last
`pose_branch` layer start at weight 0 and bias ``FOV_INIT_RAD / num_iterations``, so every round's
FoV starts positive and the final estimate at 90°. With PyTorch's default init instead, the
ReLU of one FoV was dead for every input from the start in each of seeds 0-3 of the tiny
config (measured 2026-12-03; `tests/models/vggt/test_camera_head_init.py` checks the fix): that
FoV stays 0 for good, its loss term is constant, and a frustum computed from the predicted
cameras (`geometry_prior: vggt`) degenerates to an empty view.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from habitat_fih.models.vggt.config import CameraHeadConfig
from habitat_fih.models.vggt.layers import Block, Mlp

POSE_ENC_DIM = 9
#: FoV (radians) the random-init camera head starts from after its last round: 90°.
FOV_INIT_RAD = math.pi / 2


def activate_pose(pose_enc: Tensor) -> Tensor:
    """[..., 9] raw -> [..., 9] with T, quat linear and the FoVs through ReLU."""
    return torch.cat([pose_enc[..., :7], F.relu(pose_enc[..., 7:])], dim=-1)


class CameraHead(nn.Module):
    """Predicts `pose_enc` [B, S, 9] (absT_quaR_FoV) for each frame."""

    def __init__(self, dim_in: int, config: CameraHeadConfig) -> None:
        super().__init__()
        self.num_iterations = config.num_iterations
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, POSE_ENC_DIM))
        self.trunk = nn.Sequential(
            *(
                Block(
                    dim_in,
                    config.num_heads,
                    mlp_ratio=config.mlp_ratio,
                    layerscale_init=config.layerscale_init,
                )
                for _ in range(config.trunk_depth)
            )
        )
        self.token_norm = nn.LayerNorm(dim_in)
        self.trunk_norm = nn.LayerNorm(dim_in)
        self.embed_pose = nn.Linear(POSE_ENC_DIM, dim_in)
        # Index 1 is the Linear (index 0, SiLU, has no parameters) - as in the checkpoint.
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim_in, 3 * dim_in))
        self.adaln_norm = nn.LayerNorm(dim_in, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim_in, dim_in // 2, POSE_ENC_DIM)
        with torch.no_grad():  # FoV outputs alive from the first update (module docstring)
            self.pose_branch.fc2.weight[7:].zero_()
            self.pose_branch.fc2.bias[7:].fill_(FOV_INIT_RAD / self.num_iterations)

    def forward(self, tokens: list[Tensor], num_iterations: int | None = None) -> list[Tensor]:
        """tokens: aggregator outputs, each [B, S, P, 2C] -> list of activated [B, S, 9]
        estimates, one per refinement round (the last is the final prediction)."""
        pose_tokens = self.token_norm(tokens[-1][:, :, 0].float())  # [B, S, 2C]
        B, S, _ = pose_tokens.shape
        estimate: Tensor | None = None
        estimates: list[Tensor] = []
        for _ in range(num_iterations or self.num_iterations):
            if estimate is None:
                cond = self.embed_pose(self.empty_pose_tokens.expand(B, S, -1))
            else:
                cond = self.embed_pose(estimate.detach())  # [B, S, 2C]
            shift, scale, gate = self.poseLN_modulation(cond).chunk(3, dim=-1)
            modulated = gate * (self.adaln_norm(pose_tokens) * (1 + scale) + shift)
            x = self.trunk(modulated + pose_tokens)  # [B, S, 2C]
            delta = self.pose_branch(self.trunk_norm(x))  # [B, S, 9]
            estimate = delta if estimate is None else estimate + delta
            estimates.append(activate_pose(estimate))
        return estimates
