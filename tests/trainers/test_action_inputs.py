"""The action head's extra inputs on the trainer's side: the depth sensor's observation in
metres (`NavDepth`), the previous action each environment took (`run_episodes`), carried by
samples and batches, and a run of the fih trainer with both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from habitat_fih.trainers.buffer import Sample, collate
from habitat_fih.trainers.frame_history import FrameHistory, NavDepth


def test_nav_depth_undoes_habitat_normalisation() -> None:
    """habitat's normalize_depth maps [min_depth, max_depth] to [0, 1]: 0.5 of [0.5, 10.5] is
    5.5 m; a constant map stays constant under the area resize."""
    nav = NavDepth("depth", 4, min_depth=0.5, max_depth=10.5, normalized=True)
    out = nav(np.full((8, 8, 1), 0.5, np.float32))
    assert out.shape == (4, 4) and np.allclose(out, 5.5)
    raw = NavDepth("depth", 2, 0.0, 10.0, normalized=False)
    # a 2x2 area average of a known pattern: each output cell is its 4x4 block's mean
    d = np.kron(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), np.ones((4, 4), np.float32))
    assert np.allclose(raw(d), [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match=r"must be \[H, W\] or \[H, W, 1\], got \(2, 2, 3\)"):
        raw(np.zeros((2, 2, 3)))


def test_history_without_the_depth_observation_names_it() -> None:
    history = FrameHistory(8, 3, nav_depth=NavDepth("depth", 8, 0.0, 10.0, True))
    with pytest.raises(ValueError, match=r"observation 'depth' .*got keys \['rgb'\]"):
        history.update(0, np.zeros((16, 16, 3), np.uint8), np.array([-1]), None, {"rgb": 0})


def _sample(depth: np.ndarray | None, previous: int) -> Sample:
    return Sample(
        frames=np.zeros((2, 8, 8, 3), np.uint8),
        indices=np.array([0, 1]),
        targets=np.zeros((2, 4, 4), np.float16),
        valid=np.zeros(2, bool),
        instruction="go",
        expert_action=1,
        depth=depth,
        previous_action=previous,
    )


def test_collate_carries_depth_and_previous_action() -> None:
    d = np.arange(64, dtype=np.float16).reshape(8, 8)
    obs = collate([_sample(d, -1), _sample(2 * d, 3)])
    assert obs["previous_action"].tolist() == [-1, 3]
    assert obs["nav_depth"].shape == (2, 8, 8) and obs["nav_depth"].dtype == torch.float32
    assert torch.equal(obs["nav_depth"][1], torch.from_numpy(2 * d.astype(np.float32)))
    assert "nav_depth" not in collate([_sample(None, 0)])
    with pytest.raises(ValueError, match="with and without depth inputs"):
        collate([_sample(d, 0), _sample(None, 0)])


def test_views_carry_the_action_taken_before_and_the_depth(tmp_path: Path, kit) -> None:
    """A scripted agent (left, right, forward, ...): each view's previous_action is the action
    the env took at the step before (-1 at step 0), and its depth is the depth sensor's
    observation in metres at the frames' size."""
    from habitat_fih.trainers.collector import (
        build_vector_env,
        env_config,
        make_action,
        run_episodes,
    )

    cfg = env_config(kit.tiny_config(tmp_path), "val_seen", ["top_down_map"])
    sensor = cfg.habitat.simulator.agents.main_agent.sim_sensors.depth_sensor
    assert sensor.normalize_depth and sensor.max_depth == 10.0
    nav = NavDepth("depth", 16, float(sensor.min_depth), float(sensor.max_depth), True)
    script = [2, 3, 1, 1, 2, 1]
    seen: list[tuple[str, int, int, np.ndarray, np.ndarray]] = []

    def decide(views):
        for v in views:
            seen.append((v.episode_id, v.step, v.previous_action, v.depth, v.observations))
        return [make_action(script[v.step % len(script)]) for v in views]

    envs = build_vector_env(cfg, 2, seed=0)
    try:
        ids = envs.call_at(0, "episode_ids")[:3]
        run_episodes(
            envs, ids, decide, lambda: FrameHistory(16, 4, nav_depth=nav), max_episode_steps=8
        )
    finally:
        envs.close()
    assert {e for e, *_ in seen} == set(ids)
    for _episode, step, previous, depth, obs in seen:
        expected = -1 if step == 0 else script[(step - 1) % len(script)]
        assert previous == expected
        metres = np.asarray(obs["depth"])[..., 0] * 10.0
        assert depth.shape == (16, 16)
        # the area mean of each 4x4 block of the 64x64 observation
        blocks = metres.reshape(16, 4, 16, 4).mean(axis=(1, 3))
        assert np.allclose(depth, blocks, atol=1e-4)
        assert 0.0 < depth.mean() <= 10.0


