"""VLN-CE's episode measures, registered with habitat's measure registry.

Each measure is registered under its class name and reports its metric under ``cls_uuid``:

- :class:`PathLength` (``path_length``): Euclidean length of the agent's path.
- :class:`OracleNavigationError` (``oracle_navigation_error``): min over the episode of
  ``distance_to_goal``.
- :class:`OracleSuccess` (``oracle_success``): 1 once ``distance_to_goal < success_distance``,
  then latched.
- :class:`OracleSPL` (``oracle_spl``): max over the episode of ``spl``.
- :class:`StepsTaken` (``steps_taken``): actions taken, STOP included.
- :class:`NDTW` (``ndtw``): normalised dynamic time warping against the reference path.
- :class:`SDTW` (``sdtw``): ``success · ndtw``.

They use only habitat's generic simulator interface (``get_agent_state().position`` and, through
habitat's ``DistanceToGoal``, ``geodesic_distance``), so they work with any simulator. Measures
that read other measures declare them with ``check_measure_dependencies`` and must be listed after
them in ``habitat.task.measurements``. Their structured configs live in
:mod:`habitat_fih.config.default_structured_configs`.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from habitat.core.embodied_task import EmbodiedTask, Measure
from habitat.core.registry import registry
from habitat.core.simulator import Simulator
from habitat.tasks.nav.nav import DistanceToGoal, Success

if TYPE_CHECKING:
    from habitat.core.dataset import Episode
    from omegaconf import DictConfig

__all__ = [
    "NDTW",
    "SDTW",
    "OracleNavigationError",
    "OracleSPL",
    "OracleSuccess",
    "PathLength",
    "StepsTaken",
    "dtw_distance",
    "load_gt_locations",
]


#: habitat's SPL measure reports under this literal uuid (the class has no ``cls_uuid``).
SPL_UUID = "spl"


def _agent_position(sim: Simulator) -> np.ndarray:
    """The agent's position as a fresh float64 ``[3]`` array (never a view into the simulator)."""
    return np.array(sim.get_agent_state().position, dtype=np.float64)


@registry.register_measure
class PathLength(Measure):
    """Sum of the Euclidean distances between consecutive agent positions."""

    cls_uuid: str = "path_length"

    def __init__(self, sim: Simulator, config: DictConfig, *args: Any, **kwargs: Any) -> None:
        self._sim = sim
        self._previous_position: np.ndarray | None = None
        super().__init__()

    def _get_uuid(self, *args: Any, **kwargs: Any) -> str:
        return self.cls_uuid

    def reset_metric(self, *args: Any, **kwargs: Any) -> None:
        self._previous_position = _agent_position(self._sim)
        self._metric = 0.0

    def update_metric(self, *args: Any, **kwargs: Any) -> None:
        current = _agent_position(self._sim)
        self._metric += float(np.linalg.norm(current - self._previous_position))
        self._previous_position = current


