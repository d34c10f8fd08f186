"""Training stages of the ``fih`` trainer: what one stage trains with, and ``fih.schedule``.

- `policy_config`: the policy's loss settings, the trainer's ``habitat_baselines.fih.losses``
  overrides on the `LossConfig` defaults.
- `action_losses`, `stage_trains_actions`, `inflection_coef`: the stage's action term. Only a
  stage that trains the action head with a positive weight lets the policy drive in DAgger
  collection (pretrain, and finetune with its default ``action_weight: 0``, collect with the
  expert alone); collected samples carry VLN-CE inflection weights with the stage's coefficient.
- `alignment_weights`, `alignment_settings`: pretraining's cross-frame alignment term (its
  weight in each pretrain stage of the run; how collection makes its token pairs).
- `vggt_loss_config`: the ``vggt`` stage's loss settings (``losses.vggt``,
  `habitat_fih.models.vggt.losses.VGGTLossConfig`).
- `stage_configs`: the (checkpoint folder, config) of every stage of ``fih.schedule``, run one
  after another by `FIHTrainer.train`; a finished stage leaves `STAGE_DONE_FILE`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from habitat.config import read_write
from omegaconf import OmegaConf

from habitat_fih.config.trainer_configs import FIHTrainerConfig
from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.losses import TRAINING_STAGES, VGGT_STAGE
from habitat_fih.models.policy import FIHPolicyConfig
from habitat_fih.models.spec import deep_merge
from habitat_fih.models.vggt.losses import VGGTLossConfig
from habitat_fih.trainers.correspondences import CorrespondenceSettings

__all__ = [
    "ALIGNMENT_SETTING",
    "STAGE_DONE_FILE",
    "action_losses",
    "alignment_settings",
    "alignment_weights",
    "inflection_coef",
    "policy_config",
    "stage_configs",
    "stage_trains_actions",
    "vggt_loss_config",
]

#: Written in a stage's checkpoint folder when the stage finished (a schedule skips it then).
STAGE_DONE_FILE = "stage_done.json"
ALIGNMENT_SETTING = "habitat_baselines.fih.losses.pretrain.alignment_weight"


def _plain(node: Any) -> Any:
    """A config node as plain containers (a dict stays as is)."""
    return dict(node) if isinstance(node, dict) else OmegaConf.to_container(node, resolve=True)


def _losses_dict(losses: Any) -> dict[str, Any]:
    if losses is not None and not isinstance(losses, dict):  # a DictConfig from Hydra
        losses = OmegaConf.to_container(losses, resolve=True)
    return dict(losses or {})


def policy_config(losses: Any) -> FIHPolicyConfig:
    """Policy config with the trainer's loss overrides (``habitat_baselines.fih.losses``; unnamed
    weights keep the `LossConfig` defaults, pretraining's cross-frame alignment included). The
    ``vggt`` entry is the vggt stage's (`vggt_loss_config`)."""
    losses = {k: v for k, v in _losses_dict(losses).items() if k != VGGT_STAGE}
    return FIHPolicyConfig(losses=losses)  # type: ignore[arg-type]


def vggt_loss_config(losses: Any) -> VGGTLossConfig:
    """The ``vggt`` stage's loss settings: ``habitat_baselines.fih.losses.vggt`` over the
    `VGGTLossConfig` defaults (an unknown key is one ValueError naming it and the known ones)."""
    entry = _losses_dict(losses).get(VGGT_STAGE) or {}
    known = {f.name for f in dataclasses.fields(VGGTLossConfig)}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ValueError(
            f"habitat_baselines.fih.losses.vggt has unknown keys {unknown}; known: {sorted(known)}"
        )
    return VGGTLossConfig(**entry)


def action_losses(trainer_config: Any) -> Any:
    """The loss config holding the stage's action term (finetune's for pretrain, which has
    none); `trainer_config` is ``habitat_baselines.fih``."""
    losses = policy_config(trainer_config.losses).losses
    return losses.main if trainer_config.stage == "main" else losses.finetune


def stage_trains_actions(trainer_config: Any, model_config: FIHModelConfig) -> bool:
    """Whether the stage trains the action head with a non-zero action loss."""
    stage = trainer_config.stage
    if stage in ("pretrain", VGGT_STAGE) or not model_config.stages[stage].train_action_head:
        return False
    return action_losses(trainer_config).action_weight > 0


