"""VLN-CE (R2R_VLNCE_v1-3_preprocessed) format episodes on FIHSim-v0 scenes.

File layout written (as VLN-CE's, so the real R2R-CE files drop in the same way):
``<root>/v1/{split}/{split}.json.gz`` with ``episodes`` (episode_id, trajectory_id, scene_id,
start_position, start_rotation [x,y,z,w], goals [{position, radius}], reference_path,
instruction {instruction_text, instruction_tokens}, info {geodesic_distance}) and a top-level
``instruction_vocab {word_list, ...}``; instruction tokens are indices into ``word_list``, padded
with 0 (``<PAD>``) to :data:`MAX_TOKENS` as in VLN-CE. ``<root>/v1/{split}/{split}_gt.json.gz`` maps
``str(episode_id)`` to the oracle's ``{locations, actions}`` (positions before each action; actions
0 STOP, 1 FORWARD, 2 LEFT, 3 RIGHT).

* :func:`sample_episodes` — plain start/goal sampling with a caller-supplied ``describe`` (kept
  for tests and custom scenes).
* :func:`sample_house_episodes` — episodes on a generated house: the goal stands next to an object
  (which is the object nearest to it), the start is 5–20 m away by geodesic and, for most
  episodes, in another room; the reference path is the shortest path; the oracle (habitat-sim's
  greedy geodesic follower, goal radius 0.5 m) must reach the goal within 500 steps; instructions
  come from :mod:`habitat_fih.datasets.instructions`.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import quaternion  # noqa: F401  (np.quaternion)

from habitat_fih.datasets.instructions import (
    GOAL_LABELS,
    analyse_path,
    box_distance_xz,
    compose_instruction,
    room_at,
)
from habitat_fih.utils import atomic_write_bytes

__all__ = [
    "EpisodeSpec", "MAX_TOKENS", "build_vocab", "oracle_rollout", "sample_episodes", "sample_house_episodes", "tokenize",
    "write_split", "write_gt", "read_json_gz",
]

MAX_TOKENS = 200
STOP, FORWARD, LEFT, RIGHT = 0, 1, 2, 3


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens (VLN-CE style)."""
    return re.findall(r"[a-z]+", text.lower())


@dataclass(frozen=True)
class EpisodeSpec:
    """Sampling parameters (VLN-CE defaults: success radius 3 m, 500 steps, 0.25 m / 15 deg)."""

    min_geodesic: float = 5.0
    max_geodesic: float = 20.0
    goal_radius: float = 3.0
    max_tries: int = 2000
    p_room_change: float = 0.9
    oracle_goal_radius: float = 0.5
    max_steps: int = 500
    forward_step: float = 0.25
    turn_angle: float = 15.0
    max_segment: float = 3.0  # reference path waypoints at most this far apart


def _yaw_quaternion_xyzw(yaw: float) -> list[float]:
    return [0.0, round(math.sin(yaw / 2), 6), 0.0, round(math.cos(yaw / 2), 6)]


def _r4(v) -> list[float]:
    return [round(float(x), 4) for x in v]


def sample_episodes(
    navgrid,
    scene_id: str,
    count: int,
    rng: np.random.Generator,
    spec: EpisodeSpec,
    describe: Callable[[np.ndarray, np.ndarray], str],
    first_id: int = 0,
) -> list[dict]:
    """Sample ``count`` episodes on ``navgrid``'s largest island; ``describe(start, goal)`` writes the text."""
    episodes: list[dict] = []
    tries = 0
    while len(episodes) < count:
        tries += 1
        if tries > spec.max_tries * max(count, 1):
            raise RuntimeError(
                f"could not sample {count} episodes with geodesic in "
                f"[{spec.min_geodesic}, {spec.max_geodesic}] m on {scene_id!r} "
                f"(got {len(episodes)} after {tries} tries)"
            )
        start = navgrid.sample_navigable_point(rng)
        goal = navgrid.sample_navigable_point(rng)
        geo = float(navgrid.geodesic_distance(start, [goal]))
        if not (spec.min_geodesic <= geo <= spec.max_geodesic):
            continue
        path = navgrid.get_straight_shortest_path_points(start, goal)
        if len(path) < 2:
            continue
        eid = first_id + len(episodes)
        episodes.append(
            {
                "episode_id": eid,
                "trajectory_id": eid,
                "scene_id": scene_id,
                "start_position": _r4(start),
                "start_rotation": _yaw_quaternion_xyzw(float(rng.uniform(-np.pi, np.pi))),
                "goals": [{"position": _r4(goal), "radius": spec.goal_radius}],
                "reference_path": [_r4(p) for p in path],
                "instruction": {"instruction_text": describe(start, goal), "instruction_tokens": []},
                "info": {"geodesic_distance": round(geo, 4)},
            }
        )
    return episodes


