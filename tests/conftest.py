"""Test-session set-up: import habitat_fih first so habitat's imports work without habitat-sim
(the compat layer must be active before any test module imports habitat)."""

import habitat_fih  # noqa: F401
