"""Checkpoints of the ``fih`` trainer: atomic writes, model-weight filtering, resume state.

- `atomic_save` / `atomic_write_json`: write to a temporary file in the target directory,
  fsync, then ``os.replace`` — a run killed at any moment leaves either the old or the new file.
- Model checkpoints ``ckpt.{i}.pth`` (`save_model_checkpoint`) hold ``{"model": state,
  "model_config": dict, "stage", "update", "iteration", "config"}``. Weights loaded from a local
  checkpoint directory (VGGT with ``vggt_dir``, DINOv3 with ``dinov3.pretrained_dir``, Qwen's
  base weights with ``qwen.pretrained_dir``; LoRA adapters are always kept) are left out: they
  are re-read from those directories — unless the component is trained in some stage of the
  model config (``train_vggt``, ``train_dinov3``, ``llm: full``) or its weights came from an
  earlier fih checkpoint, in which case they are saved like every other weight.
- The resume state (``.resume_state.pth`` in the checkpoint folder; written and read by
  `habitat_fih.trainers.resume`) adds the optimiser, scheduler and fp16 grad scaler, DAgger
  iteration, counters, the RNG states (python, numpy, torch, the trainer's generators) and
  optionally the replay buffer.
- `load_model_weights` raises one `IncompatibleCheckpointError` naming missing / unexpected /
  mis-shaped keys and differing model-config entries.
"""

from __future__ import annotations

import glob
import json
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.losses import VGGT_STAGE
from habitat_fih.utils import atomic_write

__all__ = [
    "CorruptCheckpointError",
    "IncompatibleCheckpointError",
    "atomic_save",
    "atomic_write_json",
    "checkpoint_index",
    "list_checkpoints",
    "load_checkpoint",
    "load_model_weights",
    "model_state",
    "rng_state",
    "save_model_checkpoint",
    "set_rng_state",
    "unreadable_checkpoints",
]


class IncompatibleCheckpointError(ValueError):
    """A checkpoint does not fit the configured model."""


class CorruptCheckpointError(ValueError):
    """A checkpoint file cannot be read (truncated, empty, not a torch file, not an fih one)."""


def load_checkpoint(path: str, *, needs: tuple[str, ...] = ("model",)) -> dict[str, Any]:
    """``torch.load`` of a trainer checkpoint / resume state, or ONE error naming the file.

    Missing: ``FileNotFoundError``; unreadable (truncated, 0 bytes, random bytes, a pickle that
    is not a dict with the `needs` entries): :class:`CorruptCheckpointError` with the file's
    size and what torch said. Used by training (pretrained start, resume) and evaluation.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} not found")
    size = os.path.getsize(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - every failure of torch.load means the same here
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise CorruptCheckpointError(
            f"{path}: truncated or corrupt checkpoint ({size} bytes; {type(exc).__name__}: "
            f"{reason}); delete it (a training run writes it again) or point at another one"
        ) from None
    absent = [k for k in needs if not isinstance(payload, dict) or k not in payload]
    if absent:
        raise CorruptCheckpointError(
            f"{path}: not an fih trainer checkpoint ({size} bytes, no {absent} entry)"
        )
    return payload


def unreadable_checkpoints(paths: list[str]) -> list[str]:
    """The messages of the checkpoints among `paths` that :func:`load_checkpoint` rejects."""
    bad = []
    for path in paths:
        try:
            load_checkpoint(path)
        except (CorruptCheckpointError, FileNotFoundError) as err:
            bad.append(str(err))
    return bad


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save(obj, path)`` through a temporary file + rename."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_json(obj: Any, path: str, **dump_kwargs: Any) -> None:
    """``json.dump(obj, path)`` through a temporary file + rename."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, **dump_kwargs)))


_COMPONENT_PREFIXES = {"vggt": "vggt.", "dinov3": "dinov3.", "qwen": "qwen.vlm."}
_CARRIED_ATTR = "_fih_checkpoint_components"


def _trained_somewhere(config: FIHModelConfig, component: str, model: nn.Module) -> bool:
    """Whether a stage may have changed `component`'s weights: a heatmap stage of the config
    trains it, or (VGGT) the model is in the ``vggt`` stage, which every config defines but
    only a run that schedules it runs."""
    specs = [spec for name, spec in config.stages.items() if name != VGGT_STAGE]
    if component == "vggt":
        return getattr(model, "stage", None) == VGGT_STAGE or any(s.train_vggt for s in specs)
    if component == "dinov3":
        return any(s.train_dinov3 for s in specs)
    return any(s.llm == "full" for s in specs)


def _loaded_components(config: FIHModelConfig) -> list[str]:
    """Components whose weights are read from a local directory when the model is built."""
    dirs = {
        "vggt": config.vggt_dir,
        "dinov3": config.dinov3.pretrained_dir,
        "qwen": config.qwen.pretrained_dir,
    }
    return [name for name, directory in dirs.items() if directory]


def _external_prefixes(config: FIHModelConfig, model: nn.Module) -> list[str]:
    """Prefixes of weights re-read from local directories rather than saved.

    A component is external when it is loaded from a local directory, no stage may have
    changed it (`_trained_somewhere`: VGGT after the ``vggt`` stage is saved, so a later stage
    of the schedule reads the fine-tuned VGGT), and its weights in `model` were not loaded from
    an fih checkpoint that had them.
    """
    carried = getattr(model, _CARRIED_ATTR, set())
    return [
        _COMPONENT_PREFIXES[name]
        for name in _loaded_components(config)
        if not _trained_somewhere(config, name, model) and name not in carried
    ]