def inflection_coef(trainer_config: Any) -> float:
    """The stage's VLN-CE inflection coefficient (the weight of a collected sample whose expert
    action differs from the previous step's, `habitat_fih.models.losses.inflection_weight`)."""
    return float(action_losses(trainer_config).inflection_coef)


def alignment_weights(trainer_config: Any) -> list[float]:
    """Pretraining alignment weights of the run's pretrain stages (itself, or the entries of
    ``fih.schedule``; `policy_config` defaults for unnamed weights)."""
    base = OmegaConf.to_container(trainer_config.losses, resolve=True) or {}
    entries = [_plain(e) for e in trainer_config.schedule] or [{"stage": trainer_config.stage}]
    weights = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("stage") != "pretrain":
            continue  # (a malformed entry is named by stage_configs)
        losses = deep_merge(dict(base), dict(entry.get("losses") or {}))  # type: ignore[arg-type]
        weights.append(policy_config(losses).losses.pretrain.alignment_weight)
    return weights


def alignment_settings(
    trainer_config: Any, task_config: Any, token_grid: tuple[int, int]
) -> CorrespondenceSettings | None:
    """How the stage's collection makes alignment pairs on the model's `token_grid`, or None
    when it needs none (not pretraining, or an alignment weight of 0); `task_config` is
    ``habitat.task`` (its covisibility tolerances)."""
    if trainer_config.stage != "pretrain":
        return None
    pretrain = policy_config(trainer_config.losses).losses.pretrain
    if not pretrain.alignment_weight > 0:
        return None
    return CorrespondenceSettings(
        grid=token_grid,
        num_pairs=int(pretrain.alignment_pairs),
        seed=int(trainer_config.seed),
        abs_tol=float(task_config.get("covisibility_abs_tol", 0.05)),
        rel_tol=float(task_config.get("covisibility_rel_tol", 0.02)),
    )


def stage_configs(config: Any) -> list[tuple[str, Any]]:
    """(checkpoint folder, config) of every stage of ``habitat_baselines.fih.schedule``.

    Each entry is a mapping of ``fih`` overrides with at least ``stage``, merged onto the run's
    ``fih`` node with its types checked (an unknown key or a wrong type is one ValueError naming
    the entry). Stage k > 0 gets ``pretrained_checkpoint = <stage k-1 folder>`` (resolved to its
    last checkpoint when it starts); earlier stages write to ``checkpoint_folder/stage{k}_{stage}``
    (TensorBoard: ``tensorboard_dir/stage{k}_{stage}``), the last one to ``checkpoint_folder``.
    """
    baselines_config = config.habitat_baselines
    trainer_config = baselines_config.fih
    checkpoint_folder = baselines_config.checkpoint_folder
    schedule = [_plain(e) for e in trainer_config.schedule]
    out: list[tuple[str, Any]] = []
    previous = str(trainer_config.pretrained_checkpoint or "")
    tensorboard_dir = str(baselines_config.tensorboard_dir)
    for k, entry in enumerate(schedule):
        if not isinstance(entry, dict) or entry.get("stage") not in TRAINING_STAGES:
            raise ValueError(
                f"habitat_baselines.fih.schedule[{k}] must be a mapping with stage in "
                f"{TRAINING_STAGES}, got {entry!r}"
            )
        for key in ("schedule", "pretrained_checkpoint"):
            if key in entry:
                raise ValueError(f"habitat_baselines.fih.schedule[{k}] may not set {key!r}")
        last = k == len(schedule) - 1
        name = f"stage{k}_{entry['stage']}"
        folder = checkpoint_folder if last else os.path.join(checkpoint_folder, name)
        try:  # typed merge: an unknown key or a wrong type is an error naming it
            stage_fih = OmegaConf.merge(
                OmegaConf.structured(FIHTrainerConfig),
                OmegaConf.to_container(trainer_config, resolve=True),
                entry,
            )
        except Exception as exc:
            raise ValueError(f"habitat_baselines.fih.schedule[{k}]: {exc}") from exc
        stage_fih.schedule = []
        stage_fih.pretrained_checkpoint = previous
        if stage_fih.resume_state_file:
            stage_fih.resume_state_file = f"{stage_fih.resume_state_file}.{name}"
        stage_config = OmegaConf.create(OmegaConf.to_container(config, resolve=True))
        with read_write(stage_config):
            stage_config.habitat_baselines.fih = stage_fih
            stage_config.habitat_baselines.checkpoint_folder = folder
            stage_config.habitat_baselines.tensorboard_dir = os.path.join(tensorboard_dir, name)
        out.append((folder, stage_config))
        previous = folder
    return out
