"""The end-to-end frame-indexed-heatmap model: VGGT → keyframes → DINOv3 → fusion → Qwen → heads.

`FIHModel.forward` takes a batch of frame histories (the LAST valid frame of each sample is the
current view), their validity mask, their original step indices and the instructions, and
returns an `FIHOutput`: one heatmap per keyframe on the current view (stacked and keyed by the
keyframe's original frame index), action logits and VGGT's geometry.

Pipeline per sample:

1. VGGT runs over all valid frames of the sample (padding never enters its global attention:
   samples are grouped by their number of valid frames, so a padded batch costs one VGGT call
   per distinct length). The first valid frame defines VGGT's world frame.
2. The sampler (`habitat_fih.models.sampling`) picks K keyframes among the HISTORY, i.e. the
   valid frames before the current one, from VGGT's world points. With fewer than K history
   frames every history frame is taken and the remaining slots are padding (`-1` indices), or
   a ValueError is raised when `config.pad_keyframes` is False.
3. DINOv3 encodes the real keyframes and the current view.
4. `SpatialFusion` fuses their VGGT patch tokens (layer `config.vggt_layer`) with the DINOv3
   tokens into T LLM tokens per frame.
5. Qwen2.5-VL reads the keyframe and current-view tokens (visual slots, in time order, each
   marked with its original frame index) and the instruction. Samples are grouped by their
   number of real keyframes, so padding slots never appear in a prompt.
6. The heatmap head turns (keyframe, current view) hidden states into one map per keyframe;
   the action head turns the final hidden state into STOP / FORWARD / LEFT / RIGHT logits.

Components may live on different devices (`config.device_allocation`, placed by
`FIHModel.place`); tensors are moved explicitly between them. With offload
(`FIHModel.enable_offload`, `config.offload`; `habitat_fih.models.offload`) VGGT, DINOv3 and / or
the LLM rest on CPU and each is on the execution device only during its stage. Each component runs under
`torch.autocast` (config dtype) when it sits on a CUDA device. Fully frozen components run
under `torch.no_grad`. `set_stage` applies the per-stage freezing spec and logs trainable
parameter counts per component. An optional `stage_hook` (a callable returning a context
manager per stage name) lets benchmarks time the stages.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from habitat_fih.models.config import FIHModelConfig, StageSpec
from habitat_fih.models.dinov3_backbone import DINOv3Backbone
from habitat_fih.models.frame_cache import FrameCache
from habitat_fih.models.fusion import SpatialFusion
from habitat_fih.models.geometry_prior import frustum_prior
from habitat_fih.models.heads.action import ActionHead
from habitat_fih.models.heads.heatmap import FrameIndexedHeatmapHead, HeatmapOutput
from habitat_fih.models.history_encoding import encode_dinov3, encode_history
from habitat_fih.models.losses import TRAINING_STAGES, kind_suffix
from habitat_fih.models.offload import OFFLOADABLE, ComponentOffload, offload_components
from habitat_fih.models.qwen_vl_backbone import QwenVLBackbone
from habitat_fih.models.sampling import select_keyframes
from habitat_fih.models.vggt.lora import set_vggt_trainable
from habitat_fih.models.vggt.model import VGGT

logger = logging.getLogger(__name__)

__all__ = ["COMPONENTS", "FIHModel", "FIHOutput"]

#: Component names used by `set_stage`, `trainable_parameter_counts` and `place`.
COMPONENTS: tuple[str, ...] = (
    "vggt",
    "dinov3",
    "fusion",
    "frame_embedding",
    "llm",
    "lora",
    "heatmap_head",
    "action_head",
)

StageHook = Callable[[str], AbstractContextManager[Any]]

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class FIHOutput:
    """Everything `FIHModel.forward` returns (B samples, S history slots, K keyframe slots).

    Keyframes:
        keyframe_indices: [B, K] long, ORIGINAL frame indices of the keyframes, ascending,
            -1 for padding slots (which come last).
        keyframe_slots: [B, K] long, their positions in the input's S axis, -1 for padding.
        keyframe_valid: [B, K] bool, False for padding slots.
        current_index: [B] long, original frame index of the current view.
        current_slot: [B] long, its position in the S axis (the last valid slot).
    Heads:
        heatmap_logits: [B, K, h, w] float32 logits of each keyframe's map on the current
            view (padding slots hold finite, meaningless values); the FIRST of
            `config.target_kinds` (covisibility by default).
        heatmaps: B dicts {original frame index: [h, w] logits}, padding skipped.
        action_logits: [B, A] float32 (A = 4: STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT).
        goal_distance: [B] float32 predicted remaining distance to the goal in metres, or None
            (`ActionHeadConfig.goal_distance`).
    LLM:
        visual_hidden: [B, K + 1, T, D] LLM hidden states at the visual tokens (keyframe slots
            in `keyframe_indices` order, the current view last; zeros at padding slots).
        last_hidden: [B, D] LLM hidden state at the final prompt position.
        fused_tokens: [B, K + 1, T, D] fusion outputs fed to the LLM (zeros at padding); also
            the features of the pretraining cross-frame alignment term
            (`habitat_fih.models.alignment`).
        token_grid: (th, tw), T = th * tw.
    VGGT geometry (zeros at invalid slots; world frame = first valid frame of each sample):
        pose_enc: [B, S, 9]; depth: [B, S, H', W', 1]; depth_conf: [B, S, H', W'];
        world_points: [B, S, H', W', 3]; world_points_conf: [B, S, H', W'] with
        H' = W' = config.image_size. pose_enc / depth / depth_conf are None when VGGT's
        camera / depth head is disabled (the point head is required by the sampler).
        frame_mask: [B, S] bool, the input mask.
    Target kinds:
        kind_logits: {kind: [B, K, h, w] float32 logits} for every one of
            `FIHModelConfig.target_kinds` (the first is `heatmap_logits`); None = covisibility
            only, as `heatmap_logits`.
    """

    keyframe_indices: Tensor
    keyframe_slots: Tensor
    keyframe_valid: Tensor
    current_index: Tensor
    current_slot: Tensor
    heatmap_logits: Tensor
    heatmaps: list[dict[int, Tensor]]
    action_logits: Tensor
    visual_hidden: Tensor
    last_hidden: Tensor
    fused_tokens: Tensor
    token_grid: tuple[int, int]
    pose_enc: Tensor | None
    depth: Tensor | None
    depth_conf: Tensor | None
    world_points: Tensor
    world_points_conf: Tensor
    frame_mask: Tensor
    kind_logits: dict[str, Tensor] | None = None
    goal_distance: Tensor | None = None

    def logits_by_kind(self) -> dict[str, Tensor]:
        """{kind: [B, K, h, w] logits} (``{"covisibility": heatmap_logits}`` by default)."""
        return dict(self.kind_logits or {"covisibility": self.heatmap_logits})

    def loss_inputs(self) -> dict[str, Tensor]:
        """The `preds` mapping of `habitat_fih.models.losses.compute_stage_loss`: each kind's
        logits as ``heatmap_logits`` (covisibility) / ``heatmap_logits_<kind>``."""
        kinds = self.logits_by_kind()
        out: dict[str, Tensor] = {}
        if "covisibility" in kinds:
            out["heatmap_logits"] = kinds.pop("covisibility")
        out["frame_indices"] = self.keyframe_indices
        out["action_logits"] = self.action_logits
        if self.goal_distance is not None:
            out["goal_distance"] = self.goal_distance
        for kind, logits in kinds.items():
            out[f"heatmap_logits{kind_suffix(kind)}"] = logits
        return out


def resize_frames(frames: Tensor, size: int) -> Tensor:
    """[B, S, 3, H, W] -> [B, S, 3, size, size]: the model's input resize (bilinear with
    antialiasing, no crop; a frame already at that size is returned as is)."""
    if tuple(frames.shape[-2:]) == (size, size):
        return frames
    b, s = frames.shape[:2]
    flat = frames.reshape(b * s, *frames.shape[2:])  # [B*S, 3, H, W]
    flat = F.interpolate(
        flat, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )
    return flat.reshape(b, s, 3, size, size)  # [B, S, 3, R, R]


def _param_device(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")


def _count(params: Iterator[nn.Parameter]) -> int:
    return sum(p.numel() for p in params if p.requires_grad)


class FIHModel(nn.Module):
    """VGGT + keyframe sampler + DINOv3 + fusion + Qwen2.5-VL + heatmap / action heads.

    Build it with `habitat_fih.models.factory.build_model(config)` (which loads checkpoints);
    the constructor takes already-built components.
    """

    #: set by `enable_offload` (`habitat_fih.models.offload`); None = every component resident
    offload: ComponentOffload | None = None

    def __init__(
        self,
        config: FIHModelConfig,
        vggt: VGGT,
        dinov3: DINOv3Backbone,
        qwen: QwenVLBackbone,
    ) -> None:
        super().__init__()
        self.config = config
        self.vggt = vggt
        self.dinov3 = dinov3
        self.qwen = qwen
        self._check_dims()
        hidden = qwen.hidden_size
        self.fusion = SpatialFusion(config.fusion)
        prior_channels = len(config.prior_inverse_depths) if config.geometry_prior != "none" else 0
        self.heatmap_head = FrameIndexedHeatmapHead(
            replace(
                config.heatmap,
                input_dim=hidden,
                prior_channels=prior_channels,
                out_channels=len(config.target_kinds),
            )
        )
        act = config.action
        self.action_head = ActionHead(
            hidden,
            act.num_actions,
            act.mlp_dim,
            act.dropout,
            act.inputs,
            act.max_depth,
            act.goal_distance,
            act.distance_scale,
        )
        # fusion and heads follow the LLM's device (they are created on the default device)
        llm_device = _param_device(qwen)
        self.fusion.to(llm_device)
        self.heatmap_head.to(llm_device)
        self.action_head.to(llm_device)
        if config.gradient_checkpointing:
            vggt.set_gradient_checkpointing(True)
            vit = dinov3.model
            kwargs = {"use_reentrant": False}
            if hasattr(vit, "activation_checkpointing_enable"):  # transformers >= 5.2x
                vit.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
            elif vit.supports_gradient_checkpointing:  # older transformers (device image)
                vit.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        self.stage: str | None = None
        self.stage_hook: StageHook | None = None
        self.set_stage("finetune")

    # ------------------------------------------------------------------ setup
    def _check_dims(self) -> None:
        cfg = self.config
        problems = []
        if self.dinov3.hidden_size != cfg.fusion.dino_dim:
            problems.append(
                f"fusion.dino_dim={cfg.fusion.dino_dim} but DINOv3 width is "
                f"{self.dinov3.hidden_size}"
            )
        if self.qwen.hidden_size != cfg.fusion.out_dim:
            problems.append(
                f"fusion.out_dim={cfg.fusion.out_dim} but the LLM hidden size is "
                f"{self.qwen.hidden_size}"
            )
        if cfg.image_size % self.dinov3.patch_size:
            problems.append(
                f"image_size={cfg.image_size} is not a multiple of the DINOv3 patch size "
                f"{self.dinov3.patch_size}"
            )
        if self.vggt.point_head is None:
            problems.append("VGGT needs its point head (vggt.enable_point) for keyframe sampling")
        if self.qwen.tokenizer is None:
            problems.append(
                "the Qwen backbone has no tokenizer (give qwen.pretrained_dir / tokenizer_dir "
                "or pass tokenizer= to build_model)"
            )
        if problems:
            raise ValueError("FIHModel components do not fit the config: " + "; ".join(problems))

    def component_modules(self) -> dict[str, nn.Module]:
        """The top-level modules by component (the LLM's LoRA and frame embedding sit inside
        `qwen`)."""
        return {
            "vggt": self.vggt,
            "dinov3": self.dinov3,
            "fusion": self.fusion,
            "qwen": self.qwen,
            "heatmap_head": self.heatmap_head,
            "action_head": self.action_head,
        }

    def place(self, device: str | torch.device | None = None) -> FIHModel:
        """Move components to their devices: `config.device_allocation.<name>` when set, else
        `device` (when given). Fusion and both heads follow the LLM. Returns self."""
        alloc = self.config.device_allocation
        targets = {
            "vggt": alloc.vggt or device,
            "dinov3": alloc.dinov3 or device,
            "llm": alloc.llm or device,
        }
        if targets["vggt"] is not None:
            self.vggt.to(targets["vggt"])
        if targets["dinov3"] is not None:
            self.dinov3.to(targets["dinov3"])
        if targets["llm"] is not None:
            for module in (self.qwen, self.fusion, self.heatmap_head, self.action_head):
                module.to(targets["llm"])
        logger.info(
            "FIHModel placement: vggt %s, dinov3 %s, llm/fusion/heads %s",
            self.device_of("vggt"),
            self.device_of("dinov3"),
            self.device_of("llm"),
        )
        return self

    @property
    def token_grid(self) -> tuple[int, int]:
        """The token grid (th, tw) of every frame (`FIHOutput.token_grid`), from the config."""
        side = self.config.image_size // self.config.vggt.patch_size
        return self.fusion.output_grid((side, side))

    def device_of(self, component: str) -> torch.device:
        """Current device of `vggt`, `dinov3` or `llm` (fusion and heads live with the LLM)."""
        if self.offload is not None and component in self.offload.components:
            return self.offload.execution_device  # where it runs (it rests on CPU)
        module = {"vggt": self.vggt, "dinov3": self.dinov3, "llm": self.qwen}[component]
        return _param_device(module)

    def enable_offload(
        self, execution_device: str | torch.device, components: Sequence[str] = OFFLOADABLE
    ) -> ComponentOffload:
        """Keep `components` (among vggt, dinov3, llm) on CPU, each moved to
        `execution_device` only while its stage of `forward` runs (inference / evaluation; see
        `habitat_fih.models.offload`). Everything else (the other large components, fusion,
        heads) moves to `execution_device` for good. While offload is on, `.to()` / `.cuda()`
        leave the offloaded components on CPU and make the small modules' device the
        execution device. Returns the `ComponentOffload` (its counters).

        Raises:
            ValueError: an unknown component name, or `config.device_allocation` set per
                component (offload runs everything on one execution device).
        """
        names = offload_components(components, where="components")
        if not self.config.device_allocation.single_device:
            raise ValueError(
                f"offload {list(names)} runs every component on one execution device: unset "
                f"device_allocation ({self.config.device_allocation})"
            )
        self.disable_offload()
        modules = {"vggt": self.vggt, "dinov3": self.dinov3, "llm": self.qwen}
        self.offload = ComponentOffload({n: modules[n] for n in names}, execution_device)
        self.to(execution_device)  # the rest (see _apply)
        return self.offload

    def disable_offload(self) -> None:
        """Turn offload off; the offloaded components stay on CPU (move them with `.to()`)."""
        self.offload = None

    def _apply(self, fn: Callable[..., Any], recurse: bool = True) -> FIHModel:
        """`nn.Module.to` & co.; with offload on, the offloaded components are skipped (they
        rest on CPU) and the execution device follows fusion's device."""
        if self.offload is None or not recurse:
            return super()._apply(fn, recurse)
        skipped = [id(m) for m in self.offload.modules.values()]
        for child in self.children():
            if id(child) not in skipped:
                child._apply(fn)
        super()._apply(fn, recurse=False)
        self.offload.execution_device = _param_device(self.fusion)
        return self

    # ------------------------------------------------------------------ freezing
    def trainable_parameter_counts(self) -> dict[str, int]:
        """Trainable parameter count per component (see `COMPONENTS`)."""
        qwen_counts = self.qwen.trainable_parameter_counts()
        return {
            "vggt": _count(self.vggt.parameters()),
            "dinov3": _count(self.dinov3.parameters()),
            "fusion": _count(self.fusion.parameters()),
            "frame_embedding": qwen_counts["frame_embedding"],
            "llm": qwen_counts["language_model"] + qwen_counts["vision_tower"],
            "lora": qwen_counts["lora"],
            "heatmap_head": _count(self.heatmap_head.parameters()),
            "action_head": _count(self.action_head.parameters()),
        }

    def set_stage(self, stage: str) -> dict[str, int]:
        """Freeze / unfreeze every component for a training stage (`config.stages[stage]`).

        Args:
            stage: `"vggt"`, `"pretrain"`, `"finetune"` or `"main"`.

        Returns:
            trainable parameter counts per component (also logged).
        """
        if stage not in TRAINING_STAGES:
            raise ValueError(f"stage must be one of {TRAINING_STAGES}, got {stage!r}")
        spec: StageSpec = self.config.stages[stage]
        set_vggt_trainable(self.vggt, spec.train_vggt, spec.vggt_aggregator)
        self.dinov3.requires_grad_(spec.train_dinov3)
        # LLM: base weights trainable only in "full"; LoRA adapters in "lora" and "full".
        for name, param in self.qwen.vlm.named_parameters():
            if name.startswith("visual."):
                param.requires_grad_(False)  # Qwen's own vision tower is never run
            elif "lora_" in name:
                param.requires_grad_(spec.llm in ("lora", "full"))
            else:
                param.requires_grad_(spec.llm == "full")
        if self.qwen.frame_embedding is not None:
            self.qwen.frame_embedding.requires_grad_(spec.train_fusion)
        self.fusion.requires_grad_(spec.train_fusion)
        self.heatmap_head.requires_grad_(spec.train_heatmap_head)
        self.action_head.requires_grad_(spec.train_action_head)
        self.stage = stage
        counts = self.trainable_parameter_counts()
        logger.info(
            "FIHModel stage %r: trainable parameters %s (total %d)",
            stage,
            ", ".join(f"{k}={v:,}" for k, v in counts.items()),
            sum(counts.values()),
        )
        return counts

    def train(self, mode: bool = True) -> FIHModel:
        """Set train mode; frozen backbones (no trainable parameter) stay in eval mode."""
        super().train(mode)
        for module in (self.vggt, self.dinov3):
            if not any(p.requires_grad for p in module.parameters()):
                module.eval()
        return self

    # ------------------------------------------------------------------ forward helpers
    def _stage(self, name: str) -> AbstractContextManager[Any]:
        """The stage hook's context and, for an offloaded component, its residency."""
        hook = self.stage_hook(name) if self.stage_hook is not None else contextlib.nullcontext()
        if self.offload is None or name not in self.offload.components:
            return hook
        stack = contextlib.ExitStack()
        stack.enter_context(hook)  # the stage's time includes the transfer
        try:
            stack.enter_context(self.offload.resident(name))
        except BaseException:
            stack.close()
            raise
        return stack

    def autocast(self, device: torch.device) -> AbstractContextManager[Any]:
        """`torch.autocast` to ``config.autocast_dtype`` for work on a CUDA `device` when
        ``config.autocast`` (every component's forward; the vggt stage's VGGT forward too)."""
        if self.config.autocast and device.type == "cuda":
            return torch.autocast("cuda", dtype=_DTYPES[self.config.autocast_dtype])
        return contextlib.nullcontext()

    @staticmethod
    def _grad(module: nn.Module) -> AbstractContextManager[Any]:
        trainable = any(p.requires_grad for p in module.parameters())
        return contextlib.nullcontext() if trainable else torch.no_grad()

    def _check_inputs(
        self,
        frames: Tensor,
        frame_mask: Tensor | None,
        frame_indices: Tensor | None,
        instructions: list[str],
        camera_poses: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        if frames.ndim != 5 or frames.shape[2] != 3 or frames.shape[-1] < 1 or frames.shape[-2] < 1:
            raise ValueError(
                f"frames must be [B, S, 3, H, W] RGB in [0, 1], got shape {tuple(frames.shape)}"
            )
        b, s = frames.shape[:2]
        if b == 0 or s == 0:
            raise ValueError(f"empty video: frames have shape {tuple(frames.shape)} (B, S >= 1)")
        if frame_mask is None:
            frame_mask = torch.ones(b, s, dtype=torch.bool, device=frames.device)
        if tuple(frame_mask.shape) != (b, s):
            raise ValueError(
                f"frame_mask must be [B, S] = [{b}, {s}], got shape {tuple(frame_mask.shape)}"
            )
        frame_mask = frame_mask.bool()
        empty = (~frame_mask.any(1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"empty video: samples {empty} have no valid frame in frame_mask")
        if frame_indices is None:
            frame_indices = torch.arange(s, device=frames.device).expand(b, s)
        if tuple(frame_indices.shape) != (b, s):
            raise ValueError(
                f"frame_indices must be [B, S] = [{b}, {s}], got shape {tuple(frame_indices.shape)}"
            )
        if frame_indices.dtype.is_floating_point or frame_indices.dtype == torch.bool:
            raise ValueError(f"frame_indices must be integers, got {frame_indices.dtype}")
        if bool((frame_indices[frame_mask] < 0).any()):
            raise ValueError("frame_indices of valid frames must be >= 0")
        if len(instructions) != b or not all(isinstance(t, str) for t in instructions):
            raise ValueError(f"need {b} instruction strings, got {instructions!r}")
        if self.config.geometry_prior == "input":
            if camera_poses is None:
                raise ValueError(
                    "geometry_prior='input' needs camera_poses [B, S, 9] (pose encodings of "
                    "every frame, e.g. from the frame_geometry sensor); none were given"
                )
            if tuple(camera_poses.shape) != (b, s, 9):
                raise ValueError(
                    f"camera_poses must be [B, S, 9] = [{b}, {s}, 9], got shape "
                    f"{tuple(camera_poses.shape)}"
                )
            if not bool(torch.isfinite(camera_poses[frame_mask]).all()):
                raise ValueError("camera_poses of valid frames must be finite")
        return frame_mask, frame_indices.long()

    def _resize(self, frames: Tensor) -> Tensor:
        """[B, S, 3, H, W] -> [B, S, 3, R, R] with R = config.image_size (`resize_frames`)."""
        return resize_frames(frames, self.config.image_size)

    def _select(
        self, geometry: dict[str, Tensor], frame_mask: Tensor, frame_indices: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Keyframe slots [B, K] (sorted by original index, -1 padding last), current slots
        [B] and the number of real keyframes per sample [B]."""
        cfg = self.config
        k = cfg.num_keyframes
        b = frame_mask.shape[0]
        device = frame_mask.device
        key_slots = torch.full((b, k), -1, dtype=torch.long, device=device)
        current = torch.empty(b, dtype=torch.long, device=device)
        num_real = torch.empty(b, dtype=torch.long, device=device)
        for i in range(b):
            valid = frame_mask[i].nonzero().flatten()  # [n] slots in input order
            current[i] = valid[-1]
            history = valid[:-1]  # [n - 1]
            if history.numel() > k:
                chosen = select_keyframes(
                    geometry["world_points"][i, history].detach(),
                    geometry["world_points_conf"][i, history].detach(),
                    k,
                    cfg.sampler,
                )  # [K] positions within history
                picked = history[chosen]
            elif history.numel() == k or cfg.pad_keyframes:
                picked = history  # all history frames; the rest stay padding (-1)
            else:
                raise ValueError(
                    f"sample {i} has {history.numel()} history frames (the current frame "
                    f"excluded) but num_keyframes={k} and pad_keyframes=False"
                )
            order = torch.argsort(frame_indices[i, picked], stable=True)
            picked = picked[order]
            key_slots[i, : picked.numel()] = picked
            num_real[i] = picked.numel()
        return key_slots, current, num_real

    def _geometry_prior(
        self,
        geometry: dict[str, Tensor],
        camera_poses: Tensor | None,
        key_slots: Tensor,
        current_slot: Tensor,
        device: torch.device,
    ) -> Tensor | None:
        """Frustum prior [B, K, P, h, w] of the chosen keyframes on the current view (see
        `habitat_fih.models.geometry_prior`), or None when config.geometry_prior is "none"."""
        source = self.config.geometry_prior
        if source == "none":
            return None
        poses = geometry["pose_enc"] if source == "vggt" else camera_poses
        assert poses is not None  # checked in _check_inputs
        poses = poses.to(device).float()  # [B, S, 9]
        rows = torch.arange(poses.shape[0], device=device)
        slots = key_slots.to(device)
        key_poses = poses[rows[:, None], slots.clamp_min(0)]  # [B, K, 9]
        current = poses[rows, current_slot.to(device)]  # [B, 9]
        return frustum_prior(
            key_poses,
            current,
            self.config.heatmap.out_size,
            self.config.prior_inverse_depths,
            key_valid=slots >= 0,
        )

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        frames: Tensor,
        frame_mask: Tensor | None,
        frame_indices: Tensor | None,
        instructions: list[str],
        camera_poses: Tensor | None = None,
        caches: Sequence[FrameCache] | None = None,
        depth: Tensor | None = None,
        previous_action: Tensor | None = None,
    ) -> FIHOutput:
        """Predict per-keyframe heatmaps on the current view and action logits.

        Args:
            frames: [B, S, 3, H, W] float RGB in [0, 1], the frame history; in each sample the
                LAST valid slot is the current view. Resized to config.image_size (no crop).
            frame_mask: [B, S] bool, True at valid slots (padding anywhere is allowed; every
                sample needs at least one valid frame). None = all valid.
            frame_indices: [B, S] integer original step index of each slot (used for the
                keyframe keys, the prompt's frame markers and sorting). None = 0..S-1.
            instructions: B instruction strings.
            camera_poses: [B, S, 9] pose encoding (VGGT's absT_quaR_FoV, any common world
                frame) of every slot; required when config.geometry_prior == "input", ignored
                otherwise.
            caches: one `FrameCache` per sample when acting step by step (inference only:
                refused while autograd records): per-frame work (VGGT's patch embedding or,
                with ``vggt_history: causal_cache``, the whole causal VGGT; DINOv3) is reused
                across calls. None = everything computed from the frames.
            depth: [B, H, W] the current view's depth in metres; required when
                ``config.action.inputs`` has ``depth`` (the action head's input only).
            previous_action: [B] long, the action taken at the previous step (-1 at an
                episode's first step); required when ``config.action.inputs`` has
                ``previous_action``.

        Returns:
            `FIHOutput` (its docstring lists every field and shape): keyframe_indices [B, K],
            keyframe_slots [B, K], keyframe_valid [B, K], current_index [B], current_slot [B],
            heatmap_logits [B, K, h, w], heatmaps (B dicts {original index: [h, w]}),
            action_logits [B, A], visual_hidden / fused_tokens [B, K + 1, T, D], last_hidden
            [B, D], token_grid (th, tw), pose_enc [B, S, 9], depth [B, S, R, R, 1],
            depth_conf / world_points_conf [B, S, R, R], world_points [B, S, R, R, 3],
            frame_mask [B, S].

        Raises:
            ValueError: wrong frame shape, an empty video (S = 0 or no valid frame), mismatched
                mask / indices / instructions, or fewer than K history frames when
                config.pad_keyframes is False.
        """
        cfg = self.config
        frame_mask, frame_indices = self._check_inputs(
            frames, frame_mask, frame_indices, instructions, camera_poses
        )
        given = {"depth": depth, "previous_action": previous_action}
        missing = [name for name in cfg.action.inputs if given[name] is None]
        if missing:
            raise ValueError(
                f"FIHModelConfig.action.inputs={list(cfg.action.inputs)}: forward needs "
                f"{', '.join(f'{m}=' for m in missing)} (the action head's extra inputs)"
            )
        b, s = frames.shape[:2]
        if caches is not None:
            if len(caches) != b:
                raise ValueError(f"need one FrameCache per sample ({b}), got {len(caches)}")
            if torch.is_grad_enabled():
                raise ValueError("FrameCache is for inference: run under torch.no_grad()")
        k = cfg.num_keyframes
        vggt_dev, dino_dev, llm_dev = (
            self.device_of("vggt"),
            self.device_of("dinov3"),
            self.device_of("llm"),
        )

        # 1. VGGT over every valid frame -------------------------------------------------
        with self._stage("vggt"):
            frames_v = self._resize(frames.to(vggt_dev).float())  # [B, S, 3, R, R]
            mask_v = frame_mask.to(vggt_dev)
            with self._grad(self.vggt), self.autocast(vggt_dev):
                geometry, vggt_tokens = encode_history(
                    self.vggt, cfg, frames_v, mask_v, frame_indices.to(vggt_dev), caches
                )
            # geometry: [B, S, ...]; vggt_tokens: [B, S, gh, gw, 2C]

        # 2. keyframes among the history -------------------------------------------------
        with self._stage("sampling"), torch.no_grad():
            key_slots, current_slot, num_real = self._select(
                geometry, mask_v, frame_indices.to(vggt_dev)
            )  # [B, K], [B], [B]
        # visual slots per sample: real keyframes (time order) then the current view
        slot_lists = [
            key_slots[i, : int(num_real[i])].tolist() + [int(current_slot[i])] for i in range(b)
        ]
        flat_b = torch.tensor([i for i, sl in enumerate(slot_lists) for _ in sl], device=vggt_dev)
        flat_s = torch.tensor([x for sl in slot_lists for x in sl], device=vggt_dev)  # [N]

        # 3. DINOv3 on keyframes + current views ----------------------------------------
        with self._stage("dinov3"):
            images = frames_v[flat_b, flat_s].to(dino_dev)  # [N, 3, R, R]
            with self._grad(self.dinov3), self.autocast(dino_dev):
                keys = None
                if caches is not None:
                    picked = frame_indices.to(vggt_dev)[flat_b, flat_s].tolist()
                    keys = list(zip(flat_b.tolist(), picked, strict=True))
                dino_tokens = encode_dinov3(self.dinov3, images, keys, caches)
                # [N, gh_d, gw_d, Cd]

        # 4. fusion -------------------------------------------------------------------
        with self._stage("fusion"), self.autocast(llm_dev):
            vggt_sel = vggt_tokens[flat_b, flat_s].to(llm_dev)  # [N, gh, gw, 2C]
            fused, grid = self.fusion(vggt_sel[None], dino_tokens.to(llm_dev)[None])
            fused = fused[0]  # [N, T, D]
        t, d = fused.shape[-2:]

        # 5. LLM, grouped by number of real keyframes -------------------------------------
        key_indices = torch.where(
            key_slots >= 0,
            frame_indices.to(vggt_dev).gather(1, key_slots.clamp_min(0)),
            torch.full_like(key_slots, -1),
        )  # [B, K]
        cur_indices = frame_indices.to(vggt_dev).gather(1, current_slot[:, None])[:, 0]  # [B]
        starts = torch.tensor([0] + [len(sl) for sl in slot_lists]).cumsum(0).tolist()
        visual_hidden = fused.new_zeros(b, k + 1, t, d)  # keyframe slots, current view last
        fused_slots = fused.new_zeros(b, k + 1, t, d)
        last_hidden = fused.new_zeros(b, d)
        with self._stage("llm"), self.autocast(llm_dev):
            counts = num_real.tolist()
            for n in sorted(set(counts)):
                rows = [i for i, c in enumerate(counts) if c == n]
                group = torch.stack([fused[starts[i] : starts[i + 1]] for i in rows])
                # group: [b_g, n + 1, T, D]
                indices = torch.stack(
                    [torch.cat([key_indices[i, :n], cur_indices[i : i + 1]]) for i in rows]
                )  # [b_g, n + 1]
                inputs = self.qwen.build_inputs(
                    [instructions[i] for i in rows], indices.cpu(), t, grid, device=llm_dev
                )
                out = self.qwen(group, **inputs)
                row_t = torch.tensor(rows, device=llm_dev)
                slot_pos = list(range(n)) + [k]  # real keyframe slots, then the current view
                pos_t = torch.tensor(slot_pos, device=llm_dev)
                vh = out["visual_hidden"].to(fused.dtype)  # [b_g, n + 1, T, D]
                visual_hidden = visual_hidden.index_put((row_t[:, None], pos_t[None, :]), vh)
                fused_slots = fused_slots.index_put((row_t[:, None], pos_t[None, :]), group)
                last_hidden = last_hidden.index_put((row_t,), out["last_hidden"].to(fused.dtype))

        # 6. heads ---------------------------------------------------------------------
        with self._stage("heads"), self.autocast(llm_dev):
            key_indices_l = key_indices.to(llm_dev)
            prior = self._geometry_prior(
                geometry, camera_poses, key_slots, current_slot, llm_dev
            )  # [B, K, P, h, w] or None
            heat: HeatmapOutput = self.heatmap_head(
                visual_hidden[:, :k],  # [B, K, T, D]
                visual_hidden[:, k],  # [B, T, D]
                grid,
                key_indices_l,
                prior=prior,
            )
            action_logits, goal_distance = self.action_head.forward_all(
                last_hidden, depth=depth, previous_action=previous_action
            )
            action_logits = action_logits.float()  # [B, A]
        # float32 for the losses
        channels = None if heat.channel_logits is None else heat.channel_logits.float()
        heat = HeatmapOutput(
            heat.logits.float() if channels is None else channels[:, :, 0],
            heat.frame_indices,
            channels,
        )
        kinds = self.config.target_kinds
        kind_logits = (
            {kinds[0]: heat.logits}
            if channels is None
            else {kind: channels[:, :, i] for i, kind in enumerate(kinds)}
        )

        return FIHOutput(
            keyframe_indices=key_indices_l,
            keyframe_slots=key_slots.to(llm_dev),
            keyframe_valid=key_indices_l >= 0,
            current_index=cur_indices.to(llm_dev),
            current_slot=current_slot.to(llm_dev),
            heatmap_logits=heat.logits,
            heatmaps=heat.to_frame_dicts(),
            action_logits=action_logits,
            goal_distance=None if goal_distance is None else goal_distance.float(),
            visual_hidden=visual_hidden,
            last_hidden=last_hidden,
            fused_tokens=fused_slots,
            token_grid=grid,
            pose_enc=geometry.get("pose_enc"),
            depth=geometry.get("depth"),
            depth_conf=geometry.get("depth_conf"),
            world_points=geometry["world_points"],
            world_points_conf=geometry["world_points_conf"],
            frame_mask=frame_mask,
            kind_logits=kind_logits,
        )
