"""Does the tiny model learn? Train it on the bundled train split on CPU, then compare its
heatmaps and navigation with the baselines on val_seen and val_unseen; print a markdown table.

    python scripts/learning_experiment.py [--config fih/synthetic_tiny_learn]
        [--eval-episodes 10] [--out data/fih/learning] [--skip-train] [--set KEY=VALUE ...]

Training is one command of the ``fih`` trainer with the config's ``fih.schedule`` (stages run
one after another, each starting from the previous one's last checkpoint); ``--set`` adds Hydra
overrides to training and evaluation alike (e.g. ``--set habitat_baselines.fih.optim.lr=3e-3``).

Evaluation uses one set of environments per split for every agent (the same episodes, in the
same order). Rows: the trained policy on its own path (the benchmark); the trained policy
teacher-forced on the expert's path (``action_source=expert``) and, on exactly its keyframes,
the uniform and centre-prior maps (``paired``: the like-for-like comparison); the untrained
(random-init) policy on the expert's path; the stand-alone uniform / centre-prior heatmap
agents (scored on every frame of the history, expert actions) and the random / forward-only /
expert agents. Heatmap columns are means over episodes of ``frame_heatmap_quality`` (KL lower is
better, IoU higher is better); '-' where an agent predicts no heatmaps. Action columns (policy
rows only): how often the policy's own action equals the expert's at the same view, next to
what always moving forward would score on the same steps (``action_agreement``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import habitat_fih  # noqa: F401  (compat first)

# isort: split
from habitat.config.default import patch_config

import habitat_fih.trainers  # noqa: F401
from habitat_fih.config import get_config
from habitat_fih.trainers.checkpoint import atomic_save, list_checkpoints, model_state
from habitat_fih.trainers.fih_trainer import FIHTrainer
from habitat_fih.utils import atomic_write

COLUMNS = [
    ("frame_heatmap_quality.kl", "heatmap KL ↓"),
    ("frame_heatmap_quality.iou", "heatmap IoU ↑"),
    ("frame_heatmap_quality.peak_error", "peak err ↓"),
    ("action_agreement.rate", "= expert action ↑"),
    ("action_agreement.always_forward", "always-fwd on same steps"),
    ("success", "success"),
    ("spl", "SPL"),
    ("ndtw", "nDTW"),
    ("distance_to_goal", "dist to goal (m)"),
    ("collisions_per_step", "collisions / step"),
]
BASELINE_ROWS = (
    ("uniform heatmap agent (0.5, every history frame), expert actions", "uniform"),
    ("centre-prior heatmap agent (every history frame), expert actions", "center"),
    ("random agent", "random"),
    ("forward-only agent", "forward"),
    ("expert", "expert"),
)
PAIRED_ROWS = (
    ("model", "↳ paired: the trained policy's maps"),
    ("uniform", "↳ paired: uniform map (0.5) on the same keyframes"),
    ("ones", "↳ paired: all-ones map (1.0; same KL as uniform, the IoU-best constant here)"),
    ("center", "↳ paired: centre prior on the same keyframes"),
    ("frustum", "↳ paired: non-learned frustum map on the same keyframes"),
    (
        "frustum_predicted",
        "↳ paired: the same frustum map from the cameras the model predicted (VGGT's)",
    ),
)
EXPERT_PATH = "trained policy (expert path)"


def fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def save_untrained(trainer: FIHTrainer, path: str) -> None:
    """The same seed's random init, saved as a checkpoint (the 'untrained' row)."""
    policy = trainer.build_policy(int(trainer.trainer_config.seed))
    atomic_save(
        {
            "model": model_state(policy.model, trainer.model_config),
            "model_config": trainer.model_config.to_dict(),
        },
        path,
    )


def agent_rows(
    trainer: FIHTrainer, ckpt: str, untrained: str
) -> list[tuple[str, str, Callable[[], Any]]]:
    """(row name, stats tag, agent factory) of every row, in table order."""
    own_tag, own = trainer.checkpoint_agent(ckpt, "policy")
    path_tag, on_path = trainer.checkpoint_agent(ckpt, "expert")
    _, untrained_on_path = trainer.checkpoint_agent(untrained, "expert")
    rows = [
        ("trained policy (own path)", own_tag, own),
        (EXPERT_PATH, path_tag, on_path),
        ("untrained policy (expert path)", "untrained_expert_path", untrained_on_path),
    ]
    for name, kind in BASELINE_ROWS:
        rows.append((name, kind, lambda kind=kind: trainer.baseline_agent(kind)))
    return rows


def table(rows: dict[str, dict[str, dict]], splits: tuple[str, ...]) -> list[str]:
    lines: list[str] = []
    for split in splits:
        lines += [
            f"**{split}**",
            "",
            "| agent | " + " | ".join(c for _, c in COLUMNS) + " |",
            "|---" * (len(COLUMNS) + 1) + "|",
        ]
        for name, by_split in rows.items():
            stats = by_split.get(split, {})
            lines.append(f"| {name} | " + " | ".join(fmt(stats.get(k)) for k, _ in COLUMNS) + " |")
        lines.append("")
    return lines


