"""Closed-form co-visibility: exact analytic scenes (tests/helpers/analytic_scenes.py) whose
co-visible sets follow from ray geometry alone, never from the module under test.

* pure turns (same centre): a target pixel is co-visible iff its ray, rotated into the source
  frame, projects inside the source image - nothing can be hidden;
* translations / occluders: the target pixel's exact surface point X (float64 ray cast) is
  co-visible iff it projects inside the source image in front of it and the segment from the
  source centre to X is free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from analytic_scenes import (
    FLOOR,
    Box,
    Rect,
    cast,
    first_hit,
    forward,
    grazing_wall,
    in_image,
    iou,
    pixel_rays,
    project,
    ray_through,
    render_depth,
    segment_blocked,
    staircase,
    yaw_pose,
)

from habitat_fih.geometry import CameraStatus, camera_position_heatmaps, covisibility_heatmaps
from habitat_fih.geometry.targets_torch import covisibility_heatmaps_torch

HFOV = 90.0
EYE = 1.25  # camera height (metres)
SIZES = [64, 32]
TURNS = [5.0, 15.0, 30.0, 45.0]
SHIFTS = [0.25, 1.0]

FAR_WALL = Rect((0.0, 2.0, -4.0), (5.0, 0.0, 0.0), (0.0, 2.0, 0.0))  # x in [-5, 5], y in [0, 4]
TURN_SCENES = {
    "floor": [FLOOR],
    "grazing_wall": [FLOOR, grazing_wall(10.0, 0.75)],
    "stairs": [FLOOR, *staircase(5, 0.2, 0.3, 2.0)],
}
# index 1 is the occluder: a 0.5 m cube (hides floor) or a 1.5 m pillar (hides floor + far wall)
OCCLUDER_SCENES = {
    "cube": [FLOOR, Box((-0.1, 0.0, -1.75), (0.4, 0.5, -1.25)), FAR_WALL],
    "pillar": [FLOOR, Box((-0.1, 0.0, -1.75), (0.4, 1.5, -1.25)), FAR_WALL],
}
OCCLUDER, WALL = 1, 2
SIDE_SHIFT = 0.75  # the source stands this far right of the target


@dataclass(frozen=True)
class Case:
    name: str
    scene: list
    target_pose: np.ndarray
    source_pose: np.ndarray
    pure_turn: bool = False


def turn_case(scene_name: str, deg: float, swap: bool = False) -> Case:
    """Source = the camera before a turn of ``deg`` (left if > 0), target = after (or the
    other way round with ``swap``)."""
    before, after = yaw_pose(0.0, (0.0, EYE, 0.0)), yaw_pose(deg, (0.0, EYE, 0.0))
    target, source = (before, after) if swap else (after, before)
    name = f"{scene_name}/turn{deg:+g}{'/swapped' if swap else ''}"
    return Case(name, TURN_SCENES[scene_name], target, source, pure_turn=True)


def shift_case(dist: float, heading: float = 20.0) -> Case:
    """Floor only; the source is ``dist`` metres behind (dist > 0) / ahead (< 0) of the target."""
    target = yaw_pose(heading, (0.3, EYE, -0.2))
    source = yaw_pose(heading, target[:3, 3] - dist * forward(target))
    where = "behind" if dist > 0 else "ahead"
    return Case(f"floor/source_{where}_{abs(dist):g}m", [FLOOR], target, source)


def occluder_case(name: str) -> Case:
    return Case(
        f"{name}/side{SIDE_SHIFT:g}",
        OCCLUDER_SCENES[name],
        yaw_pose(0.0, (0.0, EYE, 0.0)),
        yaw_pose(0.0, (SIDE_SHIFT, EYE, 0.0)),
    )


ALL_CASES = (
    [
        turn_case(s, sign * deg, swap)
        for s in TURN_SCENES
        for deg in TURNS
        for sign in (1, -1)
        for swap in (False, True)
    ]
    + [shift_case(sign * d) for d in SHIFTS for sign in (1, -1)]
    + [occluder_case(name) for name in OCCLUDER_SCENES]
)


def depths(case: Case, size: int) -> tuple[np.ndarray, np.ndarray]:
    return (
        render_depth(case.scene, case.target_pose, HFOV, size, size),
        render_depth(case.scene, case.source_pose, HFOV, size, size),
    )


def run_numpy(case: Case, size: int):
    td, sd = depths(case, size)
    return covisibility_heatmaps(
        td, case.target_pose, sd[None], case.source_pose[None], HFOV, out_size=(size, size)
    )


def expected_covisible(case: Case, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form ``(covisible [H, W], valid [H, W])`` of the target pixels."""
    t, _, X = cast(case.scene, case.target_pose, HFOV, size, size)
    valid = np.isfinite(t)
    if case.pure_turn:  # shared centre: only the ray direction matters
        dirs = pixel_rays(HFOV, size, size) @ case.target_pose[:3, :3].T
        u, v, d = project(case.source_pose[:3, 3] + dirs, case.source_pose, HFOV, size, size)
        return valid & in_image(u, v, d, size, size), valid
    u, v, d = project(X, case.source_pose, HFOV, size, size)
    free = ~segment_blocked(case.scene, case.source_pose[:3, 3], X)
    return valid & in_image(u, v, d, size, size) & free, valid


