"""Natural-language route instructions from a path and the scene semantics (R2R style).

:func:`analyse_path` turns a path (polyline of floor points) plus the scene metadata into ordered
*events*: the rooms visited (from the room polygons and levels), stairs taken (up or down), turns
(heading changes of the polyline, left/right in habitat's convention: +yaw about +Y is left),
landmarks passed (objects whose box comes within :data:`LANDMARK_DISTANCE` of the path, with the
side they are on) and the goal landmark. :func:`compose_instruction` writes them out with randomly
chosen verbs, synonyms, clause joins and optional details, e.g. "Turn around and leave the
bedroom. Turn left into the hallway, walk past the green sofa and stop next to the dining table."

Rooms are only ever mentioned in the order they are visited, and only rooms that are visited; the
goal object is always mentioned (by label, with its colour when needed to tell it apart).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "ROOM_WORDS", "GOAL_LABELS", "PathSummary", "room_at", "room_sequence", "analyse_path",
    "compose_instruction", "densify", "box_distance_xz",
]

#: How each room type may be called in text (the first is the canonical name).
ROOM_WORDS: dict[str, tuple[str, ...]] = {
    "bedroom": ("bedroom",), "bathroom": ("bathroom",), "kitchen": ("kitchen",),
    "living room": ("living room", "lounge"), "dining room": ("dining room",), "office": ("office", "study"),
    "hallway": ("hallway", "corridor", "hall"), "staircase": ("stairs", "staircase"),
}
#: Labels an episode goal may be placed at (distinct, sizeable objects).
GOAL_LABELS: tuple[str, ...] = (
    "bed", "sofa", "armchair", "coffee table", "dining table", "desk", "wardrobe", "bookshelf", "cabinet",
    "tv", "plant", "lamp", "fridge", "counter", "stove", "sink", "toilet", "bathtub", "nightstand",
)
LANDMARK_DISTANCE = 0.8
TURN_DEGREES = 40.0


def densify(points: np.ndarray, step: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``step`` metres along a polyline ``[N, 3]`` and their arc length (x-z)."""
    pts = np.asarray(points, dtype=np.float64)
    out, arc = [pts[0]], [0.0]
    s = 0.0
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        seg = float(np.hypot(b[0] - a[0], b[2] - a[2]))
        n = max(1, int(np.ceil(seg / step)))
        for i in range(1, n + 1):
            out.append(a + (b - a) * i / n)
            arc.append(s + seg * i / n)
        s += seg
    return np.asarray(out), np.asarray(arc)


def room_at(meta: dict, point: np.ndarray) -> dict | None:
    """The metadata room containing ``point`` (x-z inside its rect, on the highest level whose floor
    is at most 0.3 m above the point); None in walls / outside."""
    x, y, z = (float(v) for v in point)
    best = None
    for r in meta["rooms"]:
        x0, z0, x1, z1 = r["rect"]
        if x0 <= x <= x1 and z0 <= z <= z1 and r["floor_y"] <= y + 0.3:
            if best is None or r["floor_y"] > best["floor_y"]:
                best = r
    return best


def room_sequence(meta: dict, points: np.ndarray) -> list[tuple[str, int, int]]:
    """Rooms visited along dense ``points``: ``[(name, first index, last index)]``, consecutive rooms of
    the same name merged (a staircase spans two levels)."""
    seq: list[list] = []
    for i, p in enumerate(points):
        r = room_at(meta, p)
        if r is None:
            continue
        if seq and seq[-1][0] == r["name"]:
            seq[-1][2] = i
        else:
            seq.append([r["name"], i, i])
    return [(n, a, b) for n, a, b in seq]


def box_distance_xz(obj: dict, p: np.ndarray) -> float:
    """x-z distance from point ``p`` to the object's box (0 inside)."""
    lo, hi = obj["bbox"]["min"], obj["bbox"]["max"]
    dx = max(lo[0] - p[0], 0.0, p[0] - hi[0])
    dz = max(lo[2] - p[2], 0.0, p[2] - hi[2])
    return float(np.hypot(dx, dz))


