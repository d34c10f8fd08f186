"""Dataset benchmark: time to generate one house and 100 episodes, bundled scene sizes, and the
FIHSim-v0 step rate (RGB 224^2 + depth 256^2 through habitat.Env) on the bundled houses.

    python benchmarks/bench_datasets.py [--episodes 100] [--steps 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import habitat_fih  # noqa: F401
from habitat_fih.datasets.episodes import sample_house_episodes
from habitat_fih.datasets.houses import HouseSpec, export_house

DATA = Path(__file__).resolve().parents[1] / "data"


def bench_generation(n_episodes: int, seed: int = 1, storeys: int = 2) -> dict:
    from habitat_fih.sim.navigation import NavGrid
    from habitat_fih.sim.scene import load_scene

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        house = export_house(HouseSpec(seed=seed, storeys=storeys), os.path.join(tmp, "h.glb"))
        t1 = time.perf_counter()
        meta = house.metadata()
        mesh = load_scene(os.path.join(tmp, "h.glb"))
        nav = NavGrid.from_mesh(mesh.vertices, mesh.faces)
        t2 = time.perf_counter()
        eps, _ = sample_house_episodes(nav, meta, "h.glb", n_episodes, np.random.default_rng(0))
        t3 = time.perf_counter()
        size = os.path.getsize(os.path.join(tmp, "h.glb"))
    return {"house_s": t1 - t0, "navgrid_s": t2 - t1, f"episodes_{n_episodes}_s": t3 - t2,
            "total_s": t3 - t0, "triangles": house.num_triangles, "glb_mb": size / 1e6, "episodes": len(eps)}


def scene_sizes() -> list[dict]:
    out = []
    for glb in sorted((DATA / "scene_datasets" / "fih_synthetic").glob("*.glb")):
        meta = json.loads(glb.with_suffix(".json").read_text())
        out.append({"scene": glb.name, "triangles": meta["num_triangles"], "mb": glb.stat().st_size / 1e6,
                    "storeys": len(meta["levels"]), "rooms": len(meta["rooms"]), "objects": len(meta["objects"])})
    return out


def bench_steps(steps: int) -> dict:
    from habitat import Env

    from habitat_fih.config import get_config

    os.chdir(DATA.parent)
    cfg = get_config("benchmark/nav/fih_vlnce_synthetic", ["habitat.dataset.split=val_unseen"])
    rng = np.random.default_rng(0)
    rates = {}
    with Env(config=cfg) as env:
        seen = set()
        for _ in range(len(env.episodes)):
            env.reset()
            scene = env.current_episode.scene_id
            if scene in seen:
                continue
            seen.add(scene)
            n = 0
            t0 = time.perf_counter()
            while n < steps:
                if env.episode_over:
                    env.reset()
                env.step(int(rng.choice([1, 1, 1, 2, 3])))
                n += 1
            rates[os.path.basename(scene)] = n / (time.perf_counter() - t0)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    result = {"generation": bench_generation(args.episodes), "scenes": scene_sizes(),
              "steps_per_s": bench_steps(args.steps)}
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
