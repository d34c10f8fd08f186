"""Trainer behaviour at the edges: what checkpoints keep, non-finite gradients, resume across
stages, DAgger in stages that do not learn to act, episode order, consistent scoring."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.factory import build_model, build_stand_in_tokenizer
from habitat_fih.trainers.buffer import Sample
from habitat_fih.trainers.checkpoint import (
    IncompatibleCheckpointError,
    load_model_weights,
    model_state,
)


def _tiny_model(cfg: FIHModelConfig) -> torch.nn.Module:
    return build_model(cfg, tokenizer=build_stand_in_tokenizer(cfg))


def _with_vggt_dir(cfg: FIHModelConfig, **main_stage: object) -> FIHModelConfig:
    """The config as if VGGT were read from a local directory (only the flag matters to
    `model_state`), optionally with changed freezing in the main stage."""
    stages = dict(cfg.stages)
    stages["main"] = dataclasses.replace(stages["main"], **main_stage)
    return dataclasses.replace(cfg, vggt_dir="/models/vggt-1b", stages=stages)


def test_checkpoints_keep_directory_weights_that_training_changes() -> None:
    cfg = FIHModelConfig.tiny()
    model = _tiny_model(cfg)
    vggt_keys = {k for k in model.state_dict() if k.startswith("vggt.")}
    assert vggt_keys

    frozen = _with_vggt_dir(cfg)  # no stage trains VGGT: re-read from its directory
    saved = model_state(model, frozen)
    assert not vggt_keys & set(saved) and "action_head.mlp.1.weight" in saved
    load_model_weights(model, {"model": saved}, frozen, "frozen.pth")  # VGGT keys optional

    trained = _with_vggt_dir(cfg, train_vggt=True)  # main trains VGGT: its weights are saved
    assert vggt_keys <= set(model_state(model, trained))

    # weights taken from a checkpoint that had them (e.g. a finetune that trained VGGT) are
    # saved again even where no stage of this config trains VGGT
    other = _tiny_model(cfg)
    with torch.no_grad():
        next(p for k, p in other.named_parameters() if k.startswith("vggt.")).add_(1.0)
    full = model_state(other, cfg)
    fresh = _tiny_model(cfg)
    load_model_weights(fresh, {"model": full}, frozen, "full.pth")
    again = model_state(fresh, frozen)
    assert vggt_keys <= set(again)
    assert all(torch.equal(again[k], full[k]) for k in vggt_keys)


def _learner(warmup: int = 0):
    from habitat_fih.config.trainer_configs import OptimConfig
    from habitat_fih.models.policy import FIHPolicy
    from habitat_fih.trainers.learner import Learner
    from habitat_fih.trainers.stages import policy_config

    cfg = FIHModelConfig.tiny()
    policy = FIHPolicy(_tiny_model(cfg), None, policy_config({}))
    policy.model.set_stage("main")
    optim = OptimConfig(lr=1e-3, weight_decay=0.0, warmup_updates=warmup)
    return policy, Learner(policy, optim, 10, "main", torch.device("cpu"))


def _batch() -> list[Sample]:
    sample = Sample(
        frames=np.zeros((3, 32, 32, 3), np.uint8),
        indices=np.arange(3, dtype=np.int64),
        targets=np.full((3, 16, 16), 0.5, np.float16),
        valid=np.array([True, True, False]),
        instruction="walk ahead",
        expert_action=1,
    )
    return [sample, sample]


def test_non_finite_gradient_stops_before_the_weights_change() -> None:
    from habitat_fih.trainers.learner import NonFiniteLossError

    policy, learner = _learner(warmup=4)
    terms = learner.update([_batch()])
    assert terms["train/lr"] == pytest.approx(1e-3 / 4)  # the rate the update used (warm-up 1/4)
    weight = policy.model.action_head.mlp[1].weight
    weight.register_hook(lambda g: torch.full_like(g, float("inf")))  # the loss stays finite
    before = [p.detach().clone() for p in learner.params]
    with pytest.raises(NonFiniteLossError, match=r"non-finite gradient norm inf at update 2"):
        learner.update([_batch()])
    assert learner.updates == 1
    assert all(torch.equal(a, b) for a, b in zip(before, learner.params, strict=True))


def test_resume_state_of_another_stage_is_refused(tmp_path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    trainer = FIHTrainer(kit.tiny_config(tmp_path))  # stage main
    path = trainer.resume_path
    (tmp_path / "ckpt").mkdir(parents=True)
    torch.save({"stage": "pretrain"}, path)
    with pytest.raises(IncompatibleCheckpointError, match=r"stage 'pretrain'.*trains stage 'main'"):
        trainer.resume_file.load(None, None, {})  # type: ignore[arg-type]


def test_dagger_lets_only_a_stage_that_learns_actions_drive(tmp_path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    def trains(*extra: str) -> bool:
        return FIHTrainer(kit.tiny_config(tmp_path, *extra)).stage_trains_actions()

    assert trains()  # main: action loss on
    assert not trains("habitat_baselines.fih.stage=pretrain")
    assert not trains("habitat_baselines.fih.stage=finetune")  # action_weight 0 by default
    assert trains(
        "habitat_baselines.fih.stage=finetune",
        "+habitat_baselines.fih.losses={finetune: {action_weight: 0.5}}",
    )
    assert not trains("+habitat_baselines.fih.losses={main: {action_weight: 0.0}}")


def test_episode_ids_sort_numerically() -> None:
    from habitat_fih.trainers.collector import sort_episode_ids

    assert sort_episode_ids(["101", "9", "20"]) == ["9", "20", "101"]
    assert sort_episode_ids(["b2", "a10", "a9"]) == ["a10", "a9", "b2"]


def test_episode_order_does_not_depend_on_habitat_seed(tmp_path, kit) -> None:
    from habitat_fih.trainers.collector import build_vector_env, env_config

    orders = []
    for seed in (1, 2):
        cfg = env_config(kit.tiny_config(tmp_path, f"habitat.seed={seed}"), "val_seen", [])
        envs = build_vector_env(cfg, 1, seed)
        try:
            orders.append(envs.call_at(0, "episode_ids"))
        finally:
            envs.close()
    assert orders[0] == orders[1] == sorted(orders[0], key=int)


def test_differing_min_overlaps_are_one_clear_error(tmp_path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    cfg = kit.tiny_config(tmp_path, "habitat.task.lab_sensors.frame_heatmaps.min_overlap=0.05")
    with pytest.raises(ValueError, match=r"frame_heatmaps.min_overlap=0.05 differs"):
        FIHTrainer(cfg)


def test_sampled_evaluation_gets_its_own_stats_tag(tmp_path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    argmax = FIHTrainer(kit.tiny_config(tmp_path))
    sampled = FIHTrainer(
        kit.tiny_config(tmp_path, "habitat_baselines.fih.eval.deterministic=False")
    )
    assert argmax.checkpoint_agent("c/ckpt.3.pth")[0] == "ckpt_3"
    assert sampled.checkpoint_agent("c/ckpt.3.pth")[0] == "ckpt_3_sampled"
    assert sampled.checkpoint_agent("c/ckpt.3.pth", "expert")[0] == "ckpt_3_expert_path"


def test_cuda_device_follows_the_visible_gpus(monkeypatch) -> None:
    from habitat_fih.trainers.distributed import DistInfo, cuda_device

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # SLURM: one GPU per task
    assert cuda_device(DistInfo(rank=3, world_size=4, local_rank=3)) == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert cuda_device(DistInfo(rank=2, world_size=4, local_rank=2)) == torch.device("cuda", 2)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError, match="local rank 3 has no GPU: this process sees 2"):
        cuda_device(DistInfo(rank=3, world_size=4, local_rank=3))


class _StubWandb:
    """Records what habitat-baselines' WeightsAndBiasesWriter asks of the wandb module."""

    def __init__(self) -> None:
        self.inits: list[dict] = []
        self.logged: list[tuple[dict, int]] = []
        self.finished = 0

    def init(self, config: dict, **kwargs: object) -> object:
        self.inits.append(kwargs)
        stub = self

        class Run:
            id = kwargs.get("id", f"run{len(stub.inits)}")

            def finish(self) -> None:
                stub.finished += 1

        return Run()

    def log(self, values: dict, step: int) -> None:
        self.logged.append((values, step))


