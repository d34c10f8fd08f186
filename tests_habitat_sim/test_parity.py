"""FIHSim-v0 against habitat-sim 0.2.2 on the same scenes and poses (both simulators in one
process, built by habitat-lab's ``make_sim`` from the same FIH benchmark config: same agent
(radius 0.1, height 1.5, max climb 0.2, max slope 45), same sensors (RGB 224², depth 256², hfov
90, at 1.25 m)).

Scenes: two bundled houses (textured, closed walls), ``scan_like`` (single-sided walls, no
ceiling, table, shelf, ramp, stairs) and ``simple_room_like`` (closed boxes), the last two from
``scripts/parity/scenes.py`` written as Z-up ``.glb`` without a stage config. Every figure is
recorded for the README's table (``outputs/parity/figures.json``) and asserted against issue 13's
bound, with two stated refinements where habitat-sim itself is the cause: geodesic pairs whose
Detour route is longer than a path walkable on habitat-sim's own navmesh are counted apart, and
a 50-action sequence may end farther than 10 cm apart only after parting at a navigable-set
difference (at most 2 of 10). RGB's bound is set at its test.
"""

from __future__ import annotations

import math

import harness
import numpy as np
import pytest
import quaternion

from habitat_fih.sim.motion import try_step

HOUSES = ("house_000", "house_005")
SCENES = (*HOUSES, "scan_like", "simple_room_like")
N_PAIRS = 100
N_POSES = 50
N_SEQUENCES = 10
SEQUENCE_LENGTH = 50
#: RGB bound: mean absolute difference per channel (0-255) on the textured houses. Measured
#: 0.95-0.97: FIHSim-v0 takes the nearest texel at each pixel centre's hit, habitat-sim's GL
#: sampler filters the texture, and edges rasterise a little differently; 3 leaves room for
#: another Mesa / llvmpipe.
RGB_MAD_BOUND = 3.0


@pytest.fixture(scope="module", params=SCENES)
def scene(request, test_scenes_root):
    name = request.param
    if name in HOUSES:
        path = harness.DATA_SCENES / "fih_synthetic" / f"{name}.glb"
        parity = harness.parity_scenes.house_000(path)
        parity.name = name
    else:
        parity = harness.parity_scenes.make_scene(name)
        path = test_scenes_root / name / f"{name}.glb"
    hsim, fsim = harness.make_sims(path)
    return name, parity, hsim, fsim


def _random_points(hsim, n: int, seed: int) -> list[np.ndarray]:
    hsim.pathfinder.seed(seed)
    return [np.asarray(hsim.pathfinder.get_random_navigable_point(), np.float64) for _ in range(n)]


def test_navigable_agreement(scene):
    """is_navigable on a 0.1 m x-z grid (offset 1.23 cm off cell and wall boundaries): at the
    lowest floor level, and at every walkable-slope surface's own height (floor under furniture,
    table tops, platform, ramp, stairs): agreement >= 97 % on each."""
    name, parity, hsim, fsim = scene
    pts, _, kind = harness.compare_navmesh.dense_grid(parity)
    h = np.array([hsim.pathfinder.is_navigable(p) for p in pts])
    f = np.array([fsim.pathfinder.is_navigable(p) for p in pts])
    floor, surface = kind == 0, kind == -1
    agree_floor = float((h[floor] == f[floor]).mean())
    agree_surface = float((h[surface] == f[surface]).mean())
    harness.record(name, "nav_agree_floor", agree_floor)
    harness.record(name, "nav_agree_surface", agree_surface)
    harness.record(name, "nav_fih_only_surface", float((f & ~h)[surface].mean()))
    harness.record(name, "nav_hsim_only_surface", float((h & ~f)[surface].mean()))
    assert agree_floor >= 0.97, f"{name}: floor-grid agreement {agree_floor:.4f}"
    assert agree_surface >= 0.97, f"{name}: surface-grid agreement {agree_surface:.4f}"


