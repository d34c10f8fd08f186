"""Generate the bundled synthetic VLN-CE dataset (houses + episodes), bit-for-bit from its seeds.

    python -m habitat_fih.datasets.generate [--out data] [--only house_003 ...]

Writes

* ``<out>/scene_datasets/fih_synthetic/house_XXX.glb`` and ``house_XXX.json`` (scene metadata);
* ``<out>/datasets/synthetic_r2r/v1/{train,val_seen,val_unseen}/{split}.json.gz`` (VLN-CE
  R2R_VLNCE_v1-3 layout, one vocabulary shared by all splits) and ``{split}_gt.json.gz``
  (oracle locations and actions);
* ``<out>/datasets/synthetic_r2r/v1/scenes.json``: which house is in which split;
* ``<out>/tokenizer/synthetic_r2r/``: the word-level Hugging Face tokenizer the tiny fih configs
  use, built from the train instructions (:mod:`habitat_fih.datasets.tokenizer`).

``train`` and ``val_seen`` use the train houses (different episodes), ``val_unseen`` only houses
never used in train. Every (house, split) pair has its own random stream and id range, so one
house can be regenerated alone (``--only``, used by the determinism test). Bad arguments (an
unknown ``--only`` house, an ``--out`` that is not a writable folder) are one error line, exit 2;
a second generator on the same ``--out`` is refused at once, naming the first one's pid
(:mod:`habitat_fih.utils.folder_lock`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from habitat_fih.datasets.episodes import (
    EpisodeSpec,
    build_vocab,
    sample_house_episodes,
    write_gt,
    write_split,
)
from habitat_fih.datasets.houses import HouseSpec, export_house
from habitat_fih.datasets.tokenizer import bundled_tokenizer_dir, write_bundled_tokenizer
from habitat_fih.utils import atomic_write_bytes
from habitat_fih.utils.folder_lock import RunFolderLockedError, locked

__all__ = ["DatasetSpec", "DEFAULT", "generate_house", "generate", "main"]

SPLITS = ("train", "val_seen", "val_unseen")
_ID_BASE = {"train": 0, "val_seen": 100_000, "val_unseen": 200_000}
_ID_STRIDE = 1000


@dataclass(frozen=True)
class DatasetSpec:
    """The bundled dataset: houses (seed, storeys), their split roles and episode counts."""

    name: str = "synthetic_r2r"
    scene_dataset: str = "fih_synthetic"
    seed: int = 2024
    # (house seed, storeys); the last ``n_unseen`` are val_unseen houses
    houses: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (2, 1), (3, 1), (4, 2), (5, 1), (6, 2),
                                           (7, 2), (8, 1), (9, 2))
    n_unseen: int = 3
    train_paths: int = 150
    train_instructions_per_path: int = 2
    val_seen_paths: int = 50
    val_unseen_paths: int = 50
    episode: EpisodeSpec = field(default_factory=EpisodeSpec)

    def house_name(self, index: int) -> str:
        return f"house_{self.houses[index][0]:03d}"

    def roles(self) -> dict[int, tuple[str, ...]]:
        n = len(self.houses)
        return {i: (("val_unseen",) if i >= n - self.n_unseen else ("train", "val_seen")) for i in range(n)}

    def counts(self, index: int) -> dict[str, int]:
        """Trajectories per split for house ``index`` (split totals spread evenly, remainder first)."""
        roles = self.roles()
        out: dict[str, int] = {}
        for split, total in (("train", self.train_paths), ("val_seen", self.val_seen_paths),
                             ("val_unseen", self.val_unseen_paths)):
            members = [i for i, r in roles.items() if split in r]
            if index in members:
                k = members.index(index)
                out[split] = total // len(members) + (1 if k < total % len(members) else 0)
        return out


DEFAULT = DatasetSpec()


def generate_house(spec: DatasetSpec, index: int, out: str) -> dict[str, tuple[list[dict], dict]]:
    """Write house ``index``'s scene files; return its episodes and ground truth per split."""
    from habitat_fih.sim.navigation import NavGrid
    from habitat_fih.sim.scene import load_scene

    seed, storeys = spec.houses[index]
    name = spec.house_name(index)
    glb = os.path.join(out, "scene_datasets", spec.scene_dataset, f"{name}.glb")
    export_house(HouseSpec(seed=seed, storeys=storeys), glb)
    with open(os.path.splitext(glb)[0] + ".json") as f:
        meta = json.load(f)
    mesh = load_scene(glb)  # the file as the simulator sees it
    nav = NavGrid.from_mesh(mesh.vertices, mesh.faces, name=name)
    scene_id = f"{spec.scene_dataset}/{name}.glb"
    result = {}
    for split, n in spec.counts(index).items():
        rng = np.random.default_rng([spec.seed, seed, SPLITS.index(split)])
        per_path = spec.train_instructions_per_path if split == "train" else 1
        base = _ID_BASE[split] + index * _ID_STRIDE
        result[split] = sample_house_episodes(nav, meta, scene_id, n, rng, spec.episode, per_path,
                                              first_id=base, first_trajectory=base)
    return result


