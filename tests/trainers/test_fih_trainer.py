"""End-to-end tests of the fih trainer on the bundled synthetic data (CPU, tiny model).

One uninterrupted training run (2 DAgger iterations) and its evaluation go through the Hydra
command line (``python -m habitat_fih.run``); a run stopped after 3 updates and resumed must
reach the same parameters; evaluation must be bit-identical across runs; expert-only
collection must reproduce the expert's success.
"""

from __future__ import annotations

import filecmp
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

EVAL = [
    "habitat_baselines.test_episode_count=2",
    "habitat_baselines.fih.collection.max_episode_steps=10",
]

EXPECTED_METRICS = {
    "distance_to_goal",
    "success",
    "spl",
    "ndtw",
    "sdtw",
    "oracle_success",
    "path_length",
    "steps_taken",
    "frame_heatmap_quality.kl",
    "frame_heatmap_quality.iou",
    "frame_heatmap_quality.peak_error",
    "memory_coverage",
    "action_agreement.rate",
    "action_agreement.always_forward",
    "num_episodes",
}


def _hydra(kit, args: list[str], root: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "habitat_fih.run",
        "--config-name=fih/synthetic_tiny",
        *args,
        f"hydra.run.dir={root}/hydra",
    ]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, cwd=kit.REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]


@pytest.fixture(scope="module")
def hydra_run(tmp_path_factory: pytest.TempPathFactory, kit) -> Path:
    root = tmp_path_factory.mktemp("uninterrupted")
    os.chdir(kit.REPO)
    _hydra(kit, [*kit.FAST, *kit.run_overrides(root)], root)
    _hydra(
        kit, [*kit.FAST, *kit.run_overrides(root), *EVAL, "habitat_baselines.evaluate=True"], root
    )
    return root


def test_two_dagger_iterations_train_and_evaluate_through_hydra(hydra_run: Path) -> None:
    ckpts = sorted(os.listdir(hydra_run / "ckpt"))
    assert "ckpt.0.pth" in ckpts and "ckpt.1.pth" in ckpts
    ckpt = torch.load(hydra_run / "ckpt" / "ckpt.1.pth", weights_only=False)
    assert ckpt["update"] == 4 and ckpt["iteration"] == 2 and ckpt["stage"] == "main"
    assert os.listdir(hydra_run / "tb"), "no TensorBoard event file"
    for i in (0, 1):
        stats = json.loads((hydra_run / "eval" / f"stats_ckpt_{i}_val_seen.json").read_text())
        assert EXPECTED_METRICS <= set(stats), EXPECTED_METRICS - set(stats)
        assert stats["num_episodes"] == 2
        assert stats["frame_heatmap_quality.kl"] is not None
        episodes = json.loads((hydra_run / "eval" / f"episodes_ckpt_{i}_val_seen.json").read_text())
        assert len(episodes) == 2 and {"episode_id", "success"} <= set(episodes[0])
        # the policy acts once per step: every step's action is compared with the expert's
        assert all(e["action_agreement.steps"] == e["num_steps"] for e in episodes)


