"""The progress monitor on the trainer's side: each view's remaining distance to the goal (the
``distance_to_goal`` measure) carried by samples and batches, the stop rules of `PolicyAgent`
(``fih.stop``), their config checks, and a trainer run that stops on the predicted distance."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from habitat_fih.trainers.buffer import Sample, collate
from habitat_fih.trainers.collector import StepView
from habitat_fih.trainers.evaluation import PolicyAgent

MONITOR = "+habitat_baselines.fih.model.overrides.action.goal_distance=true"


def _episodes(root: Path, split: str) -> dict[str, dict]:
    path = root / "data/datasets/synthetic_r2r/v1" / split / f"{split}.json.gz"
    with gzip.open(path, "rt") as f:
        return {str(e["episode_id"]): e for e in json.load(f)["episodes"]}


def test_views_carry_the_distance_to_the_goal(tmp_path: Path, kit) -> None:
    """The expert drives: at step 0 the distance is the dataset's start-goal geodesic
    distance (computed when the data was generated); a turn leaves it unchanged; the forward
    steps bring the expert closer by at most 0.25 m each; at the expert's STOP it is
    under the 3 m success distance. (One forward step can change it by more than 0.25 m: the
    pathfinder's polygon-corridor search, like Detour's in habitat-sim, does not always find
    the exactly shortest path — up to 0.40 m seen on val_seen — so only 2x is bounded.)"""
    from habitat_fih.trainers.collector import (
        build_vector_env,
        env_config,
        make_action,
        run_episodes,
    )
    from habitat_fih.trainers.frame_history import FrameHistory

    cfg = env_config(kit.tiny_config(tmp_path), "val_seen", ["top_down_map"])
    seen: list[StepView] = []

    def decide(views):
        seen.extend(views)
        return [make_action(v.expert_action) for v in views]

    envs = build_vector_env(cfg, 2, seed=0)
    try:
        ids = envs.call_at(0, "episode_ids")[:3]
        run_episodes(envs, ids, decide, lambda: FrameHistory(16, 4), max_episode_steps=400)
    finally:
        envs.close()
    episodes = _episodes(kit.REPO, "val_seen")
    for eid in ids:
        views = sorted((v for v in seen if v.episode_id == eid), key=lambda v: v.step)
        d = [v.goal_distance for v in views]
        assert d[0] == pytest.approx(episodes[eid]["info"]["geodesic_distance"], abs=2e-3)
        forward = []
        for before, after, view in zip(d, d[1:], views, strict=False):
            if view.expert_action in (2, 3):  # a turn does not move the agent
                assert after == pytest.approx(before, abs=1e-5)
            else:
                assert abs(after - before) <= 0.5
                forward.append(after - before)
        # the path it reports may be longer than the shortest, so only up to 5 % of the
        # start distance can be gained beyond 0.25 m per forward step
        assert 0.0 < d[0] - d[-1] <= 0.25 * len(forward) + 0.05 * d[0]
        assert views[-1].expert_action == 0 and d[-1] < 3.0


def test_collate_carries_the_goal_distance() -> None:
    def sample(distance: float) -> Sample:
        return Sample(
            frames=np.zeros((1, 8, 8, 3), np.uint8),
            indices=np.array([0]),
            targets=np.zeros((1, 4, 4), np.float16),
            valid=np.zeros(1, bool),
            instruction="go",
            expert_action=1,
            goal_distance=distance,
        )

    obs = collate([sample(2.5), sample(math.nan)])
    assert obs["goal_distance"].dtype == torch.float32
    assert obs["goal_distance"][0] == 2.5 and torch.isnan(obs["goal_distance"][1])


class _FixedPolicy:
    """A stand-in policy (no ``model``) whose outputs are given."""

    def __init__(self, logits: list[list[float]], distance: list[float] | None) -> None:
        self.logits = torch.tensor(logits)
        self.distance = None if distance is None else torch.tensor(distance)

    def __call__(self, obs):
        return SimpleNamespace(action_logits=self.logits, goal_distance=self.distance)


def _views(n: int) -> list[StepView]:
    return [
        StepView(
            env_index=i,
            episode_id=str(i),
            step=3,
            observations={},
            instruction="go",
            expert_action=1,
            frames=np.zeros((1, 8, 8, 3), np.uint8),
            indices=np.array([3]),
            goal_distance=float(i + 1),
        )
        for i in range(n)
    ]


# STOP wins the argmax of both rows; without STOP, row 0 turns left and row 1 goes forward
LOGITS = [[5.0, 1.0, 2.0, 0.0], [5.0, 3.0, 2.0, 0.0]]


def test_stop_rules() -> None:
    cpu = torch.device("cpu")
    action = PolicyAgent(_FixedPolicy(LOGITS, [0.5, 2.0]), cpu)
    assert action.act(_views(2)) == [0, 0]
    by_distance = PolicyAgent(
        _FixedPolicy(LOGITS, [0.5, 2.0]), cpu, stop_rule="goal_distance", stop_distance=1.5
    )
    assert by_distance.act(_views(2)) == [0, 1]  # 0.5 m < 1.5 m stops; 2 m does not
    never = PolicyAgent(_FixedPolicy(LOGITS, [0.5, 2.0]), cpu, stop_rule="never", trace=True)
    assert never.act(_views(2)) == [2, 1]
    p_stop = torch.tensor(LOGITS).softmax(-1)[:, 0]
    assert never.trace == [
        {
            "episode_id": str(i),
            "step": 3,
            "goal_distance": float(i + 1),
            "predicted_distance": [0.5, 2.0][i],
            "p_stop": pytest.approx(float(p_stop[i])),
        }
        for i in range(2)
    ]
    sampled = PolicyAgent(_FixedPolicy(LOGITS, None), cpu, deterministic=False, stop_rule="never")
    assert 0 not in [a for _ in range(20) for a in sampled.act(_views(2))]


def test_stop_rule_errors() -> None:
    cpu = torch.device("cpu")
    with pytest.raises(ValueError, match=r"stop rule must be one of \['action', 'goal_dist"):
        PolicyAgent(_FixedPolicy(LOGITS, None), cpu, stop_rule="threshold")
    with pytest.raises(ValueError, match="stop distance must be > 0 metres, got -1"):
        PolicyAgent(_FixedPolicy(LOGITS, None), cpu, stop_rule="goal_distance", stop_distance=-1)
    agent = PolicyAgent(_FixedPolicy(LOGITS, None), cpu, stop_rule="goal_distance")
    with pytest.raises(ValueError, match=r"action\.goal_distance=true"):
        agent.act(_views(2))


def test_trainer_config_errors(tmp_path: Path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    rule = "habitat_baselines.fih.stop.rule=goal_distance"
    with pytest.raises(ValueError, match=r"does not predict it: set habitat_baselines\.fih"):
        FIHTrainer(kit.tiny_config(tmp_path, rule))
    with pytest.raises(ValueError, match=r"stop\.rule must be one of .*got 'sometimes'"):
        FIHTrainer(kit.tiny_config(tmp_path, "habitat_baselines.fih.stop.rule=sometimes"))
    with pytest.raises(ValueError, match=r"stop\.distance must be metres > 0, got 0"):
        FIHTrainer(kit.tiny_config(tmp_path, "habitat_baselines.fih.stop.distance=0"))
    no_measure = "~habitat.task.measurements.distance_to_goal"
    with pytest.raises(ValueError, match="lacks"):
        FIHTrainer(kit.tiny_config(tmp_path, MONITOR, no_measure))


def test_trainer_trains_the_monitor_and_stops_on_it(tmp_path: Path, kit) -> None:
    """A run with the progress monitor: the samples carry the distance (finite, and the
    dataset's start-goal distance at step 0), the loss logs its term, the checkpoint has the
    monitor's weights and evaluation stops on the predicted distance."""
    from habitat_fih.trainers.checkpoint import list_checkpoints, load_checkpoint
    from habitat_fih.trainers.fih_trainer import FIHTrainer
    from habitat_fih.trainers.resume import RESUME_FILE

    rule = "habitat_baselines.fih.stop.rule=goal_distance"
    first = FIHTrainer(
        kit.tiny_config(
            tmp_path,
            MONITOR,
            rule,
            "habitat_baselines.num_environments=1",
            "habitat_baselines.fih.stop_after_updates=1",
        )
    )
    assert not first.train()
    items = torch.load(tmp_path / "ckpt" / RESUME_FILE, weights_only=False)["buffer"]["items"]
    assert all(math.isfinite(s.goal_distance) and s.goal_distance >= 0 for s in items)
    train = _episodes(kit.REPO, "train")
    starts = [s for s in items if int(s.indices[-1]) == 0]
    assert starts
    known = [e["info"]["geodesic_distance"] for e in train.values()]
    for s in starts:
        assert min(abs(s.goal_distance - g) for g in known) < 2e-3
    assert FIHTrainer(kit.tiny_config(tmp_path, MONITOR, rule)).train()
    scalars = kit.tb_scalars(tmp_path / "tb")
    assert any(tag.endswith("goal_distance") for tag in scalars), sorted(scalars)
    state = load_checkpoint(list_checkpoints(str(tmp_path / "ckpt"))[-1])["model"]
    assert {"action_head.distance.weight", "action_head.distance.bias"} <= set(state)
    evaluator = FIHTrainer(
        kit.tiny_config(
            tmp_path,
            MONITOR,
            rule,
            "habitat_baselines.fih.stop.distance=1000.0",  # every step is "at the goal"
            "habitat_baselines.evaluate=True",
            "habitat_baselines.test_episode_count=2",
        )
    )
    evaluator.eval()
    stats = sorted((tmp_path / "eval").glob("stats_ckpt_*_val_seen.json"))
    assert stats
    for path in stats:  # (every checkpoint of the folder is evaluated)
        means = json.loads(path.read_text())
        # a monitor under 1000 m everywhere stops every episode at its first step
        assert means["steps_taken"] == 1.0, (path.name, means)
