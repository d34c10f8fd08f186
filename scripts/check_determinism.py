"""Probe that FIHSim-v0's navigation gives the same bits on another CPU / instruction set.

Prints one digest per bundled house (the navigability grid: node columns, heights, links,
clearance), one per split (geodesic start -> goal and the oracle's actions of every episode) and
one of the frame-indexed targets of FIH-VLN-v0 steps (``--target-steps``).
Run it under different settings and compare the digests, e.g.

    python scripts/check_determinism.py > a.txt
    NPY_DISABLE_CPU_FEATURES="AVX2 FMA3 AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL" \\
        NUMBA_CPU_NAME=generic NUMBA_CACHE_DIR=/tmp/numba-generic python scripts/check_determinism.py > b.txt
    python scripts/check_determinism.py --shuffle-faces > c.txt
    diff a.txt b.txt && diff a.txt c.txt

(numpy's AVX2 / AVX-512 kernels off and numba compiled for a generic x86-64: a different
instruction set for every vectorised loop; shuffled faces: another triangle order).
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import json
from pathlib import Path

import numpy as np

import habitat_fih  # noqa: F401  (compat before habitat)
from habitat_fih.datasets.episodes import EpisodeSpec, oracle_rollout
from habitat_fih.sim.navigation import NavGrid
from habitat_fih.sim.scene import load_scene

ROOT = Path(__file__).resolve().parent.parent
SCENES = ROOT / "data" / "scene_datasets"
EPISODES = ROOT / "data" / "datasets" / "synthetic_r2r" / "v1"


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shuffle-faces", action="store_true", help="shuffle each mesh's faces")
    ap.add_argument("--episodes", type=int, default=20, help="episodes per split (first by id)")
    ap.add_argument("--target-steps", type=int, default=60, help="FIH-VLN-v0 steps (0: skip)")
    args = ap.parse_args()
    grids: dict[str, NavGrid] = {}
    for path in sorted((SCENES / "fih_synthetic").glob("house_*.glb")):
        mesh = load_scene(str(path))
        faces = np.asarray(mesh.faces)
        if args.shuffle_faces:
            faces = faces[np.random.default_rng(0).permutation(len(faces))]
        nav = NavGrid.from_mesh(mesh.vertices, faces, name=str(path))
        grids[str(path.relative_to(SCENES))] = nav
        print(path.name, nav.num_nodes, _digest(nav.node_col, nav.node_y, nav.nbr, nav.clearance))
    spec = EpisodeSpec()
    for split in ("val_seen", "val_unseen"):
        with gzip.open(EPISODES / split / f"{split}.json.gz", "rt") as f:
            eps = sorted(json.load(f)["episodes"], key=lambda e: int(e["episode_id"]))[: args.episodes]
        geos, actions = [], []
        for ep in eps:
            nav = grids[ep["scene_id"]]
            start = np.asarray(ep["start_position"], dtype=np.float64)
            goal = np.asarray(ep["goals"][0]["position"], dtype=np.float64)
            geos.append(nav.geodesic_distance(start, [goal]))
            result = oracle_rollout(nav, start, ep["start_rotation"], goal, spec)
            actions.extend(result[1] if result is not None else [-1])
            actions.append(-9)
        print(split, len(eps), _digest(np.asarray(geos), np.asarray(actions)))
    if args.target_steps:
        print("targets", args.target_steps, _targets_digest(args.target_steps, args.shuffle_faces))


def _targets_digest(steps: int, shuffle_faces: bool) -> str:
    """FIH-VLN-v0 on val_seen with the expert's actions: every step's frame_heatmaps
    (co-visibility maps, validity, camera positions and statuses) through one digest - the whole
    target path (Embree depth, working-depth resampling, surface tables, co-visibility)."""
    from habitat import Env

    from habitat_fih.config import get_config
    from habitat_fih.sim import simulator as sim_module

    if shuffle_faces:  # the simulator's meshes in another triangle order too (Embree's order)
        original = sim_module.load_scene

        def shuffled(*a, **k):
            mesh = original(*a, **k)
            order = np.random.default_rng(0).permutation(len(mesh.faces))
            return dataclasses.replace(
                mesh,
                faces=np.asarray(mesh.faces)[order],
                face_materials=np.asarray(mesh.face_materials)[order],
            )

        sim_module.load_scene = shuffled
    cfg = get_config("benchmark/nav/fih_vln_synthetic", ["habitat.task.memory_max_frames=8"])
    arrays = []
    with Env(config=cfg) as env:
        done = 0
        while done < steps:
            obs = env.reset()
            while not env.episode_over and done < steps:
                fh = obs["frame_heatmaps"]
                arrays += [fh[k] for k in sorted(fh)]
                obs = env.step(int(obs["shortest_path_sensor"][0]) or 1)
                done += 1
    return _digest(*arrays)


if __name__ == "__main__":
    main()
