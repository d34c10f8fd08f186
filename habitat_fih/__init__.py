"""habitat-fih: frame-indexed heatmap targets, an embedded CPU simulator and a trainer for
vision-language navigation on Habitat.

Importing this package first activates the import compatibility layer (``habitat_fih.compat``),
then registers every plugin family with habitat's registries by import side effect (the FIH task,
sensors and measures; FIHSim-v0; the model policy), and the config search path with Hydra.
"""

from habitat_fih import compat

compat.install()

# isort: split
from habitat_fih import config, tasks  # noqa: E402,F401  (tasks: measures, sensors, configs)
from habitat_fih.sim import simulator  # noqa: E402,F401  (registers FIHSim-v0)

config.register()

from habitat_fih import trainers  # noqa: E402,F401  (fih trainer + habitat_baselines.fih config)

__version__ = "0.1.0"
