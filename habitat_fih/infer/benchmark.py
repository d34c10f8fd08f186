"""`fih-infer --benchmark --video PATH`: the three keyframe samplers on one video, one table.

One untimed warm-up run first (compiled kernels, allocator), then fast / quality / enhanced
each once with the same model, frames and instruction; per algorithm: the time of every stage
(PerformanceMonitor), the chosen keyframes (original indices), the selection's coverage /
diversity / novelty (`habitat_fih.models.sampling_scores`, the same definitions for all three),
and the agreement (Jaccard of the keyframe sets) with each other algorithm.
"""

from __future__ import annotations

import time
from typing import Any

from habitat_fih.infer.engine import InferenceEngine
from habitat_fih.infer.settings import ALGORITHMS
from habitat_fih.infer.video import Video
from habitat_fih.models.sampling_scores import jaccard

__all__ = ["benchmark_table", "run_benchmark"]

ORDER = ("fast", "quality", "enhanced")
assert set(ORDER) == set(ALGORITHMS)


def run_benchmark(engine: InferenceEngine, video: Video, instruction: str) -> list[dict[str, Any]]:
    """One row per algorithm (module docstring)."""
    engine.run(video, instruction, ORDER[0])  # warm-up, not reported
    rows = []
    for algorithm in ORDER:
        engine.monitor.reset()
        start = time.perf_counter()
        result = engine.run(video, instruction, algorithm)
        total = time.perf_counter() - start
        stages = {
            name: float(stats["total_s"])
            for name, stats in result.monitor["stages"].items()
            if name not in ("build", "read")
        }
        rows.append(
            {
                "algorithm": algorithm,
                "total_s": total,
                "stages_s": stages,
                "keyframes": result.last.keyframes,
                "current_index": result.last.current,
                **result.scores,
            }
        )
    for row in rows:
        row["agreement"] = {
            other["algorithm"]: jaccard(row["keyframes"], other["keyframes"]) for other in rows
        }
    return rows


def benchmark_table(rows: list[dict[str, Any]]) -> str:
    """The rows as one text table."""
    stages: list[str] = []
    for row in rows:
        stages += [s for s in row["stages_s"] if s not in stages]
    head = (
        ["algorithm", "total s"]
        + [f"{s} s" for s in stages]
        + ["keyframes", "coverage", "diversity", "novelty"]
        + [f"J({r['algorithm']})" for r in rows]
    )
    body = []
    for row in rows:
        body.append(
            [row["algorithm"], f"{row['total_s']:.3f}"]
            + [f"{row['stages_s'].get(s, 0.0):.3f}" for s in stages]
            + [
                " ".join(str(k) for k in row["keyframes"]),
                f"{row['coverage']:.3f}",
                f"{row['diversity']:.3f}",
                f"{row['novelty']:.3f}",
            ]
            + [f"{row['agreement'][r['algorithm']]:.2f}" for r in rows]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    lines = [" | ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)) for line in [head, *body]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
