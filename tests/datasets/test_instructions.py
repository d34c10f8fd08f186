"""Instructions name the goal object and mention rooms only in the order the path visits them.

The room sequence and the goal object are recomputed here from the scene metadata and the episode
(reference path, goal position), independently of the generator's own path analysis.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from .conftest import SPLITS, metadata, split_data

# vocabulary of room mentions (phrase -> room type)
MENTIONS = {
    "living room": "living room", "lounge": "living room", "dining room": "dining room",
    "bedroom": "bedroom", "bathroom": "bathroom", "kitchen": "kitchen", "office": "office", "study": "office",
    "hallway": "hallway", "corridor": "hallway", "hall": "hallway", "stairs": "staircase",
    "staircase": "staircase",
}
_PATTERN = re.compile(r"\b(" + "|".join(sorted(MENTIONS, key=len, reverse=True)) + r")\b")


def _rooms_along(meta: dict, path: list[list[float]]) -> list[str]:
    pts = []
    for a, b in zip(path[:-1], path[1:], strict=True):
        a, b = np.asarray(a), np.asarray(b)
        n = max(2, int(np.linalg.norm(b - a) / 0.05))
        pts += [a + (b - a) * t for t in np.linspace(0, 1, n)]
    names: list[str] = []
    for p in pts:
        inside = [r for r in meta["rooms"]
                  if r["rect"][0] <= p[0] <= r["rect"][2] and r["rect"][1] <= p[2] <= r["rect"][3]
                  and r["floor_y"] <= p[1] + 0.3]
        if not inside:
            continue
        name = max(inside, key=lambda r: r["floor_y"])["name"]
        if not names or names[-1] != name:
            names.append(name)
    return names


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


def _nearest_object(meta: dict, goal: list[float]) -> dict:
    def dist(o):
        lo, hi = o["bbox"]["min"], o["bbox"]["max"]
        return np.hypot(max(lo[0] - goal[0], 0, goal[0] - hi[0]), max(lo[2] - goal[2], 0, goal[2] - hi[2]))

    level = [o for o in meta["objects"] if abs(o["bbox"]["min"][1] - goal[1]) < 1.0]
    return min(level, key=dist)


@pytest.mark.parametrize("split", SPLITS)
def test_rooms_in_order_and_goal_named(bundled, split):
    for ep in split_data(split)["episodes"]:
        meta = metadata(ep["scene_id"])
        text = ep["instruction"]["instruction_text"].lower()
        visited = _rooms_along(meta, ep["reference_path"])
        mentioned = [MENTIONS[m] for m in _PATTERN.findall(text)]
        assert _is_subsequence(mentioned, visited), (ep["episode_id"], text, visited)
        goal_obj = _nearest_object(meta, ep["goals"][0]["position"])
        last_sentence = text.rstrip(".").split(".")[-1]
        assert goal_obj["label"] in last_sentence, (ep["episode_id"], text, goal_obj["label"])
        if "up the stairs" in text or "upstairs" in text:
            assert ep["goals"][0]["position"][1] > ep["start_position"][1] + 1.0
        if "down the stairs" in text or "downstairs" in text:
            assert ep["goals"][0]["position"][1] < ep["start_position"][1] - 1.0


def test_instructions_vary(bundled):
    eps = split_data("train")["episodes"]
    texts = [ep["instruction"]["instruction_text"] for ep in eps]
    assert len(set(texts)) == len(texts)
    # the same trajectory is described differently
    by_traj: dict[int, set[str]] = {}
    for ep in eps:
        by_traj.setdefault(ep["trajectory_id"], set()).add(ep["instruction"]["instruction_text"])
    assert np.mean([len(v) > 1 for v in by_traj.values()]) > 0.9
    # many distinct opening and goal phrasings, rooms mentioned in most
    openings = {" ".join(t.lower().split()[:2]) for t in texts}
    endings = {" ".join(t.lower().rstrip(".").split(".")[-1].split()[:2]) for t in texts}
    assert len(openings) >= 10 and len(endings) >= 6
    assert np.mean([bool(_PATTERN.search(t.lower())) for t in texts]) > 0.8
    vocab = split_data("train")["instruction_vocab"]["word_list"]
    assert len(vocab) > 100
