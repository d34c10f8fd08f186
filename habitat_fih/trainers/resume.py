"""The resume state of the ``fih`` trainer: what a restarted run needs to continue exactly.

`RunState` holds the run's counters (DAgger iteration, updates, checkpoints written, env
steps). `ResumeFile` writes and reads one rank's resume state (`rank_resume_path`:
``.resume_state.pth`` in the checkpoint folder or ``fih.resume_state_file``, with ``.rank{r}``
appended under DDP), atomically, at every checkpoint. It holds the model weights (as in model
checkpoints) and model config, the `Learner`'s state (optimiser, scheduler, update count, the
fp16 `GradScaler`'s scale), the stage, the `RunState`, every RNG state (python, numpy, torch,
CUDA) and the trainer's generators, the replay buffer (unless ``save_buffer: false``; a resumed
run then collects the current iteration again and does not match an uninterrupted run) and the
settings a resume must keep (`habitat_fih.trainers.settings.resume_settings`).

Loading refuses, with one error naming the file and the way out: another stage's resume state,
a file that is no resume state, changed settings (unless ``resume_with_changed_settings``) and
a different model.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from habitat_fih.models.config import FIHModelConfig
from habitat_fih.trainers.buffer import ReplayBuffer
from habitat_fih.trainers.checkpoint import (
    CorruptCheckpointError,
    IncompatibleCheckpointError,
    atomic_save,
    load_checkpoint,
    load_model_weights,
    model_state,
    rng_state,
    set_rng_state,
)
from habitat_fih.trainers.distributed import DistInfo
from habitat_fih.trainers.learner import Learner
from habitat_fih.trainers.settings import check_resume_settings

__all__ = ["RESUME_FILE", "ResumeFile", "RunState", "rank_resume_path", "resume_path"]

logger = logging.getLogger(__name__)

RESUME_FILE = ".resume_state.pth"


@dataclass
class RunState:
    """Counters of a training run (saved in the resume state)."""

    iteration: int = 0
    collected: bool = False
    update: int = 0
    update_in_iteration: int = 0
    checkpoints: int = 0
    env_steps: int = 0
    collect_env_steps: int = 0  # env steps of the current iteration's collection
    writer_run_id: str | None = None  # the W&B run a resumed run continues


def resume_path(resume_state_file: str | None, checkpoint_folder: str) -> str:
    """The run's resume state: ``fih.resume_state_file`` when set, else `RESUME_FILE` in the
    checkpoint folder."""
    return resume_state_file or os.path.join(checkpoint_folder, RESUME_FILE)


def rank_resume_path(path: str, info: DistInfo) -> str:
    """This rank's file of the resume state at `path` (``.rank{r}`` appended under DDP)."""
    return f"{path}.rank{info.rank}" if info.is_distributed else path


@dataclass(frozen=True)
class ResumeFile:
    """One rank's resume state (see the module docstring).

    Attributes:
        path: this rank's file (`rank_resume_path`).
        stage: the stage this run trains (another stage's state is refused).
        model_config: this run's model (another model's state is refused).
        settings: this run's `resume_settings` (a state with others is refused).
        save_buffer: ``fih.save_buffer``.
        allow_changed_settings: ``fih.resume_with_changed_settings``.
    """

    path: str
    stage: str
    model_config: FIHModelConfig
    settings: dict[str, Any]
    save_buffer: bool
    allow_changed_settings: bool

    def save(
        self,
        learner: Learner,
        buffer: ReplayBuffer,
        state: RunState,
        generators: dict[str, Any],
    ) -> None:
        """Write the resume state atomically."""
        payload = {
            "model": model_state(learner.policy.model, self.model_config),
            "model_config": self.model_config.to_dict(),  # resume checks it matches
            **learner.state_dict(),  # optimizer, scheduler, learner_updates, grad_scaler
            "stage": self.stage,
            "state": state.__dict__.copy(),
            "rng": rng_state(),
            "generators": {k: g.get_state() for k, g in generators.items()},
            "buffer": buffer.state_dict() if self.save_buffer else None,
            "settings": self.settings,  # a resume must keep them
        }
        atomic_save(payload, self.path)

    def load(
        self, learner: Learner, buffer: ReplayBuffer, generators: dict[str, Any]
    ) -> RunState | None:
        """Restore the learner, buffer, generators and RNG states; returns the saved
        `RunState`, or None when there is no resume state (a fresh run).

        Raises:
            IncompatibleCheckpointError: another stage's or another model's resume state.
            CorruptCheckpointError: an unreadable file, or no resume state.
            ResumeSettingsError: changed settings (unless allowed).
        """
        path = self.path
        if not os.path.isfile(path):
            return None
        payload = load_checkpoint(path, needs=())
        saved_stage = payload.get("stage", self.stage)
        if saved_stage != self.stage:
            raise IncompatibleCheckpointError(
                f"{path}: resume state of stage {saved_stage!r}, but this run trains stage "
                f"{self.stage!r}: set another habitat_baselines.checkpoint_folder (start it "
                "from that stage with habitat_baselines.fih.pretrained_checkpoint) or delete "
                "that folder to start afresh"
            )
        absent = [k for k in ("model", "optimizer", "state", "rng") if k not in payload]
        if absent:
            raise CorruptCheckpointError(f"{path}: not a resume state (no {absent} entry)")
        check_resume_settings(
            payload.get("settings"), self.settings, path, self.allow_changed_settings
        )
        try:
            load_model_weights(learner.policy.model, payload, self.model_config, path)
        except IncompatibleCheckpointError as err:
            raise IncompatibleCheckpointError(
                f"{err}. This run resumes from {os.path.dirname(path)!r}, which holds a run of "
                "a different model: set another habitat_baselines.checkpoint_folder or delete "
                "that folder to start afresh"
            ) from None
        learner.load_state_dict(payload)
        state = RunState(**payload["state"])
        set_rng_state(payload["rng"])
        for key, generator in generators.items():
            generator.set_state(payload["generators"][key])
        if payload["buffer"] is not None:
            buffer.load_state_dict(payload["buffer"])
        elif state.collected:
            # no saved buffer: collect this iteration again (its steps are counted again then)
            state.collected = False
            state.env_steps -= state.collect_env_steps
            state.collect_env_steps = 0
            logger.warning(
                "resume without a saved replay buffer (save_buffer: false): iteration %d is "
                "collected again and earlier iterations' samples are lost",
                state.iteration,
            )
        logger.info(
            "resumed from %s at iteration %d, update %d", path, state.iteration, state.update
        )
        return state