def test_resume_after_stop_reaches_same_parameters(hydra_run: Path, tmp_path: Path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    FIHTrainer(kit.tiny_config(tmp_path, "habitat_baselines.fih.stop_after_updates=3")).train()
    # the checkpoint, the resume state and the run's lock file (no temporaries left)
    assert sorted(os.listdir(tmp_path / "ckpt")) == [".fih_lock", ".resume_state.pth", "ckpt.0.pth"]
    FIHTrainer(kit.tiny_config(tmp_path)).train()  # same command: resumes
    resumed = torch.load(tmp_path / "ckpt" / "ckpt.1.pth", weights_only=False)["model"]
    reference = torch.load(hydra_run / "ckpt" / "ckpt.1.pth", weights_only=False)["model"]
    assert resumed.keys() == reference.keys()
    worst = max((resumed[k].float() - reference[k].float()).abs().max().item() for k in reference)
    assert worst <= 1e-6, f"resumed parameters differ by up to {worst}"


def test_evaluation_is_bit_identical(hydra_run: Path, tmp_path: Path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        cfg = kit.tiny_config(
            tmp_path,
            *EVAL,
            f"habitat_baselines.eval_ckpt_path_dir={hydra_run}/ckpt/ckpt.1.pth",
            f"habitat_baselines.fih.eval.results_dir={out}",
        )
        FIHTrainer(cfg).eval()
        outs.append(out)
    for fname in ("stats_ckpt_1_val_seen.json", "episodes_ckpt_1_val_seen.json"):
        assert filecmp.cmp(outs[0] / fname, outs[1] / fname, shallow=False), fname
    # the Hydra evaluation of the same checkpoint (another process) gives the same file
    assert filecmp.cmp(
        outs[0] / "stats_ckpt_1_val_seen.json",
        hydra_run / "eval" / "stats_ckpt_1_val_seen.json",
        shallow=False,
    )


def test_baseline_agent_writes_same_format(tmp_path: Path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    data = kit.REPO / "data/datasets/synthetic_r2r/v1/val_seen/val_seen.json.gz"
    ids = [str(e["episode_id"]) for e in json.loads(gzip.open(data).read())["episodes"]]
    cfg = kit.tiny_config(
        tmp_path,
        *EVAL,
        "habitat_baselines.fih.eval.agent=center",
        "habitat_baselines.fih.eval.png_episodes=[" + ",".join(f"'{i}'" for i in ids) + "]",
    )
    FIHTrainer(cfg).eval()
    stats = json.loads((tmp_path / "eval" / "stats_center_val_seen.json").read_text())
    assert EXPECTED_METRICS <= set(stats)
    assert 0.0 <= stats["frame_heatmap_quality.iou"] <= 1.0
    assert stats["action_agreement.rate"] == 1.0  # the heatmap baselines take expert actions
    pngs = list((tmp_path / "eval" / "heatmaps_center_val_seen").glob("*/*.png"))
    assert len(pngs) >= 10  # 2 episodes, one per step with memory (10-step cap)
    import cv2

    # keyframe | predicted | target | frustum prior (the task has the frame_geometry sensor)
    assert cv2.imread(str(pngs[0])).shape[1] == 4 * 96


def test_expert_only_collection_reproduces_expert(tmp_path: Path, kit) -> None:
    from habitat_fih.trainers.buffer import ReplayBuffer
    from habitat_fih.trainers.collector import (
        DAggerDecider,
        FrameHistory,
        build_vector_env,
        env_config,
        run_episodes,
    )
    from habitat_fih.trainers.evaluation import summarize

    cfg = env_config(kit.tiny_config(tmp_path), "val_seen", ["top_down_map"])
    envs = build_vector_env(cfg, 2, seed=0)
    buffer = ReplayBuffer(100)
    try:
        ids = envs.call_at(0, "episode_ids")[:10]
        decider = DAggerDecider(1.0, np.random.default_rng(0), None)
        stats = run_episodes(
            envs,
            ids,
            decider,
            lambda: FrameHistory(32, 9),
            on_step=lambda view, _: buffer.add(view.sample((16, 16), 1.0, None)),
        )
    finally:
        envs.close()
    means, rows = summarize(stats.episodes)
    assert len(rows) == 10 and decider.policy_steps == 0
    assert means["success"] >= 0.9, means
    assert len(buffer) == 100 and buffer.total_added == stats.env_steps
    assert any(s.valid.any() for s in buffer._items)


def test_pretrain_then_finetune_from_its_checkpoint(tmp_path: Path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    short = ["habitat_baselines.fih.dagger.iterations=1", "habitat_baselines.num_environments=1"]
    pre = tmp_path / "pre"
    FIHTrainer(
        kit.tiny_config(
            pre,
            *short,
            "habitat_baselines.fih.stage=pretrain",
            "habitat_baselines.fih.dagger.updates_per_iteration=3",
        )
    ).train()
    pre_ckpt = pre / "ckpt" / "ckpt.0.pth"
    fine = tmp_path / "fine"
    FIHTrainer(
        kit.tiny_config(
            fine,
            *short,
            "habitat_baselines.fih.stage=finetune",
            "habitat_baselines.fih.dagger.updates_per_iteration=1",
            f"habitat_baselines.fih.pretrained_checkpoint={pre_ckpt}",
        )
    ).train()
    init = FIHTrainer(kit.tiny_config(tmp_path)).build_policy(1).model.state_dict()
    a = torch.load(pre_ckpt, weights_only=False)
    b = torch.load(fine / "ckpt" / "ckpt.0.pth", weights_only=False)
    assert a["stage"] == "pretrain" and b["stage"] == "finetune"
    fusion = [
        k for k in b["model"] if k.startswith("fusion.") and b["model"][k].is_floating_point()
    ]
    to_pre = sum((b["model"][k] - a["model"][k]).abs().sum().item() for k in fusion)
    to_init = sum((b["model"][k] - init[k]).abs().sum().item() for k in fusion)
    assert to_pre < to_init  # finetuning started from the pretrained weights


def test_schedule_runs_stages_in_one_command_each_from_the_previous(
    tmp_path: Path, kit, monkeypatch
) -> None:
    """``fih.schedule`` = pretrain then main in one ``train()``; stopped inside the first stage
    and run again it finishes both, the main stage starting from exactly the pretrain stage's
    last checkpoint, and a third run skips the finished stages."""
    from habitat_fih.trainers import fih_trainer, resume
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    # every weight load of the trainer (pretrained start, resume state): (path, the model's
    # state right after loading it)
    loads: list[tuple[str, dict[str, torch.Tensor]]] = []
    load_model_weights = fih_trainer.load_model_weights

    def recording_load(model, checkpoint, config, path):
        load_model_weights(model, checkpoint, config, path)
        loads.append((path, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}))

    for module in (fih_trainer, resume):
        monkeypatch.setattr(module, "load_model_weights", recording_load)

    schedule = (
        "habitat_baselines.fih.schedule=[{stage: pretrain, dagger: {updates_per_iteration: 3}},"
        " {stage: main, dagger: {updates_per_iteration: 1}}]"
    )
    args = [
        schedule,
        "habitat_baselines.fih.dagger.iterations=1",
        "habitat_baselines.num_environments=1",
    ]
    stopped = FIHTrainer(
        kit.tiny_config(tmp_path, *args, "habitat_baselines.fih.stop_after_updates=2")
    )
    assert stopped.train() is False
    pre_dir = tmp_path / "ckpt" / "stage0_pretrain"
    assert not (pre_dir / "stage_done.json").exists() and not (pre_dir / "ckpt.0.pth").exists()
    assert FIHTrainer(kit.tiny_config(tmp_path, *args)).train() is True
    pre = torch.load(pre_dir / "ckpt.0.pth", weights_only=False)
    main = torch.load(tmp_path / "ckpt" / "ckpt.0.pth", weights_only=False)
    assert (pre["stage"], pre["update"]) == ("pretrain", 3)
    assert (main["stage"], main["update"]) == ("main", 1)
    done = json.loads((pre_dir / "stage_done.json").read_text())
    assert done["last_checkpoint"] == str(pre_dir / "ckpt.0.pth")
    assert os.path.isdir(tmp_path / "tb" / "stage0_pretrain")
    # the main stage started from exactly the pretrain stage's last checkpoint: it was loaded
    # once, last (the earlier loads are the pretrain stage's resume state; nothing replaced it),
    # and left the model holding its tensors bit for bit (independent of the collected data
    # and of the CPU)
    assert sorted(pre_dir.glob("ckpt.*.pth")) == [pre_dir / "ckpt.0.pth"]
    starts = [state for path, state in loads if path == done["last_checkpoint"]]
    assert len(starts) == 1 and loads[-1][0] == done["last_checkpoint"], [p for p, _ in loads]
    start = starts[0]
    assert set(pre["model"]) <= set(start) and set(pre["model"]) == set(main["model"])
    differ = [k for k in pre["model"] if not torch.equal(start[k], pre["model"][k])]
    assert not differ, f"main stage did not start from the pretrain checkpoint: {differ[:5]}"
    init = FIHTrainer(kit.tiny_config(tmp_path)).build_policy(1).model.state_dict()
    assert any(
        v.is_floating_point() and not torch.equal(v, init[k]) for k, v in pre["model"].items()
    ), "pretraining changed nothing (the start state would be a fresh model's)"
    # a finished schedule is not trained again
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "ckpt").rglob("ckpt.*.pth")}
    assert FIHTrainer(kit.tiny_config(tmp_path, *args)).train() is True
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "ckpt").rglob("ckpt.*.pth")}
    assert before == after


def test_schedule_rejects_unknown_keys_and_stages(tmp_path: Path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    bad_key = "habitat_baselines.fih.schedule=[{stage: main, dagger: {iters: 3}}]"
    with pytest.raises(ValueError, match=r"schedule\[0\].*iters"):
        FIHTrainer(kit.tiny_config(tmp_path, bad_key)).stage_configs()
    bad_stage = "habitat_baselines.fih.schedule=[{stage: warmup}]"
    with pytest.raises(ValueError, match=r"schedule\[0\].*warmup"):
        FIHTrainer(kit.tiny_config(tmp_path, bad_stage)).stage_configs()
