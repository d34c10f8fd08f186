"""What does a trained policy think at each expert action? Teacher-forced on the expert's path
of the first N episodes of a split, the mean softmax of the policy's action logits and its
argmax recall per expert action (STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT), and P(STOP) at
the expert's STOP steps against the largest P(STOP) anywhere. Prints one markdown table.

    python scripts/action_probs.py --run data/fih/nav_ablation/both [--split val_seen]
        [--episodes 6] [--config fih/synthetic_tiny_nav] [--set KEY=VALUE ...]

``--run`` is a run folder of scripts/learning_experiment.py (the last checkpoint of its
``ckpt/`` is read); the model and sensors are ``--config``'s with ``--set`` (e.g. a
nav_ablation variant's ``habitat_baselines.fih.model.overrides.action.inputs=[depth]``); a
checkpoint of another architecture is refused when its weights are loaded.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import habitat_fih  # noqa: F401  (compat first)

# isort: split
from habitat.config.default import patch_config

from habitat_fih.config import get_config
from habitat_fih.models.heads import ACTION_NAMES
from habitat_fih.trainers.checkpoint import list_checkpoints, load_checkpoint, load_model_weights
from habitat_fih.trainers.collector import (
    build_vector_env,
    env_config,
    make_action,
    run_episodes,
    sort_episode_ids,
)
from habitat_fih.trainers.evaluation import PolicyAgent
from habitat_fih.trainers.fih_trainer import FIHTrainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--split", default="val_seen")
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--config", default="fih/synthetic_tiny_nav")
    parser.add_argument("--set", nargs="*", default=[], help="extra Hydra overrides")
    args = parser.parse_args()
    cfg = patch_config(get_config(args.config, list(args.set)))
    trainer = FIHTrainer(cfg)
    path = list_checkpoints(f"{args.run}/ckpt")[-1]
    payload = load_checkpoint(path)
    policy = trainer.build_policy(0)
    load_model_weights(policy.model, payload, trainer.model_config, path)
    policy.eval()
    agent = PolicyAgent(policy, torch.device("cpu"), predict_heatmaps=False)
    probs: list[np.ndarray] = []
    expert: list[int] = []

    def decide(views):  # the expert drives; record the policy's softmax
        _, output = agent.forward(views)
        probs.extend(output.action_logits.float().softmax(-1).numpy())
        expert.extend(v.expert_action for v in views)
        return [make_action(v.expert_action) for v in views]

    envs = build_vector_env(env_config(cfg, args.split, ["top_down_map"]), 2, seed=0)
    try:
        ids = sort_episode_ids(envs.call_at(0, "episode_ids"))[: args.episodes]
        max_steps = int(trainer.trainer_config.collection.max_episode_steps)
        run_episodes(envs, ids, decide, trainer._history, max_episode_steps=max_steps)
    finally:
        envs.close()
    p, a = np.stack(probs), np.asarray(expert)
    print(f"{path}, {args.split}, first {args.episodes} episodes, {len(a)} expert steps\n")
    print("| expert action | steps | mean P(" + ") | mean P(".join(ACTION_NAMES) + ") | recall |")
    print("|---" * (len(ACTION_NAMES) + 3) + "|")
    for i, name in enumerate(ACTION_NAMES):
        rows = a == i
        if rows.any():
            mean = " | ".join(f"{x:.3f}" for x in p[rows].mean(0))
            recall = float((p[rows].argmax(1) == i).mean())
            print(f"| {name} | {int(rows.sum())} | {mean} | {recall:.3f} |")
    stop = p[a == 0, 0]
    print(
        f"\nP(STOP) at the expert's STOP steps: {', '.join(f'{x:.3f}' for x in stop)}; "
        f"largest P(STOP) at any step {p[:, 0].max():.3f}; mean at the other steps "
        f"{p[a != 0, 0].mean():.3f}"
    )


if __name__ == "__main__":
    main()
