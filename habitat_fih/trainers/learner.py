"""The learner of the ``fih`` trainer: optimiser, learning-rate schedule and the update step of
one rank (`Learner`), with the decisions it takes from the model's placement and precision.

`Learner.update` makes ONE optimiser update (AdamW, linear warm-up then cosine,
`warmup_cosine`) from ``optim.grad_accumulation`` micro-batches of ``optim.batch_size`` samples:

- **Loss.** `Learner.loss` collates the samples, runs the model (through DDP when distributed)
  and scores the output with `FIHPolicy.stage_loss`, the loss path `FIHPolicy.evaluate_loss`
  uses too; the batch's heatmap quality (`batch_kind_quality`) is logged next to the terms.
- **Gradient accumulation.** Each micro-batch's loss, divided by the number of micro-batches, is
  back-propagated at once (under DDP the gradients are synchronised on the last micro-batch only,
  ``no_sync``), so the update follows the MEAN of the micro-batches' losses — the same average
  DDP takes over ranks. That is exactly the loss of one batch holding all the samples when every
  loss term counts the same number of items (valid maps, adjacent valid pairs, the action
  weights' sum, alignment pairs) in every micro-batch. It is not in general, and cannot cheaply
  be: each term is a mean over ITS valid items, and which items are valid depends on the
  keyframes the model picks, known only after each micro-batch's forward; an exact big-batch mean
  would need a second forward or one gradient buffer per term. Both relations are tested
  (``tests/trainers/test_learner.py``).
- **Clipping.** The gradients' global L2 norm is clipped to ``optim.grad_clip`` before the step:
  the step applies the gradient scaled to norm min(grad_clip, norm). ``grad_norm`` logs the norm
  before clipping.
- **fp16 loss scaling.** When the model autocasts to float16 on a GPU (`FIHModelConfig.autocast`
  / ``autocast_dtype``; `needs_grad_scaler`) a `torch.amp.GradScaler` scales the loss before the
  backward, unscales the gradients before clipping and skips the step whose gradients overflowed
  (inf / NaN), halving the scale. A skipped step is no error: it still counts as one update of the
  schedule and is logged as ``train/skipped_step`` = 1 next to ``train/grad_scale``. bf16 and fp32
  need no scaler and use none. The scaler's state is part of `Learner.state_dict` (the resume
  state), so a resumed fp16 run continues with the same scale.
- **Non-finite values.** A NaN / inf loss on any rank, or, without a scaler, a non-finite
  gradient norm, raises `NonFiniteLossError` before the weights change.
- **DDP.** With ``distributed`` the model is wrapped in `DistributedDataParallel` with the
  ``device_ids`` of `ddp_device_ids`: the GPU of a model on one GPU; None (and so no
  ``output_device``) for a CPU model and for one spread over several devices by
  ``device_allocation``, as DDP requires for multi-device modules.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from habitat_fih.models.losses import VGGT_STAGE, kind_suffix
from habitat_fih.models.policy import FIHPolicy
from habitat_fih.models.vggt.losses import VGGTLossConfig
from habitat_fih.trainers.buffer import collate
from habitat_fih.trainers.vggt_stage import VGGTStageLoss

__all__ = [
    "Learner",
    "NonFiniteLossError",
    "batch_heatmap_quality",
    "batch_kind_quality",
    "ddp_device_ids",
    "needs_grad_scaler",
    "warmup_cosine",
]

logger = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN / inf; the message names the update and every loss term."""


def _finite_on_all_ranks(value: torch.Tensor) -> bool:
    """Whether a scalar is finite on every rank (all ranks then take the same branch)."""
    finite = torch.isfinite(value.detach()).float()
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite.item() == 1)


