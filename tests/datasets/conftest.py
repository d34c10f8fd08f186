"""Shared fixtures for the dataset tests: the bundled data in data/ and one NavGrid per scene."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import pytest

from habitat_fih.datasets.episodes import read_json_gz

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
EPISODES = DATA / "datasets" / "synthetic_r2r" / "v1"
SCENES = DATA / "scene_datasets"
SPLITS = ("train", "val_seen", "val_unseen")


@cache
def split_data(split: str) -> dict:
    return read_json_gz(str(EPISODES / split / f"{split}.json.gz"))


@cache
def split_gt(split: str) -> dict:
    return read_json_gz(str(EPISODES / split / f"{split}_gt.json.gz"))


@cache
def metadata(scene_id: str) -> dict:
    with open(os.path.splitext(SCENES / scene_id)[0] + ".json") as f:
        return json.load(f)


@cache
def navgrid(scene_id: str):
    from habitat_fih.sim.navigation import NavGrid
    from habitat_fih.sim.scene import load_scene

    mesh = load_scene(str(SCENES / scene_id))
    return NavGrid.from_mesh(mesh.vertices, mesh.faces, name=scene_id)


@cache
def scene_mesh(scene_id: str):
    from habitat_fih.sim.scene import load_scene

    return load_scene(str(SCENES / scene_id))


@pytest.fixture(scope="session")
def bundled() -> Path:
    if not (EPISODES / "train" / "train.json.gz").is_file():
        pytest.fail("bundled data missing: run `python -m habitat_fih.datasets.generate --out data`")
    return DATA
