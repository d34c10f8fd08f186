"""Typed configuration of the whole frame-indexed-heatmap model (`FIHModel`).

`FIHModelConfig` gathers the sub-configs of every component — VGGT (`VGGTConfig`), DINOv3
(`DINOv3BackboneConfig`), fusion (`FusionConfig`), Qwen2.5-VL (`QwenVLBackboneConfig`), the
keyframe sampler (`SamplerConfig`), the heatmap head (`HeatmapHeadConfig`) and the action head
(`ActionHeadConfig`) — plus the model-level settings: number of keyframes, input image size,
which VGGT aggregator layer feeds fusion, per-module device placement, autocast dtype, the
per-stage freezing spec and gradient checkpointing. `__post_init__` checks every value it can
and names the bad one.

Presets:

- `FIHModelConfig.tiny()`: a few-hundred-thousand-parameter model for CPU tests (32² frames).
- `FIHModelConfig.full(llm="7b" | "3b")`: VGGT-1B + DINOv3 ViT-L/16 (24 layers, 1024-d,
  4 registers) + Qwen2.5-VL-7B (hidden 3584, 28 layers) or -3B (hidden 2048, 36 layers)
  architectures, randomly initialised unless local checkpoint directories are given
  (`vggt_dir`, `dinov3_dir`, `qwen_dir`).

Image size: VGGT's patches are 14 px and DINOv3's 16 px, so frames are resized (bilinear,
antialiased, no crop: a heatmap pixel stays a pure scaling of a view pixel) to a square
`image_size` that is a multiple of both; the default 224 = 16·14 gives a 16×16 VGGT grid and a
14×14 DINOv3 grid (resized to 16×16 inside fusion), merged 2×2 into 8×8 = 64 LLM tokens per
frame.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from habitat_fih.models.dinov3_backbone import DINOv3BackboneConfig
from habitat_fih.models.fusion import FusionConfig
from habitat_fih.models.heads.heatmap import HeatmapHeadConfig
from habitat_fih.models.losses import HEATMAP_KINDS, TRAINING_STAGES, VGGT_STAGE
from habitat_fih.models.offload import offload_components
from habitat_fih.models.qwen_vl_backbone import LoRASettings, QwenVLBackboneConfig
from habitat_fih.models.sampling import SamplerConfig
from habitat_fih.models.vggt.config import (
    CameraHeadConfig,
    DinoV2Config,
    DPTHeadConfig,
    VGGTConfig,
)

__all__ = [
    "LLM_MODES",
    "ActionHeadConfig",
    "DeviceAllocation",
    "FIHModelConfig",
    "GEOMETRY_PRIORS",
    "StageSpec",
    "default_stages",
    "dinov3_vitl16_config",
    "qwen25_vl_config",
]

LLM_MODES: tuple[str, ...] = ("frozen", "lora", "full")
#: peft target modules of `FIHModelConfig.vggt_lora` (a regex over module names): the attention
#: projections of the aggregator's frame and global blocks (not the patch embedding's).
VGGT_LORA_TARGETS: tuple[str, ...] = (r"aggregator\.(frame|global)_blocks\.\d+\.attn\.(qkv|proj)",)


def _vggt_lora_defaults() -> dict[str, Any]:
    """`FIHModelConfig.vggt_lora`'s defaults (a fresh dict: its list is not shared)."""
    return {
        "enabled": False,
        "r": 16,
        "alpha": 32,
        "dropout": 0.0,
        "target_modules": list(VGGT_LORA_TARGETS),
    }


_AUTOCAST_DTYPES: tuple[str, ...] = ("bfloat16", "float16")
#: How VGGT's global attention sees the history (`FIHModelConfig.vggt_history`).
VGGT_HISTORIES: tuple[str, ...] = ("full", "causal_cache")
#: Which VGGT heads `FIHModel.forward` runs (`FIHModelConfig.vggt_heads`).
VGGT_HEAD_CHOICES: tuple[str, ...] = ("needed", "all")
#: Which frame is VGGT's reference (first) frame (`FIHModelConfig.vggt_reference`).
VGGT_REFERENCES: tuple[str, ...] = ("first", "current")

#: Camera sources of the heatmap head's frustum prior (`FIHModelConfig.geometry_prior`).
GEOMETRY_PRIORS: tuple[str, ...] = ("none", "vggt", "input")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