def _walkable_on_hsim(hsim, points, step: float = 0.25, tol: float = 0.01) -> bool:
    """Whether a polyline is walkable on habitat-sim's navmesh: every point every `step` metres
    along it is reached (within `tol`) from the previous one by habitat-sim's own ``try_step``
    (with sliding: a path grazing the navmesh edge by a few mm still counts)."""
    pts = [np.asarray(p, np.float64) for p in points]
    cur = np.asarray(hsim.pathfinder.snap_point(pts[0]), np.float64)
    for p, q in zip(pts[:-1], pts[1:], strict=True):
        n = max(1, math.ceil(np.linalg.norm(q - p) / step))
        for k in range(1, n + 1):
            target = p + (q - p) * k / n
            cur = np.asarray(hsim.pathfinder.try_step(cur, target), np.float64)
            if math.hypot(cur[0] - target[0], cur[2] - target[2]) > tol:
                return False
    return True


def test_geodesic_distances(scene):
    """100 pairs of habitat-sim's random navigable points (seed 0), each side snapping the ends
    itself, pairs finite on both sides and longer than 0.5 m: median relative difference <= 2 %;
    max <= 10 %, except where habitat-sim's route is not the shortest on its OWN navmesh -- FIH's
    path is shorter and walkable on habitat-sim's navmesh (every 0.25 m reached by habitat-sim's
    ``try_step``), so the difference is Detour's search over large polygons, not the
    navigable set; those pairs are counted and recorded. At least 90 % of the pairs are finite on
    both sides or on neither (islands: furniture tops, roofs)."""
    name, _, hsim, fsim = scene
    pts = _random_points(hsim, 2 * N_PAIRS, seed=0)
    rel, rel_all, detour_longer, one_sided = [], [], [], 0
    for a, b in zip(pts[0::2], pts[1::2], strict=True):
        ha, hb = hsim.pathfinder.snap_point(a), hsim.pathfinder.snap_point(b)
        dh = hsim.geodesic_distance(ha, hb)
        fa, fb = fsim.pathfinder.snap_point(a), fsim.pathfinder.snap_point(b)
        snapped = not (np.isnan(fa).any() or np.isnan(fb).any())
        df = fsim.geodesic_distance(fa, fb) if snapped else math.inf
        if math.isfinite(dh) != math.isfinite(df):
            one_sided += 1
            continue
        if not math.isfinite(dh) or dh <= 0.5:  # sub-half-metre: rounding, not routing
            continue
        r = abs(df - dh) / dh
        rel_all.append(r)
        if r > 0.10 and df < dh:
            path = fsim.get_straight_shortest_path_points(fa, fb)
            if _walkable_on_hsim(hsim, [ha, *path[1:-1], hb]):
                detour_longer.append((round(dh, 2), round(df, 2)))
                continue
        rel.append(r)
    rel, rel_all = np.array(rel), np.array(rel_all)
    harness.record(name, "geo_pairs", len(rel_all))
    harness.record(name, "geo_median", float(np.median(rel_all)))
    harness.record(name, "geo_max", float(rel_all.max()))
    harness.record(name, "geo_max_same_route", float(rel.max()))
    harness.record(name, "geo_detour_longer", [list(x) for x in detour_longer])
    harness.record(name, "geo_one_sided", one_sided)
    assert len(rel_all) >= 30, f"{name}: only {len(rel_all)} pairs finite on both sides"
    assert np.median(rel_all) <= 0.02, f"{name}: median rel. difference {np.median(rel_all):.4f}"
    assert rel.max() <= 0.10, f"{name}: max rel. difference {rel.max():.4f}"
    assert len(detour_longer) <= 0.05 * N_PAIRS, f"{name}: {detour_longer}"
    assert one_sided <= 0.1 * N_PAIRS, f"{name}: {one_sided} pairs finite on one side only"


