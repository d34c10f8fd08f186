"""FIHSim-v0 inside an unmodified habitat.Env with habitat's VLN-v0 task, R2RVLN-v1 dataset,
measures and ShortestPathFollower; plus the simulator contract (REFERENCE §2)."""

from __future__ import annotations

import numpy as np
import pytest
import quaternion  # noqa: F401
import trimesh
from habitat import Env
from habitat.core.registry import registry
from habitat.sims import make_sim
from habitat.tasks.nav.shortest_path_follower import ShortestPathFollower

import habitat_fih  # noqa: F401
from habitat_fih.config import get_config
from habitat_fih.datasets.episodes import EpisodeSpec, sample_episodes, write_split
from habitat_fih.datasets.procedural import ApartmentSpec, export_apartment
from habitat_fih.sim.navigation import NavGrid
from habitat_fih.sim.scene import load_scene
from habitat_fih.sim.simulator import FIHSim


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fihdata")
    scene = root / "scenes" / "apt.glb"
    export_apartment(ApartmentSpec(seed=3), str(scene))
    mesh = load_scene(str(scene))
    nav = NavGrid.from_mesh(mesh.vertices, mesh.faces)
    eps = sample_episodes(
        nav, "apt.glb", 4, np.random.default_rng(0), EpisodeSpec(), lambda a, b: "go to the goal"
    )
    write_split(str(root / "episodes"), "val_seen", eps)
    return root


def _config(root, *extra):
    return get_config(
        "benchmark/nav/fih_vlnce_synthetic",
        [
            "habitat.dataset.split=val_seen",
            f"habitat.dataset.data_path='{root}/episodes/v1/{{split}}/{{split}}.json.gz'",
            f"habitat.dataset.scenes_dir={root}/scenes",
            *extra,
        ],
    )


def test_registered_and_selected_by_config(data_root):
    assert registry.get_simulator("FIHSim-v0") is FIHSim
    cfg = _config(data_root)
    assert cfg.habitat.simulator.type == "FIHSim-v0"
    assert cfg.habitat.task.measurements.success.success_distance == 3.0
    assert cfg.habitat.simulator.turn_angle == 15


def test_oracle_reaches_every_goal_in_habitat_env(data_root):
    cfg = _config(data_root)
    with Env(config=cfg) as env:
        follower = ShortestPathFollower(env.sim, 0.5, return_one_hot=False)
        assert len(env.episodes) == 4
        for _ in range(len(env.episodes)):
            obs = env.reset()
            assert obs["rgb"].shape == (224, 224, 3) and obs["rgb"].dtype == np.uint8
            assert obs["depth"].shape == (256, 256, 1) and obs["depth"].dtype == np.float32
            assert "instruction" in obs
            goal = env.current_episode.goals[0].position
            while not env.episode_over:
                env.step(follower.get_next_action(goal))
            m = env.get_metrics()
            for key in ("distance_to_goal", "success", "spl", "soft_spl", "collisions", "top_down_map"):
                assert key in m, key
            assert m["success"] == 1.0
            assert m["spl"] > 0.9
            assert m["distance_to_goal"] < 3.0
            assert m["top_down_map"]["map"].ndim == 2


def test_turns_are_exact_and_forward_moves_step_size(data_root):
    cfg = _config(data_root)
    with Env(config=cfg) as env:
        env.reset()
        sim = env.sim
        state0 = sim.get_agent_state()
        for _ in range(24):  # 24 x 15 deg = 360 deg
            sim.step(2)
        q = sim.get_agent_state().rotation
        assert abs(abs((q.conj() * state0.rotation).w) - 1.0) < 1e-6  # start quaternion is from json (rounded)
        sim.step(2)  # one turn left: forward (-Z) rotated +15 deg about +Y
        fwd = quaternion.rotate_vectors(sim.get_agent_state().rotation, np.array([0.0, 0.0, -1.0]))
        fwd0 = quaternion.rotate_vectors(state0.rotation, np.array([0.0, 0.0, -1.0]))
        angle = np.degrees(np.arctan2(np.cross(fwd0, fwd)[1], np.dot(fwd0, fwd)))
        assert angle == pytest.approx(15.0, abs=1e-9)
        p0 = sim.get_agent_state().position.copy()
        sim.step(1)
        p1 = sim.get_agent_state().position
        if not sim.previous_step_collided:
            assert np.linalg.norm(p1 - p0) == pytest.approx(0.25, abs=1e-4)
            direction = (p1 - p0) / np.linalg.norm(p1 - p0)
            assert np.allclose(direction, fwd, atol=1e-4)


