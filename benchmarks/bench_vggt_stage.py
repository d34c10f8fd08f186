"""Update time and peak memory of the ``vggt`` stage, per aggregator mode (frozen / lora / full).

    python benchmarks/bench_vggt_stage.py                         # CPU: the tiny model's stage
    python benchmarks/bench_vggt_stage.py --preset vggt1b --device cuda   # GPU: VGGT-1B, bf16

``tiny`` (CPU): the real stage update, `habitat_fih.trainers.learner.Learner.update` of the tiny
`FIHModel` in the ``vggt`` stage (`VGGTStageLoss`: VGGT's forward on the batch, `vggt_loss`, the
batch's geometry metrics, backward, clipping, AdamW), on ``--batch`` sequences of ``--frames``
frames at the model's 32².

``vggt1b`` (a lent GPU): VGGT-1B alone (random init, no downloads; the LLM and DINOv3 play no part
in this stage), the same loss and optimiser step on ``--batch`` x ``--frames`` at ``--size``
(224² by default), under bf16 autocast (the aggregator; the heads run in fp32 as VGGT's do) with
``torch.amp`` and no scaler, as the stage does with ``autocast_dtype: bfloat16``; LoRA r 16 on
the aggregator's attention for ``lora``. Peak memory is ``torch.cuda.max_memory_allocated``.

The targets are `vggt_targets` of a fixed camera path over a floor plane (3 cm per frame forward,
5 degrees of turn) with random images: the time of an update does not depend on what is seen.
Times: median over ``--iters`` updates after ``--warmup``. Writes a JSON (atomically) next to the
printed table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from habitat_fih.config.trainer_configs import OptimConfig  # noqa: E402
from habitat_fih.geometry.camera import (  # noqa: E402
    quat_from_angle_axis,
    quat_to_rotation_matrix,
)
from habitat_fih.models.config import VGGT_LORA_TARGETS, FIHModelConfig  # noqa: E402
from habitat_fih.models.qwen_vl_backbone import LoRASettings  # noqa: E402
from habitat_fih.models.vggt.config import VGGTConfig  # noqa: E402
from habitat_fih.models.vggt.lora import inject_vggt_lora, set_vggt_trainable  # noqa: E402
from habitat_fih.models.vggt.losses import VGGTLossConfig, vggt_loss  # noqa: E402
from habitat_fih.models.vggt.model import VGGT  # noqa: E402
from habitat_fih.models.vggt.targets import vggt_targets  # noqa: E402
from habitat_fih.trainers.vggt_samples import VGGTSample, collate_vggt  # noqa: E402
from habitat_fih.utils import atomic_write_bytes  # noqa: E402

MODES = ("frozen", "lora", "full")


def samples(batch: int, frames: int, size: int, seed: int = 0) -> list[VGGTSample]:
    """`batch` sequences of `frames` random images with the targets of a fixed path over a
    floor 1.5 m below the camera (every pixel below the horizon has a depth)."""
    rng = np.random.default_rng(seed)
    v = (np.arange(size) + 0.5 - size / 2) / (size / 2)
    depth = np.where(v > 0, 1.5 / np.maximum(v, 1e-9), 0.0)[:, None].repeat(size, 1)
    poses = []
    for k in range(frames):
        pose = np.eye(4)
        pose[:3, :3] = quat_to_rotation_matrix(
            quat_from_angle_axis(np.radians(5.0 * k), np.array([0.0, 1.0, 0.0]))
        )
        pose[:3, 3] = [0.0, 1.5, -0.03 * k]
        poses.append(pose)
    targets = vggt_targets(np.stack(poses), 90.0, np.stack([depth] * frames))
    return [
        VGGTSample(
            rng.integers(0, 255, (frames, size, size, 3), dtype=np.uint8),
            np.arange(frames, dtype=np.int64),
            targets,
        )
        for _ in range(batch)
    ]


def median_ms(times: list[float]) -> float:
    return 1000.0 * statistics.median(times)


def bench_tiny(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """The stage's own `Learner.update` on the tiny model (CPU)."""
    from habitat_fih.models.config import default_stages
    from habitat_fih.models.factory import build_model, build_stand_in_tokenizer
    from habitat_fih.models.policy import FIHPolicy
    from habitat_fih.trainers.learner import Learner
    from habitat_fih.trainers.stages import policy_config

    stages = default_stages()
    stages["vggt"] = replace(stages["vggt"], vggt_aggregator=mode)
    overrides: dict[str, Any] = {"stages": stages}
    if mode == "lora":
        overrides["vggt_lora"] = {"enabled": True, "r": 4, "alpha": 8}
    cfg = FIHModelConfig.tiny(**overrides)
    torch.manual_seed(0)
    policy = FIHPolicy(
        build_model(cfg, tokenizer=build_stand_in_tokenizer(cfg)), None, policy_config({})
    )
    policy.model.set_stage("vggt")
    learner = Learner(policy, OptimConfig(lr=1e-3), 1000, "vggt", torch.device("cpu"))
    data = samples(args.batch, args.frames, cfg.image_size)
    times = []
    for i in tqdm(range(args.warmup + args.iters), desc=f"tiny {mode}", leave=False):
        start = time.perf_counter()
        learner.update([data])
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return {
        "update_ms": median_ms(times),
        "trainable": sum(p.numel() for p in learner.params),
        "image_size": cfg.image_size,
    }


