"""Collection throughput of the fih trainer (env steps/s with 1, 2, 4 VectorEnv workers on CPU,
expert-only DAgger collection incl. frame history + sample building) and the time of one
training update (batch of 8 samples x 9 frames). Prints one markdown table.

    python benchmarks/bench_trainer.py [--envs 1 2 4] [--episodes-per-env 3] [--sensors tiny|vlnce]
    python benchmarks/bench_trainer.py --envs --model full --llm 7b --device cuda   # GPU step

Policy steps (issue 18): the median time of one `PolicyAgent.act` step over a synthetic episode
(``--history-frames`` per step; ``full`` / ``causal_cache`` VGGT history, frame caches on / off)
as a multiple of an expert-driven environment step of the 1-env collection, and collection
steps/s with the random-init tiny policy driving every step (``--policy-envs``). On a GPU:
``--model full --device cuda --envs --policy-envs --history-frames 33`` times the full-size
model's step with a 32-frame history. ``--action-inputs depth previous_action`` gives the
policy-driven collection the action head of fih/synthetic_tiny_nav (issue 16); its random-init
head may choose STOP at once (measured 2026-12-02: every episode stopped at its first step, 6
steps in all), so read the step count; add ``--monitor`` for the recipe's stop rule (STOP on
the progress monitor, whose random-init prediction of ~7 m never stops an episode before its
50-step cap). The trained policy's collection speed is in the run's TensorBoard
(``collect/steps_per_second``).

``--sensors tiny`` uses fih/synthetic_tiny's 64x64 RGB-D; ``vlnce`` the benchmark's VLN-CE
sensors (RGB 224x224, depth 256x256). ``--model full`` times the main-stage update of the
full-size random-init model (VGGT-1B and DINOv3-L frozen, LoRA on Qwen2.5-VL, fusion and heads
trained, bf16 autocast on GPU; frames of 224²): median update time, peak GPU memory, and the
forward's per-stage times (VGGT, sampling, DINOv3, fusion, LLM, heads; the backward is not
split) with the LLM's share of the whole update.
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
from habitat_fih.trainers.fih_trainer import FIHTrainer
from habitat_fih.trainers.learner import Learner


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


HISTORY_MODES = (("full", False), ("full", True), ("causal_cache", True))


def _policy(
    model: str,
    llm: str,
    device: str,
    history: str,
    cache: bool,
    frames: int = 9,
    action_inputs: tuple[str, ...] = (),
    monitor: bool = False,
):
    """A random-init policy of fih/synthetic_tiny's model (or the full one) in a VGGT history
    mode, with or without the per-environment frame caches (and the action head's extra
    inputs; with `monitor`, the progress monitor and the stop rule on it)."""
    extra = [
        f"+habitat_baselines.fih.model.overrides.vggt_history={history}",
        f"+habitat_baselines.fih.model.overrides.frame_cache={cache}",
        f"habitat_baselines.fih.collection.max_frames={frames}",
        f"+habitat_baselines.fih.model.overrides.action.inputs=[{','.join(action_inputs)}]",
    ]
    if monitor:
        extra += [
            "+habitat_baselines.fih.model.overrides.action.goal_distance=true",
            "habitat_baselines.fih.stop.rule=goal_distance",
        ]
    if model == "full":
        extra += [
            "habitat_baselines.fih.model.preset=full",
            f"habitat_baselines.fih.model.llm={llm}",
            "habitat_baselines.fih.collection.frame_size=224",
        ]
    cfg = patch_config(get_config("fih/synthetic_tiny", extra))
    trainer = FIHTrainer(cfg)
    trainer.device = torch.device(device)
    policy = trainer.build_policy(0)
    policy.eval()
    return trainer, policy


def policy_step_ms(
    model: str, llm: str, device: str, history: str, cache: bool, frames: int, steps: int
) -> float:
    """Median time of one policy step (PolicyAgent.act: observations -> action) over a
    synthetic episode of `steps` random 64x64 views whose history is kept as the collector
    keeps it (task memory of 16 frames, `frames` per sample), the first 10 steps excluded."""
    from habitat_fih.trainers.collector import StepView
    from habitat_fih.trainers.evaluation import PolicyAgent

    trainer, policy = _policy(model, llm, device, history, cache, frames)
    size = int(trainer.trainer_config.collection.frame_size)
    agent = PolicyAgent(policy, torch.device(device), predict_heatmaps=False)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    rng = np.random.default_rng(0)
    history_frames = FrameHistory(size, frames)
    memory: list[int] = []
    times = []
    for t in range(steps):
        memory = (memory + [t])[-max(16, frames) :]
        past = np.asarray(memory[:-1], dtype=np.int64)
        history_frames.update(t, rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), past)
        slots = history_frames.slots(t, past)
        poses = np.zeros((len(slots), 9), np.float32)  # straight ahead, 0.25 m per step
        poses[:, 2], poses[:, 6], poses[:, 7:] = -0.25 * np.asarray(slots), 1.0, np.pi / 2
        view = StepView(
            0,
            "synthetic",
            t,
            {},
            "walk past the sofa, turn left and stop at the door",
            1,
            np.stack([history_frames.frames[s] for s in slots]),
            np.asarray(slots, dtype=np.int64),
        )
        view.camera_poses = lambda p=poses: p  # type: ignore[method-assign]
        sync()
        start = time.perf_counter()
        agent.act([view])
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times[10:]) * 1e3


def policy_collection(
    num_envs: int,
    episodes_per_env: int,
    history: str,
    cache: bool,
    max_steps: int,
    action_inputs: tuple[str, ...] = (),
    monitor: bool = False,
) -> tuple[float, int]:
    """Collection steps/s with the random-init tiny policy driving every step (DAgger beta 0)
    on fih/synthetic_tiny's sensors, each episode capped at `max_steps`; the frame history is
    the trainer's (with the depth input when the action head reads it)."""
    from habitat_fih.trainers.evaluation import PolicyAgent

    trainer, policy = _policy(
        "tiny", "7b", "cpu", history, cache, action_inputs=action_inputs, monitor=monitor
    )
    cfg = env_config(trainer.config, "train", ["top_down_map"])
    envs = build_vector_env(cfg, num_envs, seed=0)
    stop = trainer.trainer_config.stop
    agent = PolicyAgent(
        policy,
        torch.device("cpu"),
        predict_heatmaps=False,
        stop_rule=str(stop.rule),
        stop_distance=float(stop.distance),
    )
    try:
        ids = envs.call_at(0, "episode_ids")[: num_envs * episodes_per_env]
        stats = run_episodes(
            envs,
            ids,
            DAggerDecider(0.0, np.random.default_rng(0), agent.act),
            trainer._history,
            max_episode_steps=max_steps,
        )
    finally:
        envs.close()
    return stats.steps_per_second, stats.env_steps


