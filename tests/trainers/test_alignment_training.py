"""The fih trainer's pretraining with the cross-frame alignment term: its weight comes from the
config (default on), the collector makes the token pairs from the real sensors, the term is
finite and logged; a config that cannot make pairs is one clear error naming the setting."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

SETTING = "habitat_baselines.fih.losses.pretrain.alignment_weight"



def test_alignment_weight_comes_from_the_config() -> None:
    from habitat_fih.models.losses import PretrainLossConfig
    from habitat_fih.trainers.stages import policy_config

    assert policy_config({}).losses.pretrain.alignment_weight == 0.5  # the design: on
    assert PretrainLossConfig().alignment_weight == 0.5
    got = policy_config({"pretrain": {"alignment_weight": 0.2, "alignment_pairs": 8}})
    assert (got.losses.pretrain.alignment_weight, got.losses.pretrain.alignment_pairs) == (0.2, 8)
    with pytest.raises(ValueError, match="alignment_pairs"):
        PretrainLossConfig(alignment_pairs=0)


def test_pretrain_update_trains_and_logs_the_alignment_term(tmp_path: Path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    config = kit.tiny_config(
        tmp_path,
        "habitat_baselines.fih.stage=pretrain",
        "habitat_baselines.fih.dagger.iterations=1",
        "habitat_baselines.num_environments=1",
    )
    trainer = FIHTrainer(config)
    settings = trainer.alignment_settings(trainer.build_policy(0))
    assert settings is not None and settings.grid == (4, 4) and settings.num_pairs == 32
    assert trainer.train() is True
    scalars = kit.tb_scalars(tmp_path / "tb")
    assert set(scalars.get("loss/alignment", {})) == {1, 2}, sorted(scalars)
    for step in (1, 2):
        value = scalars["loss/alignment"][step]
        assert math.isfinite(value) and value > 0  # some pairs were made and scored
        # total = 1.0 heatmap_ce + 0.1 smoothness + 0.5 alignment (the default weights)
        expected = (
            scalars["loss/heatmap_ce"][step] + 0.1 * scalars["loss/smoothness"][step] + 0.5 * value
        )
        assert scalars["loss/total"][step] == pytest.approx(expected, rel=1e-4)


def test_main_stage_collects_no_pairs(tmp_path: Path, kit) -> None:
    """fih/synthetic_tiny (``make run``) trains the main stage: its collection makes no pairs
    and its loss has no alignment term, as before."""
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    trainer = FIHTrainer(kit.tiny_config(tmp_path))
    assert trainer.trainer_config.stage == "main"
    assert trainer.alignment_settings(trainer.build_policy(0)) is None


@pytest.mark.parametrize(
    "removal",
    [
        "~habitat.task.lab_sensors.frame_geometry",
        "habitat.task.lab_sensors.frame_heatmaps.target_kinds=[camera_position]",
    ],
)
def test_pretraining_without_the_sensors_is_one_clear_error(removal: str, tmp_path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    base = ["habitat_baselines.fih.model.overrides.geometry_prior=none", removal]
    if "target_kinds" in removal:  # train what the sensor emits (else that is the error)
        base.append("habitat_baselines.fih.collection.target_kind=camera_position")
    with pytest.raises(ValueError, match=rf"{SETTING}=0\.5 .*needs .*set {SETTING}=0"):
        FIHTrainer(kit.tiny_config(tmp_path, *base, "habitat_baselines.fih.stage=pretrain"))
    # also when a scheduled stage pretrains
    with pytest.raises(ValueError, match=SETTING):
        FIHTrainer(
            kit.tiny_config(
                tmp_path, *base, "habitat_baselines.fih.schedule=[{stage: pretrain}, {stage: main}]"
            )
        )
    # weight 0 (or a stage that does not pretrain): nothing needed
    FIHTrainer(kit.tiny_config(tmp_path, *base))
    FIHTrainer(
        kit.tiny_config(
            tmp_path,
            *base,
            "habitat_baselines.fih.stage=pretrain",
            "+habitat_baselines.fih.losses={pretrain: {alignment_weight: 0.0}}",
        )
    )
