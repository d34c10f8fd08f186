"""The habitat-sim import compatibility layer, with and without a real habitat_sim present.

Each case runs in a fresh interpreter so the import state of the test process does not leak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path


def _run(code: str, extra_path: Path | None = None) -> dict:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code).replace("COMPAT_LOADER", _COMPAT_LOADER)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_habitat_imports_without_habitat_sim_and_sim_v0_fails_clearly():
    out = _run(
        """
        import json
        import habitat_fih
        import habitat, habitat_baselines
        import habitat.tasks.nav.shortest_path_follower
        import habitat_sim
        from habitat.core.registry import registry
        from habitat_fih.compat import HabitatSimUnavailableError, is_stand_in, stand_in_roots
        sim_cls = registry.get_simulator("Sim-v0")
        try:
            sim_cls(None)
            err = None
        except HabitatSimUnavailableError as e:
            err = str(e)
        print(json.dumps({
            "roots": list(stand_in_roots()),
            "err": err,
            "vln": registry.get_task("VLN-v0").__name__,
            "r2r": registry.get_dataset("R2RVLN-v1").__name__,
            "greedy_is_exc": issubclass(habitat_sim.errors.GreedyFollowerError, Exception),
            "module_is_stand_in": is_stand_in(habitat_sim),
            "sim_cls_is_stand_in": is_stand_in(sim_cls),
            "profiling_fallback": __import__("habitat.utils.profiling_wrapper", fromlist=["x"]).profiling_utils is None,
        }))
        """
    )
    assert out["roots"] == ["magnum", "corrade", "habitat_sim"]
    assert out["err"] is not None and "FIHSim-v0" in out["err"] and "conda" in out["err"]
    assert out["vln"] == "VLNTask" and out["r2r"] == "VLNDatasetV1"
    assert out["greedy_is_exc"] and out["module_is_stand_in"]
    # optional modules habitat guards with try/except stay absent, so habitat uses its no-op
    assert out["profiling_fallback"]
    # HabitatSim is habitat-lab's real class deriving from a stand-in base, not a stand-in itself.
    assert not out["sim_cls_is_stand_in"]


def test_runtime_use_of_a_stand_in_raises_but_import_time_constants_do_not():
    out = _run(
        """
        import json
        import habitat_fih
        import magnum as mn
        from habitat_fih.compat import HabitatSimUnavailableError
        CONST = mn.Vector3.zero_init()  # module level: inert placeholder
        def runtime():
            return mn.Vector3(1.0, 2.0, 3.0)
        try:
            runtime()
            raised = False
        except HabitatSimUnavailableError:
            raised = True
        print(json.dumps({"raised": raised, "const_type": type(CONST).__qualname__}))
        """
    )
    assert out["raised"]
    assert out["const_type"] == "Vector3.zero_init"


# Loads habitat_fih/compat/__init__.py without running habitat_fih/__init__.py (which imports habitat).
_COMPAT_LOADER = (
    "import importlib.util, habitat_fih_compat_path as _p; "
    "_s = importlib.util.spec_from_file_location('fih_compat', _p.PATH); "
    "_m = importlib.util.module_from_spec(_s); _s.loader.exec_module(_m); "
    "install, stand_in_roots = _m.install, _m.stand_in_roots"
)


def _fake_package(root: Path, name: str) -> None:
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("REAL_MARKER = 'fake-real'\n")


def _compat_path_module(root: Path) -> None:
    import habitat_fih.compat

    (root / "habitat_fih_compat_path.py").write_text(f"PATH = {habitat_fih.compat.__file__!r}\n")


def test_nothing_is_replaced_when_real_habitat_sim_is_importable(tmp_path):
    for name in ("habitat_sim", "magnum", "corrade"):
        _fake_package(tmp_path, name)
    _compat_path_module(tmp_path)
    # habitat-lab cannot import against these empty fake packages, so this runs the first thing
    # ``import habitat_fih`` does (compat.install()), loading the compat module on its own.
    out = _run(
        """
        import json
        COMPAT_LOADER
        install()
        import habitat_sim, magnum
        print(json.dumps({
            "roots": list(stand_in_roots()),
            "marker": habitat_sim.REAL_MARKER,
            "file": habitat_sim.__file__,
            "mn": magnum.REAL_MARKER,
        }))
        """,
        extra_path=tmp_path,
    )
    assert out["roots"] == []
    assert out["marker"] == "fake-real" and out["mn"] == "fake-real"
    assert out["file"].startswith(str(tmp_path))


def test_only_missing_roots_are_served(tmp_path):
    _fake_package(tmp_path, "magnum")
    _compat_path_module(tmp_path)
    out = _run(
        """
        import json
        COMPAT_LOADER
        install()
        import magnum
        print(json.dumps({"roots": list(stand_in_roots()), "mn": magnum.REAL_MARKER}))
        """,
        extra_path=tmp_path,
    )
    assert out["roots"] == ["corrade", "habitat_sim"]
    assert out["mn"] == "fake-real"
