"""habitat-fih: frame-indexed heatmap targets, an embedded CPU simulator and a trainer for
vision-language navigation on Habitat.

Importing this package first activates the import compatibility layer (``habitat_fih.compat``,
which serves stand-ins only for ``magnum`` / ``habitat_sim`` when they are NOT installed), then
registers the plugins with habitat's registries by import side effect:

* always: the FIH task, sensors and measures, FIHSim-v0 and the config search path. These need
  numpy, numba, trimesh, embreex, scikit-fmm and numpy-quaternion, never torch; they run
  unchanged on the real habitat-sim (``Sim-v0``, see ``make test-habitat-sim``).
* when habitat-baselines is importable: the ``fih`` trainer (a lazy proxy; torch, transformers
  and the model code load when the trainer is built), its ``habitat_baselines.fih`` config node,
  and through the trainer the ``FIHPolicy``. Without habitat-baselines (e.g. a habitat-sim
  install used only for the task) nothing of it is imported and :data:`TRAINER_REGISTERED` is
  False; if habitat-baselines is installed but fails to import, that error is raised here.
"""

import importlib.util

from habitat_fih import compat

compat.install()

# isort: split
from habitat_fih import config, tasks  # noqa: E402,F401  (tasks: measures, sensors, configs)
from habitat_fih.sim import simulator  # noqa: E402,F401  (registers FIHSim-v0)

config.register()

#: True when habitat-baselines is installed and the ``fih`` trainer is registered with it.
TRAINER_REGISTERED = importlib.util.find_spec("habitat_baselines") is not None
if TRAINER_REGISTERED:
    from habitat_fih import trainers  # noqa: E402,F401  (fih trainer + habitat_baselines.fih config)

__version__ = "0.1.0"
