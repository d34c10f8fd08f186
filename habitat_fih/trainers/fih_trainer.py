"""The ``fih`` trainer: online DAgger collection, staged training, checkpoints, evaluation, DDP.

Registered with habitat-baselines as ``fih`` (``habitat_baselines.trainer_name=fih``); settings
under ``habitat_baselines.fih`` (`habitat_fih.config.trainer_configs.FIHTrainerConfig`).

Training (`FIHTrainer.train`), per rank: for each DAgger iteration i, collect
``dagger.episodes_per_iteration`` episodes on ``num_environments`` envs (expert action with
probability beta = p**i, else the policy's; beta = 1 in a stage that does not train the action
head), every step becoming a sample in the bounded replay
buffer; then ``dagger.updates_per_iteration`` AdamW updates (warm-up + cosine, clipping,
gradient accumulation, bf16 autocast on GPU through the model config) on batches drawn from the
buffer. Every ``log_interval`` updates the loss terms go to TensorBoard / W&B along with
``perf/*`` (`habitat_fih.utils.PerformanceMonitor`, means since the previous log): seconds per
collection, update and checkpoint write, on CPU also per model stage (``perf/vggt_s``, ...,
collection and update forwards alike), and the process memory (RSS; CUDA allocated / reserved /
peak). The stage (pretrain / finetune / main) sets the model's trainable parts and the loss
(pretraining's cross-frame alignment term, weight ``losses.pretrain.alignment_weight``, reads
token pairs the collection makes from the ``frame_geometry`` / ``frame_heatmaps`` sensors,
`habitat_fih.trainers.correspondences`); ``collection.target_kind`` (covisibility, camera_position
or both) sets the heatmap target kinds trained, one head channel each
(`FIHModelConfig.target_kinds`; the camera-position terms are weighted by
``losses.<stage>.camera_position_weight`` and logged with a ``_camera_position`` suffix);
``pretrained_checkpoint`` starts it from an earlier stage's weights, and ``fih.schedule`` runs
several stages in one command, each from the previous one's last checkpoint. Checkpoints
``ckpt.{k}.pth`` are written atomically every ``checkpoint_interval`` updates and at the end of
each iteration, along with the resume state, from which a restarted run continues exactly
(with ``save_buffer: false`` the buffer is not saved: a resumed run collects the current
iteration again with its current weights and loses the earlier iterations' samples, so it does
not match an uninterrupted run). A resume state belongs to one stage: a folder holding another
stage's run is refused.

Evaluation (`FIHTrainer.eval`): the policy alone on every episode of ``fih.eval.split`` for one
checkpoint or each in a folder (``eval_ckpt_path_dir``), or a baseline agent
(``fih.eval.agent``), writing ``stats_ckpt_{k}_{split}.json`` / ``stats_{agent}_{split}.json``;
policy stats also hold ``paired_heatmap.*``: the uniform and centre-prior maps (and the
non-learned frustum map, with the ``frame_geometry`` sensor) scored on the policy's own
keyframes. `FIHTrainer.evaluate_agents` runs several agents on one set of
environments (same episodes, same order).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from habitat.config import read_write
from habitat_baselines.common.base_trainer import BaseTrainer
from habitat_baselines.common.baseline_registry import baseline_registry
from omegaconf import OmegaConf
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from habitat_fih.config.trainer_configs import FIHTrainerConfig
from habitat_fih.models.factory import build_model
from habitat_fih.models.losses import STAGES, compute_stage_loss, kind_suffix
from habitat_fih.models.policy import FIHPolicy, FIHPolicyConfig
from habitat_fih.models.spec import build_model_config, deep_merge, tokenizer_for
from habitat_fih.tasks.fih_task import PREDICTION_KEY
from habitat_fih.trainers.baselines import BaselineAgent, baseline_maps
from habitat_fih.trainers.buffer import ReplayBuffer, Sample, collate
from habitat_fih.trainers.checkpoint import (
    CorruptCheckpointError,
    IncompatibleCheckpointError,
    atomic_save,
    atomic_write_json,
    checkpoint_index,
    list_checkpoints,
    load_checkpoint,
    load_model_weights,
    model_state,
    rng_state,
    set_rng_state,
    unreadable_checkpoints,
)
from habitat_fih.trainers.collector import (
    GEOMETRY_UUID,
    DAggerDecider,
    FrameHistory,
    StepView,
    build_vector_env,
    env_config,
    run_episodes,
)
from habitat_fih.trainers.correspondences import CorrespondenceSettings
from habitat_fih.trainers.distributed import DistInfo, cuda_device, init_distributed
from habitat_fih.trainers.evaluation import (
    FrustumBaseline,
    PairedHeatmapScores,
    PolicyAgent,
    save_heatmap_png,
    summarize,
    write_stats,
)
from habitat_fih.trainers.settings import (
    TARGET_KIND_CHOICES,
    check_resume_settings,
    check_trainer_values,
    resume_settings,
)
from habitat_fih.utils.folder_lock import locked
from habitat_fih.utils.perf import PerformanceMonitor

logger = logging.getLogger(__name__)

__all__ = ["FIHTrainer", "Learner", "NonFiniteLossError", "build_model_config", "deep_merge"]

RESUME_FILE = ".resume_state.pth"
STAGE_DONE_FILE = "stage_done.json"


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN / inf; the message names the update and every loss term."""


