"""Navigability benchmark: NavGrid build time and peak memory per scene, on one core, plus the
first distance field per goal and habitat.Env steps/s with and without TopDownMap.

    python benchmarks/bench_navmesh.py [--scenes house,house20,plane200,scan,env] [--quick]
        [--max-rss-gb 6] [--timeout-s 1800] [--goals 5] [--steps 200] [--json out.json]

Scenes (benchmarks/navmesh_scenes.py): ``house`` = bundled house_000.glb, ``house20`` = the 20 m
test house (4 x 4 rooms, closed boxes), ``plane200`` = a 200 x 200 m plane of 2,048 triangles,
``scan`` = a ~125 x 120 m, ~125k-triangle scan-like scene (noisy floor, single-sided walls,
furniture, platform, ramp, stairs); ``env`` = the habitat.Env rows (benchmark/nav/
fih_vlnce_synthetic on house_000, RGB 224^2 + depth 256^2, random forward/turn actions).

Every scene runs in a fresh ``python -c`` child pinned to CPU 0 with OMP / OpenBLAS / MKL / numba
at 1 thread and its memory capped (RLIMIT_DATA, ``--max-rss-gb``; a blow-up reports 'out of
memory'). In the child: import numpy / trimesh / embreex / habitat_fih.sim.navigation, generate
the mesh, build a tiny 2 x 2 m plane once (JIT compilation, lazy imports: the 'warm-up' row),
then ``baseline`` = VmRSS (after gc + malloc_trim), the peak RSS is reset (/proc/self/clear_refs)
and ``peak`` = VmHWM after ``NavGrid.from_mesh`` (ru_maxrss where the reset is not possible);
'build' = peak - baseline, 'kept' = RSS after the build - baseline (mostly the NavGrid itself).
Query time = the first ``geodesic_distance(start, [goal])`` to each of ``--goals`` new goals
from a start about 10 m away (a bounded field, as episodes use it); field time = the first
``distance_field(goal)`` (the whole island) of each of ``--goals`` random navigable goals
(largest island), the build excluded. ``--quick``: scenes house, house20, env; 2 goals, 50 steps.
Prints one table (scenes as columns; the habitat.Env rows under ``house``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENES = ("house", "house20", "plane200", "scan")
ALL = (*SCENES, "env")
ALIASES = {"1": "house", "2": "house20", "3": "plane200", "4": "scan"}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
# FIHSim-v0's agent (benchmark/nav/fih_vlnce_synthetic: habitat's defaults, radius 0.1) at 5 cm
NAV_KW = {"agent_height": 1.5, "agent_radius": 0.1, "max_climb": 0.2, "max_slope": 45.0}


# ------------------------------------------------------------------------------ child process
def _proc_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _settle() -> int:
    """Collect garbage, hand freed heap back to the OS, return VmRSS (kB)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return _proc_kb("VmRSS")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def _pin(spec: dict) -> None:
    import resource

    for var in THREAD_VARS:
        os.environ[var] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    if spec["max_bytes"] > 0:
        resource.setrlimit(resource.RLIMIT_DATA, (spec["max_bytes"], spec["max_bytes"]))


