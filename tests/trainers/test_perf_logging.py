"""The fih trainer writes `PerformanceMonitor` scalars (perf/*) to TensorBoard every log interval.

One tiny in-process run (1 DAgger iteration of 2 episodes, 2 updates, log every update, a
checkpoint after the first update) and its TensorBoard events.
"""

from __future__ import annotations

from pathlib import Path

MODEL_STAGES = ("vggt", "sampling", "dinov3", "fusion", "llm", "heads")



def test_perf_scalars_reach_tensorboard(tmp_path: Path, kit) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    config = kit.tiny_config(
        tmp_path,
        "habitat_baselines.fih.dagger.iterations=1",
        "habitat_baselines.checkpoint_interval=1",
    )
    assert FIHTrainer(config).train() is True
    scalars = kit.tb_scalars(tmp_path / "tb")

    # every logged update (log_interval=1): its update time, the model's stages (CPU), memory
    for tag in ("perf/update_s", "perf/cpu_rss_mib", "perf/cpu_peak_rss_mib") + tuple(
        f"perf/{s}_s" for s in MODEL_STAGES
    ):
        assert set(scalars.get(tag, {})) == {1, 2}, (tag, sorted(scalars))
    # the collection ran before update 1, the mid-iteration checkpoint after it: each is logged
    # once, at the next log, then the monitor is reset
    assert set(scalars["perf/collect_s"]) == {1}
    assert set(scalars["perf/checkpoint_s"]) == {2}
    for step in (1, 2):
        assert scalars["perf/update_s"][step] >= scalars["perf/vggt_s"][step] > 0  # contains it
        rss = scalars["perf/cpu_rss_mib"][step]
        assert 50 < rss <= scalars["perf/cpu_peak_rss_mib"][step] + 1  # (float32 rounding)
    assert not any(tag.startswith("perf/cuda_") for tag in scalars)  # CPU run
    assert set(scalars["loss/total"]) == {1, 2}  # written with the losses
    for step in (1, 2):  # the trainer's own update clock starts before the stage, ends after
        assert scalars["train/update_seconds"][step] >= scalars["perf/update_s"][step]
