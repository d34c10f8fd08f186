"""Co-visibility targets on habitat-sim's own depth (runs INSIDE the habitat-sim chroot).

After a pure turn the camera centre does not move, so every valid current pixel whose ray lies
inside the previous frame's frustum (and within its depth range) is co-visible with it (closed
form, whatever the scene).
This renders depth with the real habitat-sim 0.2.2 (256², hfov 90, sensor 1.25 m above the
agent) at random navigable points, turns the agent in place, and compares the FIH task's target
pipeline - ``surface.resample_depth`` to the 64² working resolution, then
``targets.covisibility_heatmaps`` - with that closed form, per pixel (IoU) and as overlap.

Usage (scenes: any .glb; ``scripts/parity/compare_navmesh.py`` writes the parity scenes to
``outputs/parity/<scene>/<scene>.glb``):

    bash /work/shared/habitat-sim/run.sh /tmp/fih-hsim /work/main \\
        python scripts/parity/hsim_covisibility.py /proj/outputs/parity/house_000/house_000.glb ...
        [--turns 15] [--samples 25]

Only numpy, numba, numpy-quaternion and habitat_sim are needed: the three geometry modules are
imported without the package's ``__init__`` (which pulls in the simulator and trainer stacks).
"""

from __future__ import annotations

import argparse
import math
import sys
import types
from pathlib import Path

import numpy as np
import quaternion  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
_pkg = types.ModuleType("habitat_fih")
_pkg.__path__ = [str(ROOT / "habitat_fih")]
sys.modules.setdefault("habitat_fih", _pkg)

import habitat_sim  # noqa: E402

from habitat_fih.geometry.camera import camera_rays, pose_from_agent_state  # noqa: E402
from habitat_fih.geometry.surface import resample_depth  # noqa: E402
from habitat_fih.geometry.targets import covisibility_heatmaps  # noqa: E402

SIZE, WORK, HFOV, MAX_DEPTH = 256, 64, 90.0, 10.0


def make_sim(scene: str) -> habitat_sim.Simulator:
    backend = habitat_sim.SimulatorConfiguration()
    backend.scene_id = scene
    depth = habitat_sim.CameraSensorSpec()
    depth.uuid, depth.sensor_type = "depth", habitat_sim.SensorType.DEPTH
    depth.resolution, depth.position, depth.hfov = [SIZE, SIZE], [0.0, 1.25, 0.0], HFOV
    agent = habitat_sim.agent.AgentConfiguration(
        height=1.5, radius=0.1, sensor_specifications=[depth]
    )
    sim = habitat_sim.Simulator(habitat_sim.Configuration(backend, [agent]))
    settings = habitat_sim.NavMeshSettings()
    settings.set_defaults()
    settings.agent_radius, settings.agent_height = 0.1, 1.5
    sim.recompute_navmesh(sim.pathfinder, settings)
    return sim


