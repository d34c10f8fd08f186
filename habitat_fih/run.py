"""Hydra entry point of habitat-fih, mirroring ``habitat_baselines.run`` on machines without
habitat-sim (it imports habitat_fih, hence the import compatibility layer, first):

    python -m habitat_fih.run --config-name=fih/synthetic_tiny [overrides]
    python -m habitat_fih.run --config-name=fih/synthetic_tiny habitat_baselines.evaluate=True

``python -m torch.distributed.launch [--use-env] --nproc_per_node=N -m habitat_fih.run ...``
works too: the ``--local-rank=<i>`` (or ``--local_rank``) argument that launcher adds without
``--use-env`` is taken off the command line before Hydra reads it (Hydra would reject it) and
becomes ``LOCAL_RANK`` when the environment does not already hold it (torchrun and the launcher
set it; `habitat_fih.trainers.distributed.strip_launcher_args`, which also describes torchrun
and SLURM ``srun``).

Config names resolve in habitat-fih's configs (``configs/habitat/``) and habitat's own. Bad
input (a config value out of range, an unreadable data or checkpoint file, a run folder another
run holds) ends with ONE line on stderr naming it and exit status 2; ``FIH_TRACEBACK=1`` shows
the traceback instead.
"""

from __future__ import annotations

import os
import sys

import habitat_fih  # noqa: F401  (compat + registrations; must precede habitat_baselines)

# isort: split
import hydra
from habitat.config.default import patch_config
from habitat.config.default_structured_configs import register_hydra_plugin
from habitat_baselines.config.default_structured_configs import HabitatBaselinesConfigPlugin
from habitat_baselines.run import execute_exp
from omegaconf import DictConfig

import habitat_fih.trainers  # noqa: F401  (registers the fih trainer + its config)
from habitat_fih.trainers.distributed import strip_launcher_args
from habitat_fih.trainers.inputs import FIHRunError
from habitat_fih.utils.folder_lock import RunFolderLockedError

#: Errors that report bad input or a failed environment worker (which names the env, the call,
#: the episode and the worker's own error): printed as ONE line on stderr, exit status 2 (set
#: FIH_TRACEBACK=1 for the traceback). Every other exception keeps Hydra's full report.
USER_ERRORS = (ValueError, FileNotFoundError, RunFolderLockedError, FIHRunError)

__all__ = ["USER_ERRORS", "main", "strip_launcher_args"]


@hydra.main(
    version_base=None, config_path="pkg://habitat_fih.configs", config_name="fih/synthetic_tiny"
)
def main(cfg: DictConfig) -> None:
    try:
        cfg = patch_config(cfg)
        execute_exp(cfg, "eval" if cfg.habitat_baselines.evaluate else "train")
    except USER_ERRORS as err:
        if os.environ.get("FIH_TRACEBACK") == "1":
            raise
        # bad input (a config value, a data / checkpoint file, a busy run folder): its one line
        print(f"habitat_fih: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    try:
        sys.argv = strip_launcher_args(sys.argv, os.environ)
    except ValueError as err:
        print(f"habitat_fih: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    register_hydra_plugin(HabitatBaselinesConfigPlugin)
    main()
