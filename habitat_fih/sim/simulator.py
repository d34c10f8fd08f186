"""FIHSim-v0: habitat-lab's ``Simulator`` interface on an embedded CPU back end.

Select it with ``habitat.simulator.type: FIHSim-v0``. It runs inside an unmodified ``habitat.Env``
with habitat's own tasks (``VLN-v0``), datasets (``R2RVLN-v1``), sensors
(``HabitatSimRGBSensor`` / ``HabitatSimDepthSensor``) and measures (DistanceToGoal, Success, SPL,
SoftSPL, Collisions, TopDownMap), and with habitat's ``ShortestPathFollower``.

Back end (one instance per scene, kept in a small per-simulator LRU so episodes of the same scene
reuse it):
- :mod:`habitat_fih.sim.scene` loads the mesh (.glb/.gltf/.obj/.ply) with textures, in habitat's
  Y-up world frame: file frames as habitat-sim v0.2.2 decides them (:mod:`habitat_fih.sim.frames`:
  a .glb without a stage config is Z-up like MP3D; stage configs and
  ``habitat.simulator.scene_dataset`` say otherwise);
- :mod:`habitat_fih.sim.render` ray-casts RGB and planar depth with Embree (sensors of the same
  size at the same pose share one cast);
- :mod:`habitat_fih.sim.navigation` builds a navigability grid from the agent's height, radius,
  max climb and max slope, answers geodesic queries from cached fast-marching fields and moves the
  agent with habitat-sim's sliding semantics;
- :mod:`habitat_fih.sim.follower` is the greedy geodesic follower behind ``make_greedy_follower``.

Conventions are habitat-sim's: the agent position is the point on the floor under it, the agent
looks down its local -Z, ``turn_left`` rotates by +``turn_angle`` degrees about +Y, rotations are
numpy-quaternions, sensor poses are the agent pose composed with the sensor's ``position`` offset
and ``orientation`` (Euler angles, radians).

Start positions: a start that is not navigable is snapped to the nearest navigable point when it
lies within ``START_SNAP_TOLERANCE`` metres (grid discretisation at 5 cm can leave a valid start a
few centimetres outside the eroded area); farther away it is an error naming the position.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import attr
import numpy as np
import quaternion  # noqa: F401  (registers np.quaternion)
from gym import spaces
from habitat.config.default import get_agent_config
from habitat.core.registry import registry
from habitat.core.simulator import (
    AgentState,
    DepthSensor,
    Observations,
    RGBSensor,
    SensorSuite,
    Simulator,
)
from habitat.sims.habitat_simulator.actions import HabitatSimActions
from habitat.utils.geometry_utils import quaternion_from_coeff
from omegaconf import DictConfig, OmegaConf

from habitat_fih.config.default_structured_configs import FIHNavMeshSettingsConfig
from habitat_fih.geometry.camera import pose_from_agent_state
from habitat_fih.sim.follower import BoundGreedyFollower, GreedyGeodesicFollower, turn
from habitat_fih.sim.motion import try_step
from habitat_fih.sim.navigation import NavGrid
from habitat_fih.sim.render import CameraSpec, RayCaster
from habitat_fih.sim.scene import SceneMesh, load_scene

__all__ = ["FIHSim", "SceneAssets"]

logger = logging.getLogger(__name__)

START_SNAP_TOLERANCE = 0.25  # metres, see module docstring


def navmesh_settings(sim_cfg: Any) -> Any:
    """``navmesh_settings`` of a simulator config (a plain habitat SimulatorConfig with type
    FIHSim-v0 has none: the defaults)."""
    nav = sim_cfg.get("navmesh_settings")
    return nav if nav is not None else OmegaConf.structured(FIHNavMeshSettingsConfig)


def build_navgrid(mesh: Any, agent_cfg: Any, nav: Any, name: str) -> NavGrid:
    """The navigation FIHSim-v0 builds for `mesh` and this agent (also used by the trainer's
    input checks, so both accept the same starts)."""
    return NavGrid.from_mesh(
        mesh.vertices,
        mesh.faces,
        agent_height=float(agent_cfg.height),
        agent_radius=float(agent_cfg.radius),
        max_climb=float(agent_cfg.max_climb),
        max_slope=float(agent_cfg.max_slope),
        cell_size=float(nav.cell_size),
        cell_height=float(nav.cell_height),
        region_min_size=int(nav.region_min_size),
        field_cache_bytes=int(nav.field_cache_mb) * 2**20,
        name=name,
    )


def accepted_start(nav: NavGrid, pos: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """(the position an episode starts at, or None if refused; the nearest navigable point):
    `pos` itself when navigable, else its snap when within START_SNAP_TOLERANCE."""
    if nav.is_navigable(pos):
        return pos, pos
    snapped = nav.snap_point(pos)
    if np.any(np.isnan(snapped)) or np.linalg.norm(snapped - pos) > START_SNAP_TOLERANCE:
        return None, snapped
    return snapped, snapped
_UNSUPPORTED_CAMERA_WORDS = ("Equirectangular", "Fisheye", "Semantic")


@dataclass
class SceneAssets:
    """Everything built once per scene: mesh, Embree scene and navigability grid."""

    mesh: SceneMesh
    caster: RayCaster
    navgrid: NavGrid


@dataclass
class _SensorState:
    """Pose of one sensor, as habitat-sim's ``SixDOFPose``."""

    position: np.ndarray
    rotation: np.quaternion


