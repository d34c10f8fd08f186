"""Frame memory policies of FIH-VLN-v0."""

import math

import numpy as np
import pytest

from habitat_fih.tasks.frame_memory import Frame, FrameMemory


def _frame(step: int) -> Frame:
    return Frame(step=step, pose=np.eye(4), depth=np.zeros((2, 2), np.float32))


@pytest.mark.parametrize("total", [5, 32, 33, 100, 500])
def test_uniform_keeps_first_latest_and_near_uniform_gaps(total):
    mem = FrameMemory(32, "uniform")
    for t in range(total):
        mem.add(_frame(t))
        steps = mem.steps
        assert steps[0] == 0 and steps[-1] == t
        assert len(steps) == min(t + 1, 32)
        assert steps == sorted(set(steps))
        if t + 1 > 32:
            # smallest possible largest gap with 32 frames over [0, t]: ceil(t / 31)
            best = math.ceil(t / 31)
            assert max(np.diff(steps)) <= 2 * best


def test_recent_is_a_sliding_window():
    mem = FrameMemory(4, "recent")
    for t in range(10):
        mem.add(_frame(t))
    assert mem.steps == [6, 7, 8, 9]


def test_padded_arrays_and_bad_input():
    mem = FrameMemory(3)
    mem.add(_frame(0))
    steps, poses, depths = mem.padded((2, 2))
    assert steps.tolist() == [0, -1, -1] and poses.shape == (3, 4, 4) and depths.shape == (3, 2, 2)
    with pytest.raises(ValueError, match="step 0"):
        mem.add(_frame(0))
    with pytest.raises(ValueError, match="max_frames"):
        FrameMemory(1)
    with pytest.raises(ValueError, match="'fifo'"):
        FrameMemory(4, "fifo")
