"""The loss of the ``vggt`` stage: VGGT on collected frame sequences against simulator geometry.

The ``vggt`` stage (``habitat_baselines.fih.stage: vggt``) is a stage of the ``fih`` trainer,
not a trainer of its own: it shares the trainer's online collection (FIHSim-v0 or habitat-sim
episodes, the expert driving), replay buffer, `Learner` (AdamW, warm-up + cosine, gradient
accumulation, clipping, fp16 loss scaling with `torch.amp.GradScaler`, bf16 without, DDP),
checkpoints with exact resume, TensorBoard / W&B logging and ``fih.schedule``, so one command
can train VGGT first and then the heatmap / policy stages on the fine-tuned VGGT
(``geometry_prior: vggt`` reads its cameras). What it changes:

- samples: `habitat_fih.trainers.vggt_samples.VGGTSample` (a step's frames with
  `habitat_fih.models.vggt.targets.vggt_targets` from the ``frame_geometry`` sensor's cameras
  and each frame's depth);
- trainable parameters (`FIHModel.set_stage`, `StageSpec` ``vggt``): VGGT's heads plus its
  aggregator as ``stages.vggt.vggt_aggregator`` says (``frozen`` / ``lora`` / ``full``);
  everything else frozen. DDP wraps VGGT alone;
- the loss (`VGGTStageLoss`): VGGT's forward on the sequences (all enabled heads whose weight
  is > 0; under autocast on CUDA as the model config says; with ``vggt_history: causal_cache``
  through the same block-causal mask the model acts with) scored by
  `habitat_fih.models.vggt.losses.vggt_loss` with ``losses.vggt`` (`VGGTLossConfig`), logged as
  ``vggt/*``, and the batch's geometry errors (`habitat_fih.models.vggt.metrics.geometry_metrics`:
  ``vggt_metrics/rre_deg``, ``rte_deg``, ``rte_m``, ``auc_30``, ``depth_abs_rel``,
  ``depth_delta_1.25``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from habitat_fih.models.fih_model import FIHModel
from habitat_fih.models.vggt.losses import VGGTLossConfig, vggt_loss
from habitat_fih.models.vggt.metrics import geometry_metrics
from habitat_fih.trainers.vggt_samples import VGGTSample, collate_vggt

__all__ = ["VGGTStageLoss", "heads_to_run"]


def heads_to_run(vggt: nn.Module, config: VGGTLossConfig) -> list[str]:
    """The VGGT heads the loss needs: those enabled in the model whose weight is > 0.

    Raises:
        ValueError: none (every weighted head is disabled in the model, or every weight is 0).
    """
    wanted = {
        "camera": config.camera_weight > 0 and getattr(vggt, "camera_head", None) is not None,
        "depth": config.depth_weight > 0 and getattr(vggt, "depth_head", None) is not None,
        "point": config.point_weight > 0 and getattr(vggt, "point_head", None) is not None,
    }
    heads = [name for name, on in wanted.items() if on]
    if not heads:
        raise ValueError(
            "the vggt stage has nothing to train: no VGGT head that the model enables has a "
            "weight > 0 in habitat_baselines.fih.losses.vggt"
        )
    missing = [
        name
        for name, weight in (
            ("camera", config.camera_weight),
            ("depth", config.depth_weight),
            ("point", config.point_weight),
        )
        if weight > 0 and name not in heads
    ]
    if missing:
        raise ValueError(
            f"habitat_baselines.fih.losses.vggt weights the {missing} head(s), which the model's "
            "VGGT config disables; set their weight to 0 or enable them"
        )
    return heads


class VGGTStageLoss:
    """(total loss, logged terms) of one micro-batch of `VGGTSample` (module docstring).

    Args:
        model: the `FIHModel` whose VGGT trains (its config: input size, autocast, history).
        config: the loss settings.
    """

    def __init__(self, model: FIHModel, config: VGGTLossConfig) -> None:
        self.model = model
        self.config = config
        self.heads = heads_to_run(model.vggt, config)
        cfg = model.config
        self.image_size = int(cfg.image_size)
        self.causal_window = (
            int(cfg.vggt_cache_window) if cfg.vggt_history == "causal_cache" else None
        )

    def __call__(
        self, vggt: nn.Module, samples: Sequence[VGGTSample]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Run `vggt` (the model's VGGT, or DDP around it) on `samples` and score it."""
        device = self.model.device_of("vggt")
        images, targets = collate_vggt(samples, self.image_size)
        images, targets = images.to(device), targets.to(device)
        with self.model.autocast(device):
            outputs = vggt(images, heads=self.heads, causal_window=self.causal_window)
        total, terms = vggt_loss(outputs, targets, self.config)
        with torch.no_grad():
            metrics = geometry_metrics(outputs, targets)
        for name, value in metrics.items():
            if math.isfinite(value):  # e.g. RTE of a batch of pure turns is undefined
                terms[f"vggt_metrics/{name}"] = torch.tensor(value)
        return total, terms
