"""Record the expert's path of a bundled episode as an RGB video plus its geometry sidecar.

    python -m habitat_fih.datasets.record --episode ID --out clip.mp4
        [--split val_seen] [--config fih/synthetic_tiny] [--max-steps N] [--fps 5]
        [--follower shortest_path|reference] [overrides ...]

Outputs (test material for users and for ``fih-infer --geometry-from``):

- ``clip.mp4`` (or ``clip.avi``): the RGB camera's view. Frame ``i`` is step ``i`` of the episode:
  frame 0 is the view after the reset, frame ``i + 1`` the view after action ``actions[i]``
  (with a full path the last frame is the view after STOP, the same place as the one before).
  ``.mp4`` is written with OpenCV's ``mp4v`` codec, ``.avi`` with ``MJPG``; any other extension
  is refused. The resolution is the config's RGB sensor's.
- ``clip.geometry.npz`` (:func:`~habitat_fih.datasets.sidecar.sidecar_path`), the format of
  :mod:`habitat_fih.datasets.sidecar`: per frame the DEPTH camera's camera-to-world pose
  (``task.current_frame(obs).pose``), its intrinsics (``intrinsics_from_hfov(hfov, W, H)``),
  its metric depth at the sensor's resolution (``task.sensor_depth``, 0 = invalid) and
  ``actions[i]`` = the action taken after frame ``i`` (-1 after the last frame), plus the FIH
  task's target settings (``working_resolution``, ``abs_tol``, ``rel_tol``, the
  ``frame_heatmaps`` sensor's ``min_overlap``) and the episode's id, scene, split and
  instruction. Because the sidecar describes the depth camera and the video is the RGB camera,
  the two sensors must have the same position, orientation, resolution and hfov; if they do not,
  the command stops with one error line before anything is written.

Choices:

- ``--config`` defaults to ``fih/synthetic_tiny``, the config ``make run`` trains the tiny model
  with: its task is FIH-VLN-v0 (the ``benchmark/nav/fih_vln_synthetic`` task, which it
  includes) and its RGB and depth sensors are both 64 x 64. ``benchmark/nav/fih_vln_synthetic``
  itself has a 224 x 224 RGB sensor and a 256 x 256 depth sensor and is refused as it stands;
  record from it with matching sizes, e.g. ``--config benchmark/nav/fih_vln_synthetic
  habitat.simulator.agents.main_agent.sim_sensors.rgb_sensor.width=256
  habitat.simulator.agents.main_agent.sim_sensors.rgb_sensor.height=256``. Any config whose
  task is FIH-VLN-v0 works; positional ``overrides`` are Hydra overrides as for
  :mod:`habitat_fih.run_oracle` (``habitat.dataset.split`` is set from ``--split``).
- ``--follower shortest_path`` (default) takes every action from
  ``observations["shortest_path_sensor"]``, exactly as the fih trainer's collector reads its
  expert (``habitat_fih.trainers.collector.EXPERT_UUID``), so the recorded path is the one
  training sees. ``--follower reference`` follows the episode's ``reference_path`` instead:
  habitat's ``ShortestPathFollower`` toward one waypoint after another (a waypoint counts as
  reached within ``forward_step_size``; the last one, the goal, within the expert sensor's
  ``goal_radius``, where it calls STOP). On the bundled synthetic data the reference path IS
  the shortest path (the actions can still differ a little from the expert's, which heads for
  the goal directly); on R2R-CE it is the path the instruction describes.
- ``--max-steps N`` stops after N actions (N + 1 frames) even if the episode is not over;
  ``--max-steps 0`` records the reset view alone. Without it the episode runs until STOP or
  ``habitat.environment.max_episode_steps``.
- Writing. The video streams into a hidden temporary file in the output folder
  (``.clip.mp4.<hex>.tmp.mp4``: OpenCV picks the container by the extension, so the real one
  stays last), is fsynced and read back with ``cv2.VideoCapture`` (the frame count and size
  must be N frames of W x H, else an error); the sidecar goes through ``write_sidecar`` (atomic)
  to a hidden temporary name too. Only then are they moved into place: an existing video of the
  same name is removed first, then the sidecar is renamed, then the video, last. The video is
  the commit record: a process killed at any moment leaves either the previous pair, or no
  video (possibly with a sidecar, which nothing reads without its video), or the complete new
  pair, never a video with a half-written or mismatched sidecar. A killed run can leave its
  hidden ``.tmp`` files behind (safe to delete); on any error that Python sees they are removed.
- Bad input (unknown config, split or episode id, an output folder that is missing or not
  writable, an extension other than .mp4 / .avi, ``--max-steps < 0``, ``--fps <= 0``, a config
  without the FIH task or with mismatched sensors, another video of the same name with another
  extension in the folder: ``clip.mp4`` and ``clip.avi`` would share ``clip.geometry.npz``) is
  ONE line on stderr and exit status 2, and nothing is written. A failure after the episode
  ran (the video does not read back) is one line with exit status 1, and the previous files of
  that name are left as they were.

On success one line on stdout names both files, the number of frames and whether the episode
ended with STOP.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import logging
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from habitat import Env, make_dataset
from habitat.core.logging import logger as habitat_logger
from habitat.core.simulator import SensorTypes
from habitat.sims.habitat_simulator.actions import HabitatSimActions
from habitat.tasks.nav.shortest_path_follower import ShortestPathFollower
from tqdm import tqdm

import habitat_fih  # noqa: F401  (compat + FIHSim-v0 + FIH task + config search path)
from habitat_fih.config import get_config
from habitat_fih.datasets.sidecar import SUFFIX as SIDECAR_SUFFIX
from habitat_fih.datasets.sidecar import Sidecar, sidecar_path, write_sidecar
from habitat_fih.geometry.camera import intrinsics_from_hfov

__all__ = ["DEFAULT_CONFIG", "FOURCC", "RecordError", "main", "record"]

DEFAULT_CONFIG = "fih/synthetic_tiny"
FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}
#: videos that would claim the same sidecar as the output (``sidecar_path`` drops the extension)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
EXPERT_UUID = "shortest_path_sensor"  # as habitat_fih.trainers.collector.EXPERT_UUID
FOLLOWERS = ("shortest_path", "reference")
PROG = "python -m habitat_fih.datasets.record"


class RecordError(Exception):
    """Bad input or a failed write: `main` prints the message as one line (exit `code`)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as ONE line on stderr (exit status 2), usage not repeated."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--split", default="val_seen", help="dataset split (default: val_seen)")
    p.add_argument("--episode", required=True, help="episode id in the split")
    p.add_argument("--out", required=True, help="output video, .mp4 or .avi")
    p.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help=f"a habitat-fih config whose task is FIH-VLN-v0 (default: {DEFAULT_CONFIG})",
    )
    p.add_argument(
        "--max-steps", type=int, default=None, help="stop after N actions (default: whole path)"
    )
    p.add_argument("--fps", type=float, default=5.0, help="video frame rate (default: 5)")
    p.add_argument(
        "--follower",
        choices=FOLLOWERS,
        default="shortest_path",
        help="shortest_path: the FIH task's expert sensor (default); reference: the episode's "
        "reference_path",
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides passed to get_config")
    return p


# --------------------------------------------------------------------------- input checks
def _check_output(out: str) -> tuple[Path, str]:
    """The output path (absolute) and its lower-case extension; the folder must be writable."""
    path = Path(os.path.abspath(out))
    ext = path.suffix.lower()
    if ext not in FOURCC:
        raise RecordError(
            f"--out {out!r}: unsupported extension {path.suffix or '(none)'!r}; use .mp4 or .avi"
        )
    folder = path.parent
    if not folder.is_dir():
        raise RecordError(f"--out {out!r}: output folder {str(folder)!r} does not exist")
    if path.is_dir():
        raise RecordError(f"--out {out!r} is a folder, not a video file name")
    # clip.mp4 and clip.avi would share clip.geometry.npz (sidecar_path keeps only the stem)
    others = sorted(
        p.name
        for p in folder.glob(f"{glob.escape(path.stem)}.*")
        if p.name != path.name and p.suffix.lower() in VIDEO_EXTENSIONS and p.stem == path.stem
    )
    if others:
        raise RecordError(
            f"--out {out!r}: {others[0]!r} in the same folder would share the sidecar "
            f"{sidecar_path(path).name!r}; remove it or choose another name"
        )
    probe = folder / f".{path.name}.{uuid.uuid4().hex}.probe"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except OSError as exc:
        raise RecordError(
            f"--out {out!r}: output folder {str(folder)!r} is not writable ({exc.strerror})"
        ) from None
    probe.unlink(missing_ok=True)
    return path, ext


@contextlib.contextmanager
def _quiet_habitat():
    """Habitat's INFO lines ("Initializing dataset ...") off, so that a bad input found while
    loading stays ONE line on stderr."""
    level = habitat_logger.level
    habitat_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        habitat_logger.setLevel(level)


def _load_config(name: str, split: str, overrides: Sequence[str]):
    try:
        cfg = get_config(name, [f"habitat.dataset.split={split}", *overrides])
    except FileNotFoundError as exc:
        raise RecordError(f"--config: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - Hydra / OmegaConf errors on bad overrides
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RecordError(
            f"config {name!r} with overrides {list(overrides)}: {type(exc).__name__}: {first}"
        ) from None
    task = cfg.habitat.task
    if task.type != "FIH-VLN-v0":
        raise RecordError(
            f"config {name!r}: task type is {task.type!r}; recording needs FIH-VLN-v0 "
            f"(e.g. --config {DEFAULT_CONFIG} or benchmark/nav/fih_vln_synthetic)"
        )
    heatmaps = task.lab_sensors.get("frame_heatmaps")
    if heatmaps is None or heatmaps.get("min_overlap") is None:
        raise RecordError(
            f"config {name!r}: no habitat.task.lab_sensors.frame_heatmaps.min_overlap (the "
            "sidecar records it)"
        )
    if task.lab_sensors.get(EXPERT_UUID) is None:
        raise RecordError(
            f"config {name!r}: no habitat.task.lab_sensors.{EXPERT_UUID} (the expert to record)"
        )
    return cfg


def _available_splits(template: str) -> list[str]:
    """Split names for which ``template.format(split=name)`` exists (``.../{split}/...``)."""
    prefix = template.split("{split}", 1)[0]
    base = Path(prefix if prefix.endswith(("/", os.sep)) else os.path.dirname(prefix) or ".")
    if "{split}" not in template or not base.is_dir():
        return []
    names = [d.name for d in base.iterdir()]
    return sorted(n for n in names if os.path.isfile(template.format(split=n)))


def _load_episode(cfg, split: str, episode_id: str):
    """The dataset restricted to the one episode (so ``Env.reset`` starts it)."""
    template = str(cfg.habitat.dataset.data_path)
    data_file = template.format(split=split)
    if not os.path.isfile(data_file):
        splits = _available_splits(template)
        raise RecordError(
            f"--split {split!r}: no episode file {data_file!r} (splits found: "
            f"{', '.join(splits) if splits else 'none'}; paths are relative to "
            f"{os.getcwd()!r})"
        )
    try:
        with _quiet_habitat():
            dataset = make_dataset(cfg.habitat.dataset.type, config=cfg.habitat.dataset)
    except Exception as exc:  # noqa: BLE001 - any failure to read the episode file
        raise RecordError(
            f"--split {split!r}: cannot read {data_file!r} ({type(exc).__name__}: {exc})"
        ) from None
    matches = [ep for ep in dataset.episodes if str(ep.episode_id) == str(episode_id)]
    if not matches:
        ids = [str(ep.episode_id) for ep in dataset.episodes]
        raise RecordError(
            f"--episode {episode_id!r}: no such episode in split {split!r} ({len(ids)} "
            f"episodes; first ids: {', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''})"
        )
    dataset.episodes = matches[:1]
    return dataset


def _camera_sensors(env: Env, depth_uuid: str) -> tuple[str, Any]:
    """The RGB sensor's uuid and config; it must look exactly as the depth sensor does."""
    sensors = env.sim.sensor_suite.sensors
    rgb = [uuid_ for uuid_, s in sensors.items() if s.sensor_type == SensorTypes.COLOR]
    if len(rgb) != 1:
        raise RecordError(
            f"the config must have exactly one RGB sensor to record, found {rgb} among "
            f"{sorted(sensors)}"
        )
    rgb_uuid = rgb[0]
    rc, dc = sensors[rgb_uuid].config, sensors[depth_uuid].config
    differences = []
    for key in ("position", "orientation"):
        a, b = np.asarray(rc[key], np.float64), np.asarray(dc[key], np.float64)
        if a.shape != b.shape or not np.allclose(a, b, rtol=0.0, atol=1e-9):
            differences.append(f"{key} {a.tolist()} vs {b.tolist()}")
    if (int(rc.width), int(rc.height)) != (int(dc.width), int(dc.height)):
        differences.append(f"resolution {rc.width}x{rc.height} vs {dc.width}x{dc.height}")
    if abs(float(rc.hfov) - float(dc.hfov)) > 1e-9:
        differences.append(f"hfov {rc.hfov} vs {dc.hfov}")
    if differences:
        raise RecordError(
            f"the RGB sensor {rgb_uuid!r} and the depth sensor {depth_uuid!r} differ ("
            + "; ".join(differences)
            + "): the sidecar describes the depth camera and the video is the RGB camera, so "
            "they must match (override the sensors' settings, e.g. habitat.simulator.agents."
            "main_agent.sim_sensors.rgb_sensor.width=...)"
        )
    return rgb_uuid, rc


# --------------------------------------------------------------------------- followers
class _ReferenceFollower:
    """Habitat's ShortestPathFollower along ``episode.reference_path``, waypoint by waypoint
    (see the module docstring); STOP at the last waypoint."""

    def __init__(self, sim: Any, episode: Any, pass_radius: float, goal_radius: float) -> None:
        path = [list(map(float, p)) for p in (getattr(episode, "reference_path", None) or [])]
        if not path:
            path = [list(map(float, episode.goals[0].position))]
        self._sim = sim
        self._waypoints = path
        self._k = 0
        self._pass = ShortestPathFollower(sim, pass_radius, return_one_hot=False)
        self._goal = ShortestPathFollower(sim, goal_radius, return_one_hot=False)
        self._pass_radius = pass_radius

    def __call__(self, observations: Any) -> int:
        last = len(self._waypoints) - 1
        position = self._sim.get_agent_state().position
        while self._k < last:
            d = self._sim.geodesic_distance(position, [self._waypoints[self._k]])
            if np.isfinite(d) and d > self._pass_radius:
                action = self._pass.get_next_action(self._waypoints[self._k])
                if action is not None and int(action) != HabitatSimActions.stop:
                    return int(action)
            self._k += 1  # reached (or unreachable / no action): on to the next waypoint
        action = self._goal.get_next_action(self._waypoints[last])
        return int(HabitatSimActions.stop if action is None else action)


def _expert_action(observations: Any) -> int:
    return int(np.asarray(observations[EXPERT_UUID]).reshape(-1)[0])


# --------------------------------------------------------------------------- writing
def _tmp_name(path: Path, tail: str) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp{tail}")


def _open_writer(path: Path, ext: str, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC[ext]), fps, size)
    if not writer.isOpened():
        raise RecordError(
            f"OpenCV cannot open a {FOURCC[ext]} video writer for {str(path)!r}", code=1
        )
    return writer


def _frames_read_back(path: Path) -> tuple[int, set[tuple[int, ...]], int]:
    """Frames decoded from the video, their shapes, and the count its header declares."""
    capture = cv2.VideoCapture(str(path))
    count, shapes = 0, set()
    try:
        declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            count += 1
            shapes.add(tuple(frame.shape))
    finally:
        capture.release()
    return count, shapes, declared


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


# --------------------------------------------------------------------------- recording
def _step_through(
    env: Env,
    obs: Any,
    choose: Any,
    rgb_uuid: str,
    writer: cv2.VideoWriter,
    max_steps: int | None,
    limit: int,
    desc: str,
) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """Run the episode from its reset observation `obs`: each frame's RGB goes to `writer`;
    returns the depth camera's poses and metric depths per frame and the actions between."""
    task = env.task
    poses, depths, actions = [], [], []
    total = limit if max_steps is None else min(max_steps, limit)
    with tqdm(total=total, desc=desc, unit="step") as bar:
        while True:
            rgb = np.ascontiguousarray(np.asarray(obs[rgb_uuid])[..., :3], dtype=np.uint8)
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            poses.append(np.asarray(task.current_frame(obs).pose, dtype=np.float64))
            depths.append(task.sensor_depth(obs[task.depth_uuid]))
            if env.episode_over or (max_steps is not None and len(actions) >= max_steps):
                break
            action = int(choose(obs))
            obs = env.step(action)
            actions.append(action)
            bar.update(1)
        bar.total = bar.n  # the path may end before the limit
        bar.refresh()
    return poses, depths, actions


def _commit(tmp_video: Path, video: Path, tmp_side: Path, side: Path, sidecar: Sidecar) -> None:
    """Move the finished pair into place, the video last (module docstring)."""
    _fsync(tmp_video)
    write_sidecar(tmp_side, sidecar)
    if os.path.lexists(video):
        os.unlink(video)
    os.replace(tmp_side, side)
    os.replace(tmp_video, video)


def record(
    *,
    episode: str,
    out: str,
    split: str = "val_seen",
    config: str = DEFAULT_CONFIG,
    max_steps: int | None = None,
    fps: float = 5.0,
    follower: str = "shortest_path",
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Record one episode (module docstring); returns a summary dict. Raises `RecordError`."""
    if max_steps is not None and max_steps < 0:
        raise RecordError(f"--max-steps must be >= 0, got {max_steps}")
    if not (np.isfinite(fps) and fps > 0):
        raise RecordError(f"--fps must be > 0, got {fps}")
    if follower not in FOLLOWERS:
        raise RecordError(f"--follower must be one of {', '.join(FOLLOWERS)}, got {follower!r}")
    video, ext = _check_output(out)
    side = sidecar_path(video)
    cfg = _load_config(config, split, overrides)
    dataset = _load_episode(cfg, split, episode)

    tmp_video, tmp_side = _tmp_name(video, ext), _tmp_name(side, SIDECAR_SUFFIX)
    try:
        with _quiet_habitat():
            env = Env(config=cfg, dataset=dataset)
        with env:
            task = env.task
            rgb_uuid, rgb_cfg = _camera_sensors(env, task.depth_uuid)
            width, height = int(rgb_cfg.width), int(rgb_cfg.height)
            obs = env.reset()
            ep = env.current_episode
            if follower == "shortest_path":
                choose = _expert_action
            else:
                choose = _ReferenceFollower(
                    env.sim,
                    ep,
                    pass_radius=float(cfg.habitat.simulator.forward_step_size),
                    goal_radius=float(cfg.habitat.task.lab_sensors[EXPERT_UUID].goal_radius),
                )
            writer = _open_writer(tmp_video, ext, fps, (width, height))
            try:
                poses, depths, actions = _step_through(
                    env,
                    obs,
                    choose,
                    rgb_uuid,
                    writer,
                    max_steps,
                    int(cfg.habitat.environment.max_episode_steps),
                    f"record {split}/{ep.episode_id}",
                )
            finally:
                writer.release()
            collisions = env.get_metrics().get("collisions")
            stopped = env.episode_over and bool(actions) and actions[-1] == HabitatSimActions.stop
        n = len(poses)
        d_h, d_w = depths[0].shape
        sidecar = Sidecar(
            poses=np.stack(poses),
            intrinsics=np.repeat(intrinsics_from_hfov(task.hfov, d_w, d_h)[None], n, axis=0),
            hfov=float(task.hfov),
            depth=np.stack(depths).astype(np.float32),
            max_depth=float(task.max_depth),
            frame_indices=np.arange(n, dtype=np.int64),
            actions=np.asarray([*actions, -1], dtype=np.int64),
            working_resolution=int(task.working_size[0]),
            abs_tol=float(task.abs_tol),
            rel_tol=float(task.rel_tol),
            min_overlap=float(cfg.habitat.task.lab_sensors.frame_heatmaps.min_overlap),
            episode_id=str(ep.episode_id),
            scene_id=str(ep.scene_id),
            split=split,
            instruction=str(getattr(getattr(ep, "instruction", None), "instruction_text", "")),
        )
        count, shapes, declared = _frames_read_back(tmp_video)
        if count != n or shapes != {(height, width, 3)} or declared not in (0, n):
            raise RecordError(
                f"the video written to {str(tmp_video)!r} reads back as {count} frames of "
                f"{sorted(shapes)} (its header says {declared}), expected {n} frames of "
                f"{(height, width, 3)}",
                code=1,
            )
        _commit(tmp_video, video, tmp_side, side, sidecar)
    finally:
        tmp_video.unlink(missing_ok=True)
        tmp_side.unlink(missing_ok=True)
    if isinstance(collisions, dict):  # habitat's Collisions measure: {"count", "is_collision"}
        collisions = collisions.get("count")
    return {
        "video": str(video),
        "sidecar": str(side),
        "frames": n,
        "resolution": (width, height),
        "episode_id": str(sidecar.episode_id),
        "ended_with_stop": stopped,
        "collisions": None if collisions is None else int(collisions),
    }


def main(argv: list[str] | None = None) -> int:
    """The command line (module docstring); returns the exit status (argparse's too)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, one line on stderr)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        summary = record(
            episode=args.episode,
            out=args.out,
            split=args.split,
            config=args.config,
            max_steps=args.max_steps,
            fps=args.fps,
            follower=args.follower,
            overrides=args.overrides,
        )
    except RecordError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    ended = "ended with STOP" if summary["ended_with_stop"] else "did not end with STOP"
    print(
        f"wrote {summary['video']} and {summary['sidecar']}: {summary['frames']} frames "
        f"({summary['resolution'][0]}x{summary['resolution'][1]}), episode "
        f"{args.split}/{summary['episode_id']} {ended}, collisions: {summary['collisions']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
