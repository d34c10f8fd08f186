"""Measures of FIH-VLN-v0 that score frame-indexed heatmaps.

- :class:`FrameHeatmapQuality` (metric ``frame_heatmap_quality``, a dict): the agent's predicted
  maps (passed with its action, see :mod:`habitat_fih.tasks.fih_task`) against the covisibility
  targets of the same original frame indices ON THE VIEW THE AGENT ACTED ON (the step before the
  action, not the view it leads to), area-averaged to the prediction's size, over every
  (step, frame) pair whose target is valid (covisible fraction > ``min_overlap``):

  - ``kl``: KL(target || prediction) of the maps normalised to distributions (prediction
    smoothed by ``eps``);
  - ``iou``: soft IoU ``sum(min(t, p)) / sum(max(t, p))`` of the raw maps in [0, 1];
  - ``peak_error``: distance from the prediction's peak to the target's, divided by the map
    diagonal (0 = on a target peak, 1 = opposite corners). Maps often have flat tops (a
    covisibility target is 1 over a whole region; a constant map is all peak), so it is the
    mean, over the prediction's maximal cells, of the distance to the nearest maximal cell of
    the target — no tie is broken by cell order;
  - ``scored``: number of (step, frame) pairs scored; ``missing_steps``: steps without a
    prediction (allowed: the episode goes on). Averages are NaN while nothing was scored.
  A prediction without ``maps`` (a model trained on camera positions only) counts as a
  missing step.
- :class:`FrameCameraPositionQuality` (``frame_camera_position_quality``): the same scores for
  the predicted camera-position maps (``prediction["camera_position"] = {"maps": [K,h,w],
  "frame_indices": [K]}``, passed by models trained with ``fih.collection.target_kind``
  ``camera_position`` / ``both``) against the Gaussian (sigma ``camera_sigma`` cells of the
  prediction's map, peak 1) at each keyframe camera's projection on the view acted on, over
  the (step, frame) pairs whose camera is IN_VIEW (`geometry.CameraStatus`; behind, outside
  the view, occluded or at the same position are not scored: their target is empty).
  ``missing_steps`` counts steps without a camera-position prediction.
- :class:`MemoryCoverage` (``memory_coverage``): mean over steps with a non-empty memory of the
  fraction of the current view covisible with at least one memory frame (per-pixel union at the
  working resolution).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.ndimage as ndi
from habitat.core.embodied_task import Measure
from habitat.core.registry import registry

from habitat_fih.geometry import CameraStatus, area_average, camera_position_heatmaps

__all__ = ["FrameCameraPositionQuality", "FrameHeatmapQuality", "MemoryCoverage", "heatmap_scores"]


PEAK_TOLERANCE = 1e-6  # cells within this of a map's maximum are its peak


def heatmap_scores(
    target: np.ndarray, prediction: np.ndarray, eps: float = 1e-8
) -> tuple[float, float, float]:
    """(KL(t||p), soft IoU, normalised peak distance) of one target / prediction pair [h, w]."""
    t = np.asarray(target, dtype=np.float64)
    p = np.clip(np.asarray(prediction, dtype=np.float64), 0.0, 1.0)
    td = t / t.sum()
    pd = (p + eps) / (p + eps).sum()
    pos = td > 0
    kl = float(np.sum(td[pos] * np.log(td[pos] / pd[pos])))
    union = np.maximum(t, p).sum()
    iou = float(np.minimum(t, p).sum() / union) if union > 0 else 1.0
    h, w = t.shape
    if (h, w) == (1, 1):
        return kl, iou, 0.0
    target_peak = t >= t.max() - PEAK_TOLERANCE
    to_target_peak = ndi.distance_transform_edt(~target_peak)  # cell -> nearest target peak
    pred_peak = p >= p.max() - PEAK_TOLERANCE
    peak = float(to_target_peak[pred_peak].mean() / np.hypot(h - 1, w - 1))
    return kl, iou, peak


@registry.register_measure
class FrameHeatmapQuality(Measure):
    cls_uuid = "frame_heatmap_quality"

    def __init__(self, sim, config, *args: Any, **kwargs: Any) -> None:
        self.min_overlap = float(config.min_overlap)
        self.eps = float(config.eps)
        super().__init__()

    def _get_uuid(self, *args: Any, **kwargs: Any) -> str:
        return self.cls_uuid

    def reset_metric(self, *args: Any, episode=None, task=None, observations=None, **kwargs: Any):
        self._sums = np.zeros(3)
        self._scored = 0
        self._missing = 0
        self._publish()

    def _publish(self) -> None:
        mean = self._sums / self._scored if self._scored else np.full(3, np.nan)
        self._metric = {
            "kl": float(mean[0]),
            "iou": float(mean[1]),
            "peak_error": float(mean[2]),
            "scored": self._scored,
            "missing_steps": self._missing,
        }

    def update_metric(self, *args: Any, episode=None, task=None, observations=None, **kwargs: Any):
        prediction = getattr(task, "prediction", None)
        if prediction is None or "maps" not in prediction:
            self._missing += 1
            self._publish()
            return
        maps = np.asarray(prediction["maps"], dtype=np.float32)
        indices = np.asarray(prediction["frame_indices"]).reshape(-1)
        if maps.ndim != 3 or maps.shape[0] != len(indices):
            raise ValueError(
                f"frame_heatmap_prediction maps must be [K,h,w] with K = len(frame_indices); got "
                f"maps {maps.shape} and {len(indices)} frame indices"
            )
        targets = task.prediction_targets  # the targets of the view the prediction was made on
        if targets is None:
            raise RuntimeError("a prediction arrived without the targets of its view")
        slot_of = {int(s): i for i, s in enumerate(targets.memory_steps) if s >= 0}
        size = maps.shape[1:]
        for pred_map, index in zip(maps, indices, strict=True):
            slot = slot_of.get(int(index))
            if slot is None or targets.overlap[slot] <= self.min_overlap:
                continue
            target = area_average(targets.covisible[slot][None], size)[0]
            self._sums += heatmap_scores(target, pred_map, self.eps)
            self._scored += 1
        self._publish()


def _check_prediction(maps: np.ndarray, indices: np.ndarray, what: str) -> None:
    if maps.ndim != 3 or maps.shape[0] != len(indices):
        raise ValueError(
            f"{what} maps must be [K,h,w] with K = len(frame_indices); got maps {maps.shape} "
            f"and {len(indices)} frame indices"
        )


@registry.register_measure
class FrameCameraPositionQuality(FrameHeatmapQuality):
    cls_uuid = "frame_camera_position_quality"

    def __init__(self, sim, config, *args: Any, **kwargs: Any) -> None:
        self.sigma = float(config.camera_sigma)
        self.eps = float(config.eps)
        Measure.__init__(self)

    def update_metric(self, *args: Any, episode=None, task=None, observations=None, **kwargs: Any):
        prediction = getattr(task, "prediction", None)
        cam = None if prediction is None else prediction.get("camera_position")
        if cam is None:
            self._missing += 1
            self._publish()
            return
        maps = np.asarray(cam["maps"], dtype=np.float32)
        indices = np.asarray(cam["frame_indices"]).reshape(-1)
        _check_prediction(maps, indices, "frame_heatmap_prediction['camera_position']")
        targets = task.prediction_targets
        if targets is None:
            raise RuntimeError("a prediction arrived without the targets of its view")
        slot_of = {int(s): i for i, s in enumerate(targets.memory_steps) if s >= 0}
        rows = [
            (m, slot_of[int(i)]) for m, i in zip(maps, indices, strict=True) if int(i) in slot_of
        ]
        if rows:
            cur = targets.current
            res = camera_position_heatmaps(
                cur.depth,
                cur.pose,
                targets.memory_poses[[slot for _, slot in rows]],
                task.hfov,
                tuple(maps.shape[1:]),
                sigma=self.sigma,
                abs_tol=task.abs_tol,
                rel_tol=task.rel_tol,
            )
            for (pred_map, _), target, status in zip(rows, res.maps, res.status, strict=True):
                if int(status) != int(CameraStatus.IN_VIEW):
                    continue
                self._sums += heatmap_scores(target, pred_map, self.eps)
                self._scored += 1
        self._publish()


@registry.register_measure
class MemoryCoverage(Measure):
    cls_uuid = "memory_coverage"

    def __init__(self, sim, config, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def _get_uuid(self, *args: Any, **kwargs: Any) -> str:
        return self.cls_uuid

    def reset_metric(self, *args: Any, episode=None, task=None, observations=None, **kwargs: Any):
        self._values: list[float] = []
        self._metric = 0.0

    def update_metric(self, *args: Any, episode=None, task=None, observations=None, **kwargs: Any):
        targets = task.targets(observations)
        if targets.filled.any():
            self._values.append(float(targets.covisible[targets.filled].max(axis=0).mean()))
        self._metric = float(np.mean(self._values)) if self._values else 0.0
