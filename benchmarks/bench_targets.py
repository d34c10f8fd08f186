"""Speed of the frame-indexed target generators (numpy sensor path vs torch CPU).

Times ``covisibility_heatmaps`` for 32 source frames at a working depth resolution (64² and
128²) onto one target view with a 64² output, plus ``camera_position_heatmaps``, and prints one
table.  The scene is a box room rendered analytically (planar depth), with the source cameras
scattered inside it, so overlaps are realistic (some frames overlap, some do not).

Run: ``python benchmarks/bench_targets.py [--threads 1] [--repeats 30]``.  Reported times are
the median and the minimum over repeats (wall clock, one call each).  The torch rows use the
batched API with B = 1.
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
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))

    import torch

    from habitat_fih.geometry import camera_position_heatmaps, covisibility_heatmaps
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
        cases: list[tuple[str, Callable[[], object]]] = [
            ("covisibility numpy", partial(covisibility_heatmaps, td, tp, sd, sp, 90.0, out)),
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

    print(f"threads={args.threads} repeats={args.repeats} output={out[0]}x{out[1]}")
    print(f"{'function':28s} {'sources x depth res':>20s} {'median ms':>10s} {'min ms':>8s}")
    for name, res, median, best in rows:
        if math.isnan(best):
            print(f"{name:28s} {res:>20s} {median:10.3f} {'':>8s}")
        else:
            print(f"{name:28s} {res:>20s} {median:10.2f} {best:8.2f}")


if __name__ == "__main__":
    main()