def update_time(
    model: str = "tiny", llm: str = "7b", device: str = "cpu", repeats: int = 10
) -> dict[str, float]:
    """Median / best time of one main-stage update of 8 samples x 9 frames, peak GPU memory
    and the median per-stage forward times."""
    from bench_model import STAGES

    from habitat_fih.utils.perf import PerformanceMonitor

    extra = ["habitat_baselines.fih.model.preset=full", f"habitat_baselines.fih.model.llm={llm}"]
    cfg = patch_config(get_config("fih/synthetic_tiny", extra if model == "full" else []))
    trainer = FIHTrainer(cfg)
    dev = torch.device(device)
    trainer.device = dev
    policy = trainer.build_policy(0)
    policy.model.set_stage("main")
    learner = Learner(policy, cfg.habitat_baselines.fih.optim, 100, "main", dev)
    size = trainer.model_config.image_size
    h, w = trainer.heatmap_size
    rng = np.random.default_rng(0)
    # cameras for a model with geometry_prior="input": turns of 15 degrees, 0.25 m apart
    yaw = np.radians(15.0) * rng.integers(-2, 3, 9).cumsum()
    poses = np.zeros((9, 9), np.float32)
    poses[:, 2] = -0.25 * np.arange(9)
    poses[:, 4], poses[:, 6] = np.sin(yaw / 2), np.cos(yaw / 2)  # XYZW about y
    poses[:, 7:] = np.pi / 2
    batch = [
        Sample(
            frames=rng.integers(0, 255, (9, size, size, 3), dtype=np.uint8),
            indices=np.arange(9, dtype=np.int64) * 3,
            targets=rng.random((9, h, w)).astype(np.float16),
            valid=np.r_[np.ones(8, bool), False],
            instruction="walk past the sofa, turn left and stop at the door",
            expert_action=1,
            poses=poses,
        )
        for _ in range(8)
    ]
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    learner.update([batch])  # warm-up (first call of each shape is slow)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    timer = PerformanceMonitor(dev)
    for i in range(repeats):
        policy.model.stage_hook = timer if i == repeats - 1 else None
        sync()
        start = time.perf_counter()
        learner.update([batch])
        sync()
        times.append(time.perf_counter() - start)
    policy.model.stage_hook = None
    out = {
        "median_s": statistics.median(times),
        "best_s": min(times),
        "peak_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan"),
    }
    stages = timer.summary()["stages"]
    for name in STAGES:
        out[f"{name}_s"] = stages[name]["median_s"] if name in stages else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--episodes-per-env", type=int, default=3)
    parser.add_argument("--sensors", choices=["tiny", "vlnce"], default="tiny")
    parser.add_argument("--model", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--llm", choices=["7b", "3b"], default="7b")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--policy-envs",
        type=int,
        nargs="*",
        default=[1, 2, 4],
        help="env counts of the policy-driven collection (tiny model; none: skipped)",
    )
    parser.add_argument("--policy-steps", type=int, default=60, help="steps of the step timing")
    parser.add_argument(
        "--history-frames",
        type=int,
        default=9,
        help="frames per policy step (history + current; 33 = the design's 32-frame history)",
    )
    parser.add_argument(
        "--action-inputs",
        nargs="*",
        default=[],
        help="the action head's extra inputs in the policy-driven collection (depth "
        "previous_action: fih/synthetic_tiny_nav's)",
    )
    parser.add_argument(
        "--monitor",
        action="store_true",
        help="the policy-driven collection stops on the progress monitor (fih/synthetic_tiny_nav's"
        " stop rule; a random-init monitor predicts ~7 m, so it never stops before the cap)",
    )
    args = parser.parse_args()
    rows = []
    expert_sps: dict[int, float] = {}
    for n in args.envs:
        sps, steps = collection(n, args.episodes_per_env, args.sensors)
        expert_sps[n] = sps
        rows.append(
            f"| collection, {n} env(s), {args.sensors} sensors | {sps:.1f} steps/s ({steps} steps) |"
        )
    for history, cache in HISTORY_MODES:
        ms = policy_step_ms(
            args.model,
            args.llm,
            args.device,
            history,
            cache,
            args.history_frames,
            args.policy_steps,
        )
        env_ms = (
            f", {ms * expert_sps[1] / 1e3:.1f}x an expert-driven env step"
            if 1 in expert_sps
            else ""
        )
        rows.append(
            f"| {args.model} policy step, {args.history_frames} frames, {history}, "
            f"cache {'on' if cache else 'off'} | {ms:.1f} ms median{env_ms} |"
        )
    for n in args.policy_envs if args.model == "tiny" else []:
        for history, cache in HISTORY_MODES:
            inputs = tuple(args.action_inputs)
            sps, steps = policy_collection(
                n, args.episodes_per_env, history, cache, 50, inputs, args.monitor
            )
            with_inputs = f", action inputs {'+'.join(inputs)}" if inputs else ""
            with_inputs += ", monitor stops" if args.monitor else ""
            rows.append(
                f"| collection, {n} env(s), policy driving{with_inputs}, {history}, cache "
                f"{'on' if cache else 'off'} | {sps:.1f} steps/s ({steps} steps) |"
            )
    u = update_time(args.model, args.llm, args.device, args.repeats)
    name = f"{args.model} model{' ' + args.llm if args.model == 'full' else ''} update"
    rows.append(
        f"| {name} on {args.device}, 8 samples x 9 frames | {u['median_s'] * 1e3:.0f} ms median, "
        f"{u['best_s'] * 1e3:.0f} ms best"
        + (f", peak {u['peak_gb']:.1f} GB |" if args.device.startswith("cuda") else " |")
    )
    stages = ", ".join(f"{k} {u[f'{k}_s'] * 1e3:.0f}" for k in STAGE_NAMES)
    rows.append(f"| forward stages (ms) | {stages} |")
    rows.append(f"| LLM forward share of the update | {u['llm_s'] / u['median_s']:.1%} |")
    print(f"| measurement ({torch.get_num_threads()} torch threads) | value |\n|---|---|")
    print("\n".join(rows))


STAGE_NAMES = ("vggt", "sampling", "dinov3", "fusion", "llm", "heads")

if __name__ == "__main__":
    main()
