"""DAgger collection of the ``fih`` trainer: one iteration's episodes into the replay buffer.

`CollectionRuns.collect` runs iteration i's ``dagger.episodes_per_iteration`` episodes (drawn
with a generator seeded by (seed, iteration, rank)) on the trainer's environments. Each step's
action is the expert's with probability beta = ``dagger.p ** i``, else the policy's
(`DAggerDecider`; beta = 1 in a stage that does not train the action head:
`habitat_fih.trainers.stages.stage_trains_actions`). Every step becomes a sample
(`StepView.sample`) weighted by its VLN-CE inflection weight
(`habitat_fih.models.losses.inflection_weight`: the stage's ``inflection_coef`` when the expert
action differs from the env's previous step's, or at an episode's first step, else 1; times
the stage's ``stop_weight`` where the expert stops,
`habitat_fih.models.losses.action_sample_weight`); in pretraining the sample is one keyframe + the current view and, with a positive alignment weight,
carries the alignment term's token pairs (`habitat_fih.trainers.stages.alignment_settings`). In
the ``vggt`` stage a step's sample is its frames with VGGT's geometry targets
(`StepView.vggt_sample`, `habitat_fih.trainers.vggt_samples`); every such sample has exactly
``collection.max_frames`` frames (so a batch needs no padding): the first steps of an episode,
whose history is shorter, give none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from habitat_fih.models.losses import VGGT_STAGE, action_sample_weight
from habitat_fih.models.policy import FIHPolicy
from habitat_fih.trainers import stages
from habitat_fih.trainers.buffer import ReplayBuffer
from habitat_fih.trainers.collector import DAggerDecider, FrameHistory, StepView, run_episodes
from habitat_fih.trainers.evaluation import PolicyAgent, summarize

__all__ = ["CollectionRuns", "derived_seed"]


def derived_seed(*parts: int) -> int:
    """A 32-bit seed from a tuple (run seed, iteration, rank, purpose): distinct tuples give
    independent streams (no ``seed * 1000 + iteration * 10 + rank`` style collisions)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


@dataclass
class CollectionRuns:
    """The trainer's DAgger collection (see the module docstring).

    Attributes:
        config: the experiment config (``habitat`` + ``habitat_baselines``).
        heatmap_size: (h, w) of the target maps.
        target_kinds: the heatmap kinds the samples carry.
        device: where the policy runs.
        rank: this process's rank (its own episodes and generators).
        show_progress: show a progress bar (the main rank).
        history: a new frame history per episode.
        trains_actions: whether the stage trains the action head (else the expert drives).
    """

    config: Any
    heatmap_size: tuple[int, int]
    target_kinds: tuple[str, ...]
    device: torch.device
    rank: int
    show_progress: bool
    history: Callable[[], FrameHistory]
    trains_actions: bool

    def collect(
        self,
        envs: Any,
        policy: FIHPolicy,
        buffer: ReplayBuffer,
        iteration: int,
        episode_ids: list[str],
    ) -> dict[str, float]:
        """One DAgger iteration's collection into `buffer`; returns its ``collect/*`` logs."""
        trainer_config = self.config.habitat_baselines.fih
        collection = trainer_config.collection
        seed = int(trainer_config.seed)
        # DAgger needs a policy that is learning to act: in a stage that does not train the
        # action head (pretrain; finetune with action_weight 0) the expert drives (beta = 1)
        beta = float(trainer_config.dagger.p) ** iteration if self.trains_actions else 1.0
        rng = np.random.default_rng([seed, iteration, self.rank, 1])
        count = int(trainer_config.dagger.episodes_per_iteration)
        chosen = rng.choice(len(episode_ids), size=count, replace=count > len(episode_ids))
        episodes = [episode_ids[int(i)] for i in chosen]
        agent = PolicyAgent(
            policy,
            self.device,
            deterministic=bool(collection.deterministic_policy),
            generator=torch.Generator().manual_seed(derived_seed(seed, iteration, self.rank, 2)),
            predict_heatmaps=False,
            stop_rule=str(trainer_config.stop.rule),
            stop_distance=float(trainer_config.stop.distance),
        )
        policy.eval()
        decider = DAggerDecider(beta, rng, agent.act if beta < 1.0 else None)
        pretrain = trainer_config.stage == "pretrain"
        geometry_stage = trainer_config.stage == VGGT_STAGE
        sequence_length = int(collection.max_frames)  # of every vggt-stage sample
        reference = policy.model.config.vggt_reference  # its frame order, as the model's
        # token pairs of the alignment term, or None
        alignment = stages.alignment_settings(
            trainer_config, self.config.habitat.task, policy.model.token_grid
        )
        coef = stages.inflection_coef(trainer_config)
        stop_w = float(stages.action_losses(trainer_config).stop_weight)
        previous_action: dict[int, int] = {}  # each env's expert action at its previous step
        added = [0]

        def on_step(view: StepView, action: dict[str, Any]) -> None:
            if geometry_stage:  # VGGT's targets, no heatmaps or actions
                if len(view.indices) < sequence_length:
                    return  # an episode's first steps: fewer frames than a sequence
                vggt_sample = view.vggt_sample(reference)
                if vggt_sample is not None:
                    buffer.add(vggt_sample)  # type: ignore[arg-type]
                    added[0] += 1
                return
            previous = previous_action.get(view.env_index) if view.step > 0 else None
            weight = action_sample_weight(previous, view.expert_action, coef, stop_w)
            previous_action[view.env_index] = view.expert_action
            sample = view.sample(
                self.heatmap_size,
                weight,
                rng if pretrain else None,
                alignment,
                kinds=self.target_kinds,
            )
            if sample is not None:
                buffer.add(sample)
                added[0] += 1

        with tqdm(
            total=len(episodes),
            desc=f"collect it{iteration} beta={beta:.2f}",
            disable=not self.show_progress,
            leave=False,
        ) as bar:
            stats = run_episodes(
                envs,
                episodes,
                decider,
                self.history,
                on_step,
                int(collection.max_episode_steps),
                bar,
            )
        means, _ = summarize(stats.episodes)
        return {
            "collect/steps_per_second": stats.steps_per_second,
            "collect/env_steps": float(stats.env_steps),
            "collect/samples_added": float(added[0]),
            "collect/buffer_size": float(len(buffer)),
            "collect/beta": beta,
            "collect/policy_step_fraction": decider.policy_steps / max(1, stats.env_steps),
            "collect/success": means.get("success") or 0.0,
            "collect/memory_coverage": means.get("memory_coverage") or 0.0,
        }
