"""``fih.collection.target_kind``: camera-position targets train next to (or instead of) the
covisibility ones; the default stays covisibility only; a sensor without the kind is one clear
error naming both settings."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

SENSOR = "habitat.task.lab_sensors.frame_heatmaps.target_kinds"
ONE_ENV = ("habitat_baselines.fih.dagger.iterations=1", "habitat_baselines.num_environments=1")



def test_default_is_covisibility_only(tmp_path: Path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    trainer = FIHTrainer(kit.tiny_config(tmp_path))
    assert trainer.trainer_config.collection.target_kind == "covisibility"
    assert trainer.target_kinds == ("covisibility",)
    assert trainer.model_config.target_kinds == ("covisibility",)
    assert trainer.build_policy(0).model.heatmap_head.to_logits.out_channels == 1


def test_both_kinds_train_and_log_their_terms(tmp_path: Path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    config = kit.tiny_config(
        tmp_path,
        *ONE_ENV,
        "habitat_baselines.fih.collection.target_kind=both",
        f"{SENSOR}=[covisibility,camera_position]",
        "+habitat_baselines.fih.losses.main.camera_position_weight=0.5",
    )
    trainer = FIHTrainer(config)
    assert trainer.model_config.target_kinds == ("covisibility", "camera_position")
    assert trainer.build_policy(0).model.heatmap_head.to_logits.out_channels == 2
    assert trainer.train() is True
    s = kit.tb_scalars(tmp_path / "tb")
    cam = ("heatmap_mse", "spatial_consistency", "temporal_coherence")
    for step in (1, 2):
        for name in cam:
            for key in (f"loss/{name}", f"loss/{name}_camera_position"):
                assert math.isfinite(s[key][step]), (key, sorted(s))
        # main weights 1.0 / 0.3 / 0.6 / action 1.0, the camera terms at 0.5 x those
        weights = (1.0, 0.3, 0.6)
        expected = s["loss/action"][step] + sum(
            w * (s[f"loss/{n}"][step] + 0.5 * s[f"loss/{n}_camera_position"][step])
            for w, n in zip(weights, cam, strict=True)
        )
        assert s["loss/total"][step] == pytest.approx(expected, rel=1e-4)
    ckpt = next((tmp_path / "ckpt").glob("ckpt.*.pth"))
    import torch

    saved = torch.load(ckpt, map_location="cpu", weights_only=False)["model_config"]
    assert list(saved["target_kinds"]) == ["covisibility", "camera_position"]


@pytest.mark.parametrize("kind", ["camera_position", "both"])
def test_a_kind_the_sensor_does_not_emit_is_one_clear_error(kind: str, tmp_path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    config = kit.tiny_config(tmp_path, f"habitat_baselines.fih.collection.target_kind={kind}")
    with pytest.raises(ValueError, match="collection.target_kind") as err:
        FIHTrainer(config)
    assert SENSOR in str(err.value) and "camera_position" in str(err.value)


def test_unknown_kind_and_contradicting_override(tmp_path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    bad = kit.tiny_config(tmp_path, "habitat_baselines.fih.collection.target_kind=depth")
    with pytest.raises(ValueError, match="target_kind must be one of"):
        FIHTrainer(bad)
    clash = kit.tiny_config(
        tmp_path, "+habitat_baselines.fih.model.overrides.target_kinds=[camera_position]"
    )
    with pytest.raises(ValueError, match="contradicts"):
        FIHTrainer(clash)


def test_camera_positions_alone_train(tmp_path: Path, kit) -> None:
    """target_kind camera_position: a one-channel head whose map is the camera position, only
    the suffixed map terms (no covisibility term), the action term as before."""
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    config = kit.tiny_config(
        tmp_path,
        *ONE_ENV,
        "habitat_baselines.fih.collection.target_kind=camera_position",
        f"{SENSOR}=[covisibility,camera_position]",
    )
    trainer = FIHTrainer(config)
    assert trainer.model_config.target_kinds == ("camera_position",)
    assert trainer.train() is True
    s = kit.tb_scalars(tmp_path / "tb")
    assert "loss/heatmap_mse" not in s and "loss/heatmap_mse_camera_position" in s
    assert all(math.isfinite(v) for v in s["loss/total"].values())
    assert set(s["loss/action"]) == {1, 2}
