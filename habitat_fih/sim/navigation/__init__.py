"""Navigability for FIHSim-v0 (habitat-sim's ``PathFinder``): heightfield build, sheets, geodesic
fields and the grid's queries.

* :mod:`.heightfield` -- Recast-style solid heightfield: every triangle rasterised into the columns
  it covers, spans, walkable tops (numba loops), and the build's driver;
* :mod:`.graph` -- links between the walkable tops, erosion by the agent radius, islands;
* :mod:`.sheets` -- the node graph cut into 2-D sheets for fast marching;
* :mod:`.fields` -- scikit-fmm travel-time fields across sheets, a byte-bounded cache;
* :mod:`.grid` -- :class:`NavGrid` (habitat-sim ``PathFinder`` queries) and the segment walk.
"""

from habitat_fih.sim.navigation.grid import NavGrid, segment_clear, walk_segment
from habitat_fih.sim.navigation.sheets import BAND_CELLS

__all__ = ["NavGrid", "BAND_CELLS", "walk_segment", "segment_clear"]