def _yaw(v: np.ndarray) -> float:
    """Heading of direction ``v`` in habitat's convention (forward = (-sin yaw, 0, -cos yaw))."""
    return math.atan2(-float(v[0]), -float(v[2]))


def _wrap(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


@dataclass
class PathSummary:
    """What an instruction may talk about, in path order (arc lengths ``s`` in metres)."""

    rooms: list[tuple[str, float, float]]  # (name, enter s, leave s)
    turns: list[tuple[float, str]]  # (s, "left" | "right" | "around")
    landmarks: list[tuple[float, dict, str]]  # (s, object, side)
    stairs: list[tuple[float, str]]  # (s, "up" | "down")
    start_turn: str  # "", "left", "right", "around"
    goal: dict
    length: float
    same_room_objects: list[dict] = field(default_factory=list)


def analyse_path(meta: dict, path: np.ndarray, start_yaw: float, goal_object: dict) -> PathSummary:
    """Events along ``path`` (polyline ``[N, 3]``) for an agent starting with heading ``start_yaw``."""
    path = np.asarray(path, dtype=np.float64)
    dense, arc = densify(path)
    seq = room_sequence(meta, dense)
    rooms = [(n, float(arc[a]), float(arc[b])) for n, a, b in seq]
    length = float(arc[-1])
    # turns at polyline vertices (merged when closer than 1 m)
    seg_len = np.hypot(*(path[1:] - path[:-1])[:, [0, 2]].T)
    seg_s = np.concatenate([[0.0], np.cumsum(seg_len)])
    turns: list[tuple[float, str]] = []
    headings = [_yaw(path[i + 1] - path[i]) for i in range(len(path) - 1) if seg_len[i] > 1e-6]
    vert_s = [float(seg_s[i + 1]) for i in range(len(path) - 1) if seg_len[i] > 1e-6]
    i = 0
    while i < len(headings) - 1:
        j = i + 1
        while j < len(headings) - 1 and vert_s[j] - vert_s[i] < 1.0:
            j += 1
        delta = _wrap(headings[j] - headings[i]) if vert_s[j] - vert_s[i] < 1.0 else _wrap(headings[i + 1] - headings[i])
        if vert_s[j] - vert_s[i] >= 1.0:
            j = i + 1
        if abs(np.degrees(delta)) > TURN_DEGREES:
            turns.append((vert_s[i], "around" if abs(np.degrees(delta)) > 150 else ("left" if delta > 0 else "right")))
        i = j
    # initial heading
    ahead = dense[min(len(dense) - 1, 10)] - dense[0]
    a0 = np.degrees(_wrap(_yaw(ahead) - start_yaw))
    start_turn = "" if abs(a0) < 35 else ("around" if abs(a0) > 135 else ("left" if a0 > 0 else "right"))
    # stairs
    stairs: list[tuple[float, str]] = []
    for n, s0, s1 in rooms:
        if n == "staircase":
            i0, i1 = int(np.searchsorted(arc, s0)), int(np.searchsorted(arc, s1))
            dy = dense[min(i1, len(dense) - 1), 1] - dense[i0, 1]
            if abs(dy) > 1.0:
                stairs.append((s0, "up" if dy > 0 else "down"))
    # landmarks
    landmarks: list[tuple[float, dict, str]] = []
    for obj in meta["objects"]:
        if obj["id"] == goal_object["id"] or obj["label"] == goal_object["label"]:
            continue
        lo_y = obj["bbox"]["min"][1]
        near = [k for k, p in enumerate(dense) if abs(lo_y - p[1]) < 1.0 and box_distance_xz(obj, p) < LANDMARK_DISTANCE
                and (room_at(meta, p) or {}).get("id") == obj["room"]]
        if not near:
            continue
        k = near[len(near) // 2]
        if arc[k] < 1.0 or arc[k] > length - 1.5:
            continue
        d = dense[min(k + 3, len(dense) - 1)] - dense[max(k - 3, 0)]
        c = (np.asarray(obj["bbox"]["min"]) + np.asarray(obj["bbox"]["max"])) / 2 - dense[k]
        side = "left" if (d[2] * c[0] - d[0] * c[2]) > 0 else "right"
        landmarks.append((float(arc[k]), obj, side))
    landmarks.sort(key=lambda t: (t[0], t[1]["id"]))
    goal_room = goal_object["room"]
    same_room = [o for o in meta["objects"] if o["room"] == goal_room and o["label"] == goal_object["label"]]
    return PathSummary(rooms, turns, landmarks, stairs, start_turn, goal_object, length, same_room)


# ----------------------------------------------------------------------------- text
def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def _room_word(rng: np.random.Generator, name: str) -> str:
    words = ROOM_WORDS[name]
    return words[0] if rng.random() < 0.7 else _pick(rng, words)


def _object_phrase(rng: np.random.Generator, obj: dict, force_color: bool) -> str:
    if force_color or rng.random() < 0.55:
        return f"the {obj['color']} {obj['label']}"
    return f"the {obj['label']}"


def compose_instruction(summary: PathSummary, rng: np.random.Generator) -> str:
    """One instruction for ``summary``; different ``rng`` draws give different wordings."""
    clauses: list[str] = []
    rooms = summary.rooms
    first_turn = {"around": "turn around", "left": "turn left", "right": "turn right"}
    if summary.start_turn:
        clauses.append(_pick(rng, (first_turn[summary.start_turn],) * 2 + (
            f"turn {summary.start_turn}" if summary.start_turn != "around" else "turn around",
            "face the other way" if summary.start_turn == "around" else f"face {summary.start_turn}")))
    turns = list(summary.turns)
    max_landmarks = int(rng.integers(0, 3))
    landmarks = [lm for lm in summary.landmarks]
    if len(landmarks) > max_landmarks:
        idx = sorted(rng.choice(len(landmarks), size=max_landmarks, replace=False).tolist())
        landmarks = [landmarks[i] for i in idx]
    used_labels: set[str] = set()

    def turn_near(s: float, window: float = 1.5) -> str | None:
        for k, (ts, d) in enumerate(turns):
            if abs(ts - s) <= window and d != "around":
                turns.pop(k)
                return d
        return None

    def emit_between(s0: float, s1: float) -> None:
        """Turns and landmarks strictly inside (s0, s1]."""
        events = [(ts, "turn", d) for ts, d in turns if s0 < ts <= s1]
        events += [(ls, "lm", (obj, side)) for ls, obj, side in landmarks if s0 < ls <= s1]
        events.sort(key=lambda e: (e[0], e[1]))
        n_turns = 0
        for s, kind, payload in events:
            if kind == "turn":
                turns.remove((s, payload))
                if payload == "around" or n_turns >= 1 or rng.random() < 0.4:
                    continue
                n_turns += 1
                clauses.append(_pick(rng, (f"turn {payload}", f"make a {payload}", f"take a {payload}",
                                           f"turn {payload} again" if n_turns > 1 else f"bear {payload}")))
            else:
                obj, side = payload
                if obj["label"] in used_labels:
                    continue
                used_labels.add(obj["label"])
                phrase = _object_phrase(rng, obj, False)
                clauses.append(_pick(rng, (f"walk past {phrase}", f"pass {phrase}", f"go past {phrase} on your {side}",
                                           f"keep {phrase} on your {side}", f"continue past {phrase}")))

    s_prev = 0.0
    if len(rooms) == 1:
        emit_between(0.0, summary.length)
    for k, (name, s_in, s_out) in enumerate(rooms):
        word = _room_word(rng, name)
        if k == 0:
            if len(rooms) > 1:
                emit_between(0.0, s_out - 0.5)
                if name == "hallway":
                    clauses.append(_pick(rng, (f"walk down the {word}", f"go along the {word}", f"follow the {word}")))
                elif name == "staircase":
                    ups = [dd for ss, dd in summary.stairs if ss < s_out]
                    clauses.append(f"go {ups[0]} the stairs" if ups else
                                   _pick(rng, ("walk away from the stairs", "leave the staircase")))
                else:
                    clauses.append(_pick(rng, (f"leave the {word}", f"exit the {word}", f"walk out of the {word}",
                                               f"go out of the {word}", f"head out of the {word}")))
                s_prev = s_out - 0.5
            continue
        last = k == len(rooms) - 1
        emit_between(s_prev, s_in - 0.3)
        d = turn_near(s_in)
        if name == "staircase":
            direction = next((dd for ss, dd in summary.stairs if abs(ss - s_in) < 0.5), None)
            if direction is None:  # crosses the foot of the stairs without changing level
                clauses.append(_pick(rng, ("walk past the stairs", "pass the staircase")))
                s_prev = s_in
                if last:
                    emit_between(s_in, summary.length)
                continue
            verb = _pick(rng, (f"go {direction} the stairs", f"walk {direction} the {word}",
                               f"take the stairs {direction}", f"climb {direction} the stairs"
                               if direction == "up" else f"head {direction} the stairs"))
            clauses.append(f"turn {d} and {verb}" if d and rng.random() < 0.6 else verb)
            if not last:
                clauses.append(_pick(rng, ("at the top", "once upstairs", "at the landing"))
                               if direction == "up" else _pick(rng, ("at the bottom", "once downstairs")))
        elif last:
            if d and rng.random() < 0.7:
                clauses.append(_pick(rng, (f"turn {d} into the {word}", f"turn {d} and enter the {word}",
                                           f"make a {d} into the {word}")))
            else:
                clauses.append(_pick(rng, (f"enter the {word}", f"go into the {word}", f"walk into the {word}",
                                           f"step into the {word}", f"continue into the {word}")))
        elif name == "hallway":
            if d and rng.random() < 0.7:
                clauses.append(_pick(rng, (f"turn {d} into the {word}", f"turn {d} and walk down the {word}",
                                           f"go {d} along the {word}")))
            else:
                clauses.append(_pick(rng, (f"go down the {word}", f"walk along the {word}", f"continue down the {word}",
                                           f"walk through the {word}")))
        else:
            clauses.append(_pick(rng, (f"walk through the {word}", f"pass through the {word}", f"cross the {word}",
                                       f"go through the {word}")))
        s_prev = s_in
        if last:
            emit_between(s_in, summary.length)
    goal = _object_phrase(rng, summary.goal, len(summary.same_room_objects) > 1)
    goal_clause = _pick(rng, (f"stop next to {goal}", f"stop by {goal}", f"wait near {goal}",
                              f"stop in front of {goal}", f"stop when you reach {goal}", f"stop beside {goal}",
                              f"wait next to {goal}", f"go to {goal} and stop"))
    if len(rooms) <= 1 and rng.random() < 0.5:
        goal_clause = _pick(rng, (f"walk to {goal} and stop", f"head over to {goal} and wait there"))
    clauses.append(goal_clause)
    return _join(clauses, rng)


def _join(clauses: list[str], rng: np.random.Generator) -> str:
    sentences: list[str] = []
    cur: list[str] = []
    connectives = ("at the top", "once upstairs", "at the landing", "at the bottom", "once downstairs")
    for i, c in enumerate(clauses):
        cur.append(c)
        last = i == len(clauses) - 1
        if c in connectives:
            continue
        if last or (len(cur) >= 2 and rng.random() < 0.5) or len(cur) >= 3:
            sentences.append(_sentence(cur, rng))
            cur = []
    if cur:
        sentences.append(_sentence(cur, rng))
    return " ".join(sentences)


def _sentence(parts: list[str], rng: np.random.Generator) -> str:
    connectives = ("at the top", "once upstairs", "at the landing", "at the bottom", "once downstairs")
    text = ""
    for i, p in enumerate(parts):
        if i == 0:
            text = p
        elif parts[i - 1] in connectives:
            text += ", " + p
        elif i == len(parts) - 1:
            text += _pick(rng, (" and ", ", then ", ", and ", " and then ")) + p
        else:
            text += _pick(rng, (", ", ", then ", " and ")) + p
    return text[0].upper() + text[1:] + "."
