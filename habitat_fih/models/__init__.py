"""Models: VGGT, keyframe sampling, DINOv3, fusion, Qwen2.5-VL, heads, losses, policy."""