def _policy_config(losses: Any) -> FIHPolicyConfig:
    """Policy config with the trainer's loss overrides (``habitat_baselines.fih.losses``; unnamed
    weights keep the `LossConfig` defaults, pretraining's cross-frame alignment included)."""
    if losses is not None and not isinstance(losses, dict):  # a DictConfig from Hydra
        losses = OmegaConf.to_container(losses, resolve=True)
    return FIHPolicyConfig(losses=dict(losses or {}))  # type: ignore[arg-type]


ALIGNMENT_SETTING = "habitat_baselines.fih.losses.pretrain.alignment_weight"


def derived_seed(*parts: int) -> int:
    """A 32-bit seed from a tuple (run seed, iteration, rank, purpose): distinct tuples give
    independent streams (no ``seed * 1000 + iteration * 10 + rank`` style collisions)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _finite_on_all_ranks(value: torch.Tensor) -> bool:
    """Whether a scalar is finite on every rank (all ranks then take the same branch)."""
    finite = torch.isfinite(value.detach()).float()
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite.item() == 1)


def warmup_cosine(warmup: int, total: int, min_ratio: float):
    """lr multiplier: linear warm-up over `warmup` updates, then cosine to `min_ratio`."""

    def fn(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return fn


@torch.no_grad()
def batch_heatmap_quality(
    logits: torch.Tensor, targets: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Soft IoU and KL(target || prediction) of the batch's valid maps (the task measure's
    definitions, on the training targets) for logging."""
    return _batch_quality(logits, targets["heatmaps"], targets["valid"], "")


