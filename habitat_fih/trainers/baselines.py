"""Baseline agents, evaluated in the same format as the policy (``stats_{agent}_{split}.json``).

Navigation baselines (no heatmap prediction, so their heatmap metrics are null / not scored):

- ``random``: a uniformly random action among STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT (seeded);
- ``forward``: always MOVE_FORWARD (the episode ends at the step cap);
- ``expert``: the task's shortest-path expert (the upper bound of navigation).

Heatmap baselines predict a map for every past frame of the sample's frame history (the memory
subsampled to ``collection.max_frames - 1`` frames, as the policy's input) and take the expert's
actions (``eval.baseline_actions=expert``, default: they walk the same path as the teacher-forced
policy evaluation) or always move forward (``forward``):

- ``uniform``: every cell = ``eval.uniform_value``;
- ``center``: a Gaussian centred on the view, peak 1, sigma = ``eval.center_sigma`` x map side.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from habitat_fih.trainers.collector import StepView, make_action

__all__ = ["BASELINES", "ActionAgreement", "BaselineAgent", "baseline_maps"]

BASELINES: tuple[str, ...] = ("random", "forward", "expert", "uniform", "center")
STOP, FORWARD = 0, 1


def baseline_maps(kind: str, size: tuple[int, int], value: float, sigma: float) -> np.ndarray:
    """One [h, w] map of the ``uniform`` or ``center`` baseline, values in [0, 1]."""
    h, w = size
    if kind == "uniform":
        return np.full((h, w), float(value), dtype=np.float32)
    if kind == "center":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
        s = sigma * max(h, w)
        return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s)).astype(np.float32)
    raise ValueError(f"unknown heatmap baseline {kind!r}; expected 'uniform' or 'center'")


class ActionAgreement:
    """Per episode, how often the policy's own action equals the expert's at the same view.

    ``rate`` = agreeing steps / steps; ``always_forward`` = the rate an always-MOVE_FORWARD
    policy would get on the same steps (the share of expert FORWARD actions), the like-for-like
    bar a policy must clear to have learned more than the most common action. On the expert's
    path (``action_source='expert'``) this is teacher-forced accuracy; on its own path, the
    agreement on the states the policy reached.
    """

    def __init__(self) -> None:
        self._counts: dict[str, np.ndarray] = {}

    def record(self, episode_id: str, action: int, expert_action: int) -> None:
        counts = self._counts.setdefault(episode_id, np.zeros(3, dtype=np.int64))
        counts += (1, int(action) == int(expert_action), int(expert_action) == FORWARD)

    def episode_metrics(self, episode_id: str) -> dict[str, float]:
        steps, agree, forward = self._counts.get(episode_id, np.zeros(3, dtype=np.int64))
        if steps == 0:
            return {"rate": math.nan, "always_forward": math.nan, "steps": 0.0}
        return {
            "rate": float(agree / steps),
            "always_forward": float(forward / steps),
            "steps": float(steps),
        }


class BaselineAgent:
    """A `run_episodes` decider for one of `BASELINES` (`agreement`: its actions vs the
    expert's, as for the policy)."""

    def __init__(
        self,
        kind: str,
        seed: int,
        map_size: tuple[int, int],
        actions: str = "expert",
        uniform_value: float = 0.5,
        center_sigma: float = 0.25,
        num_actions: int = 4,
    ) -> None:
        if kind not in BASELINES:
            raise ValueError(f"unknown baseline agent {kind!r}; expected one of {BASELINES}")
        if actions not in ("expert", "forward"):
            raise ValueError(
                f"eval.baseline_actions must be 'expert' or 'forward', got {actions!r}"
            )
        self.kind = kind
        self.rng = np.random.default_rng(seed)
        self.actions = actions
        self.num_actions = num_actions
        self.map = (
            baseline_maps(kind, map_size, uniform_value, center_sigma)
            if kind in ("uniform", "center")
            else None
        )
        self.agreement = ActionAgreement()

    def _action(self, view: StepView) -> int:
        if self.kind == "random":
            return int(self.rng.integers(self.num_actions))
        if self.kind == "forward":
            return FORWARD
        if self.kind == "expert":
            return view.expert_action
        return view.expert_action if self.actions == "expert" else FORWARD

    def __call__(self, views: list[StepView]) -> list[dict[str, Any]]:
        out = []
        for view in views:
            prediction = None
            if self.map is not None:
                past = view.indices[:-1]
                prediction = {
                    "maps": np.repeat(self.map[None], len(past), axis=0),
                    "frame_indices": past.copy(),
                }
            action = self._action(view)
            self.agreement.record(view.episode_id, action, view.expert_action)
            out.append(make_action(action, prediction))
        return out
