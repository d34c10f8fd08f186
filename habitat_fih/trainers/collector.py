"""Online collection on a habitat `VectorEnv`: environments, frame histories, DAgger rollouts.

- `FIHEnv`: a `habitat.RLEnv` over FIH-VLN-v0 whose info is the episode metrics and which can
  be reset to a chosen episode (`reset_to`), so episode assignment is explicit and seeded.
- `make_fih_env` / `build_vector_env`: a module-level env factory (picklable; importing this
  module imports habitat_fih first, so the import compatibility layer is active in every
  worker) and the `VectorEnv` around it (`habitat_fih.trainers.worker_errors`: a worker's
  exception reaches the main process as one `EnvWorkerError` naming the env, the call and the
  episode, not an ``EOFError``), built after `check_data` validated the inputs
  (`habitat_fih.trainers.inputs`). With the default ``forkserver`` start method the fork
  server preloads ``habitat_fih`` (habitat's own worker function is unpickled before the
  factory, so the compatibility layer must already be there); ``fork`` works too.
- `FrameHistory` (`habitat_fih.trainers.frame_history`, re-exported): per environment, the
  frames of the task's memory plus the current one; in the ``vggt`` stage also their cameras
  and depths.
- `StepView`: one environment's view at one step and the training `Sample` made from it (in
  pretraining with the alignment term, with its cross-frame token pairs,
  `habitat_fih.trainers.correspondences`).
- `run_episodes`: lock-step rollouts of a list of episodes over the environments (static
  round-robin assignment, so batches and results do not depend on timing); a ``decide``
  callback picks every environment's action from `StepView` s.
- `DAggerDecider`: expert with probability beta = p**iteration, else the policy.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import habitat
import numpy as np
import torch
from habitat.config import read_write
from habitat.core.vector_env import VectorEnv

import habitat_fih  # noqa: F401  (compat layer + registrations before any habitat env is built)
from habitat_fih.geometry import CameraStatus
from habitat_fih.models.vggt.pose_encoding import extri_intri_to_pose_encoding
from habitat_fih.tasks.fih_task import PREDICTION_KEY
from habitat_fih.trainers.buffer import Sample
from habitat_fih.trainers.correspondences import CorrespondenceSettings, view_correspondences
from habitat_fih.trainers.frame_history import GEOMETRY_UUID, FrameHistory, KeptGeometry
from habitat_fih.trainers.inputs import validate_inputs
from habitat_fih.trainers.vggt_samples import VGGTSample, geometry_rows, view_vggt_sample
from habitat_fih.trainers.worker_errors import ReportingVectorEnv, report_paths, write_report

__all__ = [
    "EpisodeResult",
    "FIHEnv",
    "FrameHistory",
    "StepView",
    "area_resize",
    "build_vector_env",
    "make_fih_env",
    "run_episodes",
    "sort_episode_ids",
]


HEATMAP_UUID = "frame_heatmaps"
#: the measure the progress monitor's target (`StepView.goal_distance`) is read from
GOAL_DISTANCE_MEASURE = "distance_to_goal"
EXPERT_UUID = "shortest_path_sensor"


def frame_geometry_poses(geometry: dict[str, Any], steps: Sequence[int]) -> np.ndarray:
    """VGGT pose encodings [len(steps), 9] float32 (absT_quaR_FoV) of the given step indices
    from a ``frame_geometry`` observation (OpenCV extrinsics relative to the episode's first
    pose, pinhole intrinsics with the principal point at the image centre).

    Raises:
        ValueError: a step that the observation holds no valid camera for.
    """
    rows = geometry_rows(geometry, steps)
    ext = torch.as_tensor(np.asarray(geometry["extrinsics"])[rows], dtype=torch.float64)
    intr = torch.as_tensor(np.asarray(geometry["intrinsics"])[rows], dtype=torch.float64)
    height, width = float(2 * intr[0, 1, 2]), float(2 * intr[0, 0, 2])
    enc = extri_intri_to_pose_encoding(ext, intr, (height, width))
    return enc.numpy().astype(np.float32)


def sort_episode_ids(ids: Iterable[str]) -> list[str]:
    """Episode ids sorted numerically when all are integers, else as strings."""
    ids = list(ids)
    if all(i.isdigit() for i in ids):
        return sorted(ids, key=int)
    return sorted(ids)


class FIHEnv(habitat.RLEnv):
    """RLEnv whose ``info`` is habitat's metrics; reward 0 (imitation learning)."""

    def __init__(self, config: Any, dataset: Any = None, report: str | None = None) -> None:
        super().__init__(config, dataset)
        self._by_id = {str(ep.episode_id): ep for ep in self._env.episodes}
        self.original_action_space = self.action_space  # read by VectorEnv
        self._report = report

    def _reported(self, during: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``; an exception is written to the worker's report first."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            episode = self._env.current_episode
            eid = kwargs.get("episode_id", None if episode is None else episode.episode_id)
            write_report(self._report, during, eid, exc)
            raise

    def reset(self, *args: Any, **kwargs: Any) -> Any:
        return self._reported("reset", super().reset, *args, **kwargs)

    def step(self, *args: Any, **kwargs: Any) -> Any:
        return self._reported("step", super().step, *args, **kwargs)

    def episode_ids(self) -> list[str]:
        """Every episode id, sorted (numerically when all are integers): habitat's episode
        iterator shuffles the dataset's list in place with ``habitat.seed``, so its order would
        make "the first N episodes" depend on the seed (and on the process at seed 0)."""
        return sort_episode_ids(str(ep.episode_id) for ep in self._env.episodes)

    def reset_to(self, episode_id: str) -> dict[str, Any]:
        """Reset into the episode with this id (KeyError naming it when absent)."""
        return self._reported("reset_to", self._reset_to, episode_id=episode_id)

    def _reset_to(self, episode_id: str) -> dict[str, Any]:
        if episode_id not in self._by_id:
            raise KeyError(f"episode {episode_id!r} is not in this environment's dataset")
        self._env.current_episode = self._by_id[episode_id]
        return super().reset()

    def goal_distance(self) -> float:
        """The ``distance_to_goal`` measure now (metres; NaN when the task lacks it): the
        progress monitor's target at an episode's first step (later steps read it from
        ``info``)."""
        return float(self._env.get_metrics().get(GOAL_DISTANCE_MEASURE, math.nan))

    def get_reward_range(self) -> tuple[float, float]:
        return (0.0, 0.0)

    def get_reward(self, observations: Any) -> float:
        return 0.0

    def get_done(self, observations: Any) -> bool:
        return self._env.episode_over

    def get_info(self, observations: Any) -> dict[str, Any]:
        return self._env.get_metrics()


def make_fih_env(config: Any, seed: int, report: str | None = None) -> FIHEnv:
    """Env factory run inside each VectorEnv worker; with `report`, an exception in the
    constructor or in a later call is written there before it ends the worker
    (`habitat_fih.trainers.worker_errors`)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        env = FIHEnv(config, report=report)
        env.seed(seed)
    except Exception as exc:
        write_report(report, "the environment's construction", None, exc)
        raise
    return env


def env_config(config: Any, split: str | None, drop_measures: Sequence[str]) -> Any:
    """A copy of `config` for the environments: the split (and NDTW's matching split) set,
    the measures in `drop_measures` removed."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(OmegaConf.to_container(config, resolve=True))
    with read_write(cfg):
        if split is not None:
            cfg.habitat.dataset.split = split
        # NDTW reads {split}_gt.json.gz: always the split these environments load
        ndtw = cfg.habitat.task.measurements.get("ndtw")
        if ndtw is not None and "split" in ndtw:
            ndtw.split = cfg.habitat.dataset.split
        for name in drop_measures:
            if name in cfg.habitat.task.measurements:
                cfg.habitat.task.measurements.pop(name)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def check_data(config: Any) -> None:
    """One clear error (a `~habitat_fih.trainers.inputs.FIHRunError`) when the split's episodes,
    their scenes or start positions, or a task value would fail inside an environment worker
    (`~habitat_fih.trainers.inputs.validate_inputs`; the data checks are cached per process)."""
    validate_inputs(config)


def build_vector_env(
    config: Any, num_envs: int, seed: int, start_method: str = "forkserver"
) -> VectorEnv:
    """`num_envs` FIHEnv workers over the same config (episodes are assigned explicitly)."""
    check_data(config)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if start_method == "forkserver":
        multiprocessing.get_context("forkserver").set_forkserver_preload(["habitat_fih"])
    reports = report_paths(num_envs)
    return ReportingVectorEnv(
        reports,
        make_env_fn=make_fih_env,
        env_fn_args=[(config, seed + i, reports[i]) for i in range(num_envs)],
        auto_reset_done=False,
        multiprocessing_start_method=start_method,
    )


def area_resize(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[N, h, w] -> [N, *size] by area averaging (exact block mean when sizes divide)."""
    n, h, w = maps.shape
    th, tw = size
    if (h, w) == (th, tw):
        return maps.astype(np.float32, copy=False)
    if h % th == 0 and w % tw == 0:
        return maps.reshape(n, th, h // th, tw, w // tw).mean((2, 4)).astype(np.float32)
    return (
        np.stack(
            [cv2.resize(m.astype(np.float32), (tw, th), interpolation=cv2.INTER_AREA) for m in maps]
        )
        if n
        else np.zeros((0, th, tw), np.float32)
    )


@dataclass
class StepView:
    """What an agent sees in one environment at one step."""

    env_index: int
    episode_id: str
    step: int
    observations: dict[str, Any]
    instruction: str
    expert_action: int
    frames: np.ndarray  # [S, H, W, 3] uint8, current last
    indices: np.ndarray  # [S] int64
    geometry: KeptGeometry | None = None  # the frames' cameras and depth (vggt stage)
    depth: np.ndarray | None = None  # [H, W] metres, the action head's depth input (NavDepth)
    previous_action: int = -1  # the action taken at the previous step (-1 at step 0)
    # metres to the goal (the ``distance_to_goal`` measure) here, the progress monitor's
    # target; NaN when the task has no such measure
    goal_distance: float = math.nan

    _poses: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def camera_poses(self) -> np.ndarray | None:
        """VGGT pose encodings [S, 9] of the view's frames (`frame_geometry_poses`, computed
        once per view), or None when the task has no ``frame_geometry`` sensor."""
        geometry = self.observations.get(GEOMETRY_UUID)
        if geometry is None:
            return None
        if self._poses is None:
            self._poses = frame_geometry_poses(geometry, self.indices)
        return self._poses

    def targets(
        self, size: tuple[int, int], kind: str = "covisibility"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Targets [S, *size] (area-resized) and validity [S] of the view's frames, of `kind`:
        ``covisibility`` (valid: the sensor's ``covisibility_valid``) or ``camera_position``
        (the Gaussian at the frame camera's projection; valid iff its
        ``camera_position_status`` is IN_VIEW). A kind the ``frame_heatmaps`` sensor does not
        emit is a KeyError naming its ``target_kinds``."""
        heat = self.observations[HEATMAP_UUID]
        if kind not in heat:
            raise KeyError(
                f"target kind {kind!r} is not in the {HEATMAP_UUID!r} observation (keys "
                f"{sorted(heat)}): add it to habitat.task.lab_sensors.{HEATMAP_UUID}.target_kinds"
            )
        if kind == "camera_position":
            ok = np.asarray(heat["camera_position_status"]) == int(CameraStatus.IN_VIEW)
        else:
            ok = np.asarray(heat[f"{kind}_valid"]).astype(bool)
        slot_of = {int(s): j for j, s in enumerate(heat["frame_indices"]) if s >= 0}
        maps = np.zeros((len(self.indices), *size), dtype=np.float32)
        valid = np.zeros(len(self.indices), dtype=bool)
        rows = [(i, slot_of[int(s)]) for i, s in enumerate(self.indices) if int(s) in slot_of]
        if rows:
            src = area_resize(heat[kind][[j for _, j in rows]], size)
            for (i, j), m in zip(rows, src, strict=True):
                maps[i] = m
                valid[i] = bool(ok[j])
        return maps, valid

    def vggt_sample(self, reference: str = "first") -> VGGTSample | None:
        """The ``vggt`` stage's sample of this view's frames, VGGT's reference frame first
        (`habitat_fih.trainers.vggt_samples.view_vggt_sample`)."""
        return view_vggt_sample(self.frames, self.indices, self.geometry, reference)

    def correspondences(
        self, settings: CorrespondenceSettings, indices: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Alignment pairs [S, N, 2] and mask [S, N] of `indices` (default the view's frames;
        the current step last) with the current view
        (`habitat_fih.trainers.correspondences.view_correspondences`), or None when the task
        lacks the ``frame_geometry`` sensor or the covisibility targets."""
        return view_correspondences(
            self.observations.get(GEOMETRY_UUID),
            self.observations[HEATMAP_UUID],
            list(self.indices if indices is None else indices),
            settings,
            self.episode_id,
            self.step,
        )

    def sample(
        self,
        size: tuple[int, int],
        action_weight: float,
        single_frame_rng: np.random.Generator | None,
        alignment: CorrespondenceSettings | None = None,
        kinds: Sequence[str] = ("covisibility",),
    ) -> Sample | None:
        """A training sample with the targets of `kinds` (the first is `Sample.targets`, the
        others `Sample.extra_targets`); with `single_frame_rng` (pretrain) one random past
        frame with a valid target (of any of the kinds) plus the current view, or None when
        there is none. With `alignment`, the sample also carries its frames' cross-frame token
        pairs (None ones when the task lacks the sensors they are made from)."""
        if not kinds:
            raise ValueError("a sample needs at least one target kind")
        per_kind = {kind: self.targets(size, kind) for kind in kinds}
        maps, valid = per_kind[kinds[0]]
        frames, indices, poses = self.frames, self.indices, self.camera_poses()
        if single_frame_rng is not None:
            candidates = np.flatnonzero(np.any([v for _, v in per_kind.values()], axis=0))
            if len(candidates) == 0:
                return None
            j = int(single_frame_rng.choice(candidates))
            keep = [j, len(indices) - 1]
            frames, indices = frames[keep], indices[keep]
            per_kind = {k: (m[keep], v[keep]) for k, (m, v) in per_kind.items()}
            maps, valid = per_kind[kinds[0]]
            poses = None if poses is None else poses[keep]
        pairs = None if alignment is None else self.correspondences(alignment, indices)
        return Sample(
            frames=frames.copy(),
            indices=indices.astype(np.int64),
            targets=maps.astype(np.float16),
            valid=valid,
            instruction=self.instruction,
            expert_action=self.expert_action,
            action_weight=action_weight,
            poses=poses,
            depth=None if self.depth is None else self.depth.astype(np.float16),
            previous_action=self.previous_action,
            goal_distance=float(self.goal_distance),
            align_pairs=None if pairs is None else pairs[0],
            align_mask=None if pairs is None else pairs[1],
            align_grid=None if pairs is None else alignment.grid,  # type: ignore[union-attr]
            target_kind=kinds[0],
            extra_targets={
                k: (m.astype(np.float16), v) for k, (m, v) in per_kind.items() if k != kinds[0]
            }
            or None,
        )


@dataclass
class EpisodeResult:
    episode_id: str
    metrics: dict[str, Any]
    steps: int


@dataclass
class RolloutStats:
    env_steps: int = 0
    seconds: float = 0.0
    episodes: list[EpisodeResult] = field(default_factory=list)

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / self.seconds if self.seconds > 0 else 0.0


def _instruction_text(observations: dict[str, Any]) -> str:
    value = observations.get("instruction")
    if isinstance(value, dict) and "text" in value:
        return str(value["text"])
    raise KeyError(
        "observation 'instruction' must carry the instruction text (habitat's InstructionSensor)"
    )


Decide = Callable[[list[StepView]], list[dict[str, Any]]]
OnStep = Callable[[StepView, dict[str, Any]], None]


def make_action(action: int, prediction: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The VectorEnv action of one env, with optional predicted heatmaps for the measures."""
    args: dict[str, Any] = {}
    if prediction is not None:
        args[PREDICTION_KEY] = prediction
    return {"action": int(action), "action_args": args}


def run_episodes(
    envs: VectorEnv,
    episode_ids: Sequence[str],
    decide: Decide,
    history_factory: Callable[[], FrameHistory],
    on_step: OnStep | None = None,
    max_episode_steps: int = -1,
    progress: Any = None,
) -> RolloutStats:
    """Run every episode in `episode_ids` once, in lock step over the environments.

    Env i runs episodes i, i + N, i + 2N, ... (N = envs.num_envs). At each step `decide`
    gets the views of all running envs (in env order) and returns their actions; `on_step`
    sees each (view, action) before the step. Returns per-episode metrics and throughput.
    """
    n = envs.num_envs
    queues = [list(episode_ids[i::n]) for i in range(n)]
    histories = [history_factory() for _ in range(n)]
    obs: list[dict[str, Any] | None] = [None] * n
    current: list[str | None] = [None] * n
    steps = [0] * n
    last_action = [-1] * n  # the action each env took at its previous step
    distance = [math.nan] * n  # each env's distance_to_goal at its current step
    stats = RolloutStats()
    start = time.perf_counter()

    def begin(i: int) -> None:
        if not queues[i]:
            obs[i], current[i] = None, None
            return
        current[i] = queues[i].pop(0)
        obs[i] = envs.call_at(i, "reset_to", {"episode_id": current[i]})
        steps[i] = 0
        last_action[i] = -1
        distance[i] = float(envs.call_at(i, "goal_distance"))
        histories[i].reset()

    for i in range(n):
        begin(i)
    while any(o is not None for o in obs):
        views: list[StepView] = []
        for i in range(n):
            o = obs[i]
            if o is None:
                continue
            memory = o[HEATMAP_UUID]["frame_indices"]
            histories[i].update(steps[i], o["rgb"], memory, o.get(GEOMETRY_UUID), o)
            # (recent vggt sequences: the vggt stage's expert-driven collection, no policy)
            slots = histories[i].sequence_slots(steps[i], memory)
            views.append(
                StepView(
                    env_index=i,
                    episode_id=str(current[i]),
                    step=steps[i],
                    observations=o,
                    instruction=_instruction_text(o),
                    expert_action=int(np.asarray(o[EXPERT_UUID]).reshape(-1)[0]),
                    frames=np.stack([histories[i].frames[s] for s in slots]),
                    indices=np.asarray(slots, dtype=np.int64),
                    geometry=histories[i].view_geometry(slots),
                    depth=histories[i].current_depth,
                    previous_action=last_action[i],
                    goal_distance=distance[i],
                )
            )
        actions = decide(views)
        if len(actions) != len(views):
            raise ValueError(f"decide returned {len(actions)} actions for {len(views)} envs")
        for view, action in zip(views, actions, strict=True):
            if on_step is not None:
                on_step(view, action)
            envs.async_step_at(view.env_index, action)
            last_action[view.env_index] = int(action["action"])
        for view in views:
            i = view.env_index
            o, _, done, info = envs.wait_step_at(i)
            steps[i] += 1
            stats.env_steps += 1
            capped = 0 < max_episode_steps <= steps[i]
            if done or capped:
                stats.episodes.append(EpisodeResult(str(current[i]), info, steps[i]))
                if progress is not None:
                    progress.update(1)
                begin(i)
            else:
                obs[i] = o
                distance[i] = float(info.get(GOAL_DISTANCE_MEASURE, math.nan))
    stats.seconds = time.perf_counter() - start
    return stats


class DAggerDecider:
    """Expert action with probability beta, else the policy's (VLN-CE DAgger)."""

    def __init__(
        self,
        beta: float,
        rng: np.random.Generator,
        policy_act: Callable[[list[StepView]], list[int]] | None,
    ) -> None:
        if beta < 1.0 and policy_act is None:
            raise ValueError(f"beta={beta} < 1 needs a policy")
        self.beta = beta
        self.rng = rng
        self.policy_act = policy_act
        self.expert_steps = 0
        self.policy_steps = 0

    def __call__(self, views: list[StepView]) -> list[dict[str, Any]]:
        use_expert = self.rng.random(len(views)) < self.beta
        actions = [v.expert_action for v in views]
        need = [v for v, e in zip(views, use_expert, strict=True) if not e]
        if need:
            assert self.policy_act is not None
            chosen = iter(self.policy_act(need))
            actions = [a if e else next(chosen) for a, e in zip(actions, use_expert, strict=True)]
        self.expert_steps += int(use_expert.sum())
        self.policy_steps += int((~use_expert).sum())
        return [make_action(a) for a in actions]


def torch_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))
