"""Does the tiny model learn? Train it on the bundled train split on CPU, then compare its
heatmaps and navigation with the baselines on val_seen and val_unseen; print a markdown table.

    python scripts/learning_experiment.py [--iterations 4] [--episodes 16] [--updates 150]
                                          [--eval-episodes 10] [--out data/fih/learning]

Rows: the trained policy on its own path (the benchmark), the trained policy teacher-forced on
the expert's path (``eval.action_source=expert``: heatmaps scored on the same path the heatmap
baselines walk), the untrained (random-init) policy on the expert's path, the uniform and
centre-prior heatmap baselines (expert actions), and the random / forward-only / expert agents.
Heatmap columns are means over episodes of frame_heatmap_quality (KL lower is better, IoU
higher is better); '-' where an agent predicts no heatmaps.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import habitat_fih  # noqa: F401  (compat first)

# isort: split
from habitat.config.default import patch_config

import habitat_fih.trainers  # noqa: F401
from habitat_fih.config import get_config
from habitat_fih.trainers.fih_trainer import FIHTrainer

COLUMNS = [
    ("frame_heatmap_quality.kl", "heatmap KL ↓"),
    ("frame_heatmap_quality.iou", "heatmap IoU ↑"),
    ("frame_heatmap_quality.peak_error", "peak err ↓"),
    ("success", "success"),
    ("spl", "SPL"),
    ("ndtw", "nDTW"),
    ("distance_to_goal", "dist to goal (m)"),
]


def config(out: str, extra: list[str]):
    base = [
        f"habitat_baselines.checkpoint_folder={out}/ckpt",
        f"habitat_baselines.eval_ckpt_path_dir={out}/ckpt",
        f"habitat_baselines.tensorboard_dir={out}/tb",
        f"habitat_baselines.fih.eval.results_dir={out}/eval",
    ]
    return patch_config(get_config("fih/synthetic_tiny", [*base, *extra]))


def fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--episodes", type=int, default=16, help="episodes per DAgger iteration")
    parser.add_argument("--updates", type=int, default=150, help="updates per DAgger iteration")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--max-steps", type=int, default=150, help="step cap per episode")
    parser.add_argument("--envs", type=int, default=2)
    parser.add_argument("--out", default="data/fih/learning")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--stage", default="main", choices=["pretrain", "finetune", "main"])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--p", type=float, default=0.75, help="DAgger beta = p**iteration")
    parser.add_argument(
        "--agents",
        nargs="*",
        default=None,
        help="evaluate only these rows (tags: ckpt, expert_path, untrained, uniform, center, "
        "random, forward, expert)",
    )
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    common = [
        f"habitat_baselines.num_environments={args.envs}",
        f"habitat_baselines.fih.collection.max_episode_steps={args.max_steps}",
        "habitat_baselines.log_interval=10",
    ]
    start = time.time()
    if not args.skip_train:
        FIHTrainer(
            config(
                out,
                [
                    *common,
                    f"habitat_baselines.fih.dagger.iterations={args.iterations}",
                    f"habitat_baselines.fih.dagger.episodes_per_iteration={args.episodes}",
                    f"habitat_baselines.fih.dagger.updates_per_iteration={args.updates}",
                    f"habitat_baselines.fih.dagger.p={args.p}",
                    f"habitat_baselines.fih.stage={args.stage}",
                    f"habitat_baselines.fih.optim.lr={args.lr}",
                    "habitat_baselines.fih.collection.buffer_size=6000",
                ],
            )
        ).train()
    train_s = time.time() - start
    last = args.iterations - 1
    ckpt = f"{out}/ckpt/ckpt.{last}.pth"
    # an untrained checkpoint: the same seed's random init saved before any update
    untrained = f"{out}/untrained/ckpt.0.pth"
    if not os.path.exists(untrained):
        trainer = FIHTrainer(config(out, common))
        policy = trainer.build_policy(int(trainer.fcfg.seed))
        from habitat_fih.trainers.checkpoint import atomic_save, model_state

        atomic_save(
            {
                "model": model_state(policy.model, trainer.model_config),
                "model_config": trainer.model_config.to_dict(),
            },
            untrained,
        )
    rows: dict[str, dict[str, dict]] = {}
    agents = [
        (
            "trained policy (own path)",
            [
                "habitat_baselines.fih.eval.agent=policy",
                f"habitat_baselines.eval_ckpt_path_dir={ckpt}",
            ],
            f"ckpt_{last}",
        ),
        (
            "trained policy (expert path)",
            [
                "habitat_baselines.fih.eval.agent=policy",
                "habitat_baselines.fih.eval.action_source=expert",
                f"habitat_baselines.eval_ckpt_path_dir={ckpt}",
            ],
            f"ckpt_{last}_expert_path",
        ),
        (
            "untrained policy (expert path)",
            [
                "habitat_baselines.fih.eval.agent=policy",
                "habitat_baselines.fih.eval.action_source=expert",
                f"habitat_baselines.eval_ckpt_path_dir={untrained}",
                f"habitat_baselines.fih.eval.results_dir={out}/eval_untrained",
            ],
            "ckpt_0_expert_path",
        ),
        (
            "uniform heatmap (0.5), expert actions",
            ["habitat_baselines.fih.eval.agent=uniform"],
            "uniform",
        ),
        (
            "centre-prior heatmap, expert actions",
            ["habitat_baselines.fih.eval.agent=center"],
            "center",
        ),
        ("random agent", ["habitat_baselines.fih.eval.agent=random"], "random"),
        ("forward-only agent", ["habitat_baselines.fih.eval.agent=forward"], "forward"),
        ("expert", ["habitat_baselines.fih.eval.agent=expert"], "expert"),
    ]
    keys = {
        f"ckpt_{last}": "ckpt",
        f"ckpt_{last}_expert_path": "expert_path",
        "ckpt_0_expert_path": "untrained",
    }
    if args.agents is not None:
        agents = [a for a in agents if keys.get(a[2], a[2]) in args.agents]
    for split in ("val_seen", "val_unseen"):
        for name, extra, tag in agents:
            cfg = config(
                out,
                [
                    *common,
                    f"habitat_baselines.test_episode_count={args.eval_episodes}",
                    f"habitat_baselines.fih.eval.split={split}",
                    *extra,
                ],
            )
            FIHTrainer(cfg).eval()
            results_dir = cfg.habitat_baselines.fih.eval.results_dir
            with open(f"{results_dir}/stats_{tag}_{split}.json") as f:
                rows.setdefault(name, {})[split] = json.load(f)
    lines = [
        f"Tiny model, stage {args.stage}, lr {args.lr}, DAgger p {args.p}, {args.iterations} DAgger iterations x {args.episodes} train episodes, "
        f"{args.iterations * args.updates} updates ({train_s / 60:.1f} min training on CPU); "
        f"{args.eval_episodes} episodes per split, step cap {args.max_steps}.",
        "",
    ]
    for split in ("val_seen", "val_unseen"):
        lines += [
            f"**{split}**",
            "",
            "| agent | " + " | ".join(c for _, c in COLUMNS) + " |",
            "|---" * (len(COLUMNS) + 1) + "|",
        ]
        for name in rows:
            stats = rows[name][split]
            lines.append(f"| {name} | " + " | ".join(fmt(stats.get(k)) for k, _ in COLUMNS) + " |")
        lines.append("")
    table = "\n".join(lines)
    with open(f"{out}/results.md", "w") as f:
        f.write(table)
    print(table)
    print(f"total {(time.time() - start) / 60:.1f} min", file=sys.stderr)


if __name__ == "__main__":
    main()
