"""Trainer settings: value checks before anything starts, and the settings a resume must keep.

- :func:`check_trainer_values`: every numeric trainer value in range, checked when the trainer is
  built (before any environment starts); a bad one raises ONE ``ValueError`` naming the full
  key, the value and what is expected (e.g. ``habitat_baselines.fih.dagger.iterations must be an
  integer >= 1, got 0``).
- :func:`resume_settings` / :func:`check_resume_settings`: the resume state records the seed and
  the ``optim``, ``dagger``, ``collection`` and ``losses`` nodes; resuming with any of them
  changed is refused (:class:`ResumeSettingsError` names each differing key with both values)
  unless ``habitat_baselines.fih.resume_with_changed_settings=true``. Not recorded: what does not
  change the result (``stop_after_updates``, ``keep_checkpoints``, ``device``, logging,
  ``collection.start_method``).
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import OmegaConf

from habitat_fih.config.trainer_configs import STOP_RULES, stop_settings

__all__ = [
    "RESUME_KEYS",
    "ResumeSettingsError",
    "check_resume_settings",
    "check_trainer_values",
    "require_int",
    "resume_settings",
]

#: Nodes of habitat_baselines.fih a resume must not change.
RESUME_KEYS = ("seed", "optim", "dagger", "collection", "losses")
_NOT_RECORDED = {"collection.start_method"}
#: settings added after resume states were first recorded, with the value older runs had
_ADDED_DEFAULTS = {"collection.target_kind": "covisibility", "collection.vggt_sequence": "memory"}
_PREFIX = "habitat_baselines.fih."


class ResumeSettingsError(ValueError):
    """A resume would continue a run with other settings."""


def require_int(
    key: str,
    value: Any,
    low: int,
    also: tuple[int, ...] = (),
    why: str = "",
    error: type[ValueError] = ValueError,
) -> None:
    """``error("<key> must be an integer >= <low>[ or <also>][ (<why>)], got <value>")``
    unless `value` is such an integer (bools are not)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and (value >= low or value in also)
    if not ok:
        extra = "".join(f" or {v}" for v in also)
        reason = f" ({why})" if why else ""
        raise error(f"{key} must be an integer >= {low}{extra}{reason}, got {value!r}")


def _float_in(key: str, value: Any, low: float, high: float, what: str) -> None:
    v = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if v is None or not math.isfinite(v) or not (low <= v <= high):
        raise ValueError(f"{key} must be {what}, got {value!r}")


#: ``collection.target_kind`` -> the heatmap target kinds trained (`FIHModelConfig.target_kinds`)
TARGET_KIND_CHOICES: dict[str, tuple[str, ...]] = {
    "covisibility": ("covisibility",),
    "camera_position": ("camera_position",),
    "both": ("covisibility", "camera_position"),
}


