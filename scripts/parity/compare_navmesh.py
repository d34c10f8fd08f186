"""Compare FIHSim-v0's NavGrid with habitat-sim 0.2.2's Recast navmesh on the same scenes (host side).

For each scene (``scripts/parity/scenes.py``, world frame Y-up metres) this

1. writes the world-frame mesh as a Z-up ``.glb`` for habitat-sim (file (x, y, z) = (world_x,
   -world_z, world_y); habitat-sim loads a .glb without stage config as Z-up, world = (file_x,
   file_z, -file_y), so it sees exactly the world-frame mesh),
2. builds ``NavGrid.from_mesh`` from the same world-frame vertices,
3. writes a probe job (dense is_navigable grid at each floor level, named pairs, 100 seeded random
   pairs sampled on habitat-sim's navmesh, top-down views) and runs ``hsim_probe.py`` in the
   habitat-sim chroot through ``run.sh`` (skipped when a result for the identical job and .glb
   exists, unless ``--force-hsim``),
4. runs the same queries on the NavGrid, prints one table per scene, writes ``compare.json`` and a
   PNG per level (habitat-sim | FIHSim-v0 | difference) under ``<work-dir>/<scene>/``.

    .venv/bin/python scripts/parity/compare_navmesh.py [--scenes single_wall scan_like ...]
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenes import REPO, SCENE_NAMES, ParityScene, make_scene  # noqa: E402

NavGrid = None  # habitat_fih.sim.navigation.NavGrid, imported in main() (after --src is applied)


def import_fih(src: str | None):
    """Import NavGrid from the checkout, or from another copy of the package (``--src DIR``: a
    directory holding ``habitat_fih/``, e.g. ``git archive REV habitat_fih | tar -x -C DIR``).
    The editable install's import hook would win over sys.path, so it is dropped for ``--src``."""
    global NavGrid
    if src:
        sys.path.insert(0, str(Path(src).resolve()))
        sys.meta_path[:] = [
            f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")
        ]
    from habitat_fih.sim.navigation import NavGrid as cls

    NavGrid = cls
    return cls


# the project's VLN-CE agent; cell_height = habitat-sim 0.2.2 NavMeshSettings.set_defaults() value
AGENT = {
    "agent_radius": 0.1,
    "agent_height": 1.5,
    "agent_max_climb": 0.2,
    "agent_max_slope": 45.0,
    "cell_size": 0.05,
    "cell_height": 0.2,
}
GRID_SPACING = 0.1  # dense is_navigable grid (m)
GRID_OFFSET = 0.0123  # keeps grid points off cell / wall boundaries
TOPDOWN_MPP = 0.05
N_RANDOM_PAIRS = 100
PAIR_SEED = 0
DEFAULT_ROOT = "/tmp/fih-hsim"
DEFAULT_RUN_SH = "/work/shared/habitat-sim/run.sh"
CHROOT_PROJ = "/proj"


# ---------------------------------------------------------------------------- frames / files
def world_to_file(v: np.ndarray) -> np.ndarray:
    """World (Y-up) -> Z-up .glb file frame: (x, y, z) -> (x, -z, y)."""
    return np.stack([v[:, 0], -v[:, 2], v[:, 1]], axis=1)


def file_to_world(v: np.ndarray) -> np.ndarray:
    """How habitat-sim maps a Z-up .glb to its world: (x, y, z) -> (x, z, -y)."""
    return np.stack([v[:, 0], v[:, 2], -v[:, 1]], axis=1)


