"""Speed of the frame-indexed target generators (numpy sensor path vs torch CPU).

Times ``covisibility_heatmaps`` for 32 source frames at a working depth resolution (64² and
128²) onto one target view with a 64² output, plus ``camera_position_heatmaps``, and prints one
table.  The scene is a box room rendered analytically (planar depth), with the source cameras
scattered inside it, so overlaps are realistic (some frames overlap, some do not).

Run: ``python benchmarks/bench_targets.py [--threads 1] [--repeats 30] [--steps 80]``.  Reported
times are the median and the minimum over repeats (wall clock, one call each).  The torch rows
use the batched API with B = 1.  "cached tables" is the FIH task's path: the sources' surface
tables (``geometry.surface``) are built once per remembered frame, so a step pays for one
frame's tables plus the lookup.

The last rows run FIH-VLN-v0 itself (``habitat.Env``, bundled val_seen episodes, the expert's
actions, memory of 32 frames at 64²) and report the median step time and the share of it spent
in the task's target computation (working-depth resampling, one frame's tables, co-visibility
of every memory frame); ``--steps 0`` skips them.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np


def _box_room_depth(pose: np.ndarray, hfov: float, size: int, half: np.ndarray) -> np.ndarray:
    """Planar depth [size, size] of a camera inside the axis-aligned box ``|x| <= half``."""
    from habitat_fih.geometry import camera_rays

    rays = camera_rays(hfov, size, size).reshape(-1, 3)  # planar-depth-1 rays, camera frame
    dirs = rays @ pose[:3, :3].T  # world directions
    origin = pose[:3, 3]
    with np.errstate(divide="ignore"):
        t_pos = (half - origin) / dirs
        t_neg = (-half - origin) / dirs
    t_exit = np.where(dirs > 0, t_pos, np.where(dirs < 0, t_neg, np.inf)).min(axis=1)
    return t_exit.reshape(size, size)  # planar depth, since each ray has camera z = -1


def _scene(size: int, n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    from habitat_fih.geometry import pose_from_agent_state, quat_from_angle_axis

    rng = np.random.default_rng(seed)
    half = np.array([4.0, 1.5, 3.0])

    def random_pose() -> np.ndarray:
        pos = rng.uniform(-half + 0.5, half - 0.5)
        yaw = rng.uniform(-math.pi, math.pi)
        return pose_from_agent_state(pos, quat_from_angle_axis(yaw, [0.0, 1.0, 0.0]))

    target_pose = random_pose()
    source_poses = np.stack([random_pose() for _ in range(n)])
    target_depth = _box_room_depth(target_pose, 90.0, size, half).astype(np.float32)
    source_depths = np.stack([_box_room_depth(p, 90.0, size, half) for p in source_poses]).astype(
        np.float32
    )
    return target_depth, target_pose, source_depths, source_poses


def _time(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    fn()  # warm-up (caches, lazy imports)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch / BLAS threads")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--num-sources", type=int, default=32)
    parser.add_argument("--steps", type=int, default=80, help="FIH-VLN-v0 steps (0: skip)")
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))

    import torch

    from habitat_fih.geometry import camera_position_heatmaps, covisibility_heatmaps
    from habitat_fih.geometry.surface import numpy_tables
    from habitat_fih.geometry.targets_torch import (
        camera_position_heatmaps_torch,
        covisibility_heatmaps_torch,
    )

    torch.set_num_threads(args.threads)
    n, out = args.num_sources, (64, 64)
    rows = []
    for size in (64, 128):
        td, tp, sd, sp = _scene(size, n)
        ttd, ttp = torch.from_numpy(td)[None], torch.from_numpy(tp)[None]
        tsd, tsp = torch.from_numpy(sd)[None], torch.from_numpy(sp)[None]
        overlap = covisibility_heatmaps(td, tp, sd, sp, 90.0, out).overlap
        tables = numpy_tables(sd, 0.05, 0.02)
        slots = np.arange(n)

        def cached(td=td, tp=tp, sd=sd, sp=sp, tables=tables, slots=slots) -> None:
            numpy_tables(sd[:1], 0.05, 0.02)  # the newly remembered frame
            covisibility_heatmaps(td, tp, sd, sp, 90.0, out, source_tables=(tables, slots))

        cases: list[tuple[str, Callable[[], object]]] = [
            ("covisibility numpy", partial(covisibility_heatmaps, td, tp, sd, sp, 90.0, out)),
            ("covisibility numpy, cached tables", cached),
            (
                "covisibility torch-cpu",
                partial(covisibility_heatmaps_torch, ttd, ttp, tsd, tsp, 90.0, out),
            ),
            ("camera-position numpy", partial(camera_position_heatmaps, td, tp, sp, 90.0, out)),
            (
                "camera-position torch-cpu",
                partial(camera_position_heatmaps_torch, ttd, ttp, tsp, 90.0, out),
            ),
        ]
        for name, fn in cases:
            median, best = _time(fn, args.repeats)
            rows.append((name, f"{n} x {size}²", median, best))
        rows.append(("(mean overlap of the scene)", f"{size}²", float(overlap.mean()), math.nan))

    if args.steps:
        step_ms, target_ms = _task_steps(args.steps)
        rows.append(("FIH-VLN-v0 step (env.step)", "32 x 64²", step_ms, math.nan))
        rows.append(("  of which targets", "32 x 64²", target_ms, math.nan))
        rows.append(("  targets share of a step", "", target_ms / step_ms, math.nan))

    print(f"threads={args.threads} repeats={args.repeats} output={out[0]}x{out[1]}")
    print(f"{'function':34s} {'sources x depth res':>20s} {'median ms':>10s} {'min ms':>8s}")
    for name, res, median, best in rows:
        if math.isnan(best):
            print(f"{name:34s} {res:>20s} {median:10.3f} {'':>8s}")
        else:
            print(f"{name:34s} {res:>20s} {median:10.2f} {best:8.2f}")


def _task_steps(steps: int) -> tuple[float, float]:
    """Median env.step and median target computation (ms) over ``steps`` FIH-VLN-v0 steps with
    a full memory (the first 40 steps of each episode fill it and are not counted)."""
    import habitat_fih  # noqa: F401  (compat first)

    # isort: split
    from habitat import Env
    from tqdm import tqdm

    from habitat_fih.config import get_config
    from habitat_fih.tasks.fih_task import FIHVLNTask

    spent: list[float] = []
    original = FIHVLNTask.targets

    def timed(self, observations):
        t0 = time.perf_counter()
        fresh = self._targets is None or self._targets.step != self.step_index
        result = original(self, observations)
        if fresh:
            spent.append(time.perf_counter() - t0)
        return result

    FIHVLNTask.targets = timed  # type: ignore[method-assign]
    cfg = get_config(
        "benchmark/nav/fih_vln_synthetic",
        ["habitat.task.memory_max_frames=32", "habitat.task.working_resolution=64"],
    )
    step_times: list[float] = []
    target_times: list[float] = []
    with Env(config=cfg) as env, tqdm(total=steps, desc="FIH-VLN-v0 steps") as bar:
        while len(step_times) < steps:
            obs = env.reset()
            k = 0
            while not env.episode_over and len(step_times) < steps:
                spent.clear()
                t0 = time.perf_counter()
                obs = env.step(int(obs["shortest_path_sensor"][0]) or 1)
                dt = time.perf_counter() - t0
                k += 1
                if k > 40:
                    step_times.append(dt)
                    target_times.append(sum(spent))
                    bar.update()
    FIHVLNTask.targets = original  # type: ignore[method-assign]
    return statistics.median(step_times) * 1e3, statistics.median(target_times) * 1e3


if __name__ == "__main__":
    main()
