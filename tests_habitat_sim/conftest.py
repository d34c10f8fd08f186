"""Tests that run INSIDE the habitat-sim 0.2.2 chroot (``make test-habitat-sim``), never on the
host: they compare FIHSim-v0 with the real simulator and run FIH-VLN-v0 on ``Sim-v0``.

Imports ``harness`` first (the chroot's ``fih_hsim_shims`` before habitat, then habitat_fih and
the harness' navmesh shim). At the end of the session the measured parity figures are merged into
``outputs/parity/figures.json`` and the table so far is printed (``tests_habitat_sim/run.sh``
starts from an empty file and prints the whole table at the end).
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import figures  # noqa: E402

try:
    import harness  # noqa: E402
except ModuleNotFoundError as err:  # pragma: no cover - only outside the chroot
    raise pytest.UsageError(
        f"tests_habitat_sim/ runs inside the habitat-sim chroot (make test-habitat-sim): {err}"
    ) from err

SCENES_ROOT = harness.OUT / "scenes"


@pytest.fixture(scope="session")
def test_scenes_root() -> Path:
    """The harness' own scenes (scripts/parity/scenes.py) written as Z-up .glb under OUT/scenes."""
    for name in ("scan_like", "simple_room_like"):
        harness.write_test_scene(SCENES_ROOT, name)
    return SCENES_ROOT


def pytest_terminal_summary(terminalreporter):
    if not harness.FIGURES:
        return
    path = harness.OUT / "figures.json"
    merged = figures.merge_into(path, harness.FIGURES)
    terminalreporter.write_sep("=", f"parity figures FIHSim-v0 vs habitat-sim 0.2.2 ({path})")
    terminalreporter.write_line(figures.table(merged))
