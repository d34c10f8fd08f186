"""The causal VGGT variant and its streaming cache (`habitat_fih.models.vggt.streaming`).

Independent expectations: the causal mask's closed form; causality itself (a frame's outputs
do not change when later frames are appended); the stream reproduces the batched causal forward
whether frames come all at once or one per step; a late frame sees only lower-index frames.
"""

from __future__ import annotations

import pytest
import torch

from habitat_fih.models.vggt.aggregator import causal_frame_mask
from habitat_fih.models.vggt.config import VGGTConfig
from habitat_fih.models.vggt.model import VGGT
from habitat_fih.models.vggt.streaming import CausalVGGTStream

S, H = 6, 16
TOL = dict(atol=2e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def vggt() -> VGGT:
    torch.manual_seed(0)
    # layer scale 1: attention across frames changes the tokens visibly
    return VGGT(VGGTConfig.tiny(layerscale_init=1.0)).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(S, 3, H, H, generator=torch.Generator().manual_seed(1))


def test_causal_mask_closed_form() -> None:
    expected = torch.tensor(
        [
            [1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0],
            [1, 0, 1, 1, 0],  # window 1: frame 3 sees 0 (first), 2 and itself
            [1, 0, 0, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(causal_frame_mask(5, 1), expected)
    assert torch.equal(causal_frame_mask(4, 10), torch.ones(4, 4).tril().bool())
    assert torch.equal(
        causal_frame_mask(3, 0), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 0, 1]]).bool()
    )
    with pytest.raises(ValueError, match="window"):
        causal_frame_mask(3, -1)


@torch.no_grad()
def test_causal_forward_ignores_later_frames(vggt: VGGT, images: torch.Tensor) -> None:
    full = vggt(images[None], causal_window=S)
    head = vggt(images[None, :3], causal_window=S)
    for a, b in zip(full["aggregated_tokens"], head["aggregated_tokens"], strict=True):
        torch.testing.assert_close(a[:, :3], b, **TOL)
    torch.testing.assert_close(full["world_points"][:, :3], head["world_points"], **TOL)
    # VGGT's own (non-causal) attention does depend on later frames
    plain = vggt(images[None])
    plain_head = vggt(images[None, :3])
    assert (
        plain["aggregated_tokens"][-1][:, :3] - plain_head["aggregated_tokens"][-1]
    ).abs().max() > 1e-3


def _compare(stream: CausalVGGTStream, batched: dict, indices: list[int], rows: list[int]) -> None:
    geometry, tokens = stream.gather(indices)
    for layer, value in tokens.items():
        torch.testing.assert_close(value, batched["aggregated_tokens"][layer][0, rows], **TOL)
    torch.testing.assert_close(geometry["world_points"], batched["world_points"][0, rows], **TOL)
    torch.testing.assert_close(
        geometry["world_points_conf"], batched["world_points_conf"][0, rows], **TOL
    )
    if "pose_enc" in geometry:
        torch.testing.assert_close(geometry["pose_enc"], batched["pose_enc"][0, rows], **TOL)
    if "depth" in geometry:
        torch.testing.assert_close(geometry["depth"], batched["depth"][0, rows], **TOL)


@pytest.mark.parametrize("window", [0, 2, S])
@pytest.mark.parametrize("per_step", [False, True])
@torch.no_grad()
def test_stream_equals_batched_causal(
    vggt: VGGT, images: torch.Tensor, window: int, per_step: bool
) -> None:
    batched = vggt(images[None], causal_window=window)
    stream = CausalVGGTStream(vggt, window, keep_layers=[-1, 1], heads=("point", "depth", "camera"))
    indices = [10 + 3 * i for i in range(S)]  # any increasing frame indices
    if per_step:
        for i in range(S):  # each step brings the whole history again, as the policy's views do
            stream.add(images[: i + 1], indices[: i + 1])
    else:
        stream.add(images, indices)
    _compare(stream, batched, indices, list(range(S)))
    # keys / values kept: the first frame and the `window` most recent ones
    expected = sorted({indices[0], *indices[S - window :]}) if window else [indices[0]]
    assert sorted(stream.kv) == expected


@torch.no_grad()
def test_late_frame_sees_only_lower_indices(vggt: VGGT, images: torch.Tensor) -> None:
    stream = CausalVGGTStream(vggt, S, keep_layers=[-1])
    stream.add(images[[0, 2, 3]], [0, 2, 3])
    stream.add(images[[1]], [1])
    _compare(stream, vggt(images[None, :2], causal_window=S), [1], [1])  # 1 saw 0 and itself
    # the earlier frames were not revised: frame 2 saw 0 and 2 only
    _compare(stream, vggt(images[None, [0, 2]], causal_window=S), [2], [1])


@torch.no_grad()
def test_capacity_and_reset(vggt: VGGT, images: torch.Tensor) -> None:
    stream = CausalVGGTStream(vggt, 2, keep_layers=[-1], capacity=3)
    for i in range(S):
        stream.add(images[i : i + 1], [i])
    assert list(stream.frames) == [3, 4, 5]  # least recently used dropped
    stream.add(images[[0, 5]], [0, 5])  # asked again: 0 is recomputed (against the cache)
    assert 0 in stream and 5 in stream and len(stream.frames) == 3
    with pytest.raises(KeyError, match=r"\[1\]"):
        stream.gather([1])
    stream.reset()
    assert not stream.frames and not stream.kv and stream.first is None


def test_bad_input(vggt: VGGT, images: torch.Tensor) -> None:
    stream = CausalVGGTStream(vggt, 2, keep_layers=[-1])
    with pytest.raises(ValueError, match="distinct"):
        stream.add(images[:2], [3, 3])
    with pytest.raises(ValueError, match=r"\[n=3"):
        stream.add(images[:2], [0, 1, 2])
    with pytest.raises(ValueError, match="window"):
        CausalVGGTStream(vggt, -1, keep_layers=[-1])


@torch.no_grad()
def test_heads_and_precomputed_patches(vggt: VGGT, images: torch.Tensor) -> None:
    out = vggt(images[None], heads=("point",))
    assert "world_points" in out and "depth" not in out and "pose_enc" not in out
    full = vggt(images[None])
    patches = vggt.aggregator.embed(images)
    again = vggt(images[None], patches=patches)
    torch.testing.assert_close(again["world_points"], full["world_points"], **TOL)
    torch.testing.assert_close(out["world_points"], full["world_points"], **TOL)
    with pytest.raises(ValueError, match="unknown VGGT heads"):
        vggt(images[None], heads=("tracks",))