# --------------------------------------------------------------------------- architectures


def dinov3_vitl16_config() -> dict[str, Any]:
    """`DINOv3ViTConfig` keyword arguments of the released ViT-L/16 (distilled, LVD-1689M)."""
    return {
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "num_register_tokens": 4,
        "patch_size": 16,
        "image_size": 224,
        "layerscale_value": 1e-5,
        "rope_theta": 100.0,
        "query_bias": True,
        "key_bias": False,
        "value_bias": True,
        "proj_bias": True,
        "mlp_bias": True,
        "use_gated_mlp": False,
        "layer_norm_eps": 1e-5,
    }


def qwen25_vl_config(size: str = "7b") -> dict[str, Any]:
    """`Qwen2_5_VLConfig` keyword arguments of Qwen2.5-VL-7B-Instruct or -3B-Instruct."""
    if size == "7b":
        text = dict(
            vocab_size=152064,
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            tie_word_embeddings=False,
        )
    elif size == "3b":
        text = dict(
            vocab_size=151936,
            hidden_size=2048,
            intermediate_size=11008,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=2,
            tie_word_embeddings=True,
        )
    else:
        raise ValueError(f"Qwen2.5-VL size must be '7b' or '3b', got {size!r}")
    hidden = text["hidden_size"]
    text.update(
        max_position_embeddings=128000,
        rms_norm_eps=1e-6,
        hidden_act="silu",
        rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1e6},
        bos_token_id=151643,
        eos_token_id=151645,
        pad_token_id=151643,
    )
    return {
        "text_config": text,
        "vision_config": {
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "out_hidden_size": hidden,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [7, 15, 23, 31],
        },
        "image_token_id": 151655,
        "video_token_id": 151656,
        "vision_start_token_id": 151652,
        "vision_end_token_id": 151653,
        "tie_word_embeddings": text["tie_word_embeddings"],
    }


def _tiny_qwen_config() -> dict[str, Any]:
    """A tiny random Qwen2.5-VL (hidden 32, 2 layers) whose special ids fit a 200-word vocab.

    Matches `tests/helpers/_tiny_qwen.py` (whose tokenizer uses the same ids).
    """
    return {
        "text_config": {
            "vocab_size": 200,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "rope_parameters": {
                "rope_type": "default",
                "mrope_section": [1, 1, 2],
                "rope_theta": 10000.0,
            },
            "pad_token_id": 186,
            "bos_token_id": 186,
            "eos_token_id": 185,
        },
        "vision_config": {
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 2,
            "out_hidden_size": 32,
            "fullatt_block_indexes": [0],
        },
        "image_token_id": 180,
        "video_token_id": 181,
        "vision_start_token_id": 182,
        "vision_end_token_id": 183,
    }


# --------------------------------------------------------------------------- small configs


