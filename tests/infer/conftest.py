"""Shared material of the fih-infer tests: a clip recorded from a bundled val_seen episode (with
its geometry sidecar) and a checkpoint written by the fih trainer."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPLIT = "val_seen"
CLIP_STEPS = 11  # 12 frames


def first_episode_id(split: str = SPLIT) -> str:
    path = REPO / "data/datasets/synthetic_r2r/v1" / split / f"{split}.json.gz"
    with gzip.open(path, "rt") as f:
        ids = [str(e["episode_id"]) for e in json.load(f)["episodes"]]
    return sorted(ids, key=int)[0]


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clip.mp4 + clip.geometry.npz: the expert's first 11 steps of the first val_seen episode."""
    import os

    from habitat_fih.datasets.record import main as record

    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    cwd = os.getcwd()
    os.chdir(REPO)  # the configs' data paths are relative to the repo root
    try:
        code = record(
            ["--split", SPLIT, "--episode", first_episode_id(), "--out", str(out),
             "--max-steps", str(CLIP_STEPS)]
        )
    finally:
        os.chdir(cwd)
    assert code == 0
    return out


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ckpt.0.pth of the smallest real fih training run (fih/synthetic_tiny: geometry_prior
    input, i.e. a model that reads the simulator's cameras)."""
    import os

    from habitat.config.default import patch_config
    from habitat_baselines.common.baseline_registry import baseline_registry

    import habitat_fih.trainers  # noqa: F401  (registers the fih trainer)
    from habitat_fih.config import get_config

    root = tmp_path_factory.mktemp("train")
    overrides = [
        "habitat_baselines.num_environments=1",
        "habitat_baselines.fih.dagger.iterations=1",
        "habitat_baselines.fih.dagger.episodes_per_iteration=1",
        "habitat_baselines.fih.dagger.updates_per_iteration=1",
        "habitat_baselines.fih.collection.max_episode_steps=8",
        "habitat_baselines.fih.optim.batch_size=2",
        f"habitat_baselines.checkpoint_folder={root}/ckpt",
        f"habitat_baselines.eval_ckpt_path_dir={root}/ckpt",
        f"habitat_baselines.tensorboard_dir={root}/tb",
        f"habitat_baselines.fih.eval.results_dir={root}/eval",
    ]
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        config = patch_config(get_config("fih/synthetic_tiny", overrides))
        trainer = baseline_registry.get_trainer("fih")(config)
        trainer.train()
    finally:
        os.chdir(cwd)
    ckpts = sorted((root / "ckpt").glob("ckpt.*.pth"))
    assert ckpts, "the trainer wrote no checkpoint"
    return ckpts[-1]
