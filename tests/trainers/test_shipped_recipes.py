"""Every shipped fih config is a recipe that runs as written: it composes, each stage of its
schedule merges (typed), its losses and model settings parse, and every value the YAML file
itself sets for a stage reaches that stage's config.

The expectation comes from the YAML text (read with PyYAML, not through Hydra): a typo in a
recipe (a key the trainer does not know, a wrong nesting, a value Hydra dropped) fails here
instead of after half an hour of training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import OmegaConf

from habitat_fih.config import get_config
from habitat_fih.models.spec import build_model_config
from habitat_fih.trainers.stages import policy_config, stage_configs, vggt_loss_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "habitat" / "fih"
RECIPES = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def _leaves(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict):
        out: list[tuple[tuple[str, ...], Any]] = []
        for key, value in node.items():
            out += _leaves(value, (*prefix, str(key)))
        return out
    return [(prefix, node)]


def _get(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


def test_every_shipped_config_is_covered() -> None:
    # the bundled recipes the README names; a new file joins the parametrised tests below
    assert {"synthetic_tiny", "synthetic_tiny_learn", "synthetic_tiny_rgb_learn"} <= set(RECIPES)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_stages_carry_what_the_yaml_says(name: str) -> None:
    raw = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
    raw_schedule = (((raw or {}).get("habitat_baselines") or {}).get("fih") or {}).get("schedule")
    cfg = get_config(f"fih/{name}")
    fih = cfg.habitat_baselines.fih
    stages = stage_configs(cfg) if len(fih.schedule) else [("", cfg)]
    if raw_schedule is not None:
        assert len(stages) == len(raw_schedule)
    for k, (_, stage_cfg) in enumerate(stages):
        stage_fih = stage_cfg.habitat_baselines.fih
        policy_config(stage_fih.losses)  # unknown loss keys raise
        vggt_loss_config(stage_fih.losses)
        spec = OmegaConf.to_container(stage_fih.model, resolve=True)
        if not spec.get("require_pretrained"):
            build_model_config(spec)  # validates the model overrides
        if raw_schedule is None:
            continue
        entry = raw_schedule[k]
        for path, value in _leaves(entry):
            got = _get(stage_fih, path)
            got = OmegaConf.to_container(got) if OmegaConf.is_config(got) else got
            assert got == value, f"{name} schedule[{k}] {'.'.join(path)}: {got!r} != {value!r}"


def test_rgb_recipe_reads_no_simulator_camera() -> None:
    # issue 17's recipe: the model's prior takes VGGT's cameras, relative to the current view
    cfg = get_config("fih/synthetic_tiny_rgb_learn")
    for _, stage_cfg in stage_configs(cfg):
        model = build_model_config(
            OmegaConf.to_container(stage_cfg.habitat_baselines.fih.model, resolve=True)
        )
        assert model.geometry_prior == "vggt"
        assert model.vggt_reference == "current"