def test_trainer_runs_with_both_inputs_and_its_checkpoint_acts(tmp_path: Path, kit) -> None:
    from habitat_fih.trainers.checkpoint import list_checkpoints, load_checkpoint
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    inputs = "+habitat_baselines.fih.model.overrides.action.inputs=[depth,previous_action]"
    trainer = FIHTrainer(kit.tiny_config(tmp_path, inputs))
    assert trainer.train()
    ckpt = list_checkpoints(str(tmp_path / "ckpt"))[-1]
    state = load_checkpoint(ckpt)["model"]
    assert any(k.startswith("action_head.extra.depth.") for k in state)
    assert any(k.startswith("action_head.extra.previous.") for k in state)
    evaluator = FIHTrainer(
        kit.tiny_config(
            tmp_path,
            inputs,
            "habitat_baselines.evaluate=True",
            "habitat_baselines.test_episode_count=2",
        )
    )
    evaluator.eval()
    stats = list((tmp_path / "eval").glob("stats_ckpt_*_val_seen.json"))
    assert stats, sorted(p.name for p in (tmp_path / "eval").iterdir())


def test_collisions_per_step_is_each_episodes_count_over_its_steps() -> None:
    from habitat_fih.trainers.collector import EpisodeResult
    from habitat_fih.trainers.evaluation import summarize

    results = [
        EpisodeResult("a", {"collisions": {"count": 3, "is_collision": False}}, 10),
        EpisodeResult("b", {"collisions": {"count": 0, "is_collision": False}}, 4),
        EpisodeResult("c", {"success": 1.0}, 5),  # no collisions measure: no value
    ]
    means, rows = summarize(results)
    assert [r.get("collisions_per_step") for r in rows] == [0.3, 0.0, None]
    assert means["collisions_per_step"] == 0.15  # mean over the episodes that have it


def test_collected_samples_carry_the_stop_weight(tmp_path: Path, kit) -> None:
    """Expert-driven collection with losses.main.stop_weight 10: a sample's action weight is
    the VLN-CE inflection weight (3.2 where the expert's action differs from the step
    before's, or at step 0) times 10 where the expert stops; one env, so the buffer holds
    each episode's steps in order; with previous_action, each sample's previous action is the
    expert's at the step before (the expert drives)."""
    from habitat_fih.trainers.fih_trainer import FIHTrainer
    from habitat_fih.trainers.resume import RESUME_FILE

    cfg = kit.tiny_config(
        tmp_path,
        "habitat_baselines.num_environments=1",
        "habitat_baselines.fih.collection.max_episode_steps=200",
        "+habitat_baselines.fih.losses.main.stop_weight=10.0",
        "+habitat_baselines.fih.model.overrides.action.inputs=[previous_action]",
        "habitat_baselines.fih.stop_after_updates=1",
    )
    assert not FIHTrainer(cfg).train()  # stopped after one update: the resume state stays
    items = torch.load(tmp_path / "ckpt" / RESUME_FILE, weights_only=False)["buffer"]["items"]
    steps = [int(s.indices[-1]) for s in items]
    assert steps.count(0) == 2 and 0 in [s.expert_action for s in items]  # 2 whole episodes
    previous = None
    for sample, step in zip(items, steps, strict=True):
        if step == 0:
            previous = None
        inflection = previous is None or previous != sample.expert_action
        expected = (3.2 if inflection else 1.0) * (10.0 if sample.expert_action == 0 else 1.0)
        assert sample.action_weight == pytest.approx(expected)
        assert sample.previous_action == (-1 if previous is None else previous)
        previous = sample.expert_action
