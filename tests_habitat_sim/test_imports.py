"""The simulator side of habitat_fih imports and registers without torch and habitat-baselines
(the chroot has neither), and uses the REAL habitat_sim / magnum, not the compat stand-ins."""

import importlib.util
import sys

from habitat.core.registry import registry

from habitat_fih import compat


def test_chroot_has_no_torch_nor_baselines():
    assert importlib.util.find_spec("torch") is None
    assert importlib.util.find_spec("habitat_baselines") is None


def test_package_imports_without_torch_and_registers_the_task_side():
    import habitat_fih.config  # noqa: F401
    import habitat_fih.geometry  # noqa: F401
    import habitat_fih.sim.simulator  # noqa: F401
    import habitat_fih.tasks  # noqa: F401

    assert habitat_fih.TRAINER_REGISTERED is False
    assert "torch" not in sys.modules and "habitat_baselines" not in sys.modules
    assert registry.get_task("FIH-VLN-v0") is not None
    assert registry.get_simulator("FIHSim-v0") is not None
    for sensor in ("FrameIndexedHeatmapSensor", "FrameGeometrySensor"):
        assert registry.get_sensor(sensor) is not None, sensor


def test_real_habitat_sim_is_used():
    import habitat_sim
    import magnum

    assert not compat.is_stand_in(habitat_sim) and not compat.is_stand_in(magnum)
    assert registry.get_simulator("Sim-v0") is not None