@dataclass
class ActionHeadConfig:
    """Settings of `ActionHead` (its input is the LLM's final hidden state).

    Attributes:
        num_actions: discrete actions (VLN-CE: STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT).
        mlp_dim: hidden width of its MLP; None = hidden_size // 2.
        dropout: dropout inside the MLP.
        inputs: extra inputs of the action head only, the ones VLN-CE's own baselines (Seq2Seq,
            CMA) act on next to RGB and the instruction, each switchable (default none: the
            design's RGB + instruction): ``depth`` (the current view's depth map, through a
            small CNN, `habitat_fih.models.heads.action.ActionInputEncoder`) and
            ``previous_action`` (an embedding of the action taken at the previous step; a
            "none" row at an episode's first step). They are fused late (concatenated with the
            LLM state), so the heatmaps do not see them. Part of the architecture: a
            checkpoint trained with them is built with them.
        max_depth: metres at which the ``depth`` input saturates (it is fed as depth /
            max_depth clipped to [0, 1]).
        goal_distance: also predict the remaining geodesic distance to the goal in metres
            (`FIHOutput.goal_distance`, a progress monitor in the spirit of VLN-CE's
            ``PROGRESS_MONITOR``, trained on the simulator's ``distance_to_goal`` with
            ``losses.<stage>.goal_distance_weight``), from the action head's hidden layer;
            ``habitat_baselines.fih.stop.rule: goal_distance`` stops on it.
        distance_scale: metres per unit of that output (its loss is in these units).
    """

    num_actions: int = 4
    mlp_dim: int | None = None
    dropout: float = 0.0
    inputs: tuple[str, ...] = ()
    max_depth: float = 10.0
    goal_distance: bool = False
    distance_scale: float = 10.0

    def __post_init__(self) -> None:
        from habitat_fih.models.heads.action import ACTION_INPUTS

        self.inputs = tuple(self.inputs)
        _require(
            self.inputs == tuple(k for k in ACTION_INPUTS if k in self.inputs)
            and len(set(self.inputs)) == len(self.inputs),
            f"ActionHeadConfig.inputs must be a subset of {list(ACTION_INPUTS)} in that order, "
            f"got {list(self.inputs)}",
        )
        _require(
            isinstance(self.max_depth, (int, float)) and self.max_depth > 0,
            f"ActionHeadConfig.max_depth must be a number > 0 (metres), got {self.max_depth!r}",
        )
        self.max_depth = float(self.max_depth)
        _require(
            isinstance(self.goal_distance, bool),
            f"ActionHeadConfig.goal_distance must be a bool, got {self.goal_distance!r}",
        )
        _require(
            isinstance(self.distance_scale, (int, float)) and self.distance_scale > 0,
            f"ActionHeadConfig.distance_scale must be a number > 0 (metres), got "
            f"{self.distance_scale!r}",
        )
        self.distance_scale = float(self.distance_scale)
        _require(
            isinstance(self.num_actions, int) and self.num_actions >= 2,
            f"ActionHeadConfig.num_actions must be an int >= 2, got {self.num_actions!r}",
        )
        _require(
            self.mlp_dim is None or (isinstance(self.mlp_dim, int) and self.mlp_dim >= 1),
            f"ActionHeadConfig.mlp_dim must be None or an int >= 1, got {self.mlp_dim!r}",
        )
        _require(
            0.0 <= self.dropout < 1.0,
            f"ActionHeadConfig.dropout must be in [0, 1), got {self.dropout!r}",
        )


