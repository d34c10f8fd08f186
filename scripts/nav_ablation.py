"""Which navigation inputs make the tiny agent navigate? Train `fih/synthetic_tiny_nav` once per
set of action-head inputs and tabulate navigation on the first N episodes of each val split.

    python scripts/nav_ablation.py [--variants both depth previous_action none]
        [--eval-episodes 20] [--out data/fih/nav_ablation] [--set KEY=VALUE ...]

Each variant is one `scripts/learning_experiment.py` run (training, then evaluation of the
trained policy on its own path and on the expert's path, plus, for the first variant, the
random / forward-only / expert agents on the same episodes) in ``<out>/<variant>``; a finished
variant is evaluated again without retraining (the schedule skips finished stages). Variants
(`VARIANTS`): ``both`` (the recipe: depth and the previous action), ``depth``,
``previous_action``, ``none`` (the design's RGB + instruction), all with the recipe's
``stop_weight``, and ``both_stop1`` (both inputs, VLN-CE's weights alone). The table
(``<out>/navigation.md``, printed) has, per split, one row per trained variant and the
baseline agents of the first variant: success, oracle success (came within the success
distance at some step), SPL, nDTW, collisions per step, distance to goal and the policy's
agreement with the expert's action on its own path and teacher-forced on the expert's path
(next to what always moving forward scores on those steps). It holds no timing, so two runs of
the same code give the same table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import learning_experiment  # noqa: E402  (scripts/learning_experiment.py)

from habitat_fih.trainers.checkpoint import checkpoint_index, list_checkpoints  # noqa: E402
from habitat_fih.utils import atomic_write  # noqa: E402

_INPUTS = "habitat_baselines.fih.model.overrides.action.inputs="
#: variant -> (its row label, its Hydra overrides of fih/synthetic_tiny_nav)
VARIANTS = {
    "both": ("depth + previous action", [_INPUTS + "[depth,previous_action]"]),
    "depth": ("depth", [_INPUTS + "[depth]"]),
    "previous_action": ("previous action", [_INPUTS + "[previous_action]"]),
    "none": ("none (RGB + instruction)", [_INPUTS + "[]"]),
    "both_stop1": (
        "depth + previous action, VLN-CE weights (stop_weight 1)",
        [_INPUTS + "[depth,previous_action]", "habitat_baselines.fih.losses.main.stop_weight=1.0"],
    ),
}
SPLITS = ("val_seen", "val_unseen")
BASELINES = (("random agent", "random"), ("forward-only agent", "forward"), ("expert", "expert"))
COLUMNS = (
    ("success", "success ↑"),
    ("oracle_success", "oracle success ↑"),
    ("spl", "SPL ↑"),
    ("ndtw", "nDTW ↑"),
    ("collisions_per_step", "collisions / step ↓"),
    ("distance_to_goal", "dist to goal (m) ↓"),
    ("action_agreement.rate", "= expert action, own path"),
)


def _stats(folder: str, tag: str, split: str) -> dict:
    path = Path(folder) / "eval" / f"stats_{tag}_{split}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _fmt(value: object) -> str:
    return "-" if value is None else f"{float(value):.3f}"  # type: ignore[arg-type]


def table(out: str, variants: list[str]) -> str:
    lines: list[str] = []
    for split in SPLITS:
        lines += [
            f"**{split}**",
            "",
            "| agent | "
            + " | ".join(c for _, c in COLUMNS)
            + " | = expert action, expert path | always-fwd on those steps |",
            "|---" * (len(COLUMNS) + 3) + "|",
        ]
        for variant in variants:
            folder = os.path.join(out, variant)
            tag = f"ckpt_{checkpoint_index(list_checkpoints(os.path.join(folder, 'ckpt'))[-1])}"
            own, path = _stats(folder, tag, split), _stats(folder, f"{tag}_expert_path", split)
            cells = [_fmt(own.get(k)) for k, _ in COLUMNS]
            cells += [
                _fmt(path.get("action_agreement.rate")),
                _fmt(path.get("action_agreement.always_forward")),
            ]
            lines.append(f"| trained: {VARIANTS[variant][0]} | " + " | ".join(cells) + " |")
        for name, tag in BASELINES:
            stats = _stats(os.path.join(out, variants[0]), tag, split)
            cells = [_fmt(stats.get(k)) for k, _ in COLUMNS] + ["-", "-"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--out", default="data/fih/nav_ablation")
    parser.add_argument("--set", nargs="*", default=[], help="extra Hydra overrides")
    parser.add_argument("--table-only", action="store_true", help="tabulate finished runs")
    parser.add_argument(
        "--skip-baselines",
        action="store_true",
        help="do not evaluate the baseline agents (when variants run as separate commands)",
    )
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    for i, variant in enumerate(args.variants):
        if args.table_only:
            break
        folder = os.path.join(out, variant)
        agents = ["trained", "trained_expert_path"]
        agents += ["random", "forward", "expert"] if i == 0 and not args.skip_baselines else []
        learning_experiment.main(
            [
                "--config", "fih/synthetic_tiny_nav",
                "--out", folder,
                "--eval-episodes", str(args.eval_episodes),
                "--set", *VARIANTS[variant][1], *args.set,
                "--agents", *agents,
            ]
        )  # fmt: skip
    text = table(out, args.variants)
    atomic_write(os.path.join(out, "navigation.md"), lambda tmp: Path(tmp).write_text(text))
    print(text)


if __name__ == "__main__":
    main()