def oracle_rollout(navgrid, start: np.ndarray, start_rotation_xyzw: Sequence[float], goal: np.ndarray,
                   spec: EpisodeSpec) -> tuple[list[list[float]], list[int]] | None:
    """The greedy geodesic follower (goal radius ``spec.oracle_goal_radius``) from the start state:
    ``(locations before each action, actions ending with STOP)``, or None if it does not stop within
    ``spec.max_steps`` actions or stops farther than ``spec.goal_radius`` from the goal."""
    from habitat_fih.sim.follower import GreedyFollowerError, GreedyGeodesicFollower

    follower = GreedyGeodesicFollower(
        navgrid, goal_radius=spec.oracle_goal_radius, stop_key=STOP, forward_key=FORWARD, left_key=LEFT,
        right_key=RIGHT, forward_amount=spec.forward_step, turn_angle_deg=spec.turn_angle)
    x, y, z, w = (float(v) for v in start_rotation_xyzw)
    rotation = np.quaternion(w, x, y, z)
    position = np.asarray(start, dtype=np.float64)
    goal = np.asarray(goal, dtype=np.float64)
    locations: list[list[float]] = []
    actions: list[int] = []
    try:
        for _ in range(spec.max_steps):
            action = int(follower.next_action_along(position, rotation, goal))
            locations.append(_r4(position))
            actions.append(action)
            if action == STOP:
                break
            position, rotation = follower.apply(position, rotation, action)
    except GreedyFollowerError:
        return None
    if not actions or actions[-1] != STOP or navgrid.geodesic_distance(position, [goal]) >= spec.goal_radius:
        return None
    return locations, actions


def _reference_path(navgrid, path: list[np.ndarray], max_segment: float) -> list[list[float]]:
    out = [np.asarray(path[0], dtype=np.float64)]
    for b in path[1:]:
        a = out[-1]
        b = np.asarray(b, dtype=np.float64)
        n = int(np.ceil(math.hypot(b[0] - a[0], b[2] - a[2]) / max_segment))
        for i in range(1, n):
            p = a + (b - a) * i / n
            # the floor the straight segment walks on: the interpolated point's cell, or one
            # within 2 cm (a segment crossing a cell corner); else the nearest navigable floor
            node = navgrid.locate(p, max_y_delta=0.5, tol=0.02)
            p[1] = float(navgrid.node_y[node]) if node >= 0 else navgrid.floor_height(p)
            out.append(p)
        out.append(b)
    return [_r4(p) for p in out]


def _goal_near(navgrid, meta: dict, obj: dict, rng: np.random.Generator, island: int) -> np.ndarray | None:
    """A navigable point 0.3–0.9 m from ``obj``'s box whose nearest object is ``obj``, in its room."""
    lo, hi = np.asarray(obj["bbox"]["min"]), np.asarray(obj["bbox"]["max"])
    floor_y = next(r["floor_y"] for r in meta["rooms"] if r["id"] == obj["room"])
    same_level = [o for o in meta["objects"] if o["level"] == obj["level"]]
    for _ in range(25):
        p = np.array([rng.uniform(lo[0] - 0.9, hi[0] + 0.9), floor_y, rng.uniform(lo[2] - 0.9, hi[2] + 0.9)])
        d = box_distance_xz(obj, p)
        if not 0.3 <= d <= 0.9 or not navgrid.is_navigable(p):
            continue
        if navgrid.island_id(p) != island:
            continue
        room = room_at(meta, p)
        if room is None or room["id"] != obj["room"]:
            continue
        others = [box_distance_xz(o, p) for o in same_level if o["id"] != obj["id"]]
        if others and min(others) < d + 0.15:
            continue
        p[1] = navgrid.floor_height(p)
        return p
    return None


