"""Structured config of the ``fih`` trainer (``habitat_baselines.fih.*``).

`HabitatBaselinesFIHConfig` extends habitat-baselines' `HabitatBaselinesConfig` with one node,
``fih`` (`FIHTrainerConfig`), and is stored in Hydra's ConfigStore as
``habitat_baselines/habitat_baselines_fih_config_base`` next to habitat-baselines' own RL / IL
bases (never replacing them). Experiment yamls (``configs/habitat/fih/*.yaml``) compose it with
``- /habitat_baselines: habitat_baselines_fih_config_base``.

Generic settings are read from habitat-baselines' own keys: ``num_environments``,
``checkpoint_folder``, ``tensorboard_dir``, ``writer_type``, ``eval_ckpt_path_dir``,
``test_episode_count``, ``log_interval``, ``checkpoint_interval`` (in updates), ``evaluate``.

This module imports no simulator code (OmegaConf types: ``Optional`` rather than ``X | None``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional  # noqa: UP035  (OmegaConf needs typing.Optional)

from habitat_baselines.config.default_structured_configs import HabitatBaselinesConfig
from hydra.core.config_store import ConfigStore

__all__ = [
    "CollectionConfig",
    "DAggerConfig",
    "FIHEvalConfig",
    "FIHModelSpecConfig",
    "FIHTrainerConfig",
    "HabitatBaselinesFIHConfig",
    "OptimConfig",
    "STOP_RULES",
    "StopConfig",
    "register_trainer_configs",
    "stop_settings",
]


@dataclass
class FIHModelSpecConfig:
    """Which `FIHModelConfig` to build.

    Attributes:
        preset: ``tiny`` (CPU test model) or ``full`` (VGGT-1B + DINOv3-L + Qwen2.5-VL).
        llm: ``7b`` or ``3b`` (full preset only).
        vggt_dir / dinov3_dir / qwen_dir: local checkpoint directories (full preset); empty =
            random init.
        tokenizer_dir: tokenizer directory (Hugging Face format): Qwen's, or for the tiny
            configs the bundled data's word-level one (``data/tokenizer/synthetic_r2r``, set
            by ``fih/synthetic_tiny``); empty = ``qwen_dir`` or, for random-init configs, the
            stand-in word-level tokenizer (`habitat_fih.models.spec.tokenizer_for`).
        gradient_checkpointing: activation checkpointing in VGGT / DINOv3 / the LLM.
        require_pretrained: every one of vggt_dir / dinov3_dir / qwen_dir must be set (real
            benchmarks: no silent random init).
        overrides: nested mapping deep-merged into ``FIHModelConfig.to_dict()`` of the preset
            (e.g. ``{num_keyframes: 8, heatmap: {out_size: [32, 32]}}``).
    """

    preset: str = "tiny"
    llm: str = "7b"
    vggt_dir: str = ""
    dinov3_dir: str = ""
    qwen_dir: str = ""
    tokenizer_dir: str = ""
    gradient_checkpointing: bool = False
    require_pretrained: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class DAggerConfig:
    """Online DAgger (VLN-CE): iteration i takes the expert action with probability p**i.

    Attributes:
        iterations: DAgger iterations (collection + training each).
        p: base of beta = p**iteration (iteration 0 is pure expert); p = 1 is expert-only.
            A stage that does not train the action head (pretrain, finetune with
            ``action_weight: 0``) always collects with the expert (beta = 1).
        episodes_per_iteration: episodes collected per iteration on each rank.
        updates_per_iteration: optimiser updates after each collection.
    """

    iterations: int = 2
    p: float = 0.75
    episodes_per_iteration: int = 4
    updates_per_iteration: int = 10


@dataclass
class CollectionConfig:
    """How environment steps become training samples.

    Attributes:
        frame_size: stored RGB frames are resized to frame_size x frame_size (the model
            resizes again to its image_size; set them equal to avoid a second resize).
        max_frames: frames per sample (history + current view); longer memories are
            subsampled uniformly keeping the first and the latest frame.
        buffer_size: samples kept per rank (FIFO ring; the oldest are overwritten).
        start_method: multiprocessing start method of the VectorEnv workers; ``forkserver``
            preloads habitat_fih (import compatibility) in the server, ``fork`` also works.
        drop_measures: task measures removed from the config for speed (e.g. top_down_map).
        deterministic_policy: argmax (True) or sampled (False) policy actions when collecting.
        max_episode_steps: cap on steps per collected / evaluated episode (-1 = the env's).
        target_kind: heatmap targets trained: ``covisibility`` (default), ``camera_position``
            (a Gaussian at each keyframe camera's projection on the current view, trained only
            where that camera is IN_VIEW) or ``both`` (the head gets one output channel per
            kind; `FIHModelConfig.target_kinds`). The ``frame_heatmaps`` sensor's
            ``target_kinds`` must include them. Each kind's loss terms are weighted by
            ``losses.<stage>.camera_position_weight`` (1) on top of the terms' own weights and
            logged with a ``_camera_position`` suffix.
        vggt_sequence: the frames of a ``vggt``-stage sample (always ``max_frames`` of them):
            ``memory`` (default: the frame set the FIH model sees at that step, memory frames
            then the current view) or ``recent`` (the last ``max_frames`` steps, consecutive:
            small baselines, from which a from-scratch VGGT learns relative poses first).
    """

    frame_size: int = 32
    max_frames: int = 9
    buffer_size: int = 2000
    start_method: str = "forkserver"
    drop_measures: list[str] = field(default_factory=lambda: ["top_down_map"])
    deterministic_policy: bool = False
    max_episode_steps: int = -1
    target_kind: str = "covisibility"
    vggt_sequence: str = "memory"


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay, gradient clipping and accumulation.

    Attributes:
        batch_size: samples per micro-batch; an update sees batch_size * grad_accumulation.
        min_lr_ratio: final lr / peak lr of the cosine.
    """

    lr: float = 2.5e-4
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    warmup_updates: int = 5
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    grad_accumulation: int = 1
    batch_size: int = 8


@dataclass
class FIHEvalConfig:
    """Evaluation (``habitat_baselines.evaluate=True``).

    Attributes:
        split: dataset split evaluated.
        agent: ``policy`` (the checkpoint(s) at ``eval_ckpt_path_dir``) or a baseline:
            ``random``, ``forward``, ``uniform``, ``center``, ``expert``.
        action_source: the policy agent's actions: ``policy`` (its own, the benchmark) or
            ``expert`` (teacher-forced trajectory: scores heatmaps on the expert's path, the
            same path the heatmap baselines see with ``baseline_actions=expert``).
        baseline_actions: actions of the heatmap baselines (``expert`` or ``forward``).
        uniform_value: value of every cell of the uniform heatmap baseline.
        center_sigma: sigma of the centre-prior Gaussian, as a fraction of the map side.
        deterministic: argmax actions (True) or sampled ones (seeded).
        results_dir: where stats_*.json and the per-episode files go.
        png_episodes: episode ids whose predicted vs target heatmaps are saved as PNGs.
        paired_baselines: also score the uniform and centre-prior maps on exactly the policy's
            (step, keyframe) pairs (``paired_heatmap.*`` in the stats; see
            `habitat_fih.trainers.evaluation.PairedHeatmapScores`), and, when the task has the
            ``frame_geometry`` sensor, the non-learned frustum map (``frustum``).
        frustum_floor: value of the frustum baseline outside every frustum (see
            `habitat_fih.trainers.evaluation.FrustumBaseline`).
    """

    split: str = "val_seen"
    agent: str = "policy"
    action_source: str = "policy"
    baseline_actions: str = "expert"
    uniform_value: float = 0.5
    center_sigma: float = 0.25
    deterministic: bool = True
    results_dir: str = "data/fih/eval"
    png_episodes: list[str] = field(default_factory=list)
    paired_baselines: bool = True
    frustum_floor: float = 0.3


#: when the policy stops (`StopConfig.rule`)
STOP_RULES = ("action", "goal_distance", "never")


@dataclass
class StopConfig:
    """When the policy calls STOP, in collection (DAgger's policy steps) and evaluation alike
    (`habitat_fih.trainers.evaluation.PolicyAgent`).

    Attributes:
        rule: ``action`` (STOP when it wins the action head's argmax / sample: VLN-CE's rule),
            ``goal_distance`` (STOP exactly when the progress monitor's predicted remaining
            distance is below `distance`; needs ``model.overrides.action.goal_distance``) or
            ``never`` (only the other actions; for threshold studies).
        distance: metres, the ``goal_distance`` rule's threshold (choose it on train episodes:
            ``scripts/stop_threshold.py``). Not a resume setting: a finished run may be
            evaluated with another threshold.
    """

    rule: str = "action"
    distance: float = 1.5


def stop_settings(trainer_config: Any) -> dict[str, Any]:
    """``rule`` and ``distance`` of ``habitat_baselines.fih.stop`` (`trainer_config`), with
    `StopConfig`'s defaults where the node or a key is absent (a config composed without the
    registered structured config)."""
    node = trainer_config.get("stop", None) or {}
    defaults = asdict(StopConfig())
    return {key: node.get(key, value) for key, value in defaults.items()}


@dataclass
class FIHTrainerConfig:
    """The ``fih`` trainer (`habitat_fih.trainers.fih_trainer.FIHTrainer`).

    Attributes:
        stage: ``pretrain`` (one past frame + the current view: single images as 1-frame
            videos), ``finetune`` (frame-indexed heatmaps), ``main`` (heatmaps + actions) or
            ``vggt`` (VGGT's cameras / depth / points on the simulator's geometry,
            `habitat_fih.trainers.vggt_stage`).
        pretrained_checkpoint: a checkpoint file of an earlier stage, or a folder (its last
            ckpt.<i>.pth), whose model weights start this run (the design's
            --pretrain_checkpoint); ignored when resuming this run.
        seed: seeds the model init, episode assignment, DAgger coin flips and sampling.
        device: ``auto`` (cuda:local_rank if available, else cpu), ``cpu`` or ``cuda``.
        torch_threads: torch's intra-op threads in the trainer process: 0 (auto) = 1 on CPU
            (torch's default of every core spins against the environment workers: 22x slower
            policy steps measured on a loaded 2-core machine) and torch's default on CUDA;
            N > 0 sets N (`habitat_fih.utils.threads`).
        stop: when the policy stops (`StopConfig`).
        losses: per-stage loss overrides, e.g. ``{main: {action_weight: 2.0}}``; the vggt
            stage's under ``vggt`` (`VGGTLossConfig`, e.g. ``{vggt: {depth_weight: 0.5}}``).
        stop_after_updates: stop (as if killed) after this many updates of this process
            (-1 = never); the run continues with the same command (resume).
        keep_checkpoints: ckpt.*.pth files kept (oldest removed; -1 keeps all).
        save_buffer: store the replay buffer next to the resume state (exact resume; without
            it a resumed run collects the current iteration again and loses earlier samples).
        dist_backend: ``auto`` (nccl on GPU, gloo on CPU), ``gloo`` or ``nccl``.
        find_unused_parameters: DDP option (the design sets it True).
        resume_with_changed_settings: a resume whose seed / optim / dagger / collection /
            losses differ from the run it continues is refused (naming the keys) unless True;
            then it continues with the new values (`habitat_fih.trainers.settings`).
        schedule: stages run one after another by one command, each a mapping of overrides of
            this node with at least ``stage`` (e.g. ``[{stage: pretrain, dagger:
            {iterations: 1}}, {stage: main}]``); stage k > 0 starts from stage k-1's last
            checkpoint (the first from ``pretrained_checkpoint`` if set). Earlier stages write to
            ``checkpoint_folder/stage{k}_{stage}`` (TensorBoard: ``tensorboard_dir/stage{k}_{stage}``),
            the last stage to ``checkpoint_folder`` itself (so evaluation finds it); a finished
            stage leaves ``stage_done.json`` and is skipped when the command is run again.
            Empty (default): one run of ``stage``.
    """

    stage: str = "main"
    pretrained_checkpoint: str = ""
    seed: int = 1
    device: str = "auto"
    torch_threads: int = 0
    model: FIHModelSpecConfig = field(default_factory=FIHModelSpecConfig)
    losses: dict[str, Any] = field(default_factory=dict)
    dagger: DAggerConfig = field(default_factory=DAggerConfig)
    collection: CollectionConfig = field(default_factory=CollectionConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: FIHEvalConfig = field(default_factory=FIHEvalConfig)
    stop: StopConfig = field(default_factory=StopConfig)
    stop_after_updates: int = -1
    keep_checkpoints: int = -1
    save_buffer: bool = True
    dist_backend: str = "auto"
    find_unused_parameters: bool = True
    resume_state_file: Optional[str] = None  # noqa: UP045  (default: checkpoint_folder/.resume_state.pth)
    resume_with_changed_settings: bool = False
    schedule: list[Any] = field(default_factory=list)


@dataclass
class HabitatBaselinesFIHConfig(HabitatBaselinesConfig):
    """habitat-baselines' base config plus the ``fih`` trainer node."""

    fih: FIHTrainerConfig = field(default_factory=FIHTrainerConfig)


def register_trainer_configs() -> None:
    """Store the fih base config in Hydra's ConfigStore (idempotent)."""
    ConfigStore.instance().store(
        group="habitat_baselines",
        name="habitat_baselines_fih_config_base",
        node=HabitatBaselinesFIHConfig,
    )


register_trainer_configs()
