"""habitat_fih.utils.perf: stage timing, memory readings, reports (CPU; CUDA through a fake)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from habitat_fih.utils import PerformanceMonitor
from habitat_fih.utils.perf import MIB

REPO = Path(__file__).resolve().parents[2]
MODEL_STAGES = {"vggt", "sampling", "dinov3", "fusion", "llm", "heads"}


def test_sleeping_stages_are_timed_and_counted() -> None:
    monitor = PerformanceMonitor()
    assert not monitor.cuda
    for _ in range(3):
        with monitor.stage("sleep"):
            time.sleep(0.05)
    row = monitor.summary()["stages"]["sleep"]
    assert row["count"] == 3
    assert row["last_s"] >= 0.05 and row["median_s"] >= 0.05 and row["mean_s"] >= 0.05
    assert row["total_s"] >= 0.15
    assert "peak_allocated_mib" not in row  # CUDA only


def test_nested_and_repeated_stages_accumulate() -> None:
    monitor = PerformanceMonitor("cpu")
    for _ in range(2):
        with monitor("outer"):  # __call__ is stage()
            with monitor("inner"):
                time.sleep(0.02)
            with monitor("inner"):
                time.sleep(0.02)
            time.sleep(0.01)
    stages = monitor.summary()["stages"]
    assert list(stages) == ["inner", "outer"]  # in the order they were first recorded
    assert stages["inner"]["count"] == 4 and stages["outer"]["count"] == 2
    assert stages["inner"]["total_s"] >= 0.08
    assert stages["outer"]["total_s"] >= 0.10
    assert stages["outer"]["total_s"] >= stages["inner"]["total_s"]  # it contains them


def test_a_stage_that_raises_is_not_recorded() -> None:
    monitor = PerformanceMonitor()
    with pytest.raises(KeyError), monitor.stage("boom"):
        raise KeyError("x")
    with monitor.stage("ok"):
        pass
    assert list(monitor.summary()["stages"]) == ["ok"]
    assert monitor._open == []  # nothing left open


def test_rss_grows_by_a_touched_array() -> None:
    monitor = PerformanceMonitor()
    gc.collect()
    before = monitor.memory()["cpu_rss_mib"]
    if before is None:
        pytest.skip("no /proc/self/statm on this platform")
    array = np.empty(200 * MIB, dtype=np.uint8)
    array.fill(1)  # touch every page (np.empty / np.zeros alone may stay unmapped)
    after = monitor.memory()
    grown = (after["cpu_rss_mib"] - before) * MIB
    assert 0.75 * array.nbytes <= grown <= 1.5 * array.nbytes, (grown / MIB, before)
    assert after["cpu_peak_rss_mib"] >= after["cpu_rss_mib"]
    assert set(after) == {"cpu_rss_mib", "cpu_peak_rss_mib"}  # no CUDA keys off CUDA
    del array


def test_summary_is_json_and_scalars_are_means_since_reset() -> None:
    monitor = PerformanceMonitor()
    with monitor.stage("a"):
        time.sleep(0.05)
    with monitor.stage("a"):
        time.sleep(0.05)
    summary = json.loads(json.dumps(monitor.summary(), allow_nan=False))
    assert summary["stages"]["a"]["count"] == 2
    assert set(summary["memory"]) == {"cpu_rss_mib", "cpu_peak_rss_mib"}
    scalars = monitor.scalars()
    assert scalars["perf/a_s"] == pytest.approx(summary["stages"]["a"]["total_s"] / 2)
    assert scalars["perf/a_s"] >= 0.05
    assert {"perf/cpu_rss_mib", "perf/cpu_peak_rss_mib"} <= set(scalars)
    assert all(isinstance(v, float) for v in scalars.values())
    assert set(monitor.scalars("x")) == {k.replace("perf/", "x/") for k in scalars}

    monitor.reset()
    assert monitor.summary()["stages"] == {}
    assert set(monitor.scalars()) == {"perf/cpu_rss_mib", "perf/cpu_peak_rss_mib"}


def test_table_lists_every_stage() -> None:
    monitor = PerformanceMonitor()
    for name in ("vggt", "llm"):
        with monitor.stage(name):
            time.sleep(0.01)
    lines = monitor.table().splitlines()
    assert lines[0].split()[0] == "stage" and "median (s)" in lines[0] and "peak (MiB)" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == ["vggt", "llm"]
    assert all(line.split()[1] == "1" and line.split()[-1] == "-" for line in lines[2:])


class FakeCuda:
    """torch.cuda's allocator counters, driven by the test (sizes in MiB)."""

    def __init__(self, allocated: int, peak: int) -> None:
        self.allocated, self.peak, self.syncs = allocated * MIB, peak * MIB, 0

    def alloc(self, mib: int) -> None:
        self.allocated += mib * MIB
        self.peak = max(self.peak, self.allocated)

    def synchronize(self, device) -> None:
        self.syncs += 1

    def reset_peak_memory_stats(self, device) -> None:
        self.peak = self.allocated

    def max_memory_allocated(self, device) -> int:
        return self.peak

    def memory_allocated(self, device) -> int:
        return self.allocated

    def memory_reserved(self, device) -> int:
        return self.allocated + 64 * MIB