def with_paired_rows(rows: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """Insert the paired heatmap rows (read from the expert-path row's stats) after it."""
    if EXPERT_PATH not in rows:
        return rows
    out: dict[str, dict[str, dict]] = {}
    for name, by_split in rows.items():
        out[name] = by_split
        if name != EXPERT_PATH:
            continue
        for kind, paired_name in PAIRED_ROWS:
            if not any(f"paired_heatmap.{kind}.kl" in stats for stats in by_split.values()):
                continue  # e.g. no frustum baseline without the frame_geometry sensor
            out[paired_name] = {
                split: {
                    f"frame_heatmap_quality.{m}": stats.get(f"paired_heatmap.{kind}.{m}")
                    for m in ("kl", "iou", "peak_error")
                }
                for split, stats in by_split.items()
            }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="fih/synthetic_tiny_learn")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--out", default="data/fih/learning")
    parser.add_argument("--skip-train", action="store_true", help="evaluate the existing run")
    parser.add_argument(
        "--train-only", action="store_true", help="train (or finish training), evaluate nothing"
    )
    parser.add_argument("--set", nargs="*", default=[], help="extra Hydra overrides")
    parser.add_argument(
        "--agents",
        nargs="*",
        default=None,
        help="evaluate only these stats tags (e.g. ckpt_3 uniform random); 'trained' and "
        "'trained_expert_path' name the trained policy's rows whatever its checkpoint index",
    )
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    overrides = [
        f"habitat_baselines.checkpoint_folder={out}/ckpt",
        f"habitat_baselines.eval_ckpt_path_dir={out}/ckpt",
        f"habitat_baselines.tensorboard_dir={out}/tb",
        f"habitat_baselines.fih.eval.results_dir={out}/eval",
        *args.set,
    ]

    def make_trainer(*extra: str) -> FIHTrainer:
        return FIHTrainer(patch_config(get_config(args.config, [*overrides, *extra])))

    start = time.time()
    trainer = make_trainer()
    if not args.skip_train:
        if not trainer.train():
            sys.exit("training stopped early (stop_after_updates); run again to resume")
    train_s = time.time() - start
    if not args.skip_train:  # wall time, kept out of the tables (two runs give the same tables)
        text = json.dumps({"train_minutes": train_s / 60, "config": args.config, "set": args.set})
        atomic_write(f"{out}/training.json", lambda tmp: Path(tmp).write_text(text))
    ckpt = list_checkpoints(f"{out}/ckpt")[-1]
    untrained = f"{out}/untrained/ckpt.0.pth"
    if not os.path.exists(untrained):
        save_untrained(trainer, untrained)
    if args.train_only:
        return

    splits = ("val_seen", "val_unseen")
    rows: dict[str, dict[str, dict]] = {}
    for split in splits:
        evaluator = make_trainer(f"habitat_baselines.test_episode_count={args.eval_episodes}")
        aliases = {"trained policy (own path)": "trained", EXPERT_PATH: "trained_expert_path"}
        chosen = [
            r
            for r in agent_rows(evaluator, ckpt, untrained)
            if args.agents is None or r[1] in args.agents or aliases.get(r[0]) in args.agents
        ]
        results = evaluator.evaluate_agents(split, [(tag, make) for _, tag, make in chosen])
        for name, tag, _ in chosen:
            rows.setdefault(name, {})[split] = results[tag]

    trainer_config = trainer.trainer_config
    stages = [dict(e) for e in trainer_config.schedule] or [{"stage": trainer_config.stage}]

    def dagger(entry: dict[str, Any], key: str) -> Any:
        return entry.get("dagger", {}).get(key, trainer_config.dagger[key])

    recipe = ", ".join(
        f"{e['stage']} ({dagger(e, 'iterations')} it x {dagger(e, 'updates_per_iteration')} "
        f"updates, {dagger(e, 'episodes_per_iteration')} train episodes per iteration)"
        for e in stages
    )
    lines = [
        f"Config {args.config} {' '.join(args.set)}: {recipe}, DAgger p {trainer_config.dagger.p}, lr "
        f"{trainer_config.optim.lr}; training {train_s / 60:.1f} min on CPU; {args.eval_episodes} "
        f"episodes per split, step cap {trainer_config.collection.max_episode_steps}.",
        "",
        *table(with_paired_rows(rows), splits),
    ]
    text = "\n".join(lines)
    atomic_write(f"{out}/results.md", lambda tmp: Path(tmp).write_text(text))
    print(text)
    print(f"total {(time.time() - start) / 60:.1f} min", file=sys.stderr)


if __name__ == "__main__":
    main()