def _goals(nav, n: int, seed: int):
    """``n`` random navigable points on the largest island (NavGrid's default)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [np.asarray(nav.sample_navigable_point(rng), dtype=np.float64) for _ in range(n)]


def _child_scene(spec: dict, out: dict, save) -> None:
    # the baseline's imports (navmesh_scenes: benchmarks/, on sys.path in the child)
    import navmesh_scenes
    import numpy  # noqa: F401
    import trimesh  # noqa: F401
    from embreex import rtcore_scene  # noqa: F401

    from habitat_fih.sim import navigation
    from habitat_fih.sim.navigation import NavGrid

    out["navigation"] = navigation.__file__  # which code was measured

    kw = {**NAV_KW, "cell_size": spec["cell_size"]}
    vertices, faces = navmesh_scenes.make_scene(spec["scene"])
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    out.update(
        triangles=len(faces), bbox=(hi - lo).tolist(), bbox_lo=lo.tolist(), bbox_hi=hi.tolist()
    )
    save()
    tiny_v, tiny_f = navmesh_scenes.flat_plane(2.0, 2)
    t0 = time.perf_counter()
    NavGrid.from_mesh(tiny_v, tiny_f, **kw, name="warm-up")
    out["warmup_s"] = time.perf_counter() - t0
    out["baseline_kb"] = _settle()
    reset = _reset_peak()
    save()
    t0 = time.perf_counter()
    nav = NavGrid.from_mesh(vertices, faces, **kw, name=spec["scene"])
    out["build_s"] = time.perf_counter() - t0
    out["peak_kb"] = _proc_kb("VmHWM") if reset else _maxrss_kb()
    out["peak_source"] = "VmHWM" if reset else "ru_maxrss"
    out["kept_kb"] = _settle()
    n = int(nav.num_nodes)
    out.update(nodes=n, islands=len(nav.island_sizes), area_m2=n * spec["cell_size"] ** 2)
    save()
    # a query as an episode makes it: a start ~10 m from a new goal (geodesic_distance computes
    # a field bounded to the square the query needs and grows it on demand)
    out["query_s"] = []
    starts = _goals(nav, 40 * spec["goals"], seed=1)
    for goal in _goals(nav, spec["goals"], seed=2):
        import numpy as np

        dist = [abs(float(np.hypot(*(s - goal)[[0, 2]])) - 10.0) for s in starts]
        start = starts[int(np.argmin(dist))]
        t0 = time.perf_counter()
        nav.geodesic_distance(start, [goal])
        out["query_s"].append(time.perf_counter() - t0)
        save()
    out["field_s"] = []
    for goal in _goals(nav, spec["goals"], seed=0):
        t0 = time.perf_counter()
        nav.distance_field(goal)
        out["field_s"].append(time.perf_counter() - t0)
        out["field_peak_kb"] = _proc_kb("VmHWM") if reset else _maxrss_kb()
        save()  # a timeout keeps the fields done so far


def _maxrss_kb() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # kB on Linux


def _child_env(spec: dict, out: dict, save) -> None:
    import numpy as np

    import habitat_fih  # noqa: F401  (compat before habitat)

    # isort: split
    from habitat import Env

    from habitat_fih.config import get_config

    os.chdir(ROOT)  # the config's data paths are relative to the repository
    overrides = [
        "habitat.dataset.content_scenes=[house_000]",
        "habitat.environment.max_episode_steps=100000",
    ]
    if not spec["top_down_map"]:
        overrides.append("~habitat.task.measurements.top_down_map")
    cfg = get_config("benchmark/nav/fih_vlnce_synthetic", overrides)
    out["has_top_down_map"] = "top_down_map" in cfg.habitat.task.measurements
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    with Env(config=cfg) as env:
        out["init_s"] = time.perf_counter() - t0  # dataset, simulator, scene load + NavGrid build
        t0 = time.perf_counter()
        env.reset()
        out["reset_s"] = time.perf_counter() - t0  # first frame, measures (TopDownMap's map)
        out["scene"] = os.path.basename(env.current_episode.scene_id)
        for _ in range(5):  # warm-up (the goal's geodesic field, caches)
            env.step(int(rng.integers(1, 4)))
        resets = 0
        t0 = time.perf_counter()
        for _ in range(spec["steps"]):
            if env.episode_over:
                env.reset()
                resets += 1
            env.step(int(rng.choice([1, 1, 2, 3])))
        out["steps_s"] = time.perf_counter() - t0
    out.update(steps=spec["steps"], resets=resets)


def _child(spec_path: str, out_path: str) -> None:
    """Entry point of a child (``python -c``): runs one job, writes its results as it goes."""
    spec = json.loads(Path(spec_path).read_text())
    _pin(spec)
    sys.path.insert(0, str(HERE))
    out: dict = {"status": "running"}

    def save() -> None:
        tmp = out_path + ".tmp"
        Path(tmp).write_text(json.dumps(out))
        os.replace(tmp, out_path)

    try:
        (_child_env if spec["scene"] == "env" else _child_scene)(spec, out, save)
        out["status"] = "ok"
    except MemoryError:
        out["status"] = "out of memory"
    except Exception as exc:  # reported in the table, the other scenes go on
        out["status"] = f"error: {type(exc).__name__}: {exc}"[:200]
    save()


# ------------------------------------------------------------------------------ parent
def run_child(spec: dict, timeout_s: float) -> dict:
    """Run one job in a fresh interpreter; its results, with ``status`` saying how it ended."""
    env = {**os.environ, **dict.fromkeys(THREAD_VARS, "1")}
    with tempfile.TemporaryDirectory(prefix="bench_navmesh_") as tmp:
        spec_path, out_path = os.path.join(tmp, "spec.json"), os.path.join(tmp, "out.json")
        Path(spec_path).write_text(json.dumps(spec))
        code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import bench_navmesh; bench_navmesh._child(*sys.argv[1:])"
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, "-c", code, spec_path, out_path],
                env=env,
                cwd=str(ROOT),
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
            rc, err = proc.returncode, proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc, err = (
                None,
                exc.stderr.decode(errors="replace")
                if isinstance(exc.stderr, bytes)
                else exc.stderr or "",
            )
        wall = time.perf_counter() - t0
        out = json.loads(Path(out_path).read_text()) if os.path.isfile(out_path) else {}
    out["wall_s"] = wall
    if rc is None:
        out["status"] = f"timeout ({timeout_s:.0f} s)"
    elif out.get("status") in (None, "running"):
        oom = rc in (-9, 137) or any(
            s in err for s in ("MemoryError", "bad_alloc", "Cannot allocate", "out of memory")
        )
        out["status"] = "out of memory" if oom else f"failed (rc {rc})"
        out["stderr_tail"] = err.strip().splitlines()[-3:]
    return out


def _fmt(value, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def _mb(kb) -> float | None:
    return None if kb is None else kb / 1024


def table(results: dict[str, dict], env_rows: dict[str, dict], args) -> str:
    cols = [s for s in SCENES if s in results]
    if env_rows and "house" not in cols:
        cols.insert(0, "house")
    w0, w = 46, 16
    lines = [f"{'measure':<{w0}}" + "".join(f"{c:>{w}}" for c in cols)]

    def row(label: str, cell) -> None:
        lines.append(f"{label:<{w0}}" + "".join(f"{cell(results.get(c, {})):>{w}}" for c in cols))

    def diff(r, a, b):
        return None if r.get(a) is None or r.get(b) is None else (r[a] - r[b]) / 1024

    row("status", lambda r: r.get("status", "-")[: w - 1] if r else "-")
    row("triangles", lambda r: _fmt(r.get("triangles")))
    row(
        "bounding box x * y * z (m)",
        lambda r: "x".join(f"{v:.1f}" for v in r["bbox"]) if "bbox" in r else "-",
    )
    row("warm-up build, 2 x 2 m plane (s)", lambda r: _fmt(r.get("warmup_s"), ".3f"))
    row("NavGrid.from_mesh build (s)", lambda r: _fmt(r.get("build_s"), ".2f"))
    row("RSS baseline: imports + mesh (MB)", lambda r: _fmt(_mb(r.get("baseline_kb"))))
    row("RSS peak during the build (MB)", lambda r: _fmt(_mb(r.get("peak_kb"))))
    row("  build = peak - baseline (MB)", lambda r: _fmt(diff(r, "peak_kb", "baseline_kb")))
    row("  kept after the build - baseline (MB)", lambda r: _fmt(diff(r, "kept_kb", "baseline_kb")))
    row("navigable nodes", lambda r: _fmt(r.get("nodes")))
    row("islands", lambda r: _fmt(r.get("islands")))
    row("navigable area = nodes * cell^2 (m^2)", lambda r: _fmt(r.get("area_m2"), ",.1f"))

    def fields(r, reduce, key="field_s") -> str:
        done = r.get(key) or []
        if not done:
            return "-"
        cell = _fmt(1000 * reduce(done), ",.0f")
        return cell if len(done) == args.goals else f"{cell} ({len(done)}/{args.goals})"

    row(
        f"geodesic to a new goal ~10 m away, mean of {args.goals} (ms)",
        lambda r: fields(r, lambda d: sum(d) / len(d), key="query_s"),
    )
    row(
        f"first distance_field (whole island), mean of {args.goals} goals (ms)",
        lambda r: fields(r, lambda d: sum(d) / len(d)),
    )
    row("  max (ms)", lambda r: fields(r, max))
    row(
        "  RSS peak incl. the fields - baseline (MB)",
        lambda r: _fmt(diff(r, "field_peak_kb", "baseline_kb")),
    )
    for key, label in (("with", "with TopDownMap"), ("without", "without TopDownMap")):
        if key not in env_rows:
            continue
        r = env_rows[key]
        ok = r.get("status") == "ok"
        sps = f"{r['steps'] / r['steps_s']:.1f}" if ok else r.get("status", "-")[: w - 1]
        lines.append(
            f"{f'habitat.Env steps/s, {label}':<{w0}}"
            + "".join(f"{sps if c == 'house' else '-':>{w}}" for c in cols)
        )
        for k, text in (("init_s", "habitat.Env(): scene + NavGrid"), ("reset_s", "first reset")):
            if ok:
                lines.append(
                    f"{f'  {text} (s)':<{w0}}"
                    + "".join(f"{format(r[k], '.2f') if c == 'house' else '-':>{w}}" for c in cols)
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenes",
        default=None,
        help=f"comma-separated subset of {','.join(ALL)} (or 1-4); default all, --quick: house,house20,env",
    )
    parser.add_argument(
        "--quick", action="store_true", help="2 goals, 50 env steps, scenes house,house20,env"
    )
    parser.add_argument(
        "--goals", type=int, default=None, help="random goals per scene (default 5, --quick 2)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="habitat.Env steps per row (default 200, --quick 50)",
    )
    parser.add_argument("--cell-size", type=float, default=0.05)
    parser.add_argument(
        "--max-rss-gb",
        type=float,
        default=6.0,
        help="memory cap of each child (RLIMIT_DATA: allocated, not only resident, memory); 0 = none",
    )
    parser.add_argument(
        "--timeout-s", type=float, default=1800.0, help="wall-clock limit of each child"
    )
    parser.add_argument("--json", default=None, help="also write the raw results here")
    args = parser.parse_args()
    names = (
        args.scenes.split(",")
        if args.scenes
        else (["house", "house20", "env"] if args.quick else list(ALL))
    )
    names = [ALIASES.get(n.strip(), n.strip()) for n in names if n.strip()]
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        parser.error(f"unknown scenes {unknown}; choose from {','.join(ALL)}")
    args.goals = args.goals if args.goals is not None else (2 if args.quick else 5)
    args.steps = args.steps if args.steps is not None else (50 if args.quick else 200)

    from tqdm import tqdm

    base = {
        "cell_size": args.cell_size,
        "goals": args.goals,
        "steps": args.steps,
        "max_bytes": int(args.max_rss_gb * (1 << 30)),
    }
    jobs = [(n, {**base, "scene": n}) for n in SCENES if n in names]
    if "env" in names:
        jobs += [
            (f"env {k}", {**base, "scene": "env", "top_down_map": k == "with"})
            for k in ("with", "without")
        ]
    results: dict[str, dict] = {}
    env_rows: dict[str, dict] = {}
    for label, spec in (bar := tqdm(jobs, desc="bench_navmesh", unit="run")):
        bar.set_postfix_str(label)
        out = run_child(spec, args.timeout_s)
        if spec["scene"] == "env":
            env_rows[label.split()[1]] = out
        else:
            results[label] = out
        if out.get("status") != "ok":
            tqdm.write(f"{label}: {out.get('status')} {out.get('stderr_tail', '')}")
    print(
        f"\ncell {args.cell_size} m, agent radius {NAV_KW['agent_radius']} m / height {NAV_KW['agent_height']} m, "
        f"1 core per run, memory cap {args.max_rss_gb:g} GB; {args.goals} goals; {args.steps} env steps "
        f"(RGB 224x224 + depth 256x256)"
    )
    modules = sorted({r["navigation"] for r in results.values() if "navigation" in r})
    print(f"navigation code measured: {', '.join(modules) or '-'}")
    print(table(results, env_rows, args))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"args": vars(args), "scenes": results, "env": env_rows}, indent=1)
        )


if __name__ == "__main__":
    main()