def test_cuda_stage_peaks_nest_and_the_process_peak_survives_resets() -> None:
    monitor = PerformanceMonitor("cuda:0")  # torch.device only: no GPU touched
    assert monitor.cuda and str(monitor.device) == "cuda:0"
    cuda = FakeCuda(allocated=100, peak=300)  # 300 MiB peak from before the monitor
    monitor._torch = SimpleNamespace(cuda=cuda)
    with monitor.stage("outer"):
        cuda.alloc(50)  # 150: the outer stage's peak, before the inner stage resets it
        cuda.alloc(-50)
        with monitor.stage("inner"):
            cuda.alloc(20)  # 120
        cuda.alloc(-20)
    assert cuda.syncs == 4  # before and after each stage
    stages = monitor.summary()["stages"]
    assert stages["outer"]["peak_allocated_mib"] == 150
    assert stages["inner"]["peak_allocated_mib"] == 120
    assert cuda.max_memory_allocated(None) == 120 * MIB  # torch's counter was reset ...
    memory = monitor.memory()
    assert memory["cuda_peak_allocated_mib"] == 300  # ... the monitor's peak was not
    assert memory["cuda_allocated_mib"] == 100 and memory["cuda_reserved_mib"] == 164
    scalars = monitor.scalars()
    assert scalars["perf/outer_peak_allocated_mib"] == 150
    assert scalars["perf/cuda_peak_allocated_mib"] == 300
    json.dumps(monitor.summary(), allow_nan=False)

    with monitor.stage("outer"):  # a later, smaller run keeps the largest peak
        pass
    row = monitor.summary()["stages"]["outer"]
    assert row["count"] == 2 and row["peak_allocated_mib"] == 150
    monitor.reset(peaks=True)
    assert monitor.summary()["stages"] == {}
    assert monitor.memory()["cuda_peak_allocated_mib"] == 100  # what is allocated now


def _tiny_module():
    import _tiny_qwen  # tests/helpers (on sys.path via tests/conftest.py)

    return _tiny_qwen


def test_monitor_is_a_model_stage_hook() -> None:
    import torch

    from habitat_fih.models.config import FIHModelConfig
    from habitat_fih.models.factory import build_model

    torch.manual_seed(0)
    model = build_model(FIHModelConfig.tiny(), tokenizer=_tiny_module().tiny_tokenizer()).eval()
    monitor = PerformanceMonitor(torch.device("cpu"))
    model.stage_hook = monitor
    frames = torch.rand(2, 9, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 9, dtype=torch.bool)
    indices = torch.arange(9).expand(2, 9)
    texts = ["walk to the kitchen and stop", "turn left past the table"]
    for forwards in (1, 2):
        with torch.no_grad():
            model(frames, mask, indices, texts)
        stages = monitor.summary()["stages"]
        assert set(stages) == MODEL_STAGES
        assert {row["count"] for row in stages.values()} == {forwards}


def test_importing_habitat_fih_utils_does_not_import_torch() -> None:
    # `import habitat_fih` itself loads habitat (which imports torch): stand in for the top
    # package so that only habitat_fih.utils' own imports run
    code = (
        "import sys, types\n"
        "pkg = types.ModuleType('habitat_fih')\n"
        f"pkg.__path__ = [{str(REPO / 'habitat_fih')!r}]\n"
        "sys.modules['habitat_fih'] = pkg\n"
        "import habitat_fih.utils\n"
        "m = habitat_fih.utils.PerformanceMonitor('cpu')\n"
        "with m.stage('x'):\n"
        "    pass\n"
        "m.summary(); m.scalars(); m.table()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