@dataclass
class DeviceAllocation:
    """Where each component lives (the user's design: vggt cuda:0, dinov3 cuda:1, llm cuda:2).

    `None` everywhere (the default) is single-device mode: every component follows
    `FIHModel.place(device)` / `.to(device)`. A component set to `None` while others are set
    goes to the device passed to `place`. Fusion and both heads live with the LLM; keyframe
    sampling runs where VGGT runs. Tensors are moved between devices explicitly in forward.
    """

    vggt: str | None = None
    dinov3: str | None = None
    llm: str | None = None

    def __post_init__(self) -> None:
        import torch

        for name in ("vggt", "dinov3", "llm"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                torch.device(value)
            except (RuntimeError, TypeError) as err:
                raise ValueError(
                    f"DeviceAllocation.{name} must be a torch device string, got {value!r}"
                ) from err

    @property
    def single_device(self) -> bool:
        """True when no component has its own device."""
        return self.vggt is None and self.dinov3 is None and self.llm is None


@dataclass
class StageSpec:
    """Which components train in one stage (everything else is frozen).

    Attributes:
        train_vggt / train_dinov3: train the geometry / 2D backbones (default frozen).
        llm: `frozen` (base and LoRA frozen), `lora` (base frozen, LoRA adapters trained;
            needs `qwen.lora.enabled`) or `full` (every LLM weight trained).
        train_fusion: the fusion MLP and, when enabled, Qwen's frame-index embedding
            (the projector into the LLM).
        train_heatmap_head / train_action_head: the output heads.
        vggt_aggregator: with `train_vggt`, what of VGGT's aggregator trains next to its
            camera / depth / point heads (which then always train): `frozen` (heads only),
            `lora` (peft LoRA adapters on the aggregator's attention, base frozen; needs
            `FIHModelConfig.vggt_lora.enabled`) or `full` (every aggregator weight; the
            default). The patch embedding trains with `full` only.
    """

    train_vggt: bool = False
    train_dinov3: bool = False
    llm: Literal["frozen", "lora", "full"] = "frozen"
    train_fusion: bool = True
    train_heatmap_head: bool = True
    train_action_head: bool = True
    vggt_aggregator: Literal["frozen", "lora", "full"] = "full"

    def __post_init__(self) -> None:
        _require(
            self.llm in LLM_MODES, f"StageSpec.llm must be one of {LLM_MODES}, got {self.llm!r}"
        )
        _require(
            self.vggt_aggregator in LLM_MODES,
            f"StageSpec.vggt_aggregator must be one of {LLM_MODES}, got {self.vggt_aggregator!r}",
        )


def default_stages(llm_main: str = "lora") -> dict[str, StageSpec]:
    """The default freezing per stage.

    - pretrain (single images, spatial-semantic alignment): fusion + heatmap head only;
    - finetune (frame-indexed heatmaps): fusion + both heads, LLM frozen;
    - main (end to end): fusion + heads + the LLM in `llm_main` mode (LoRA by default).
    VGGT and DINOv3 stay frozen in these three.
    - vggt (geometry): VGGT alone, heads + the whole aggregator (``vggt_aggregator: full``);
      everything else frozen.
    """
    return {
        VGGT_STAGE: StageSpec(
            train_vggt=True,
            train_fusion=False,
            train_heatmap_head=False,
            train_action_head=False,
        ),
        "pretrain": StageSpec(llm="frozen", train_action_head=False),
        "finetune": StageSpec(llm="frozen"),
        "main": StageSpec(llm=llm_main),  # type: ignore[arg-type]
    }


# --------------------------------------------------------------------------- the model config


_SUB_CONFIGS: dict[str, type] = {
    "vggt": VGGTConfig,
    "dinov3": DINOv3BackboneConfig,
    "fusion": FusionConfig,
    "qwen": QwenVLBackboneConfig,
    "sampler": SamplerConfig,
    "heatmap": HeatmapHeadConfig,
    "action": ActionHeadConfig,
    "device_allocation": DeviceAllocation,
}


@dataclass
class FIHModelConfig:
    """Configuration of `FIHModel`; the defaults are `full(llm="7b")` (random init).

    Attributes:
        vggt: VGGT architecture (`VGGTConfig.vggt_1b()` by default).
        vggt_dir: local directory (or file) with a VGGT checkpoint (`model.safetensors` /
            `model.pt`); None = random init.
        dinov3: DINOv3 backbone (local dir via `pretrained_dir`, else `model_config`).
        fusion: VGGT + DINOv3 fusion; `vggt_dim` must be 2·vggt.embed_dim, `dino_dim` the
            DINOv3 width and `out_dim` the LLM hidden size (checked here when knowable from
            the configs, and again against the built modules).
        qwen: Qwen2.5-VL language backbone (local dir via `pretrained_dir`, else
            `model_config`).
        sampler: keyframe sampler; its `num_keyframes` is overwritten by `num_keyframes`.
        heatmap: heatmap head; its `input_dim` must equal the LLM hidden size.
        action: action head.
        num_keyframes: K, keyframes chosen among the HISTORY (the current frame excluded).
        pad_keyframes: when a sample has fewer than K history frames, take them all and pad
            the remaining slots with -1 (True, default); False raises ValueError instead.
        image_size: frames are resized to image_size x image_size; must be a multiple of
            VGGT's and DINOv3's patch sizes (224 = 16·14 for the full model).
        vggt_layer: index into VGGT's aggregator outputs whose patch tokens feed fusion
            (-1 = the last of `vggt.depth` layers).
        device_allocation: per-component devices (single device by default).
        autocast: run each component under `torch.autocast` when it sits on a CUDA device.
        autocast_dtype: `bfloat16` (default) or `float16`.
        stages: per-stage freezing (`vggt`, `pretrain`, `finetune`, `main`), see
            `StageSpec` (a mapping without `vggt`, from before that stage, gets its default).
        gradient_checkpointing: turn on activation checkpointing in VGGT's aggregator,
            DINOv3 and the LLM (written through to their configs).
        geometry_prior: give the heatmap head a frustum prior per keyframe
            (`habitat_fih.models.geometry_prior`): ``"none"`` (default), ``"vggt"`` (cameras
            from VGGT's predicted pose encodings, no extra input) or ``"input"`` (cameras
            given to `FIHModel.forward` as ``camera_poses``, e.g. the simulator's cameras from
            the ``frame_geometry`` sensor: perfect odometry, which benchmarks that allow only
            RGB-D + instruction forbid).
        prior_inverse_depths: depth hypotheses of the prior as inverse depths (0 = infinity),
            in the cameras' units (metres for ``"input"`` from the simulator); one prior
            channel each.
        target_kinds: the heatmap target kinds the head predicts, one output channel each, in
            `habitat_fih.models.losses.HEATMAP_KINDS` order (``covisibility``,
            ``camera_position``); the first is `FIHOutput.heatmap_logits`. The trainer sets it
            from ``habitat_baselines.fih.collection.target_kind``. Checkpoints written before
            this field existed load as ``("covisibility",)``.
        vggt_history: how VGGT's global attention sees the frame history. ``"full"``
            (VGGT as released, default): every frame attends to every other, so each step
            re-runs the aggregator over the whole history (the per-frame patch embedding and
            DINOv3 features are still computed once per frame across the steps of an episode,
            `habitat_fih.models.frame_cache.FrameCache`). ``"causal_cache"``: frame j attends
            only to the first frame and the `vggt_cache_window` frames before it, in training
            (a block-causal mask) and at acting time, where each frame is aggregated once, when
            it arrives, against a per-block key / value cache
            (`habitat_fih.models.vggt.streaming`): a step costs one frame's VGGT.
        vggt_cache_window: W of ``"causal_cache"`` (the design's 32-frame memory: 31).
        vggt_reference: the frame VGGT sees first, i.e. its reference frame (VGGT predicts
            every camera relative to its first input frame and normalises scale by it):
            ``"first"`` (default, VGGT as released: the oldest frame) or ``"current"`` (the
            current view, then the history oldest first). The heatmaps are drawn on the
            current view and need each keyframe's pose relative to it; with ``"current"``
            VGGT predicts exactly that pose, and a keyframe that shares no view with the
            oldest frame does not depend on a pose VGGT cannot observe. Only the input order
            changes (outputs come back in slot order). Needs ``vggt_history: full`` (the
            causal mask follows time order); the ``vggt`` stage's sequences follow the same
            order.
        vggt_heads: VGGT heads run by `FIHModel.forward`: ``"needed"`` (default) runs the
            point head (keyframe sampling reads the world points) and the camera head only when
            `geometry_prior` is ``"vggt"``; ``"all"`` also fills `FIHOutput.depth` / `pose_enc`.
        frame_cache: agents acting step by step (the trainer's `PolicyAgent`, `fih-infer
            --current-frame all`) keep a `FrameCache` per environment / video (True, default);
            False recomputes everything each step (for comparison).
        frame_cache_capacity: frames whose per-frame work a `FrameCache` keeps (least recently
            used dropped), per environment.
        offload: components kept on CPU and moved to the execution device only while they run
            (`habitat_fih.models.offload`; inference / evaluation only, runtime-only like the
            cache settings): any of ``vggt``, ``dinov3``, ``llm`` (or ``"all"``); empty =
            everything resident (default). Needs a single device (no per-component
            `device_allocation`).
        vggt_lora: peft LoRA adapters on VGGT's aggregator (`habitat_fih.models.vggt.lora`),
            trained in a stage with ``vggt_aggregator: lora`` and frozen in the others; off by
            default (r 16, alpha 32, no dropout, on the attention ``qkv`` / ``proj`` of every
            frame and global block: `VGGT_LORA_TARGETS`). Part of the architecture: a
            checkpoint trained with them is built with them.
    """

    vggt: VGGTConfig = field(default_factory=VGGTConfig.vggt_1b)
    vggt_dir: str | None = None
    dinov3: DINOv3BackboneConfig = field(
        default_factory=lambda: DINOv3BackboneConfig(
            model_config=dinov3_vitl16_config(), image_size=None, dtype="bfloat16"
        )
    )
    fusion: FusionConfig = field(
        default_factory=lambda: FusionConfig(vggt_dim=2048, dino_dim=1024, out_dim=3584)
    )
    qwen: QwenVLBackboneConfig = field(
        default_factory=lambda: QwenVLBackboneConfig(
            model_config=qwen25_vl_config("7b"), lora=LoRASettings(enabled=True)
        )
    )
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    heatmap: HeatmapHeadConfig = field(default_factory=lambda: HeatmapHeadConfig(input_dim=3584))
    action: ActionHeadConfig = field(default_factory=ActionHeadConfig)
    num_keyframes: int = 8
    pad_keyframes: bool = True
    image_size: int = 224
    vggt_layer: int = -1
    device_allocation: DeviceAllocation = field(default_factory=DeviceAllocation)
    autocast: bool = True
    autocast_dtype: str = "bfloat16"
    stages: dict[str, StageSpec] = field(default_factory=default_stages)
    gradient_checkpointing: bool = False
    geometry_prior: str = "none"
    prior_inverse_depths: tuple[float, ...] = (2.0, 1.0, 0.5, 0.25, 0.0)
    target_kinds: tuple[str, ...] = ("covisibility",)
    vggt_history: str = "full"
    vggt_cache_window: int = 31
    vggt_reference: str = "first"
    vggt_heads: str = "needed"
    frame_cache: bool = True
    frame_cache_capacity: int = 64
    offload: tuple[str, ...] = ()
    vggt_lora: LoRASettings = field(default_factory=lambda: LoRASettings(**_vggt_lora_defaults()))

    def __post_init__(self) -> None:
        for name, cls in _SUB_CONFIGS.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, _from_mapping(cls, value))
        if isinstance(self.vggt_lora, dict):  # unnamed keys: the field's defaults, not Qwen's
            self.vggt_lora = LoRASettings(**{**_vggt_lora_defaults(), **self.vggt_lora})
        self.stages = {
            k: (_from_mapping(StageSpec, v) if isinstance(v, dict) else v)
            for k, v in dict(self.stages).items()
        }
        _require(
            isinstance(self.num_keyframes, int)
            and not isinstance(self.num_keyframes, bool)
            and self.num_keyframes >= 1,
            f"FIHModelConfig.num_keyframes must be an int >= 1, got {self.num_keyframes!r}",
        )
        self.sampler.num_keyframes = self.num_keyframes
        dino_patch = self._dino_patch()
        lcm = math.lcm(self.vggt.patch_size, dino_patch)
        _require(
            isinstance(self.image_size, int) and self.image_size > 0 and self.image_size % lcm == 0,
            f"FIHModelConfig.image_size must be a positive multiple of {lcm} (VGGT patch "
            f"{self.vggt.patch_size}, DINOv3 patch {dino_patch}), got {self.image_size!r}",
        )
        _require(
            -self.vggt.depth <= self.vggt_layer < self.vggt.depth,
            f"FIHModelConfig.vggt_layer must be in [{-self.vggt.depth}, {self.vggt.depth}) for "
            f"VGGT depth {self.vggt.depth}, got {self.vggt_layer!r}",
        )
        _require(
            self.autocast_dtype in _AUTOCAST_DTYPES,
            f"FIHModelConfig.autocast_dtype must be one of {_AUTOCAST_DTYPES}, "
            f"got {self.autocast_dtype!r}",
        )
        _require(
            self.fusion.vggt_dim == 2 * self.vggt.embed_dim,
            f"FIHModelConfig.fusion.vggt_dim={self.fusion.vggt_dim} must be 2 * vggt.embed_dim "
            f"= {2 * self.vggt.embed_dim} (VGGT concatenates frame and global tokens)",
        )
        dino_dim = (self.dinov3.model_config or {}).get("hidden_size")
        _require(
            dino_dim is None or self.fusion.dino_dim == dino_dim,
            f"FIHModelConfig.fusion.dino_dim={self.fusion.dino_dim} must equal the DINOv3 "
            f"hidden_size={dino_dim}",
        )
        llm_dim = self.llm_hidden_size
        _require(
            llm_dim is None or self.fusion.out_dim == llm_dim,
            f"FIHModelConfig.fusion.out_dim={self.fusion.out_dim} must equal the LLM "
            f"hidden_size={llm_dim}",
        )
        _require(
            llm_dim is None or self.heatmap.input_dim == llm_dim,
            f"FIHModelConfig.heatmap.input_dim={self.heatmap.input_dim} must equal the LLM "
            f"hidden_size={llm_dim}",
        )
        # a config written before the vggt stage existed (an older checkpoint) gets its default
        self.stages.setdefault(VGGT_STAGE, default_stages()[VGGT_STAGE])
        missing = [s for s in TRAINING_STAGES if s not in self.stages]
        unknown = [s for s in self.stages if s not in TRAINING_STAGES]
        _require(
            not missing and not unknown,
            f"FIHModelConfig.stages must have exactly the keys {TRAINING_STAGES}; missing "
            f"{missing}, unknown {unknown}",
        )
        for stage, spec in self.stages.items():
            _require(
                spec.llm != "lora" or self.qwen.lora.enabled,
                f"FIHModelConfig.stages[{stage!r}].llm='lora' needs qwen.lora.enabled=True",
            )
            _require(
                not spec.train_vggt or spec.vggt_aggregator != "lora" or self.vggt_lora.enabled,
                f"FIHModelConfig.stages[{stage!r}].vggt_aggregator='lora' needs "
                "vggt_lora.enabled=True",
            )
        _require(
            self.geometry_prior in GEOMETRY_PRIORS,
            f"FIHModelConfig.geometry_prior must be one of {GEOMETRY_PRIORS}, "
            f"got {self.geometry_prior!r}",
        )
        self.prior_inverse_depths = tuple(float(x) for x in self.prior_inverse_depths)
        _require(
            len(self.prior_inverse_depths) > 0 and all(x >= 0 for x in self.prior_inverse_depths),
            "FIHModelConfig.prior_inverse_depths must be a non-empty list of values >= 0 "
            f"(0 = infinity), got {list(self.prior_inverse_depths)}",
        )
        _require(
            self.geometry_prior != "vggt" or self.vggt.enable_camera,
            "FIHModelConfig.geometry_prior='vggt' needs VGGT's camera head (vggt.enable_camera)",
        )
        self.target_kinds = tuple(self.target_kinds)
        _require(
            len(self.target_kinds) > 0
            and self.target_kinds == tuple(k for k in HEATMAP_KINDS if k in self.target_kinds),
            f"FIHModelConfig.target_kinds must be a non-empty subset of {list(HEATMAP_KINDS)} in "
            f"that order, got {list(self.target_kinds)}",
        )
        _require(
            self.vggt_history in VGGT_HISTORIES,
            f"FIHModelConfig.vggt_history must be one of {VGGT_HISTORIES}, "
            f"got {self.vggt_history!r}",
        )
        _require(
            self.vggt_reference in VGGT_REFERENCES,
            f"FIHModelConfig.vggt_reference must be one of {VGGT_REFERENCES}, "
            f"got {self.vggt_reference!r}",
        )
        _require(
            self.vggt_reference == "first" or self.vggt_history == "full",
            "FIHModelConfig.vggt_reference='current' needs vggt_history='full' (the causal "
            f"mask follows time order), got vggt_history={self.vggt_history!r}",
        )
        for name in ("vggt_cache_window", "frame_cache_capacity"):
            value = getattr(self, name)
            low = 0 if name == "vggt_cache_window" else 1
            _require(
                isinstance(value, int) and not isinstance(value, bool) and value >= low,
                f"FIHModelConfig.{name} must be an int >= {low}, got {value!r}",
            )
        _require(
            self.vggt_heads in VGGT_HEAD_CHOICES,
            f"FIHModelConfig.vggt_heads must be one of {VGGT_HEAD_CHOICES}, "
            f"got {self.vggt_heads!r}",
        )
        self.offload = offload_components(self.offload, where="FIHModelConfig.offload")
        _require(
            not self.offload or self.device_allocation.single_device,
            f"FIHModelConfig.offload={list(self.offload)} runs every component on one execution "
            f"device, but device_allocation sets devices per component "
            f"({self.device_allocation}): use one or the other",
        )
        if self.gradient_checkpointing:
            self.vggt.gradient_checkpointing = True
            self.qwen.gradient_checkpointing = True

    # ------------------------------------------------------------------ helpers
    def _dino_patch(self) -> int:
        if self.dinov3.model_config is not None:
            patch = self.dinov3.model_config.get("patch_size", 16)
            return int(patch if isinstance(patch, int) else patch[0])
        return 16  # every released DINOv3 ViT uses 16-px patches (checked again at build)

    @property
    def llm_hidden_size(self) -> int | None:
        """LLM hidden size from `qwen.model_config`, or None for a checkpoint directory."""
        if self.qwen.model_config is None:
            return None
        text = self.qwen.model_config.get("text_config", {})
        return text.get("hidden_size")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict; `FIHModelConfig.from_dict(d)` restores it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FIHModelConfig:
        """Build from a nested mapping (e.g. `OmegaConf.to_container` of a Hydra node)."""
        return _from_mapping(cls, dict(data))

    # ------------------------------------------------------------------ presets
    @classmethod
    def tiny(cls, **overrides: Any) -> FIHModelConfig:
        """A tiny model for CPU tests: 32² frames, K = 4, VGGT dim 32 (4 layers, 4-px patches),
        DINOv3 dim 32 (2 layers, 8-px patches), LLM hidden 32 (2 layers, LoRA r=4),
        16 tokens per frame, 16×16 heatmaps.

        The LLM's special-token ids match `tests/helpers/_tiny_qwen.py`; pass its tokenizer to
        `build_model`.
        """
        vggt = VGGTConfig.tiny(
            img_size=32,
            patch_embed=DinoV2Config(
                embed_dim=32, depth=1, num_heads=2, mlp_ratio=2.0, num_register_tokens=2
            ),
            camera_head=CameraHeadConfig(trunk_depth=1, num_heads=2, mlp_ratio=2.0),
            dpt=DPTHeadConfig(
                layer_indices=(0, 1, 2, 3),
                features=8,
                out_channels=(8, 8, 16, 16),
                hidden_channels=8,
                frames_chunk_size=0,
            ),
        )
        kwargs: dict[str, Any] = dict(
            vggt=vggt,
            dinov3=DINOv3BackboneConfig(
                model_config={
                    "hidden_size": 32,
                    "intermediate_size": 64,
                    "num_hidden_layers": 2,
                    "num_attention_heads": 4,
                    "num_register_tokens": 4,
                    "patch_size": 8,
                    "image_size": 32,
                },
                image_size=None,
                dtype="float32",
            ),
            fusion=FusionConfig(vggt_dim=64, dino_dim=32, out_dim=32, max_tokens_per_frame=16),
            qwen=QwenVLBackboneConfig(
                model_config=_tiny_qwen_config(),
                dtype="float32",
                attn_implementation="sdpa",
                lora=LoRASettings(enabled=True, r=4, alpha=8, dropout=0.0),
            ),
            sampler=SamplerConfig(),
            heatmap=HeatmapHeadConfig(
                input_dim=32,
                hidden_dim=16,
                num_heads=2,
                fuse_channels=16,
                decoder_channels=(8,),
                out_size=(16, 16),
            ),
            action=ActionHeadConfig(),
            num_keyframes=4,
            image_size=32,
        )
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def full(
        cls,
        llm: str = "7b",
        *,
        vggt_dir: str | None = None,
        dinov3_dir: str | None = None,
        qwen_dir: str | None = None,
        **overrides: Any,
    ) -> FIHModelConfig:
        """VGGT-1B + DINOv3 ViT-L/16 + Qwen2.5-VL-7B (`llm="7b"`) or -3B (`llm="3b"`).

        Each component is loaded from its local directory when given, otherwise randomly
        initialised from the released architecture. The LLM gets LoRA adapters (r = 16) so the
        `main` stage can train it; DINOv3 and the LLM are held in bfloat16, VGGT in float32
        (its DPT / camera heads run in float32), the trained parts in float32.
        """
        qwen_cfg = qwen25_vl_config(llm)
        hidden = qwen_cfg["text_config"]["hidden_size"]
        kwargs: dict[str, Any] = dict(
            vggt=VGGTConfig.vggt_1b(),
            vggt_dir=vggt_dir,
            dinov3=DINOv3BackboneConfig(
                pretrained_dir=dinov3_dir,
                model_config=None if dinov3_dir else dinov3_vitl16_config(),
                image_size=None,
                dtype="bfloat16",
            ),
            fusion=FusionConfig(vggt_dim=2048, dino_dim=1024, out_dim=hidden),
            qwen=QwenVLBackboneConfig(
                pretrained_dir=qwen_dir,
                model_config=None if qwen_dir else qwen_cfg,
                dtype="bfloat16",
                lora=LoRASettings(enabled=True),
            ),
            heatmap=HeatmapHeadConfig(input_dim=hidden),
        )
        kwargs.update(overrides)
        return cls(**kwargs)


def _from_mapping(cls: type, data: dict[str, Any]) -> Any:
    """Instantiate dataclass `cls` from a mapping, naming unknown keys."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; known keys: {sorted(known)}")
    if cls is FIHModelConfig:
        data = dict(data)
        for name, sub in _SUB_CONFIGS.items():
            if isinstance(data.get(name), dict):
                data[name] = _from_mapping(sub, data[name])
    if cls is QwenVLBackboneConfig and isinstance(data.get("lora"), dict):
        data = {**data, "lora": LoRASettings(**data["lora"])}
    if cls is VGGTConfig:
        return VGGTConfig(**data)  # handles its own nested dicts
    return cls(**data)