def _poses(hsim, n: int, seed: int):
    rng = np.random.default_rng(seed)
    for p in _random_points(hsim, n, seed=seed):
        yaw = rng.uniform(0.0, 2.0 * math.pi)
        yield p, quaternion.from_rotation_vector([0.0, yaw, 0.0])


def test_depth_and_rgb_at_same_poses(scene):
    """50 poses (habitat-sim's random navigable points, random yaw), both agents set there:
    >= 99 % of the depth pixels valid in both and away from depth edges agree within 1 cm (pooled
    over the poses); RGB's mean absolute difference per channel is recorded, and bounded on the
    textured houses (the harness' own scenes have no materials: each simulator's default
    colour, not a parity figure)."""
    name, _, hsim, fsim = scene
    within, total, per_pose, rgb, means = 0, 0, [], [], []
    for p, q in _poses(hsim, N_POSES, seed=1):
        oh = hsim.get_observations_at(p, q, keep_agent_at_new_pose=True)
        of = fsim.get_observations_at(p, q, keep_agent_at_new_pose=True)
        dh, df = harness.depth_metres(oh), harness.depth_metres(of)
        ok = (dh > 0) & (df > 0) & (dh < 9.99) & (df < 9.99)
        ok &= ~harness.depth_edges(dh) & ~harness.depth_edges(df)
        good = int((np.abs(dh - df)[ok] <= 0.01).sum())
        within, total = within + good, total + int(ok.sum())
        if ok.any():  # a pose facing a wall up close may have no pixel away from an edge
            per_pose.append(good / int(ok.sum()))
        rgb.append(np.abs(oh["rgb"][..., :3].astype(np.float64) - of["rgb"][..., :3]).reshape(-1, 3).mean(0))
        means.append([float(oh["rgb"][..., :3].mean()), float(of["rgb"][..., :3].mean())])
    frac = within / total
    harness.record(name, "depth_within_1cm", frac)
    harness.record(name, "depth_within_1cm_worst_pose", min(per_pose))
    mad = np.mean(rgb, axis=0)
    harness.record(name, "rgb_mad", [float(x) for x in mad])
    harness.record(name, "untextured", name not in HOUSES)
    if means:
        harness.record(name, "rgb_mean_hsim_fih", np.mean(means, axis=0).round(1).tolist())
    assert total > 0.3 * N_POSES * 256 * 256, f"{name}: only {total} comparable depth pixels"
    assert frac >= 0.99, f"{name}: {frac:.4f} of depth pixels within 1 cm"
    if name in HOUSES:
        assert (mad <= RGB_MAD_BOUND).all(), f"{name}: RGB mean abs. difference {mad}"


def _local_disagreement(hsim, fsim, points, y: float, half: float = 0.15, step: float = 0.01) -> bool:
    """Whether the two navigable sets differ anywhere within `half` metres (x-z square, 1 cm grid)
    of any of `points`, at height `y`."""
    offs = np.arange(-half, half + 1e-9, step)
    for p in points:
        for dx in offs:
            for dz in offs:
                q = np.array([p[0] + dx, y, p[2] + dz])
                if hsim.pathfinder.is_navigable(q) != fsim.pathfinder.is_navigable(q):
                    return True
    return False


