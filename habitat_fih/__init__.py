"""habitat-fih: frame-indexed heatmap targets, an embedded CPU simulator and a trainer for
vision-language navigation on Habitat.

Importing this package first activates the import compatibility layer (``habitat_fih.compat``),
then registers every plugin family with habitat's registries by import side effect.
"""

from habitat_fih import compat

compat.install()

__version__ = "0.1.0"
