"""Output heads: frame-indexed heatmaps on the current view and VLN-CE action logits."""

from habitat_fih.models.heads.action import (
    ACTION_INPUTS,
    ACTION_NAMES,
    ActionHead,
    ActionInputEncoder,
)
from habitat_fih.models.heads.heatmap import (
    FrameIndexedHeatmapHead,
    HeatmapHeadConfig,
    HeatmapOutput,
)

__all__ = [
    "ACTION_INPUTS",
    "ACTION_NAMES",
    "ActionHead",
    "ActionInputEncoder",
    "FrameIndexedHeatmapHead",
    "HeatmapHeadConfig",
    "HeatmapOutput",
]
