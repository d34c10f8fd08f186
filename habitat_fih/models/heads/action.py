"""Action head: VLN-CE discrete action logits from the LLM's final hidden state.

Action order follows VLN-CE / habitat's ``HabitatSimActions``: 0 STOP, 1 MOVE_FORWARD,
2 TURN_LEFT, 3 TURN_RIGHT.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ACTION_NAMES", "ActionHead"]

ACTION_NAMES: tuple[str, ...] = ("STOP", "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT")


class ActionHead(nn.Module):
    """Small MLP ``LayerNorm -> Linear -> GELU -> Dropout -> Linear`` to action logits.

    Args:
        hidden_size: ``D`` of the input hidden state.
        num_actions: number of discrete actions (4 for VLN-CE).
        mlp_dim: hidden width of the MLP (default ``max(hidden_size // 2, 1)``).
        dropout: dropout probability inside the MLP.
    """

    def __init__(
        self,
        hidden_size: int,
        num_actions: int = 4,
        mlp_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
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
        self.mlp = nn.Sequential(
            nn.LayerNorm(hidden_size),
            nn.Linear(hidden_size, mlp_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_dim, num_actions),
        )

    def forward(self, hidden: Tensor) -> Tensor:
        """Action logits.

        Args:
            hidden: ``[B, D]`` final hidden state (e.g. the last token's LLM state).

        Returns:
            ``[B, num_actions]`` unnormalised logits.
        """
        if hidden.dim() != 2 or hidden.shape[-1] != self.hidden_size:
            raise ValueError(
                f"ActionHead expects [B, D={self.hidden_size}], got shape {tuple(hidden.shape)}"
            )
        return self.mlp(hidden)
