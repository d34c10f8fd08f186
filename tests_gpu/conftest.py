"""GPU-only checks (``make test-gpu``, on a lent GPU): they reuse the CPU suite's helpers, and
refuse to run without CUDA rather than skip (nothing here is silently not checked)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

_TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(_TESTS / "helpers"), str(_TESTS / "models")]


def pytest_configure(config) -> None:
    if not torch.cuda.is_available():
        raise RuntimeError("tests_gpu needs a CUDA GPU (run it on a lent GPU: make test-gpu)")
