"""Distributed set-up of the ``fih`` trainer: torchrun / torch.distributed.launch or SLURM.

`DistInfo.from_env` reads the launcher's variables: torchrun's ``RANK`` / ``WORLD_SIZE`` /
``LOCAL_RANK`` / ``MASTER_ADDR`` / ``MASTER_PORT``, else, in a task started by ``srun``, SLURM's
``SLURM_PROCID`` / ``SLURM_STEP_NUM_TASKS`` / ``SLURM_LOCALID`` with the master address = the
first host of ``SLURM_STEP_NODELIST`` / ``SLURM_NODELIST`` (e.g. ``node[003-005,009]`` ->
``node003``). The sbatch script itself (``SLURM_NTASKS`` > 1 but no srun step) runs as one
process with a warning, instead of waiting forever for tasks that were never started. `init_distributed` starts the
process group (NCCL on GPU, gloo on CPU) when the world size is above 1.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "cuda_device", "first_slurm_host", "init_distributed"]

logger = logging.getLogger(__name__)


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
    def from_env(cls, env: dict[str, str] | None = None) -> DistInfo:
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
