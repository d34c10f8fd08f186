"""Action head: VLN-CE discrete action logits from the LLM's final hidden state, optionally
with the extra inputs VLN-CE's own baselines act on (`ActionInputEncoder`) and a progress
monitor (the remaining distance to the goal, `ActionHead.forward_all`).

Action order follows VLN-CE / habitat's ``HabitatSimActions``: 0 STOP, 1 MOVE_FORWARD,
2 TURN_LEFT, 3 TURN_RIGHT.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["ACTION_INPUTS", "ACTION_NAMES", "ActionHead", "ActionInputEncoder"]

ACTION_NAMES: tuple[str, ...] = ("STOP", "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT")

#: the action head's optional extra inputs (`ActionHeadConfig.inputs`), in this order
ACTION_INPUTS: tuple[str, ...] = ("depth", "previous_action")


class ActionInputEncoder(nn.Module):
    """Features of the action head's extra inputs, concatenated in `ACTION_INPUTS` order.

    - ``depth``: the current view's depth [B, H, W] in metres, fed as depth / `max_depth`
      clipped to [0, 1] (NaN / inf = saturated) through ``Conv(1->16, 5, s2) - GELU -
      Conv(16->32, 3, s2) - GELU - AdaptiveAvgPool(4) - Linear(512 -> depth_dim) - GELU``; any
      resolution (the pooling fixes the size), in the spirit of VLN-CE's depth encoder but
      trained from scratch.
    - ``previous_action``: [B] long, the action taken at the previous step, or -1 at an
      episode's first step (its own embedding row), through ``Embedding(num_actions + 1,
      action_dim)``.

    Args:
        inputs: a subset of `ACTION_INPUTS`, in that order (non-empty).
        num_actions: discrete actions (the embedding has one more row: "none").
        max_depth: metres at which depth saturates.
        depth_dim / action_dim: feature widths.
    """

    def __init__(
        self,
        inputs: Sequence[str],
        num_actions: int,
        max_depth: float = 10.0,
        depth_dim: int = 64,
        action_dim: int = 32,
    ) -> None:
        super().__init__()
        inputs = tuple(inputs)
        if not inputs or inputs != tuple(k for k in ACTION_INPUTS if k in inputs):
            raise ValueError(
                f"ActionInputEncoder inputs must be a non-empty subset of {list(ACTION_INPUTS)} "
                f"in that order, got {list(inputs)}"
            )
        if not max_depth > 0:
            raise ValueError(f"ActionInputEncoder max_depth must be > 0, got {max_depth!r}")
        self.inputs = inputs
        self.num_actions = int(num_actions)
        self.max_depth = float(max_depth)
        self.out_dim = 0
        if "depth" in inputs:
            self.depth = nn.Sequential(
                nn.Conv2d(1, 16, 5, stride=2, padding=2),
                nn.GELU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1),
                nn.GELU(),
                nn.AdaptiveAvgPool2d(4),
                nn.Flatten(),
                nn.Linear(32 * 16, depth_dim),
                nn.GELU(),
            )
            self.out_dim += depth_dim
        if "previous_action" in inputs:
            self.previous = nn.Embedding(self.num_actions + 1, action_dim)
            self.out_dim += action_dim

    def forward(self, depth: Tensor | None, previous_action: Tensor | None, batch: int) -> Tensor:
        """[B, out_dim] features; every configured input is required (ValueError naming it)."""
        parts = []
        if "depth" in self.inputs:
            if depth is None or depth.ndim != 3 or depth.shape[0] != batch:
                got = None if depth is None else tuple(depth.shape)
                raise ValueError(
                    f"the action head's input 'depth' (ActionHeadConfig.inputs) needs depth "
                    f"[B={batch}, H, W] in metres, got {got}"
                )
            x = torch.nan_to_num(depth.float(), nan=self.max_depth, posinf=self.max_depth)
            x = (x / self.max_depth).clamp(0.0, 1.0)[:, None]  # [B, 1, H, W]
            conv = self.depth[0]
            parts.append(self.depth(x.to(conv.weight.device, conv.weight.dtype)))
        if "previous_action" in self.inputs:
            if previous_action is None or tuple(previous_action.shape) != (batch,):
                got = None if previous_action is None else tuple(previous_action.shape)
                raise ValueError(
                    "the action head's input 'previous_action' (ActionHeadConfig.inputs) needs "
                    f"previous_action [B={batch}] long (-1 = none), got {got}"
                )
            prev = previous_action.long()
            if bool(((prev < -1) | (prev >= self.num_actions)).any()):
                raise ValueError(
                    f"previous_action values must be in [-1, {self.num_actions - 1}] (-1 = "
                    f"none), got {sorted(set(prev.tolist()))}"
                )
            row = torch.where(prev < 0, torch.full_like(prev, self.num_actions), prev)
            parts.append(self.previous(row.to(self.previous.weight.device)))
        return torch.cat(parts, dim=-1)


class ActionHead(nn.Module):
    """Small MLP ``LayerNorm -> Linear -> GELU -> Dropout -> Linear`` to action logits, over
    the hidden state concatenated with the `ActionInputEncoder` features when `inputs` is
    non-empty. With `goal_distance`, a second ``Linear(mlp_dim -> 1)`` on the MLP's hidden
    layer predicts the remaining distance to the goal, ``distance_scale * softplus(raw)``
    metres (non-negative), sharing the layer the action logits are read from so that its
    dense per-step target shapes the features STOP is decided on.

    Args:
        hidden_size: ``D`` of the input hidden state.
        num_actions: number of discrete actions (4 for VLN-CE).
        mlp_dim: hidden width of the MLP (default ``max(hidden_size // 2, 1)``).
        dropout: dropout probability inside the MLP.
        inputs: the extra inputs (`ACTION_INPUTS`); empty = the hidden state alone.
        max_depth: metres at which the depth input saturates.
        goal_distance: also predict the remaining distance to the goal (`forward_all`).
        distance_scale: metres per unit of the distance output.
    """

    def __init__(
        self,
        hidden_size: int,
        num_actions: int = 4,
        mlp_dim: int | None = None,
        dropout: float = 0.0,
        inputs: Sequence[str] = (),
        max_depth: float = 10.0,
        goal_distance: bool = False,
        distance_scale: float = 10.0,
    ) -> None:
        super().__init__()
        if not distance_scale > 0:
            raise ValueError(f"ActionHead distance_scale must be > 0, got {distance_scale!r}")
        if not isinstance(hidden_size, int) or hidden_size < 1:
            raise ValueError(f"ActionHead hidden_size must be an int >= 1, got {hidden_size!r}")
        if not isinstance(num_actions, int) or num_actions < 2:
            raise ValueError(f"ActionHead num_actions must be an int >= 2, got {num_actions!r}")
        mlp_dim = max(hidden_size // 2, 1) if mlp_dim is None else mlp_dim
        if not isinstance(mlp_dim, int) or mlp_dim < 1:
            raise ValueError(f"ActionHead mlp_dim must be an int >= 1, got {mlp_dim!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"ActionHead dropout must be in [0, 1), got {dropout}")
        self.hidden_size = hidden_size
        self.num_actions = num_actions
        self.extra = ActionInputEncoder(inputs, num_actions, max_depth) if tuple(inputs) else None
        width = hidden_size + (0 if self.extra is None else self.extra.out_dim)
        self.mlp = nn.Sequential(
            nn.LayerNorm(width),
            nn.Linear(width, mlp_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_dim, num_actions),
        )
        # (a separate module, absent without the option: older checkpoints keep their keys)
        self.distance = nn.Linear(mlp_dim, 1) if goal_distance else None
        self.distance_scale = float(distance_scale)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The extra inputs this head needs (empty: the hidden state alone)."""
        return () if self.extra is None else self.extra.inputs

    @property
    def predicts_distance(self) -> bool:
        """Whether the head predicts the remaining distance to the goal."""
        return self.distance is not None

    def forward(
        self,
        hidden: Tensor,
        depth: Tensor | None = None,
        previous_action: Tensor | None = None,
    ) -> Tensor:
        """Action logits ``[B, num_actions]`` (`forward_all`'s first part)."""
        return self.forward_all(hidden, depth, previous_action)[0]

    def forward_all(
        self,
        hidden: Tensor,
        depth: Tensor | None = None,
        previous_action: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Action logits and the predicted remaining distance to the goal.

        Args:
            hidden: ``[B, D]`` final hidden state (e.g. the last token's LLM state).
            depth: ``[B, H, W]`` current depth in metres (needed with the ``depth`` input).
            previous_action: ``[B]`` previous action, -1 = none (needed with
                ``previous_action``).

        Returns:
            ``([B, num_actions]`` unnormalised logits, ``[B]`` metres >= 0 or None without
            `goal_distance`).
        """
        if hidden.dim() != 2 or hidden.shape[-1] != self.hidden_size:
            raise ValueError(
                f"ActionHead expects [B, D={self.hidden_size}], got shape {tuple(hidden.shape)}"
            )
        if self.extra is not None:
            features = self.extra(depth, previous_action, hidden.shape[0])
            hidden = torch.cat([hidden, features.to(hidden.dtype)], dim=-1)
        inner = self.mlp[:-1](hidden)
        logits = self.mlp[-1](inner)
        if self.distance is None:
            return logits, None
        metres = self.distance_scale * nn.functional.softplus(self.distance(inner)[:, 0])
        return logits, metres
