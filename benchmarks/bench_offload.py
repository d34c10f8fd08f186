"""Memory and latency of component offload (`habitat_fih.models.offload`): FIHModel resident vs
with VGGT / DINOv3 / the LLM kept on CPU between their stages. Prints one table, writes JSON.

    python benchmarks/bench_offload.py                                   # CPU: tiny model
    python benchmarks/bench_offload.py --preset full --llm 7b --device cuda   # GPU: 7B, random init
    python benchmarks/bench_offload.py --preset full --offload llm --device cuda   # only the LLM

Random-init weights, no downloads (`FIHModelConfig.full(...)` / `.tiny()`). The model is built
once on the execution device and timed resident; then `FIHModel.enable_offload` moves the
offloaded components to (pinned) CPU memory and the same forward is timed again, so both runs
use the same weights (the outputs must agree: ``max_abs_diff``). Per run: the median forward
latency over `--iters` runs after `--warmup` (the first offloaded run also pins the CPU copies),
the peak memory (`torch.cuda.max_memory_allocated` on CUDA; on CPU, where nothing is saved, the
bytes of weights the execution device holds: everything resident, vs the modules that stay plus
the largest offloaded component), and for the offloaded run the offload counters per forward
(transfers, bytes copied, seconds moving, effective bandwidth).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from habitat_fih.models.config import FIHModelConfig  # noqa: E402
from habitat_fih.models.factory import build_model, build_stand_in_tokenizer  # noqa: E402
from habitat_fih.models.fih_model import FIHModel  # noqa: E402
from habitat_fih.models.offload import offload_components  # noqa: E402
from habitat_fih.utils import atomic_write_bytes  # noqa: E402

INSTRUCTION = (
    "Walk out of the bedroom and turn left, go down the hallway past the table, then turn "
    "right into the kitchen and stop next to the fridge near the window."
)
MODULES = {"vggt": "vggt", "dinov3": "dinov3", "llm": "qwen"}


def nbytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


def timed_forwards(
    model: FIHModel, inputs: tuple, device: torch.device, iters: int, warmup: int, deadline: float
) -> tuple[list[float], Any]:
    """Times of `iters` forwards after `warmup` (stops at `deadline`), and the last output."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out = None
    times: list[float] = []
    with torch.no_grad():
        for i in tqdm(range(warmup + iters), desc="forwards", leave=False, file=sys.stderr):
            if times and time.perf_counter() > deadline:
                break
            sync()
            start = time.perf_counter()
            out = model(*inputs)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return times, out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--llm", choices=("7b", "3b"), default="7b")
    parser.add_argument("--device", default=None, help="default: cuda for full, cpu for tiny")
    parser.add_argument("--offload", default="all", help="vggt,dinov3,llm (comma-separated) or all")
    parser.add_argument("--batch", type=int, default=None, help="default: 2 tiny, 1 full")
    parser.add_argument("--frames", type=int, default=None, help="default: 9 tiny, 32 full")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--time-budget", type=float, default=240.0, help="seconds per run")
    parser.add_argument("--json", default=None, help="default outputs/bench_offload_<preset>.json")
    args = parser.parse_args(argv)

    full = args.preset == "full"
    device = torch.device(args.device or ("cuda" if full else "cpu"))
    components = offload_components(args.offload, where="--offload")
    batch, frames = args.batch or (1 if full else 2), args.frames or (32 if full else 9)
    config = FIHModelConfig.full(args.llm) if full else FIHModelConfig.tiny()
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    torch.manual_seed(0)
    start = time.perf_counter()
    model = build_model(config, tokenizer=build_stand_in_tokenizer(config), device=device).eval()
    build_s = time.perf_counter() - start
    gen = torch.Generator().manual_seed(0)
    size = config.image_size
    inputs = (
        torch.rand(batch, frames, 3, size, size, generator=gen).to(device),
        torch.ones(batch, frames, dtype=torch.bool, device=device),
        torch.arange(frames, device=device).expand(batch, frames),
        [INSTRUCTION] * batch,
    )
    weights = {name: nbytes(getattr(model, attr)) for name, attr in MODULES.items()}
    total_bytes = nbytes(model)
    offloaded_bytes = sum(weights[n] for n in components)
    result: dict[str, Any] = {
        "preset": args.preset + (f" {args.llm}" if full else ""),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else "cpu",
        "torch_threads": torch.get_num_threads(),
        "batch": batch,
        "frames": frames,
        "image_size": size,
        "offload": list(components),
        "build_s": build_s,
        "weights_bytes": {**weights, "total": total_bytes},
    }

    runs: dict[str, Any] = {}
    outputs = {}
    for mode in ("resident", "offloaded"):
        offload = model.enable_offload(device, components) if mode == "offloaded" else None
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        deadline = time.perf_counter() + args.time_budget
        times, outputs[mode] = timed_forwards(
            model, inputs, device, args.iters, args.warmup, deadline
        )
        run: dict[str, Any] = {
            "forward_median_s": statistics.median(times),
            "forward_best_s": min(times),
            "forwards_timed": len(times),
            "peak_allocated_bytes": torch.cuda.max_memory_allocated(device) if cuda else None,
            # weights the execution device holds at once (at rest / at most, during a stage)
            "weights_on_device_bytes": total_bytes
            if offload is None
            else total_bytes - offloaded_bytes,
            "max_weights_on_device_bytes": total_bytes
            if offload is None
            else total_bytes - offloaded_bytes + max(weights[n] for n in components),
        }
        if offload is not None:
            n = args.warmup + len(times)  # every forward moved each component once
            total = offload.totals()
            run["per_forward"] = {
                "transfers": total.transfers / n,
                "bytes_copied": total.bytes_loaded / n,
                "transfer_s": total.seconds / n,
                "bandwidth_gb_s": total.bytes_loaded / total.seconds / 1e9
                if total.seconds
                else None,
            }
            model.disable_offload()
        runs[mode] = run
    a, b = outputs["resident"], outputs["offloaded"]
    result["max_abs_diff"] = max(
        float((a.heatmap_logits - b.heatmap_logits).abs().max()),
        float((a.action_logits - b.action_logits).abs().max()),
    )
    result.update(runs)
    print_table(result)
    path = Path(args.json or f"outputs/bench_offload_{args.preset}.json")
    atomic_write_bytes(path, (json.dumps(result, indent=2) + "\n").encode())
    print(f"written to {path}")
    return result


