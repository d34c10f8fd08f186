"""`fih-infer`'s settings: the ``--config`` yaml file, the command-line flags over it, checks.

The config file (every key optional; a flag given on the command line wins over the file):

.. code-block:: yaml

    model:              # a model spec, as habitat_baselines.fih.model (habitat_fih.models.spec)
      preset: tiny      # tiny | full
      llm: 7b           # 3b | 7b (preset full)
      vggt_dir: null    # local VGGT-1B directory (official layout)
      dinov3_dir: null  # local DINOv3 HF directory
      qwen_dir: null    # local Qwen2.5-VL HF directory
      overrides: {}     # any FIHModelConfig field
    checkpoint: null    # an fih trainer checkpoint (ckpt.<i>.pth); its model config wins
    heatmaps: model     # model | geometry
    geometry_from: null # a geometry sidecar (habitat_fih.datasets.sidecar)
    current_frame: last # last | all
    device: auto        # auto | cpu | cuda | cuda:<i>
    offload: []         # components kept on CPU between their stages: vggt, dinov3, llm | all
    video:
      max_frames: 32    # frames taken from the video
      selection: uniform  # uniform (cover the whole video) | first (the first max_frames)
      display_size: 256 # longer side of the frames drawn in keyframes.png / heatmaps.png
    sampling:
      algorithm: enhanced  # enhanced | quality | fast
      num_keyframes: null  # null = the model config's num_keyframes
    geometry:           # --heatmaps geometry from VGGT (a sidecar brings its own values)
      working_resolution: 64
      abs_tol: 0.05
      rel_tol: 0.02
      min_overlap: 0.01
    output:
      output_dir: ./outputs
      fps: null         # heatmaps.mp4's frame rate; null = the video's (5 for image folders)

Every problem is ONE `InferInputError` naming the value and what was expected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from habitat_fih.models.offload import OFFLOADABLE, offload_components

__all__ = [
    "ALGORITHMS",
    "GeometrySettings",
    "InferInputError",
    "InferSettings",
    "OutputSettings",
    "VideoSettings",
    "load_settings",
]

ALGORITHMS = ("enhanced", "quality", "fast")
HEATMAP_SOURCES = ("model", "geometry")
CURRENT_FRAMES = ("last", "all")
SELECTIONS = ("uniform", "first")
#: the components ``--offload`` may name (`habitat_fih.models.offload.OFFLOADABLE`)
OFFLOAD_CHOICES = OFFLOADABLE
MODEL_KEYS = (
    "preset",
    "llm",
    "vggt_dir",
    "dinov3_dir",
    "qwen_dir",
    "tokenizer_dir",
    "overrides",
    "require_pretrained",
    "gradient_checkpointing",
)


class InferInputError(ValueError):
    """Bad input to fih-infer; the message is one line naming the value and what was expected."""


@dataclass
class VideoSettings:
    max_frames: int = 32
    selection: str = "uniform"
    display_size: int = 256


@dataclass
class GeometrySettings:
    working_resolution: int = 64
    abs_tol: float = 0.05
    rel_tol: float = 0.02
    min_overlap: float = 0.01


@dataclass
class OutputSettings:
    output_dir: str = "./outputs"
    fps: float | None = None


@dataclass
class InferSettings:
    """Everything one fih-infer run needs besides the videos and the instruction."""

    model: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    heatmaps: str = "model"
    geometry_from: str | None = None
    current_frame: str = "last"
    device: str = "auto"
    offload: tuple[str, ...] = ()
    algorithm: str = "enhanced"
    num_keyframes: int | None = None
    video: VideoSettings = field(default_factory=VideoSettings)
    geometry: GeometrySettings = field(default_factory=GeometrySettings)
    output: OutputSettings = field(default_factory=OutputSettings)

    def check(self) -> InferSettings:
        """Range / choice checks (`InferInputError` on the first bad value); returns self
        (`offload` normalised to a tuple of component names)."""
        self.offload = _offload(self.offload)
        _choice("--algorithm", self.algorithm, ALGORITHMS)
        _choice("--heatmaps", self.heatmaps, HEATMAP_SOURCES)
        _choice("--current-frame", self.current_frame, CURRENT_FRAMES)
        _choice("video.selection", self.video.selection, SELECTIONS)
        _positive_int("--max-frames", self.video.max_frames, minimum=2)
        _positive_int("video.display_size", self.video.display_size, minimum=16)
        if self.num_keyframes is not None:
            _positive_int("--num-keyframes", self.num_keyframes, minimum=1)
        _positive_int("geometry.working_resolution", self.geometry.working_resolution, minimum=1)
        for name in ("abs_tol", "rel_tol", "min_overlap"):
            value = getattr(self.geometry, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise InferInputError(f"geometry.{name}={value!r}: expected a number >= 0")
        fps = self.output.fps
        if fps is not None and (not isinstance(fps, int | float) or fps <= 0):
            raise InferInputError(f"output.fps={fps!r}: expected a number > 0 or null")
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            raise InferInputError(
                f"--device {self.device!r}: expected auto, cpu, cuda or cuda:<index>"
            )
        bad = sorted(set(self.model) - set(MODEL_KEYS))
        if bad:
            raise InferInputError(f"model: unknown keys {bad}; expected some of {list(MODEL_KEYS)}")
        for path_key, what in (
            ("checkpoint", "--checkpoint"),
            ("geometry_from", "--geometry-from"),
        ):
            path = getattr(self, path_key)
            if path is not None and not os.path.isfile(path):
                raise InferInputError(f"{what} {path!r}: no such file")
        return self


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InferInputError(f"{name} {value!r}: expected one of {', '.join(choices)}")


def _offload(value: Any) -> tuple[str, ...]:
    """``--offload vggt,llm`` / ``all`` / ``none``, or the config file's list -> names
    (`offload_components`; its error becomes one `InferInputError`)."""
    try:
        return offload_components(value)
    except ValueError:
        raise InferInputError(
            f"--offload {value!r}: expected distinct names among {', '.join(OFFLOAD_CHOICES)} "
            "(comma-separated) or all"
        ) from None


def _positive_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InferInputError(f"{name} {value!r}: expected an integer >= {minimum}")


def _section(cls: type, data: Any, where: str) -> Any:
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise InferInputError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = [f.name for f in fields(cls)]
    bad = sorted(set(data) - set(names))
    if bad:
        raise InferInputError(f"{where}: unknown keys {bad}; expected some of {names}")
    return cls(**data)


_TOP_KEYS = (
    "model",
    "checkpoint",
    "heatmaps",
    "geometry_from",
    "current_frame",
    "device",
    "offload",
    "video",
    "sampling",
    "geometry",
    "output",
)


def settings_from_dict(data: Any, where: str = "--config") -> InferSettings:
    """`InferSettings` from the parsed config file (module docstring), unchecked."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InferInputError(
            f"{where}: expected a yaml mapping at the top, got {type(data).__name__}"
        )
    bad = sorted(set(data) - set(_TOP_KEYS))
    if bad:
        raise InferInputError(f"{where}: unknown keys {bad}; expected some of {list(_TOP_KEYS)}")
    sampling = data.get("sampling") or {}
    if not isinstance(sampling, dict) or set(sampling) - {"algorithm", "num_keyframes"}:
        raise InferInputError(
            f"{where}: sampling must be a mapping with algorithm / num_keyframes, got {sampling!r}"
        )
    model = data.get("model") or {}
    if not isinstance(model, dict):
        raise InferInputError(f"{where}: model must be a mapping, got {type(model).__name__}")
    scalars = {
        k: data[k]
        for k in ("checkpoint", "heatmaps", "geometry_from", "current_frame", "device", "offload")
        if data.get(k) is not None
    }
    return InferSettings(
        model=dict(model),
        algorithm=sampling.get("algorithm", "enhanced"),
        num_keyframes=sampling.get("num_keyframes"),
        video=_section(VideoSettings, data.get("video"), f"{where}: video"),
        geometry=_section(GeometrySettings, data.get("geometry"), f"{where}: geometry"),
        output=_section(OutputSettings, data.get("output"), f"{where}: output"),
        **scalars,
    )