def bench_vggt1b(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """VGGT-1B alone: forward (bf16 autocast), `vggt_loss`, backward, AdamW (a lent GPU)."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    with device:
        vggt = VGGT(VGGTConfig.vggt_1b())
    if mode == "lora":
        inject_vggt_lora(
            vggt, LoRASettings(enabled=True, r=16, alpha=32, target_modules=list(VGGT_LORA_TARGETS))
        )
        vggt.to(device)
    set_vggt_trainable(vggt, True, mode)
    params = [p for p in vggt.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    images, targets = collate_vggt(samples(args.batch, args.frames, args.size), args.size)
    images, targets = images.to(device), targets.to(device)
    config = VGGTLossConfig()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    vggt.train()
    for i in tqdm(range(args.warmup + args.iters), desc=f"vggt1b {mode}", leave=False):
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            out = vggt(images)
        loss, _ = vggt_loss(out, targets, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if cuda:
            torch.cuda.synchronize(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return {
        "update_ms": median_ms(times),
        "trainable": sum(p.numel() for p in params),
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None,
        "image_size": args.size,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=("tiny", "vggt1b"), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=None, help="default 9 (tiny), 8 (vggt1b)")
    parser.add_argument("--size", type=int, default=224, help="vggt1b input side")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--out", default=None, help="json (default outputs/bench_vggt_stage_*)")
    args = parser.parse_args(argv)
    args.frames = args.frames or (9 if args.preset == "tiny" else 8)
    torch.set_num_threads(1 if args.device == "cpu" else torch.get_num_threads())
    run = bench_tiny if args.preset == "tiny" else bench_vggt1b
    rows = {mode: run(mode, args) for mode in args.modes}
    print(f"vggt stage, {args.preset}, batch {args.batch} x {args.frames} frames, {args.device}")
    print("| aggregator | trainable params | update (median) | peak GPU memory |")
    print("|---|---|---|---|")
    for mode, row in rows.items():
        peak = row.get("peak_memory_gib")
        print(
            f"| {mode} | {row['trainable']:,} | {row['update_ms']:.1f} ms | "
            f"{'-' if peak is None else f'{peak:.1f} GiB'} |"
        )
    out = Path(args.out or f"outputs/bench_vggt_stage_{args.preset}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"args": vars(args), "rows": rows}
    atomic_write_bytes(str(out), json.dumps(payload, indent=2).encode())


if __name__ == "__main__":
    main()
