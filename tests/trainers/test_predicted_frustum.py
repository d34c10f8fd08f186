"""The paired row "the same frustum map from the cameras the model predicted": the frustum
baseline on the agent's predicted pose encodings (`FrustumBaseline(cameras="prediction")`),
and `PolicyAgent` handing a ``geometry_prior: vggt`` model's cameras to it."""

from __future__ import annotations

import _tiny_qwen as _tiny  # tests/helpers (on sys.path via tests/conftest.py)
import numpy as np
import pytest
import torch

from habitat_fih.models.config import FIHModelConfig
from habitat_fih.models.factory import build_model
from habitat_fih.models.policy import FIHPolicy, FIHPolicyConfig
from habitat_fih.trainers.collector import StepView, make_action
from habitat_fih.trainers.evaluation import FrustumBaseline, PairedHeatmapScores, PolicyAgent

SQUARE_FOV = np.pi / 2  # 90 degrees both ways (4 x 4 maps)


def _pose(quat_xyzw: tuple[float, float, float, float]) -> np.ndarray:
    return np.array([0, 0, 0, *quat_xyzw, SQUARE_FOV, SQUARE_FOV], np.float32)


def _view() -> StepView:
    """Step 5 with history steps 0 and 3 (task memory slots 0, 1): frame 0's target is the
    left half, frame 3's the top row. No frame_geometry sensor: only the prediction has
    cameras."""
    cov = np.zeros((4, 4, 4), np.float32)
    cov[0, :, :2] = 1.0
    cov[1, :1, :] = 1.0
    obs = {
        "frame_heatmaps": {
            "frame_indices": np.array([0, 3, -1, -1]),
            "covisibility": cov,
            "covisibility_valid": np.array([1, 1, 0, 0], np.uint8),
        }
    }
    return StepView(0, "ep", 5, obs, "go", 1, np.zeros((3, 8, 8, 3), np.uint8), np.array([0, 3, 5]))


def test_predicted_cameras_give_the_closed_form_scores() -> None:
    """Predicted: frame 0 turned 180 degrees about the vertical axis (quaternion (0, 1, 0, 0):
    no ray of the current view lands in its image, the map is the floor f), frame 3 the
    current camera itself (every ray lands: the map is 1). KL(left half || flat) = log 2,
    KL(top row || flat) = log 4; IoU 8 f / (8 + 8 f) and 4 / 16."""
    floor = 0.25
    poses = np.stack([_pose((0, 1, 0, 0)), _pose((0, 0, 0, 1)), _pose((0, 0, 0, 1))])
    scorer = PairedHeatmapScores(
        {"frustum_predicted": FrustumBaseline([1.0, 0.0], floor, cameras="prediction")}
    )
    view = _view()
    maps = view.targets((4, 4))[0][:2].copy()
    scorer(view, make_action(1, {"maps": maps, "frame_indices": [0, 3], "camera_poses": poses}))
    m = scorer.episode_metrics("ep")["frustum_predicted"]
    assert m["kl"] == pytest.approx((np.log(2) + np.log(4)) / 2, rel=1e-5)
    assert m["iou"] == pytest.approx((8 * floor / (8 + 8 * floor) + 4 / 16) / 2, rel=1e-5)


def test_predicted_cameras_bad_input_is_one_clear_error() -> None:
    view = _view()
    maps = view.targets((4, 4))[0][:2].copy()
    with pytest.raises(ValueError, match="cameras must be 'sensor' or 'prediction'"):
        FrustumBaseline([0.0], 0.3, cameras="vggt")
    scorer = PairedHeatmapScores({"p": FrustumBaseline([0.0], 0.3, cameras="prediction")})
    with pytest.raises(ValueError, match=r"prediction\['camera_poses'\]"):
        scorer(view, make_action(1, {"maps": maps, "frame_indices": [0, 3]}))
    with pytest.raises(ValueError, match=r"must be \[S=3, 9\], got \(2, 9\)"):
        poses = np.zeros((2, 9), np.float32)
        scorer(view, make_action(1, {"maps": maps, "frame_indices": [0, 3], "camera_poses": poses}))


@torch.no_grad()
@pytest.mark.parametrize("prior", ["vggt", "none"])
def test_policy_agent_hands_over_the_cameras_its_prior_read(prior: str) -> None:
    torch.manual_seed(0)
    config = FIHModelConfig.tiny(geometry_prior=prior)
    model = build_model(config, tokenizer=_tiny.tiny_tokenizer())
    agent = PolicyAgent(FIHPolicy(model, None, FIHPolicyConfig()).eval(), torch.device("cpu"))
    rng = np.random.default_rng(0)
    views = [
        StepView(
            0, "a", 4, {}, "go", 1, rng.integers(0, 255, (5, 32, 32, 3), np.uint8), np.arange(5)
        ),
        StepView(
            1, "b", 2, {}, "go", 1, rng.integers(0, 255, (3, 32, 32, 3), np.uint8), np.arange(3)
        ),
    ]
    _, output = agent.forward(views)
    actions = agent(views)
    for i, (view, action) in enumerate(zip(views, actions, strict=True)):
        prediction = action["action_args"]["frame_heatmap_prediction"]
        if prior == "none":
            assert "camera_poses" not in prediction
            continue
        got = prediction["camera_poses"]
        assert got.shape == (len(view.indices), 9)  # the view's own slots, padding cut
        np.testing.assert_allclose(got, output.pose_enc[i, : len(view.indices)].numpy())


def test_a_flat_maps_level_moves_iou_not_kl() -> None:
    """The paired ``uniform`` (0.5) and ``ones`` (1.0) rows on binary targets covering a
    fraction f of the view (left half f = 1/2, top row f = 1/4): the same KL (log 1/f), soft
    IoU f / (1 + f) for the 0.5 map and f for the all-ones map."""
    view = _view()
    maps = view.targets((4, 4))[0][:2].copy()
    scorer = PairedHeatmapScores(
        {"uniform": np.full((4, 4), 0.5, np.float32), "ones": np.ones((4, 4), np.float32)}
    )
    scorer(view, make_action(1, {"maps": maps, "frame_indices": [0, 3]}))
    m = scorer.episode_metrics("ep")
    kl = (np.log(2) + np.log(4)) / 2
    assert m["uniform"]["kl"] == pytest.approx(kl, rel=1e-5)
    assert m["ones"]["kl"] == pytest.approx(kl, rel=1e-5)
    assert m["uniform"]["iou"] == pytest.approx((1 / 3 + 1 / 5) / 2, rel=1e-5)
    assert m["ones"]["iou"] == pytest.approx((1 / 2 + 1 / 4) / 2, rel=1e-5)
