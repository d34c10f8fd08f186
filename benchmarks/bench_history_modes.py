"""Accuracy and speed of VGGT's history modes (`FIHModelConfig.vggt_history`): ``full`` (VGGT's
global attention over every remembered frame, re-run each step) vs ``causal_cache`` (each frame
aggregated once, against a key / value cache of the first + W recent frames).

Trains the tiny model of ``fih/synthetic_tiny`` twice (once per mode, same seed and data), then
evaluates on the expert's path (``fih.eval.action_source=expert``: every run sees the same
frames, so heatmap differences come from the model alone) on the first N val_seen episodes:

* ``full`` checkpoint evaluated with ``full``            (the reference),
* ``full`` checkpoint evaluated with ``causal_cache``    (the cache swapped in at inference),
* ``causal_cache`` checkpoint evaluated with ``causal_cache`` (trained causally as it acts).

Prints one markdown table: frame-heatmap KL / IoU / peak error on the policy's own keyframes
(`frame_heatmap_quality`), the uniform map's KL / IoU on the same pairs, and the wall time of
each evaluation (dominated by the policy's steps).

    python benchmarks/bench_history_modes.py [--episodes 10] [--out outputs/bench_history_modes]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METRICS = (
    ("frame_heatmap_quality.kl", "KL"),
    ("frame_heatmap_quality.iou", "IoU"),
    ("frame_heatmap_quality.peak_error", "peak err"),
    ("paired_heatmap.uniform.kl", "uniform KL"),
    ("paired_heatmap.uniform.iou", "uniform IoU"),
)


def _run(args: list[str]) -> float:
    start = time.perf_counter()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "habitat_fih.run", "--config-name=fih/synthetic_tiny", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"habitat_fih.run {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--out", default="outputs/bench_history_modes")
    args = parser.parse_args()
    out = (REPO / args.out).resolve()
    rows = []
    for trained in ("full", "causal_cache"):
        folder = out / trained
        mode = f"+habitat_baselines.fih.model.overrides.vggt_history={trained}"
        common = [
            f"habitat_baselines.checkpoint_folder={folder}/checkpoints",
            f"habitat_baselines.tensorboard_dir={folder}/tb",
            f"habitat_baselines.fih.eval.results_dir={folder}/eval",
        ]
        train_s = _run([*common, mode])
        for evaluated in ("full", "causal_cache") if trained == "full" else ("causal_cache",):
            results = folder / f"eval_{evaluated}"
            eval_s = _run(
                [
                    *common[:2],
                    f"habitat_baselines.fih.eval.results_dir={results}",
                    f"+habitat_baselines.fih.model.overrides.vggt_history={evaluated}",
                    "habitat_baselines.evaluate=True",
                    f"habitat_baselines.eval_ckpt_path_dir={folder}/checkpoints/ckpt.1.pth",
                    f"habitat_baselines.test_episode_count={args.episodes}",
                    "habitat_baselines.fih.eval.action_source=expert",
                ]
            )
            stats = json.loads((results / "stats_ckpt_1_expert_path_val_seen.json").read_text())
            rows.append((trained, evaluated, stats, train_s, eval_s))
    print(f"\nval_seen, first {args.episodes} episodes on the expert's path (tiny model, CPU)\n")
    head = ["trained", "evaluated", *(name for _, name in METRICS), "steps", "eval s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for trained, evaluated, stats, _, eval_s in rows:
        cells = [trained, evaluated, *(f"{stats[key]:.4f}" for key, _ in METRICS)]
        cells += [f"{stats['num_steps'] * stats['num_episodes']:.0f}", f"{eval_s:.0f}"]
        print("| " + " | ".join(cells) + " |")
    print("\ntraining wall time: " + ", ".join(f"{r[0]} {r[3]:.0f} s" for r in rows[::2]))


if __name__ == "__main__":
    main()