def generate(spec: DatasetSpec = DEFAULT, out: str = "data", only: list[str] | None = None) -> dict:
    """Generate everything (or only the houses named in ``only``, without writing episode files).

    Returns per split the episodes and ground truth, and timings."""
    splits: dict[str, tuple[list[dict], dict]] = {s: ([], {}) for s in SPLITS}
    timings = {}
    indices = [i for i in range(len(spec.houses)) if only is None or spec.house_name(i) in only]
    for i in tqdm(indices, desc="houses"):
        t0 = time.perf_counter()
        for split, (eps, gt) in generate_house(spec, i, out).items():
            splits[split][0].extend(eps)
            splits[split][1].update(gt)
        timings[spec.house_name(i)] = time.perf_counter() - t0
    if only is None:
        root = os.path.join(out, "datasets", spec.name)
        vocab = build_vocab([ep for eps, _ in splits.values() for ep in eps])
        for split in tqdm(SPLITS, desc="splits"):
            eps, gt = splits[split]
            write_split(root, split, eps, word_list=vocab)
            write_gt(root, split, gt)
        roles = spec.roles()
        manifest = {s: [f"{spec.scene_dataset}/{spec.house_name(i)}.glb" for i in roles if s in roles[i]]
                    for s in SPLITS}
        text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
        atomic_write_bytes(os.path.join(root, "v1", "scenes.json"), text.encode())
        train = [ep["instruction"]["instruction_text"] for ep in splits["train"][0]]
        write_bundled_tokenizer(train, bundled_tokenizer_dir(out, spec.name))
    return {"splits": splits, "timings": timings}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data", help="data root (default: data)")
    parser.add_argument("--only", nargs="*", default=None,
                        help="regenerate only these houses' scene files (e.g. house_003); no episode files")
    args = parser.parse_args(argv)
    names = [DEFAULT.house_name(i) for i in range(len(DEFAULT.houses))]
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        parser.error(f"--only: unknown house(s) {unknown}; expected some of {names}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out!r} exists and is not a folder")
    try:
        os.makedirs(args.out, exist_ok=True)
        probe = os.path.join(args.out, ".fih_write_probe")
        atomic_write_bytes(probe, b"")
        os.remove(probe)
    except OSError as err:
        parser.error(f"--out {args.out!r} is not writable: {err.strerror or err}")
    try:
        with locked(args.out, hint="use another --out"):  # one generator per data root
            res = generate(DEFAULT, args.out, args.only)
    except RunFolderLockedError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    for split, (eps, _) in res["splits"].items():
        print(f"{split}: {len(eps)} episodes")
    print("seconds per house:", {k: round(v, 1) for k, v in res["timings"].items()})


if __name__ == "__main__":
    main()
