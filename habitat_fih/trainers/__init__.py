"""The ``fih`` trainer and its parts: collection (VectorEnv + DAgger), replay buffer,
checkpoints, evaluation, baselines and distributed set-up.

``fih_trainer`` holds `FIHTrainer` (the loop) and points to the rest: ``learner`` (the update
step), ``resume`` (exact resume), ``stages`` (per-stage settings, ``fih.schedule``),
``collection_runs`` / ``eval_runs`` (one DAgger iteration's collection; evaluation runs),
``config_checks`` / ``settings`` (checks before anything starts), ``collector`` / ``buffer`` /
``correspondences`` (environments, samples), ``checkpoint``, ``distributed``, ``evaluation`` /
``baselines`` (agents and scores).

Importing this package is cheap and safe from ``habitat_fih/__init__.py``: it stores
``habitat_baselines/habitat_baselines_fih_config_base`` in Hydra's ConfigStore and registers
``fih`` with habitat-baselines' trainer registry through a light proxy; the trainer module (and
with it the model code: torch, transformers, peft) is imported when the trainer is built or
``habitat_fih.trainers.FIHTrainer`` is first accessed — importing it registers the real class
under the same name.
"""

from __future__ import annotations

from typing import Any

from habitat_baselines.common.base_trainer import BaseTrainer
from habitat_baselines.common.baseline_registry import baseline_registry

from habitat_fih.config import trainer_configs  # noqa: F401  (ConfigStore entries)

__all__ = ["FIHTrainer"]


def __getattr__(name: str) -> Any:
    if name == "FIHTrainer":
        from habitat_fih.trainers.fih_trainer import FIHTrainer

        return FIHTrainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if baseline_registry.get_trainer("fih") is None:

    @baseline_registry.register_trainer(name="fih")
    class _LazyFIHTrainer(BaseTrainer):
        """Stands for `FIHTrainer` in the registry until its module is imported."""

        def __new__(cls, config: Any) -> Any:  # type: ignore[misc]
            from habitat_fih.trainers.fih_trainer import FIHTrainer

            return FIHTrainer(config)
