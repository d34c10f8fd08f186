"""Output heads: frame-indexed heatmaps on the current view and VLN-CE action logits."""

from habitat_fih.models.heads.action import ACTION_NAMES, ActionHead
from habitat_fih.models.heads.heatmap import (
    FrameIndexedHeatmapHead,
    HeatmapHeadConfig,
    HeatmapOutput,
)

__all__ = [
    "ACTION_NAMES",
    "ActionHead",
    "FrameIndexedHeatmapHead",
    "HeatmapHeadConfig",
    "HeatmapOutput",
]
