"""Distributed set-up of the ``fih`` trainer: the launchers, the process group, the device.

`DistInfo.from_env` reads what the launcher set, for each way of starting N processes:

- ``torchrun`` (= ``python -m torch.distributed.run``) and ``python -m torch.distributed.launch
  --use-env``: the elastic agent sets ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` /
  ``MASTER_ADDR`` / ``MASTER_PORT`` (and ``LOCAL_WORLD_SIZE``, ``GROUP_RANK``, ``TORCHELASTIC_*``)
  in every worker's environment.
- ``python -m torch.distributed.launch`` without ``--use-env``: the same environment (the
  launcher runs the same agent, which sets ``LOCAL_RANK`` either way) plus ``--local-rank=<i>``
  on the worker's command line; `strip_launcher_args` (called by ``habitat_fih.run`` before
  Hydra sees the command line) takes it off, and makes it ``LOCAL_RANK`` when the environment
  lacks it (older launchers passed ``--local_rank=<i>`` alone).
- SLURM ``srun``: ``SLURM_PROCID`` / ``SLURM_STEP_NUM_TASKS`` / ``SLURM_LOCALID``, with the
  master address = the first host of ``SLURM_STEP_NODELIST`` / ``SLURM_NODELIST`` (e.g.
  ``node[003-005,009]`` -> ``node003``). The torchrun variables win when both are set (torchrun
  started by srun). The sbatch script itself (``SLURM_NTASKS`` > 1 but no srun step) runs as one
  process with a warning, instead of waiting forever for tasks that were never started.

`init_distributed` starts the process group (NCCL on GPU, gloo on CPU) when the world size is
above 1. `training_device` picks the rank's device: ``cuda:local_rank`` (``cuda:0`` when the
process sees one GPU), or, for a model spread over several GPUs by ``device_allocation``, the
LLM's device (its heads and loss live there): ``device_allocation`` names devices as the process
sees them, not offset by the local rank, so under DDP each rank must see its own GPUs (e.g.
``srun --gpus-per-task=3``, or ``CUDA_VISIBLE_DEVICES`` per rank).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "cuda_device",
    "first_slurm_host",
    "init_distributed",
    "strip_launcher_args",
    "training_device",
]

logger = logging.getLogger(__name__)

_LOCAL_RANK_FLAGS = ("--local-rank", "--local_rank")


def strip_launcher_args(argv: list[str], environ: MutableMapping[str, str]) -> list[str]:
    """`argv` without ``torch.distributed.launch``'s ``--local-rank=<i>`` / ``--local-rank <i>``
    (either spelling); the value becomes ``environ["LOCAL_RANK"]`` unless that is already set.

    Raises:
        ValueError: the flag without an integer value.
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        flag, _, value = arg.partition("=")
        if flag in _LOCAL_RANK_FLAGS:
            if not value:
                value = argv[i + 1] if i + 1 < len(argv) else ""
                i += 1
            if not value.isdigit():
                raise ValueError(f"{flag} needs an integer local rank, got {value!r}")
            environ.setdefault("LOCAL_RANK", value)
        else:
            out.append(arg)
        i += 1
    return out


def first_slurm_host(nodelist: str) -> str:
    """First host name of a SLURM node list (``a[1-3,7],b`` -> ``a1``; zero padding kept)."""
    m = re.match(r"^([^,\[]+)(\[([^\]]+)\])?", nodelist.strip())
    if m is None:
        raise ValueError(f"cannot parse SLURM_NODELIST {nodelist!r}")
    base, _, ranges = m.groups()
    if not ranges:
        return base
    first = ranges.split(",")[0].split("-")[0]
    return f"{base}{first}"


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run (one process: the defaults)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DistInfo:
        """From the launcher's environment variables (default ``os.environ``; see the module
        docstring)."""
        env = dict(os.environ if env is None else env)
        port = int(env.get("MASTER_PORT", "29500"))
        if "RANK" in env and "WORLD_SIZE" in env:
            return cls(
                rank=int(env["RANK"]),
                world_size=int(env["WORLD_SIZE"]),
                local_rank=int(env.get("LOCAL_RANK", "0")),
                master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
                master_port=port,
            )
        if "SLURM_PROCID" in env and "SLURM_STEP_NUM_TASKS" in env:  # an srun task
            nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_NODELIST", "127.0.0.1")
            return cls(
                rank=int(env["SLURM_PROCID"]),
                world_size=int(env["SLURM_STEP_NUM_TASKS"]),
                local_rank=int(env.get("SLURM_LOCALID", "0")),
                master_addr=env.get("MASTER_ADDR") or first_slurm_host(nodelist),
                master_port=port,
            )
        if int(env.get("SLURM_NTASKS", "1")) > 1:
            # the sbatch script itself (no srun step): the other tasks were never started, so
            # waiting for them would hang — run as one process and say how to get N
            logger.warning(
                "SLURM_NTASKS=%s but this process is not an srun task: training as a single "
                "process (launch with `srun python -m habitat_fih.run ...` for one process per "
                "task)",
                env["SLURM_NTASKS"],
            )
        return cls()


def cuda_device(info: DistInfo) -> torch.device:
    """This rank's GPU: ``cuda:local_rank``, or ``cuda:0`` when the process sees one GPU (SLURM
    with one GPU per task hides the others)."""
    count = torch.cuda.device_count()
    if count == 1:
        return torch.device("cuda", 0)
    if not 0 <= info.local_rank < count:
        raise ValueError(
            f"local rank {info.local_rank} has no GPU: this process sees {count} CUDA device(s)"
        )
    return torch.device("cuda", info.local_rank)


def training_device(
    choice: str, info: DistInfo, allocated_device: str | None = None
) -> torch.device:
    """This rank's training device (batches, the loss, NCCL's current device).

    Args:
        choice: ``fih.device``: ``auto`` (CUDA when available, else CPU), ``cuda`` or ``cpu``
            (any torch device string).
        info: this process's ranks.
        allocated_device: for a model placed by ``device_allocation``, the device its LLM,
            fusion and heads are on (`DeviceAllocation.llm`); it is the device then (see the
            module docstring). None: ``cuda:local_rank`` (`cuda_device`).
    """
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        return torch.device(allocated_device) if allocated_device else cuda_device(info)
    return torch.device(choice)


def init_distributed(
    info: DistInfo, backend: str = "auto", device: torch.device | None = None
) -> str | None:
    """Initialise the default process group when world_size > 1; returns the backend used.

    ``auto`` picks nccl when the trainer's `device` is a GPU, else gloo.
    """
    if not info.is_distributed:
        return None
    if dist.is_initialized():
        return dist.get_backend()
    if backend == "auto":
        on_gpu = device.type == "cuda" if device is not None else torch.cuda.is_available()
        backend = "nccl" if on_gpu else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(device if device is not None else cuda_device(info))
    dist.init_process_group(
        backend=backend,
        init_method=f"tcp://{info.master_addr}:{info.master_port}",
        rank=info.rank,
        world_size=info.world_size,
    )
    return backend
