"""Choose the progress monitor's stop threshold on TRAIN episodes (never on the evaluation ones).

    python scripts/stop_threshold.py --out data/fih/nav_ablation/monitor
        [--config fih/synthetic_tiny_nav] [--episodes 20] [--split train] [--set KEY=VALUE ...]

Runs the trained policy of ``<out>/ckpt`` (as `scripts/learning_experiment.py` leaves it) with
``fih.stop.rule: never`` on the first N episodes of the split, recording at every step the
predicted remaining distance, P(STOP) and the simulator's ``distance_to_goal``. The path up to
any stopping step does not depend on the threshold (the other actions never see it), so this
one rollout gives, for every candidate threshold, the step where that rule would have stopped
and whether it would have succeeded there (``distance_to_goal`` < the task's success
distance). Two rules are tabulated: stop when the predicted distance < tau metres (the
``goal_distance`` rule), and, for comparison, when P(STOP) > tau. The chosen tau is the one
with the most successes (ties: the smallest tau); it is written with the tables to
``<out>/stop_threshold_<split>.json`` and ``.md`` and printed, ready for
``--set habitat_baselines.fih.stop.distance=<tau>``, with the monitor's error on those steps
(`monitor_quality`); the per-step trace goes to ``<out>/stop_trace_<split>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import habitat_fih  # noqa: F401  (compat first)

# isort: split
from habitat.config.default import patch_config

import habitat_fih.trainers  # noqa: F401
from habitat_fih.config import get_config
from habitat_fih.trainers.checkpoint import list_checkpoints, load_checkpoint, load_model_weights
from habitat_fih.trainers.evaluation import PolicyAgent
from habitat_fih.trainers.fih_trainer import FIHTrainer
from habitat_fih.utils import atomic_write

#: candidate thresholds: metres for the distance rule, probabilities for P(STOP)
DISTANCES = tuple(round(0.25 * i, 2) for i in range(1, 25))  # 0.25 .. 6 m
PROBABILITIES = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5)


def threshold_table(
    trace: Sequence[dict[str, Any]],
    success_distance: float,
    key: str,
    candidates: Sequence[float],
) -> list[dict[str, float]]:
    """For each candidate tau: the episodes' success rate and mean stopping step when the
    agent stops at the first step whose ``key`` is below tau (``predicted_distance``) or above
    it (``p_stop``); an episode that never meets the rule fails (it ends at the step cap
    without STOP, as habitat's ``success`` counts only a STOP). ``trace``: `PolicyAgent.trace`
    rows of a ``never``-rule rollout."""
    if key not in ("predicted_distance", "p_stop"):
        raise ValueError(f"key must be 'predicted_distance' or 'p_stop', got {key!r}")
    episodes: dict[str, list[dict[str, Any]]] = {}
    for row in trace:
        episodes.setdefault(str(row["episode_id"]), []).append(row)
    if not episodes:
        raise ValueError("the trace is empty: no episode was run")
    for rows in episodes.values():
        rows.sort(key=lambda r: int(r["step"]))
        if any(r[key] is None for r in rows):
            raise ValueError(f"the trace has no {key!r} (a model without the progress monitor?)")
    out = []
    for tau in candidates:
        successes, stop_steps = 0, []
        for rows in episodes.values():
            hit = next(
                (
                    r
                    for r in rows
                    if (r[key] < tau if key == "predicted_distance" else r[key] > tau)
                ),
                None,
            )
            if hit is None:
                continue
            stop_steps.append(int(hit["step"]))
            successes += int(float(hit["goal_distance"]) < success_distance)
        out.append(
            {
                "threshold": float(tau),
                "successes": successes,
                "success": successes / len(episodes),
                "stopped": len(stop_steps) / len(episodes),
                "mean_stop_step": sum(stop_steps) / len(stop_steps) if stop_steps else None,
            }
        )
    return out


def monitor_quality(trace: Sequence[dict[str, Any]]) -> dict[str, float]:
    """How well the progress monitor predicts the remaining distance on the rollout's steps:
    mean absolute error (m), Pearson correlation with the simulator's distance, and the range
    of its predictions."""
    pairs = [
        (float(r["predicted_distance"]), float(r["goal_distance"]))
        for r in trace
        if r["predicted_distance"] is not None
    ]
    if len(pairs) < 2:
        raise ValueError(f"need at least 2 steps with a predicted distance, got {len(pairs)}")
    pred, true = (np.array(x) for x in zip(*pairs, strict=True))
    spread = float(pred.std() * true.std())
    return {
        "steps": len(pairs),
        "mae_m": float(np.abs(pred - true).mean()),
        "pearson": float(((pred - pred.mean()) * (true - true.mean())).mean() / spread)
        if spread > 0
        else 0.0,
        "predicted_min_m": float(pred.min()),
        "predicted_max_m": float(pred.max()),
        "true_mean_m": float(true.mean()),
    }


def best(table: list[dict[str, float]]) -> dict[str, float]:
    """The row with the most successes; ties go to the smallest threshold (integer counts:
    no floating-point tie)."""
    return max(table, key=lambda r: (r["successes"], -r["threshold"]))


def _markdown(tables: dict[str, list[dict[str, float]]], episodes: int, split: str) -> str:
    lines = [f"Stop rules on the first {episodes} {split} episodes (one never-stop rollout)", ""]
    for name, rows in tables.items():
        lines += [
            f"**{name}**",
            "",
            "| tau | success | stopped | mean stop step |",
            "|---|---|---|---|",
        ]
        for r in rows:
            step = "-" if r["mean_stop_step"] is None else f"{r['mean_stop_step']:.1f}"
            lines.append(
                f"| {r['threshold']:g} | {r['success']:.3f} | {r['stopped']:.2f} | {step} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="a learning_experiment.py run folder")
    parser.add_argument("--config", default="fih/synthetic_tiny_nav")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--split", default="train")
    parser.add_argument("--set", nargs="*", default=[], help="extra Hydra overrides")
    args = parser.parse_args(argv)
    if args.split.startswith("val"):
        sys.exit(
            f"--split {args.split}: choose the threshold on train episodes, not evaluation ones"
        )
    out = os.path.abspath(args.out)
    paths = list_checkpoints(f"{out}/ckpt")
    if not paths:
        sys.exit(f"no checkpoint under {out}/ckpt: train first (scripts/learning_experiment.py)")
    overrides = [
        f"habitat_baselines.checkpoint_folder={out}/ckpt",
        f"habitat_baselines.eval_ckpt_path_dir={out}/ckpt",
        f"habitat_baselines.tensorboard_dir={out}/tb",
        f"habitat_baselines.fih.eval.results_dir={out}/eval",
        f"habitat_baselines.test_episode_count={args.episodes}",
        *args.set,
    ]
    config = patch_config(get_config(args.config, overrides))
    trainer = FIHTrainer(config)
    runs = trainer.evaluation
    agents: list[PolicyAgent] = []

    def make() -> PolicyAgent:
        policy = runs.build_policy(int(config.habitat_baselines.fih.seed))
        load_model_weights(policy.model, load_checkpoint(paths[-1]), runs.model_config, paths[-1])
        policy.eval()
        agents.append(PolicyAgent(policy, runs.device, stop_rule="never", trace=True))
        return agents[-1]

    runs.evaluate_agents(args.split, [("never_stop", make)])
    trace = agents[0].trace or []
    success_distance = float(config.habitat.task.measurements.success.success_distance)
    tables = {
        "predicted distance < tau (m)": threshold_table(
            trace, success_distance, "predicted_distance", DISTANCES
        ),
        "P(STOP) > tau": threshold_table(trace, success_distance, "p_stop", PROBABILITIES),
    }
    chosen = best(tables["predicted distance < tau (m)"])
    result = {
        "checkpoint": paths[-1],
        "split": args.split,
        "episodes": args.episodes,
        "success_distance": success_distance,
        "chosen_distance": chosen["threshold"],
        "chosen": chosen,
        "best_p_stop": best(tables["P(STOP) > tau"]),
        "monitor": monitor_quality(trace),
        "tables": tables,
    }
    n = len({r["episode_id"] for r in trace})
    md = _markdown(tables, n, args.split)
    text = json.dumps(result, indent=2)
    atomic_write(f"{out}/stop_threshold_{args.split}.json", lambda t: Path(t).write_text(text))
    atomic_write(f"{out}/stop_threshold_{args.split}.md", lambda t: Path(t).write_text(md + "\n"))
    atomic_write(
        f"{out}/stop_trace_{args.split}.json", lambda t: Path(t).write_text(json.dumps(trace))
    )
    print(md)
    print("monitor on these steps: " + json.dumps(result["monitor"]))
    print(f"chosen: habitat_baselines.fih.stop.distance={chosen['threshold']:g}")
    return result


if __name__ == "__main__":
    main()
