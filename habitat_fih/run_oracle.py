"""Run habitat's ShortestPathFollower (the oracle) through an unmodified ``habitat.Env`` on the
bundled episodes with FIHSim-v0 and print the mean episode metrics.

    python -m habitat_fih.run_oracle [--config benchmark/nav/fih_vlnce_synthetic]
                                     [--split val_seen] [--episodes N] [overrides ...]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np
from habitat import Env
from habitat.tasks.nav.shortest_path_follower import ShortestPathFollower
from tqdm import tqdm

import habitat_fih  # noqa: F401  (compat + FIHSim-v0 + config search path)
from habitat_fih.config import get_config

ORACLE_GOAL_RADIUS = 0.5
SCALAR_METRICS = ("distance_to_goal", "success", "spl", "soft_spl", "collisions")


def run(config_name: str, split: str, max_episodes: int | None, overrides: list[str]) -> dict:
    cfg = get_config(config_name, [f"habitat.dataset.split={split}", *overrides])
    sums: dict[str, list[float]] = defaultdict(list)
    with Env(config=cfg) as env:
        n = len(env.episodes) if max_episodes is None else min(max_episodes, len(env.episodes))
        # 0.5 m as VLN-CE's ShortestPathSensor; success itself is judged at success_distance.
        follower = ShortestPathFollower(env.sim, ORACLE_GOAL_RADIUS, return_one_hot=False)
        for _ in tqdm(range(n), desc=f"oracle {split}"):
            env.reset()
            goal = env.current_episode.goals[0].position
            steps = 0
            while not env.episode_over:
                env.step(follower.get_next_action(goal))
                steps += 1
            metrics = env.get_metrics()
            for key in SCALAR_METRICS:
                value = metrics[key]
                if isinstance(value, dict):  # Collisions reports {"count", "is_collision"}
                    value = value["count"]
                sums[key].append(float(value))
            sums["steps_taken"].append(steps)
    return {k: float(np.mean(v)) for k, v in sums.items()} | {"episodes": n}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="benchmark/nav/fih_vlnce_synthetic")
    parser.add_argument("--split", default="val_seen")
    parser.add_argument("--episodes", type=int, default=None)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    result = run(args.config, args.split, args.episodes, args.overrides)
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
