"""Small helpers shared across habitat_fih (no simulator imports; importing this package does
not import torch: `PerformanceMonitor` imports it only for a CUDA device)."""

from habitat_fih.utils.atomic import atomic_write, atomic_write_bytes
from habitat_fih.utils.perf import PerformanceMonitor

__all__ = ["PerformanceMonitor", "atomic_write", "atomic_write_bytes"]