def test_same_actions_end_at_same_position(scene):
    """10 sequences of 50 actions (forward 0.6, left / right 0.2 each; sliding on, as VLN-CE) from
    habitat-sim's random points, each simulator stepping itself (``sim.step``).

    * End positions: >= 80 % of the sequences end within 10 cm in x-z. A sequence that does not
      first parted (> 1 cm) at a wall where the two navigable sets differ within 15 cm of the
      step's ends (asserted; those differences are bounded by the agreement test above): after
      that the two agents hit different walls, so the gap grows with the steps left.
    * The motion rule itself, step by step: every forward step of the sequences is replayed from
      habitat-sim's pose with both pathfinders' ``try_step`` (the call ``sim.step`` makes): every
      one that does not end within 1 cm is at a local navigable-set difference (so the sliding
      rule is the same), and those are at most 10 % of the steps (measured 92.8-100 %).
    * y: habitat-sim's agent stands on its navmesh, which Recast builds on the cell_height (0.2 m)
      voxel grid rounded up, so its y is 0 to 0.2 m above the floor FIHSim-v0 stands on.
    """
    name, _, hsim, fsim = scene
    rng = np.random.default_rng(2)
    ends, unexplained, worst_dy = [], [], 0.0
    steps_total, steps_close, steps_unexplained = 0, 0, []
    for start in _random_points(hsim, N_SEQUENCES, seed=3):
        actions = rng.choice([1, 2, 3], size=SEQUENCE_LENGTH, p=[0.6, 0.2, 0.2])
        q = quaternion.from_rotation_vector([0.0, rng.uniform(0, 2 * math.pi), 0.0])
        hsim.set_agent_state(start, q)
        fsim.set_agent_state(fsim.pathfinder.snap_point(start), q)
        parted = None
        for k, a in enumerate(actions):
            sh = hsim.get_agent_state()
            hsim.step(int(a))
            fsim.step(int(a))
            ph = np.asarray(hsim.get_agent_state().position, np.float64)
            pf = np.asarray(fsim.get_agent_state().position, np.float64)
            if parted is None and math.hypot(ph[0] - pf[0], ph[2] - pf[2]) > 0.01:
                parted = (k, ph, pf)
            if a == 1:  # the motion rule from the same pose
                start_h = np.asarray(sh.position, np.float64)
                target = start_h + quaternion.rotate_vectors(sh.rotation, [0.0, 0.0, -0.25])
                eh = np.asarray(hsim.pathfinder.try_step(start_h, target), np.float64)
                ef, _ = try_step(fsim.pathfinder, start_h, target, True)  # FIHSim.step's rule
                steps_total += 1
                if math.hypot(eh[0] - ef[0], eh[2] - ef[2]) <= 0.01:
                    steps_close += 1
                elif not _local_disagreement(hsim, fsim, [eh, ef], float(ef[1]) + 0.05):
                    steps_unexplained.append((start_h.round(3).tolist(), eh.round(3).tolist(), ef.round(3).tolist()))
        ph = np.asarray(hsim.get_agent_state().position, np.float64)
        pf = np.asarray(fsim.get_agent_state().position, np.float64)
        ends.append(float(np.hypot(ph[0] - pf[0], ph[2] - pf[2])))
        dy = float(ph[1] - pf[1])
        worst_dy = max(worst_dy, abs(dy))
        assert -0.01 <= dy <= 0.21, f"{name}: habitat-sim y {ph[1]:.3f} vs FIH floor {pf[1]:.3f}"
        if ends[-1] > 0.10:
            k, eh, ef = parted
            if not _local_disagreement(hsim, fsim, [eh, ef], float(ef[1]) + 0.05):
                unexplained.append((k, eh.round(3).tolist(), ef.round(3).tolist()))
    ends = np.array(ends)
    harness.record(name, "slide_within_10cm", float((ends <= 0.10).mean()))
    harness.record(name, "slide_median_xz", float(np.median(ends)))
    harness.record(name, "slide_max_xz", float(ends.max()))
    harness.record(name, "slide_max_dy", worst_dy)
    harness.record(name, "step_within_1cm", steps_close / steps_total)
    assert (ends <= 0.10).mean() >= 0.8, f"{name}: end x-z distances {np.round(ends, 3)}"
    assert not unexplained, f"{name}: sequences parted away from any navigable difference: {unexplained}"
    assert not steps_unexplained, f"{name}: steps differing away from a navigable difference: {steps_unexplained}"
    assert steps_close / steps_total >= 0.90, f"{name}: {steps_close}/{steps_total} steps within 1 cm"
