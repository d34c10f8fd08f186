"""Episode-metric evaluation: the policy agent, metric flattening and the stats files.

`PolicyAgent` runs `FIHPolicy` alone (no expert; or on the expert's path with
``action_source="expert"`` to score heatmaps on a fixed trajectory) and passes its predicted
heatmaps (sigmoid of the logits, keyed by the keyframes' original step indices) back to the
task with each action. `evaluate` rolls out every episode and `write_stats` writes

- ``stats_{tag}_{split}.json``: the mean over episodes of every scalar episode metric, dict
  metrics flattened (``frame_heatmap_quality.kl``, ``collisions.count``, ...); heatmap
  metrics are averaged over the episodes that scored any pair (NaN-aware), JSON ``null`` when
  none did; plus ``num_episodes``;
- ``episodes_{tag}_{split}.json``: the flattened metrics of each episode.

`PairedHeatmapScores` (``fih.eval.paired_baselines``) scores the policy's maps and the uniform
and centre-prior baseline maps (and, with camera poses, the non-learned `FrustumBaseline`) on
exactly the same (step, keyframe) pairs — the keyframes the policy chose — and adds them to each
episode as ``paired_heatmap.{model,uniform,center[,frustum]}.{kl,iou,peak_error}`` (plus
``paired_heatmap.scored``): a like-for-like answer to "did the model
learn anything?" that the stand-alone baseline agents (scored on every past frame of the
frame history, not only the policy's keyframes) cannot give. Likewise for actions,
`ActionAgreement` adds ``action_agreement.{rate,always_forward,steps}``: how often the policy's
own action equals the expert's, next to what always-forward would score on the same steps.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

from habitat_fih.config.trainer_configs import STOP_RULES
from habitat_fih.models.frame_cache import FrameCache
from habitat_fih.models.geometry_prior import frustum_prior
from habitat_fih.models.loss_terms import STOP_ACTION
from habitat_fih.models.policy import FIHPolicy
from habitat_fih.tasks.fih_task import PREDICTION_KEY
from habitat_fih.tasks.heatmap_measures import heatmap_scores
from habitat_fih.trainers.baselines import ActionAgreement
from habitat_fih.trainers.buffer import Sample, collate
from habitat_fih.trainers.checkpoint import atomic_write_json
from habitat_fih.trainers.collector import EpisodeResult, StepView, make_action

__all__ = [
    "FrustumBaseline",
    "PairBaseline",
    "PairedHeatmapScores",
    "PolicyAgent",
    "flatten_metrics",
    "save_heatmap_png",
    "summarize",
    "views_to_observations",
    "write_stats",
]

SKIP_METRICS = ("top_down_map",)


def save_heatmap_png(
    path: str,
    view: StepView,
    prediction: dict[str, Any],
    tile: int = 96,
    frustum: FrustumBaseline | None = None,
) -> None:
    """One PNG per step: a row per predicted keyframe (at most 6) with that keyframe's frame,
    the predicted map and the target map (covisibility; camera positions for a model that
    predicts only those), both overlaid on the current view, and, with
    `frustum`, the frustum map of the same keyframe."""
    import cv2

    # the covisibility maps, or the camera-position ones of a model that predicts only those
    kind = "covisibility" if "maps" in prediction else "camera_position"
    source = prediction if kind == "covisibility" else prediction.get(kind)
    if source is None:
        return
    maps = np.asarray(source["maps"])
    keys = [int(k) for k in np.asarray(source["frame_indices"]).reshape(-1)]
    if not keys:
        return
    targets, valid = view.targets(tuple(maps.shape[1:]), kind)
    slot = {int(s): i for i, s in enumerate(view.indices)}
    current = cv2.resize(view.frames[-1], (tile, tile), interpolation=cv2.INTER_NEAREST)

    def overlay(m: np.ndarray) -> np.ndarray:
        heat = cv2.applyColorMap(
            (np.clip(cv2.resize(m.astype(np.float32), (tile, tile)), 0, 1) * 255).astype(np.uint8),
            cv2.COLORMAP_JET,
        )[..., ::-1]
        return (0.5 * current + 0.5 * heat).astype(np.uint8)

    rows = []
    for k, m in list(zip(keys, maps, strict=True))[:6]:
        i = slot.get(k)
        frame = (
            cv2.resize(view.frames[i], (tile, tile)) if i is not None else np.zeros_like(current)
        )
        target = targets[i] if i is not None and valid[i] else np.zeros_like(m)
        tiles = [frame, overlay(m), overlay(target)]
        if frustum is not None:
            prior = frustum(view, i, tuple(m.shape)) if i is not None else np.zeros_like(m)
            tiles.append(overlay(prior))
        rows.append(np.concatenate(tiles, axis=1))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.concatenate(rows, axis=0)[..., ::-1])


def views_to_observations(views: Sequence[StepView]) -> dict[str, Any]:
    """`FIHPolicy` observations (no targets needed) for a list of views."""
    samples = [
        Sample(
            frames=v.frames,
            indices=v.indices,
            targets=np.zeros((len(v.indices), 1, 1), np.float16),
            valid=np.zeros(len(v.indices), bool),
            instruction=v.instruction,
            expert_action=v.expert_action,
            poses=v.camera_poses(),
            depth=v.depth,
            previous_action=v.previous_action,
        )
        for v in views
    ]
    obs = collate(samples)
    for key in (
        "fih_heatmaps",
        "fih_heatmaps_valid",
        "expert_action",
        "action_weights",
        "goal_distance",
    ):
        obs.pop(key)
    return obs


class PolicyAgent:
    """Decider that acts with the policy (argmax or seeded sampling) and predicts heatmaps;
    `agreement` counts how often its own action matches the expert's (`ActionAgreement`).

    When it stops (`STOP_RULES`, ``habitat_baselines.fih.stop``): ``action`` — when STOP wins
    the action head's argmax (or sample), VLN-CE's rule; ``goal_distance`` — exactly when the
    progress monitor's predicted remaining distance (`FIHOutput.goal_distance`) is below
    `stop_distance` metres, the other steps acting on the non-STOP actions alone;
    ``never`` — never (the non-STOP actions alone), the rollout from which every threshold's
    stopping step can be read off (`trace`), since the path up to it does not depend on the
    threshold."""

    def __init__(
        self,
        policy: FIHPolicy,
        device: torch.device,
        deterministic: bool = True,
        generator: torch.Generator | None = None,
        action_source: str = "policy",
        predict_heatmaps: bool = True,
        stop_rule: str = "action",
        stop_distance: float = 1.5,
        trace: bool = False,
    ) -> None:
        if action_source not in ("policy", "expert"):
            raise ValueError(f"action_source must be 'policy' or 'expert', got {action_source!r}")
        if stop_rule not in STOP_RULES:
            raise ValueError(f"stop rule must be one of {list(STOP_RULES)}, got {stop_rule!r}")
        if not stop_distance > 0:
            raise ValueError(f"stop distance must be > 0 metres, got {stop_distance!r}")
        self.stop_rule = stop_rule
        self.stop_distance = float(stop_distance)
        # with `trace`: one dict per decided view (episode_id, step, goal_distance,
        # predicted_distance, p_stop), for choosing a stop threshold (scripts/stop_threshold.py)
        self.trace: list[dict[str, Any]] | None = [] if trace else None
        self.policy = policy
        self.device = device
        self.deterministic = deterministic
        self.generator = generator or torch.Generator().manual_seed(0)
        self.action_source = action_source
        self.predict_heatmaps = predict_heatmaps
        self.agreement = ActionAgreement()
        # env index -> (episode id, last step, cache); an agent lives for one rollout, so the
        # caches never outlive the weights they were filled with
        self._caches: dict[int, tuple[str, int, FrameCache]] = {}

    def model_config(self) -> Any:
        """The policy's `FIHModelConfig`, None for a stand-in policy without a model."""
        return getattr(getattr(self.policy, "model", None), "config", None)

    def caches_for(self, views: Sequence[StepView]) -> list[FrameCache] | None:
        """One `FrameCache` per environment (`FIHModelConfig.frame_cache`), reset when the
        environment starts an episode (step 0, another episode, or a step back)."""
        config = self.model_config()
        if config is None or not config.frame_cache:  # (a stand-in policy has no model)
            return None
        capacity = config.frame_cache_capacity
        out = []
        for view in views:
            entry = self._caches.get(view.env_index)
            same_episode = entry is not None and entry[0] == view.episode_id
            cache = entry[2] if same_episode and view.step > entry[1] else FrameCache(capacity)
            self._caches[view.env_index] = (view.episode_id, view.step, cache)
            out.append(cache)
        return out

    @torch.no_grad()
    def forward(self, views: Sequence[StepView]) -> tuple[list[int], Any]:
        obs = views_to_observations(views)
        obs = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in obs.items()}
        caches = self.caches_for(views)
        if caches is None:
            output = self.policy(obs)
        else:
            output = self.policy.model(
                *self.policy.model_inputs(obs), caches=caches, **self.policy.action_inputs(obs)
            )
        logits = output.action_logits.float().cpu()
        distance = getattr(output, "goal_distance", None)  # (a stand-in policy may lack it)
        if self.stop_rule == "goal_distance" and distance is None:
            raise ValueError(
                "stop rule 'goal_distance' needs a model that predicts the distance to the goal "
                "(habitat_baselines.fih.model.overrides.action.goal_distance=true)"
            )
        distance = None if distance is None else distance.float().cpu()
        if self.trace is not None:
            p_stop = logits.softmax(-1)[:, STOP_ACTION]
            for i, view in enumerate(views):
                self.trace.append(
                    {
                        "episode_id": view.episode_id,
                        "step": view.step,
                        "goal_distance": float(view.goal_distance),
                        "predicted_distance": None if distance is None else float(distance[i]),
                        "p_stop": float(p_stop[i]),
                    }
                )
        if self.stop_rule != "action":  # STOP is the rule's, not the head's
            logits[:, STOP_ACTION] = -math.inf
        if self.deterministic:
            actions = logits.argmax(-1)
        else:
            actions = torch.multinomial(logits.softmax(-1), 1, generator=self.generator)[:, 0]
        if self.stop_rule == "goal_distance":
            assert distance is not None
            actions = torch.where(distance < self.stop_distance, STOP_ACTION, actions)
        return actions.tolist(), output

    def act(self, views: list[StepView]) -> list[int]:
        return self.forward(views)[0]

    def __call__(self, views: list[StepView]) -> list[dict[str, Any]]:
        actions, output = self.forward(views)
        # per kind: covisibility as "maps" (frame_heatmap_quality), camera positions as
        # "camera_position" (frame_camera_position_quality)
        kinds = (
            output.logits_by_kind()
            if hasattr(output, "logits_by_kind")
            else {"covisibility": output.heatmap_logits}
        )
        by_kind = {k: torch.sigmoid(v.float()).cpu().numpy() for k, v in kinds.items()}
        keys = output.keyframe_indices.cpu().numpy()
        # the cameras the model's frustum prior read (VGGT's, `geometry_prior: vggt`): the
        # predicted-camera frustum baseline scores them (`FrustumBaseline(cameras="prediction")`)
        config = self.model_config()
        pose_enc = getattr(output, "pose_enc", None)
        camera_poses = (
            pose_enc.float().cpu().numpy()
            if pose_enc is not None and getattr(config, "geometry_prior", None) == "vggt"
            else None
        )
        out = []
        for i, view in enumerate(views):
            prediction = None
            if self.predict_heatmaps:
                real = keys[i] >= 0
                prediction = {}
                if "covisibility" in by_kind:
                    prediction["maps"] = by_kind["covisibility"][i][real]
                prediction["frame_indices"] = keys[i][real]
                if camera_poses is not None:  # per history slot of this view
                    prediction["camera_poses"] = camera_poses[i][: len(view.indices)]
                if "camera_position" in by_kind:
                    prediction["camera_position"] = {
                        "maps": by_kind["camera_position"][i][real],
                        "frame_indices": keys[i][real],
                    }
            self.agreement.record(view.episode_id, actions[i], view.expert_action)
            action = actions[i] if self.action_source == "policy" else view.expert_action
            out.append(make_action(action, prediction))
        return out


