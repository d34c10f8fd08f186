"""`fih-infer`'s engine: build the model once, then frame-indexed heatmaps for any video.

Where the model comes from (`resolve_model`), in this order:

1. ``--checkpoint ckpt.<i>.pth`` (an fih trainer checkpoint): its saved model config, with the
   local model directories of ``--vggt-dir`` / ``--dinov3-dir`` / ``--qwen-dir`` (or the config
   file's ``model``) put in for components the checkpoint does not carry, and its weights.
2. A model spec (the config file's ``model``, or model directories on the command line: then
   ``preset: full``): `habitat_fih.models.spec.build_model_config`, weights from the dirs.
3. Nothing: the random-init tiny model. fih-infer says so in one line, so the command always
   runs and nobody mistakes its maps for a trained model's.

A checkpoint trained with ``geometry_prior: input`` reads the cameras of every frame: it runs on
a video only with ``--geometry-from SIDECAR`` (known cameras), else one clear error.

Per video (`InferenceEngine.run`), with the current view = the LAST chosen frame (and with
``current_frame: all`` every chosen frame in turn, the keyframes then chosen among the frames
before it):

* ``heatmaps: model`` — the full model (VGGT → sampler → DINOv3 → fusion → Qwen → heads); maps
  are the sigmoid of the heatmap logits (predicted co-visibility fractions);
* ``heatmaps: geometry`` — VGGT alone (or a sidecar, no network at all), the sampler on its
  world points, and the co-visibility rule of the FIH targets (`habitat_fih.infer.geometry_maps`).

Stage times and memory come from one `habitat_fih.utils.perf.PerformanceMonitor`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from habitat_fih.datasets.sidecar import Sidecar, SidecarError, read_sidecar
from habitat_fih.infer.geometry_maps import (
    FrameGeometry,
    check_frame_count,
    from_sidecar,
    from_vggt,
    sidecar_pose_encodings,
)
from habitat_fih.infer.settings import InferInputError, InferSettings
from habitat_fih.infer.video import Video, read_video
from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.factory import ComponentLoadError, build_model, build_vggt_component
from habitat_fih.models.frame_cache import FrameCache
from habitat_fih.models.sampling import select_keyframes
from habitat_fih.models.sampling_scores import selection_scores
from habitat_fih.models.spec import build_model_config, deep_merge, tokenizer_for
from habitat_fih.utils.perf import PerformanceMonitor

logger = logging.getLogger(__name__)

__all__ = ["FrameMaps", "InferResult", "InferenceEngine", "ModelSource", "resolve_model"]

ACTIONS = ("STOP", "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT")
RANDOM_TINY_NOTE = (
    "fih-infer: no --checkpoint and no model directories: running the RANDOM-INIT tiny model "
    "(its maps and actions mean nothing; give --checkpoint or --vggt-dir/--dinov3-dir/--qwen-dir)"
)


@dataclass
class ModelSource:
    """Where the model's weights came from (written to metrics.json)."""

    kind: str  # "checkpoint" | "model directories" | "random init"
    checkpoint: str | None = None
    directories: dict[str, str] = field(default_factory=dict)
    random_components: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.kind == "random init":
            return f"random init ({', '.join(self.random_components)})"
        parts = [self.kind]
        if self.checkpoint:
            parts.append(self.checkpoint)
        if self.directories:
            parts.append(", ".join(f"{k}={v}" for k, v in self.directories.items()))
        if self.random_components:
            parts.append("random init: " + ", ".join(self.random_components))
        return "; ".join(parts)


@dataclass
class FrameMaps:
    """The keyframes' maps on one current view (original frame indices)."""

    current: int
    keyframes: list[int]
    maps: np.ndarray  # [K, h, w] float32 in [0, 1]
    valid: list[bool] | None = None  # geometry maps: overlap > min_overlap
    action_probs: dict[str, float] | None = None  # model maps: the action head's softmax


@dataclass
class InferResult:
    """One video's result."""

    video: Video
    instruction: str
    algorithm: str
    heatmap_source: str
    last: FrameMaps
    per_frame: list[FrameMaps] | None
    scores: dict[str, float]
    monitor: dict[str, Any]


def _directories(config: FIHModelConfig) -> dict[str, str]:
    dirs = {
        "vggt": config.vggt_dir,
        "dinov3": config.dinov3.pretrained_dir,
        "qwen": config.qwen.pretrained_dir,
    }
    return {k: v for k, v in dirs.items() if v}


