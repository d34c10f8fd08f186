"""Selection scores on hand-built voxel sets with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from habitat_fih.models.sampling import SamplerConfig
from habitat_fih.models.sampling_scores import jaccard, selection_scores


def _frames(voxel_sets: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """One frame per set: a point at (x, 0, 0) for each voxel id x in 0..19, the rest of the row
    at (0, 19, 19), a far voxel F every frame shares. The bbox is 19 on every axis, so the voxel
    size is 19/20 and distinct x (none near a voxel boundary) fall in distinct voxels."""
    width = max(len(s) for s in voxel_sets) + 2
    pts = torch.zeros(len(voxel_sets), 1, width, 3)
    for f, ids in enumerate(voxel_sets):
        row = [(float(x), 0.0, 0.0) for x in ids]
        row += [(0.0, 19.0, 19.0)] * (width - len(ids))  # the shared far voxel, padding
        pts[f, 0] = torch.tensor(row)
    return pts, torch.ones(len(voxel_sets), 1, width)


def test_known_coverage_diversity_novelty() -> None:
    # voxel sets (each frame also has the shared voxel F): A={0,1,F} B={1,2,F} C={5,6,F}
    # D={10,F} E={19,F}
    pts, conf = _frames([[0, 1], [1, 2], [5, 6], [10], [19]])
    cfg = SamplerConfig(conf_quantile=0.0, min_conf=0.0)
    scores = selection_scores(pts, conf, [0, 2, 4], cfg)
    # all voxels: 0 1 2 5 6 10 19 F = 8; A, C, E cover 0 1 5 6 19 F = 6
    assert scores["coverage"] == pytest.approx(6 / 8)
    # pairwise cosines share only F: A·C = 1/sqrt(3*3), A·E = 1/sqrt(3*2), C·E = 1/sqrt(3*2)
    mean_cos = (1 / 3 + 2 / math.sqrt(6)) / 3
    assert scores["diversity"] == pytest.approx(1 - mean_cos)
    # frames 0, 2, 4 of 5: evenly spaced -> novelty 1
    assert scores["novelty"] == pytest.approx(1.0)
    bunched = selection_scores(pts, conf, [0, 1, 2], cfg)
    assert bunched["novelty"] == pytest.approx(1 / 2)  # nearest gaps 1, 1, 1 vs spacing 2
    # A and B share voxels 1 and F: cosine 2/3
    assert selection_scores(pts, conf, [0, 1], cfg)["diversity"] == pytest.approx(1 - 2 / 3)
    assert selection_scores(pts, conf, [3], cfg) == {
        "coverage": pytest.approx(2 / 8), "diversity": 1.0, "novelty": 0.0,
    }


def test_bad_selection() -> None:
    pts, conf = _frames([[0], [1]])
    with pytest.raises(ValueError, match="positions in"):
        selection_scores(pts, conf, [2])


def test_jaccard() -> None:
    assert jaccard([1, 2, 3], [2, 3, 4]) == pytest.approx(2 / 4)
    assert jaccard([], []) == 1.0
    assert jaccard([0], [1]) == 0.0
