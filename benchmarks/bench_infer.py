"""fih-infer's speed per stage: one video of `--frames` frames -> K keyframe maps; prints one table.

    python benchmarks/bench_infer.py                       # CPU: tiny model, 32 frames
    python benchmarks/bench_infer.py --size full --llm 7b  # GPU: VGGT-1B + DINOv3-L + 7B, random
                                                           # weights, 32 frames at 224² -> 8 maps
    python benchmarks/bench_infer.py --video walk.mp4      # any video (default: a synthetic one)

The video (default: `--frames` random-noise frames written to a temporary .mp4, so the decode
is real) goes through the same engine as ``fih-infer`` (habitat_fih.infer.engine): the model is
built once (timed: `build`), then `--warmup` untimed runs and `--iters` timed runs; the table
has the median per stage over the timed runs (PerformanceMonitor: CUDA-synchronised on a GPU,
peak allocated memory per stage) and the whole run's median, plus the process's peak memory.
The goals of issue 14 on one GPU (full size, 32 frames at 224², 8 maps): <= 0.45 s per video,
<= 30 GB, build <= 20 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from habitat_fih.infer.engine import InferenceEngine  # noqa: E402
from habitat_fih.infer.settings import InferSettings, VideoSettings  # noqa: E402
from habitat_fih.utils.perf import PerformanceMonitor  # noqa: E402

INSTRUCTION = (
    "Walk out of the bedroom and turn left, go down the hallway past the table, then turn "
    "right into the kitchen and stop next to the fridge near the window."
)


def _noise_video(path: Path, frames: int, size: int) -> None:
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (size, size))
    for _ in range(frames):
        writer.write((rng.random((size, size, 3)) * 255).astype(np.uint8))
    writer.release()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=("tiny", "full"), default="tiny")
    p.add_argument("--llm", choices=("3b", "7b"), default="7b")
    p.add_argument("--video", default=None)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--heatmaps", choices=("model", "geometry"), default="model")
    p.add_argument("--algorithm", default="enhanced")
    p.add_argument("--device", default="auto")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    args = p.parse_args(argv)

    settings = InferSettings(
        model={"preset": args.size, "llm": args.llm},
        heatmaps=args.heatmaps,
        device=args.device,
        algorithm=args.algorithm,
        video=VideoSettings(max_frames=args.frames),
    ).check()
    monitor = PerformanceMonitor()
    engine = InferenceEngine(settings, monitor=monitor, note=lambda _: None)
    monitor = engine.monitor  # on the engine's device
    with tempfile.TemporaryDirectory() as tmp:
        source = args.video
        if source is None:
            source = str(Path(tmp) / "noise.mp4")
            _noise_video(Path(source), args.frames, max(engine.config.image_size, 64))
        video = engine.read(source)
        engine.build()
    build_s = monitor.summary()["stages"]["build"]["total_s"]
    for _ in range(args.warmup):
        engine.run(video, INSTRUCTION)
    monitor.reset(peaks=True)
    totals = []
    for _ in range(args.iters):
        start = time.perf_counter()
        result = engine.run(video, INSTRUCTION)
        totals.append(time.perf_counter() - start)
    summary = monitor.summary()
    print(
        f"fih-infer {args.size}{' ' + args.llm if args.size == 'full' else ''}, "
        f"{args.heatmaps} maps, {len(video.indices)} frames at {engine.config.image_size}² -> "
        f"{len(result.last.keyframes)} maps, {args.algorithm}, {engine.device}; "
        f"median of {args.iters} runs after {args.warmup} warm-up"
    )
    print(monitor.table())
    mem = summary["memory"]
    peak = mem.get("cuda_peak_allocated_mib")
    print(
        f"whole run: {statistics.median(totals):.3f} s | build {build_s:.1f} s | "
        + (f"peak CUDA allocated {peak / 1024:.1f} GiB | " if peak is not None else "")
        + f"CPU peak RSS {mem['cpu_peak_rss_mib'] / 1024:.2f} GiB"
    )
    if engine.device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(engine.device)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
