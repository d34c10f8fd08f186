"""VGGT's geometry on simulator episodes: camera and depth errors against the exact truth.

    python -m habitat_fih.trainers.vggt_eval --split val_seen [--episodes 10] [--frames 8]
        [--vggt-dir DIR | --checkpoint CKPT] [--image-size R] [--device cpu] [--out stats.json]

For each of the split's first N episodes (sorted by id, as the trainer's evaluation takes them)
the expert's path is recorded with `habitat_fih.datasets.record` (RGB video + geometry sidecar:
the depth camera's poses and metric depth), `--frames` frames are taken evenly over the path
(`habitat_fih.infer.video.select_frame_indices`, first and last included), VGGT runs on them
squashed to R x R (the FIH model's input), and its outputs are scored against
`habitat_fih.models.vggt.targets.vggt_targets` of the same frames (poses relative to the first
frame VGGT reads: the oldest, or the last for a checkpoint with ``vggt_reference: current``; depth resized to R x R by nearest neighbour, the paper's scale normalisation) with
`habitat_fih.models.vggt.metrics.geometry_metrics`: relative rotation / translation error
(degrees; translation also in metres after a per-sequence scale fit), AUC@30, depth AbsRel and
delta < 1.25 (as predicted and after per-sequence median scaling), and `overlapping_rre`: the
rotation error against the reference of the frames that could see >= 10 % of it (the pairs
the heatmaps score; frames spread over a whole path often share no view with the reference).

The stats json (written atomically) holds the per-episode values and their means over the
episodes (NaN-free means: an episode without a defined value, e.g. no translation in its
frames, is left out of that mean and the count says so). Without ``--vggt-dir`` or ``--checkpoint``
the random-init tiny VGGT runs (numbers without meaning; a check that the program works); real
numbers need VGGT-1B weights in a local directory. ``--checkpoint`` scores the VGGT of an fih
trainer checkpoint, e.g. one the ``vggt`` stage fine-tuned (its input size is the checkpoint's).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from habitat_fih.datasets.record import DEFAULT_CONFIG, record
from habitat_fih.datasets.sidecar import read_sidecar, sidecar_path
from habitat_fih.infer.video import read_video
from habitat_fih.models.config import VGGT_REFERENCES, FIHModelConfig
from habitat_fih.models.vggt.metrics import (
    geometry_metrics,
    reference_pairs,
    relative_pose_errors,
)
from habitat_fih.models.vggt.targets import (
    VGGTTargets,
    reference_overlap,
    stack_targets,
    vggt_targets,
)
from habitat_fih.utils.atomic import atomic_write

__all__ = [
    "MIN_OVERLAP",
    "episode_ids",
    "evaluate_geometry",
    "main",
    "overlapping_rre",
    "sequence_targets",
]

#: a frame counts as seeing the reference view from this `reference_overlap` on
MIN_OVERLAP = 0.1

#: frames [1, S, 3, R, R] in [0, 1] -> VGGT-format outputs with ``pose_enc`` [1, S, 9] and
#: ``depth`` [1, S, R, R, 1]
Predictor = Callable[[torch.Tensor], dict[str, torch.Tensor]]


def episode_ids(split: str, config: str = DEFAULT_CONFIG) -> list[str]:
    """The split's episode ids, sorted (the dataset file of `config`'s ``habitat.dataset``)."""
    from habitat_fih.config import get_config

    cfg = get_config(config, [f"habitat.dataset.split={split}"])
    path = str(cfg.habitat.dataset.data_path).format(split=split)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"episode file of split {split!r} not found: {path}")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return sorted(str(e["episode_id"]) for e in json.load(handle)["episodes"])


def sequence_targets(sidecar: Any, indices: np.ndarray, size: int) -> VGGTTargets:
    """`vggt_targets` of the sidecar's frames `indices` at VGGT's R x R input (depth resized
    by nearest neighbour, intrinsics from the sensor's own size)."""
    depth = np.stack(
        [
            cv2.resize(sidecar.depth[i], (size, size), interpolation=cv2.INTER_NEAREST)
            for i in indices
        ]
    )
    return vggt_targets(
        sidecar.poses[indices],
        sidecar.hfov,
        depth,
        max_depth=sidecar.max_depth,
        sensor_size=tuple(sidecar.depth.shape[1:]),
    )


def overlapping_rre(
    pose_enc: torch.Tensor, targets: VGGTTargets, min_overlap: float = MIN_OVERLAP
) -> dict[str, float | int | None]:
    """``rre_ref_overlap_deg``: the rotation error against the reference (frame 0) of the
    frames that could see at least `min_overlap` of it (`reference_overlap`), the pairs the
    heatmaps score (None when no frame does), and ``overlap_frames``, their number.

    Args:
        pose_enc: [1, S, 9] predicted pose encodings; targets: one batched sequence.
    """
    seen = reference_overlap(targets).reshape(-1)[1:] >= min_overlap  # frames 1..S-1
    errors = relative_pose_errors(pose_enc, targets.pose_enc)
    to_reference = errors.rre_deg.reshape(-1)[reference_pairs(pose_enc.shape[-2])]
    count = int(seen.sum())
    value = float(to_reference[seen].mean()) if count else None
    return {"rre_ref_overlap_deg": value, "overlap_frames": count}


def _mean(values: Sequence[float]) -> tuple[float | None, int]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return (sum(finite) / len(finite) if finite else None), len(finite)


def evaluate_geometry(
    predict: Predictor,
    split: str,
    episodes: int,
    frames: int,
    image_size: int,
    work_dir: str | os.PathLike[str],
    config: str = DEFAULT_CONFIG,
    device: str = "cpu",
    reference: str = "first",
) -> dict[str, Any]:
    """Score `predict` on the first `episodes` episodes of `split` (module docstring); with
    ``reference="current"`` the last frame is VGGT's first (`FIHModelConfig.vggt_reference`),
    and the targets are relative to it."""
    if reference not in VGGT_REFERENCES:
        raise ValueError(f"reference must be one of {VGGT_REFERENCES}, got {reference!r}")
    if episodes < 1 or frames < 2:
        raise ValueError(f"need episodes >= 1 and frames >= 2, got {episodes} and {frames}")
    ids = episode_ids(split, config)[:episodes]
    rows: list[dict[str, Any]] = []
    for episode in tqdm(ids, desc=f"vggt geometry {split}", file=sys.stderr):
        clip = Path(work_dir) / f"{split}_{episode}.mp4"
        record(episode=episode, out=str(clip), split=split, config=config)
        sidecar = read_sidecar(sidecar_path(clip))
        video = read_video(str(clip), frames, "uniform", image_size, image_size)
        order = np.arange(len(video.indices))
        if reference == "current":
            order = np.roll(order, 1)
        indices = video.indices[order]
        targets = stack_targets([sequence_targets(sidecar, indices, image_size)])
        images = torch.from_numpy(video.frames[order]).permute(0, 3, 1, 2).float() / 255.0
        with torch.no_grad():
            out = predict(images[None].to(device))
        found = {k: out[k].detach().float().cpu() for k in ("pose_enc", "depth") if k in out}
        metrics = geometry_metrics(found, targets)
        if "pose_enc" in found:
            metrics.update(overlapping_rre(found["pose_enc"], targets))
        rows.append({"episode_id": episode, "frames": indices.tolist(), **metrics})
    keys = sorted({k for row in rows for k in row if k not in ("episode_id", "frames")})
    means: dict[str, Any] = {}
    for key in keys:
        mean, count = _mean([row.get(key) for row in rows])
        means[key], means[f"{key}.episodes"] = mean, count
    return {
        "split": split,
        "num_episodes": len(rows),
        "frames_per_episode": frames,
        "image_size": image_size,
        "reference": reference,
        "means": means,
        "episodes": rows,
    }


def _vggt_predictor(vggt_dir: str | None, image_size: int, device: str) -> Predictor:
    from habitat_fih.models.factory import build_vggt_component

    if vggt_dir is None:
        config = FIHModelConfig.tiny(image_size=image_size)
    else:
        config = FIHModelConfig.full("7b", vggt_dir=vggt_dir, image_size=image_size)
    vggt = build_vggt_component(config).to(device).eval()

    def predict(images: torch.Tensor) -> dict[str, torch.Tensor]:
        return vggt(images, heads=("camera", "depth"))

    return predict


def _checkpoint_predictor(path: str, device: str) -> tuple[Predictor, int, str]:
    """(predictor, input size R, reference frame) of the VGGT inside an fih trainer checkpoint
    (e.g. a ``vggt`` stage's): built as the checkpoint's model config says (read from its
    ``vggt_dir`` when set), then the checkpoint's ``vggt.*`` weights loaded over it; run with the
    causal mask the model acts with under ``vggt_history: causal_cache``, and fed frames in the
    model's order (``vggt_reference``)."""
    from habitat_fih.models.factory import build_vggt_component
    from habitat_fih.trainers.checkpoint import list_checkpoints, load_checkpoint

    path = list_checkpoints(path)[-1]  # a file, or a folder's last
    ckpt = load_checkpoint(path)
    if "model_config" not in ckpt:
        raise ValueError(f"{path}: no model_config entry (not an fih trainer checkpoint)")
    config = FIHModelConfig.from_dict(ckpt["model_config"])
    vggt = build_vggt_component(config)
    state = {k[len("vggt.") :]: v for k, v in ckpt["model"].items() if k.startswith("vggt.")}
    if state:
        vggt.load_state_dict(state)
    elif config.vggt_dir is None:
        raise ValueError(f"{path}: holds no VGGT weights and its model config has no vggt_dir")
    vggt = vggt.to(device).eval()
    window = config.vggt_cache_window if config.vggt_history == "causal_cache" else None
    heads = [h for h in ("camera", "depth") if getattr(vggt, f"{h}_head") is not None]

    def predict(images: torch.Tensor) -> dict[str, torch.Tensor]:
        return vggt(images, heads=heads, causal_window=window)

    return predict, int(config.image_size), config.vggt_reference


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="val_seen")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--frames", type=int, default=8)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--vggt-dir", default=None, help="local VGGT-1B checkpoint directory")
    source.add_argument(
        "--checkpoint",
        default=None,
        help="an fih trainer checkpoint (file or folder: its last), e.g. the vggt stage's",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="R (default: 518 with --vggt-dir, the tiny model's 32 without)",
    )
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="stats json (default: print only)")
    args = parser.parse_args(argv)
    if args.checkpoint:
        predict, size, reference = _checkpoint_predictor(args.checkpoint, args.device)
        if args.image_size not in (None, size):
            parser.error(f"--image-size {args.image_size}: the checkpoint's model reads {size}")
    else:
        size = args.image_size or (518 if args.vggt_dir else FIHModelConfig.tiny().image_size)
        predict = _vggt_predictor(args.vggt_dir, size, args.device)
        reference = "first"
    with tempfile.TemporaryDirectory(prefix="vggt_eval_") as work:
        stats = evaluate_geometry(
            predict,
            args.split,
            args.episodes,
            args.frames,
            size,
            work,
            args.config,
            args.device,
            reference,
        )
    stats["vggt"] = args.checkpoint or args.vggt_dir or "random-init tiny"
    text = json.dumps(stats, indent=2)
    if args.out:
        atomic_write(args.out, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    print(json.dumps({"split": stats["split"], **stats["means"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
