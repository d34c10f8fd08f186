"""Task plugins: the FIH-VLN-v0 task (:mod:`.fih_task`, frame memory in :mod:`.frame_memory`),
its frame-indexed sensors (:mod:`.heatmap_sensors`) and heatmap measures
(:mod:`.heatmap_measures`), and the VLN-CE measures (:mod:`.measures`) and expert sensors
(:mod:`.sensors`).

Importing this package registers the classes with habitat's registry and their structured configs
(:mod:`habitat_fih.config.default_structured_configs`) with Hydra's ConfigStore.
"""

from habitat_fih.config import default_structured_configs  # noqa: F401
from habitat_fih.tasks import (  # noqa: F401
    fih_task,
    heatmap_measures,
    heatmap_sensors,
    measures,
    sensors,
)