def print_table(result: dict[str, Any]) -> None:
    mib = 2**20

    def mem(run: dict[str, Any]) -> str:
        if run["peak_allocated_bytes"] is not None:
            return f"{run['peak_allocated_bytes'] / mib:.1f} MiB peak allocated"
        return (
            f"weights on device {run['weights_on_device_bytes'] / mib:.2f} MiB at rest, "
            f"{run['max_weights_on_device_bytes'] / mib:.2f} MiB at most"
        )

    print(
        f"FIHModel {result['preset']} on {result['device']} ({result['device_name']}), batch "
        f"{result['batch']} x {result['frames']} frames of {result['image_size']}^2, offload "
        f"{','.join(result['offload'])}; weights {result['weights_bytes']['total'] / mib:.2f} MiB"
    )
    print("| run | forward (median) | memory | transfers / forward |\n|---|---|---|---|")
    for mode in ("resident", "offloaded"):
        run = result[mode]
        per = run.get("per_forward")
        moved = (
            f"{per['transfers']:.0f} moves, {per['bytes_copied'] / mib:.2f} MiB copied in "
            f"{per['transfer_s'] * 1e3:.1f} ms"
            if per
            else "-"
        )
        print(f"| {mode} | {run['forward_median_s'] * 1e3:.1f} ms | {mem(run)} | {moved} |")
    print(f"max |resident - offloaded| of the logits: {result['max_abs_diff']:.3g}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
