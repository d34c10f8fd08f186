"""The fih experiment configs compose through Hydra and reach the registered trainer."""

from __future__ import annotations

import pytest

from habitat_fih.config import get_config


def test_fih_trainer_is_registered() -> None:
    from habitat_baselines.common.baseline_registry import baseline_registry

    from habitat_fih.trainers.fih_trainer import FIHTrainer

    assert baseline_registry.get_trainer("fih") is FIHTrainer


@pytest.mark.parametrize("name", ["fih/synthetic_tiny", "fih/synthetic", "fih/r2r_ce"])
def test_configs_compose(name: str) -> None:
    cfg = get_config(name)
    assert cfg.habitat_baselines.trainer_name == "fih"
    assert cfg.habitat.task.type == "FIH-VLN-v0"
    assert cfg.habitat_baselines.fih.stage in ("pretrain", "finetune", "main")
    assert cfg.habitat.task.lab_sensors.frame_heatmaps.height > 0


def test_tiny_targets_match_model_heatmaps() -> None:
    from habitat_fih.models.spec import build_model_config

    cfg = get_config("fih/synthetic_tiny")
    model = build_model_config(cfg.habitat_baselines.fih.model)
    sensor = cfg.habitat.task.lab_sensors.frame_heatmaps
    assert tuple(model.heatmap.out_size) == (sensor.height, sensor.width)
    assert model.image_size == cfg.habitat_baselines.fih.collection.frame_size


def test_r2r_ce_requires_model_directories() -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    with pytest.raises(ValueError, match="fih.model.vggt_dir=<dir>, .*dinov3_dir"):
        FIHTrainer(get_config("fih/r2r_ce"))
    with pytest.raises(FileNotFoundError, match="vggt_dir"):
        FIHTrainer(
            get_config(
                "fih/r2r_ce",
                [
                    "habitat_baselines.fih.model.vggt_dir=/no/vggt",
                    "habitat_baselines.fih.model.dinov3_dir=/no/dino",
                    "habitat_baselines.fih.model.qwen_dir=/no/qwen",
                ],
            )
        )


def test_missing_data_is_one_clear_error(tmp_path) -> None:
    from habitat_fih.trainers.collector import check_data

    cfg = get_config(
        "fih/synthetic_tiny", [f"habitat.dataset.data_path='{tmp_path}/{{split}}.json.gz'"]
    )
    with pytest.raises(FileNotFoundError, match="episodes of split 'train'"):
        check_data(cfg)