def write_glb(scene: ParityScene, path: Path) -> None:
    fv = world_to_file(scene.vertices)
    assert np.allclose(file_to_world(fv), scene.vertices)
    mesh = trimesh.Trimesh(vertices=fv, faces=scene.faces, process=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = mesh.export(file_type="glb")
    if not path.is_file() or path.read_bytes() != data:
        path.write_bytes(data)


def in_chroot(p: Path) -> str:
    return CHROOT_PROJ + "/" + str(p.resolve().relative_to(REPO))


# ---------------------------------------------------------------------------- queries
def dense_grid(scene: ParityScene) -> tuple[np.ndarray, tuple[int, int], np.ndarray]:
    """Query points ``[N, 3]`` and their kind ``[N]``: level ``i`` (the 0.1 m x-z grid at
    ``scene.levels[i]``), then ``-1``: the same x-z grid at every walkable-slope surface under it
    (down-ray hits on faces facing up within max_slope, each at its own height)."""
    lo, hi = scene.vertices.min(axis=0), scene.vertices.max(axis=0)
    xs = np.arange(lo[0] + GRID_OFFSET + 0.5 * GRID_SPACING, hi[0], GRID_SPACING)
    zs = np.arange(lo[2] + GRID_OFFSET + 0.5 * GRID_SPACING, hi[2], GRID_SPACING)
    gz, gx = np.meshgrid(zs, xs, indexing="ij")
    pts, kind = [], []
    for i, y in enumerate(scene.levels):
        pts.append(np.stack([gx.ravel(), np.full(gx.size, y), gz.ravel()], axis=1))
        kind.append(np.full(gx.size, i))
    surf = surface_points(scene, gx.ravel(), gz.ravel(), hi[1] + 1.0)
    pts.append(surf)
    kind.append(np.full(len(surf), -1))
    return np.concatenate(pts), (len(zs), len(xs)), np.concatenate(kind)


def surface_points(scene: ParityScene, x: np.ndarray, z: np.ndarray, top: float) -> np.ndarray:
    """Every walkable-slope surface point below (x, z) (all layers; 1 cm duplicates merged)."""
    mesh = trimesh.Trimesh(scene.vertices, scene.faces, process=False)
    origins = np.stack([x, np.full(len(x), top), z], axis=1)
    dirs = np.tile([0.0, -1.0, 0.0], (len(x), 1))
    loc, ray, tri = mesh.ray.intersects_location(origins, dirs, multiple_hits=True)
    ny = mesh.face_normals[tri, 1]
    ok = ny >= math.cos(math.radians(AGENT["agent_max_slope"])) - 1e-6
    loc, ray = loc[ok], ray[ok]
    order = np.lexsort((loc[:, 1], ray))
    loc, ray = loc[order], ray[order]
    keep = np.ones(len(loc), dtype=bool)
    keep[1:] = (ray[1:] != ray[:-1]) | (np.abs(loc[1:, 1] - loc[:-1, 1]) > 0.01)
    out = loc[keep]
    out[:, 0], out[:, 2] = x[ray[keep]], z[ray[keep]]  # exact grid x-z
    return out


def fih_geodesic(grid, a, b) -> dict:
    sa = np.asarray(grid.snap_point(np.asarray(a, np.float64)), np.float64)
    sb = np.asarray(grid.snap_point(np.asarray(b, np.float64)), np.float64)
    if not (np.all(np.isfinite(sa)) and np.all(np.isfinite(sb))):
        return {"start_snapped": sa.tolist(), "end_snapped": sb.tolist(), "geodesic": math.nan}
    d = float(grid.geodesic_distance(sa, [sb]))
    return {"start_snapped": sa.tolist(), "end_snapped": sb.tolist(), "geodesic": d}


def build_navgrid(scene: ParityScene):
    kw = dict(
        agent_height=AGENT["agent_height"],
        agent_radius=AGENT["agent_radius"],
        max_climb=AGENT["agent_max_climb"],
        max_slope=AGENT["agent_max_slope"],
        cell_size=AGENT["cell_size"],
        name=scene.name,
    )
    if "cell_height" in inspect.signature(NavGrid.from_mesh).parameters:
        kw["cell_height"] = AGENT["cell_height"]
    return NavGrid.from_mesh(scene.vertices, scene.faces, **kw)


def run_probe(job_path: Path, args) -> None:
    cmd = ["bash", args.run_sh, args.root, str(REPO), "python",
           "scripts/parity/hsim_probe.py", in_chroot(job_path)]
    print("  $", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.probe_timeout)
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
    if proc.returncode != 0:
        raise RuntimeError(f"hsim probe failed (rc {proc.returncode}):\n{tail}")
    print("  " + (proc.stdout.strip().splitlines() or ["(no output)"])[-1], flush=True)


# ---------------------------------------------------------------------------- pictures
def _place(canvas_shape, origin, view, lower, mpp):
    out = np.zeros(canvas_shape, dtype=bool)
    r0 = int(round((float(lower[2]) - origin[1]) / mpp))
    c0 = int(round((float(lower[0]) - origin[0]) / mpp))
    h, w = view.shape
    rs, cs = max(r0, 0), max(c0, 0)
    re, ce = min(r0 + h, canvas_shape[0]), min(c0 + w, canvas_shape[1])
    if re > rs and ce > cs:
        out[rs:re, cs:ce] = view[rs - r0 : re - r0, cs - c0 : ce - c0]
    return out


def _walls(scene: ParityScene, y: float) -> np.ndarray:
    """x-z edges ``[E, 2, 2]`` of the near-vertical triangles that cross [y + 0.05, y + 1.5]."""
    tri = scene.vertices[scene.faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    ylo, yhi = tri[:, :, 1].min(1), tri[:, :, 1].max(1)
    sel = (np.abs(n[:, 1]) < 0.2) & (yhi > y + 0.05) & (ylo < y + AGENT["agent_height"])
    t = tri[sel][:, :, [0, 2]]
    return np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])


