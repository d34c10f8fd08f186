"""Tests for habitat_fih.models.policy (tiny FIHModel on CPU)."""

from __future__ import annotations

import _tiny_qwen as _tiny  # tests/helpers (on sys.path via tests/conftest.py)
import pytest
import torch
from omegaconf import OmegaConf

from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.policy import FIHActionData, FIHPolicy, decode_instructions

B, S = 2, 6
TEXTS = ["go to the kitchen", "turn left and stop"]


def _utf8(texts: list[str], length: int = 40) -> torch.Tensor:
    out = torch.zeros(len(texts), length, dtype=torch.uint8)
    for i, text in enumerate(texts):
        data = torch.tensor(list(text.encode("utf-8")), dtype=torch.uint8)
        out[i, : data.numel()] = data
    return out


def observations() -> dict[str, object]:
    gen = torch.Generator().manual_seed(0)
    mask = torch.ones(B, S, dtype=torch.bool)
    mask[1, :2] = False
    return {
        "rgb_history": torch.randint(0, 256, (B, S, 40, 40, 3), dtype=torch.uint8, generator=gen),
        "rgb_history_mask": mask,
        "rgb_history_index": torch.arange(S).expand(B, S) * 2,
        "instruction_text": _utf8(TEXTS),
    }


@pytest.fixture(scope="module")
def policy() -> FIHPolicy:
    torch.manual_seed(0)
    config = OmegaConf.create(
        {"habitat_baselines": {"fih": {"model": FIHModelConfig.tiny().to_dict()}}}
    )
    return FIHPolicy.from_config(config, None, None, tokenizer=_tiny.tiny_tokenizer()).eval()


def test_policy_is_registered() -> None:
    # imported here: habitat_baselines needs habitat_fih's import compatibility layer first
    from habitat_baselines.common.baseline_registry import baseline_registry

    assert baseline_registry.get_policy("FIHPolicy") is FIHPolicy


def test_act_returns_one_valid_action_per_env(policy: FIHPolicy) -> None:
    obs = observations()
    data = policy.act(obs, None, None, None, deterministic=True)
    assert isinstance(data, FIHActionData)
    assert data.actions.shape == (B, 1) and data.actions.dtype == torch.long
    assert ((data.actions >= 0) & (data.actions < 4)).all()
    assert data.action_log_probs.shape == (B, 1)
    assert torch.equal(data.env_actions, data.actions)
    assert data.actions[:, 0].tolist() == data.action_logits.argmax(-1).tolist()
    assert len(data.heatmaps) == B
    assert sorted(data.heatmaps[1]) == [4, 6, 8]  # 3 history frames (indices 4, 6, 8), padded
    sampled = policy.act(obs, None, None, None, deterministic=False)
    assert ((sampled.actions >= 0) & (sampled.actions < 4)).all()
    assert policy.num_recurrent_layers == 0


def test_instructions_as_strings_and_targets_give_a_loss(policy: FIHPolicy) -> None:
    obs = observations()
    obs["instruction_text"] = TEXTS
    h, w = policy.model.config.heatmap.out_size
    obs["fih_heatmaps"] = torch.rand(B, S, h, w)
    obs["expert_action"] = torch.tensor([[1], [0]])
    output, total, terms = policy.evaluate_loss(obs, "main")
    assert torch.isfinite(total) and "action" in terms and "heatmap_mse" in terms
    targets = policy.gather_targets(obs, output)
    assert targets is not None
    row, slot = 0, int(output.keyframe_slots[0, 0])
    torch.testing.assert_close(targets["heatmaps"][row, 0], obs["fih_heatmaps"][row, slot])
    assert targets["valid"].tolist() == output.keyframe_valid.tolist()


def test_action_weights_observation_weights_the_action_loss(policy: FIHPolicy) -> None:
    """With ``action_weights`` the action term is the weighted mean cross-entropy
    sum(w_i * CE_i) / sum(w_i), computed here from the logits by hand."""
    obs = observations()
    h, w = policy.model.config.heatmap.out_size
    obs["fih_heatmaps"] = torch.rand(B, S, h, w)
    obs["expert_action"] = torch.tensor([1, 3])
    obs["action_weights"] = torch.tensor([3.2, 1.0])
    output, _, terms = policy.evaluate_loss(obs, "main")
    ce = -torch.log_softmax(output.action_logits.float(), -1)[torch.arange(B), obs["expert_action"]]
    weights = obs["action_weights"]
    expected = (weights * ce).sum() / weights.sum()
    torch.testing.assert_close(terms["action"], expected.detach(), rtol=1e-5, atol=1e-6)
    assert not torch.isclose(terms["action"], ce.mean().detach())  # the weights do matter


def test_bad_observations_raise(policy: FIHPolicy) -> None:
    obs = observations()
    del obs["rgb_history"]
    with pytest.raises(KeyError, match="rgb_history"):
        policy.act(obs, None, None, None)
    with pytest.raises(ValueError, match="2 instructions for 3"):
        decode_instructions(TEXTS, 3)
    with pytest.raises(ValueError, match="list of str"):
        decode_instructions(torch.zeros(2, 3), 2)
    assert decode_instructions(_utf8(["café"]), 1) == ["café"]
    with pytest.raises(KeyError, match="fih.model"):
        FIHPolicy.from_config(OmegaConf.create({}), None, None)


def test_two_target_kinds_give_two_maps_per_keyframe_and_both_losses() -> None:
    """FIHModelConfig.target_kinds = (covisibility, camera_position): the head has 2 channels,
    FIHOutput.heatmap_logits is the covisibility channel, kind_logits holds both, and the loss
    has both kinds' terms from fih_heatmaps / fih_heatmaps_camera_position."""
    torch.manual_seed(0)
    model = FIHModelConfig.tiny(target_kinds=("covisibility", "camera_position")).to_dict()
    config = OmegaConf.create({"habitat_baselines": {"fih": {"model": model}}})
    pol = FIHPolicy.from_config(config, None, None, tokenizer=_tiny.tiny_tokenizer()).eval()
    assert pol.model.heatmap_head.to_logits.out_channels == 2
    obs = observations()
    obs["instruction_text"] = TEXTS
    h, w = pol.model.config.heatmap.out_size
    obs["fih_heatmaps"] = torch.rand(B, S, h, w)
    obs["fih_heatmaps_camera_position"] = torch.rand(B, S, h, w)
    obs["fih_heatmaps_camera_position_valid"] = torch.zeros(B, S, dtype=torch.bool)
    obs["fih_heatmaps_camera_position_valid"][0, :2] = True
    obs["expert_action"] = torch.tensor([[1], [0]])
    output, total, terms = pol.evaluate_loss(obs, "main")
    assert output.kind_logits is not None and list(output.kind_logits) == [
        "covisibility",
        "camera_position",
    ]
    assert torch.equal(output.heatmap_logits, output.kind_logits["covisibility"])
    assert output.kind_logits["camera_position"].shape == output.heatmap_logits.shape
    assert {"heatmap_mse", "heatmap_mse_camera_position", "action"} <= set(terms)
    targets = pol.gather_targets(obs, output)
    assert targets is not None
    slot = output.keyframe_slots
    expect = obs["fih_heatmaps_camera_position_valid"].gather(1, slot.clamp_min(0)) & (slot >= 0)
    assert targets["valid_camera_position"].tolist() == expect.tolist()
    del obs["fih_heatmaps_camera_position"]
    with pytest.raises(KeyError, match="fih_heatmaps_camera_position"):
        pol.gather_targets(obs, output)
