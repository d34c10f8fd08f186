"""VLN-CE task plugins: measures (:mod:`.measures`) and expert sensors (:mod:`.sensors`).

Importing this package registers the measure and sensor classes with habitat's registry and
their structured configs (:mod:`habitat_fih.config.default_structured_configs`) with Hydra's
ConfigStore.
"""

from habitat_fih.config import default_structured_configs  # noqa: F401
from habitat_fih.tasks import measures, sensors  # noqa: F401