def fine_grid(scene: ParityScene, y: float) -> tuple[np.ndarray, tuple[int, int], tuple[float, float]]:
    """Points ``[H * W, 3]`` every TOPDOWN_MPP over the mesh's x-z bounds at height ``y``, offset
    by GRID_OFFSET: the difference picture is both sides' is_navigable at these points.

    The top-down views themselves sample pixel corners (``min + w * mpp``) that here fall exactly
    on FIH's cell boundaries and on habitat's polygon edges, which paints one-pixel slivers along
    every edge; offset points do not sit on them.
    """
    lo, hi = scene.vertices.min(axis=0), scene.vertices.max(axis=0)
    xs = lo[0] + GRID_OFFSET + np.arange(int((hi[0] - lo[0]) / TOPDOWN_MPP)) * TOPDOWN_MPP
    zs = lo[2] + GRID_OFFSET + np.arange(int((hi[2] - lo[2]) / TOPDOWN_MPP)) * TOPDOWN_MPP
    gz, gx = np.meshgrid(zs, xs, indexing="ij")
    pts = np.stack([gx.ravel(), np.full(gx.size, y), gz.ravel()], axis=1)
    return pts, gx.shape, (float(xs[0]), float(zs[0]))


def save_png(
    path: Path, scene: ParityScene, y: float, hview, hbounds, fview, fbounds, diff
) -> dict:
    """``diff = (hsim [H, W], fih [H, W], (x0, z0))``: both sides' is_navigable on the fine grid."""
    mpp = TOPDOWN_MPP
    lo = np.minimum(np.asarray(hbounds[0]), np.asarray(fbounds[0]))
    hi = np.maximum(np.asarray(hbounds[1]), np.asarray(fbounds[1]))
    vlo, vhi = scene.vertices.min(axis=0), scene.vertices.max(axis=0)
    lo = np.minimum(lo, vlo) - 0.2
    hi = np.maximum(hi, vhi) + 0.2
    origin = (float(lo[0]), float(lo[2]))
    shape = (int(math.ceil((hi[2] - lo[2]) / mpp)), int(math.ceil((hi[0] - lo[0]) / mpp)))
    H = _place(shape, origin, hview, hbounds[0], mpp)
    F = _place(shape, origin, fview, fbounds[0], mpp)
    dh, df, (dx0, dz0) = diff
    DH = _place(shape, origin, dh, (dx0, 0.0, dz0), mpp)
    DF = _place(shape, origin, df, (dx0, 0.0, dz0), mpp)
    s = max(2, int(800 // max(shape)))  # pixels per top-down pixel
    panels = []
    edges = _walls(scene, y)
    for title, img in (
        ("habitat-sim 0.2.2", np.where(H[..., None], 235, 40).astype(np.uint8).repeat(3, 2)),
        ("FIHSim-v0 NavGrid", np.where(F[..., None], 235, 40).astype(np.uint8).repeat(3, 2)),
        (f"is_navigable diff ({mpp} m grid): grey both, red hsim-only, blue FIH-only", None),
    ):
        if img is None:  # BGR
            img = np.full(shape + (3,), 40, np.uint8)
            img[DH & DF] = (150, 150, 150)
            img[DH & ~DF] = (40, 40, 230)
            img[DF & ~DH] = (230, 120, 30)
        img = cv2.resize(img, (shape[1] * s, shape[0] * s), interpolation=cv2.INTER_NEAREST)
        if len(edges):
            px = ((edges - np.array(origin)) / mpp * s).round().astype(np.int32)
            cv2.polylines(img, list(px), False, (0, 200, 255), 1)
        bar = np.full((28, img.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, title, (4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(np.concatenate([bar, img], axis=0))
        panels.append(np.full((panels[-1].shape[0], 6, 3), 255, np.uint8))
    out = np.concatenate(panels[:-1], axis=1)
    foot = np.full((24, out.shape[1], 3), 255, np.uint8)
    cv2.putText(
        foot,
        f"{scene.name}  y={y:g}  {mpp} m/px  x right, z down, origin ({origin[0]:.2f}, {origin[1]:.2f}); "
        "orange: walls (near-vertical faces)",
        (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA,
    )
    cv2.imwrite(str(path), np.concatenate([out, foot], axis=0))
    return {"both": int((DH & DF).sum()), "hsim_only": int((DH & ~DF).sum()),
            "fih_only": int((DF & ~DH).sum())}


# ---------------------------------------------------------------------------- one scene
def compare_scene(name: str, args) -> dict:
    scene = make_scene(name)
    wd = Path(args.work_dir) / name
    wd.mkdir(parents=True, exist_ok=True)
    glb = wd / f"{name}.glb"
    write_glb(scene, glb)

    t0 = time.time()
    grid = build_navgrid(scene)
    t_fih_build = time.time() - t0

    pts, gshape, lev = dense_grid(scene)
    fine = [fine_grid(scene, y) for y in scene.levels]  # kind -2 - i
    pts = np.concatenate([pts] + [f[0] for f in fine])
    lev = np.concatenate([lev] + [np.full(len(f[0]), -2 - i) for i, f in enumerate(fine)])
    named = list(scene.named_pairs.items())
    job = {
        "scene": in_chroot(glb),
        "out": in_chroot(wd / "hsim_result.json"),
        "navmesh": AGENT,
        "points": pts.tolist(),
        "pairs": [[a, b] for _, (a, b) in named],
        "random_pairs": {"n": N_RANDOM_PAIRS, "seed": PAIR_SEED},
        "topdown": {"mpp": TOPDOWN_MPP, "heights": list(scene.levels)},
        "save_navmesh": in_chroot(wd / f"{name}.navmesh"),
    }
    key = hashlib.sha1(glb.read_bytes() + json.dumps(job, sort_keys=True).encode()).hexdigest()
    job["key"] = key
    job_path = wd / "job.json"
    job_path.write_text(json.dumps(job))
    res_path = wd / "hsim_result.json"
    cached = False
    if res_path.is_file() and not args.force_hsim:
        try:
            cached = json.loads(res_path.read_text()).get("key") == key
        except json.JSONDecodeError:
            cached = False
    if cached:
        print(f"  habitat-sim: reusing {res_path} (same job and .glb)")
    else:
        run_probe(job_path, args)
    hs = json.loads(res_path.read_text())
    if hs.get("key") != key:
        raise RuntimeError(f"{res_path} is not the result of this job")
    hviews = np.load(wd / "hsim_result.npz")

    # --- is_navigable on the dense grid
    t1 = time.time()
    h_nav = np.asarray(hs["is_navigable"], dtype=bool)
    f_nav = np.array([grid.is_navigable(p) for p in pts], dtype=bool)
    def agreement(m, **extra):
        return {**extra, "n": int(m.sum()),
                "agree": float(np.mean(h_nav[m] == f_nav[m])),
                "fih_only": float(np.mean(f_nav[m] & ~h_nav[m])),
                "hsim_only": float(np.mean(h_nav[m] & ~f_nav[m])),
                "fih_nav": float(np.mean(f_nav[m])), "hsim_nav": float(np.mean(h_nav[m]))}

    per_level = [agreement(lev == i, y=y) for i, y in enumerate(scene.levels)]
    surface = agreement(lev == -1)

    # --- geodesics
    def pair_stats(recs):
        rows = []
        for r in recs:
            f = fih_geodesic(grid, r["start"], r["end"])
            rows.append({"start": r["start"], "end": r["end"], "hsim": r["geodesic"],
                         "fih": f["geodesic"], "hsim_snapped": [r["start_snapped"], r["end_snapped"]],
                         "fih_snapped": [f["start_snapped"], f["end_snapped"]]})
        return rows

    rand = pair_stats(hs["random_pairs"])
    named_rows = pair_stats(hs["pairs"])
    g_h = np.array([r["hsim"] for r in rand], dtype=np.float64)
    g_f = np.array([r["fih"] for r in rand], dtype=np.float64)
    both = np.isfinite(g_h) & np.isfinite(g_f)
    rel = np.abs(g_f[both] - g_h[both]) / np.maximum(g_h[both], 1e-6)
    t_fih_queries = time.time() - t1

    # --- top-down views
    pngs, td = [], []
    flo, fhi = grid.get_bounds()
    for i, y in enumerate(scene.levels):
        hview = np.asarray(hviews[f"topdown_{i}"], dtype=bool)
        fview = np.asarray(grid.get_topdown_view(TOPDOWN_MPP, y), dtype=bool)
        png = wd / f"{name}_topdown_y{y:g}{'_' + args.tag if args.tag else ''}.png"
        m = lev == -2 - i
        diff = (h_nav[m].reshape(fine[i][1]), f_nav[m].reshape(fine[i][1]), fine[i][2])
        td.append(save_png(png, scene, y, hview, hs["bounds"], fview, (flo, fhi), diff))
        pngs.append(str(png))

    out = {
        "scene": name,
        "note": scene.note,
        "agent": AGENT,
        "hsim_navmesh_defaults": hs["navmesh_defaults"],
        "hsim_navmesh_used": hs["navmesh_used"],
        "area": {"fih": grid.num_nodes * grid.cell_size**2, "hsim": hs["navigable_area"]},
        "bounds": {"fih": [np.asarray(flo).tolist(), np.asarray(fhi).tolist()], "hsim": hs["bounds"]},
        "fih_islands": len(grid.island_sizes),
        "grid": {"spacing": GRID_SPACING, "shape": gshape,
                 **agreement(lev >= 0), "levels": per_level, "surface": surface},
        "geodesic": {
            "n": len(rand), "finite_both": int(both.sum()),
            "median_rel": float(np.median(rel)) if len(rel) else math.nan,
            "max_rel": float(np.max(rel)) if len(rel) else math.nan,
            "fih_only_finite": int(np.sum(np.isfinite(g_f) & ~np.isfinite(g_h))),
            "hsim_only_finite": int(np.sum(np.isfinite(g_h) & ~np.isfinite(g_f))),
            "neither_finite": int(np.sum(~np.isfinite(g_f) & ~np.isfinite(g_h))),
            "pairs": rand,
        },
        "named_pairs": {n: r for (n, _), r in zip(named, named_rows, strict=True)},
        "known": scene.known,
        "topdown": {"pngs": pngs, "pixels": td},
        "seconds": {"fih_build": t_fih_build, "fih_queries": t_fih_queries,
                    "hsim": hs.get("seconds", {}).get("total", math.nan), "hsim_cached": cached},
    }
    out["navigation"] = sys.modules[NavGrid.__module__].__file__
    (wd / f"compare{'_' + args.tag if args.tag else ''}.json").write_text(json.dumps(out, indent=1))
    print_table(out)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def print_table(r: dict) -> None:
    g, geo = r["grid"], r["geodesic"]
    rows = [
        ("navigable area (m^2)", f"{r['area']['fih']:.2f}", f"{r['area']['hsim']:.2f}"),
        (f"dense grid: {g['shape'][1]} x {g['shape'][0]} points ({g['spacing']} m) x "
         f"{len(g['levels'])} level(s)", str(g["n"]), ""),
        ("is_navigable agreement", _pct(g["agree"]), ""),
        ("  navigable in FIH only", _pct(g["fih_only"]), ""),
        ("  navigable in hsim only", "", _pct(g["hsim_only"])),
    ]
    for lv in g["levels"] if len(g["levels"]) > 1 else []:
        rows.append((f"  y={lv['y']:g}: agree / FIH-only / hsim-only",
                     f"{_pct(lv['agree'])} / {_pct(lv['fih_only'])} / {_pct(lv['hsim_only'])}", ""))
    sf = g["surface"]
    rows += [
        (f"surface grid: {sf['n']} points at surface heights", "", ""),
        ("  agree / FIH-only / hsim-only",
         f"{_pct(sf['agree'])} / {_pct(sf['fih_only'])} / {_pct(sf['hsim_only'])}", ""),
        (f"geodesic pairs (random, seed {PAIR_SEED})", str(geo["n"]), ""),
        ("  finite in both", str(geo["finite_both"]), ""),
        ("  median rel. difference", _pct(geo["median_rel"]) if geo["finite_both"] else "-", ""),
        ("  max rel. difference", _pct(geo["max_rel"]) if geo["finite_both"] else "-", ""),
        ("  finite in one only", str(geo["fih_only_finite"]), str(geo["hsim_only_finite"])),
        ("  finite in neither", str(geo["neither_finite"]), ""),
    ]
    for n, p in r["named_pairs"].items():
        rows.append((f"named pair {n} (m)", f"{p['fih']:.2f}", f"{p['hsim']:.2f}"))
    for k, v in r["known"].items():
        got = (r["area"]["hsim"] if k == "navigable_area"
               else r["named_pairs"].get(k.replace("_geodesic", ""), {}).get("hsim", math.nan))
        ok = "OK" if abs(got - v) <= 0.01 * abs(v) + 0.01 else "MISMATCH"
        rows.append((f"known hsim {k}", "", f"{v:g} -> {got:.2f} {ok}"))
    s = r["seconds"]
    rows.append(("seconds (FIH build+queries / hsim probe)",
                 f"{s['fih_build']:.1f}+{s['fih_queries']:.1f}",
                 f"{s['hsim']:.1f}" + (" (cached)" if s["hsim_cached"] else "")))
    w0 = max(len(a) for a, _, _ in rows)
    w1 = max(max(len(b) for _, b, _ in rows), len("FIHSim-v0"))
    print(f"\n== {r['scene']} ==" + (f"  ({r['note']})" if r["note"] else ""))
    print(f"{'':<{w0}}  {'FIHSim-v0':<{w1}}  habitat-sim")
    for a, b, c in rows:
        print(f"{a:<{w0}}  {b:<{w1}}  {c}")
    print("PNG: " + ", ".join(r["topdown"]["pngs"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="+", default=list(SCENE_NAMES), choices=SCENE_NAMES)
    ap.add_argument("--work-dir", default=str(REPO / "outputs" / "parity"))
    ap.add_argument("--root", default=DEFAULT_ROOT, help="habitat-sim chroot made by setup.sh")
    ap.add_argument("--run-sh", default=DEFAULT_RUN_SH)
    ap.add_argument("--force-hsim", action="store_true", help="rerun the probe even if cached")
    ap.add_argument("--probe-timeout", type=float, default=600.0)
    ap.add_argument("--src", metavar="DIR", default=None,
                    help="import habitat_fih from DIR/habitat_fih instead of the checkout")
    ap.add_argument("--tag", default="", help="suffix for compare.json / PNG names (e.g. 'head')")
    args = ap.parse_args(argv)
    import_fih(args.src)
    print(f"FIHSim-v0 NavGrid from {sys.modules[NavGrid.__module__].__file__}")
    wd = Path(args.work_dir).resolve()
    if not wd.is_relative_to(REPO):
        ap.error(f"--work-dir must lie inside the checkout {REPO} (the chroot sees it as /proj)")
    args.work_dir = str(wd)
    summary = []
    for name in args.scenes:
        print(f"[{name}]", flush=True)
        summary.append(compare_scene(name, args))
    defaults = summary[0]["hsim_navmesh_defaults"]
    print("\nhabitat-sim NavMeshSettings.set_defaults():",
          ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in sorted(defaults.items())))
    if abs(defaults.get("cell_height", AGENT["cell_height"]) - AGENT["cell_height"]) > 1e-6:
        print(f"WARNING: cell_height passed ({AGENT['cell_height']}) is not habitat-sim's default "
              f"({defaults['cell_height']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
