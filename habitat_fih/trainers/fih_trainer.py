"""The ``fih`` trainer (`FIHTrainer`): online DAgger collection, staged training, checkpoints.

Registered with habitat-baselines as ``fih`` (``habitat_baselines.trainer_name=fih``); settings
under ``habitat_baselines.fih`` (`habitat_fih.config.trainer_configs.FIHTrainerConfig`). This
module holds the trainer's loop; its parts live next to it, in ``habitat_fih.trainers``:

===================================  ============================================================
``learner``                          optimiser, schedule, the update step (accumulation,
                                     clipping, fp16 loss scaling, DDP wrapping)
``resume``                           `RunState` and the resume state (exact resume)
``stages``                           what a stage trains with; ``fih.schedule``'s stage configs
``collection_runs``, ``eval_runs``   one DAgger iteration's collection; evaluation runs
``config_checks``, ``settings``      checks before anything starts; what a resume must keep
``collector``, ``buffer``            environments, episodes, DAgger; the bounded replay buffer
``checkpoint``, ``distributed``      checkpoint files; launchers, process group, devices
===================================  ============================================================

Training (`FIHTrainer.train`), per rank: for each DAgger iteration i, collect
``dagger.episodes_per_iteration`` episodes on ``num_environments`` envs (expert action with
probability beta = p**i, else the policy's; beta = 1 in a stage that does not train the action
head), every step becoming a sample in the bounded replay buffer, weighted by its VLN-CE
inflection weight (`habitat_fih.models.losses.inflection_weight`); then
``dagger.updates_per_iteration`` AdamW updates (`Learner`: warm-up + cosine, clipping, gradient
accumulation, bf16 autocast on GPU through the model config, fp16 with loss scaling) on batches
drawn from the buffer. Every ``log_interval`` updates the loss terms go to TensorBoard / W&B
along with ``perf/*`` (`habitat_fih.utils.PerformanceMonitor`, means since the previous log):
seconds per collection, update and checkpoint write, on CPU also per model stage
(``perf/vggt_s``, ..., collection and update forwards alike), and the process memory (RSS; CUDA
allocated / reserved / peak). The stage (pretrain / finetune / main) sets the model's trainable
parts and the loss (pretraining's cross-frame alignment term, weight
``losses.pretrain.alignment_weight``, reads token pairs the collection makes from the
``frame_geometry`` / ``frame_heatmaps`` sensors, `habitat_fih.trainers.correspondences`);
``collection.target_kind`` (covisibility, camera_position or both) sets the heatmap target kinds
trained, one head channel each (`FIHModelConfig.target_kinds`; the camera-position terms are
weighted by ``losses.<stage>.camera_position_weight`` and logged with a ``_camera_position``
suffix); ``pretrained_checkpoint`` starts it from an earlier stage's weights, and
``fih.schedule`` runs several stages in one command, each from the previous one's last
checkpoint. Checkpoints ``ckpt.{k}.pth`` are written atomically every ``checkpoint_interval``
updates and at the end of each iteration, along with the resume state, from which a restarted
run continues exactly (with ``save_buffer: false`` the buffer is not saved: a resumed run
collects the current iteration again with its current weights and loses the earlier iterations'
samples, so it does not match an uninterrupted run). A resume state belongs to one stage: a
folder holding another stage's run is refused.

Evaluation (`FIHTrainer.eval`, `habitat_fih.trainers.eval_runs`): the policy alone on every
episode of ``fih.eval.split`` for one checkpoint or each in a folder, or a baseline agent,
writing ``stats_ckpt_{k}_{split}.json`` / ``stats_{agent}_{split}.json``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from habitat_baselines.common.base_trainer import BaseTrainer
from habitat_baselines.common.baseline_registry import baseline_registry
from omegaconf import OmegaConf
from tqdm import tqdm

from habitat_fih.models.factory import build_model
from habitat_fih.models.losses import TRAINING_STAGES, VGGT_STAGE
from habitat_fih.models.policy import FIHPolicy
from habitat_fih.models.spec import build_model_config, deep_merge, tokenizer_for
from habitat_fih.trainers import stages
from habitat_fih.trainers.baselines import BaselineAgent
from habitat_fih.trainers.buffer import ReplayBuffer
from habitat_fih.trainers.checkpoint import (
    atomic_write_json,
    list_checkpoints,
    load_checkpoint,
    load_model_weights,
    save_model_checkpoint,
)
from habitat_fih.trainers.collection_runs import CollectionRuns, derived_seed
from habitat_fih.trainers.collector import build_vector_env, env_config
from habitat_fih.trainers.config_checks import (
    check_alignment_sensors,
    check_geometry_prior_sensor,
    check_min_overlaps,
    check_offload_not_training,
    check_stop_rule,
    check_vggt_stage,
    trained_target_kinds,
)
from habitat_fih.trainers.correspondences import CorrespondenceSettings
from habitat_fih.trainers.distributed import DistInfo, init_distributed, training_device
from habitat_fih.trainers.eval_runs import AgentFactory, EvaluationRuns
from habitat_fih.trainers.evaluation import PolicyAgent
from habitat_fih.trainers.frame_history import DepthKeeping, FrameHistory, NavDepth
from habitat_fih.trainers.learner import Learner, NonFiniteLossError, warmup_cosine
from habitat_fih.trainers.resume import (
    ResumeFile,
    RunState,
    rank_resume_path,
    resume_path,
)
from habitat_fih.trainers.settings import check_trainer_values, resume_settings
from habitat_fih.utils.folder_lock import locked
from habitat_fih.utils.perf import PerformanceMonitor
from habitat_fih.utils.threads import configure_torch_threads

logger = logging.getLogger(__name__)

# Learner, NonFiniteLossError, RunState, warmup_cosine, derived_seed: importable from here as
# before the split
__all__ = [
    "FIHTrainer",
    "Learner",
    "NonFiniteLossError",
    "RunState",
    "build_model_config",
    "deep_merge",
    "derived_seed",
    "warmup_cosine",
]


@baseline_registry.register_trainer(name="fih")
class FIHTrainer(BaseTrainer):
    """habitat-baselines trainer for FIH-VLN-v0 (see the module docstring)."""

    supported_tasks = ["FIH-VLN-v0"]

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.baselines_config = config.habitat_baselines
        self.trainer_config = self.baselines_config.fih  # habitat_baselines.fih
        stage = self.trainer_config.stage
        if stage not in TRAINING_STAGES:
            raise ValueError(
                f"habitat_baselines.fih.stage must be one of {TRAINING_STAGES}, got {stage!r}"
            )
        check_trainer_values(config)  # one clear error before anything starts
        self.dist = DistInfo.from_env()
        self.model_config = build_model_config(self.trainer_config.model)
        allocation = self.model_config.device_allocation
        llm_device = None if allocation.single_device else allocation.llm
        self.device = training_device(self.trainer_config.device, self.dist, llm_device)
        configure_torch_threads(self.trainer_config.torch_threads, self.device)
        self.heatmap_size = tuple(self.model_config.heatmap.out_size)
        check_geometry_prior_sensor(config, self.model_config)
        check_min_overlaps(config)
        check_alignment_sensors(config)
        if not self.baselines_config.get("evaluate", False):  # offload: evaluation only
            check_offload_not_training(self.model_config)
        check_vggt_stage(config)
        check_stop_rule(config, self.model_config)
        self.target_kinds = trained_target_kinds(config)
        self.model_config.target_kinds = self.target_kinds
        self.resume_file = ResumeFile(
            path=rank_resume_path(self.resume_path, self.dist),  # one file per rank
            stage=stage,
            model_config=self.model_config,
            settings=resume_settings(self.trainer_config),
            save_buffer=bool(self.trainer_config.save_buffer),
            allow_changed_settings=bool(self.trainer_config.resume_with_changed_settings),
        )
        self.collection = CollectionRuns(
            config,
            self.heatmap_size,
            self.target_kinds,
            self.device,
            self.dist.rank,
            self.dist.is_main,
            self._history,
            self.stage_trains_actions(),
        )
        self.evaluation = EvaluationRuns(
            config, self.model_config, self.device, self.build_policy, self._history
        )
        self.writer: Any = None
        self.perf = PerformanceMonitor(self.device)  # phase timings, logged as perf/*

    # ------------------------------------------------------------------ set-up
    def build_policy(self, seed: int) -> FIHPolicy:
        """A freshly built policy (seeded init) on the trainer's device(s), with the run's loss
        settings."""
        torch.manual_seed(seed)
        single = self.model_config.device_allocation.single_device
        # built directly on the training device (a 7B LLM never passes through CPU memory)
        model = build_model(
            self.model_config,
            tokenizer=self._tokenizer(),
            device=self.device if single else None,
        )
        policy = FIHPolicy(model, None, stages.policy_config(self.trainer_config.losses))
        if single:
            return policy.to(self.device)
        model.place(self.device)  # components device_allocation leaves unset: the trainer's
        return policy

    def _tokenizer(self) -> Any:
        """The run's tokenizer (`habitat_fih.models.spec.tokenizer_for` of the model config)."""
        return tokenizer_for(self.model_config)

    def alignment_settings(self, policy: FIHPolicy) -> CorrespondenceSettings | None:
        """How this stage's collection makes alignment pairs on `policy`'s token grid, or None
        (`habitat_fih.trainers.stages.alignment_settings`)."""
        return stages.alignment_settings(
            self.trainer_config, self.config.habitat.task, policy.model.token_grid
        )

    def stage_trains_actions(self) -> bool:
        """Whether this stage trains the action head with a non-zero action loss."""
        return stages.stage_trains_actions(self.trainer_config, self.model_config)

    def stage_configs(self) -> list[tuple[str, Any]]:
        """(checkpoint folder, config) of every stage of ``fih.schedule``
        (`habitat_fih.trainers.stages.stage_configs`)."""
        return stages.stage_configs(self.config)

    def _seed_everything(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _history(self) -> FrameHistory:
        """A new frame history; in the ``vggt`` stage it keeps every frame's depth at VGGT's
        input size (the targets, `habitat_fih.trainers.vggt_samples`); for a model whose action
        head reads depth (``action.inputs``), the current view's depth sensor observation in
        metres at the frames' size (`NavDepth`)."""
        collection = self.trainer_config.collection
        depth = None
        if self.trainer_config.stage == VGGT_STAGE:
            task = self.config.habitat.task
            sensors = self.config.habitat.simulator.agents.main_agent.sim_sensors
            depth = DepthKeeping(
                size=int(self.model_config.image_size),
                abs_tol=float(task.get("covisibility_abs_tol", 0.05)),
                rel_tol=float(task.get("covisibility_rel_tol", 0.02)),
                max_depth=float(sensors.depth_sensor.max_depth),
                sequence=str(collection.get("vggt_sequence", "memory")),
            )
        nav_depth = None
        if "depth" in self.model_config.action.inputs:  # the action head's depth input
            sensor = self.config.habitat.simulator.agents.main_agent.sim_sensors.depth_sensor
            nav_depth = NavDepth(
                uuid=str(sensor.get("uuid", "depth")),
                size=int(collection.frame_size),
                min_depth=float(sensor.min_depth),
                max_depth=float(sensor.max_depth),
                normalized=bool(sensor.normalize_depth),
            )
        return FrameHistory(
            int(collection.frame_size), int(collection.max_frames), depth, nav_depth
        )

    @property
    def checkpoint_folder(self) -> str:
        return self.baselines_config.checkpoint_folder

    @property
    def resume_path(self) -> str:
        """The run's resume state (each rank appends ``.rank{r}`` under DDP)."""
        return resume_path(self.trainer_config.resume_state_file, self.checkpoint_folder)

    # ------------------------------------------------------------------ logging
    def _open_writer(self, state: RunState) -> Any:
        """habitat-baselines' writer: TensorBoard (``writer_type: tb``) or Weights & Biases
        (``wb``, settings under ``habitat_baselines.wb``); a resumed run continues its W&B
        run (the run id is kept in the resume state)."""
        from habitat_baselines.common import tensorboard_utils as tbu

        if self.baselines_config.writer_type != "wb":
            return tbu.get_writer(self.config, flush_secs=30)
        if tbu.wandb is None:
            raise ValueError(
                "habitat_baselines.writer_type='wb' needs the wandb package: "
                "pip install -e '.[wandb]' (or use writer_type=tb)"
            )
        writer = tbu.WeightsAndBiasesWriter(self.config, resume_run_id=state.writer_run_id)
        state.writer_run_id = writer.get_run_id()
        return writer

    def _log(self, values: dict[str, float], step: int) -> None:
        if self.writer is None:
            return
        for key, value in values.items():
            if value is not None and math.isfinite(value):
                self.writer.add_scalar(key, value, step)

    # ------------------------------------------------------------------ training
    def train(self) -> bool:
        """Train (one stage, or every stage of ``fih.schedule``); returns True when the run
        finished, False when it stopped early (``stop_after_updates``) and can be resumed."""
        lock = locked(self.checkpoint_folder) if self.dist.is_main else contextlib.nullcontext()
        with lock:  # one run per checkpoint folder; stale temporaries removed under the lock
            if len(self.trainer_config.schedule) > 0:
                return self._train_schedule()
            return self._train_stage()

    def _train_schedule(self) -> bool:
        for k, (folder, cfg) in enumerate(self.stage_configs()):
            marker = os.path.join(folder, stages.STAGE_DONE_FILE)
            stage = cfg.habitat_baselines.fih.stage
            if os.path.isfile(marker):
                logger.info("schedule stage %d (%s) already finished (%s)", k, stage, marker)
                continue
            logger.info("schedule stage %d: %s -> %s", k, stage, folder)
            if not FIHTrainer(cfg).train():
                return False
            if self.dist.is_main:
                atomic_write_json(
                    {"stage": stage, "index": k, "last_checkpoint": list_checkpoints(folder)[-1]},
                    marker,
                    indent=2,
                )
            if self.dist.is_distributed:
                dist.barrier()
        return True

    def _train_stage(self) -> bool:
        trainer_config = self.trainer_config
        init_distributed(self.dist, trainer_config.dist_backend, self.device)
        seed = int(trainer_config.seed)
        self._seed_everything(seed)
        policy = self.build_policy(seed)  # same init on every rank
        counts = policy.model.set_stage(trainer_config.stage)
        if not self.perf.cuda:  # model stages too (on CUDA each would synchronise twice)
            policy.model.stage_hook = self.perf
        start_from = trainer_config.pretrained_checkpoint
        if start_from and not os.path.isfile(self.resume_file.path):
            start = list_checkpoints(start_from)[-1]  # a file, or a folder's last
            ckpt = load_checkpoint(start)
            load_model_weights(policy.model, ckpt, self.model_config, start)
            logger.info(
                "stage %s starts from %s (stage %s)", trainer_config.stage, start, ckpt.get("stage")
            )
        dagger = trainer_config.dagger
        total_updates = int(dagger.iterations) * int(dagger.updates_per_iteration)
        learner = Learner(
            policy,
            trainer_config.optim,
            total_updates,
            trainer_config.stage,
            self.device,
            self.dist.is_distributed,
            bool(trainer_config.find_unused_parameters),
            vggt_losses=stages.vggt_loss_config(trainer_config.losses),
        )
        buffer = ReplayBuffer(int(trainer_config.collection.buffer_size))
        generators = {"batch": torch.Generator().manual_seed(derived_seed(seed, self.dist.rank, 3))}
        state = self.resume_file.load(learner, buffer, generators) or RunState()
        if state.update == 0 and not state.collected:
            self._seed_everything(derived_seed(seed, self.dist.rank, 4))
        if self.dist.is_main:
            self.writer = self._open_writer(state)
            logger.info(
                "fih trainer: stage %s, trainable %s, buffer capacity %d samples, %d updates",
                trainer_config.stage,
                counts,
                buffer.capacity,
                total_updates,
            )
        envs = build_vector_env(
            env_config(self.config, None, list(trainer_config.collection.drop_measures)),
            int(self.baselines_config.num_environments),
            seed + 100 * self.dist.rank,
            trainer_config.collection.start_method,
        )
        try:
            episode_ids = envs.call_at(0, "episode_ids")
            return self._train_loop(policy, learner, buffer, generators, state, envs, episode_ids)
        finally:
            envs.close()
            if self.writer is not None:
                self.writer.__exit__(None, None, None)  # closes TensorBoard, finishes W&B
                self.writer = None

    def _train_loop(
        self,
        policy: FIHPolicy,
        learner: Learner,
        buffer: ReplayBuffer,
        generators: dict[str, Any],
        state: RunState,
        envs: Any,
        episode_ids: list[str],
    ) -> bool:
        trainer_config = self.trainer_config
        per_iteration = int(trainer_config.dagger.updates_per_iteration)
        batch_size = int(trainer_config.optim.batch_size)
        accumulation = int(trainer_config.optim.grad_accumulation)
        log_every = max(1, int(self.baselines_config.log_interval))
        checkpoint_every = int(self.baselines_config.checkpoint_interval)
        stop_after = int(trainer_config.stop_after_updates)
        done_here = 0
        while state.iteration < int(trainer_config.dagger.iterations):
            if not state.collected:
                with self.perf.stage("collect"):
                    logs = self.collection.collect(
                        envs, policy, buffer, state.iteration, episode_ids
                    )
                state.collected = True
                state.collect_env_steps = int(logs["collect/env_steps"])
                state.env_steps += state.collect_env_steps
                self._log(logs, state.update)
                if self.dist.is_main:
                    logger.info("iteration %d collection: %s", state.iteration, logs)
            bar = tqdm(
                total=per_iteration,
                initial=state.update_in_iteration,
                desc=f"train it{state.iteration}",
                disable=not self.dist.is_main,
                leave=False,
            )
            while state.update_in_iteration < per_iteration:
                start = time.perf_counter()
                with self.perf.stage("update"):
                    batches = [
                        buffer.sample(batch_size, generators["batch"]) for _ in range(accumulation)
                    ]
                    terms = learner.update(batches)
                state.update += 1
                state.update_in_iteration += 1
                done_here += 1
                bar.update(1)
                if state.update % log_every == 0:
                    logs = {k if "/" in k else f"loss/{k}": v for k, v in terms.items()}
                    logs["train/update_seconds"] = time.perf_counter() - start
                    logs.update(self.perf.scalars())  # means since the previous log
                    self.perf.reset()
                    self._log(logs, state.update)
                last_of_iteration = state.update_in_iteration == per_iteration
                if (
                    checkpoint_every > 0
                    and state.update % checkpoint_every == 0
                    and not last_of_iteration
                ):  # (the end of the iteration writes one anyway)
                    self._checkpoint(policy, learner, buffer, state, generators)
                if 0 < stop_after <= done_here:
                    self._checkpoint(policy, learner, buffer, state, generators, model_ckpt=False)
                    logger.info("stopping after %d updates (stop_after_updates)", done_here)
                    bar.close()
                    return False
            bar.close()
            state.iteration += 1
            state.collected = False
            state.update_in_iteration = 0
            self._checkpoint(policy, learner, buffer, state, generators)
        return True

    def _checkpoint(
        self,
        policy: FIHPolicy,
        learner: Learner,
        buffer: ReplayBuffer,
        state: RunState,
        generators: dict[str, Any],
        model_ckpt: bool = True,
    ) -> None:
        """A model checkpoint (main rank; counted on every rank) and every rank's resume
        state."""
        with self.perf.stage("checkpoint"):
            if model_ckpt:
                if self.dist.is_main:
                    path = save_model_checkpoint(
                        self.checkpoint_folder,
                        state.checkpoints,
                        policy.model,
                        self.model_config,
                        {
                            "stage": self.trainer_config.stage,
                            "update": state.update,
                            "iteration": state.iteration,
                            "config": OmegaConf.to_container(self.config, resolve=True),
                        },
                        keep=int(self.trainer_config.keep_checkpoints),
                    )
                    logger.info("saved %s", path)
                state.checkpoints += 1
            self.resume_file.save(learner, buffer, state, generators)
            if self.dist.is_distributed:
                dist.barrier()

    # ------------------------------------------------------------------ evaluation
    def eval(self) -> None:
        """Evaluate ``fih.eval.agent`` on ``fih.eval.split`` (`EvaluationRuns.run`; the main
        rank only)."""
        if self.dist.is_main:
            self.evaluation.run()

    def checkpoint_agent(
        self, path: str, action_source: str = "policy"
    ) -> tuple[str, Callable[[], PolicyAgent]]:
        """(stats tag, agent factory) of one checkpoint (`EvaluationRuns.checkpoint_agent`)."""
        return self.evaluation.checkpoint_agent(path, action_source)

    def baseline_agent(self, kind: str) -> BaselineAgent:
        """The baseline agent `kind` (`EvaluationRuns.baseline_agent`)."""
        return self.evaluation.baseline_agent(kind)

    def evaluate_agents(self, split: str, agents: list[AgentFactory]) -> dict[str, dict[str, Any]]:
        """Several agents on the same episodes of `split` (`EvaluationRuns.evaluate_agents`)."""
        return self.evaluation.evaluate_agents(split, agents)
