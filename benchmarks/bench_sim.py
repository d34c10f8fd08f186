"""FIHSim-v0 speed: habitat.Env steps/s with RGB 224² + depth 256² on a generated scene of
>= 400k triangles, in one and in two processes, next to the raw Embree cast time of the same
frames; and FIH-VLN-v0's target generation (32 memory frames, 64² maps) against its step time.

    python benchmarks/bench_sim.py [--steps 300] [--triangles 400000]

TopDownMap is left out (see _config). Prints one table. Goals (issue 2 / issue 4): >= 60 steps/s on one core, a full step <= 1.5x the
raw cast time, and target generation <= 20% of the FIH-VLN-v0 step.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import habitat_fih  # noqa: E402,F401  (compat before habitat)

# isort: split
from habitat import Env  # noqa: E402

from habitat_fih.config import get_config  # noqa: E402
from habitat_fih.datasets.episodes import EpisodeSpec, sample_episodes, write_split  # noqa: E402
from habitat_fih.datasets.houses import HouseSpec, export_house  # noqa: E402
from habitat_fih.sim.navigation import NavGrid  # noqa: E402
from habitat_fih.sim.render import CameraSpec, RayCaster  # noqa: E402
from habitat_fih.sim.scene import load_scene  # noqa: E402
from habitat_fih.tasks import heatmap_sensors  # noqa: E402


def make_data(root: Path, triangles: int) -> int:
    export_house(HouseSpec(seed=1, storeys=2, target_triangles=triangles), str(root / "scenes" / "big.glb"))
    mesh = load_scene(str(root / "scenes" / "big.glb"))
    n_tris = mesh.num_faces
    nav = NavGrid.from_mesh(mesh.vertices, mesh.faces)
    eps = sample_episodes(nav, "big.glb", 4, np.random.default_rng(0), EpisodeSpec(), lambda a, b: "go")
    write_split(str(root / "episodes"), "val_seen", eps)
    return n_tris


SHARED_CAST = [  # depth at the RGB's size: one Embree cast serves both sensors
    "habitat.simulator.agents.main_agent.sim_sensors.depth_sensor.width=224",
    "habitat.simulator.agents.main_agent.sim_sensors.depth_sensor.height=224",
]


def _config(root: Path, benchmark: str, extra: list[str]):
    return get_config(
        benchmark,
        [
            *extra,
            "habitat.dataset.split=val_seen",
            f"habitat.dataset.data_path='{root}/episodes/v1/{{split}}/{{split}}.json.gz'",
            f"habitat.dataset.scenes_dir={root}/scenes",
            "habitat.environment.max_episode_steps=100000",
            # TopDownMap (a visualisation measure) redraws habitat's fog of war every step,
            # ~4 ms of pure habitat-lab work; it is left out of the speed measurement.
            "~habitat.task.measurements.top_down_map",
            "habitat.task.measurements.ndtw.gt_path=''" if "fih_vln_" in benchmark else "habitat.seed=1",
        ],
    )


def run_env(args: tuple) -> dict:
    """Step habitat.Env with random forward/turn actions; returns timings and visited poses."""
    root, benchmark, steps, seed, *extra = args
    rng = np.random.default_rng(seed)
    target_time = [0.0]
    originals = {}
    for cls in (heatmap_sensors.FrameIndexedHeatmapSensor, heatmap_sensors.FrameGeometrySensor):
        originals[cls] = cls.get_observation

        def timed(self, *a, _orig=cls.get_observation, **k):
            t0 = time.perf_counter()
            out = _orig(self, *a, **k)
            target_time[0] += time.perf_counter() - t0
            return out

        cls.get_observation = timed
    poses = []
    with Env(config=_config(Path(root), benchmark, list(extra))) as env:
        env.reset()
        # warm-up (first geodesic field, caches)
        for _ in range(5):
            env.step(int(rng.integers(1, 4)))
        target_time[0] = 0.0
        t0 = time.perf_counter()
        for _ in range(steps):
            env.step(int(rng.choice([1, 1, 2, 3])))
            s = env.sim.get_agent_state().sensor_states["depth"]
            poses.append((np.asarray(s.position, dtype=np.float64), s.rotation))
        elapsed = time.perf_counter() - t0
    for cls, orig in originals.items():
        cls.get_observation = orig
    return {"steps": steps, "seconds": elapsed, "target_seconds": target_time[0], "poses": poses}


def raw_cast_seconds(scene_path: str, poses) -> float:
    import quaternion

    caster = RayCaster(load_scene(scene_path))
    specs = [CameraSpec(224, 224, 90.0), CameraSpec(256, 256, 90.0)]
    total = 0.0
    for position, rotation in poses:
        rot = quaternion.as_rotation_matrix(rotation)
        for spec in specs:
            dirs = caster.camera_directions(spec, rot)
            origins = np.broadcast_to(position.astype(np.float32), dirs.shape)
            t0 = time.perf_counter()
            caster.cast(origins, dirs)
            total += time.perf_counter() - t0
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--triangles", type=int, default=400_000, help="at least this many")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_sim_"))
    n_tris = make_data(root, args.triangles)
    vln = "benchmark/nav/fih_vlnce_synthetic"
    fih = "benchmark/nav/fih_vln_synthetic"

    one = run_env((str(root), vln, args.steps, 0))
    raw = raw_cast_seconds(str(root / "scenes" / "big.glb"), one["poses"])
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        t0 = time.perf_counter()
        two = pool.map(run_env, [(str(root), vln, args.steps, s) for s in (1, 2)])
        wall = time.perf_counter() - t0
    fih_run = run_env((str(root), fih, args.steps, 3))
    shared = run_env((str(root), vln, args.steps, 0, *SHARED_CAST))

    step_ms = 1000 * one["seconds"] / one["steps"]
    raw_ms = 1000 * raw / one["steps"]
    fih_step_ms = 1000 * fih_run["seconds"] / fih_run["steps"]
    target_ms = 1000 * fih_run["target_seconds"] / fih_run["steps"]
    two_sps = sum(r["steps"] / r["seconds"] for r in two)
    print(f"\nscene: {n_tris:,} triangles; RGB 224x224 + depth 256x256; {args.steps} steps per run")
    print(f"{'measure':<52}{'value':>14}")
    print(f"{'VLN-v0 + FIHSim-v0, 1 process: steps/s':<52}{1000 / step_ms:>14.1f}")
    print(f"{'  step time (ms)':<52}{step_ms:>14.2f}")
    print(f"{'  raw Embree cast of the same frames (ms)':<52}{raw_ms:>14.2f}")
    print(f"{'  step / raw cast':<52}{step_ms / raw_ms:>14.2f}")
    print(f"{'VLN-v0 + FIHSim-v0, 2 processes: steps/s (sum)':<52}{two_sps:>14.1f}")
    print(f"{'  (incl. start-up, wall) steps/s':<52}{2 * args.steps / wall:>14.1f}")
    print(f"{'RGB + depth both 224x224 (one shared cast): steps/s':<52}{shared['steps'] / shared['seconds']:>14.1f}")
    print(f"{'FIH-VLN-v0 (32 frames, 64x64 maps): step (ms)':<52}{fih_step_ms:>14.2f}")
    print(f"{'  target generation per step (ms)':<52}{target_ms:>14.2f}")
    print(f"{'  target share of the step':<52}{target_ms / fih_step_ms:>14.1%}")


if __name__ == "__main__":
    main()
