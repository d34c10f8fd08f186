"""Probe habitat-sim's navmesh on one scene (runs INSIDE the habitat-sim chroot; numpy + habitat_sim only).

Usage (from the host, the checkout is /proj inside):

    bash /work/shared/habitat-sim/run.sh /tmp/fih-hsim /work/main \
        python scripts/parity/hsim_probe.py /proj/outputs/parity/<scene>/job.json

Job (JSON):
    scene        path of the .glb (loaded as a stage, no stage config: habitat-sim treats it as Z-up)
    out          path of the result JSON; the top-down views go to ``out`` with suffix ``.npz``
    navmesh      {agent_radius, agent_height, agent_max_climb, agent_max_slope, cell_size,
                  cell_height}: set on NavMeshSettings after set_defaults() (a missing / null
                  entry keeps the default)
    points       [[x, y, z], ...] is_navigable queries (habitat's default max_y_delta)
    pairs        [[[x, y, z], [x, y, z]], ...] geodesic queries (endpoints snapped first)
    random_pairs {"n": N, "seed": S}: N more pairs of pathfinder.get_random_navigable_point()
    topdown      {"mpp": m, "heights": [h, ...]}: pathfinder.get_topdown_view(m, h)
    save_navmesh optional path: pathfinder.save_nav_mesh there

Result (JSON; inf / NaN written as Infinity / NaN): habitat_sim version, NavMeshSettings defaults
and the values used, recompute status, navigable_area, bounds, is_navigable per point, per pair
{start, end, start_snapped, end_snapped, found, geodesic} (geodesic inf when no path, NaN when an
endpoint does not snap), and the top-down views' shapes (arrays ``topdown_<i>`` in the npz).
"""

from __future__ import annotations

import json
import math
import sys
import time

import habitat_sim
import numpy as np

NAVMESH_KEYS = (
    "agent_radius",
    "agent_height",
    "agent_max_climb",
    "agent_max_slope",
    "cell_size",
    "cell_height",
)


def _settings_dict(ns) -> dict:
    out = {}
    for k in dir(ns):
        if k.startswith("_"):
            continue
        try:
            v = getattr(ns, k)
        except Exception:  # noqa: BLE001 - some bound attributes raise on access
            continue
        if isinstance(v, bool | int | float):
            out[k] = v
    return out


def _vec(p) -> list[float]:
    return [float(x) for x in np.asarray(p, dtype=np.float64).reshape(-1)[:3]]


def make_sim(scene: str):
    sim_cfg = habitat_sim.SimulatorConfiguration()
    sim_cfg.scene_id = scene
    sim_cfg.enable_physics = False
    # One tiny depth sensor: habitat_sim.Simulator sets create_renderer = (any sensor), and
    # without a renderer 0.2.2 loads no stage geometry, so recompute_navmesh fails an ESP_CHECK
    # ("Scene geometry is required to recompute navmesh"). Depth needs no textures.
    depth = habitat_sim.CameraSensorSpec()
    depth.uuid = "depth"
    depth.sensor_type = habitat_sim.SensorType.DEPTH
    depth.resolution = [8, 8]
    agent_cfg = habitat_sim.agent.AgentConfiguration()
    agent_cfg.sensor_specifications = [depth]
    return habitat_sim.Simulator(habitat_sim.Configuration(sim_cfg, [agent_cfg]))


def geodesic(pf, a, b) -> dict:
    sa, sb = pf.snap_point(np.asarray(a, np.float32)), pf.snap_point(np.asarray(b, np.float32))
    rec = {"start": _vec(a), "end": _vec(b), "start_snapped": _vec(sa), "end_snapped": _vec(sb)}
    if not (np.all(np.isfinite(sa)) and np.all(np.isfinite(sb))):
        rec.update(found=False, geodesic=math.nan)
        return rec
    path = habitat_sim.ShortestPath()
    path.requested_start = sa
    path.requested_end = sb
    found = bool(pf.find_path(path))
    d = float(path.geodesic_distance)
    rec.update(found=found, geodesic=d if found and math.isfinite(d) else math.inf)
    return rec


def main(job_path: str) -> None:
    t0 = time.time()
    with open(job_path) as fh:
        job = json.load(fh)
    sim = make_sim(job["scene"])
    t_load = time.time() - t0

    ns = habitat_sim.NavMeshSettings()
    ns.set_defaults()
    defaults = _settings_dict(ns)
    for k in NAVMESH_KEYS:
        v = job.get("navmesh", {}).get(k)
        if v is not None:
            setattr(ns, k, float(v))
    used = _settings_dict(ns)
    t1 = time.time()
    ok = bool(sim.recompute_navmesh(sim.pathfinder, ns, include_static_objects=False))
    t_navmesh = time.time() - t1
    pf = sim.pathfinder
    res: dict = {
        "habitat_sim_version": getattr(habitat_sim, "__version__", "?"),
        "scene": job["scene"],
        "key": job.get("key"),
        "navmesh_defaults": defaults,
        "navmesh_used": used,
        "recompute_ok": ok,
        "is_loaded": bool(pf.is_loaded),
    }
    if not (ok and pf.is_loaded):
        res["error"] = "recompute_navmesh failed or no navmesh loaded"
        with open(job["out"], "w") as fh:
            json.dump(res, fh)
        sim.close()
        sys.exit(f"hsim_probe: {res['error']} ({job['scene']})")

    lo, hi = pf.get_bounds()
    res["navigable_area"] = float(pf.navigable_area)
    res["bounds"] = [_vec(lo), _vec(hi)]

    t2 = time.time()
    pts = np.asarray(job.get("points", []), dtype=np.float32).reshape(-1, 3)
    res["is_navigable"] = [bool(pf.is_navigable(p)) for p in pts]
    pairs = [geodesic(pf, a, b) for a, b in job.get("pairs", [])]
    rp = job.get("random_pairs") or {}
    rand = []
    if rp.get("n"):
        pf.seed(int(rp.get("seed", 0)))
        for _ in range(int(rp["n"])):
            a = pf.get_random_navigable_point()
            b = pf.get_random_navigable_point()
            rand.append(geodesic(pf, a, b))
    res["pairs"] = pairs
    res["random_pairs"] = rand
    t_queries = time.time() - t2

    td = job.get("topdown") or {}
    views = {}
    res["topdown"] = []
    for i, h in enumerate(td.get("heights", [])):
        view = np.asarray(pf.get_topdown_view(float(td["mpp"]), float(h)), dtype=bool)
        views[f"topdown_{i}"] = view
        res["topdown"].append({"height": float(h), "mpp": float(td["mpp"]), "shape": list(view.shape)})
    npz = job["out"].rsplit(".", 1)[0] + ".npz"
    np.savez_compressed(npz, **views)
    res["topdown_npz"] = npz
    if job.get("save_navmesh"):
        pf.save_nav_mesh(job["save_navmesh"])
    res["seconds"] = {
        "load": t_load,
        "recompute_navmesh": t_navmesh,
        "queries": t_queries,
        "total": time.time() - t0,
    }
    with open(job["out"], "w") as fh:
        json.dump(res, fh)
    sim.close()
    print(
        f"hsim_probe: {job['scene']}: area {res['navigable_area']:.3f} m^2, "
        f"{len(pts)} points, {len(pairs) + len(rand)} pairs, {res['seconds']['total']:.1f} s"
    )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for arg in sys.argv[1:]:
        main(arg)
