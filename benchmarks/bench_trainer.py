"""Collection throughput of the fih trainer (env steps/s with 1, 2, 4 VectorEnv workers on CPU,
expert-only DAgger collection incl. frame history + sample building) and the update time of
the tiny model (batch of 8 samples x 9 frames). Prints one markdown table.

    python benchmarks/bench_trainer.py [--envs 1 2 4] [--episodes-per-env 3] [--sensors tiny|vlnce]

``--sensors tiny`` uses fih/synthetic_tiny's 64x64 RGB-D; ``vlnce`` the benchmark's VLN-CE
sensors (RGB 224x224, depth 256x256).
"""

from __future__ import annotations

import argparse
import statistics
import time

import habitat_fih  # noqa: F401

# isort: split
import numpy as np
import torch
from habitat.config.default import patch_config

import habitat_fih.trainers  # noqa: F401
from habitat_fih.config import get_config
from habitat_fih.trainers.buffer import ReplayBuffer, Sample
from habitat_fih.trainers.collector import (
    DAggerDecider,
    FrameHistory,
    build_vector_env,
    env_config,
    run_episodes,
)
from habitat_fih.trainers.fih_trainer import FIHTrainer, Learner


def collection(num_envs: int, episodes_per_env: int, sensors: str) -> tuple[float, int]:
    extra = []
    if sensors == "vlnce":
        extra = [
            "habitat.simulator.agents.main_agent.sim_sensors.rgb_sensor.width=224",
            "habitat.simulator.agents.main_agent.sim_sensors.rgb_sensor.height=224",
            "habitat.simulator.agents.main_agent.sim_sensors.depth_sensor.width=256",
            "habitat.simulator.agents.main_agent.sim_sensors.depth_sensor.height=256",
        ]
    cfg = env_config(
        patch_config(get_config("fih/synthetic_tiny", extra)), "train", ["top_down_map"]
    )
    envs = build_vector_env(cfg, num_envs, seed=0)
    buffer = ReplayBuffer(100_000)
    try:
        ids = envs.call_at(0, "episode_ids")[: num_envs * episodes_per_env]
        stats = run_episodes(
            envs,
            ids,
            DAggerDecider(1.0, np.random.default_rng(0), None),
            lambda: FrameHistory(32, 9),
            on_step=lambda view, _: buffer.add(view.sample((16, 16), 1.0, None)),
        )
    finally:
        envs.close()
    return stats.steps_per_second, stats.env_steps


def update_time(repeats: int = 10) -> tuple[float, float]:
    cfg = patch_config(get_config("fih/synthetic_tiny"))
    trainer = FIHTrainer(cfg)
    policy = trainer.build_policy(0)
    policy.model.set_stage("main")
    learner = Learner(policy, cfg.habitat_baselines.fih.optim, 100, "main", torch.device("cpu"))
    rng = np.random.default_rng(0)
    batch = [
        Sample(
            frames=rng.integers(0, 255, (9, 32, 32, 3), dtype=np.uint8),
            indices=np.arange(9, dtype=np.int64) * 3,
            targets=rng.random((9, 16, 16)).astype(np.float16),
            valid=np.r_[np.ones(8, bool), False],
            instruction="walk past the sofa, turn left and stop at the door",
            expert_action=1,
        )
        for _ in range(8)
    ]
    learner.update([batch])  # warm-up (first call of each shape is slow on CPU)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        learner.update([batch])
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--episodes-per-env", type=int, default=3)
    parser.add_argument("--sensors", choices=["tiny", "vlnce"], default="tiny")
    args = parser.parse_args()
    rows = []
    for n in args.envs:
        sps, steps = collection(n, args.episodes_per_env, args.sensors)
        rows.append(
            f"| collection, {n} env(s), {args.sensors} sensors | {sps:.1f} steps/s ({steps} steps) |"
        )
    median, best = update_time()
    rows.append(
        f"| tiny model update, 8 samples x 9 frames | {median * 1e3:.0f} ms median, {best * 1e3:.0f} ms best |"
    )
    print(f"| measurement ({torch.get_num_threads()} torch threads) | value |\n|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