def read_config_file(path: str) -> InferSettings:
    """Parse a ``--config`` yaml file into (unchecked) settings."""
    import yaml

    if not os.path.isfile(path):
        raise InferInputError(f"--config {path!r}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InferInputError(f"--config {path!r}: not valid yaml ({first})") from None
    try:
        return settings_from_dict(data, f"--config {path!r}")
    except TypeError as exc:  # a section's constructor rejected a value
        raise InferInputError(f"--config {path!r}: {exc}") from None


def load_settings(config_file: str | None, flags: dict[str, Any]) -> InferSettings:
    """The config file's settings (defaults without one) with every non-None flag applied over
    them, checked. `flags` keys: the `InferSettings` fields, ``max_frames``, ``output_dir``,
    ``vggt_dir`` / ``dinov3_dir`` / ``qwen_dir`` / ``llm`` (into the model spec)."""
    settings = read_config_file(config_file) if config_file else InferSettings()
    flags = {k: v for k, v in flags.items() if v is not None}
    model = dict(settings.model)
    for key in ("vggt_dir", "dinov3_dir", "qwen_dir", "llm"):
        if key in flags:
            model[key] = flags.pop(key)
    video = settings.video
    if "max_frames" in flags:
        video = replace(video, max_frames=flags.pop("max_frames"))
    output = settings.output
    if "output_dir" in flags:
        output = replace(output, output_dir=flags.pop("output_dir"))
    return replace(settings, model=model, video=video, output=output, **flags).check()