def check_trainer_values(config: Any) -> None:
    """Range checks of ``habitat_baselines`` / ``habitat_baselines.fih`` values (see above)."""
    baselines_config = config.habitat_baselines
    trainer_config = baselines_config.fih
    require_int("habitat_baselines.num_environments", baselines_config.num_environments, 1)
    dagger, collection, optim = (
        trainer_config.dagger,
        trainer_config.collection,
        trainer_config.optim,
    )
    prefix = _PREFIX
    require_int(prefix + "torch_threads", trainer_config.torch_threads, 0)
    require_int(prefix + "dagger.iterations", dagger.iterations, 1)
    _float_in(prefix + "dagger.p", dagger.p, 0.0, 1.0, "in [0, 1] (beta = p ** iteration)")
    require_int(prefix + "dagger.episodes_per_iteration", dagger.episodes_per_iteration, 1)
    require_int(prefix + "dagger.updates_per_iteration", dagger.updates_per_iteration, 1)
    require_int(prefix + "collection.frame_size", collection.frame_size, 1)
    require_int(prefix + "collection.max_frames", collection.max_frames, 1)
    require_int(prefix + "collection.buffer_size", collection.buffer_size, 1)
    require_int(
        prefix + "collection.max_episode_steps", collection.max_episode_steps, 1, also=(-1,)
    )
    kind = collection.get("target_kind", "covisibility")
    if kind not in TARGET_KIND_CHOICES:
        raise ValueError(
            f"{prefix}collection.target_kind must be one of {list(TARGET_KIND_CHOICES)}, "
            f"got {kind!r}"
        )
    sequence = collection.get("vggt_sequence", "memory")
    if sequence not in ("memory", "recent"):
        raise ValueError(
            f"{prefix}collection.vggt_sequence must be one of ['memory', 'recent'], "
            f"got {sequence!r}"
        )
    require_int(prefix + "optim.batch_size", optim.batch_size, 1)
    require_int(prefix + "optim.grad_accumulation", optim.grad_accumulation, 1)
    require_int(prefix + "optim.warmup_updates", optim.warmup_updates, 0)
    _float_in(prefix + "optim.lr", optim.lr, 1e-300, math.inf, "a finite learning rate > 0")
    _float_in(prefix + "optim.weight_decay", optim.weight_decay, 0.0, math.inf, "finite and >= 0")
    _float_in(prefix + "optim.beta1", optim.beta1, 0.0, 1.0 - 1e-12, "in [0, 1)")
    _float_in(prefix + "optim.beta2", optim.beta2, 0.0, 1.0 - 1e-12, "in [0, 1)")
    _float_in(prefix + "optim.min_lr_ratio", optim.min_lr_ratio, 0.0, 1.0, "in [0, 1]")
    _float_in(prefix + "optim.grad_clip", optim.grad_clip, 1e-300, math.inf, "finite and > 0")
    stop = stop_settings(trainer_config)
    if stop["rule"] not in STOP_RULES:
        raise ValueError(
            f"{prefix}stop.rule must be one of {list(STOP_RULES)}, got {stop['rule']!r}"
        )
    _float_in(prefix + "stop.distance", stop["distance"], 1e-300, math.inf, "metres > 0")
    require_int(prefix + "keep_checkpoints", trainer_config.keep_checkpoints, 1, also=(-1,))
    require_int(prefix + "stop_after_updates", trainer_config.stop_after_updates, 1, also=(-1,))


def resume_settings(trainer_config: Any) -> dict[str, Any]:
    """The settings of ``habitat_baselines.fih`` (`trainer_config`) a resume must keep (plain
    containers)."""
    out: dict[str, Any] = {}
    for key in RESUME_KEYS:
        value = trainer_config[key]
        out[key] = (
            OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        )
    return out


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k in sorted(value):
            out.update(_flat(value[k], f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def check_resume_settings(
    saved: dict[str, Any] | None, current: dict[str, Any], path: str, allow_changes: bool
) -> list[str]:
    """Compare the saved and the current :func:`resume_settings`; returns the differing keys.

    Raises :class:`ResumeSettingsError` when some differ and `allow_changes` is False. A resume
    state without recorded settings (written before they were recorded) is accepted as is.
    """
    if saved is None:
        return []
    # a setting added after resume states were first recorded: a side that lacks it (an older
    # state, or settings built without it) has the value runs had before it existed
    old = {**_ADDED_DEFAULTS, **_flat(saved, "")}
    new = {**_ADDED_DEFAULTS, **_flat(current, "")}
    keys = sorted((set(old) | set(new)) - _NOT_RECORDED)
    missing = object()
    diffs = [k for k in keys if old.get(k, missing) != new.get(k, missing)]
    if diffs and not allow_changes:
        shown = "; ".join(
            f"{_PREFIX}{k}: {old.get(k, '(unset)')!r} there, {new.get(k, '(unset)')!r} now"
            for k in diffs
        )
        raise ResumeSettingsError(
            f"{path} holds a run with other settings ({shown}): resuming would mix the two. "
            "Train in another habitat_baselines.checkpoint_folder, or add "
            f"{_PREFIX}resume_with_changed_settings=true to continue this run with the new values"
        )
    return diffs