def view(sim, position, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """(metric depth [SIZE, SIZE] with 0 = invalid, sensor camera-to-world pose)."""
    agent = sim.get_agent(0)
    state = habitat_sim.AgentState()
    state.position = np.asarray(position, dtype=np.float32)
    state.rotation = np.quaternion(math.cos(yaw / 2), 0.0, math.sin(yaw / 2), 0.0)
    agent.set_state(state)
    depth = np.asarray(sim.get_sensor_observations()["depth"], dtype=np.float32)
    depth[(depth >= MAX_DEPTH - 1e-4) | (depth <= 0)] = 0.0  # as the FIH task does
    s = agent.get_state().sensor_states["depth"]
    return depth, pose_from_agent_state(s.position, s.rotation)


def seen_after_turn(target_depth, target_pose, source_pose) -> np.ndarray:
    """Closed form for a turn in place: valid target pixels whose ray lies inside the source
    image and whose point is within the source's depth range (planar depth changes with the
    turn, so a point 9 m deep in one view can be beyond MAX_DEPTH in the other)."""
    size = target_depth.shape[0]
    dirs = camera_rays(HFOV, size, size).reshape(-1, 3) @ target_pose[:3, :3].T  # world
    q = (dirs * target_depth.reshape(-1, 1)) @ source_pose[:3, :3]  # X - c, source frame
    f = (size / 2) / math.tan(math.radians(HFOV) / 2)
    d = -q[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u, v = size / 2 + f * q[:, 0] / d, size / 2 - f * q[:, 1] / d
    inside = (d > 0) & (u >= 0) & (u < size) & (v >= 0) & (v < size) & (d < MAX_DEPTH - 1e-4)
    return inside.reshape(size, size) & (target_depth > 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenes", nargs="+")
    parser.add_argument("--turns", type=float, nargs="+", default=[15.0])
    parser.add_argument("--samples", type=int, default=25)
    parser.add_argument("--png", default="", help="folder for a picture of each row's worst turn")
    args = parser.parse_args()
    print(f"habitat_sim {habitat_sim.__version__}; depth {SIZE}², working {WORK}², hfov {HFOV}")
    print(
        f"{'scene':20s} {'turn':>5s} {'n':>3s} {'IoU median':>10s} {'IoU min':>8s} "
        f"{'overlap med':>11s} {'exact 64² med':>13s} {'exact 256² med':>14s}"
    )
    for scene in args.scenes:
        sim = make_sim(scene)
        sim.pathfinder.seed(7)
        rng = np.random.default_rng(7)
        for turn in args.turns:
            ious, got, exact, exact_full = [], [], [], []
            worst: tuple = ()
            while len(ious) < args.samples:
                p = sim.pathfinder.get_random_navigable_point()
                yaw = rng.uniform(-math.pi, math.pi)
                src_d, src_p = view(sim, p, yaw)
                tgt_d, tgt_p = view(sim, p, yaw + math.radians(turn))
                work_t = resample_depth(tgt_d, (WORK, WORK), 0.05, 0.02)
                work_s = resample_depth(src_d, (WORK, WORK), 0.05, 0.02)
                work_t[work_t >= MAX_DEPTH - 1e-4] = 0.0
                work_s[work_s >= MAX_DEPTH - 1e-4] = 0.0
                valid = work_t > 0
                if valid.mean() < 0.25:  # facing a void: not informative
                    continue
                res = covisibility_heatmaps(
                    work_t, tgt_p, work_s[None], src_p[None], HFOV, (WORK, WORK)
                )
                pred = res.maps[0] > 0.5
                want = seen_after_turn(work_t, tgt_p, src_p)
                ious.append((pred & want).sum() / max((pred | want).sum(), 1))
                if not worst or ious[-1] < worst[0]:
                    worst = (ious[-1], src_d, tgt_d, pred, want)
                got.append(float(res.overlap[0]))
                exact.append(want.sum() / valid.sum())
                exact_full.append(seen_after_turn(tgt_d, tgt_p, src_p).sum() / (tgt_d > 0).sum())
            name = Path(scene).stem
            print(
                f"{name:20s} {turn:5.0f} {len(ious):3d} {np.median(ious):10.4f} "
                f"{np.min(ious):8.4f} {np.median(got):11.4f} {np.median(exact):13.4f} "
                f"{np.median(exact_full):14.4f}"
            )
            if args.png:
                _picture(Path(args.png) / f"{name}_turn{turn:.0f}_worst.png", *worst)
        sim.close()


def _picture(path: Path, iou: float, src_d, tgt_d, pred, want) -> None:
    """Previous depth | current depth | target map (white) with misses red, extras blue."""
    import cv2

    def gray(d):
        g = (255 * (1 - np.clip(d / MAX_DEPTH, 0, 1))).astype(np.uint8)
        g[d <= 0] = 0
        return cv2.cvtColor(cv2.resize(g, (256, 256), interpolation=cv2.INTER_NEAREST), 8)

    m = np.zeros((*pred.shape, 3), np.uint8)
    m[pred & want] = 255
    m[want & ~pred] = (0, 0, 255)  # BGR: missed
    m[pred & ~want] = (255, 0, 0)  # covisible by the rule, not by the closed form
    m = cv2.resize(m, (256, 256), interpolation=cv2.INTER_NEAREST)
    img = np.concatenate([gray(src_d), gray(tgt_d), m], axis=1)
    cv2.putText(img, f"IoU {iou:.4f}", (520, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


if __name__ == "__main__":
    main()
