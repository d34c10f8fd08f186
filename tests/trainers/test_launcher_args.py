"""`python -m torch.distributed.launch ... -m habitat_fih.run`: the launcher's --local-rank
argument (added without --use-env) must not reach Hydra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from habitat_fih.run import strip_launcher_args

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--local-rank=1", "--config-name=fih/synthetic_tiny"],
        ["run", "--local_rank=1", "--config-name=fih/synthetic_tiny"],
        ["run", "--local-rank", "1", "--config-name=fih/synthetic_tiny"],
    ],
)
def test_local_rank_is_taken_off_and_becomes_the_env(argv: list[str]) -> None:
    env: dict[str, str] = {}
    assert strip_launcher_args(argv, env) == ["run", "--config-name=fih/synthetic_tiny"]
    assert env == {"LOCAL_RANK": "1"}


def test_an_existing_local_rank_wins_and_other_args_stay() -> None:
    env = {"LOCAL_RANK": "0"}
    argv = ["run", "habitat_baselines.log_interval=3", "--local-rank=1"]
    assert strip_launcher_args(argv, env) == ["run", "habitat_baselines.log_interval=3"]
    assert env == {"LOCAL_RANK": "0"}  # torchrun / the launcher set it: theirs is right


def test_bad_value() -> None:
    with pytest.raises(ValueError, match="--local-rank needs an integer local rank, got 'x'"):
        strip_launcher_args(["run", "--local-rank=x"], {})
    with pytest.raises(ValueError, match="got ''"):
        strip_launcher_args(["run", "--local-rank"], {})


def test_hydra_accepts_the_launchers_command_line() -> None:
    """What torch.distributed.launch runs per process without --use-env: Hydra composes the
    config (``--cfg job`` prints it and exits) instead of rejecting the argument."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run(
        [sys.executable, "-m", "habitat_fih.run", "--local-rank=0",
         "--config-name=fih/synthetic_tiny", "--cfg", "job"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "trainer_name: fih" in proc.stdout