def _with_dirs(config: FIHModelConfig, spec: dict[str, Any]) -> FIHModelConfig:
    """`config` with the spec's local model directories put in."""
    extra: dict[str, Any] = {}
    if spec.get("vggt_dir"):
        extra["vggt_dir"] = spec["vggt_dir"]
    if spec.get("dinov3_dir"):
        extra["dinov3"] = {"pretrained_dir": spec["dinov3_dir"], "model_config": None}
    if spec.get("qwen_dir"):
        extra["qwen"] = {"pretrained_dir": spec["qwen_dir"], "model_config": None}
    if spec.get("tokenizer_dir"):
        extra.setdefault("qwen", {})["tokenizer_dir"] = spec["tokenizer_dir"]
    if not extra:
        return config
    return FIHModelConfig.from_dict(deep_merge(config.to_dict(), extra))


def resolve_model(
    settings: InferSettings,
) -> tuple[FIHModelConfig, ModelSource, dict[str, Any] | None]:
    """(model config, source, checkpoint payload or None); see the module docstring."""
    from habitat_fih.trainers.checkpoint import CorruptCheckpointError, load_checkpoint

    spec = dict(settings.model)
    if settings.checkpoint:
        try:
            payload = load_checkpoint(settings.checkpoint)
        except (CorruptCheckpointError, FileNotFoundError) as err:
            raise InferInputError(f"--checkpoint: {err}") from None
        saved = payload.get("model_config")
        if saved is None:
            raise InferInputError(
                f"--checkpoint {settings.checkpoint!r}: it holds no model_config (not written "
                "by the fih trainer)"
            )
        config = _with_dirs(FIHModelConfig.from_dict(saved), spec)
        _check_video_inputs(config, f"--checkpoint {settings.checkpoint!r}")
        source = ModelSource("checkpoint", settings.checkpoint, _directories(config))
        return config, source, payload
    dirs_given = any(spec.get(k) for k in ("vggt_dir", "dinov3_dir", "qwen_dir"))
    spec.setdefault("preset", "full" if dirs_given else "tiny")
    spec.setdefault("llm", "7b")
    try:
        config = build_model_config(spec, where="model")
    except (FileNotFoundError, ValueError, KeyError, TypeError) as err:
        raise InferInputError(f"model spec: {err}") from None
    _check_video_inputs(config, "model spec")
    dirs = _directories(config)
    random = [name for name in ("vggt", "dinov3", "qwen") if name not in dirs]
    kind = "model directories" if dirs else "random init"
    return config, ModelSource(kind, None, dirs, random), None


def _check_video_inputs(config: FIHModelConfig, where: str) -> None:
    """A video has frames and an instruction only: a model whose action head also reads depth
    or the previous action (``action.inputs``, the simulator-side navigation inputs) is
    refused rather than fed made-up values."""
    if config.action.inputs:
        raise InferInputError(
            f"{where}: its action head reads {list(config.action.inputs)} "
            "(FIHModelConfig.action.inputs), which a video does not have; fih-infer runs models "
            "whose action head reads the frames and the instruction only"
        )