def _box_room_scene(tmp_path, size=(6.0, 3.0, 6.0)):
    room = trimesh.creation.box(extents=size)
    room.apply_translation((0.0, size[1] / 2, 0.0))
    room.invert()  # normals inward; rays from inside hit the walls
    path = tmp_path / "room.obj"
    room.export(path)
    return path


def test_depth_in_a_box_room_is_the_closed_form(tmp_path):
    path = _box_room_scene(tmp_path)
    cfg = get_config(
        "benchmark/nav/fih_vlnce_synthetic",
        [
            f"habitat.simulator.scene={path}",
            "habitat.simulator.agents.main_agent.is_set_start_state=True",
            "habitat.simulator.agents.main_agent.start_position=[0.0,0.0,0.0]",
            "habitat.simulator.agents.main_agent.start_rotation=[0.0,0.0,0.0,1.0]",
            "habitat.simulator.agents.main_agent.sim_sensors.depth_sensor.normalize_depth=False",
        ],
    )
    sim = make_sim("FIHSim-v0", config=cfg.habitat.simulator)
    try:
        obs = sim.reset()
        depth = obs["depth"][..., 0]
        # Facing -Z from the room centre at eye height 1.25: the front wall is 3 m away; planar
        # depth of every pixel that sees the front wall is exactly 3. The centre 2x2 pixels see it.
        h, w = depth.shape
        assert np.allclose(depth[h // 2 - 1 : h // 2 + 1, w // 2 - 1 : w // 2 + 1], 3.0, atol=1e-3)
        # Column w/4 looks ~26.6 deg to the left: its ray meets the front wall plane z = -3 at
        # x ~ -1.5 (inside the wall), so the planar depth of rows near the horizon is exactly 3.
        rows = slice(h // 2 - 10, h // 2 + 10)
        assert np.allclose(depth[rows, w // 4], 3.0, atol=1e-3)
        # Looking straight down the floor (bottom row, centre column): planar depth of the floor
        # point hit by a ray at pixel v: z = 1.25 / tan(angle below the axis) capped by the wall.
        f = (w / 2) / np.tan(np.radians(45))
        v = h - 0.5 - h / 2  # offset of the bottom row centre from the principal point
        z_floor = 1.25 * f / v
        assert depth[h - 1, w // 2] == pytest.approx(min(z_floor, 3.0), abs=1e-3)
    finally:
        sim.close()


def test_bad_inputs_give_one_clear_error(tmp_path, data_root):
    with pytest.raises(FileNotFoundError, match="missing.glb"):
        make_sim("FIHSim-v0", config=get_config(
            "benchmark/nav/fih_vlnce_synthetic", [f"habitat.simulator.scene={tmp_path}/missing.glb"]
        ).habitat.simulator)
    path = _box_room_scene(tmp_path)
    off = get_config(
        "benchmark/nav/fih_vlnce_synthetic",
        [
            f"habitat.simulator.scene={path}",
            "habitat.simulator.agents.main_agent.is_set_start_state=True",
            "habitat.simulator.agents.main_agent.start_position=[0.0,5.0,40.0]",
        ],
    )
    with pytest.raises(ValueError, match=r"start position \[0.0, 5.0, 40.0\]"):
        make_sim("FIHSim-v0", config=off.habitat.simulator)
    bad_sensor = get_config(
        "benchmark/nav/fih_vlnce_synthetic",
        [
            f"habitat.simulator.scene={path}",
            "habitat.simulator.agents.main_agent.sim_sensors.rgb_sensor.type=NoSuchSensor",
        ],
    )
    with pytest.raises(ValueError, match="NoSuchSensor"):
        make_sim("FIHSim-v0", config=bad_sensor.habitat.simulator)


def test_navmesh_settings_reach_the_grid(data_root):
    """habitat.simulator.navmesh_settings (habitat-sim's NavMeshSettings names) configure the grid:
    a 10 cm grid has about a quarter of the 5 cm grid's cells over the same floor."""
    with Env(config=_config(data_root)) as env:
        fine = env.sim.pathfinder
        assert fine.cell_size == 0.05
        fine_area = fine.num_nodes * fine.cell_size**2
    cfg = _config(data_root, "habitat.simulator.navmesh_settings.cell_size=0.1",
                  "habitat.simulator.navmesh_settings.region_min_size=0")
    with Env(config=cfg) as env:
        coarse = env.sim.pathfinder
        assert coarse.cell_size == 0.1
        assert coarse.num_nodes * 0.01 == pytest.approx(fine_area, rel=0.15)
