"""``import habitat_fih`` and the task / simulator / geometry / config side work without torch and
habitat-baselines (issue 13): the trainer registers only when habitat-baselines is importable.

Run in a subprocess in which ``torch``, ``habitat_baselines`` and the model libraries are made
unimportable (``sys.modules[name] = None``: ``import`` raises ModuleNotFoundError and
``importlib.util.find_spec`` answers None, as on a machine without them); the same holds for real in
the habitat-sim chroot (``tests_habitat_sim/test_imports.py``)."""

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CODE = textwrap.dedent(
    """
    import sys
    for name in ("torch", "torchvision", "habitat_baselines", "transformers", "peft", "tokenizers"):
        sys.modules[name] = None
    import habitat_fih
    import habitat_fih.geometry, habitat_fih.tasks, habitat_fih.sim.simulator, habitat_fih.config
    assert habitat_fih.TRAINER_REGISTERED is False
    import habitat
    from habitat_fih.config import get_config
    cfg = get_config("benchmark/nav/fih_vln_synthetic", ["habitat.dataset.split=val_seen"])
    env = habitat.Env(cfg)
    obs = env.reset()
    obs = env.step(int(obs["shortest_path_sensor"].reshape(-1)[0]))
    assert obs["frame_heatmaps"]["frame_indices"][0] == 0, obs["frame_heatmaps"]["frame_indices"]
    print("metrics", sorted(env.get_metrics()))
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "habitat_baselines")
                    and sys.modules[m] is not None)
    print("loaded", loaded)
    """
)


def test_import_and_task_without_torch_or_baselines():
    res = subprocess.run([sys.executable, "-c", CODE], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "loaded []" in res.stdout, res.stdout
    assert "'ndtw'" in res.stdout and "'frame_heatmap_quality'" in res.stdout


def test_trainer_registers_with_baselines():
    res = subprocess.run(
        [sys.executable, "-c", "import habitat_fih\n"
         "from habitat_baselines.common.baseline_registry import baseline_registry\n"
         "assert habitat_fih.TRAINER_REGISTERED and baseline_registry.get_trainer('fih')"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
