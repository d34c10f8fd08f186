"""Loading and saving VGGT weights.

`load_vggt` reads `model.safetensors` (preferred) or `model.pt` from a local directory, or a
file given directly, builds the model on the meta device and assigns the checkpoint tensors
(`load_state_dict(..., assign=True)`), so weights are never allocated twice. The released
checkpoint's `track_head.*` tensors are ignored (this implementation has no track head) and
reported in the log and in `model.load_report.ignored_keys`. `save_vggt` writes
`model.safetensors` (plus `config.json`) atomically via a temporary file and a rename.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from habitat_fih.models.vggt.config import VGGTConfig
from habitat_fih.models.vggt.model import VGGT
from habitat_fih.utils import atomic_write

logger = logging.getLogger(__name__)

CHECKPOINT_FILES = ("model.safetensors", "model.pt")
CONFIG_FILE = "config.json"
IGNORED_PREFIXES = ("track_head.",)
_LIST_LIMIT = 10


@dataclass
class LoadReport:
    """What happened to the checkpoint's keys while loading."""

    ignored_keys: list[str] = field(default_factory=list)  # e.g. track_head.* (no module here)
    missing_keys: list[str] = field(default_factory=list)  # initialised fresh (strict=False)
    unexpected_keys: list[str] = field(default_factory=list)  # dropped (strict=False)


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LIST_LIMIT])
    more = f", ... (+{len(keys) - _LIST_LIMIT} more)" if len(keys) > _LIST_LIMIT else ""
    return f"{len(keys)}: {shown}{more}"


def resolve_checkpoint(path_or_dir: str | os.PathLike[str]) -> Path:
    """The checkpoint file for a directory (model.safetensors, else model.pt) or a file path."""
    path = Path(path_or_dir)
    if path.is_file():
        return path
    if path.is_dir():
        for name in CHECKPOINT_FILES:
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(
            f"no VGGT checkpoint in {path}: expected one of {', '.join(CHECKPOINT_FILES)}"
        )
    raise FileNotFoundError(
        f"VGGT checkpoint path {path} does not exist (give a directory holding "
        f"{' or '.join(CHECKPOINT_FILES)}, or a checkpoint file)"
    )


def read_state_dict(file: Path) -> dict[str, Tensor]:
    """Tensors of a safetensors or torch checkpoint (memory-mapped where possible)."""
    if file.suffix == ".safetensors":
        return load_file(str(file), device="cpu")
    obj = torch.load(file, map_location="cpu", mmap=True, weights_only=True)
    for wrapper in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict):
        raise ValueError(f"{file} does not hold a state dict (got {type(obj).__name__})")
    return obj


def _fresh_tensor(name: str, like: Tensor, model: VGGT) -> Tensor:
    """Initial value for a parameter absent from a non-strict checkpoint."""
    shape, dtype = like.shape, like.dtype
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "gamma":
        init = model.config.layerscale_init
        if name.startswith("aggregator.patch_embed."):
            init = model.config.patch_embed.layerscale_init
        return torch.full(shape, init, dtype=dtype)
    if leaf == "bias" or leaf in ("mask_token", "empty_pose_tokens"):
        return torch.zeros(shape, dtype=dtype)
    if leaf == "weight" and len(shape) == 1:  # LayerNorm
        return torch.ones(shape, dtype=dtype)
    std = (
        1e-6 if leaf in ("camera_token", "register_token", "cls_token", "register_tokens") else 0.02
    )
    return torch.nn.init.trunc_normal_(torch.empty(shape, dtype=dtype), std=std)


def load_state_dict_into(
    model: VGGT, state_dict: dict[str, Tensor], strict: bool = True
) -> LoadReport:
    """Assign `state_dict` to `model` (which may live on the meta device).

    `track_head.*` keys are always ignored and reported. Shape mismatches always raise;
    missing or unexpected keys raise when `strict`, otherwise missing parameters are freshly
    initialised and unexpected ones dropped. One ValueError lists every problem.
    """
    expected = model.state_dict()
    report = LoadReport()
    usable: dict[str, Tensor] = {}
    for key, tensor in state_dict.items():
        if key in expected:
            usable[key] = tensor
        elif key.startswith(IGNORED_PREFIXES):
            report.ignored_keys.append(key)
        else:
            report.unexpected_keys.append(key)
    report.missing_keys = [k for k in expected if k not in usable]
    mismatched = [
        f"{k} (checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)})"
        for k, v in usable.items()
        if v.shape != expected[k].shape
    ]
    problems = []
    if mismatched:
        problems.append(f"shape mismatches {_listing(mismatched)}")
    if strict and report.missing_keys:
        problems.append(f"missing keys {_listing(report.missing_keys)}")
    if strict and report.unexpected_keys:
        problems.append(f"unexpected keys {_listing(report.unexpected_keys)}")
    if problems:
        raise ValueError("cannot load VGGT checkpoint: " + "; ".join(problems))
    for key in report.missing_keys:
        usable[key] = _fresh_tensor(key, expected[key], model)
    model.load_state_dict(usable, strict=True, assign=True)
    if report.ignored_keys:
        logger.info(
            "VGGT: ignored %d checkpoint keys without a module here (%s...)",
            len(report.ignored_keys),
            report.ignored_keys[0],
        )
    if report.missing_keys:
        logger.warning("VGGT: initialised missing keys %s", _listing(report.missing_keys))
    if report.unexpected_keys:
        logger.warning("VGGT: dropped unexpected keys %s", _listing(report.unexpected_keys))
    return report


def load_vggt(
    path_or_dir: str | os.PathLike[str], config: VGGTConfig | None = None, strict: bool = True
) -> VGGT:
    """Load a VGGT from a checkpoint directory or file (CPU tensors, checkpoint dtype).

    Args:
        path_or_dir: directory with `model.safetensors` or `model.pt`, or a checkpoint file.
        config: model config; default: `config.json` beside the checkpoint if present, else
            `VGGTConfig.vggt_1b()`.
        strict: raise on missing / unexpected keys (shape mismatches always raise).

    Returns:
        the model in eval mode, with `model.load_report` (a `LoadReport`).
    """
    file = resolve_checkpoint(path_or_dir)
    if config is None:
        config_file = file.parent / CONFIG_FILE
        if config_file.is_file():
            config = VGGTConfig(**json.loads(config_file.read_text()))
        else:
            config = VGGTConfig.vggt_1b()
    with torch.device("meta"):
        model = VGGT(config)
    report = load_state_dict_into(model, read_state_dict(file), strict=strict)
    model.load_report = report
    return model.eval()


def save_vggt(model: VGGT, directory: str | os.PathLike[str]) -> Path:
    """Write `model.safetensors` and `config.json` into `directory` atomically; returns the file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}

    atomic_write(
        directory / CONFIG_FILE,
        lambda p: Path(p).write_text(json.dumps(model.config.to_dict(), indent=2)),
    )
    return atomic_write(
        directory / "model.safetensors", lambda p: save_file(tensors, p, metadata={"format": "pt"})
    )
