"""Can the model fit its own training data? Fit a fresh model offline on a run's saved DAgger
buffer and print the action accuracy on held-out and on training samples as it goes.

    python scripts/fit_buffer.py --run data/fih/nav_ablation/no_monitor/both
        [--config fih/synthetic_tiny_nav] [--updates 1500] [--lr 3e-3] [--batch 16]
        [--held-out 800] [--split sample|instruction] [--shuffle-instructions]
        [--set KEY=VALUE ...]

The buffer is the one the run's resume state keeps (``<run>/ckpt/.resume_state.pth``,
``fih.save_buffer``): every sample collected in the last stage, expert actions as labels. A
random ``--held-out`` of them is kept out; the rest trains a freshly initialised model (the
config's, with ``--set`` overrides) with the stage's own loss (`FIHPolicy.stage_loss`, AdamW,
gradient clip 1). Every 300 updates it prints the argmax accuracy against the expert's action
on the held-out samples and on as many training samples, next to what always moving forward
scores on the held-out ones. Training accuracy far above held-out = the model memorises;
both near the always-forward rate = it cannot read the action from its inputs.

``--split instruction`` holds out whole instructions (random ones, every sample of each, until
at least ``--held-out`` samples) instead of random samples, so held-out accuracy is on episodes
never trained on (random samples share episodes with training ones; a held-out episode's path
may still be trained on under the path's other instruction, as val_seen's scenes are). ``--shuffle-instructions`` gives every
sample the instruction of another, random sample of its own set (after the split, so the
held-out samples are the same as without it):
the control for whether the model reads the instruction at all — with it, only the frames,
depth and the previous action can tell the action.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import time

import numpy as np
import torch

import habitat_fih  # noqa: F401  (compat first)

# isort: split
from habitat.config.default import patch_config

import habitat_fih.trainers  # noqa: F401
from habitat_fih.config import get_config
from habitat_fih.trainers.buffer import collate
from habitat_fih.trainers.fih_trainer import FIHTrainer
from habitat_fih.trainers.resume import RESUME_FILE


def accuracy(policy, samples: list, batch: int = 32) -> float:
    """Argmax accuracy of `policy`'s actions against the samples' expert actions."""
    policy.eval()
    right = 0
    with torch.no_grad():
        for i in range(0, len(samples), batch):
            obs = collate(samples[i : i + batch])
            right += int((policy(obs).action_logits.argmax(-1) == obs["expert_action"]).sum())
    policy.train()
    return right / len(samples)


def split_items(items: list, held_out: int, by: str, rng: np.random.Generator) -> tuple:
    """(held-out, training) samples: `held_out` random samples (`by` ``sample``), or the
    samples of random whole instructions until at least `held_out` are held out
    (``instruction``)."""
    if by == "sample":
        order = rng.permutation(len(items))
        return [items[i] for i in order[:held_out]], [items[i] for i in order[held_out:]]
    sizes = collections.Counter(item.instruction for item in items)
    texts = sorted(sizes)
    held_texts: set[str] = set()
    count = 0
    for i in rng.permutation(len(texts)):
        if count >= held_out:
            break
        held_texts.add(texts[i])
        count += sizes[texts[i]]
    return (
        [item for item in items if item.instruction in held_texts],
        [item for item in items if item.instruction not in held_texts],
    )


def shuffled_instructions(items: list, rng: np.random.Generator) -> list:
    """`items` with their instructions permuted among them (a random other sample's each)."""
    texts = [items[i].instruction for i in rng.permutation(len(items))]
    return [dataclasses.replace(item, instruction=t) for item, t in zip(items, texts, strict=True)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a run folder (holding ckpt/)")
    parser.add_argument("--config", default="fih/synthetic_tiny_nav")
    parser.add_argument("--updates", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--held-out", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=("sample", "instruction"), default="sample")
    parser.add_argument("--shuffle-instructions", action="store_true")
    parser.add_argument("--set", nargs="*", default=[], help="extra Hydra overrides")
    args = parser.parse_args(argv)
    state = os.path.join(args.run, "ckpt", RESUME_FILE)
    if not os.path.exists(state):
        raise SystemExit(f"{state} does not exist: a run with fih.save_buffer keeps it")
    torch.set_num_threads(1)
    config = patch_config(
        get_config(args.config, ["habitat_baselines.checkpoint_folder=/tmp/fit_buffer", *args.set])
    )
    trainer = FIHTrainer(config)
    items = torch.load(state, weights_only=False)["buffer"]["items"]
    if len(items) <= args.held_out:
        raise SystemExit(f"the buffer holds {len(items)} samples, not more than --held-out")
    rng = np.random.default_rng(args.seed)
    held, train = split_items(items, args.held_out, args.split, rng)
    if args.shuffle_instructions:
        held, train = shuffled_instructions(held, rng), shuffled_instructions(train, rng)
    policy = trainer.build_policy(args.seed)
    stage = str(trainer.trainer_config.stage)
    policy.model.set_stage(stage)
    params = [p for p in policy.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    forward = float(np.mean([s.expert_action == 1 for s in held]))
    print(
        f"{len(train)} training / {len(held)} held-out samples, {sum(p.numel() for p in params)} "
        f"trainable parameters (stage {stage}); always-forward on held-out: {forward:.3f}"
    )
    start = time.time()
    for update in range(1, args.updates + 1):
        obs = collate([train[i] for i in rng.integers(0, len(train), args.batch)])
        total, terms, _ = policy.stage_loss(obs, policy(obs), stage)
        optim.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        if update % 300 == 0 or update == args.updates:
            print(
                f"update {update} ({time.time() - start:.0f} s): action loss "
                f"{float(terms['action']):.3f}, accuracy train {accuracy(policy, train[: len(held)]):.3f}"
                f" / held-out {accuracy(policy, held):.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
