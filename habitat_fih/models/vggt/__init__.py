"""Our VGGT implementation, key- and shape-compatible with the released VGGT-1B checkpoint.

`VGGT` (model.py) = `Aggregator` (aggregator.py, DINOv2 patch embed in dinov2.py, blocks in
layers.py) + `CameraHead` (camera_head.py) + depth / point `DPTHead` (dpt_head.py). Configs
live in config.py, pose-encoding helpers in pose_encoding.py, weight I/O in checkpoint.py.
"""

from habitat_fih.models.vggt.checkpoint import LoadReport, load_vggt, save_vggt
from habitat_fih.models.vggt.config import (
    CameraHeadConfig,
    DinoV2Config,
    DPTHeadConfig,
    VGGTConfig,
)
from habitat_fih.models.vggt.model import VGGT, build_vggt
from habitat_fih.models.vggt.pose_encoding import (
    extri_intri_to_pose_encoding,
    mat_to_quat,
    pose_encoding_to_extri_intri,
    quat_to_mat,
)

__all__ = [
    "VGGT",
    "CameraHeadConfig",
    "DPTHeadConfig",
    "DinoV2Config",
    "LoadReport",
    "VGGTConfig",
    "build_vggt",
    "extri_intri_to_pose_encoding",
    "load_vggt",
    "mat_to_quat",
    "pose_encoding_to_extri_intri",
    "quat_to_mat",
    "save_vggt",
]