def warmup_cosine(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    """lr multiplier: linear warm-up over `warmup` updates, then cosine to `min_ratio`."""

    def fn(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return fn


def needs_grad_scaler(device_types: Iterable[str], autocast: bool, autocast_dtype: str) -> bool:
    """Whether updates need fp16 loss scaling: the model autocasts (`FIHModelConfig.autocast`)
    to ``float16`` and some of its parameters sit on a GPU (`FIHModel` autocasts only the
    components on CUDA devices). bfloat16 keeps fp32's exponent range and needs none."""
    return bool(autocast) and autocast_dtype == "float16" and "cuda" in set(device_types)


def ddp_device_ids(devices: Iterable[torch.device]) -> list[int] | None:
    """`DistributedDataParallel`'s ``device_ids`` for a module whose parameters live on
    `devices`: ``[i]`` when they all sit on the one GPU ``cuda:i``; None for a CPU module and
    for a module spread over several devices (``device_allocation``), which DDP requires (its
    ``output_device`` is then None too)."""
    unique = set(devices)
    if len(unique) == 1:
        (only,) = unique
        if only.type == "cuda" and only.index is not None:
            return [only.index]
    return None


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
        suffix = kind_suffix(kind)
        maps, valid = targets[f"heatmaps{suffix}"], targets[f"valid{suffix}"]
        out.update(_batch_quality(logits, maps, valid, suffix))
    return out


def _batch_quality(
    logits: torch.Tensor, maps: torch.Tensor, valid: torch.Tensor, suffix: str
) -> dict[str, torch.Tensor]:
    valid = valid.bool()
    if not bool(valid.any()):
        return {}
    pred = torch.sigmoid(logits.float())[valid]  # [N, h, w]
    target = maps.float()[valid]  # [N, h, w]
    overlap = torch.minimum(pred, target).sum((-2, -1))  # [N]
    union = torch.maximum(pred, target).sum((-2, -1)).clamp_min(1e-8)  # [N]
    iou = overlap / union
    target_dist = target.flatten(1)  # [N, h*w]
    mass = target_dist.sum(1)
    keep = mass > 0
    target_dist = target_dist[keep] / mass[keep, None]
    pred_dist = pred.flatten(1)[keep] + 1e-8
    pred_dist = pred_dist / pred_dist.sum(1, keepdim=True)
    kl = (target_dist * (target_dist.clamp_min(1e-12).log() - pred_dist.log())).sum(1)
    return {f"quality/heatmap_iou{suffix}": iou.mean(), f"quality/heatmap_kl{suffix}": kl.mean()}


class Learner:
    """Optimiser, schedule and the update step of one rank (see the module docstring).

    Args:
        policy: the policy; its trainable parameters (``requires_grad``, set by the stage) are
            optimised.
        optim: the ``habitat_baselines.fih.optim`` settings (`OptimConfig`).
        total_updates: the run's updates (the cosine's length).
        stage: the training stage (its loss).
        device: where batches go (the model moves them on between its components).
        distributed: wrap the model in DDP (the process group must be initialised).
        find_unused_parameters: DDP's option.
        grad_scaling: fp16 loss scaling: None (default) decides by `needs_grad_scaler` from the
            model's config and parameters; True / False force it (True on a CPU model gives a
            ``GradScaler("cpu")``, for tests).
        vggt_losses: the ``vggt`` stage's loss settings (default `VGGTLossConfig()`); only read
            in that stage, where the samples are `VGGTSample` s, the loss is
            `habitat_fih.trainers.vggt_stage.VGGTStageLoss`, a head it does not run (weight 0)
            is frozen and DDP wraps VGGT alone.
    """

    def __init__(
        self,
        policy: FIHPolicy,
        optim: Any,
        total_updates: int,
        stage: str,
        device: torch.device,
        distributed: bool = False,
        find_unused_parameters: bool = True,
        grad_scaling: bool | None = None,
        vggt_losses: VGGTLossConfig | None = None,
    ) -> None:
        self.policy = policy
        self.stage = stage
        self.device = device
        self.grad_clip = float(optim.grad_clip)
        self.accumulation = int(optim.grad_accumulation)
        if self.accumulation < 1:
            raise ValueError(f"grad_accumulation must be >= 1, got {self.accumulation}")
        self.vggt_loss: VGGTStageLoss | None = None
        if stage == VGGT_STAGE:
            self.vggt_loss = VGGTStageLoss(policy.model, vggt_losses or VGGTLossConfig())
            for head in ("camera", "depth", "point"):  # a head the loss does not run stays
                module = getattr(policy.model.vggt, f"{head}_head", None)  # frozen
                if module is not None and head not in self.vggt_loss.heads:
                    module.requires_grad_(False)
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
        param_devices = {p.device for p in policy.model.parameters()}
        device_types = {d.type for d in param_devices}
        if grad_scaling is None:
            model_config = policy.model.config
            grad_scaling = needs_grad_scaler(
                device_types, model_config.autocast, model_config.autocast_dtype
            )
        self.grad_scaler: torch.amp.GradScaler | None = None
        if grad_scaling:
            self.grad_scaler = torch.amp.GradScaler("cuda" if "cuda" in device_types else "cpu")
            logger.info("fp16 loss scaling on (GradScaler, scale %g)", self.grad_scaler.get_scale())
        trained: torch.nn.Module = policy.model
        if stage == VGGT_STAGE:
            trained = policy.model.vggt
            param_devices = {p.device for p in trained.parameters()}
        self.model: torch.nn.Module = trained
        if distributed:
            self.model = DistributedDataParallel(
                trained,
                device_ids=ddp_device_ids(param_devices),
                find_unused_parameters=find_unused_parameters,
            )
        self.updates = 0

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue this learner exactly (entries of the
        resume state: ``optimizer``, ``scheduler``, ``learner_updates``, ``grad_scaler``)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "learner_updates": self.updates,
            "grad_scaler": None if self.grad_scaler is None else self.grad_scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict`'s entries (a resume state written before fp16 loss scaling
        existed has no ``grad_scaler``: the scale starts afresh)."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.updates = state["learner_updates"]
        saved = state.get("grad_scaler")
        if self.grad_scaler is not None and saved is not None:
            self.grad_scaler.load_state_dict(saved)
        elif self.grad_scaler is not None:
            logger.warning("the resume state has no GradScaler state: the fp16 scale starts afresh")
        elif saved is not None:
            logger.warning("the resume state has a GradScaler state but this run needs none")

    # ------------------------------------------------------------------ update
    def loss(self, samples: list[Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total loss, logged terms + batch heatmap quality, or in the ``vggt`` stage the
        batch's geometry errors) of one micro-batch."""
        if self.vggt_loss is not None:
            return self.vggt_loss(self.model, samples)
        obs = collate(samples)
        obs = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in obs.items()}
        # through DDP when distributed
        output = self.model(*self.policy.model_inputs(obs), **self.policy.action_inputs(obs))
        total, terms, targets = self.policy.stage_loss(obs, output, self.stage)
        terms.update(batch_kind_quality(output, targets))
        return total, terms

    def _backward(self, loss: torch.Tensor) -> None:
        (loss if self.grad_scaler is None else self.grad_scaler.scale(loss)).backward()

    def update(self, batches: list[list[Any]]) -> dict[str, float]:
        """One optimiser update over `batches` (the micro-batches of gradient accumulation);
        returns the logged values: the loss terms (means over the micro-batches), ``train/lr``
        (the rate this update uses), ``grad_norm`` (before clipping) and, with fp16 loss
        scaling, ``train/grad_scale`` and ``train/skipped_step``."""
        if len(batches) != self.accumulation:
            raise ValueError(f"expected {self.accumulation} micro-batches, got {len(batches)}")
        self.model.train()
        sums: dict[str, float] = {}
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            if last or not isinstance(self.model, DistributedDataParallel):
                ctx: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
            else:  # gradients synchronised across ranks on the last micro-batch only
                ctx = self.model.no_sync()
            with ctx:
                total, terms = self.loss(batch)
                if not _finite_on_all_ranks(total):
                    detail = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
                    raise NonFiniteLossError(
                        f"non-finite loss at update {self.updates + 1} (stage {self.stage!r}, "
                        f"micro-batch {i}): {detail}; the last good checkpoint is kept"
                    )
                self._backward(total / self.accumulation)
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + float(value) / self.accumulation
        sums["train/lr"] = self.scheduler.get_last_lr()[0]  # the rate this update uses
        if self.grad_scaler is not None:
            self.grad_scaler.unscale_(self.optimizer)  # clip the true gradients
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        if self.grad_scaler is None:
            if not _finite_on_all_ranks(grad_norm):  # a finite loss can still give inf grads
                self.optimizer.zero_grad(set_to_none=True)
                detail = ", ".join(f"{k}={v:.4g}" for k, v in sums.items())
                raise NonFiniteLossError(
                    f"non-finite gradient norm {float(grad_norm)} at update {self.updates + 1} "
                    f"(stage {self.stage!r}; loss terms {detail}); the weights were not changed "
                    "and the last good checkpoint is kept"
                )
            self.optimizer.step()
            skipped = False
        else:
            scale = self.grad_scaler.get_scale()
            self.grad_scaler.step(self.optimizer)  # skipped when the gradients overflowed
            self.grad_scaler.update()  # halves the scale after an overflow, else may grow it
            skipped = self.grad_scaler.get_scale() < scale
            sums["train/grad_scale"] = scale
            sums["train/skipped_step"] = float(skipped)
        with warnings.catch_warnings():
            if skipped:  # torch warns when no optimizer.step() has run yet: a skip is meant
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler")
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.updates += 1
        sums["grad_norm"] = float(grad_norm)
        return sums
