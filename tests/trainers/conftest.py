"""Shared helpers of the trainer tests: tiny fih configs writing into a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

import habitat_fih.trainers  # noqa: F401  (fih trainer + its ConfigStore entry)

REPO = Path(__file__).resolve().parents[2]

#: Small but real: 2 envs, 2 DAgger iterations of 2 short episodes, 2 updates each.
FAST = [
    "habitat_baselines.num_environments=2",
    "habitat_baselines.fih.dagger.iterations=2",
    "habitat_baselines.fih.dagger.episodes_per_iteration=2",
    "habitat_baselines.fih.dagger.updates_per_iteration=2",
    "habitat_baselines.fih.collection.max_episode_steps=12",
    "habitat_baselines.fih.optim.batch_size=4",
    "habitat_baselines.log_interval=1",
]


def run_overrides(root: Path) -> list[str]:
    return [
        f"habitat_baselines.checkpoint_folder={root}/ckpt",
        f"habitat_baselines.eval_ckpt_path_dir={root}/ckpt",
        f"habitat_baselines.tensorboard_dir={root}/tb",
        f"habitat_baselines.fih.eval.results_dir={root}/eval",
    ]


def tiny_config(root: Path, *extra: str):
    """Composed + patched fih/synthetic_tiny config (as habitat_baselines.run sees it)."""
    from habitat.config.default import patch_config

    from habitat_fih.config import get_config

    return patch_config(get_config("fih/synthetic_tiny", [*FAST, *run_overrides(root), *extra]))


def tb_scalars(tb: Path) -> dict[str, dict[int, float]]:
    """Every scalar of the TensorBoard event files under `tb`: {tag: {step: value}}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, dict[int, float]] = {}
    files = sorted(tb.rglob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file under {tb}"
    for path in files:
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        for tag in events.Tags()["scalars"]:
            out.setdefault(tag, {}).update({e.step: e.value for e in events.Scalars(tag)})
    return out


class FIHTestKit:
    """The helpers above, handed to tests through the `kit` fixture."""

    FAST = FAST
    REPO = REPO
    run_overrides = staticmethod(run_overrides)
    tiny_config = staticmethod(tiny_config)
    tb_scalars = staticmethod(tb_scalars)


@pytest.fixture(scope="session")
def kit() -> type[FIHTestKit]:
    return FIHTestKit


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # data/ paths in the configs are relative to the repo root