def model_state(model: nn.Module, config: FIHModelConfig) -> dict[str, torch.Tensor]:
    """The model's state dict without weights re-loadable from local checkpoint dirs."""
    skip = _external_prefixes(config, model)
    return {
        k: v.detach().cpu().clone()
        for k, v in model.state_dict().items()
        if "lora_" in k or not any(k.startswith(p) for p in skip)
    }


def save_model_checkpoint(
    folder: str,
    index: int,
    model: nn.Module,
    model_config: FIHModelConfig,
    info: dict[str, Any],
    keep: int = -1,
) -> str:
    """Write ``{folder}/ckpt.{index}.pth`` atomically: the model's weights (`model_state`), its
    config and `info` (``stage``, ``update``, ``iteration``, ``config``: the experiment config as
    plain containers); then delete all but the newest `keep` checkpoints of the folder (`keep`
    <= 0 keeps every one). Returns the path."""
    path = os.path.join(folder, f"ckpt.{index}.pth")
    atomic_save(
        {"model": model_state(model, model_config), "model_config": model_config.to_dict(), **info},
        path,
    )
    if keep > 0:
        for old in list_checkpoints(folder)[:-keep]:
            os.remove(old)
    return path


def _config_diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _config_diff(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        a, b = list(a), list(b)
    return [] if a == b else [f"{prefix[:-1]}: checkpoint {a!r} vs config {b!r}"]


_PATH_KEYS = (
    "vggt_dir",
    "pretrained_dir",
    "tokenizer_dir",
    "device_allocation",
    "stages",
    "gradient_checkpointing",
    # how the history is run / cached at acting time, not what the weights are: a checkpoint
    # trained with one VGGT history mode can be evaluated with the other
    # (`FIHModelConfig.vggt_history`; README, "Incremental per-step inference")
    "vggt_history",
    "vggt_cache_window",
    "vggt_heads",
    "frame_cache",
    "frame_cache_capacity",
    # where components rest between their stages (`habitat_fih.models.offload`), not weights
    "offload",
)


#: model-config fields added after checkpoints were first written, with the value an older
#: checkpoint's model had (compared as if recorded)
_ADDED_FIELDS: dict[str, Any] = {
    "target_kinds": ["covisibility"],
    "vggt_lora": FIHModelConfig().to_dict()["vggt_lora"],  # (off)
}
_ADDED_HEATMAP_FIELDS: dict[str, Any] = {"out_channels": 1}
# (the action head's extra inputs and progress monitor: absent in older checkpoints)
_ADDED_ACTION_FIELDS: dict[str, Any] = {
    "inputs": [],
    "max_depth": 10.0,
    "goal_distance": False,
    "distance_scale": 10.0,
}


def _backfill(saved: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's model config with the fields it predates at their old values."""
    out = {**_ADDED_FIELDS, **saved}
    if isinstance(out.get("heatmap"), dict):
        out["heatmap"] = {**_ADDED_HEATMAP_FIELDS, **out["heatmap"]}
    if isinstance(out.get("action"), dict):
        out["action"] = {**_ADDED_ACTION_FIELDS, **out["action"]}
    return out


def load_model_weights(
    model: nn.Module, checkpoint: dict[str, Any], config: FIHModelConfig, path: str
) -> None:
    """Load a checkpoint's model weights (see `IncompatibleCheckpointError`)."""
    if "model" not in checkpoint:
        raise IncompatibleCheckpointError(f"{path}: not an fih checkpoint (no 'model' entry)")
    saved_cfg = checkpoint.get("model_config")
    if saved_cfg is not None:
        diff = [
            d
            for d in _config_diff(_backfill(dict(saved_cfg)), config.to_dict())
            if not any(k in d.split(":")[0] for k in _PATH_KEYS)
        ]
        if diff:
            raise IncompatibleCheckpointError(
                f"{path}: model config differs from the checkpoint's: " + "; ".join(diff[:10])
            )
    state = checkpoint["model"]
    own = model.state_dict()
    # weights of directory-loaded components are optional: absent, they stay as read from disk
    skip = [_COMPONENT_PREFIXES[name] for name in _loaded_components(config)]
    expected = {k for k in own if "lora_" in k or not any(k.startswith(p) for p in skip)}
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in state
        if k in own and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        raise IncompatibleCheckpointError(
            f"{path}: incompatible with the configured model: missing {missing[:5]} "
            f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)}), "
            f"shape mismatches {shapes[:5]}"
        )
    model.load_state_dict(state, strict=False)
    # components whose (possibly trained) weights came from this checkpoint are saved again
    carried = {
        name
        for name, prefix in _COMPONENT_PREFIXES.items()
        if any(k.startswith(prefix) and "lora_" not in k for k in state)
    }
    setattr(model, _CARRIED_ATTR, getattr(model, _CARRIED_ATTR, set()) | carried)


def checkpoint_index(path: str) -> int:
    m = re.search(r"ckpt\.(\d+)\.pth$", path)
    if m is None:
        raise ValueError(f"{path!r} is not named ckpt.<i>.pth")
    return int(m.group(1))


def list_checkpoints(folder_or_file: str) -> list[str]:
    """One checkpoint file, or every ckpt.<i>.pth of a folder sorted by i."""
    if os.path.isfile(folder_or_file):
        return [folder_or_file]
    if not os.path.isdir(folder_or_file):
        raise FileNotFoundError(f"no checkpoint file or folder at {folder_or_file!r}")
    files = glob.glob(os.path.join(folder_or_file, "ckpt.*.pth"))
    files = [f for f in files if re.search(r"ckpt\.\d+\.pth$", f)]
    if not files:
        raise FileNotFoundError(f"no ckpt.<i>.pth checkpoints in {folder_or_file!r}")
    return sorted(files, key=checkpoint_index)


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
