"""Test harness for FIHSim-v0 vs the real habitat-sim 0.2.2 (runs INSIDE the chroot of
``../shared/habitat-sim``; ``make test-habitat-sim`` sets it up and runs ``tests_habitat_sim/``).

What lives here (never in the package): the one harness shim, the test scenes written as habitat
would load them, habitat-sim's reference paths for their episodes, the simulator and
habitat.Env builders, the recorded figures and the replay of one simulator's poses in the other.

The harness shim (:func:`install_navmesh_shim`): habitat-lab 0.3.3 sets ``navmesh_settings`` on
the simulator configuration, which habitat-sim 0.2.2 does not have (``fih_hsim_shims``' fourth
gap), so configs here set ``habitat.simulator.default_agent_navmesh=False``. habitat-sim 0.2.2 then
recomputes a navmesh on scene load with only the agent's radius and height. The shim recomputes it
after every scene change with habitat-sim's own ``NavMeshSettings`` (``set_defaults()``) and ALL
the agent values of the habitat config (radius, height, max climb, max slope) plus the
``navmesh_settings`` cell size / region size FIHSim-v0 uses, so both simulators navigate the
same agent on the same settings.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import fih_hsim_shims  # noqa: F401  (must precede habitat; on PYTHONPATH via run.sh)

# isort: split
import habitat
import habitat_sim
import numpy as np
from habitat.config import read_write
from habitat.config.default import get_agent_config
from habitat.sims.habitat_simulator.habitat_simulator import HabitatSim

import habitat_fih  # noqa: F401  (registers FIH-VLN-v0, FIHSim-v0)
from habitat_fih.config import get_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts" / "parity"))
import compare_navmesh  # noqa: E402  (scripts/parity: the navmesh query points)
import scenes as parity_scenes  # noqa: E402  (scripts/parity/scenes.py: the test scenes)

#: Where the measured parity figures go (git-ignored; the README table is made from them).
OUT = Path(os.environ.get("FIH_PARITY_OUT", REPO / "outputs" / "parity"))
BENCHMARK = "benchmark/nav/fih_vln_synthetic"
DATA_SCENES = REPO / "data" / "scene_datasets"
VAL_SEEN = REPO / "data" / "datasets" / "synthetic_r2r" / "v1" / "val_seen" / "val_seen.json.gz"


# ------------------------------------------------------------------------------ navmesh shim
def navmesh_settings_for(sim_cfg) -> habitat_sim.NavMeshSettings:
    """habitat-sim's NavMeshSettings for the habitat config's agent (see the module docstring)."""
    agent = get_agent_config(sim_cfg)
    ns = habitat_sim.NavMeshSettings()
    ns.set_defaults()
    ns.agent_radius = float(agent.radius)
    ns.agent_height = float(agent.height)
    ns.agent_max_climb = float(agent.max_climb)
    ns.agent_max_slope = float(agent.max_slope)
    nav = sim_cfg.get("navmesh_settings")
    if nav is not None:
        ns.cell_size = float(nav.cell_size)
        ns.region_min_size = float(nav.region_min_size)
    return ns


def _recompute(sim: HabitatSim) -> None:
    if not sim.recompute_navmesh(sim.pathfinder, navmesh_settings_for(sim.habitat_config)):
        raise RuntimeError(f"habitat-sim could not build a navmesh for {sim._current_scene}")


def install_navmesh_shim() -> None:
    """Recompute habitat-sim's navmesh with the agent's settings after every scene change."""
    if getattr(HabitatSim, "_fih_navmesh_shim", False):
        return
    init, reconfigure = HabitatSim.__init__, HabitatSim.reconfigure

    def __init__(self, config):
        init(self, config)
        _recompute(self)

    def _reconfigure(self, habitat_config, ep_info=None, should_close_on_new_scene=True):
        before = self._current_scene
        reconfigure(self, habitat_config, ep_info, should_close_on_new_scene)
        if self._current_scene != before:
            _recompute(self)

    HabitatSim.__init__ = __init__
    HabitatSim.reconfigure = _reconfigure
    HabitatSim._fih_navmesh_shim = True


install_navmesh_shim()


# ------------------------------------------------------------------------------ scenes
def write_test_scene(root: Path, name: str):
    """Write test scene `name` (scripts/parity/scenes.py) as root/name/name.glb, stored Z-up as
    habitat-sim reads a config-less ``.glb``; returns the ParityScene."""
    scene = parity_scenes.make_scene(name)
    compare_navmesh.write_glb(scene, root / name / f"{name}.glb")
    return scene


_SIMS: dict[str, object] = {}


def make_sims(scene_path: Path):
    """(habitat-sim ``Sim-v0``, ``FIHSim-v0``) on `scene_path` with the benchmark's agent and
    sensors. One simulator of each kind per process, reconfigured per scene as habitat.Env does:
    a habitat-sim ``Simulator`` destroyed next to another one aborts on llvmpipe (no current GL
    context), so tests never close them and each test file runs in its own process."""
    out = []
    for sim_type in ("Sim-v0", "FIHSim-v0"):
        cfg = fih_config(sim_type).habitat.simulator
        with read_write(cfg):
            cfg.scene = str(scene_path)
        sim = _SIMS.get(sim_type)
        if sim is None:
            sim = _SIMS[sim_type] = habitat.sims.make_sim(sim_type, config=cfg)
        else:
            sim.reconfigure(cfg)
        out.append(sim)
    return out


# ------------------------------------------------------------------------------ episodes
def shortest_path_points(sim: HabitatSim, a, b) -> list[list[float]]:
    """habitat-sim's shortest path a -> b (an episode's reference path)."""
    path = habitat_sim.ShortestPath()
    path.requested_start = np.asarray(a, np.float32)
    path.requested_end = np.asarray(b, np.float32)
    if not sim.pathfinder.find_path(path):
        raise RuntimeError(f"no habitat-sim path {a} -> {b}")
    return [list(map(float, p)) for p in path.points]


# ------------------------------------------------------------------------------ environments
def fih_config(sim_type: str, split: str = "val_seen", data_path: str | None = None,
               scenes_dir: str | None = None, gt_path: str | None = None, extra=()):
    """FIH-VLN-v0 on the bundled benchmark config, on ``Sim-v0`` or ``FIHSim-v0``."""
    overrides = [f"habitat.simulator.type={sim_type}", f"habitat.dataset.split={split}"]
    if sim_type == "Sim-v0":
        overrides.append("habitat.simulator.default_agent_navmesh=False")
    if data_path is not None:
        overrides.append(f"habitat.dataset.data_path={data_path}")
    if scenes_dir is not None:
        overrides.append(f"habitat.dataset.scenes_dir={scenes_dir}")
    if gt_path is not None:
        overrides.append(f"habitat.task.measurements.ndtw.gt_path='{gt_path}'")
    cfg = get_config(BENCHMARK, [*overrides, *extra])
    with read_write(cfg):
        cfg.habitat.dataset.data_path = str(REPO / cfg.habitat.dataset.data_path) \
            if not os.path.isabs(cfg.habitat.dataset.data_path) else cfg.habitat.dataset.data_path
        if not os.path.isabs(cfg.habitat.dataset.scenes_dir):
            cfg.habitat.dataset.scenes_dir = str(REPO / cfg.habitat.dataset.scenes_dir)
        ndtw = cfg.habitat.task.measurements.ndtw
        if ndtw.gt_path and not os.path.isabs(ndtw.gt_path):
            ndtw.gt_path = str(REPO / ndtw.gt_path)
    return cfg


def make_env(sim_type: str, **kw) -> habitat.Env:
    return habitat.Env(fih_config(sim_type, **kw))


# ------------------------------------------------------------------------------ figures
#: Measured parity figures, {scene: {figure: value}}; conftest writes them to OUT/figures.json.
FIGURES: dict[str, dict[str, float]] = {}


def record(scene: str, figure: str, value) -> None:
    FIGURES.setdefault(scene, {})[figure] = float(value) if np.isscalar(value) else value


def depth_metres(obs) -> np.ndarray:
    """Depth [H, W] in metres from a habitat depth observation (normalised to max_depth 10)."""
    d = np.asarray(obs["depth"], dtype=np.float64)
    return (d[..., 0] if d.ndim == 3 else d) * 10.0


def depth_edges(d: np.ndarray) -> np.ndarray:
    """bool [H, W]: pixels whose 3x3 neighbourhood spans more than 5 cm + 2 % of depth (depth
    discontinuities, where one pixel of rasterisation offset changes the value)."""
    from scipy.ndimage import maximum_filter, minimum_filter

    return maximum_filter(d, 3) - minimum_filter(d, 3) > 0.05 + 0.02 * d


# ------------------------------------------------------------------------------ replay
def replay_step(fsim, state, collided: bool):
    """Make FIHSim-v0's next ``step`` put the agent at habitat-sim's recorded pose (``state``)
    instead of moving it, so its task computes targets and measures on the SAME trajectory."""

    def step(action):
        del action
        obs = fsim.get_observations_at(state.position, state.rotation, keep_agent_at_new_pose=True)
        fsim._prev_collided = bool(collided)
        return obs

    fsim.step = step