class PairBaseline(Protocol):
    """A heatmap baseline that depends on the pair: ``(view, history slot, (h, w)) -> map``."""

    def __call__(self, view: StepView, slot: int, size: tuple[int, int]) -> np.ndarray: ...


class _FixedMap:
    """A `PairBaseline` that is the same [h, w] map for every pair."""

    def __init__(self, name: str, heatmap: np.ndarray) -> None:
        self.name = name
        self.map = np.asarray(heatmap)

    def __call__(self, view: StepView, slot: int, size: tuple[int, int]) -> np.ndarray:
        if self.map.shape != tuple(size):
            raise ValueError(
                f"baseline {self.name!r} map is {self.map.shape}, predictions are {tuple(size)}"
            )
        return self.map


class FrustumBaseline:
    """The non-learned geometric map of a pair: ``floor + (1 - floor) * mean_d frustum_d``,
    the frustum prior (`habitat_fih.models.geometry_prior.frustum_prior`, the depth hypotheses
    `inverse_depths`) averaged over its depth hypotheses. Tells whether a model given that
    prior learned anything beyond it. ``floor`` keeps mass outside the frustum (occlusion-free
    geometry is not the target).

    ``cameras`` says whose cameras: ``"sensor"`` (the ``frame_geometry`` sensor's, exact) or
    ``"prediction"`` (the pose encodings the agent's model predicted for the view's frames,
    ``prediction["camera_poses"]`` [S, 9], e.g. VGGT's under ``geometry_prior: vggt``): the
    same map from predicted cameras shows how much of the geometry the predicted poses carry,
    apart from what the heatmap head makes of them."""

    def __init__(self, inverse_depths: Sequence[float], floor: float, cameras: str = "sensor"):
        if not 0.0 <= floor <= 1.0:
            raise ValueError(f"frustum baseline floor must be in [0, 1], got {floor}")
        if cameras not in ("sensor", "prediction"):
            raise ValueError(
                f"frustum baseline cameras must be 'sensor' or 'prediction', got {cameras!r}"
            )
        self.inverse_depths = tuple(float(x) for x in inverse_depths)
        self.floor = float(floor)
        self.cameras = cameras
        self._cache: tuple[tuple[Any, ...], np.ndarray] | None = None

    @property
    def reads_prediction(self) -> bool:
        """`PairedHeatmapScores` hands the agent's prediction to baselines for which this is
        True."""
        return self.cameras == "prediction"

    def __call__(
        self,
        view: StepView,
        slot: int,
        size: tuple[int, int],
        prediction: dict[str, Any] | None = None,
    ) -> np.ndarray:
        key = (view.env_index, view.episode_id, view.step, size)
        if self._cache is None or self._cache[0] != key:
            if self.cameras == "sensor":
                poses = view.camera_poses()
                if poses is None:
                    raise ValueError(
                        "the frustum heatmap baseline needs the frame_geometry sensor (camera "
                        "poses)"
                    )
            else:
                poses = None if prediction is None else prediction.get("camera_poses")
                if poses is None:
                    raise ValueError(
                        "the predicted-camera frustum baseline needs the agent's predicted "
                        "camera poses (prediction['camera_poses']; a model with "
                        "geometry_prior: vggt)"
                    )
                poses = np.asarray(poses, dtype=np.float32)
                if poses.shape != (len(view.indices), 9):
                    raise ValueError(
                        f"prediction['camera_poses'] must be [S={len(view.indices)}, 9], got "
                        f"{poses.shape}"
                    )
            p = torch.from_numpy(poses)
            history = p[None, :-1] if len(p) > 1 else p[None, :1]
            maps = frustum_prior(history, p[None, -1], size, self.inverse_depths)[0]
            self._cache = (key, maps.mean(1).numpy())  # [S - 1, h, w]
        return self.floor + (1.0 - self.floor) * self._cache[1][slot]


