"""With the real habitat-sim, the start-up hook (``habitat_fih_autocompat.pth``, installed by the
chroot's editable install of habitat_fih) changes nothing: ``import habitat`` gets the real
``habitat_sim`` / ``magnum``, no stand-in is installed, and the interpreter ends up with exactly
the modules and import finders it has with the hook switched off (``HABITAT_FIH_NO_AUTOCOMPAT=1``).
habitat_fih is imported in both: habitat's import registers its Hydra plugins, and Hydra's plugin
scan imports ``hydra_plugins.habitat_fih_plugin``.

Runs in fresh interpreters (the conftest's harness imports habitat_fih in this one), importing
``fih_hsim_shims`` first as every habitat import in the chroot does (it imports habitat)."""

import json
import os
import site
import subprocess
import sys
from pathlib import Path

CODE = """
import json, sys
hook_at_start = [type(f).__name__ for f in sys.meta_path].count("AutoCompatFinder")
import fih_hsim_shims  # noqa: F401  (imports habitat_sim, then habitat)
import habitat
import habitat_sim, magnum
print(json.dumps({
    "hook_at_start": hook_at_start,
    "finders": [type(f).__name__ for f in sys.meta_path],
    "modules": sorted(sys.modules),
    "habitat_sim": habitat_sim.__file__,
    "magnum": magnum.__file__,
    "simulator": habitat_sim.Simulator.__module__,
}))
"""


def _run(**env: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CODE],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_hook_installed_and_inert_with_the_real_habitat_sim():
    pth = [Path(d, "habitat_fih_autocompat.pth") for d in site.getsitepackages()]
    assert any(p.is_file() for p in pth), pth
    hooked, off = _run(), _run(HABITAT_FIH_NO_AUTOCOMPAT="1")
    assert hooked["hook_at_start"] == 1 and off["hook_at_start"] == 0  # the .pth ran ...
    # ... and on the first habitat import found magnum + habitat_sim and took itself off
    assert "AutoCompatFinder" not in hooked["finders"] and "_StandInFinder" not in hooked["finders"]
    for name in ("habitat_sim", "magnum"):
        assert "site-packages" in hooked[name], hooked  # the installed packages, not stand-ins
    assert hooked["simulator"].startswith("habitat_sim")
    for key in ("finders", "modules", "habitat_sim", "magnum", "simulator"):
        assert hooked[key] == off[key], key