@registry.register_measure
class OracleNavigationError(Measure):
    """Smallest ``distance_to_goal`` seen so far in the episode (depends on DistanceToGoal)."""

    cls_uuid: str = "oracle_navigation_error"

    def __init__(self, sim: Simulator, config: DictConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def _get_uuid(self, *args: Any, **kwargs: Any) -> str:
        return self.cls_uuid

    def reset_metric(self, *args: Any, task: EmbodiedTask, **kwargs: Any) -> None:
        task.measurements.check_measure_dependencies(self.uuid, [DistanceToGoal.cls_uuid])
        self._metric = math.inf
        self.update_metric(*args, task=task, **kwargs)

    def update_metric(self, *args: Any, task: EmbodiedTask, **kwargs: Any) -> None:
        distance = task.measurements.measures[DistanceToGoal.cls_uuid].get_metric()
        self._metric = min(self._metric, float(distance))


@registry.register_measure
class OracleSuccess(Measure):
    """1.0 from the first step with ``distance_to_goal < success_distance`` on, else 0.0.

    Depends on DistanceToGoal. Config: ``success_distance`` (VLN-CE: 3.0 m).
    """

    cls_uuid: str = "oracle_success"

    def __init__(self, sim: Simulator, config: DictConfig, *args: Any, **kwargs: Any) -> None:
        self._success_distance = float(config.success_distance)
        super().__init__()

    def _get_uuid(self, *args: Any, **kwargs: Any) -> str:
        return self.cls_uuid

    def reset_metric(self, *args: Any, task: EmbodiedTask, **kwargs: Any) -> None:
        task.measurements.check_measure_dependencies(self.uuid, [DistanceToGoal.cls_uuid])
        self._metric = 0.0
        self.update_metric(*args, task=task, **kwargs)

    def update_metric(self, *args: Any, task: EmbodiedTask, **kwargs: Any) -> None:
        distance = task.measurements.measures[DistanceToGoal.cls_uuid].get_metric()
        if self._metric == 1.0 or distance < self._success_distance:
            self._metric = 1.0


@registry.register_measure
class OracleSPL(Measure):
    """Largest ``spl`` seen so far in the episode (depends on SPL) — VLN-CE's OracleSPL.

    Kept as VLN-CE defines it so numbers compare with published ones. Note what it measures:
    habitat's SPL is 0 until the agent calls STOP, which ends a VLN episode, so for VLN episodes
    it equals the final SPL (not "SPL had the agent stopped at its best point").
    """

    cls_uuid: str = "oracle_spl"

    def __init__(self, sim: Simulator, config: DictConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def _get_uuid(self, *args: Any, **kwargs: Any) -> str:
        return self.cls_uuid

    def reset_metric(self, *args: Any, task: EmbodiedTask, **kwargs: Any) -> None:
        task.measurements.check_measure_dependencies(self.uuid, [SPL_UUID])
        self._metric = 0.0
        self.update_metric(*args, task=task, **kwargs)

    def update_metric(self, *args: Any, task: EmbodiedTask, **kwargs: Any) -> None:
        spl = task.measurements.measures[SPL_UUID].get_metric()
        self._metric = max(self._metric, float(spl))


@registry.register_measure
class StepsTaken(Measure):
    """Number of actions taken in the episode; the final STOP counts as one."""

    cls_uuid: str = "steps_taken"

    def __init__(self, sim: Simulator, config: DictConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def _get_uuid(self, *args: Any, **kwargs: Any) -> str:
        return self.cls_uuid

    def reset_metric(self, *args: Any, **kwargs: Any) -> None:
        self._metric = 0

    def update_metric(self, *args: Any, **kwargs: Any) -> None:
        # habitat calls update_metric once per Env.step, the STOP step included.
        self._metric += 1


def dtw_distance(seq_a: Sequence[Sequence[float]], seq_b: Sequence[Sequence[float]]) -> float:
    """Exact dynamic time warping distance between two point sequences (Euclidean cost).

    Plain O(n·m) dynamic programme: ``D[i, j] = |a_i - b_j| + min(D[i-1, j], D[i, j-1],
    D[i-1, j-1])`` with ``D[0, 0] = |a_0 - b_0|``; returns ``D[n-1, m-1]``.
    """
    a = np.asarray(seq_a, dtype=np.float64)
    b = np.asarray(seq_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or len(a) == 0 or len(b) == 0 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"dtw_distance needs two non-empty [N, D] point sequences, got {a.shape} and {b.shape}"
        )
    row: np.ndarray | None = None
    for point in a:
        row = _dtw_next_row(row, point, b)
    assert row is not None
    return float(row[-1])


def _dtw_next_row(
    previous: np.ndarray | None, point: np.ndarray, reference: np.ndarray
) -> np.ndarray:
    """Row ``i`` of the DTW table (one query point against all reference points) from row ``i-1``.

    ``previous`` is None for the first query point.
    """
    cost = np.linalg.norm(reference - point, axis=1)  # [M]
    row = np.empty_like(cost)
    if previous is None:
        row[:] = np.cumsum(cost)  # only horizontal moves along the reference
        return row
    # diagonal / vertical predecessors, then the horizontal one (sequential in j)
    best_above = np.minimum(previous, np.concatenate(([math.inf], previous[:-1])))
    left = math.inf
    for j in range(len(cost)):
        left = cost[j] + min(best_above[j], left)
        row[j] = left
    return row


def load_gt_locations(path: str) -> dict[str, list[list[float]]]:
    """Read a VLN-CE ``{split}_gt.json.gz`` and return ``{episode_id (str): locations}``.

    Raises FileNotFoundError naming ``path`` when it does not exist.
    """
    try:
        with gzip.open(path, "rt") as f:
            data = json.load(f)
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f"NDTW ground-truth file not found: {path!r} (measurement config gt_path / split)"
        ) from e
    return {str(episode_id): entry["locations"] for episode_id, entry in data.items()}


@registry.register_measure
class NDTW(Measure):
    """Normalised dynamic time warping (Ilharco et al. 2019) as computed by VLN-CE.

    ``ndtw = exp(-DTW(agent path, reference path) / (len(reference) · success_distance))``, with
    the agent path built from the agent's positions, a position appended only when it differs from
    the last one. The reference path is the episode's ``locations`` in the ground-truth file
    ``gt_path.format(split=split)`` when ``gt_path`` is set (loaded once, keyed by episode id as a
    string), else ``episode.reference_path``.

    Config: ``success_distance`` (VLN-CE: 3.0), ``gt_path`` (may contain ``{split}``), ``split``.
    The DTW table grows by one row per new position, so each update costs O(len(reference)).
    """

    cls_uuid: str = "ndtw"

    def __init__(self, sim: Simulator, config: DictConfig, *args: Any, **kwargs: Any) -> None:
        self._sim = sim
        self._success_distance = float(config.success_distance)
        gt_path = str(config.gt_path)
        self._gt_path: str | None = gt_path.format(split=config.split) if gt_path else None
        self._gt_locations: dict[str, list[list[float]]] | None = (
            load_gt_locations(self._gt_path) if self._gt_path is not None else None
        )
        self._reference: np.ndarray = np.zeros((0, 3))
        self._locations: list[np.ndarray] = []
        self._dtw_row: np.ndarray | None = None
        super().__init__()

    def _get_uuid(self, *args: Any, **kwargs: Any) -> str:
        return self.cls_uuid

    def _reference_path(self, episode: Episode) -> np.ndarray:
        if self._gt_locations is not None:
            key = str(episode.episode_id)
            if key not in self._gt_locations:
                raise KeyError(
                    f"NDTW: episode id {key!r} is not in the ground-truth file {self._gt_path!r} "
                    f"({len(self._gt_locations)} episodes; is the measurement's split the "
                    "dataset's split?)"
                )
            locations = self._gt_locations[key]
        else:
            locations = getattr(episode, "reference_path", None)
            if not locations:
                raise ValueError(
                    f"NDTW: episode {episode.episode_id!r} has no reference_path and no gt_path "
                    "is configured"
                )
        reference = np.asarray(locations, dtype=np.float64)
        if reference.ndim != 2 or reference.shape[1] != 3:
            raise ValueError(
                f"NDTW: reference path of episode {episode.episode_id!r} must be [N, 3], "
                f"got shape {reference.shape}"
            )
        return reference

    def reset_metric(self, *args: Any, episode: Episode, **kwargs: Any) -> None:
        self._reference = self._reference_path(episode)
        self._locations = []
        self._dtw_row = None
        self.update_metric(*args, episode=episode, **kwargs)

    def update_metric(self, *args: Any, **kwargs: Any) -> None:
        current = _agent_position(self._sim)
        if self._locations and np.array_equal(current, self._locations[-1]):
            return
        self._locations.append(current)
        self._dtw_row = _dtw_next_row(self._dtw_row, current, self._reference)
        dtw = float(self._dtw_row[-1])
        self._metric = float(np.exp(-dtw / (len(self._reference) * self._success_distance)))


@registry.register_measure
class SDTW(Measure):
    """Success weighted by normalised DTW: ``success · ndtw`` (depends on Success and NDTW)."""

    cls_uuid: str = "sdtw"

    def __init__(self, sim: Simulator, config: DictConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def _get_uuid(self, *args: Any, **kwargs: Any) -> str:
        return self.cls_uuid

    def reset_metric(self, *args: Any, task: EmbodiedTask, **kwargs: Any) -> None:
        task.measurements.check_measure_dependencies(self.uuid, [Success.cls_uuid, NDTW.cls_uuid])
        self.update_metric(*args, task=task, **kwargs)

    def update_metric(self, *args: Any, task: EmbodiedTask, **kwargs: Any) -> None:
        success = task.measurements.measures[Success.cls_uuid].get_metric()
        ndtw = task.measurements.measures[NDTW.cls_uuid].get_metric()
        self._metric = float(success) * float(ndtw)
