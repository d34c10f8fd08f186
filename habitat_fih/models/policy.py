"""`FIHPolicy`: the habitat-baselines policy over `FIHModel` (registered as ``"FIHPolicy"``).

A thin adapter: it turns a batch of habitat observations into `FIHModel` inputs, returns the
model's action logits and per-keyframe heatmaps, picks one action per environment (`act`) and,
when targets are in the observations, the stage loss (`stage_loss`, the one loss path: used by
`evaluate_loss` and by the trainer's `Learner`). The policy is stateless — the frame
history travels in the observations — so it has no recurrent state.

Observation keys (names configurable through `FIHPolicyConfig`):

=====================  ====================================================================
``rgb_history``        uint8 [B, S, H, W, 3] (or float in [0, 1]) frame history; the LAST
                       valid slot is the current view. Required.
``rgb_history_mask``   bool [B, S], True at valid slots. Optional (all valid).
``rgb_history_index``  int [B, S] original step index of each slot. Optional (0..S-1).
``rgb_history_pose``   float [B, S, 9] VGGT pose encoding (absT_quaR_FoV) of each slot's
                       camera. Needed only by models with ``geometry_prior="input"``.
``instruction_text``   the instruction per env: a list / tuple of B strings, or an integer
                       tensor [B, L] of UTF-8 bytes right-padded with 0. Required.
``fih_heatmaps``       float [B, S, h, w] target map of every history slot on the current
                       view (optional; gathered at the chosen keyframes for the loss).
``fih_heatmaps_valid`` bool [B, S] validity of those targets (optional).
``fih_heatmaps_<kind>`` the targets of another kind the model predicts
                       (`FIHModelConfig.target_kinds`, e.g. ``fih_heatmaps_camera_position``),
                       with ``fih_heatmaps_<kind>_valid``; the key of covisibility is
                       ``fih_heatmaps``. Needed (for the loss) for every kind of the model.
``expert_action``      int [B] or [B, 1] expert action (optional; action loss term).
``nav_depth``          float [B, H, W] (or [B, H, W, 1]) the current view's depth in metres;
                       needed only by models whose ``action.inputs`` has ``depth``.
``previous_action``    int [B] the action taken at the previous step, -1 at an episode's
                       first step; needed only with ``action.inputs`` ``previous_action``.
``action_weights``     float [B] per-sample weight of the action loss, e.g. VLN-CE's
                       inflection weights (optional; without it the action loss is the plain
                       mean cross-entropy).
``align_pairs``        int [B, S, N, 2] per slot, N (current-view cell, keyframe cell) token
                       pairs that see the same surface (flat row-major token indices;
                       `habitat_fih.trainers.correspondences`). Pretraining's alignment term.
``align_pairs_mask``   bool [B, S, N] validity of those pairs.
``align_grid``         int [2], the token grid (th, tw) the pairs were made for (checked
                       against the model's).
=====================  ====================================================================

The pretraining stage's cross-frame alignment term (`losses.pretrain.alignment_weight`, on by
default) reads the model's fused tokens at the pairs of the chosen keyframes
(`habitat_fih.models.alignment`): `loss_inputs` adds ``align_feats_a`` / ``align_feats_b``
[B*K, N, D] to the predictions and ``align_mask`` [B*K, N] to the targets. A positive weight
without pairs in the observations is one ValueError naming the setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from habitat_baselines.common.baseline_registry import baseline_registry
from habitat_baselines.rl.ppo.policy import Policy, PolicyActionData
from torch import Tensor, nn

from habitat_fih.models.alignment import alignment_features
from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.fih_model import FIHModel, FIHOutput
from habitat_fih.models.losses import STAGES, LossConfig, compute_stage_loss, kind_suffix

__all__ = [
    "FIH_CONFIG_NODE",
    "FIHActionData",
    "FIHPolicy",
    "FIHPolicyConfig",
    "decode_instructions",
]

#: Where `FIHPolicy.from_config` looks for ``model`` (an `FIHModelConfig` mapping) and,
#: optionally, ``policy`` (an `FIHPolicyConfig` mapping) in the experiment config.
FIH_CONFIG_NODE = "habitat_baselines.fih"


@dataclass
class FIHPolicyConfig:
    """Observation keys and loss settings of `FIHPolicy` (None = the key is not used)."""

    rgb_history_key: str = "rgb_history"
    history_mask_key: str | None = "rgb_history_mask"
    frame_indices_key: str | None = "rgb_history_index"
    camera_pose_key: str | None = "rgb_history_pose"
    instruction_key: str = "instruction_text"
    target_heatmaps_key: str | None = "fih_heatmaps"
    target_valid_key: str | None = "fih_heatmaps_valid"
    expert_action_key: str | None = "expert_action"
    action_weights_key: str | None = "action_weights"
    align_pairs_key: str | None = "align_pairs"
    align_mask_key: str | None = "align_pairs_mask"
    align_grid_key: str | None = "align_grid"
    depth_key: str = "nav_depth"
    previous_action_key: str = "previous_action"
    goal_distance_key: str | None = "goal_distance"
    losses: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if isinstance(self.losses, dict):
            from habitat_fih.models.losses import (
                FinetuneLossConfig,
                MainLossConfig,
                PretrainLossConfig,
            )

            parts = {
                "pretrain": PretrainLossConfig,
                "finetune": FinetuneLossConfig,
                "main": MainLossConfig,
            }
            self.losses = LossConfig(
                **{k: parts[k](**v) if isinstance(v, dict) else v for k, v in self.losses.items()}
            )
        for name in ("rgb_history_key", "instruction_key"):
            if not getattr(self, name):
                raise ValueError(f"FIHPolicyConfig.{name} must be a non-empty key")


@dataclass
class FIHActionData(PolicyActionData):
    """`PolicyActionData` plus the model's heatmaps for the task's measures.

    Attributes:
        heatmaps: per env {original keyframe index: [h, w] logits}.
        heatmap_logits: [B, K, h, w].
        keyframe_indices: [B, K] (-1 = padding).
        action_logits: [B, A].
    """

    heatmaps: list[dict[int, Tensor]] | None = None
    heatmap_logits: Tensor | None = None
    keyframe_indices: Tensor | None = None
    action_logits: Tensor | None = None


def decode_instructions(value: Any, batch: int) -> list[str]:
    """B instruction strings from a list / tuple of str, one str (batch 1) or a [B, L] integer
    tensor of UTF-8 bytes right-padded with 0."""
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        texts = list(value)
    elif isinstance(value, Tensor) and not value.dtype.is_floating_point and value.ndim == 2:
        rows = value.to("cpu", torch.long).tolist()
        texts = [bytes(c for c in row if c != 0).decode("utf-8", errors="replace") for row in rows]
    else:
        raise ValueError(
            "instruction observation must be a list of str or a [B, L] integer tensor of UTF-8 "
            f"bytes, got {type(value).__name__}"
            + (f" with shape {tuple(value.shape)}" if isinstance(value, Tensor) else "")
        )
    if len(texts) != batch:
        raise ValueError(f"{len(texts)} instructions for {batch} environments")
    return texts


@baseline_registry.register_policy
class FIHPolicy(nn.Module, Policy):
    """habitat-baselines policy over `FIHModel` (see the module docstring for observations)."""

    def __init__(
        self, model: FIHModel, action_space: Any = None, config: FIHPolicyConfig | None = None
    ) -> None:
        nn.Module.__init__(self)
        Policy.__init__(self, action_space)
        self.model = model
        self.policy_config = config or FIHPolicyConfig()

    # ------------------------------------------------------------------ Policy interface
    @property
    def hidden_state_shape(self) -> tuple[int, int]:
        """No recurrent state: the history is in the observations."""
        return (0, 0)

    @property
    def hidden_state_shape_lens(self) -> list[int]:
        return [0]

    @property
    def recurrent_hidden_size(self) -> int:
        return 0

    @property
    def num_recurrent_layers(self) -> int:
        return 0

    def _get_policy_components(self) -> list[nn.Module]:
        return [self.model]

    @classmethod
    def from_config(
        cls,
        config: Any,
        observation_space: Any = None,
        action_space: Any = None,
        *,
        model_config: FIHModelConfig | None = None,
        policy_config: FIHPolicyConfig | None = None,
        tokenizer: Any = None,
        device: str | torch.device | None = None,
        **kwargs: Any,
    ) -> FIHPolicy:
        """Build the policy.

        `model_config` / `policy_config` win when given; otherwise they are read from the
        experiment config node `FIH_CONFIG_NODE` (`model` required, `policy` optional).
        `tokenizer` and `device` go to `build_model`.
        """
        from habitat_fih.models.factory import build_model

        if model_config is None or policy_config is None:
            from omegaconf import OmegaConf

            node = OmegaConf.select(config, FIH_CONFIG_NODE) if config is not None else None
            if model_config is None:
                if node is None or "model" not in node:
                    raise KeyError(
                        f"FIHPolicy.from_config needs model_config= or a '{FIH_CONFIG_NODE}.model'"
                        " node in the config"
                    )
                model_config = FIHModelConfig.from_dict(
                    OmegaConf.to_container(node.model, resolve=True)  # type: ignore[arg-type]
                )
            if policy_config is None and node is not None and "policy" in node:
                policy_config = FIHPolicyConfig(
                    **OmegaConf.to_container(node.policy, resolve=True)  # type: ignore[arg-type]
                )
        model = build_model(model_config, tokenizer=tokenizer, device=device)
        return cls(model, action_space, policy_config)

    # ------------------------------------------------------------------ inputs
    def model_inputs(
        self, observations: Mapping[str, Any]
    ) -> tuple[Tensor, Tensor | None, Tensor | None, list[str], Tensor | None]:
        """(frames [B, S, 3, H, W] in [0, 1], mask [B, S] | None, indices [B, S] | None,
        instructions, camera poses [B, S, 9] | None) from the observations (`FIHModel.forward`'s
        positional arguments)."""
        cfg = self.policy_config
        if cfg.rgb_history_key not in observations:
            raise KeyError(f"observation {cfg.rgb_history_key!r} (frame history) is missing")
        rgb = observations[cfg.rgb_history_key]
        if not isinstance(rgb, Tensor) or rgb.ndim != 5 or rgb.shape[-1] != 3:
            raise ValueError(
                f"observation {cfg.rgb_history_key!r} must be [B, S, H, W, 3], got "
                f"{tuple(rgb.shape) if isinstance(rgb, Tensor) else type(rgb).__name__}"
            )
        frames = rgb.permute(0, 1, 4, 2, 3)  # [B, S, 3, H, W]
        frames = frames.float() / 255.0 if rgb.dtype == torch.uint8 else frames.float()
        mask = self._optional(observations, cfg.history_mask_key)
        indices = self._optional(observations, cfg.frame_indices_key)
        if cfg.instruction_key not in observations:
            raise KeyError(f"observation {cfg.instruction_key!r} (instruction) is missing")
        texts = decode_instructions(observations[cfg.instruction_key], rgb.shape[0])
        poses = None
        if cfg.camera_pose_key is not None and cfg.camera_pose_key in observations:
            poses = observations[cfg.camera_pose_key].float()
        return (
            frames,
            None if mask is None else mask.bool(),
            None if indices is None else indices.long(),
            texts,
            poses,
        )

    def action_inputs(self, observations: Mapping[str, Any]) -> dict[str, Tensor]:
        """`FIHModel.forward`'s keyword inputs of the action head (``depth`` [B, H, W],
        ``previous_action`` [B]) that the model's ``action.inputs`` names; a missing one is a
        KeyError naming the observation key."""
        cfg = self.policy_config
        keys = {"depth": cfg.depth_key, "previous_action": cfg.previous_action_key}
        out: dict[str, Tensor] = {}
        for name in self.model.config.action.inputs:
            if keys[name] not in observations:
                raise KeyError(
                    f"observation {keys[name]!r} is missing: the model's action head reads "
                    f"{name!r} (FIHModelConfig.action.inputs)"
                )
            value = observations[keys[name]]
            if name == "depth" and value.ndim == 4 and value.shape[-1] == 1:
                value = value[..., 0]
            out[name] = value.reshape(-1) if name == "previous_action" else value
        return out

    @staticmethod
    def _optional(observations: Mapping[str, Any], key: str | None) -> Tensor | None:
        if key is None or key not in observations:
            return None
        value = observations[key]
        return value.squeeze(-1) if value.ndim == 3 and value.shape[-1] == 1 else value

    # ------------------------------------------------------------------ forward / loss
    def forward(self, observations: Mapping[str, Any]) -> FIHOutput:
        """Run the model on a batch of observations."""
        return self.model(*self.model_inputs(observations), **self.action_inputs(observations))

    def gather_targets(
        self, observations: Mapping[str, Any], output: FIHOutput
    ) -> dict[str, Tensor] | None:
        """Targets for `compute_stage_loss` at the chosen keyframes, or None without targets.

        `heatmaps` [B, K, h, w] = the per-slot targets at `output.keyframe_slots`; `valid`
        [B, K] = real keyframe slots whose target is valid (``heatmaps_<kind>`` /
        ``valid_<kind>`` for each further kind the model predicts, see the module docstring;
        None when the model's first kind's targets are absent, a KeyError when a later
        kind's are); `actions` [B] when present; `goal_distance` [B] metres when present.
        """
        cfg = self.policy_config
        if cfg.target_heatmaps_key is None:
            return None
        slots = output.keyframe_slots  # [B, K]
        b, k = slots.shape
        targets: dict[str, Tensor] = {}
        kinds = list(output.logits_by_kind())
        for kind in kinds:
            suffix = kind_suffix(kind)
            maps_key = f"{cfg.target_heatmaps_key}{suffix}"
            valid_key = cfg.target_valid_key if not suffix else f"{maps_key}_valid"
            maps = self._optional(observations, maps_key)
            if maps is None:
                if kind == kinds[0]:
                    return None
                raise KeyError(
                    f"observation {maps_key!r} ({kind} target heatmaps) is missing; the model "
                    f"predicts the target kinds {kinds}"
                )
            slots = slots.to(maps.device)
            if maps.ndim != 4 or maps.shape[0] != b:
                raise ValueError(
                    f"observation {maps_key!r} must be [B, S, h, w], got {tuple(maps.shape)}"
                )
            h, w = maps.shape[-2:]
            index = slots.clamp_min(0)[:, :, None, None].expand(b, k, h, w)
            targets[f"heatmaps{suffix}"] = maps.float().gather(1, index)  # [B, K, h, w]
            valid = slots >= 0
            slot_valid = self._optional(observations, valid_key)
            if slot_valid is not None:
                valid = valid & slot_valid.bool().to(slots.device).gather(1, slots.clamp_min(0))
            targets[f"valid{suffix}"] = valid
        actions = self._optional(observations, cfg.expert_action_key)
        if actions is not None:
            targets["actions"] = actions.reshape(b).long()
        weights = self._optional(observations, cfg.action_weights_key)
        if weights is not None:  # per-sample (inflection) weights of the action loss
            targets["action_weights"] = weights.reshape(b).float()
        distance = self._optional(observations, cfg.goal_distance_key)
        if distance is not None:  # the progress monitor's target, metres (NaN = unknown)
            targets["goal_distance"] = distance.reshape(b).float()
        device = output.heatmap_logits.device
        return {key: value.to(device) for key, value in targets.items()}

    def alignment_inputs(
        self, observations: Mapping[str, Any], output: FIHOutput
    ) -> tuple[Tensor, Tensor, Tensor] | None:
        """(``align_feats_a``, ``align_feats_b`` [B*K, N, D], ``align_mask`` [B*K, N]) of the
        chosen keyframes' pairs (`habitat_fih.models.alignment.alignment_features` on the fused
        tokens), or None when the observations carry no pairs.

        Raises:
            ValueError: pairs made for another token grid than the model's.
        """
        cfg = self.policy_config
        if cfg.align_pairs_key is None or cfg.align_pairs_key not in observations:
            return None
        pairs = observations[cfg.align_pairs_key]
        mask = (
            observations[cfg.align_mask_key]
            if cfg.align_mask_key is not None and cfg.align_mask_key in observations
            else torch.ones(pairs.shape[:-1], dtype=torch.bool, device=pairs.device)
        )
        if cfg.align_grid_key is not None and cfg.align_grid_key in observations:
            grid = tuple(int(v) for v in torch.as_tensor(observations[cfg.align_grid_key]).tolist())
            if grid != tuple(output.token_grid):
                raise ValueError(
                    f"the alignment pairs were made for a {grid[0]}x{grid[1]} token grid but the "
                    f"model's is {output.token_grid[0]}x{output.token_grid[1]}"
                )
        return alignment_features(output.fused_tokens, output.keyframe_slots, pairs, mask)

    def loss_inputs(
        self, observations: Mapping[str, Any], output: FIHOutput, stage: str
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """(``preds``, ``targets``) of `compute_stage_loss` for `stage`: the model's outputs and
        `gather_targets`, plus, in pretraining, the alignment features / mask
        (`alignment_inputs`).

        Raises:
            KeyError: no target heatmaps in the observations.
            ValueError: pretraining with ``losses.pretrain.alignment_weight`` > 0 and no
                alignment pairs in the observations.
        """
        targets = self.gather_targets(observations, output)
        if targets is None:
            raise KeyError(
                f"observation {self.policy_config.target_heatmaps_key!r} (target heatmaps) "
                "is missing"
            )
        preds: dict[str, Tensor] = output.loss_inputs()
        if stage != "pretrain":
            return preds, targets
        align = self.alignment_inputs(observations, output)
        weight = self.policy_config.losses.pretrain.alignment_weight
        if align is None:
            if weight > 0:
                raise ValueError(
                    f"the pretrain loss's alignment_weight is {weight} (the trainer's "
                    "habitat_baselines.fih.losses.pretrain.alignment_weight) but the batch has no "
                    f"cross-frame correspondences (observation {self.policy_config.align_pairs_key!r}"
                    ", made at collection from the frame_geometry sensor's cameras and current "
                    "depth and the frame_heatmaps covisibility): add those sensors or set the "
                    "weight to 0"
                )
            return preds, targets
        preds["align_feats_a"], preds["align_feats_b"], mask = align
        targets["align_mask"] = mask.to(output.heatmap_logits.device)
        return preds, targets

    def stage_loss(
        self, observations: Mapping[str, Any], output: FIHOutput, stage: str
    ) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """The stage loss of a forward's `output` against the targets in `observations`.

        habitat-fih's one loss path: `evaluate_loss` scores its own forward with it, the
        trainer's `Learner` a forward it ran through DDP (`habitat_fih.trainers.learner`).
        `loss_inputs` then `compute_stage_loss` with this policy's `LossConfig`.

        Returns:
            (total loss, logged terms, the targets it was computed on — `loss_inputs`'s second
            part, e.g. for logging the maps' quality).

        Raises:
            ValueError: an unknown `stage`, or `loss_inputs`'s errors.
            KeyError: `loss_inputs`'s, or a weighted term's missing input (`compute_stage_loss`).
        """
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        preds, targets = self.loss_inputs(observations, output, stage)
        total, terms = compute_stage_loss(stage, preds, targets, self.policy_config.losses)
        return total, terms, targets

    def evaluate_loss(
        self, observations: Mapping[str, Any], stage: str | None = None
    ) -> tuple[FIHOutput, Tensor, dict[str, Tensor]]:
        """Forward plus the stage loss against the targets in `observations` (`stage_loss`).

        Args:
            observations: must hold the target heatmaps (see the module docstring) and, in
                pretraining with a positive alignment weight, the alignment pairs.
            stage: one of `losses.STAGES`; default the model's current stage.

        Returns:
            (output, total loss, logged terms).
        """
        stage = stage or self.model.stage
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        output = self(observations)
        total, terms, _ = self.stage_loss(observations, output, stage)
        return output, total, terms

    @torch.no_grad()
    def act(
        self,
        observations: Mapping[str, Any],
        rnn_hidden_states: Tensor | None = None,
        prev_actions: Tensor | None = None,
        masks: Tensor | None = None,
        deterministic: bool = False,
    ) -> FIHActionData:
        """One action per environment: argmax (`deterministic`) or a sample of the softmax.

        Returns:
            `FIHActionData` with actions [B, 1] long, action_log_probs [B, 1],
            rnn_hidden_states passed through, and the heatmaps.
        """
        output = self(observations)
        logits = output.action_logits.float()  # [B, A]
        dist = torch.distributions.Categorical(logits=logits)
        actions = logits.argmax(-1) if deterministic else dist.sample()  # [B]
        return FIHActionData(
            rnn_hidden_states=rnn_hidden_states,
            actions=actions[:, None],
            action_log_probs=dist.log_prob(actions)[:, None],
            heatmaps=output.heatmaps,
            heatmap_logits=output.heatmap_logits,
            keyframe_indices=output.keyframe_indices,
            action_logits=output.action_logits,
        )
