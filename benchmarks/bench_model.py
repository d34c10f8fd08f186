"""Speed and memory of the end-to-end FIHModel; prints one table.

    python benchmarks/bench_model.py --size tiny                 # CPU: tiny model, fwd / fwd+bwd
    python benchmarks/bench_model.py --size full --llm 7b        # GPU: VGGT-1B + DINOv3-L + 7B
    python benchmarks/bench_model.py --size full --device meta   # build on meta only (no memory)

`--size full` builds the random-init full model directly on the GPU (DINOv3 and the LLM in
bfloat16, VGGT and the trained parts in float32 under bfloat16 autocast), then times one
forward over `--frames` (32) frames of 224² → 8 keyframe maps + action logits: the median of
`--iters` runs after `--warmup` runs for the whole forward (no stage hooks), and per stage
(VGGT, sampling, DINOv3, fusion, LLM, heads) with `torch.cuda.synchronize` around each stage
(`habitat_fih.utils.PerformanceMonitor` as the model's stage hook);
the peak column is `torch.cuda.max_memory_allocated` during the stage (weights included); on
CPU the forward row shows the process's peak resident memory instead.
`--backward` adds a forward + backward row (finetune stage: fusion and heads trained).
`--time-budget` stops the timed loops early (the table is printed with what was measured), so
the script fits a fixed device slot.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from habitat_fih.models.config import FIHModelConfig  # noqa: E402
from habitat_fih.models.factory import build_model, build_stand_in_tokenizer  # noqa: E402
from habitat_fih.models.fih_model import FIHModel  # noqa: E402
from habitat_fih.utils.perf import MIB, PerformanceMonitor  # noqa: E402

STAGES = ("vggt", "sampling", "dinov3", "fusion", "llm", "heads")
INSTRUCTION = (
    "Walk out of the bedroom and turn left, go down the hallway past the table, then turn "
    "right into the kitchen and stop next to the fridge near the window."
)


def make_batch(
    batch: int, frames: int, size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    gen = torch.Generator(device="cpu").manual_seed(0)
    images = torch.rand(batch, frames, 3, size, size, generator=gen).to(device)
    mask = torch.ones(batch, frames, dtype=torch.bool, device=device)
    indices = torch.arange(frames, device=device).expand(batch, frames)
    return images, mask, indices, [INSTRUCTION] * batch


def timed(fn, device: torch.device, iters: int, warmup: int, deadline: float) -> list[float]:
    """Run `fn` warmup + iters times; the times of the timed runs (stops at `deadline`)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if times and time.perf_counter() > deadline:
            break
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def gb(n: int) -> str:
    return f"{n / 2**30:.2f}"


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--llm", choices=("7b", "3b"), default="7b")
    parser.add_argument("--device", default=None, help="default: cuda for full, cpu for tiny")
    parser.add_argument("--batch", type=int, default=None, help="default: 2 tiny, 1 full")
    parser.add_argument("--frames", type=int, default=None, help="default: 9 tiny, 32 full")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--backward", action="store_true", help="also time forward+backward")
    parser.add_argument("--time-budget", type=float, default=300.0, help="seconds, timed loops")
    args = parser.parse_args(argv)

    full = args.size == "full"
    device = torch.device(args.device or ("cuda" if full else "cpu"))
    batch = args.batch or (1 if full else 2)
    frames = args.frames or (32 if full else 9)
    if full:
        config = FIHModelConfig.full(args.llm)
        tokenizer = build_stand_in_tokenizer(config)
    else:
        config = FIHModelConfig.tiny()
        tokenizer = build_stand_in_tokenizer(config)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats()

    torch.manual_seed(0)
    start = time.perf_counter()
    model: FIHModel = build_model(config, tokenizer=tokenizer, device=device)
    if device.type == "cuda":
        model.place(device)  # no-op unless a component was left on another device
        torch.cuda.synchronize()
    build_s = time.perf_counter() - start
    rows: list[tuple[str, str, str]] = []
    results: dict[str, float] = {"build_s": build_s}
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    title = (
        f"FIHModel {args.size}{' ' + args.llm if full else ''} on {device} "
        f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else device.type}), "
        f"batch {batch} x {frames} frames of {config.image_size}^2, K = {config.num_keyframes}"
    )
    rows.append(("model build", f"{build_s * 1e3:.0f}", gb(weights) + " (weights)"))
    if device.type == "meta":
        for name, module in model.component_modules().items():
            count = sum(p.numel() for p in module.parameters())
            rows.append((f"params {name}", f"{count / 1e6:.1f} M", "-"))
        print_table(title, rows)
        return results

    model.eval()
    images, mask, indices, texts = make_batch(batch, frames, config.image_size, device)
    deadline = time.perf_counter() + args.time_budget

    def forward() -> None:
        with torch.no_grad():
            model(images, mask, indices, texts)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    total = timed(forward, device, args.iters, args.warmup, deadline)
    peak_total = torch.cuda.max_memory_allocated() if device.type == "cuda" else 0
    monitor = PerformanceMonitor(device)  # synchronises around each stage on CUDA
    model.stage_hook = monitor
    timed(forward, device, max(1, args.iters // 2), 0, deadline)
    model.stage_hook = None
    stages = monitor.summary()["stages"]
    for name in STAGES:
        median = stages[name]["median_s"]
        results[f"{name}_s"] = median
        peak = gb(int(stages[name]["peak_allocated_mib"] * MIB)) if monitor.cuda else "-"
        rows.append((f"  {name}", f"{median * 1e3:.1f}", peak))
    results["forward_s"] = statistics.median(total)
    rows.append(
        (
            f"forward (median of {len(total)})",
            f"{results['forward_s'] * 1e3:.1f}",
            # (CPU runs: the process's peak resident memory, weights + activations)
            gb(peak_total)
            if device.type == "cuda"
            else f"{monitor.memory()['cpu_peak_rss_mib'] / 1024:.2f} (RSS)",
        )
    )

    if args.backward or not full:
        model.train()
        model.set_stage("finetune")

        def forward_backward() -> None:
            model.zero_grad(set_to_none=True)
            out = model(images, mask, indices, texts)
            (out.heatmap_logits.float().mean() + out.action_logits.float().mean()).backward()

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        fb = timed(forward_backward, device, args.iters, args.warmup, deadline + 60.0)
        results["forward_backward_s"] = statistics.median(fb)
        rows.append(
            (
                f"forward+backward (median of {len(fb)})",
                f"{results['forward_backward_s'] * 1e3:.1f}",
                gb(torch.cuda.max_memory_allocated()) if device.type == "cuda" else "-",
            )
        )
    print_table(title, rows)
    return results


def print_table(title: str, rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows) + 2
    print(title)
    print(f"{'stage':<{width}}{'time (ms)':>12}{'peak mem (GB)':>18}")
    print("-" * (width + 30))
    for name, ms, mem in rows:
        print(f"{name:<{width}}{ms:>12}{mem:>18}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