class PairedHeatmapScores:
    """``on_step`` hook scoring the agent's predicted maps and fixed baseline maps on the same
    (step, keyframe) pairs.

    A pair is scored when the predicted frame index is in the step's history and its target is
    valid with non-zero mass (the collector's covisibility target, area-averaged to the
    prediction's size); scores are `heatmap_scores` (the ``frame_heatmap_quality`` measure's KL,
    soft IoU and peak error), averaged per episode.

    Args:
        baselines: name -> [h, w] map in [0, 1] (e.g. ``baseline_maps("uniform", ...)``), or
            a `PairBaseline` computing a map per (view, history slot) (e.g.
            `FrustumBaseline`); each is scored in place of the prediction on every scored
            pair.
        eps: the measure's prediction smoothing.
    """

    def __init__(self, baselines: dict[str, np.ndarray | PairBaseline], eps: float = 1e-8) -> None:
        if "model" in baselines:
            raise ValueError("baseline name 'model' is reserved for the agent's own maps")
        self.baselines: dict[str, PairBaseline] = {
            name: m if callable(m) else _FixedMap(name, m) for name, m in baselines.items()
        }
        self.eps = eps
        self._sums: dict[str, dict[str, np.ndarray]] = {}
        self._counts: dict[str, int] = {}

    def __call__(self, view: StepView, action: dict[str, Any]) -> None:
        prediction = action["action_args"].get(PREDICTION_KEY)
        if prediction is None or "maps" not in prediction:
            return
        maps = np.asarray(prediction["maps"], dtype=np.float32)
        size = tuple(maps.shape[1:])
        targets, valid = view.targets(size)  # type: ignore[arg-type]
        slot_of = {int(s): i for i, s in enumerate(view.indices)}
        sums = self._sums.setdefault(
            view.episode_id, {k: np.zeros(3) for k in ("model", *self.baselines)}
        )
        for pred, index in zip(
            maps, np.asarray(prediction["frame_indices"]).reshape(-1), strict=True
        ):
            i = slot_of.get(int(index))
            if i is None or not valid[i] or targets[i].sum() <= 0:
                continue
            sums["model"] += heatmap_scores(targets[i], pred, self.eps)
            for name, baseline in self.baselines.items():
                if getattr(baseline, "reads_prediction", False):
                    baseline_map = baseline(view, i, size, prediction=prediction)
                else:
                    baseline_map = baseline(view, i, size)
                sums[name] += heatmap_scores(targets[i], baseline_map, self.eps)
            self._counts[view.episode_id] = self._counts.get(view.episode_id, 0) + 1

    def episode_metrics(self, episode_id: str) -> dict[str, Any]:
        """``{"scored": n, name: {"kl", "iou", "peak_error"}}`` of one episode (NaN if n = 0)."""
        n = self._counts.get(episode_id, 0)
        out: dict[str, Any] = {"scored": n}
        for name in ("model", *self.baselines):
            mean = self._sums[episode_id][name] / n if n else np.full(3, np.nan)
            out[name] = dict(zip(("kl", "iou", "peak_error"), map(float, mean), strict=True))
        return out


