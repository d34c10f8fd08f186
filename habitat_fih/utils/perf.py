"""`PerformanceMonitor`: per-stage wall time and memory of this process (CPU and CUDA).

One small class used by the benchmarks, by the trainer (its `scalars` go to TensorBoard every
log interval) and by inference::

    monitor = PerformanceMonitor("cuda:0")
    with monitor.stage("update"):
        ...
    model.stage_hook = monitor        # FIHModel times vggt / sampling / dinov3 / fusion / ...
    print(monitor.table()); json.dumps(monitor.summary())

What is measured, and how:

* **Stage time**: the wall time (`time.perf_counter`) of each ``with monitor.stage(name):``
  block. On a CUDA device `torch.cuda.synchronize(device)` runs on entering and on leaving the
  block, so the time covers the GPU work the stage launched (not just the launching) and none of
  the work launched before it; the price is the host / device overlap across stage boundaries.
  On CPU (or any other device) nothing is synchronised and the overhead is two clock reads.
  Per stage name the monitor keeps every duration (count, total, mean, median, last) until
  `reset`.
* **Stage peak** (CUDA only): the highest `torch.cuda.memory_allocated(device)` reached while
  the stage ran: the caching allocator's peak counter is reset on entering
  (`torch.cuda.reset_peak_memory_stats`) and read on leaving (`torch.cuda.max_memory_allocated`).
  It is the process's high-water mark during the stage, everything already allocated (weights,
  ...) included, not the stage's own increment; over several runs of a stage, the largest.
  Nested stages keep correct peaks (the counter is folded into the enclosing stages before an
  inner stage resets it). Side effect: while a monitor is in use, torch's own peak counter
  means "since the last stage started"; `memory()["cuda_peak_allocated_mib"]` keeps the peak
  across those resets.
* **Memory** (`memory`): ``cpu_rss_mib``, the current resident set size (``/proc/self/statm``;
  None where that file does not exist); ``cpu_peak_rss_mib``, the process's lifetime peak RSS
  (`resource.getrusage` ``ru_maxrss``; it cannot be reset); on CUDA ``cuda_allocated_mib`` /
  ``cuda_reserved_mib`` (tensors / tensors + the allocator's cache) and
  ``cuda_peak_allocated_mib`` (peak allocated since the process started or since
  ``reset(peaks=True)``).

torch is imported only when the device is CUDA, so the module (and `habitat_fih.utils`) stays
importable without it. A monitor is meant for one thread.
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PerformanceMonitor"]

MIB = 2**20


@dataclass(eq=False)  # (removed from the open list by identity)
class _Frame:
    """One open stage: its start time and the peak allocated bytes seen so far."""

    start: float = 0.0
    peak: int = 0


@dataclass
class _Stats:
    durations: list[float] = field(default_factory=list)
    peak: int = 0  # bytes, CUDA only


def _rss_bytes() -> int | None:
    """Current resident set size, or None without ``/proc/self/statm``."""
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


class PerformanceMonitor:
    """Per-stage wall time (CUDA-synchronised on GPU), per-stage CUDA peak, process memory.

    `device`: a ``str`` or `torch.device`; None means CPU. ``cuda`` is True when its type is
    ``"cuda"`` (then torch is imported and every stage synchronises that device).
    """

    def __init__(self, device: Any = None) -> None:
        self.device: Any = "cpu" if device is None else device
        self.cuda = str(self.device).split(":")[0] == "cuda"
        self._torch: Any = None
        if self.cuda:
            import torch

            self._torch = torch
            self.device = torch.device(self.device)
        self._stages: dict[str, _Stats] = {}
        self._open: list[_Frame] = []
        self._cuda_peak = 0  # bytes, folded in before each reset of torch's peak counter

    # ------------------------------------------------------------------ timing
    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage `name` (and, on CUDA, record its peak allocated memory).

        A block that raises is not recorded."""
        frame = self._enter()
        try:
            yield
        except BaseException:
            self._open.remove(frame)
            raise
        self._exit(name, frame)

    def __call__(self, name: str) -> contextlib.AbstractContextManager[None]:
        """`stage(name)`: a monitor is a valid `FIHModel.stage_hook`."""
        return self.stage(name)

    def _enter(self) -> _Frame:
        if self.cuda:
            cuda = self._torch.cuda
            cuda.synchronize(self.device)
            self._fold(cuda.max_memory_allocated(self.device))
            cuda.reset_peak_memory_stats(self.device)
        frame = _Frame()
        self._open.append(frame)
        frame.start = time.perf_counter()
        return frame

    def _exit(self, name: str, frame: _Frame) -> None:
        if self.cuda:
            self._torch.cuda.synchronize(self.device)
        elapsed = time.perf_counter() - frame.start
        self._open.remove(frame)
        stats = self._stages.setdefault(name, _Stats())
        stats.durations.append(elapsed)
        if self.cuda:
            peak = self._torch.cuda.max_memory_allocated(self.device)
            self._fold(peak)
            stats.peak = max(stats.peak, frame.peak, peak)

    def _fold(self, peak: int) -> None:
        """Keep torch's current peak in the process peak and in every open stage."""
        self._cuda_peak = max(self._cuda_peak, peak)
        for frame in self._open:
            frame.peak = max(frame.peak, peak)

    def reset(self, peaks: bool = False) -> None:
        """Forget the stage timings; with `peaks`, also reset the CUDA peak counter (the CPU
        peak RSS is the process's and cannot be reset)."""
        self._stages.clear()
        if peaks and self.cuda:
            self._torch.cuda.reset_peak_memory_stats(self.device)
            self._cuda_peak = 0
            for frame in self._open:
                frame.peak = 0

    # ------------------------------------------------------------------ reports
    def memory(self) -> dict[str, float | None]:
        """Current process memory in MiB (see the module docstring for each key)."""
        rss = _rss_bytes()
        out: dict[str, float | None] = {
            "cpu_rss_mib": None if rss is None else rss / MIB,
            # (the kernel updates ru_maxrss lazily: never report it below the current RSS)
            "cpu_peak_rss_mib": max(_peak_rss_bytes(), rss or 0) / MIB,
        }
        if self.cuda:
            cuda = self._torch.cuda
            peak = max(self._cuda_peak, cuda.max_memory_allocated(self.device))
            out["cuda_allocated_mib"] = cuda.memory_allocated(self.device) / MIB
            out["cuda_reserved_mib"] = cuda.memory_reserved(self.device) / MIB
            out["cuda_peak_allocated_mib"] = peak / MIB
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-safe: ``{"stages": {name: {count, total_s, mean_s, median_s, last_s[,
        peak_allocated_mib]}}, "memory": memory()}`` (stages in first-run order, since the
        last `reset`)."""
        stages: dict[str, dict[str, float | int]] = {}
        for name, stats in self._stages.items():
            d = stats.durations
            row: dict[str, float | int] = {
                "count": len(d),
                "total_s": sum(d),
                "mean_s": sum(d) / len(d),
                "median_s": statistics.median(d),
                "last_s": d[-1],
            }
            if self.cuda:
                row["peak_allocated_mib"] = stats.peak / MIB
            stages[name] = row
        return {"stages": stages, "memory": self.memory()}

    def scalars(self, prefix: str = "perf") -> dict[str, float]:
        """Flat scalars for TensorBoard: ``{prefix}/{stage}_s`` (mean seconds since the last
        `reset`), on CUDA ``{prefix}/{stage}_peak_allocated_mib``, and ``{prefix}/{key}`` for
        every available `memory` value."""
        out: dict[str, float] = {}
        summary = self.summary()
        for name, row in summary["stages"].items():
            out[f"{prefix}/{name}_s"] = float(row["mean_s"])
            if "peak_allocated_mib" in row:
                out[f"{prefix}/{name}_peak_allocated_mib"] = float(row["peak_allocated_mib"])
        for key, value in summary["memory"].items():
            if value is not None:
                out[f"{prefix}/{key}"] = float(value)
        return out

    def table(self) -> str:
        """The stages as a text table: name, count, median and total seconds, peak MiB (``-``
        off CUDA)."""
        rows = [
            (
                name,
                str(row["count"]),
                f"{row['median_s']:.4f}",
                f"{row['total_s']:.3f}",
                f"{row['peak_allocated_mib']:.1f}" if "peak_allocated_mib" in row else "-",
            )
            for name, row in self.summary()["stages"].items()
        ]
        header = ("stage", "count", "median (s)", "total (s)", "peak (MiB)")
        width = max(len(r[0]) for r in [header, *rows]) + 2
        lines = [f"{header[0]:<{width}}" + "".join(f"{h:>12}" for h in header[1:])]
        lines.append("-" * len(lines[0]))
        lines += [f"{r[0]:<{width}}" + "".join(f"{c:>12}" for c in r[1:]) for r in rows]
        return "\n".join(lines)
