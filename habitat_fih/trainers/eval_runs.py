"""Evaluation runs of the ``fih`` trainer (``habitat_baselines.evaluate=True``).

`EvaluationRuns.run` evaluates ``fih.eval.agent`` on every episode of ``fih.eval.split`` (the
first ``test_episode_count``, or all): the policy of one checkpoint or of each in a folder
(``eval_ckpt_path_dir``; every file is checked readable before any environment starts), or a
baseline agent, writing ``stats_ckpt_{k}_{split}.json`` / ``stats_{agent}_{split}.json`` and the
per-episode files (`habitat_fih.trainers.evaluation.write_stats`). `evaluate_agents` runs several
agents on one set of environments (same episodes, same order), one agent at a time; a
checkpoint's weights are loaded when its turn comes.

Policy stats also hold ``paired_heatmap.*``: the uniform and centre-prior maps (and, with the
``frame_geometry`` sensor, the non-learned frustum map) scored on the policy's own keyframes
(`PairedHeatmapScores`), and every agent's ``action_agreement.*``. ``eval.png_episodes`` saves
predicted vs target heatmaps of the chosen episodes as PNGs.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.policy import FIHPolicy
from habitat_fih.tasks.fih_task import PREDICTION_KEY
from habitat_fih.trainers.baselines import BaselineAgent, baseline_maps
from habitat_fih.trainers.checkpoint import (
    CorruptCheckpointError,
    checkpoint_index,
    list_checkpoints,
    load_checkpoint,
    load_model_weights,
    unreadable_checkpoints,
)
from habitat_fih.trainers.collector import (
    FrameHistory,
    StepView,
    build_vector_env,
    env_config,
    run_episodes,
)
from habitat_fih.trainers.config_checks import has_camera_sensor
from habitat_fih.trainers.evaluation import (
    FrustumBaseline,
    PairedHeatmapScores,
    PolicyAgent,
    save_heatmap_png,
    summarize,
    write_stats,
)

__all__ = ["AgentFactory", "EvaluationRuns"]

logger = logging.getLogger(__name__)

#: (stats tag, a callable building the agent when its turn comes)
AgentFactory = tuple[str, Callable[[], Any]]


@dataclass
class EvaluationRuns:
    """The trainer's evaluation (see the module docstring).

    Attributes:
        config: the experiment config (``habitat`` + ``habitat_baselines``).
        model_config: the model every checkpoint must match.
        device: where the policy runs.
        build_policy: a seed -> a freshly built policy (`FIHTrainer.build_policy`).
        history: a new frame history per episode (the collection's settings).
    """

    config: Any
    model_config: FIHModelConfig
    device: torch.device
    build_policy: Callable[[int], FIHPolicy]
    history: Callable[[], FrameHistory]

    @property
    def _trainer_config(self) -> Any:
        return self.config.habitat_baselines.fih

    @property
    def _eval_config(self) -> Any:
        return self._trainer_config.eval

    @property
    def _seed(self) -> int:
        return int(self._trainer_config.seed)

    @property
    def _heatmap_size(self) -> tuple[int, int]:
        return tuple(self.model_config.heatmap.out_size)  # type: ignore[return-value]

    def run(self) -> dict[str, dict[str, Any]]:
        """Evaluate ``fih.eval.agent`` on ``fih.eval.split``: each checkpoint at
        ``eval_ckpt_path_dir`` for the policy, else the named baseline agent."""
        eval_config = self._eval_config
        if eval_config.agent == "policy":
            paths = list_checkpoints(self.config.habitat_baselines.eval_ckpt_path_dir)
            bad = unreadable_checkpoints(paths)  # before any environment starts
            if bad:
                raise CorruptCheckpointError(
                    f"{len(bad)} of the {len(paths)} checkpoints at "
                    f"habitat_baselines.eval_ckpt_path_dir cannot be read: " + " | ".join(bad)
                )
            agents = [self.checkpoint_agent(path, eval_config.action_source) for path in paths]
        else:
            kind = str(eval_config.agent)
            agents = [(kind, lambda: self.baseline_agent(kind))]
        return self.evaluate_agents(eval_config.split, agents)

    def checkpoint_agent(self, path: str, action_source: str = "policy") -> AgentFactory:
        """(stats tag, agent factory) of one checkpoint: tag ``ckpt_{i}`` (``_expert_path``
        when it walks the expert's path, ``_sampled`` when actions are sampled); the weights
        are loaded when the factory is called, so a folder of checkpoints is evaluated one
        model at a time."""
        eval_config = self._eval_config

        def make() -> PolicyAgent:
            ckpt = load_checkpoint(path)
            policy = self.build_policy(self._seed)
            load_model_weights(policy.model, ckpt, self.model_config, path)
            policy.eval()
            return PolicyAgent(
                policy,
                self.device,
                bool(eval_config.deterministic),
                torch.Generator().manual_seed(self._seed),
                action_source,
                stop_rule=str(self._trainer_config.stop.rule),
                stop_distance=float(self._trainer_config.stop.distance),
            )

        tag = f"ckpt_{checkpoint_index(path)}"
        if action_source == "expert":
            tag += "_expert_path"
        elif not eval_config.deterministic:
            tag += "_sampled"  # sampled actions: not the argmax run's stats
        return tag, make

    def baseline_agent(self, kind: str) -> BaselineAgent:
        """The baseline agent `kind` (random, forward, uniform, center, expert)."""
        eval_config = self._eval_config
        return BaselineAgent(
            kind,
            self._seed,
            self._heatmap_size,
            eval_config.baseline_actions,
            float(eval_config.uniform_value),
            float(eval_config.center_sigma),
        )

    def evaluate_agents(self, split: str, agents: list[AgentFactory]) -> dict[str, dict[str, Any]]:
        """Run each (tag, agent factory) on the same episodes of `split` (the first
        ``test_episode_count``, or all) with one set of environments, one agent at a time;
        writes ``stats_{tag}_{split}.json`` per agent and returns {tag: means}."""
        baselines_config = self.config.habitat_baselines
        collection = self._trainer_config.collection
        envs = build_vector_env(
            env_config(self.config, split, list(collection.drop_measures)),
            int(baselines_config.num_environments),
            self._seed,
            collection.start_method,
        )
        try:
            ids = envs.call_at(0, "episode_ids")
            if int(baselines_config.test_episode_count) > 0:
                ids = ids[: int(baselines_config.test_episode_count)]
            return {tag: self.evaluate(make(), envs, ids, split, tag) for tag, make in agents}
        finally:
            envs.close()

    def png_hook(self, tag: str, split: str) -> Callable[[StepView, dict[str, Any]], None] | None:
        """on_step hook saving predicted vs target heatmaps (and, with camera poses, the
        frustum prior) of ``eval.png_episodes``; None when none is chosen."""
        chosen = {str(e) for e in self._eval_config.png_episodes}
        if not chosen:
            return None
        root = os.path.join(self._eval_config.results_dir, f"heatmaps_{tag}_{split}")
        frustum = (
            FrustumBaseline(self.model_config.prior_inverse_depths, 0.0)
            if has_camera_sensor(self.config)
            else None
        )

        def hook(view: StepView, action: dict[str, Any]) -> None:
            if view.episode_id not in chosen:
                return
            if view.step == 0:  # a rerun's episode may be shorter: no stale step images
                shutil.rmtree(os.path.join(root, view.episode_id), ignore_errors=True)
            prediction = action["action_args"].get(PREDICTION_KEY)
            if prediction is not None:
                name = f"{view.episode_id}/step_{view.step:04d}.png"
                save_heatmap_png(os.path.join(root, name), view, prediction, frustum=frustum)

        return hook

    def _paired_scores(self, agent: Any) -> PairedHeatmapScores | None:
        """The paired baseline scores of a heatmap-predicting policy agent, else None."""
        eval_config = self._eval_config
        if not (
            isinstance(agent, PolicyAgent)
            and agent.predict_heatmaps
            and eval_config.paired_baselines
        ):
            return None
        baselines: dict[str, Any] = {
            kind: baseline_maps(
                kind,
                self._heatmap_size,
                float(eval_config.uniform_value),
                float(eval_config.center_sigma),
            )
            for kind in ("uniform", "center")
        }
        # the flat map at 1: KL does not see a map's level, soft IoU does, and for targets that
        # cover most of the view the all-ones map is the IoU-best constant (a 0.5 map scores
        # f / (1 + f) on a binary target covering a fraction f, the all-ones map f)
        baselines["ones"] = baseline_maps("uniform", self._heatmap_size, 1.0, 0.0)
        if has_camera_sensor(self.config):
            baselines["frustum"] = FrustumBaseline(
                self.model_config.prior_inverse_depths, float(eval_config.frustum_floor)
            )
        if self.model_config.geometry_prior == "vggt":
            baselines["frustum_predicted"] = FrustumBaseline(
                self.model_config.prior_inverse_depths,
                float(eval_config.frustum_floor),
                cameras="prediction",
            )
        return PairedHeatmapScores(baselines)

    def evaluate(
        self, agent: Any, envs: Any, ids: list[str], split: str, tag: str
    ) -> dict[str, Any]:
        """One agent on the episodes `ids`: writes its stats files, returns the means."""
        torch.manual_seed(self._seed)
        hooks = [h for h in (self.png_hook(tag, split),) if h is not None]
        paired = self._paired_scores(agent)
        if paired is not None:
            hooks.append(paired)

        def on_step(view: StepView, action: dict[str, Any]) -> None:
            for hook in hooks:
                hook(view, action)

        with tqdm(total=len(ids), desc=f"eval {tag} {split}", leave=False) as bar:
            stats = run_episodes(
                envs,
                ids,
                agent,
                self.history,
                on_step if hooks else None,
                int(self._trainer_config.collection.max_episode_steps),
                bar,
            )
        for result in stats.episodes:
            extra: dict[str, Any] = {}
            if paired is not None:
                extra["paired_heatmap"] = paired.episode_metrics(result.episode_id)
            agreement = getattr(agent, "agreement", None)  # policy and baseline agents
            if agreement is not None:
                extra["action_agreement"] = agreement.episode_metrics(result.episode_id)
            result.metrics = {**result.metrics, **extra}
        means, rows = summarize(stats.episodes)
        path = write_stats(self._eval_config.results_dir, tag, split, means, rows)
        logger.info("eval %s on %s: %s -> %s", tag, split, means, path)
        return means
