"""Launch modes: `python -m torch.distributed.launch ... -m habitat_fih.run`'s --local-rank
argument (added without --use-env) must not reach Hydra; every launcher's environment (torchrun,
torch.distributed.launch with and without --use-env, SLURM srun) gives the ranks; real torchrun /
launch runs start two gloo ranks."""

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
        [
            sys.executable,
            "-m",
            "habitat_fih.run",
            "--local-rank=0",
            "--config-name=fih/synthetic_tiny",
            "--cfg",
            "job",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "trainer_name: fih" in proc.stdout


# ------------------------------------------------------------------ launch modes


def _agent_env(rank: int, local_rank: int, world: int, per_node: int) -> dict[str, str]:
    """A worker's environment as torch's elastic agent sets it — torchrun and
    torch.distributed.launch (with or without --use-env) alike
    (torch/distributed/elastic/agent/server/local_elastic_agent.py)."""
    return {
        "RANK": str(rank),
        "GROUP_RANK": str(rank // per_node),
        "ROLE_RANK": str(rank),
        "ROLE_NAME": "default",
        "LOCAL_WORLD_SIZE": str(per_node),
        "WORLD_SIZE": str(world),
        "GROUP_WORLD_SIZE": str(world // per_node),
        "ROLE_WORLD_SIZE": str(world),
        "MASTER_ADDR": "node001",
        "MASTER_PORT": "29511",
        "TORCHELASTIC_RESTART_COUNT": "0",
        "TORCHELASTIC_MAX_RESTARTS": "0",
        "TORCHELASTIC_RUN_ID": "none",
        "TORCHELASTIC_USE_AGENT_STORE": "True",
        "LOCAL_RANK": str(local_rank),
    }


_SRUN = {  # task 5 of 8 (2 nodes x 4), as srun sets it inside an sbatch allocation
    "SLURM_PROCID": "5",
    "SLURM_NTASKS": "8",
    "SLURM_STEP_NUM_TASKS": "8",
    "SLURM_LOCALID": "1",
    "SLURM_NODELIST": "gpu[003-004]",
    "SLURM_STEP_NODELIST": "gpu[003-004]",
}
_ARGS = ["run", "--config-name=fih/synthetic_tiny", "habitat_baselines.log_interval=3"]


@pytest.mark.parametrize(
    ("launcher", "argv", "env", "expected"),
    [
        ("torchrun", _ARGS, _agent_env(5, 1, 8, 4), (5, 8, 1, "node001", 29511)),
        ("launch --use-env", _ARGS, _agent_env(5, 1, 8, 4), (5, 8, 1, "node001", 29511)),
        (  # the launcher's own --local-rank first, then the script's arguments
            "launch",
            ["run", "--local-rank=1", *_ARGS[1:]],
            _agent_env(5, 1, 8, 4),
            (5, 8, 1, "node001", 29511),
        ),
        (  # torch < 2.0 without --use-env: --local_rank, no LOCAL_RANK in the environment
            "launch (torch < 2)",
            ["run", "--local_rank=1", *_ARGS[1:]],
            {k: v for k, v in _agent_env(5, 1, 8, 4).items() if k != "LOCAL_RANK"},
            (5, 8, 1, "node001", 29511),
        ),
        ("srun", _ARGS, _SRUN, (5, 8, 1, "gpu003", 29500)),
        ("srun torchrun", _ARGS, {**_SRUN, **_agent_env(2, 2, 4, 4)}, (2, 4, 2, "node001", 29511)),
        ("none", _ARGS, {}, (0, 1, 0, "127.0.0.1", 29500)),
    ],
)
def test_each_launcher_gives_the_ranks_and_a_clean_command_line(launcher, argv, env, expected):
    from habitat_fih.trainers.distributed import DistInfo

    env = dict(env)
    assert strip_launcher_args(argv, env) == _ARGS, launcher
    info = DistInfo.from_env(env)
    assert (
        info.rank,
        info.world_size,
        info.local_rank,
        info.master_addr,
        info.master_port,
    ) == expected, launcher


_PROBE = """
import importlib.util, json, os, sys
import torch
import torch.distributed as dist

# habitat_fih.trainers.distributed by its path: torch only, not the whole package
spec = importlib.util.spec_from_file_location("fih_distributed", {path!r})
module = importlib.util.module_from_spec(spec)
sys.modules["fih_distributed"] = module
spec.loader.exec_module(module)
argv = module.strip_launcher_args(sys.argv, os.environ)
info = module.DistInfo.from_env()
backend = module.init_distributed(info, "auto", torch.device("cpu"))
total = torch.tensor([float(info.rank + 1)])
dist.all_reduce(total)
result = dict(
    argv=argv[1:], rank=info.rank, world=info.world_size, local_rank=info.local_rank,
    backend=backend, total=total.item(),
)
with open(os.path.join(argv[1], f"rank{{info.rank}}.json"), "w") as f:
    json.dump(result, f)
dist.destroy_process_group()
"""


@pytest.mark.parametrize(
    "launcher",
    [
        ["torch.distributed.run"],  # torchrun
        ["torch.distributed.launch", "--use-env"],
        ["torch.distributed.launch"],  # passes --local-rank=<i>
    ],
    ids=["torchrun", "launch --use-env", "launch"],
)
def test_real_launchers_start_two_gloo_ranks(tmp_path, launcher: list[str]) -> None:
    """Two CPU processes per launcher: each sees its rank, the launcher's argument is gone from
    its command line, and the gloo group all-reduces."""
    import json
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    probe = tmp_path / "probe.py"
    path = REPO / "habitat_fih" / "trainers" / "distributed.py"
    probe.write_text(_PROBE.format(path=str(path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            *launcher,
            "--nproc-per-node=2",
            f"--master-port={port}",
            str(probe),
            str(tmp_path),
            "x=1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for rank, result in enumerate(results):
        assert result == {
            "argv": [str(tmp_path), "x=1"],
            "rank": rank,
            "world": 2,
            "local_rank": rank,
            "backend": "gloo",
            "total": 3.0,
        }