def _device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(choice)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InferInputError(f"--device {choice!r}: CUDA is not available on this machine")
    return device


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class InferenceEngine:
    """Builds the model (or VGGT alone) once; `run` computes one video's maps."""

    def __init__(
        self,
        settings: InferSettings,
        monitor: PerformanceMonitor | None = None,
        note: Callable[[str], None] = _note,
    ) -> None:
        self.settings = settings
        self.device = _device(settings.device)
        self.monitor = monitor or PerformanceMonitor(self.device)
        self.config, self.source, payload = resolve_model(settings)
        if settings.offload and settings.heatmaps == "model":  # (--offload wins over the config)
            try:
                self.config = replace(self.config, offload=settings.offload)
            except ValueError as err:
                raise InferInputError(f"--offload: {err}") from None
        self.sidecar: Sidecar | None = None
        if settings.geometry_from:
            try:
                self.sidecar = read_sidecar(settings.geometry_from)
            except SidecarError as err:
                raise InferInputError(str(err)) from None
        if (
            settings.heatmaps == "model"
            and self.config.geometry_prior == "input"
            and self.sidecar is None
        ):
            raise InferInputError(
                "this model was trained with geometry_prior='input' (it reads every frame's "
                "camera pose, e.g. the simulator's): give --geometry-from SIDECAR with the "
                "video's known cameras (python -m habitat_fih.datasets.record writes one), or "
                "use --heatmaps geometry"
            )
        if settings.heatmaps == "geometry":  # VGGT alone, or no network at all
            if self.sidecar is not None:
                self.source = ModelSource("none: geometry maps from the sidecar")
            else:
                self.source.random_components = [
                    c for c in self.source.random_components if c == "vggt"
                ]
        self._note = note
        self._payload = payload
        self.built = False
        self.model: Any = None
        self.vggt: Any = None

    # ------------------------------------------------------------------ build
    def build(self) -> None:
        """Build the network(s) once (a no-op afterwards); the first `run` calls it. Says in
        one line when components are random-init."""
        if self.built:
            return
        used = self.source.random_components
        if used:
            tiny = (
                self.source.kind == "random init"
                and self.config.vggt_dir is None
                and (self.settings.model.get("preset", "tiny") == "tiny")
            )
            self._note(
                RANDOM_TINY_NOTE
                if tiny
                else f"fih-infer: no weights for {', '.join(used)}: RANDOM-INIT (their outputs "
                "mean nothing)"
            )
        with self.monitor.stage("build"), torch.no_grad():
            self._build(self._payload)
        self._payload = None  # the weights now live in the model
        self.built = True

    def _build(self, payload: dict[str, Any] | None) -> None:
        settings = self.settings
        needs_vggt = settings.heatmaps == "model" or self.sidecar is None
        if not needs_vggt:
            return  # geometry maps from the sidecar: no network at all
        try:
            if settings.heatmaps == "model":
                self.model = build_model(
                    self.config, tokenizer=tokenizer_for(self.config), device=self.device
                )
                if payload is not None:
                    from habitat_fih.trainers.checkpoint import (
                        IncompatibleCheckpointError,
                        load_model_weights,
                    )

                    try:
                        load_model_weights(self.model, payload, self.config, settings.checkpoint)
                    except IncompatibleCheckpointError as err:
                        raise InferInputError(str(err)) from None
                self.model.eval()
            else:
                with torch.device(self.device):
                    self.vggt = build_vggt_component(self.config)
                if payload is not None:
                    state = {
                        k[len("vggt.") :]: v
                        for k, v in payload["model"].items()
                        if k.startswith("vggt.")
                    }
                    if state:
                        self.vggt.load_state_dict(state, strict=True)
                self.vggt.eval()
        except (ComponentLoadError, FileNotFoundError) as err:
            raise InferInputError(f"model: {err}") from None

    # ------------------------------------------------------------------ per video
    def read(self, source: str) -> Video:
        v = self.settings.video
        with self.monitor.stage("read"):
            return read_video(
                source, v.max_frames, v.selection, self.config.image_size, v.display_size
            )

    def check_keyframes(self, video: Video) -> int:
        """K for `video` (`InferInputError` when it has too few frames for K keyframes)."""
        k = self.settings.num_keyframes or self.config.num_keyframes
        history = len(video.indices) - 1
        if k > history:
            raise InferInputError(
                f"--num-keyframes {k}: the video {video.source!r} gives {len(video.indices)} "
                f"frames, i.e. at most {history} keyframes before the current (last) frame"
            )
        return k

    def run(self, video: Video, instruction: str, algorithm: str | None = None) -> InferResult:
        """Maps of `video` for `instruction` with sampler `algorithm` (default the settings')."""
        algorithm = algorithm or self.settings.algorithm
        k = self.check_keyframes(video)
        self.build()
        sampler = replace(self.config.sampler, algorithm=algorithm, num_keyframes=k)
        currents = (
            list(range(1, len(video.indices)))
            if self.settings.current_frame == "all"
            else [len(video.indices) - 1]
        )
        with torch.no_grad():
            if self.settings.heatmaps == "model":
                self.model.config = replace(self.model.config, num_keyframes=k, sampler=sampler)
                per_frame, scores = self._run_model(video, instruction, currents, sampler)
            else:
                per_frame, scores = self._run_geometry(video, currents, k, sampler)
        if self.settings.current_frame == "all":
            first = FrameMaps(int(video.indices[0]), [], np.zeros((0, *self.out_size), np.float32))
            per_frame = [first, *per_frame]
        return InferResult(
            video=video,
            instruction=instruction,
            algorithm=algorithm,
            heatmap_source=self.settings.heatmaps
            + (f" ({self.sidecar_origin})" if self.settings.heatmaps == "geometry" else ""),
            last=per_frame[-1],
            per_frame=per_frame if self.settings.current_frame == "all" else None,
            scores=scores,
            monitor=self.monitor.summary(),
        )

    @property
    def out_size(self) -> tuple[int, int]:
        return tuple(self.config.heatmap.out_size)  # type: ignore[return-value]

    @property
    def sidecar_origin(self) -> str:
        return "sidecar" if self.sidecar is not None else "vggt"

    def _progress(self, items: list[int], what: str):
        from tqdm import tqdm

        return tqdm(items, desc=what, leave=False, disable=len(items) < 2, file=sys.stderr)

    def _run_model(
        self, video: Video, instruction: str, currents: list[int], sampler: Any
    ) -> tuple[list[FrameMaps], dict[str, float]]:
        model = self.model
        model.stage_hook = self.monitor
        frames = torch.from_numpy(video.frames).permute(0, 3, 1, 2).float() / 255.0  # [N, 3, R, R]
        indices = torch.as_tensor(video.indices, dtype=torch.long)
        poses = None
        if self.sidecar is not None and self.config.geometry_prior == "input":  # else unread
            check_frame_count(self.sidecar, video.total_frames, str(self.settings.geometry_from))
            poses = sidecar_pose_encodings(self.sidecar, video.indices)  # [N, 9]
        out_maps: list[FrameMaps] = []
        scores: dict[str, float] = {}
        # --current-frame all: per-frame work done once over the video's prefixes
        caches = [FrameCache(self.config.frame_cache_capacity)] if self.config.frame_cache else None
        try:
            for c in self._progress(currents, f"{video.name}: model"):
                n = c + 1
                out = model(
                    frames[None, :n].to(self.device),
                    None,
                    indices[None, :n].to(self.device),
                    [instruction],
                    None if poses is None else poses[None, :n].to(self.device),
                    caches=caches,
                )
                valid = out.keyframe_valid[0].cpu()
                keys = out.keyframe_indices[0].cpu()[valid].tolist()
                maps = torch.sigmoid(out.heatmap_logits[0].float()).cpu()[valid].numpy()
                probs = out.action_logits[0].float().softmax(-1).cpu().tolist()
                out_maps.append(
                    FrameMaps(
                        int(indices[c]),
                        [int(x) for x in keys],
                        maps.astype(np.float32),
                        action_probs=dict(zip(ACTIONS, probs, strict=False)),
                    )
                )
                if c == currents[-1]:
                    slots = out.keyframe_slots[0].cpu()[valid].tolist()
                    scores = selection_scores(
                        out.world_points[0, :c].float().cpu(),
                        out.world_points_conf[0, :c].float().cpu(),
                        slots,
                        sampler,
                    )
        finally:
            model.stage_hook = None
        return out_maps, scores

    def _geometry(self, video: Video) -> FrameGeometry:
        if self.sidecar is not None:
            with self.monitor.stage("geometry_source"):
                return from_sidecar(
                    self.sidecar, video.indices, video.total_frames, self.settings.geometry_from
                )
        frames = torch.from_numpy(video.frames).permute(0, 3, 1, 2).float() / 255.0
        with self.monitor.stage("vggt"):
            out = self.vggt(frames[None].to(self.device))
        with self.monitor.stage("geometry_source"):
            return from_vggt(out, video.size, self.settings.geometry)

    def _run_geometry(
        self, video: Video, currents: list[int], k: int, sampler: Any
    ) -> tuple[list[FrameMaps], dict[str, float]]:
        geo = self._geometry(video)
        points = torch.from_numpy(geo.world_points)
        conf = torch.from_numpy(geo.world_points_conf)
        out_maps: list[FrameMaps] = []
        scores: dict[str, float] = {}
        for c in self._progress(currents, f"{video.name}: geometry"):
            with self.monitor.stage("sampling"):
                if c > k:
                    keys = select_keyframes(points[:c], conf[:c], k, sampler).tolist()
                else:
                    keys = list(range(c))
            with self.monitor.stage("heatmaps"):
                maps, valid, _ = geo.maps(c, keys, self.out_size)
            out_maps.append(
                FrameMaps(
                    int(video.indices[c]),
                    [int(video.indices[i]) for i in keys],
                    maps,
                    valid=[bool(v) for v in valid],
                )
            )
            if c == currents[-1]:
                scores = selection_scores(points[:c], conf[:c], keys, sampler)
        return out_maps, scores
