"""How many intra-op threads torch uses in a process that also drives environment workers.

The trainer's main process alternates between the policy's forward (torch) and waiting for its
``VectorEnv`` workers (other processes rendering and computing targets). torch's default uses
every core for each operator, and its OpenMP threads keep spinning for a while after each
parallel region; on a machine whose cores are shared with the workers (or anything else) the
tiny model's hundreds of small operators then wait for descheduled threads. Measured on the
2-core machine under load (load average ~5, 2026-12-01): one tiny-model policy step took
139 ms with 1 thread and 3,071 ms with torch's default 2 threads (22x).

``habitat_baselines.fih.torch_threads``: ``0`` (auto, default) = 1 thread on CPU, torch's own
default on CUDA (the host threads only launch kernels there); ``N > 0`` = N threads anywhere.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["configure_torch_threads"]

logger = logging.getLogger(__name__)


def configure_torch_threads(requested: int, device: Any) -> int:
    """Set torch's intra-op thread count for a trainer on `device` (rule in the module
    docstring); returns the count in effect. ValueError for a negative or non-int request."""
    import torch

    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 0:
        raise ValueError(f"torch_threads must be an int >= 0 (0 = auto), got {requested!r}")
    device_type = torch.device(device).type
    if requested == 0 and device_type != "cpu":
        return torch.get_num_threads()
    threads = requested or 1
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
        logger.info("torch intra-op threads: %d (%s)", threads, "auto" if not requested else "set")
    return threads
