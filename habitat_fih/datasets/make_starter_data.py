"""Regenerate the bundled starter data in data/ (bit-for-bit from the seeds).

    python -m habitat_fih.datasets.make_starter_data [--out data]

Writes ``data/scene_datasets/fih_synthetic/apartment_{i}.glb`` and the episodes
``data/datasets/synthetic_r2r/v1/{train,val_seen,val_unseen}/...json.gz`` (VLN-CE layout);
val_unseen uses a scene that train never uses.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from tqdm import tqdm

import habitat_fih  # noqa: F401  (compat + registrations)
from habitat_fih.datasets.episodes import EpisodeSpec, sample_episodes, write_split
from habitat_fih.datasets.procedural import ApartmentSpec, export_apartment
from habitat_fih.sim.navigation import NavGrid
from habitat_fih.sim.scene import load_scene

SCENES = {"apartment_0": ("train", 0), "apartment_1": ("train", 1), "apartment_2": ("unseen", 2)}
COUNTS = {"train": 12, "val_seen": 4, "val_unseen": 4}


def _describer(spec: ApartmentSpec):
    sx, sz = spec.room_size
    nx, _ = spec.grid

    def room(p: np.ndarray) -> str:
        i, k = int(p[0] // sx), int(p[2] // sz)
        return spec.room_names[(k * nx + i) % len(spec.room_names)]

    def describe(start: np.ndarray, goal: np.ndarray) -> str:
        a, b = room(start), room(goal)
        if a == b:
            return f"Walk across the {a} to the far side and stop there."
        return f"Leave the {a}, walk into the {b} and stop inside it."

    return describe


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data")
    args = parser.parse_args(argv)
    scene_dir = os.path.join(args.out, "scene_datasets", "fih_synthetic")
    splits: dict[str, list[dict]] = {s: [] for s in COUNTS}
    for name, (role, seed) in tqdm(SCENES.items(), desc="scenes"):
        spec = ApartmentSpec(seed=seed)
        path = os.path.join(scene_dir, f"{name}.glb")
        export_apartment(spec, path)
        mesh = load_scene(path)
        nav = NavGrid.from_mesh(mesh.vertices, mesh.faces)
        rng = np.random.default_rng(1000 + seed)
        describe = _describer(spec)
        scene_id = f"fih_synthetic/{name}.glb"
        wanted = ["train", "val_seen"] if role == "train" else ["val_unseen"]
        for split in wanted:
            n = COUNTS[split] // (2 if role == "train" else 1)
            splits[split] += sample_episodes(
                nav, scene_id, n, rng, EpisodeSpec(), describe, first_id=len(splits[split])
            )
    for split, eps in splits.items():
        print(write_split(os.path.join(args.out, "datasets", "synthetic_r2r"), split, eps))


if __name__ == "__main__":
    main()
