"""``python -m habitat_baselines.run --config-name=fih/...`` works without habitat-sim through the
start-up hook ``_habitat_fih_autocompat`` (installed as ``habitat_fih_autocompat.pth``), and the
hook changes nothing for programs that never import habitat nor where habitat-sim is installed.

Each case runs in a fresh interpreter of this venv (``sys.executable``), so what the hook did at
its start-up is what the case sees; the real habitat-sim case runs in the chroot
(``tests_habitat_sim/test_autocompat_hook.py``).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import site
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import _habitat_fih_autocompat as hook

REPO = Path(__file__).resolve().parents[2]
PTH_NAME = "habitat_fih_autocompat.pth"
PTH_LINE = "import _habitat_fih_autocompat; _habitat_fih_autocompat.install()\n"


def _python(
    args: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != hook.OFF_SWITCH}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**base, "OPENBLAS_NUM_THREADS": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _json_of(code: str, **kw) -> dict:
    proc = _python(["-c", textwrap.dedent(code)], **kw)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_habitat_baselines_run_trains_the_tiny_config(tmp_path: Path) -> None:
    proc = _python(
        [
            "-m",
            "habitat_baselines.run",
            "--config-name=fih/synthetic_tiny",
            "habitat_baselines.num_environments=1",
            "habitat_baselines.fih.dagger.iterations=1",
            "habitat_baselines.fih.dagger.episodes_per_iteration=1",
            "habitat_baselines.fih.dagger.updates_per_iteration=1",
            "habitat_baselines.fih.collection.max_episode_steps=8",
            "habitat_baselines.fih.optim.batch_size=4",
            f"habitat_baselines.checkpoint_folder={tmp_path}/ckpt",
            f"habitat_baselines.eval_ckpt_path_dir={tmp_path}/ckpt",
            f"habitat_baselines.tensorboard_dir={tmp_path}/tb",
            f"habitat_baselines.fih.eval.results_dir={tmp_path}/eval",
            f"hydra.run.dir={tmp_path}/hydra",
        ],
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "ckpt" / "ckpt.0.pth").is_file(), sorted(tmp_path.rglob("*"))
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert "initializing sim FIHSim-v0" in proc.stdout + proc.stderr


def test_import_habitat_first_gets_the_stand_ins_and_the_registrations() -> None:
    out = _json_of(
        """
        import json, sys
        import habitat
        import magnum
        from habitat.core.registry import registry
        from habitat_baselines.common.baseline_registry import baseline_registry
        from habitat_fih.compat import is_stand_in
        print(json.dumps({
            "fih": "habitat_fih" in sys.modules,
            "magnum_stand_in": is_stand_in(magnum),
            "loader": type(habitat.__spec__.loader).__name__,
            "origin": habitat.__spec__.origin,
            "fihsim": registry.get_simulator("FIHSim-v0") is not None,
            "trainer": baseline_registry.get_trainer("fih") is not None,
            "finders": [type(f).__name__ for f in sys.meta_path],
        }))
        """
    )
    assert out["fih"] and out["magnum_stand_in"] and out["fihsim"] and out["trainer"]
    # habitat ran once, by the ordinary loader, and keeps its own spec
    assert out["loader"] == "SourceFileLoader"
    assert out["origin"].endswith(os.path.join("habitat", "__init__.py"))
    assert "AutoCompatFinder" not in out["finders"] and "_StandInFinder" in out["finders"]


def test_a_program_that_never_imports_habitat_loads_nothing() -> None:
    proc = _python(
        [
            "-c",
            "import sys; print('habitat_fih' in sys.modules, 'magnum' in sys.modules, "
            "'habitat' in sys.modules, "
            "[type(f).__name__ for f in sys.meta_path].count('AutoCompatFinder'))",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    # the hook is there (one finder) but has imported nothing
    assert proc.stdout.split() == ["False", "False", "False", "1"]


def test_off_switch_brings_back_the_magnum_error() -> None:
    proc = _python(["-c", "import habitat"], env={hook.OFF_SWITCH: "1"})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == "ModuleNotFoundError: No module named 'magnum'"


def test_hook_steps_aside_where_magnum_and_habitat_sim_are_installed(tmp_path: Path) -> None:
    for name in ("magnum", "habitat_sim"):  # stand for the real packages: importable, but empty
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("REAL_MARKER = 'fake-real'\n")
    out = _json_of(
        """
        import json, sys
        try:
            import habitat
            err = None
        except ImportError as e:
            err = str(e)
        import habitat_sim, magnum
        print(json.dumps({
            "err": err,
            "fih": "habitat_fih" in sys.modules,
            "magnum": magnum.__file__,
            "habitat_sim": habitat_sim.__file__,
            "finders": [type(f).__name__ for f in sys.meta_path],
        }))
        """,
        env={"PYTHONPATH": str(tmp_path)},
    )
    # habitat-lab met the fake packages themselves: a stand-in would have served this sub-module
    assert out["err"] is not None and "No module named 'habitat_sim." in out["err"], out["err"]
    assert not out["fih"]
    assert out["magnum"] == str(tmp_path / "magnum" / "__init__.py")
    assert out["habitat_sim"] == str(tmp_path / "habitat_sim" / "__init__.py")
    assert "AutoCompatFinder" not in out["finders"] and "_StandInFinder" not in out["finders"]


def test_hook_is_installed_in_this_venv() -> None:
    site_dirs = site.getsitepackages()
    # the installed distribution (not a stale habitat_fih.egg-info a source build left in the repo)
    (dist,) = importlib.metadata.distributions(name="habitat-fih", path=site_dirs)
    pth = [f for f in dist.files or [] if f.name == PTH_NAME]
    assert len(pth) == 1, "habitat_fih_autocompat.pth is not in habitat-fih's RECORD"
    path = Path(pth[0].locate()).resolve()
    assert path.parent in {Path(p).resolve() for p in site_dirs}
    assert path.read_text() == PTH_LINE
    # this pytest process started with it: the hook ran, then stepped aside when tests/conftest.py
    # imported habitat_fih (which imports habitat itself)
    assert "_habitat_fih_autocompat" in sys.modules
    assert not any(isinstance(f, hook.AutoCompatFinder) for f in sys.meta_path)


def test_wheel_and_editable_wheel_both_carry_the_pth(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__")
    for name in ("setup.py", "pyproject.toml", "_habitat_fih_autocompat.py"):
        shutil.copy2(REPO / name, src / name)
    for name in ("habitat_fih", "configs", "hydra_plugins"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    out = _json_of(
        f"""
        import contextlib, json, sys
        from setuptools import build_meta
        with contextlib.redirect_stdout(sys.stderr):
            names = [build_meta.build_wheel({str(tmp_path)!r}),
                     build_meta.build_editable({str(tmp_path)!r})]
        print(json.dumps(names))
        """,
        cwd=src,
    )
    wheel, editable = (zipfile.ZipFile(tmp_path / name) for name in out)
    assert ".editable" in editable.filename
    for archive in (wheel, editable):
        assert archive.read(PTH_NAME).decode() == PTH_LINE, archive.filename
    assert "_habitat_fih_autocompat.py" in wheel.namelist()  # editable: found in the source
