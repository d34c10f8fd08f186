"""A 2-process gloo DDP run of the fih `Learner` keeps both ranks' parameters identical (the main
stage; the vggt stage, where DDP wraps VGGT alone); each rank's training device."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str, stage: str) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    import habitat_fih  # noqa: F401
    from habitat_fih.models.config import FIHModelConfig
    from habitat_fih.models.factory import build_model, build_stand_in_tokenizer
    from habitat_fih.models.policy import FIHPolicy
    from habitat_fih.models.vggt.targets import vggt_targets
    from habitat_fih.trainers.buffer import Sample
    from habitat_fih.trainers.distributed import DistInfo, init_distributed
    from habitat_fih.trainers.learner import Learner
    from habitat_fih.trainers.stages import policy_config

    assert init_distributed(DistInfo.from_env(), "auto") == "gloo"
    torch.manual_seed(0)  # same init on every rank (DDP also broadcasts rank 0's)
    cfg = FIHModelConfig.tiny()
    policy = FIHPolicy(
        build_model(cfg, tokenizer=build_stand_in_tokenizer(cfg)), None, policy_config({})
    )
    policy.model.set_stage(stage)
    from habitat_fih.config.trainer_configs import OptimConfig

    optim = OptimConfig(
        grad_accumulation=2,
        lr=1e-3,
        weight_decay=0.01,
        warmup_updates=1,
        min_lr_ratio=0.1,
        grad_clip=1.0,
        beta1=0.9,
        beta2=0.999,
    )
    learner = Learner(policy, optim, 4, stage, torch.device("cpu"), distributed=True)
    rng = np.random.default_rng(rank)  # different data on each rank

    def vggt_sample():
        from habitat_fih.trainers.vggt_samples import VGGTSample

        s = 3
        poses = np.tile(np.eye(4), (s, 1, 1))
        poses[:, 1, 3] = 1.5  # camera 1.5 m above a floor, walking forward
        poses[:, 2, 3] = -0.25 * np.arange(s) * rng.random()
        v = (np.arange(32) + 0.5 - 16) / 16
        depth = np.where(v > 0, 1.5 / np.maximum(v, 1e-9), 0.0)[:, None].repeat(32, 1)
        targets = vggt_targets(poses, 90.0, np.stack([depth] * s))
        frames = rng.integers(0, 255, (s, 32, 32, 3), dtype=np.uint8)
        return VGGTSample(frames, np.arange(s, dtype=np.int64), targets)

    def sample() -> Sample:
        if stage == "vggt":
            return vggt_sample()
        n = int(rng.integers(2, 5))
        return Sample(
            frames=rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8),
            indices=np.arange(n, dtype=np.int64) * 2,
            targets=rng.random((n, 16, 16)).astype(np.float16),
            valid=np.r_[np.ones(n - 1, bool), False],
            instruction="walk past the sofa and stop",
            expert_action=int(rng.integers(4)),
        )

    before = torch.cat([p.detach().flatten().clone() for p in learner.params])
    for _ in range(2):
        learner.update([[sample() for _ in range(3)] for _ in range(2)])
    after = torch.cat([p.detach().flatten() for p in learner.params])
    gathered = [torch.zeros_like(after) for _ in range(world)]
    dist.all_gather(gathered, after)
    if rank == 0:
        torch.save({"gathered": gathered, "before": before}, os.path.join(out_dir, "params.pt"))
    dist.destroy_process_group()


@pytest.mark.parametrize("stage", ["main", "vggt"])
def test_two_process_gloo_ddp_keeps_parameters_identical(tmp_path, stage: str) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), stage), nprocs=2, join=True)
    result = torch.load(tmp_path / "params.pt")
    a, b = result["gathered"]
    assert torch.equal(a, b)
    assert not torch.equal(a, result["before"])  # it did train


def test_training_device_is_the_llms_under_a_device_allocation(monkeypatch) -> None:
    """``cuda:local_rank`` by default; with ``device_allocation`` the LLM's device, whatever the
    local rank (srun --gpus-per-task=3: rank 3 of a node sees its own 3 GPUs)."""
    from habitat_fih.trainers.distributed import DistInfo, training_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    rank3 = DistInfo(rank=3, world_size=4, local_rank=3)
    assert training_device("auto", rank3, "cuda:2") == torch.device("cuda", 2)
    assert training_device("cuda", DistInfo(rank=1, world_size=2, local_rank=1)) == torch.device(
        "cuda", 1
    )
    assert training_device("cpu", rank3, "cuda:2") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert training_device("auto", DistInfo()) == torch.device("cpu")