def robustly_hidden(case: Case, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Target pixels whose X is hidden from the source by the occluder along the source rays
    through its projection (u, v) and through (u +- 1, v), (u, v +- 1); and the target index."""
    _, idx, X = cast(case.scene, case.target_pose, HFOV, size, size)
    u, v, d = project(X, case.source_pose, HFOV, size, size)
    hidden = in_image(u, v, d, size, size) & (idx >= 0) & (idx != OCCLUDER)
    hidden &= segment_blocked(case.scene, case.source_pose[:3, 3], X)
    u, v = np.where(hidden, u, 0.0), np.where(hidden, v, 0.0)  # no NaN rays
    for du, dv in [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]:
        rays = ray_through(u + du, v + dv, HFOV, size, size) @ case.source_pose[:3, :3].T
        _, hit = first_hit(case.scene, case.source_pose[:3, 3], rays)
        hidden &= hit == OCCLUDER
    return hidden, idx


def check_iou(case: Case, size: int, res, min_iou: float) -> tuple[np.ndarray, np.ndarray]:
    expected, valid = expected_covisible(case, size)
    pred = res.maps[0] > 0.5
    score = iou(pred, expected)
    assert score >= min_iou, (
        f"{case.name} @ {size}px: IoU {score:.4f} < {min_iou} (covisible: module "
        f"{pred.sum()}, closed form {expected.sum()}, valid {valid.sum()})"
    )
    assert not (pred & ~valid).any(), f"{case.name} @ {size}px: invalid pixels marked covisible"
    return expected, valid


# --------------------------------------------------------------------------- 1. pure turns
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("swap", [False, True], ids=["target_after", "target_before"])
@pytest.mark.parametrize("sign", [1, -1], ids=["left", "right"])
@pytest.mark.parametrize("deg", TURNS)
@pytest.mark.parametrize("scene_name", list(TURN_SCENES))
def test_pure_turn(scene_name: str, deg: float, sign: int, swap: bool, size: int) -> None:
    case = turn_case(scene_name, sign * deg, swap)
    res = run_numpy(case, size)
    expected, valid = check_iou(case, size, res, 0.99)
    # overlap is over the VALID pixels: the module's own covisible count over the closed-form
    # valid count, exactly; and within 1 % of the closed-form fraction
    got = (res.maps[0] > 0.5).sum() / valid.sum()
    want = expected.sum() / valid.sum()
    assert abs(float(res.overlap[0]) - got) <= 1e-6, (
        f"{case.name} @ {size}px: overlap {float(res.overlap[0]):.6f} != covisible / valid "
        f"{got:.6f} (covisible / all pixels would be {expected.sum() / size**2:.6f})"
    )
    assert abs(float(res.overlap[0]) - want) <= 0.01, (case.name, float(res.overlap[0]), want)


@pytest.mark.parametrize("size", SIZES)
def test_turn_closed_form_is_well_posed(size: int) -> None:
    """Sanity of the closed form: partial overlap, a left turn mirrors a right turn, and no
    target ray lands within 1e-3 source pixels of the image border (so float32 rounding in
    the module cannot flip a pixel at the frustum's edge)."""
    exp_l, valid = expected_covisible(turn_case("floor", 30.0), size)
    exp_r, _ = expected_covisible(turn_case("floor", -30.0), size)
    assert 0.3 < exp_l.sum() / valid.sum() < 0.9
    assert np.array_equal(exp_l, exp_r[:, ::-1])
    for sign_deg in [d * s for d in TURNS for s in (1, -1)]:
        case = turn_case("floor", sign_deg)
        dirs = pixel_rays(HFOV, size, size) @ case.target_pose[:3, :3].T
        u, v, d = project(case.source_pose[:3, 3] + dirs, case.source_pose, HFOV, size, size)
        front = d > 0
        margin = np.abs(np.stack([u, u - size, v, v - size])[:, front]).min()
        assert margin > 1e-3, f"{case.name} @ {size}px: a ray {margin:.1e} px from the border"


# --------------------------------------------------------------------------- 2. translation
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("sign", [1, -1], ids=["source_behind", "source_ahead"])
@pytest.mark.parametrize("dist", SHIFTS)
def test_forward_translation_over_floor(dist: float, sign: int, size: int) -> None:
    case = shift_case(sign * dist)
    res = run_numpy(case, size)
    expected, valid = check_iou(case, size, res, 0.98)
    # closed-form sanity: a source behind a level target sees all of its floor; one ahead not
    assert (expected.sum() == valid.sum()) == (sign > 0), f"{case.name}: closed form off"


# --------------------------------------------------------------------------- 3. occlusion
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", list(OCCLUDER_SCENES))
def test_occluder_iou(name: str, size: int) -> None:
    case = occluder_case(name)
    check_iou(case, size, run_numpy(case, size), 0.98)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", list(OCCLUDER_SCENES))
def test_occluder_no_leak(name: str, size: int) -> None:
    """(b) floor hidden behind the box, (c) the far wall behind the pillar (depth edges)."""
    case = occluder_case(name)
    hidden, idx = robustly_hidden(case, size)
    maps = run_numpy(case, size).maps[0]
    backgrounds = {"floor": 0, "far wall": WALL} if name == "pillar" else {"floor": 0}
    for label, surface in backgrounds.items():
        mask = hidden & (idx == surface)
        assert mask.sum() >= 3, f"{case.name} @ {size}px: scene hides too little {label}"
        leaked = np.count_nonzero(maps[mask] > 0)
        assert leaked == 0, (
            f"{case.name} @ {size}px: {leaked} / {mask.sum()} robustly hidden {label} pixels "
            f"covisible (max {maps[mask].max():.3f})"
        )


# --------------------------------------------------------------------------- 4. torch == numpy
@pytest.mark.parametrize("size", SIZES)
def test_torch_matches_numpy(size: int) -> None:
    rendered = [depths(c, size) for c in ALL_CASES]
    td = torch.from_numpy(np.stack([r[0] for r in rendered]))  # [B, H, W] float32
    sd = torch.from_numpy(np.stack([r[1] for r in rendered]))[:, None]  # [B, 1, H, W]
    tp = torch.from_numpy(np.stack([c.target_pose for c in ALL_CASES]))  # float64
    sp = torch.from_numpy(np.stack([c.source_pose for c in ALL_CASES]))[:, None]
    batched = covisibility_heatmaps_torch(td, tp, sd, sp, HFOV, out_size=(size, size))
    for b, case in enumerate(ALL_CASES):
        ref = run_numpy(case, size)
        single = covisibility_heatmaps_torch(
            td[b : b + 1], tp[b : b + 1], sd[b : b + 1], sp[b : b + 1], HFOV, (size, size)
        )
        for label, out in [("B=1", single), (f"B={len(ALL_CASES)}", batched)]:
            k = 0 if label == "B=1" else b
            maps, overlap = out.maps[k].numpy(), out.overlap[k].numpy()
            diff = np.count_nonzero(maps != ref.maps)
            assert diff == 0, f"{case.name} @ {size}px ({label}): {diff} map cells differ"
            assert np.array_equal(overlap, ref.overlap), (
                f"{case.name} @ {size}px ({label}): overlap {overlap} != {ref.overlap}"
            )


# --------------------------------------------------------------------------- 5. camera status
@pytest.mark.parametrize("deg", [d * s for d in TURNS for s in (1, -1)])
def test_camera_status_after_pure_turn(deg: float) -> None:
    same = getattr(CameraStatus, "SAME_POSITION", None)
    assert same is not None, "CameraStatus has no SAME_POSITION member"
    assert int(same) == 4, f"CameraStatus.SAME_POSITION is {int(same)}, expected 4"
    case = turn_case("floor", deg)
    td, _ = depths(case, 32)
    res = camera_position_heatmaps(td, case.target_pose, case.source_pose[None], HFOV, (32, 32))
    assert int(res.status[0]) == int(same), (
        f"{case.name}: status {CameraStatus(int(res.status[0])).name}, expected SAME_POSITION"
    )


def test_camera_status_source_behind() -> None:
    case = shift_case(0.25)
    td, _ = depths(case, 32)
    res = camera_position_heatmaps(td, case.target_pose, case.source_pose[None], HFOV, (32, 32))
    assert int(res.status[0]) == int(CameraStatus.BEHIND), (
        f"{case.name}: status {CameraStatus(int(res.status[0])).name}, expected BEHIND"
    )