@torch.no_grad()
def batch_kind_quality(output: Any, targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`batch_heatmap_quality` of every kind the model predicts (keys with the kind's suffix,
    e.g. ``quality/heatmap_iou_camera_position``)."""
    out: dict[str, torch.Tensor] = {}
    for kind, logits in output.logits_by_kind().items():
        sfx = kind_suffix(kind)
        out.update(_batch_quality(logits, targets[f"heatmaps{sfx}"], targets[f"valid{sfx}"], sfx))
    return out


def _batch_quality(
    logits: torch.Tensor, maps: torch.Tensor, valid: torch.Tensor, suffix: str
) -> dict[str, torch.Tensor]:
    valid = valid.bool()
    if not bool(valid.any()):
        return {}
    p = torch.sigmoid(logits.float())[valid]  # [N, h, w]
    t = maps.float()[valid]
    iou = torch.minimum(p, t).sum((-2, -1)) / torch.maximum(p, t).sum((-2, -1)).clamp_min(1e-8)
    td = t.flatten(1)
    mass = td.sum(1)
    keep = mass > 0
    td = td[keep] / mass[keep, None]
    pd = p.flatten(1)[keep] + 1e-8
    pd = pd / pd.sum(1, keepdim=True)
    kl = (td * (td.clamp_min(1e-12).log() - pd.log())).sum(1)
    return {f"quality/heatmap_iou{suffix}": iou.mean(), f"quality/heatmap_kl{suffix}": kl.mean()}


class Learner:
    """Optimiser, schedule and the update step of one rank (DDP-wrapped when distributed)."""

    def __init__(
        self,
        policy: FIHPolicy,
        optim: Any,
        total_updates: int,
        stage: str,
        device: torch.device,
        distributed: bool = False,
        find_unused_parameters: bool = True,
    ) -> None:
        self.policy = policy
        self.stage = stage
        self.device = device
        self.grad_clip = float(optim.grad_clip)
        self.accumulation = int(optim.grad_accumulation)
        if self.accumulation < 1:
            raise ValueError(f"grad_accumulation must be >= 1, got {self.accumulation}")
        self.params = [p for p in policy.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError(f"stage {stage!r} leaves no trainable parameter")
        self.optimizer = torch.optim.AdamW(
            self.params,
            lr=float(optim.lr),
            betas=(float(optim.beta1), float(optim.beta2)),
            weight_decay=float(optim.weight_decay),
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            warmup_cosine(int(optim.warmup_updates), total_updates, float(optim.min_lr_ratio)),
        )
        self.model: torch.nn.Module = policy.model
        if distributed:
            self.model = DistributedDataParallel(
                policy.model,
                device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=find_unused_parameters,
            )
        self.updates = 0

    def loss(self, samples: list[Sample]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        obs = collate(samples)
        obs = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in obs.items()}
        output = self.model(*self.policy.model_inputs(obs))
        # targets with the per-sample inflection weights; in pretraining + alignment pairs
        preds, targets = self.policy.loss_inputs(obs, output, self.stage)
        if self.stage == "pretrain":
            preds.pop("action_logits")
        total, terms = compute_stage_loss(
            self.stage, preds, targets, self.policy.policy_config.losses
        )
        terms.update(batch_kind_quality(output, targets))
        return total, terms

    def update(self, batches: list[list[Sample]]) -> dict[str, float]:
        """One optimiser update over `batches` (gradient accumulation)."""
        if len(batches) != self.accumulation:
            raise ValueError(f"expected {self.accumulation} micro-batches, got {len(batches)}")
        self.model.train()
        sums: dict[str, float] = {}
        for i, batch in enumerate(batches):
            sync = i == len(batches) - 1 or not isinstance(self.model, DistributedDataParallel)
            ctx = contextlib.nullcontext() if sync else self.model.no_sync()  # type: ignore[operator]
            with ctx:
                total, terms = self.loss(batch)
                if not _finite_on_all_ranks(total):
                    detail = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
                    raise NonFiniteLossError(
                        f"non-finite loss at update {self.updates + 1} (stage {self.stage!r}, "
                        f"micro-batch {i}): {detail}; the last good checkpoint is kept"
                    )
                (total / self.accumulation).backward()
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + float(value) / self.accumulation
        sums["train/lr"] = self.scheduler.get_last_lr()[0]  # the rate this update uses
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        if not _finite_on_all_ranks(grad_norm):  # a finite loss can still give inf / nan grads
            self.optimizer.zero_grad(set_to_none=True)
            detail = ", ".join(f"{k}={v:.4g}" for k, v in sums.items())
            raise NonFiniteLossError(
                f"non-finite gradient norm {float(grad_norm)} at update {self.updates + 1} "
                f"(stage {self.stage!r}; loss terms {detail}); the weights were not changed and "
                "the last good checkpoint is kept"
            )
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.updates += 1
        sums["grad_norm"] = float(grad_norm)
        return sums


@dataclass
class RunState:
    """Counters of a training run (saved in the resume state)."""

    iteration: int = 0
    collected: bool = False
    update: int = 0
    update_in_iteration: int = 0
    checkpoints: int = 0
    env_steps: int = 0
    collect_env_steps: int = 0  # env steps of the current iteration's collection
    writer_run_id: str | None = None  # the W&B run a resumed run continues


@baseline_registry.register_trainer(name="fih")
class FIHTrainer(BaseTrainer):
    """habitat-baselines trainer for FIH-VLN-v0 (see the module docstring)."""

    supported_tasks = ["FIH-VLN-v0"]

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.hb = config.habitat_baselines
        self.fcfg = self.hb.fih
        if self.fcfg.stage not in STAGES:
            raise ValueError(
                f"habitat_baselines.fih.stage must be one of {STAGES}, got {self.fcfg.stage!r}"
            )
        check_trainer_values(config)  # one clear error before anything starts
        self.dist = DistInfo.from_env()
        self.device = self._device()
        self.model_config = build_model_config(self.fcfg.model)
        self.heatmap_size = tuple(self.model_config.heatmap.out_size)
        if self.model_config.geometry_prior == "input" and not self._has_camera_sensor():
            raise ValueError(
                "habitat_baselines.fih.model.overrides.geometry_prior='input' needs the "
                f"{GEOMETRY_UUID!r} lab sensor (camera poses) in habitat.task.lab_sensors, which "
                f"has {sorted(self._lab_sensors())}"
            )
        self._check_min_overlaps()
        self._check_alignment_sensors()
        self.target_kinds = self._target_kinds()
        self.model_config.target_kinds = self.target_kinds
        self.writer: Any = None
        self.perf = PerformanceMonitor(self.device)  # phase timings, logged as perf/*

    # ------------------------------------------------------------------ set-up
    def _target_kinds(self) -> tuple[str, ...]:
        """The heatmap target kinds trained (``fih.collection.target_kind``): one clear error
        when the ``frame_heatmaps`` sensor does not emit them, or when the model overrides set
        other ``target_kinds``."""
        choice = str(self.fcfg.collection.get("target_kind", "covisibility"))
        kinds = TARGET_KIND_CHOICES[choice]  # (the value was checked by check_trainer_values)
        setting = "habitat_baselines.fih.collection.target_kind"
        sensor_setting = "habitat.task.lab_sensors.frame_heatmaps.target_kinds"
        heat = self._lab_sensors().get("frame_heatmaps")
        emitted = [] if heat is None else list(heat.get("target_kinds", []))
        missing = [k for k in kinds if k not in emitted]
        if missing:
            raise ValueError(
                f"{setting}={choice} trains the {list(kinds)} targets but {sensor_setting} is "
                f"{emitted if heat is not None else '(no frame_heatmaps sensor)'}: add "
                f"{missing} to {sensor_setting} or change {setting}"
            )
        overrides = self.fcfg.model.get("overrides") or {}
        if "target_kinds" in overrides and tuple(overrides["target_kinds"]) != kinds:
            raise ValueError(
                "habitat_baselines.fih.model.overrides.target_kinds="
                f"{list(overrides['target_kinds'])} contradicts {setting}={choice} "
                f"({list(kinds)}); set only {setting}"
            )
        return kinds

    def _check_min_overlaps(self) -> None:
        """The measure and the paired scores (the sensor's validity flags) must score the same
        (step, frame) pairs."""
        sensor = self._lab_sensors().get("frame_heatmaps")
        measure = self.config.habitat.task.get("measurements", {}).get("frame_heatmap_quality")
        if sensor is None or measure is None:
            return
        a, b = float(sensor.min_overlap), float(measure.min_overlap)
        if a != b:
            raise ValueError(
                f"habitat.task.lab_sensors.frame_heatmaps.min_overlap={a} differs from "
                f"habitat.task.measurements.frame_heatmap_quality.min_overlap={b}: set both to "
                "one value so frame_heatmap_quality and paired_heatmap score the same pairs"
            )

    def _alignment_weights(self) -> list[float]:
        """Pretraining alignment weights of this run's pretrain stages (itself, or the
        entries of ``fih.schedule``; `_policy_config` defaults for unnamed weights)."""
        base = OmegaConf.to_container(self.fcfg.losses, resolve=True) or {}
        entries = [
            OmegaConf.to_container(e, resolve=True) if not isinstance(e, dict) else dict(e)
            for e in self.fcfg.schedule
        ] or [{"stage": self.fcfg.stage}]
        weights = []
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("stage") != "pretrain":
                continue  # (a malformed entry is named by stage_configs)
            losses = deep_merge(dict(base), dict(entry.get("losses") or {}))  # type: ignore[arg-type]
            weights.append(_policy_config(losses).losses.pretrain.alignment_weight)
        return weights

    def _check_alignment_sensors(self) -> None:
        """Pretraining with a positive alignment weight makes its token pairs from the
        ``frame_geometry`` sensor and the ``frame_heatmaps`` covisibility: one clear error,
        naming the setting, before anything starts when either is missing."""
        weights = [w for w in self._alignment_weights() if w > 0]
        if not weights:
            return
        sensors = self._lab_sensors()
        heat = sensors.get("frame_heatmaps")
        missing = []
        if GEOMETRY_UUID not in sensors:
            missing.append(f"the {GEOMETRY_UUID!r} lab sensor (cameras, current depth)")
        if heat is None or "covisibility" not in list(heat.get("target_kinds", [])):
            missing.append("the 'frame_heatmaps' lab sensor with covisibility in target_kinds")
        if missing:
            raise ValueError(
                f"{ALIGNMENT_SETTING}={weights[0]} (the pretraining cross-frame alignment) needs "
                + " and ".join(missing)
                + f" in habitat.task.lab_sensors, which has {sorted(sensors)}; add them or set "
                f"{ALIGNMENT_SETTING}=0"
            )

    def alignment_settings(self, policy: FIHPolicy) -> CorrespondenceSettings | None:
        """How this stage's collection makes alignment pairs (on `policy`'s token grid), or
        None when it needs none (not pretraining, or an alignment weight of 0)."""
        if self.fcfg.stage != "pretrain":
            return None
        pretrain = _policy_config(self.fcfg.losses).losses.pretrain
        if not pretrain.alignment_weight > 0:
            return None
        task = self.config.habitat.task
        return CorrespondenceSettings(
            grid=policy.model.token_grid,
            num_pairs=int(pretrain.alignment_pairs),
            seed=int(self.fcfg.seed),
            abs_tol=float(task.get("covisibility_abs_tol", 0.05)),
            rel_tol=float(task.get("covisibility_rel_tol", 0.02)),
        )

    def _lab_sensors(self) -> Any:
        return self.config.habitat.task.get("lab_sensors", {}) or {}

    def _has_camera_sensor(self) -> bool:
        """Whether the task has the frame_geometry sensor (camera poses of every frame)."""
        return GEOMETRY_UUID in self._lab_sensors()

    def _device(self) -> torch.device:
        choice = self.fcfg.device
        if choice == "auto":
            choice = "cuda" if torch.cuda.is_available() else "cpu"
        if choice == "cuda":
            return cuda_device(self.dist)
        return torch.device(choice)

    def _tokenizer(self) -> Any:
        return tokenizer_for(self.model_config)

    def build_policy(self, seed: int) -> FIHPolicy:
        torch.manual_seed(seed)
        single = self.model_config.device_allocation.single_device
        # built directly on the training device (a 7B LLM never passes through CPU memory)
        model = build_model(
            self.model_config, tokenizer=self._tokenizer(), device=self.device if single else None
        )
        policy = FIHPolicy(model, None, _policy_config(self.fcfg.losses))
        return policy.to(self.device) if single else policy

    def _seed_everything(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _history(self) -> FrameHistory:
        col = self.fcfg.collection
        return FrameHistory(int(col.frame_size), int(col.max_frames))

    def _env_config(self, split: str | None) -> Any:
        return env_config(self.config, split, list(self.fcfg.collection.drop_measures))

    @property
    def checkpoint_folder(self) -> str:
        return self.hb.checkpoint_folder

    @property
    def resume_path(self) -> str:
        return self.fcfg.resume_state_file or os.path.join(self.checkpoint_folder, RESUME_FILE)

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, policy: FIHPolicy, state: RunState) -> str:
        path = os.path.join(self.checkpoint_folder, f"ckpt.{state.checkpoints}.pth")
        atomic_save(
            {
                "model": model_state(policy.model, self.model_config),
                "model_config": self.model_config.to_dict(),
                "stage": self.fcfg.stage,
                "update": state.update,
                "iteration": state.iteration,
                "config": OmegaConf.to_container(self.config, resolve=True),
            },
            path,
        )
        state.checkpoints += 1
        keep = int(self.fcfg.keep_checkpoints)
        if keep > 0:
            for old in list_checkpoints(self.checkpoint_folder)[:-keep]:
                os.remove(old)
        return path

    def _rank_resume_path(self) -> str:
        path = self.resume_path
        return f"{path}.rank{self.dist.rank}" if self.dist.is_distributed else path

    def _save_resume(
        self, learner: Learner, buffer: ReplayBuffer, state: RunState, gens: dict[str, Any]
    ) -> None:
        path = self._rank_resume_path()  # one resume file per rank
        payload = {
            "model": model_state(learner.policy.model, self.model_config),
            "model_config": self.model_config.to_dict(),  # resume checks it matches
            "optimizer": learner.optimizer.state_dict(),
            "scheduler": learner.scheduler.state_dict(),
            "learner_updates": learner.updates,
            "stage": self.fcfg.stage,
            "state": state.__dict__.copy(),
            "rng": rng_state(),
            "generators": {k: g.get_state() for k, g in gens.items()},
            "buffer": buffer.state_dict() if self.fcfg.save_buffer else None,
            "settings": resume_settings(self.fcfg),  # a resume must keep them
        }
        atomic_save(payload, path)

    def _load_resume(
        self, learner: Learner, buffer: ReplayBuffer, gens: dict[str, Any]
    ) -> RunState | None:
        path = self._rank_resume_path()
        if not os.path.isfile(path):
            return None
        payload = load_checkpoint(path, needs=())
        saved_stage = payload.get("stage", self.fcfg.stage)
        if saved_stage != self.fcfg.stage:
            raise IncompatibleCheckpointError(
                f"{path}: resume state of stage {saved_stage!r}, but this run trains stage "
                f"{self.fcfg.stage!r}: set another habitat_baselines.checkpoint_folder (start it "
                "from that stage with habitat_baselines.fih.pretrained_checkpoint) or delete "
                "that folder to start afresh"
            )
        absent = [k for k in ("model", "optimizer", "state", "rng") if k not in payload]
        if absent:
            raise CorruptCheckpointError(f"{path}: not a resume state (no {absent} entry)")
        check_resume_settings(
            payload.get("settings"),
            resume_settings(self.fcfg),
            path,
            bool(self.fcfg.resume_with_changed_settings),
        )
        try:
            load_model_weights(learner.policy.model, payload, self.model_config, path)
        except IncompatibleCheckpointError as err:
            raise IncompatibleCheckpointError(
                f"{err}. This run resumes from {os.path.dirname(path)!r}, which holds a run of "
                "a different model: set another habitat_baselines.checkpoint_folder or delete "
                "that folder to start afresh"
            ) from None
        learner.optimizer.load_state_dict(payload["optimizer"])
        learner.scheduler.load_state_dict(payload["scheduler"])
        learner.updates = payload["learner_updates"]
        state = RunState(**payload["state"])
        set_rng_state(payload["rng"])
        for key, gen in gens.items():
            gen.set_state(payload["generators"][key])
        if payload["buffer"] is not None:
            buffer.load_state_dict(payload["buffer"])
        elif state.collected:
            # no saved buffer: collect this iteration again (its steps are counted again then)
            state.collected = False
            state.env_steps -= state.collect_env_steps
            state.collect_env_steps = 0
            logger.warning(
                "resume without a saved replay buffer (save_buffer: false): iteration %d is "
                "collected again and earlier iterations' samples are lost",
                state.iteration,
            )
        logger.info(
            "resumed from %s at iteration %d, update %d", path, state.iteration, state.update
        )
        return state

    # ------------------------------------------------------------------ logging
    def _open_writer(self, state: RunState) -> Any:
        """habitat-baselines' writer: TensorBoard (``writer_type: tb``) or Weights & Biases
        (``wb``, settings under ``habitat_baselines.wb``); a resumed run continues its W&B
        run (the run id is kept in the resume state)."""
        from habitat_baselines.common import tensorboard_utils as tbu

        if self.hb.writer_type != "wb":
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
    def _collect(
        self,
        envs: Any,
        policy: FIHPolicy,
        buffer: ReplayBuffer,
        iteration: int,
        episode_ids: list[str],
    ) -> dict[str, float]:
        fc = self.fcfg
        seed = int(fc.seed)
        # DAgger needs a policy that is learning to act: in a stage that does not train the
        # action head (pretrain; finetune with action_weight 0) the expert drives (beta = 1)
        beta = float(fc.dagger.p) ** iteration if self.stage_trains_actions() else 1.0
        rng = np.random.default_rng([seed, iteration, self.dist.rank, 1])
        count = int(fc.dagger.episodes_per_iteration)
        chosen = rng.choice(len(episode_ids), size=count, replace=count > len(episode_ids))
        episodes = [episode_ids[int(i)] for i in chosen]
        agent = PolicyAgent(
            policy,
            self.device,
            deterministic=bool(fc.collection.deterministic_policy),
            generator=torch.Generator().manual_seed(
                derived_seed(seed, iteration, self.dist.rank, 2)
            ),
            predict_heatmaps=False,
        )
        policy.eval()
        decider = DAggerDecider(beta, rng, agent.act if beta < 1.0 else None)
        pretrain = fc.stage == "pretrain"
        alignment = self.alignment_settings(policy)  # token pairs of the alignment term, or None
        coef = float(self.policy_losses_coef())
        previous: dict[int, int] = {}
        added = [0]

        def on_step(view: StepView, action: dict[str, Any]) -> None:
            prev = previous.get(view.env_index) if view.step > 0 else None
            weight = coef if prev is None or prev != view.expert_action else 1.0
            previous[view.env_index] = view.expert_action
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
            disable=not self.dist.is_main,
            leave=False,
        ) as bar:
            stats = run_episodes(
                envs,
                episodes,
                decider,
                self._history,
                on_step,
                int(fc.collection.max_episode_steps),
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

    def _action_losses(self) -> Any:
        """The loss config holding this stage's action term (finetune's for pretrain, which
        has none)."""
        losses = _policy_config(self.fcfg.losses).losses
        return losses.main if self.fcfg.stage == "main" else losses.finetune

    def stage_trains_actions(self) -> bool:
        """Whether this stage trains the action head with a non-zero action loss."""
        stage = self.fcfg.stage
        if stage == "pretrain" or not self.model_config.stages[stage].train_action_head:
            return False
        return self._action_losses().action_weight > 0

    def policy_losses_coef(self) -> float:
        return self._action_losses().inflection_coef

    def train(self) -> bool:
        """Train (one stage, or every stage of ``fih.schedule``); returns True when the run
        finished, False when it stopped early (``stop_after_updates``) and can be resumed."""
        lock = locked(self.checkpoint_folder) if self.dist.is_main else contextlib.nullcontext()
        with lock:  # one run per checkpoint folder; stale temporaries removed under the lock
            if len(self.fcfg.schedule) > 0:
                return self._train_schedule()
            return self._train_stage()

    def stage_configs(self) -> list[tuple[str, Any]]:
        """(checkpoint folder, config) of every stage of ``fih.schedule`` (see its docstring);
        stage k > 0 gets ``pretrained_checkpoint = <stage k-1 folder>`` (resolved to its last
        checkpoint when it starts)."""
        schedule = [
            OmegaConf.to_container(e, resolve=True) if not isinstance(e, dict) else dict(e)
            for e in self.fcfg.schedule
        ]
        out: list[tuple[str, Any]] = []
        previous = str(self.fcfg.pretrained_checkpoint or "")
        tb = str(self.hb.tensorboard_dir)
        for k, entry in enumerate(schedule):
            if not isinstance(entry, dict) or entry.get("stage") not in STAGES:
                raise ValueError(
                    f"habitat_baselines.fih.schedule[{k}] must be a mapping with stage in "
                    f"{STAGES}, got {entry!r}"
                )
            for key in ("schedule", "pretrained_checkpoint"):
                if key in entry:
                    raise ValueError(f"habitat_baselines.fih.schedule[{k}] may not set {key!r}")
            last = k == len(schedule) - 1
            name = f"stage{k}_{entry['stage']}"
            folder = self.checkpoint_folder if last else os.path.join(self.checkpoint_folder, name)
            try:  # typed merge: an unknown key or a wrong type is an error naming it
                fih = OmegaConf.merge(
                    OmegaConf.structured(FIHTrainerConfig),
                    OmegaConf.to_container(self.fcfg, resolve=True),
                    entry,
                )
            except Exception as exc:
                raise ValueError(f"habitat_baselines.fih.schedule[{k}]: {exc}") from exc
            fih.schedule = []
            fih.pretrained_checkpoint = previous
            if fih.resume_state_file:
                fih.resume_state_file = f"{fih.resume_state_file}.{name}"
            cfg = OmegaConf.create(OmegaConf.to_container(self.config, resolve=True))
            with read_write(cfg):
                cfg.habitat_baselines.fih = fih
                cfg.habitat_baselines.checkpoint_folder = folder
                cfg.habitat_baselines.tensorboard_dir = os.path.join(tb, name)
            out.append((folder, cfg))
            previous = folder
        return out

    def _train_schedule(self) -> bool:
        for k, (folder, cfg) in enumerate(self.stage_configs()):
            marker = os.path.join(folder, STAGE_DONE_FILE)
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
        fc = self.fcfg
        init_distributed(self.dist, fc.dist_backend, self.device)
        seed = int(fc.seed)
        self._seed_everything(seed)
        policy = self.build_policy(seed)  # same init on every rank
        counts = policy.model.set_stage(fc.stage)
        if not self.perf.cuda:  # model stages too (on CUDA each would synchronise twice)
            policy.model.stage_hook = self.perf
        if fc.pretrained_checkpoint and not os.path.isfile(self._rank_resume_path()):
            start = list_checkpoints(fc.pretrained_checkpoint)[-1]  # a file, or a folder's last
            ckpt = load_checkpoint(start)
            load_model_weights(policy.model, ckpt, self.model_config, start)
            logger.info("stage %s starts from %s (stage %s)", fc.stage, start, ckpt.get("stage"))
        total_updates = int(fc.dagger.iterations) * int(fc.dagger.updates_per_iteration)
        learner = Learner(
            policy,
            fc.optim,
            total_updates,
            fc.stage,
            self.device,
            self.dist.is_distributed,
            bool(fc.find_unused_parameters),
        )
        buffer = ReplayBuffer(int(fc.collection.buffer_size))
        gens = {"batch": torch.Generator().manual_seed(derived_seed(seed, self.dist.rank, 3))}
        state = self._load_resume(learner, buffer, gens) or RunState()
        if state.update == 0 and not state.collected:
            self._seed_everything(derived_seed(seed, self.dist.rank, 4))
        if self.dist.is_main:
            self.writer = self._open_writer(state)
            logger.info(
                "fih trainer: stage %s, trainable %s, buffer capacity %d samples, %d updates",
                fc.stage,
                counts,
                buffer.capacity,
                total_updates,
            )
        envs = build_vector_env(
            self._env_config(None),
            int(self.hb.num_environments),
            seed + 100 * self.dist.rank,
            fc.collection.start_method,
        )
        try:
            episode_ids = envs.call_at(0, "episode_ids")
            return self._train_loop(
                policy, learner, buffer, gens, state, envs, episode_ids, total_updates
            )
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
        gens: dict[str, Any],
        state: RunState,
        envs: Any,
        episode_ids: list[str],
        total_updates: int,
    ) -> bool:
        fc, hb = self.fcfg, self.hb
        per_iter = int(fc.dagger.updates_per_iteration)
        bs, accum = int(fc.optim.batch_size), int(fc.optim.grad_accumulation)
        log_every = max(1, int(hb.log_interval))
        ckpt_every = int(hb.checkpoint_interval)
        stop_after = int(fc.stop_after_updates)
        done_here = 0
        while state.iteration < int(fc.dagger.iterations):
            if not state.collected:
                with self.perf.stage("collect"):
                    logs = self._collect(envs, policy, buffer, state.iteration, episode_ids)
                state.collected = True
                state.collect_env_steps = int(logs["collect/env_steps"])
                state.env_steps += state.collect_env_steps
                self._log(logs, state.update)
                if self.dist.is_main:
                    logger.info("iteration %d collection: %s", state.iteration, logs)
            bar = tqdm(
                total=per_iter,
                initial=state.update_in_iteration,
                desc=f"train it{state.iteration}",
                disable=not self.dist.is_main,
                leave=False,
            )
            while state.update_in_iteration < per_iter:
                start = time.perf_counter()
                with self.perf.stage("update"):
                    batches = [buffer.sample(bs, gens["batch"]) for _ in range(accum)]
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
                last_of_iteration = state.update_in_iteration == per_iter
                if ckpt_every > 0 and state.update % ckpt_every == 0 and not last_of_iteration:
                    # (the end of the iteration writes one anyway)
                    self._checkpoint(policy, learner, buffer, state, gens)
                if 0 < stop_after <= done_here:
                    self._checkpoint(policy, learner, buffer, state, gens, model_ckpt=False)
                    logger.info("stopping after %d updates (stop_after_updates)", done_here)
                    bar.close()
                    return False
            bar.close()
            state.iteration += 1
            state.collected = False
            state.update_in_iteration = 0
            self._checkpoint(policy, learner, buffer, state, gens)
        return True

    def _checkpoint(
        self,
        policy: FIHPolicy,
        learner: Learner,
        buffer: ReplayBuffer,
        state: RunState,
        gens: dict[str, Any],
        model_ckpt: bool = True,
    ) -> None:
        with self.perf.stage("checkpoint"):
            if model_ckpt:
                if self.dist.is_main:
                    path = self._save_checkpoint(policy, state)
                    logger.info("saved %s", path)
                else:
                    state.checkpoints += 1
            self._save_resume(learner, buffer, state, gens)
            if self.dist.is_distributed:
                dist.barrier()

    # ------------------------------------------------------------------ evaluation
    def eval(self) -> None:
        """Evaluate ``fih.eval.agent`` on ``fih.eval.split``: each checkpoint at
        ``eval_ckpt_path_dir`` for the policy, else the named baseline agent."""
        ec = self.fcfg.eval
        if not self.dist.is_main:
            return
        if ec.agent == "policy":
            paths = list_checkpoints(self.hb.eval_ckpt_path_dir)
            bad = unreadable_checkpoints(paths)  # before any environment starts
            if bad:
                raise CorruptCheckpointError(
                    f"{len(bad)} of the {len(paths)} checkpoints at "
                    f"habitat_baselines.eval_ckpt_path_dir cannot be read: " + " | ".join(bad)
                )
            agents = [self.checkpoint_agent(path, ec.action_source) for path in paths]
        else:
            agents = [(ec.agent, lambda: self.baseline_agent(ec.agent))]
        self.evaluate_agents(ec.split, agents)

    def checkpoint_agent(
        self, path: str, action_source: str = "policy"
    ) -> tuple[str, Callable[[], PolicyAgent]]:
        """(stats tag, agent factory) of one checkpoint: tag ``ckpt_{i}`` (``_expert_path``
        when it walks the expert's path, ``_sampled`` when actions are sampled); the weights
        are loaded when the factory is called, so a folder of checkpoints is evaluated one
        model at a time."""
        ec = self.fcfg.eval

        def make() -> PolicyAgent:
            ckpt = load_checkpoint(path)
            policy = self.build_policy(int(self.fcfg.seed))
            load_model_weights(policy.model, ckpt, self.model_config, path)
            policy.eval()
            return PolicyAgent(
                policy,
                self.device,
                bool(ec.deterministic),
                torch.Generator().manual_seed(int(self.fcfg.seed)),
                action_source,
            )

        tag = f"ckpt_{checkpoint_index(path)}"
        if action_source == "expert":
            tag += "_expert_path"
        elif not ec.deterministic:
            tag += "_sampled"  # sampled actions: not the argmax run's stats
        return tag, make

    def baseline_agent(self, kind: str) -> BaselineAgent:
        ec = self.fcfg.eval
        return BaselineAgent(
            kind,
            int(self.fcfg.seed),
            self.heatmap_size,
            ec.baseline_actions,
            float(ec.uniform_value),
            float(ec.center_sigma),
        )

    def evaluate_agents(
        self, split: str, agents: list[tuple[str, Callable[[], Any]]]
    ) -> dict[str, dict[str, Any]]:
        """Run each (tag, agent factory) on the same episodes of `split` (the first
        ``test_episode_count``, or all) with one set of environments, one agent at a time;
        writes ``stats_{tag}_{split}.json`` per agent and returns {tag: means}."""
        envs = build_vector_env(
            self._env_config(split),
            int(self.hb.num_environments),
            int(self.fcfg.seed),
            self.fcfg.collection.start_method,
        )
        try:
            ids = envs.call_at(0, "episode_ids")
            if int(self.hb.test_episode_count) > 0:
                ids = ids[: int(self.hb.test_episode_count)]
            return {tag: self._evaluate(make(), envs, ids, split, tag) for tag, make in agents}
        finally:
            envs.close()

    def _png_hook(self, tag: str, split: str) -> Any:
        """on_step hook saving predicted vs target heatmaps (and, with camera poses, the
        frustum prior) of ``eval.png_episodes``."""
        chosen = {str(e) for e in self.fcfg.eval.png_episodes}
        if not chosen:
            return None
        root = os.path.join(self.fcfg.eval.results_dir, f"heatmaps_{tag}_{split}")
        frustum = (
            FrustumBaseline(self.model_config.prior_inverse_depths, 0.0)
            if self._has_camera_sensor()
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

    def _evaluate(
        self, agent: Any, envs: Any, ids: list[str], split: str, tag: str
    ) -> dict[str, Any]:
        torch.manual_seed(int(self.fcfg.seed))
        ec = self.fcfg.eval
        hooks = [h for h in (self._png_hook(tag, split),) if h is not None]
        paired = None
        if isinstance(agent, PolicyAgent) and agent.predict_heatmaps and ec.paired_baselines:
            baselines: dict[str, Any] = {
                kind: baseline_maps(
                    kind, self.heatmap_size, float(ec.uniform_value), float(ec.center_sigma)
                )
                for kind in ("uniform", "center")
            }
            if self._has_camera_sensor():
                baselines["frustum"] = FrustumBaseline(
                    self.model_config.prior_inverse_depths, float(ec.frustum_floor)
                )
            paired = PairedHeatmapScores(baselines)
            hooks.append(paired)

        def on_step(view: StepView, action: dict[str, Any]) -> None:
            for hook in hooks:
                hook(view, action)

        with tqdm(total=len(ids), desc=f"eval {tag} {split}", leave=False) as bar:
            stats = run_episodes(
                envs,
                ids,
                agent,
                self._history,
                on_step if hooks else None,
                int(self.fcfg.collection.max_episode_steps),
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
        path = write_stats(self.fcfg.eval.results_dir, tag, split, means, rows)
        logger.info("eval %s on %s: %s -> %s", tag, split, means, path)
        return means