@attr.s(auto_attribs=True)
class FIHAgentState(AgentState):
    """habitat's AgentState plus per-sensor world poses (``sensor_states``), as habitat-sim's."""

    sensor_states: dict[str, _SensorState] = attr.ib(factory=dict)


class _Agent:
    """Minimal ``habitat_sim.Agent`` view: ``state`` / ``get_state()`` (TopDownMap uses them)."""

    def __init__(self, sim: FIHSim) -> None:
        self._sim = sim

    def get_state(self) -> FIHAgentState:
        return self._sim.get_agent_state()

    @property
    def state(self) -> FIHAgentState:
        return self._sim.get_agent_state()


@dataclass(frozen=True)
class _CameraSensor:
    uuid: str
    kind: str  # "rgb" | "depth"
    spec: CameraSpec
    offset: np.ndarray  # [3] position relative to the agent
    orientation: np.ndarray  # [3] Euler angles (radians)


@registry.register_simulator(name="FIHSim-v0")
class FIHSim(Simulator):
    """The embedded CPU simulator (see the module docstring)."""

    #: Scenes kept built at once (mesh + Embree + navigability); VLN datasets are sorted by scene.
    MAX_CACHED_SCENES = 2

    def __init__(self, config: DictConfig) -> None:
        self.habitat_config = config
        # a plain habitat SimulatorConfig (type: FIHSim-v0) has no navmesh_settings: defaults
        self._navmesh_settings = navmesh_settings(config)
        self._scene_cache: OrderedDict[str, SceneAssets] = OrderedDict()
        self._rng = np.random.default_rng(config.seed)
        agent_cfg = get_agent_config(config)
        self._agent_cfg = agent_cfg
        self._cameras, sensors = self._make_sensors(agent_cfg.sim_sensors)
        # sensor orientation relative to the agent, as a quaternion (for sensor_states)
        self._sensor_quats = {
            cam.uuid: quaternion.from_rotation_matrix(
                pose_from_agent_state(np.zeros(3), np.quaternion(1, 0, 0, 0), np.zeros(3), cam.orientation)[:3, :3]
            )
            for cam in self._cameras
        }
        self._pose_cache: tuple[tuple, dict[str, np.ndarray]] | None = None
        self._sensor_suite = SensorSuite(sensors)
        self._action_space = spaces.Discrete(4)
        self._position = np.zeros(3, dtype=np.float64)
        self._rotation = np.quaternion(1, 0, 0, 0)
        self._prev_collided = False
        self._assets: SceneAssets | None = None
        self._load(config)

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _make_sensors(sim_sensors: DictConfig) -> tuple[list[_CameraSensor], list]:
        cameras, sensors = [], []
        for name, sensor_cfg in sim_sensors.items():
            sensor_cls = registry.get_sensor(sensor_cfg.type)
            if sensor_cls is None:
                raise ValueError(
                    f"unknown sensor type {sensor_cfg.type!r} for sim sensor {name!r}; FIHSim-v0 "
                    "renders HabitatSimRGBSensor and HabitatSimDepthSensor"
                )
            unsupported = any(w in sensor_cfg.type for w in _UNSUPPORTED_CAMERA_WORDS)
            if issubclass(sensor_cls, RGBSensor) and not unsupported:
                kind = "rgb"
            elif issubclass(sensor_cls, DepthSensor) and not unsupported:
                kind = "depth"
            else:
                raise ValueError(
                    f"sensor type {sensor_cfg.type!r} (sim sensor {name!r}) is not supported by "
                    "FIHSim-v0; expected a pinhole HabitatSimRGBSensor or HabitatSimDepthSensor"
                )
            sensor = sensor_cls(sensor_cfg)
            sensors.append(sensor)
            cameras.append(
                _CameraSensor(
                    uuid=sensor.uuid,
                    kind=kind,
                    spec=CameraSpec(
                        width=int(sensor_cfg.width),
                        height=int(sensor_cfg.height),
                        hfov=float(sensor_cfg.hfov),
                    ),
                    offset=np.asarray(sensor_cfg.position, dtype=np.float64),
                    orientation=np.asarray(sensor_cfg.orientation, dtype=np.float64),
                )
            )
        return cameras, sensors

    def _scene_assets(self, scene_path: str) -> SceneAssets:
        if scene_path in self._scene_cache:
            self._scene_cache.move_to_end(scene_path)
            return self._scene_cache[scene_path]
        mesh = load_scene(scene_path, scene_dataset=self.habitat_config.scene_dataset)
        navgrid = build_navgrid(mesh, self._agent_cfg, self._navmesh_settings, scene_path)
        assets = SceneAssets(mesh=mesh, caster=RayCaster(mesh), navgrid=navgrid)
        self._scene_cache[scene_path] = assets
        while len(self._scene_cache) > self.MAX_CACHED_SCENES:
            self._scene_cache.popitem(last=False)
        return assets

    def _load(self, config: DictConfig) -> None:
        self._assets = self._scene_assets(config.scene)
        self._current_scene = config.scene
        if self._agent_cfg.is_set_start_state:
            self._place_at_start(self._agent_cfg.start_position, self._agent_cfg.start_rotation)
        else:
            self.set_agent_state(self.sample_navigable_point(), np.quaternion(1, 0, 0, 0))

    def _place_at_start(self, position: Sequence[float], rotation: Sequence[float]) -> None:
        pos = np.asarray(position, dtype=np.float64)
        accepted, snapped = accepted_start(self.pathfinder, pos)
        if accepted is None:
            raise ValueError(
                f"start position {pos.tolist()} is not on the navigable area of scene "
                f"{self._current_scene!r} (nearest navigable point {snapped.tolist()}, "
                f"tolerance {START_SNAP_TOLERANCE} m)"
            )
        self.set_agent_state(accepted, rotation)

    # ---------------------------------------------------------- habitat API
    @property
    def sensor_suite(self) -> SensorSuite:
        return self._sensor_suite

    @property
    def action_space(self) -> spaces.Discrete:
        return self._action_space

    @property
    def pathfinder(self) -> NavGrid:
        assert self._assets is not None
        return self._assets.navgrid

    @property
    def scene_assets(self) -> SceneAssets:
        assert self._assets is not None
        return self._assets

    @property
    def agents(self) -> list[_Agent]:
        return [_Agent(self)]

    def get_agent(self, agent_id: int = 0) -> _Agent:
        self._check_agent(agent_id)
        return _Agent(self)

    @staticmethod
    def _check_agent(agent_id: int) -> None:
        if agent_id != 0:
            raise ValueError(f"FIHSim-v0 simulates one agent (id 0); got agent_id={agent_id}")

    @property
    def up_vector(self) -> np.ndarray:
        return np.array([0.0, 1.0, 0.0])

    @property
    def forward_vector(self) -> np.ndarray:
        return np.array([0.0, 0.0, -1.0])

    @property
    def previous_step_collided(self) -> bool:
        return self._prev_collided

    def seed(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def reconfigure(self, config: DictConfig, ep_info: Any = None, should_close_on_new_scene: bool = True) -> None:
        self.habitat_config = config
        self._agent_cfg = get_agent_config(config)
        self._load(config)

    def reset(self) -> Observations:
        self._prev_collided = False
        if self._agent_cfg.is_set_start_state:
            self._place_at_start(self._agent_cfg.start_position, self._agent_cfg.start_rotation)
        return self._observe()

    def step(self, action: int | str | None) -> Observations:
        if action is None:
            return self._observe()
        action_id = HabitatSimActions[action] if isinstance(action, str) else int(action)
        if action_id == HabitatSimActions.move_forward:
            step = float(self.habitat_config.forward_step_size)
            target = self._position + quaternion.rotate_vectors(
                self._rotation, np.array([0.0, 0.0, -step])
            )
            end, self._prev_collided = try_step(
                self.pathfinder,
                self._position,
                target,
                bool(self.habitat_config.habitat_sim_v0.allow_sliding),
            )
            self._position = np.asarray(end, dtype=np.float64)
        elif action_id in (HabitatSimActions.turn_left, HabitatSimActions.turn_right):
            sign = 1.0 if action_id == HabitatSimActions.turn_left else -1.0
            angle = math.radians(sign * float(self.habitat_config.turn_angle))
            self._rotation = turn(self._rotation, angle)
            self._prev_collided = False
        elif action_id == HabitatSimActions.stop:
            self._prev_collided = False
        else:
            raise ValueError(
                f"action {action!r} is not supported by FIHSim-v0; expected one of stop (0), "
                "move_forward (1), turn_left (2), turn_right (3)"
            )
        return self._observe()

    def step_physics(self, dt: float) -> None:
        """No dynamics in FIHSim-v0; habitat's task calls this every step."""

    def render(self, mode: str = "rgb") -> np.ndarray:
        output = self._observe().get(mode)
        if output is None:
            raise ValueError(f"render mode {mode!r} has no sensor; sensors: {[c.uuid for c in self._cameras]}")
        return output

    def close(self, destroy: bool = True) -> None:
        self._scene_cache.clear()
        self._assets = None

    # -------------------------------------------------------------- agent state
    def get_agent_state(self, agent_id: int = 0) -> FIHAgentState:
        self._check_agent(agent_id)
        poses = self._sensor_poses()
        states = {
            cam.uuid: _SensorState(
                position=poses[cam.uuid][:3, 3].copy(),
                rotation=self._rotation * self._sensor_quats[cam.uuid],
            )
            for cam in self._cameras
        }
        return FIHAgentState(
            position=self._position.astype(np.float32),
            rotation=self._rotation,
            sensor_states=states,
        )

    def set_agent_state(
        self,
        position: Sequence[float] | np.ndarray,
        rotation: Sequence[float] | np.ndarray | np.quaternion,
        agent_id: int = 0,
        reset_sensors: bool = True,
    ) -> bool:
        self._check_agent(agent_id)
        self._position = np.asarray(position, dtype=np.float64).reshape(3).copy()
        if isinstance(rotation, np.quaternion):
            self._rotation = rotation
        else:
            self._rotation = quaternion_from_coeff(np.asarray(rotation, dtype=np.float64))
        return True

    def get_observations_at(
        self,
        position: Sequence[float] | None = None,
        rotation: Sequence[float] | np.quaternion | None = None,
        keep_agent_at_new_pose: bool = False,
    ) -> Observations | None:
        saved = (self._position.copy(), self._rotation)
        if position is not None and rotation is not None:
            self.set_agent_state(position, rotation)
        self._prev_collided = False
        obs = self._observe()
        if not keep_agent_at_new_pose:
            self._position, self._rotation = saved
        return obs

    # ---------------------------------------------------------------- navigation
    def geodesic_distance(self, position_a, position_b, episode=None) -> float:
        ends = np.asarray(position_b, dtype=np.float64)
        if ends.ndim == 1:
            ends = ends[None]
        return float(self.pathfinder.geodesic_distance(np.asarray(position_a, dtype=np.float64), list(ends)))

    def get_straight_shortest_path_points(self, position_a, position_b) -> list[np.ndarray]:
        return self.pathfinder.get_straight_shortest_path_points(
            np.asarray(position_a, dtype=np.float64), np.asarray(position_b, dtype=np.float64)
        )

    def sample_navigable_point(self) -> list[float]:
        return [float(v) for v in self.pathfinder.sample_navigable_point(self._rng)]

    def is_navigable(self, point: Sequence[float]) -> bool:
        return bool(self.pathfinder.is_navigable(np.asarray(point, dtype=np.float64)))

    def action_space_shortest_path(self, source, targets, agent_id: int = 0):
        raise NotImplementedError(
            "action_space_shortest_path is not implemented (as in habitat-lab's HabitatSim); use "
            "ShortestPathFollower / make_greedy_follower"
        )

    def semantic_annotations(self) -> None:
        return None

    def make_greedy_follower(
        self,
        agent_id: int = 0,
        goal_radius: float | None = None,
        *,
        stop_key: Any = None,
        forward_key: Any = None,
        left_key: Any = None,
        right_key: Any = None,
        fix_thrashing: bool = True,
        thrashing_threshold: int = 16,
    ) -> BoundGreedyFollower:
        """habitat-sim's ``Simulator.make_greedy_follower`` on this simulator; the follower's
        ``next_action_along(goal)`` reads the agent's current state."""
        self._check_agent(agent_id)
        follower = GreedyGeodesicFollower(
            self.pathfinder,
            goal_radius=float(goal_radius if goal_radius is not None else 0.5),
            stop_key=stop_key,
            forward_key=forward_key,
            left_key=left_key,
            right_key=right_key,
            forward_amount=float(self.habitat_config.forward_step_size),
            turn_angle_deg=float(self.habitat_config.turn_angle),
            allow_sliding=bool(self.habitat_config.habitat_sim_v0.allow_sliding),
            thrashing_threshold=thrashing_threshold if fix_thrashing else None,
        )
        return follower.bind(lambda: (self._position.copy(), self._rotation))

    # ---------------------------------------------------------------- rendering
    def _sensor_poses(self) -> dict[str, np.ndarray]:
        """Camera-to-world pose of every sensor, cached until the agent moves (habitat's
        measures and sensors ask for the agent state many times per step)."""
        key = (*self._position.tolist(), *quaternion.as_float_array(self._rotation).tolist())
        if self._pose_cache is None or self._pose_cache[0] != key:
            poses = {
                cam.uuid: pose_from_agent_state(self._position, self._rotation, cam.offset, cam.orientation)
                for cam in self._cameras
            }
            self._pose_cache = (key, poses)
        return self._pose_cache[1]

    def _observe(self) -> Observations:
        """Render every sensor; sensors at the same pose go through one ``render`` call."""
        by_pose: dict[tuple, list[_CameraSensor]] = {}
        for cam in self._cameras:
            key = (tuple(cam.offset), tuple(cam.orientation))
            by_pose.setdefault(key, []).append(cam)
        sim_obs: dict[str, Any] = {}
        caster = self.scene_assets.caster
        for cams in by_pose.values():
            pose = self._sensor_poses()[cams[0].uuid]
            views = caster.render_sensors(pose, [(c.spec, c.kind) for c in cams])
            for cam, view in zip(cams, views, strict=True):
                sim_obs[cam.uuid] = view
        sim_obs["collided"] = self._prev_collided
        return self._sensor_suite.get_observations(sim_obs)