def test_wandb_logging_continues_its_run_on_resume(tmp_path, kit, monkeypatch) -> None:
    from habitat_baselines.common import tensorboard_utils

    from habitat_fih.trainers.fih_trainer import FIHTrainer

    stub = _StubWandb()
    monkeypatch.setattr(tensorboard_utils, "wandb", stub)
    args = [
        "habitat_baselines.writer_type=wb",
        "habitat_baselines.wb.project_name=fih-test",
        "habitat_baselines.num_environments=1",
        "habitat_baselines.fih.dagger.iterations=1",
    ]
    stopped = FIHTrainer(
        kit.tiny_config(tmp_path, *args, "habitat_baselines.fih.stop_after_updates=1")
    )
    assert stopped.train() is False
    assert FIHTrainer(kit.tiny_config(tmp_path, *args)).train() is True
    assert stub.inits == [
        {"project": "fih-test"},
        {"project": "fih-test", "id": "run1", "resume": "must"},  # the same W&B run
    ]
    assert stub.finished == 2
    keys = {k for values, _ in stub.logged for k in values}
    assert {"loss/total", "train/lr", "collect/steps_per_second"} <= keys
    steps = [step for values, step in stub.logged if "loss/total" in values]
    assert steps == [1, 2]  # update 1 before the stop, update 2 after the resume


def test_wandb_writer_without_wandb_is_one_clear_error(tmp_path, kit, monkeypatch) -> None:
    from habitat_baselines.common import tensorboard_utils

    from habitat_fih.trainers.fih_trainer import FIHTrainer
    from habitat_fih.trainers.resume import RunState

    monkeypatch.setattr(tensorboard_utils, "wandb", None)
    trainer = FIHTrainer(kit.tiny_config(tmp_path, "habitat_baselines.writer_type=wb"))
    with pytest.raises(ValueError, match=r"writer_type='wb' needs the wandb package"):
        trainer._open_writer(RunState())
