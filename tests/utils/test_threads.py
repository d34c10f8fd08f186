"""`configure_torch_threads`: the trainer's intra-op thread rule (module docstring)."""

from __future__ import annotations

import pytest
import torch

from habitat_fih.utils.threads import configure_torch_threads


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_auto_is_one_thread_on_cpu_and_untouched_on_cuda() -> None:
    torch.set_num_threads(2)
    assert configure_torch_threads(0, "cuda:0") == 2 and torch.get_num_threads() == 2
    assert configure_torch_threads(0, "cpu") == 1 and torch.get_num_threads() == 1


def test_explicit_count_anywhere() -> None:
    assert configure_torch_threads(3, "cpu") == 3 and torch.get_num_threads() == 3
    assert configure_torch_threads(2, torch.device("cuda")) == 2 and torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_bad_values_are_named(bad) -> None:
    with pytest.raises(ValueError, match="torch_threads must be an int >= 0"):
        configure_torch_threads(bad, "cpu")
