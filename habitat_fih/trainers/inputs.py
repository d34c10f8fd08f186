"""Checks of a run's inputs in the main process, before any environment worker starts.

An error inside a habitat ``VectorEnv`` worker surfaces in the main process as a bare
``EOFError`` with the cause buried in the worker's output, so everything a worker would reject
is checked here first (:func:`validate_inputs`, called by
:func:`habitat_fih.trainers.collector.check_data` on every ``VectorEnv`` creation path), each
failure ONE exception naming the config key or file, the bad value and what was expected:

- the split's episode file (``habitat.dataset.data_path`` formatted with the split): exists, is
  gzip (habitat's ``R2RVLN-v1`` reader opens it with ``gzip.open``, whatever its extension), holds
  JSON with a non-empty ``episodes`` list, loads with the configured ``habitat.dataset.type`` and
  keeps at least one episode after ``habitat.dataset.content_scenes``;
- every scene those episodes use (``habitat.dataset.scenes_dir`` joined with the episode's
  ``scene_id``, as habitat's dataset does) exists and loads (:func:`habitat_fih.sim.scene.load_scene`,
  each distinct scene once);
- on FIHSim-v0, every episode's start position is navigable on its scene: the navigation is
  built as the simulator builds it (agent height / radius / max climb / max slope,
  ``habitat.simulator.navmesh_settings``) and a start is accepted as the simulator accepts it
  (navigable, or within ``START_SNAP_TOLERANCE`` of the nearest navigable point);
- NDTW's ground-truth file (``gt_path`` formatted with its ``split``) exists;
- the FIH-VLN-v0 task values the task, its frame memory and its sensors would reject inside the
  worker (``habitat.task.memory_max_frames`` >= 2, ``memory_policy``, ``working_resolution``,
  ``depth_sensor_uuid``, the frame-heatmap sensors' ``target_kinds`` and task type).

The data checks (file, scenes, starts) are cached per process, keyed by the episode file (path,
size, modification time), the scenes directory and the settings the checks depend on, so
evaluating several agents does not revalidate. There is no switch to skip them: on the bundled
data they take well under a second per scene.

Errors are :class:`FIHRunError` subclasses (also ``ValueError`` / ``FileNotFoundError`` /
``RuntimeError``) whose message is one line that says everything the user needs; a command line
can print it alone.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterable
from typing import Any

from habitat_fih.trainers.settings import require_int

__all__ = [
    "BadInputError",
    "EnvWorkerError",
    "FIHRunError",
    "MissingInputError",
    "clear_validation_cache",
    "validate_inputs",
    "validate_task_config",
]


class FIHRunError(Exception):
    """An error whose one-line message tells the user what to fix (a bad input, a failed
    environment worker): the command line prints it alone, without a traceback."""


class BadInputError(FIHRunError, ValueError):
    """A config value or a data file that the environments would reject."""


class MissingInputError(FIHRunError, FileNotFoundError):
    """A data file or directory that does not exist."""


class EnvWorkerError(FIHRunError, RuntimeError):
    """An exception inside a ``VectorEnv`` worker (or the worker's death), re-raised in the
    main process; the worker's traceback is the ``__cause__`` and ``worker_traceback``."""

    def __init__(
        self,
        env_index: int,
        during: str,
        episode_id: str | None,
        error_type: str,
        message: str,
        worker_traceback: str = "",
    ) -> None:
        self.env_index = env_index
        self.during = during
        self.episode_id = episode_id
        self.error_type = error_type
        self.error_message = message
        self.worker_traceback = worker_traceback
        episode = f" of episode {episode_id!r}" if episode_id is not None else ""
        text = " ".join(message.split())  # one line
        super().__init__(
            f"environment {env_index} failed in {during}{episode}: {error_type}: {text}"
        )

    def __reduce__(self):  # picklable with its fields (e.g. across a multiprocessing queue)
        return (
            type(self),
            (
                self.env_index,
                self.during,
                self.episode_id,
                self.error_type,
                self.error_message,
                self.worker_traceback,
            ),
        )


# ---------------------------------------------------------------------- task values
def _get(node: Any, key: str, default: Any = None) -> Any:
    try:
        return node.get(key, default)
    except AttributeError:
        return getattr(node, key, default)


def _sim_sensor_uuids(config: Any) -> list[str] | None:
    """The uuids of the simulator's sensors as FIHSim-v0 builds them (None on another
    simulator); BadInputError for a sensor FIHSim-v0 would reject."""
    from habitat.config.default import get_agent_config

    sim_cfg = config.habitat.simulator
    if str(_get(sim_cfg, "type", "")) != "FIHSim-v0":
        return None
    from habitat_fih.sim.simulator import FIHSim

    agent = get_agent_config(sim_cfg)
    try:
        cameras, _ = FIHSim._make_sensors(agent.sim_sensors)
    except ValueError as e:
        raise BadInputError(f"habitat.simulator.agents.*.sim_sensors: {e}") from e
    return [c.uuid for c in cameras]


def validate_task_config(config: Any) -> None:
    """The FIH-VLN-v0 task values (see the module docstring); BadInputError naming the key."""
    from habitat_fih.tasks.frame_memory import MEMORY_POLICIES
    from habitat_fih.tasks.heatmap_sensors import TARGET_KINDS

    task = config.habitat.task
    task_type = str(_get(task, "type", ""))
    lab_sensors = _get(task, "lab_sensors") or {}
    fih_sensors = {
        name: s
        for name, s in lab_sensors.items()
        if str(_get(s, "type", "")) in ("FrameIndexedHeatmapSensor", "FrameGeometrySensor")
    }
    if task_type != "FIH-VLN-v0":
        if fih_sensors:
            names = ", ".join(f"habitat.task.lab_sensors.{n}" for n in fih_sensors)
            raise BadInputError(
                f"{names} need(s) the FIH-VLN-v0 task: habitat.task.type must be 'FIH-VLN-v0', "
                f"got {task_type!r}"
            )
        return

    require_int(
        "habitat.task.memory_max_frames",
        _get(task, "memory_max_frames"),
        2,
        why="the first and the latest frame are always kept",
        error=BadInputError,
    )
    policy = _get(task, "memory_policy")
    if policy not in MEMORY_POLICIES:
        raise BadInputError(
            f"habitat.task.memory_policy must be one of {list(MEMORY_POLICIES)}, got {policy!r}"
        )
    require_int(
        "habitat.task.working_resolution (side of the square target grid, pixels)",
        _get(task, "working_resolution"),
        1,
        error=BadInputError,
    )
    uuid = _get(task, "depth_sensor_uuid")
    uuids = _sim_sensor_uuids(config)
    if uuids is not None and uuid not in uuids:
        raise BadInputError(
            f"habitat.task.depth_sensor_uuid must name one of the simulator's sensors {uuids}, "
            f"got {uuid!r}"
        )
    for name, s in fih_sensors.items():
        if str(_get(s, "type")) != "FrameIndexedHeatmapSensor":
            continue
        kinds = list(_get(s, "target_kinds") or [])
        if not kinds or any(k not in TARGET_KINDS for k in kinds):
            raise BadInputError(
                f"habitat.task.lab_sensors.{name}.target_kinds must be a non-empty subset of "
                f"{list(TARGET_KINDS)}, got {kinds!r}"
            )


# ---------------------------------------------------------------------- data
_VALIDATED: set[tuple] = set()


def clear_validation_cache() -> None:
    """Forget which inputs passed (the next `validate_inputs` checks the data again)."""
    _VALIDATED.clear()


def _episode_file(config: Any) -> tuple[str, str]:
    ds = config.habitat.dataset
    return str(ds.split), str(ds.data_path).format(split=ds.split)


def _require_episode_file(path: str, split: str) -> None:
    if not os.path.isfile(path):
        raise MissingInputError(
            f"episodes of split {split!r} not found at {path!r} (habitat.dataset.data_path); "
            "generate the bundled data with `python -m habitat_fih.datasets.make_starter_data`"
        )


def _read_episode_json(path: str, split: str) -> dict[str, Any]:
    where = f"episodes file {path!r} (habitat.dataset.data_path, split {split!r})"
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            text = f.read()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        raise BadInputError(
            f"{where} is not a readable gzip file of UTF-8 JSON ({type(e).__name__}: {e}); "
            "expected gzip-compressed JSON, as habitat's dataset reader opens it with gzip"
        ) from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInputError(f"{where} does not hold valid JSON: {e}") from e
    if not isinstance(data, dict) or "episodes" not in data:
        found = sorted(data)[:10] if isinstance(data, dict) else type(data).__name__
        raise BadInputError(
            f"{where} has no 'episodes' key: expected a JSON object with an 'episodes' list, "
            f"got {found}"
        )
    episodes = data["episodes"]
    if not isinstance(episodes, list) or not episodes:
        got = f"{len(episodes)} episodes" if isinstance(episodes, list) else type(episodes).__name__
        raise BadInputError(f"{where}: 'episodes' must be a non-empty list, got {got}")
    return data


def _load_dataset(config: Any, path: str) -> Any:
    from habitat.core.registry import registry
    from habitat.datasets import make_dataset

    ds = config.habitat.dataset
    if registry.get_dataset(ds.type) is None:
        raise BadInputError(f"habitat.dataset.type {ds.type!r} is not a registered dataset type")
    try:
        dataset = make_dataset(ds.type, config=ds)
    except Exception as e:  # the reader's KeyError / TypeError on a malformed episode
        raise BadInputError(
            f"episodes file {path!r} does not load as habitat.dataset.type={ds.type!r} "
            f"({type(e).__name__}: {e})"
        ) from e
    if not dataset.episodes:
        raise BadInputError(
            f"no episode of {path!r} is left after habitat.dataset.content_scenes="
            f"{list(ds.content_scenes)} (scenes of the file: "
            f"{sorted({os.path.basename(str(e['scene_id'])) for e in _raw_episodes(path)})[:10]})"
        )
    return dataset


def _raw_episodes(path: str) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return list(json.load(f)["episodes"])


def _ids(episodes: Iterable[Any], limit: int = 5) -> str:
    ids = [str(e.episode_id) for e in episodes]
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(repr(i) for i in ids[:limit]) + more


def _check_scenes(config: Any, episodes: list[Any]) -> None:
    """Each distinct scene loads; on FIHSim-v0 each episode's start is navigable on it."""
    import numpy as np
    from habitat.config.default import get_agent_config

    from habitat_fih.sim.scene import load_scene
    from habitat_fih.sim.simulator import (
        START_SNAP_TOLERANCE,
        accepted_start,
        build_navgrid,
        navmesh_settings,
    )

    sim_cfg = config.habitat.simulator
    scenes_dir = str(_get(config.habitat.dataset, "scenes_dir", ""))
    scene_dataset = _get(sim_cfg, "scene_dataset")
    check_starts = str(_get(sim_cfg, "type", "")) == "FIHSim-v0"
    by_scene: dict[str, list[Any]] = {}
    for ep in episodes:
        by_scene.setdefault(str(ep.scene_id), []).append(ep)
    agent = get_agent_config(sim_cfg) if check_starts else None
    nav = navmesh_settings(sim_cfg)
    for scene, eps in by_scene.items():
        used_by = f"used by episode(s) {_ids(eps)}"
        try:
            mesh = load_scene(scene, scene_dataset=scene_dataset)
        except FileNotFoundError as e:
            raise MissingInputError(
                f"scene {scene!r} ({used_by}) not found: {e} (habitat.dataset.scenes_dir="
                f"{scenes_dir!r} joined with the episode's scene_id)"
            ) from e
        except Exception as e:
            raise BadInputError(
                f"scene {scene!r} ({used_by}) does not load: {type(e).__name__}: {e}"
            ) from e
        if not check_starts:
            continue
        try:
            grid = build_navgrid(mesh, agent, nav, scene)
        except Exception as e:
            raise BadInputError(
                f"scene {scene!r} ({used_by}) has no usable navigation with the agent of "
                f"habitat.simulator.agents (height {agent.height}, radius {agent.radius}): "
                f"{type(e).__name__}: {e}"
            ) from e
        for ep in eps:
            pos = np.asarray(ep.start_position, dtype=np.float64)
            if pos.shape != (3,) or not np.all(np.isfinite(pos)):
                raise BadInputError(
                    f"episode {str(ep.episode_id)!r} of scene {scene!r}: start_position must be "
                    f"3 finite numbers, got {ep.start_position!r}"
                )
            accepted, snapped = accepted_start(grid, pos)
            if accepted is None:
                near = (
                    "none within habitat's search box"
                    if np.any(np.isnan(snapped))
                    else f"{[round(float(v), 4) for v in snapped]}, "
                    f"{float(np.linalg.norm(snapped - pos)):.3f} m away"
                )
                raise BadInputError(
                    f"episode {str(ep.episode_id)!r}: start position {pos.tolist()} is not on the "
                    f"navigable area of scene {scene!r} (nearest navigable point: {near}; "
                    f"expected within {START_SNAP_TOLERANCE} m, for an agent of radius "
                    f"{agent.radius} m and height {agent.height} m)"
                )


def _check_measures(config: Any) -> None:
    for name, m in (_get(config.habitat.task, "measurements") or {}).items():
        if str(_get(m, "type", "")) != "NDTW":
            continue
        gt_path = str(_get(m, "gt_path", "") or "")
        if not gt_path:
            continue
        path = gt_path.format(split=_get(m, "split", ""))
        if not os.path.isfile(path):
            raise MissingInputError(
                f"NDTW ground-truth file {path!r} not found (habitat.task.measurements.{name}."
                f"gt_path={gt_path!r} with split {str(_get(m, 'split'))!r}; set gt_path: '' to use "
                "the episodes' reference paths)"
            )


def _cache_key(config: Any, path: str) -> tuple:
    from omegaconf import OmegaConf

    ds, sim = config.habitat.dataset, config.habitat.simulator
    st = os.stat(path)

    def plain(node: Any) -> Any:
        try:
            return json.dumps(OmegaConf.to_container(node, resolve=True), sort_keys=True)
        except Exception:
            return repr(node)

    agents = _get(sim, "agents")
    return (
        os.path.abspath(path),
        st.st_size,
        st.st_mtime_ns,
        os.path.abspath(str(_get(ds, "scenes_dir", ""))),
        str(ds.type),
        tuple(_get(ds, "content_scenes") or ()),
        str(_get(sim, "type", "")),
        str(_get(sim, "scene_dataset", "")),
        plain(_get(sim, "navmesh_settings")) if _get(sim, "navmesh_settings") is not None else "",
        plain(agents) if agents is not None else "",
    )


def validate_inputs(config: Any) -> None:
    """Check a run's inputs before any environment worker starts (see the module docstring).

    Raises:
        MissingInputError: the episode file, a scene or NDTW's ground truth does not exist.
        BadInputError: a file that does not parse or load, a start position off the navigable
            area, a task value the task would reject.
    """
    validate_task_config(config)
    _check_measures(config)
    split, path = _episode_file(config)
    _require_episode_file(path, split)
    scenes = str(_get(config.habitat.dataset, "scenes_dir", "") or "")
    if scenes and not os.path.isdir(scenes):
        raise MissingInputError(
            f"scenes directory {scenes!r} (habitat.dataset.scenes_dir) not found"
        )
    key = _cache_key(config, path)
    if key in _VALIDATED:
        return
    _read_episode_json(path, split)
    dataset = _load_dataset(config, path)
    _check_scenes(config, list(dataset.episodes))
    _VALIDATED.add(key)