def flatten_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Scalar metrics, dicts flattened with dots; non-scalars (maps) are skipped."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if key in SKIP_METRICS:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_metrics(value, f"{name}."))
        elif isinstance(value, bool | int | float | np.integer | np.floating):
            out[name] = float(value)
        elif isinstance(value, np.ndarray) and value.size == 1:
            out[name] = float(value.reshape(-1)[0])
    return out


def summarize(results: Sequence[EpisodeResult]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(means of every flattened metric, per-episode rows). With habitat's ``collisions``
    measure, each row also gets ``collisions_per_step`` (its count over the episode's steps)."""
    rows = [
        {"episode_id": r.episode_id, "num_steps": r.steps, **flatten_metrics(r.metrics)}
        for r in results
    ]
    for row in rows:
        if "collisions.count" in row and row["num_steps"] > 0:
            row["collisions_per_step"] = row["collisions.count"] / row["num_steps"]
    keys = sorted({k for row in rows for k in row if k not in ("episode_id",)})
    means: dict[str, Any] = {}
    for key in keys:
        values = np.array([row.get(key, math.nan) for row in rows], dtype=np.float64)
        finite = values[~np.isnan(values)]
        means[key] = float(finite.mean()) if finite.size else None
    means["num_episodes"] = len(rows)
    return means, rows


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_stats(
    results_dir: str, tag: str, split: str, means: dict[str, Any], rows: list[dict[str, Any]]
) -> str:
    """Write stats_{tag}_{split}.json and episodes_{tag}_{split}.json; returns the stats path."""
    path = os.path.join(results_dir, f"stats_{tag}_{split}.json")
    atomic_write_json(_json_safe(means), path, indent=2, sort_keys=True)
    episodes = os.path.join(results_dir, f"episodes_{tag}_{split}.json")
    atomic_write_json(_json_safe(rows), episodes, indent=1, sort_keys=True)
    return path
