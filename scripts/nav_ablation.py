"""Does the tiny agent navigate, and what does each lever add? Train `fih/synthetic_tiny_nav`
once per variant and tabulate navigation on the first N episodes of each val split.

    python scripts/nav_ablation.py [--variants recipe no_monitor both depth ...]
        [--eval-episodes 20] [--out data/fih/nav_ablation] [--set KEY=VALUE ...]

Each variant is one `scripts/learning_experiment.py` run in ``<out>/<variant>``: training,
then evaluation of the trained policy on its own path and on the expert's path, plus, for the
first variant, the random / forward-only / expert agents on the same episodes. A variant whose
policy stops on the progress monitor (``fih.stop.rule: goal_distance``, the recipe's) gets its
stop threshold chosen between the two on the first 20 TRAIN episodes
(`scripts/stop_threshold.py`; never on the evaluation episodes). A finished variant is
evaluated again without retraining (the schedule skips finished stages).

Variants (`VARIANTS`; default `DEFAULT_VARIANTS`): ``recipe``, ``no_monitor`` (STOP from the
action head's argmax) and the first round's rows (no monitor, 150 updates per iteration):
``both`` (depth and the previous action), ``depth``, ``previous_action``, ``none`` (the design's
RGB + instruction), all with ``stop_weight`` 10, and ``both_stop1`` (VLN-CE's weights alone).

The table (``<out>/navigation.md``, printed) has, per split, one row per trained variant (with
the stop threshold chosen for it) and the baseline agents of the first variant: success, oracle
success (came within the success distance at some step), SPL, nDTW, collisions per step,
distance to goal and the policy's agreement with the expert's action on its own path and
teacher-forced on the expert's path (next to what always moving forward scores on those steps).
It holds no timing (training times: ``<out>/<variant>/training.json``), so two runs of the same
code give the same table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import learning_experiment  # noqa: E402  (scripts/learning_experiment.py)
import stop_threshold  # noqa: E402  (scripts/stop_threshold.py)

from habitat_fih.trainers.checkpoint import checkpoint_index, list_checkpoints  # noqa: E402
from habitat_fih.utils import atomic_write  # noqa: E402

CONFIG = "fih/synthetic_tiny_nav"
#: the recipe's stop rule (configs/habitat/fih/synthetic_tiny_nav.yaml)
RECIPE_STOP_RULE = "goal_distance"
_STOP_RULE = "habitat_baselines.fih.stop.rule"
_INPUTS = "habitat_baselines.fih.model.overrides.action.inputs="
#: the recipe without its progress monitor: STOP when it wins the action head's argmax
_NO_MONITOR = [
    "habitat_baselines.fih.model.overrides.action.goal_distance=false",
    f"{_STOP_RULE}=action",
]
#: the first round's recipe (no monitor, 150 updates per DAgger iteration), for its input rows
_FIRST = [*_NO_MONITOR, "habitat_baselines.fih.dagger.updates_per_iteration=150"]
#: variant -> (its row label, its Hydra overrides of fih/synthetic_tiny_nav)
VARIANTS = {
    "recipe": ("the recipe: depth + previous action, progress monitor stops, 600 updates/it", []),
    "no_monitor": ("the recipe without the monitor (argmax STOP)", _NO_MONITOR),
    "both": ("first round: depth + previous action", [*_FIRST, _INPUTS + "[depth,previous_action]"]),
    "depth": ("first round: depth", [*_FIRST, _INPUTS + "[depth]"]),
    "previous_action": ("first round: previous action", [*_FIRST, _INPUTS + "[previous_action]"]),
    "none": ("first round: none (RGB + instruction)", [*_FIRST, _INPUTS + "[]"]),
    "both_stop1": (
        "first round: depth + previous action, VLN-CE weights (stop_weight 1)",
        [
            *_FIRST,
            _INPUTS + "[depth,previous_action]",
            "habitat_baselines.fih.losses.main.stop_weight=1.0",
        ],
    ),
}
#: what `python scripts/nav_ablation.py` runs without --variants
DEFAULT_VARIANTS = ["recipe", "no_monitor"]
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


def _threshold_note(folder: str) -> str:
    """`` (stop < X m, chosen on train)`` for a variant whose threshold was chosen, else ''."""
    path = Path(folder) / "stop_threshold_train.json"
    if not path.exists():
        return ""
    return f" (stop < {json.loads(path.read_text())['chosen_distance']:g} m, chosen on train)"


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
            label = VARIANTS[variant][0] + _threshold_note(folder)
            lines.append(f"| trained: {label} | " + " | ".join(cells) + " |")
        for name, tag in BASELINES:
            stats = _stats(os.path.join(out, variants[0]), tag, split)
            cells = [_fmt(stats.get(k)) for k, _ in COLUMNS] + ["-", "-"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def stops_on_the_monitor(overrides: list[str]) -> bool:
    """Whether a variant's policy stops on the predicted distance (``fih.stop.rule``, the
    recipe's unless overridden)."""
    rules = [o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith(_STOP_RULE)]
    return (rules[-1] if rules else RECIPE_STOP_RULE) == "goal_distance"


def run_variant(folder: str, overrides: list[str], agents: list[str], episodes: int) -> None:
    """Train one variant, then evaluate it (`learning_experiment.main`); a variant stopping on
    the progress monitor gets its threshold chosen on train episodes in between
    (`stop_threshold.main`: the first 20 train episodes, never the evaluation ones)."""
    common = ["--config", CONFIG, "--out", folder, "--eval-episodes", str(episodes)]
    if stops_on_the_monitor(overrides):
        learning_experiment.main([*common, "--train-only", "--set", *overrides])
        chosen = stop_threshold.main(["--out", folder, "--config", CONFIG, "--set", *overrides])
        overrides = [*overrides, f"habitat_baselines.fih.stop.distance={chosen['chosen_distance']}"]
        common.append("--skip-train")
    learning_experiment.main([*common, "--set", *overrides, "--agents", *agents])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="*", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
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
        agents = ["trained", "trained_expert_path"]
        agents += ["random", "forward", "expert"] if i == 0 and not args.skip_baselines else []
        run_variant(os.path.join(out, variant), [*VARIANTS[variant][1], *args.set], agents,
                    args.eval_episodes)  # fmt: skip
    text = table(out, args.variants)
    atomic_write(os.path.join(out, "navigation.md"), lambda tmp: Path(tmp).write_text(text))
    print(text)


if __name__ == "__main__":
    main()
