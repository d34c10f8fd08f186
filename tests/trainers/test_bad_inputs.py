"""Bad inputs are ONE clear error in the main process, not an ``EOFError`` from a dead worker.

`validate_inputs` (run by `check_data` before any ``VectorEnv`` worker starts) on broken copies
of the bundled data: a truncated gzip episode file, gzip of invalid JSON, JSON without
``episodes``, a missing scene, random bytes as a ``.glb``, a start position off the navigable
area, ``habitat.task.memory_max_frames=1``. Exceptions inside a worker (construction, reset,
step) reach the main process as one `EnvWorkerError` naming the env and the worker's error. One
run through the command line ends with the bad file named on the last line of stderr.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from habitat_fih.trainers.inputs import (
    BadInputError,
    EnvWorkerError,
    FIHRunError,
    MissingInputError,
    validate_inputs,
)

SCENE = "fih_synthetic/house_002.glb"  # the bundled house with the quickest navigation build
DATA = "data/datasets/synthetic_r2r/v1/val_seen/val_seen.json.gz"


def _write_episodes(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(data, f)


@pytest.fixture(scope="module")
def bundled(kit) -> dict[str, Any]:
    """Two bundled val_seen episodes of one house (as a JSON object)."""
    with gzip.open(kit.REPO / DATA, "rt") as f:
        data = json.load(f)
    data["episodes"] = [e for e in data["episodes"] if e["scene_id"] == SCENE][:2]
    assert len(data["episodes"]) == 2
    return data


@pytest.fixture(scope="module")
def base_config(kit, tmp_path_factory: pytest.TempPathFactory):
    from habitat_fih.trainers.collector import env_config

    root = tmp_path_factory.mktemp("base")
    return env_config(kit.tiny_config(root), "val_seen", ["top_down_map"])


@pytest.fixture
def inputs(tmp_path: Path, kit, bundled, base_config):
    """(episodes file, scenes dir, config factory) over a tmp_path copy of the data."""
    scenes = tmp_path / "scenes"
    (scenes / "fih_synthetic").mkdir(parents=True)
    shutil.copy(kit.REPO / "data/scene_datasets" / SCENE, scenes / SCENE)
    episodes = tmp_path / "episodes" / "val_seen.json.gz"
    _write_episodes(episodes, bundled)

    def config(**changes: Any):
        cfg = OmegaConf.create(OmegaConf.to_container(base_config, resolve=True))
        values = {
            "habitat.dataset.data_path": f"{tmp_path}/episodes/{{split}}.json.gz",
            "habitat.dataset.scenes_dir": str(scenes),
            "habitat.task.measurements.ndtw.gt_path": "",
            **changes,
        }
        for key, value in values.items():
            OmegaConf.update(cfg, key, value, merge=False)
        OmegaConf.set_readonly(cfg, True)
        return cfg

    return episodes, scenes, config


def test_truncated_gzip_episode_file(inputs) -> None:
    episodes, _, config = inputs
    episodes.write_bytes(episodes.read_bytes()[:200])
    with pytest.raises(BadInputError, match=r"not a readable gzip file") as info:
        validate_inputs(config())
    assert str(episodes) in str(info.value) and "habitat.dataset.data_path" in str(info.value)


def test_gzip_of_invalid_json(inputs) -> None:
    episodes, _, config = inputs
    with gzip.open(episodes, "wt") as f:
        f.write('{"episodes": [{"episode_id": 1,')
    with pytest.raises(BadInputError, match=r"does not hold valid JSON") as info:
        validate_inputs(config())
    assert str(episodes) in str(info.value)


def test_json_without_episodes(inputs, bundled) -> None:
    episodes, _, config = inputs
    _write_episodes(episodes, {"instruction_vocab": bundled["instruction_vocab"]})
    with pytest.raises(BadInputError, match=r"has no 'episodes' key") as info:
        validate_inputs(config())
    assert str(episodes) in str(info.value) and "instruction_vocab" in str(info.value)


def test_missing_scene_file(inputs, bundled) -> None:
    episodes, scenes, config = inputs
    data = json.loads(json.dumps(bundled))
    data["episodes"][1]["scene_id"] = "fih_synthetic/house_099.glb"
    _write_episodes(episodes, data)
    eid = str(data["episodes"][1]["episode_id"])
    with pytest.raises(MissingInputError, match=r"house_099\.glb") as info:
        validate_inputs(config())
    assert isinstance(info.value, FileNotFoundError)
    assert eid in str(info.value) and "habitat.dataset.scenes_dir" in str(info.value)


def test_random_bytes_as_glb(inputs) -> None:
    _, scenes, config = inputs
    (scenes / SCENE).write_bytes(os.urandom(4096))
    with pytest.raises(BadInputError, match=r"house_002\.glb.*does not load") as info:
        validate_inputs(config())
    assert "glb" in str(info.value)


def test_start_position_off_the_navigable_area(inputs, bundled) -> None:
    episodes, _, config = inputs
    data = json.loads(json.dumps(bundled))
    data["episodes"][1]["start_position"] = [60.0, 0.0, -60.0]
    _write_episodes(episodes, data)
    eid = str(data["episodes"][1]["episode_id"])
    with pytest.raises(BadInputError, match=r"not on the navigable area of scene") as info:
        validate_inputs(config())
    message = str(info.value)
    assert f"episode {eid!r}" in message and "[60.0, 0.0, -60.0]" in message
    assert SCENE in message


def test_memory_max_frames_one_names_the_key(inputs) -> None:
    _, _, config = inputs
    with pytest.raises(ValueError) as info:
        validate_inputs(config(**{"habitat.task.memory_max_frames": 1}))
    assert str(info.value) == (
        "habitat.task.memory_max_frames must be an integer >= 2 (the first and the latest "
        "frame are always kept), got 1"
    )


def test_a_changed_file_is_validated_again(inputs) -> None:
    """The cache is per file version: a file broken after a successful check fails again."""
    episodes, _, config = inputs
    validate_inputs(config())
    validate_inputs(config())  # cached
    with gzip.open(episodes, "wt") as f:
        f.write("[]")
    with pytest.raises(BadInputError, match="no 'episodes' key"):
        validate_inputs(config())


def test_worker_exceptions_reach_the_main_process(inputs, bundled) -> None:
    from habitat_fih.trainers.collector import build_vector_env, make_fih_env
    from habitat_fih.trainers.worker_errors import ReportingVectorEnv, report_paths

    _, _, config = inputs
    cfg = config()
    envs = build_vector_env(cfg, 1, seed=0)
    try:
        with pytest.raises(EnvWorkerError) as info:  # KeyError in the worker's reset_to
            envs.call_at(0, "reset_to", {"episode_id": "no-such-episode"})
        assert str(info.value) == (
            "environment 0 failed in reset_to of episode 'no-such-episode': KeyError: "
            "episode 'no-such-episode' is not in this environment's dataset"
        )
        assert "Traceback" in info.value.worker_traceback
    finally:
        envs.close()  # a failed worker does not make close() raise

    eid = str(bundled["episodes"][0]["episode_id"])
    envs = build_vector_env(cfg, 2, seed=0)
    try:
        envs.call_at(1, "reset_to", {"episode_id": eid})
        envs.async_step_at(1, {"action": 9, "action_args": {}})
        with pytest.raises(
            EnvWorkerError,
            match=rf"environment 1 failed in step of episode "
            rf"'{eid}': ValueError: Action index '9' is out of range",
        ):
            envs.wait_step_at(1)
    finally:
        envs.close()

    # construction: a config that skipped validation (its episode file does not exist)
    broken = config(**{"habitat.dataset.data_path": "/nonexistent/{split}.json.gz"})
    reports = report_paths(2)
    with pytest.raises(EnvWorkerError) as info:
        ReportingVectorEnv(
            reports,
            make_env_fn=make_fih_env,
            env_fn_args=[(cfg, 0, reports[0]), (broken, 1, reports[1])],
            auto_reset_done=False,
        )
    assert info.value.env_index == 1 and isinstance(info.value, FIHRunError)
    assert "environment 1 failed in the environment's construction" in str(info.value)
    assert "nonexistent" in str(info.value) and not isinstance(info.value, EOFError)


def test_command_line_names_the_bad_file_on_its_last_line(tmp_path: Path, kit) -> None:
    bad = tmp_path / "train.json.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(64))  # a gzip header, then garbage
    cmd = [
        sys.executable,
        "-m",
        "habitat_fih.run",
        "--config-name=fih/synthetic_tiny",
        *kit.FAST,
        *kit.run_overrides(tmp_path),
        "habitat_baselines.num_environments=1",
        f"habitat.dataset.data_path='{tmp_path}/{{split}}.json.gz'",
        f"hydra.run.dir={tmp_path}/hydra",
    ]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, cwd=kit.REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and str(bad) in lines[-1], proc.stderr[-3000:]