def sample_house_episodes(
    navgrid,
    meta: dict,
    scene_id: str,
    count: int,
    rng: np.random.Generator,
    spec: EpisodeSpec = EpisodeSpec(),  # noqa: B008  (frozen dataclass)
    instructions_per_path: int = 1,
    first_id: int = 0,
    first_trajectory: int = 0,
    with_gt: bool = True,
) -> tuple[list[dict], dict[str, dict]]:
    """``count`` trajectories on a generated house (each with ``instructions_per_path`` episodes that
    share ``trajectory_id``) and the oracle ground truth ``{str(episode_id): {locations, actions}}``."""
    island = int(np.argmax(navgrid.island_sizes))
    goals = [o for o in meta["objects"] if o["label"] in GOAL_LABELS]
    if not goals:
        raise ValueError(f"scene {scene_id!r} has no goal objects ({', '.join(GOAL_LABELS)})")
    episodes: list[dict] = []
    gt: dict[str, dict] = {}
    n_traj = 0
    tries = 0
    while n_traj < count:
        tries += 1
        if tries > 200 * max(count, 1):
            raise RuntimeError(f"could not sample {count} episodes on {scene_id!r} (got {n_traj} after {tries} tries)")
        obj = goals[int(rng.integers(len(goals)))]
        goal = _goal_near(navgrid, meta, obj, rng, island)
        if goal is None:
            continue
        goal = np.asarray(_r4(goal))  # everything below uses the values that are written
        want_change = rng.random() < spec.p_room_change
        start = None
        for _ in range(40):
            cand = np.asarray(_r4(navgrid.sample_navigable_point(rng)))
            room = room_at(meta, cand)
            if room is None or (want_change and room["id"] == obj["room"]):
                continue
            geo = float(navgrid.geodesic_distance(cand, [goal]))
            if spec.min_geodesic <= geo <= spec.max_geodesic:
                start = cand
                break
        if start is None:
            continue
        path = navgrid.get_straight_shortest_path_points(start, goal)
        if len(path) < 2:
            continue
        yaw = float(rng.uniform(-np.pi, np.pi))
        rotation = _yaw_quaternion_xyzw(yaw)
        start_r, goal_r = np.asarray(_r4(start)), np.asarray(_r4(goal))
        rollout = oracle_rollout(navgrid, start_r, rotation, goal_r, spec) if with_gt else ([], [])
        if rollout is None:
            continue
        # the instruction describes the reference path: the shortest path's corners resampled
        # with the floor's heights (a straight corner-to-corner segment from a stair landing to
        # the upper floor would otherwise dip below the upper floor and "visit" rooms downstairs)
        reference = _reference_path(navgrid, path, spec.max_segment)
        summary = analyse_path(meta, np.asarray(reference, dtype=np.float64), yaw, obj)
        tid = first_trajectory + n_traj
        for _ in range(instructions_per_path):
            eid = first_id + len(episodes)
            text = compose_instruction(summary, rng)
            episodes.append({
                "episode_id": eid,
                "trajectory_id": tid,
                "scene_id": scene_id,
                "start_position": _r4(start_r),
                "start_rotation": rotation,
                "goals": [{"position": _r4(goal_r), "radius": spec.goal_radius}],
                "reference_path": reference,
                "instruction": {"instruction_text": text, "instruction_tokens": []},
                "info": {"geodesic_distance": round(geo, 4), "goal_object_id": obj["id"],
                         "goal_object": f"{obj['color']} {obj['label']}"},
            })
            if with_gt:
                gt[str(eid)] = {"locations": rollout[0], "actions": rollout[1]}
        n_traj += 1
    return episodes, gt


def _write_json_gz(path: str, payload: dict) -> str:
    data = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(data)
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_json_gz(path: str) -> dict:
    """Read a ``.json.gz`` file with one clear error when missing or malformed."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"episode file not found: {path}")
    try:
        with gzip.open(path, "rt") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError, EOFError) as e:
        raise ValueError(f"malformed episode file {path}: {type(e).__name__}: {e}") from e


def build_vocab(episodes: Sequence[dict]) -> list[str]:
    """``["<PAD>", "<UNK>", *sorted words]`` of the episodes' instructions (share one across splits)."""
    words = sorted({w for ep in episodes for w in tokenize(ep["instruction"]["instruction_text"])})
    return ["<PAD>", "<UNK>", *words]


def write_split(root: str, split: str, episodes: Sequence[dict], pad_to: int | None = MAX_TOKENS,
                word_list: list[str] | None = None) -> str:
    """Write ``<root>/v1/{split}/{split}.json.gz`` atomically (deterministic bytes).

    ``word_list`` is the vocabulary (default: built from these episodes); words outside it map to
    ``<UNK>`` (1). Tokens are padded with 0 to ``pad_to`` (None: no padding)."""
    if word_list is None:
        word_list = build_vocab(episodes)
    index = {w: i for i, w in enumerate(word_list)}
    eps = []
    for ep in episodes:
        ep = dict(ep)
        toks = [index.get(w, 1) for w in tokenize(ep["instruction"]["instruction_text"])]
        if pad_to is not None:
            toks = (toks + [0] * pad_to)[: max(pad_to, 0)]
        ep["instruction"] = {**ep["instruction"], "instruction_tokens": toks}
        eps.append(ep)
    vocab = {"word_list": word_list, "num_vocab": len(word_list), "PAD_INDEX": 0, "UNK_INDEX": 1}
    path = os.path.join(root, "v1", split, f"{split}.json.gz")
    return _write_json_gz(path, {"episodes": eps, "instruction_vocab": vocab})


def write_gt(root: str, split: str, gt: dict[str, dict]) -> str:
    """Write ``<root>/v1/{split}/{split}_gt.json.gz`` (episode_id -> {locations, actions})."""
    return _write_json_gz(os.path.join(root, "v1", split, f"{split}_gt.json.gz"), gt)
