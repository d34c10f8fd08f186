"""VLN-CE (R2R_VLNCE_v1-3_preprocessed) format episodes on FIHSim-v0 scenes.

File layout written (as VLN-CE's, so the real R2R-CE files drop in the same way):
``<root>/v1/{split}/{split}.json.gz`` with ``episodes`` (episode_id, trajectory_id, scene_id,
start_position, start_rotation [x,y,z,w], goals [{position, radius}], reference_path,
instruction {instruction_text, instruction_tokens}, info {geodesic_distance}) and a top-level
``instruction_vocab {word_list}``.

This starter generator samples start/goal pairs with a geodesic distance in [min, max] metres on
one island, takes the reference path from the navigation grid's shortest path, and writes a short
room-to-room instruction from the apartment's room grid. (The richer house and instruction
generator of the dataset issue replaces it.)
"""

from __future__ import annotations

import gzip
import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["EpisodeSpec", "sample_episodes", "tokenize", "write_split"]


def tokenize(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


@dataclass(frozen=True)
class EpisodeSpec:
    min_geodesic: float = 5.0
    max_geodesic: float = 20.0
    goal_radius: float = 3.0
    max_tries: int = 2000


def _yaw_quaternion_xyzw(yaw: float) -> list[float]:
    return [0.0, float(np.sin(yaw / 2)), 0.0, float(np.cos(yaw / 2))]


def sample_episodes(
    navgrid,
    scene_id: str,
    count: int,
    rng: np.random.Generator,
    spec: EpisodeSpec,
    describe: Callable[[np.ndarray, np.ndarray], str],
    first_id: int = 0,
) -> list[dict]:
    """Sample ``count`` episodes on ``navgrid``; ``describe(start, goal)`` writes the instruction."""
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
        text = describe(start, goal)
        eid = first_id + len(episodes)
        episodes.append(
            {
                "episode_id": eid,
                "trajectory_id": eid,
                "scene_id": scene_id,
                "start_position": [round(float(v), 4) for v in start],
                "start_rotation": _yaw_quaternion_xyzw(float(rng.uniform(-np.pi, np.pi))),
                "goals": [{"position": [round(float(v), 4) for v in goal], "radius": spec.goal_radius}],
                "reference_path": [[round(float(v), 4) for v in p] for p in path],
                "instruction": {"instruction_text": text, "instruction_tokens": []},
                "info": {"geodesic_distance": round(geo, 4)},
            }
        )
    return episodes


def write_split(root: str, split: str, episodes: Sequence[dict]) -> str:
    """Write ``<root>/v1/{split}/{split}.json.gz`` atomically (deterministic bytes)."""
    words = sorted({w for ep in episodes for w in tokenize(ep["instruction"]["instruction_text"])})
    word_list = ["<PAD>", "<UNK>", *words]
    index = {w: i for i, w in enumerate(word_list)}
    eps = []
    for ep in episodes:
        ep = dict(ep)
        toks = [index[w] for w in tokenize(ep["instruction"]["instruction_text"])]
        ep["instruction"] = {**ep["instruction"], "instruction_tokens": toks}
        eps.append(ep)
    payload = json.dumps({"episodes": eps, "instruction_vocab": {"word_list": word_list}},
                         sort_keys=True).encode()
    path = os.path.join(root, "v1", split, f"{split}.json.gz")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            gz.write(payload)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
