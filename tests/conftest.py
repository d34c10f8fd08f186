"""Test-session set-up: import habitat_fih first so habitat's imports work without habitat-sim
(the compat layer must be active before any test module imports habitat)."""

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import habitat_fih  # noqa: F401

# shared test helpers (tests/helpers/*.py) import by module name, e.g. ``from navmeshes import box``
sys.path.insert(0, str(Path(__file__).with_name("helpers")))
