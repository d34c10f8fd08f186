"""Bad trainer values, unreadable checkpoints, the run-folder lock, stale temporaries and
resumes with changed settings: each fails at once with one error naming the key / file / pid,
and touches no checkpoint (issue 15, parts B-E)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from lock_holder import hold_lock

from habitat_fih.trainers.checkpoint import CorruptCheckpointError
from habitat_fih.trainers.settings import ResumeSettingsError, resume_settings
from habitat_fih.utils.folder_lock import LOCK_FILE, RunFolderLockedError, locked

F = "habitat_baselines.fih."


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Checkpoint / state files with size and mtime (the run's lock file aside)."""
    return {
        p.name: (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.iterdir()
        if p.is_file() and p.name != LOCK_FILE
    }


@pytest.mark.parametrize(
    ("override", "key"),
    [
        (F + "dagger.iterations=0", F + "dagger.iterations"),
        (F + "dagger.iterations=-3", F + "dagger.iterations"),
        (F + "collection.frame_size=0", F + "collection.frame_size"),
        (F + "optim.batch_size=0", F + "optim.batch_size"),
        (F + "collection.max_frames=0", F + "collection.max_frames"),
        (F + "dagger.episodes_per_iteration=0", F + "dagger.episodes_per_iteration"),
        (F + "dagger.p=5", F + "dagger.p"),
        ("habitat_baselines.num_environments=0", "habitat_baselines.num_environments"),
        (F + "optim.lr=-1", F + "optim.lr"),
        (F + "torch_threads=-1", F + "torch_threads"),
    ],
)
def test_bad_trainer_value_is_one_error_naming_the_key(tmp_path, kit, override, key) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    value = override.split("=", 1)[1]
    with pytest.raises(ValueError, match=rf"^{key} must be .*got {value}"):
        FIHTrainer(kit.tiny_config(tmp_path, override))
    assert not (tmp_path / "ckpt").exists()  # nothing written


def test_bad_value_through_the_cli_exits_non_zero_naming_the_key(tmp_path, kit) -> None:
    cmd = [
        sys.executable,
        "-m",
        "habitat_fih.run",
        "--config-name=fih/synthetic_tiny",
        *kit.run_overrides(tmp_path),
        F + "dagger.iterations=0",
        f"hydra.run.dir={tmp_path}/hydra",
    ]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, cwd=kit.REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert F + "dagger.iterations must be an integer >= 1, got 0" in last, proc.stderr[-2000:]
    assert not (tmp_path / "ckpt").exists()


def _no_envs(monkeypatch) -> None:
    """Starting an environment fails the test: errors must come before any worker starts."""
    import habitat_fih.trainers.eval_runs as eval_runs
    import habitat_fih.trainers.fih_trainer as fih_trainer

    def refuse(*a, **k):
        raise AssertionError("environments were started")

    for module in (fih_trainer, eval_runs):  # training's and evaluation's environments
        monkeypatch.setattr(module, "build_vector_env", refuse)


def _bad_bytes(kind: str, good: bytes) -> bytes:
    return {"truncated": good[: len(good) // 2], "empty": b"", "random": os.urandom(4096)}[kind]


@pytest.mark.parametrize("kind", ["truncated", "empty", "random"])
def test_unreadable_checkpoint_at_evaluation_names_the_file(tmp_path, kit, kind, monkeypatch):
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    folder = tmp_path / "ckpt"
    folder.mkdir()
    torch.save({"model": {"w": torch.zeros(64, 64)}, "stage": "main"}, folder / "ckpt.0.pth")
    good = (folder / "ckpt.0.pth").read_bytes()
    (folder / "ckpt.1.pth").write_bytes(_bad_bytes(kind, good))
    before = _listing(folder)
    _no_envs(monkeypatch)
    cfg = kit.tiny_config(tmp_path, "habitat_baselines.evaluate=True")
    with pytest.raises(CorruptCheckpointError, match=r"1 of the 2 checkpoints.*ckpt\.1\.pth") as e:
        FIHTrainer(cfg).eval()
    assert "ckpt.0.pth" not in str(e.value).split("cannot be read:")[1]
    if kind != "random":
        assert "truncated or corrupt" in str(e.value)
    assert _listing(folder) == before


def test_truncated_resume_state_names_the_file(tmp_path, kit, monkeypatch) -> None:
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    trainer = FIHTrainer(kit.tiny_config(tmp_path))
    folder = tmp_path / "ckpt"
    folder.mkdir()
    torch.save({"stage": "main", "model": {"w": torch.zeros(256)}}, trainer.resume_path)
    data = Path(trainer.resume_path).read_bytes()
    Path(trainer.resume_path).write_bytes(data[: len(data) // 3])
    before = _listing(folder)
    _no_envs(monkeypatch)
    with pytest.raises(CorruptCheckpointError, match=r"\.resume_state\.pth: truncated or corrupt"):
        trainer.train()
    assert _listing(folder) == before


def test_a_second_run_on_the_same_folder_is_refused_naming_the_pid(tmp_path, kit, monkeypatch):
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    holder = hold_lock(tmp_path / "ckpt")
    try:
        _no_envs(monkeypatch)
        with pytest.raises(
            RunFolderLockedError, match=rf"in use by another run \(pid {holder.pid}"
        ):
            FIHTrainer(kit.tiny_config(tmp_path, F + "seed=7")).train()
    finally:
        holder.kill()
        holder.wait()
    # the holder died: its lock died with it
    with locked(str(tmp_path / "ckpt")):
        pass


def test_kill_during_an_atomic_write_leaves_no_temporary_after_the_next_start(tmp_path) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    code = textwrap.dedent(
        f"""
        import time
        from habitat_fih.utils import atomic_write
        def slow(tmp):
            open(tmp, "wb").write(b"partial")
            print("writing", flush=True)
            time.sleep(120)
        atomic_write({str(folder / ".resume_state.pth")!r}, slow)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stale = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert len(stale) == 1 and stale[0].startswith("..resume_state.pth.")  # atomic_write's name
    (folder / "ckpt.0.pth").write_bytes(b"keep me")
    with locked(str(folder)):  # what a run does first
        assert sorted(p.name for p in folder.iterdir()) == [".fih_lock", "ckpt.0.pth"]


def _resume_payload(cfg) -> dict:
    return {
        "stage": "main",
        "model": {},
        "optimizer": {},
        "state": {},
        "rng": {},
        "settings": resume_settings(cfg.habitat_baselines.fih),
    }


@pytest.mark.parametrize(
    ("override", "key"), [(F + "optim.lr=0.003", "optim.lr"), (F + "seed=9", "seed")]
)
def test_resume_with_changed_settings_is_refused(tmp_path, kit, monkeypatch, override, key):
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    first = kit.tiny_config(tmp_path)
    trainer = FIHTrainer(kit.tiny_config(tmp_path, override))
    (tmp_path / "ckpt").mkdir()
    torch.save(_resume_payload(first), trainer.resume_path)
    before = _listing(tmp_path / "ckpt")
    _no_envs(monkeypatch)
    with pytest.raises(ResumeSettingsError, match=rf"{F}{key}: .* there, .* now.*another"):
        trainer.train()
    assert _listing(tmp_path / "ckpt") == before
    # the same settings, or the explicit flag, pass the settings check (and fail later on
    # this deliberately empty payload, not on the settings)
    for t in (
        FIHTrainer(first),
        FIHTrainer(kit.tiny_config(tmp_path, override, F + "resume_with_changed_settings=true")),
    ):
        with pytest.raises(Exception) as err:
            t.resume_file.load(None, None, {})  # type: ignore[arg-type]
        assert not isinstance(err.value, ResumeSettingsError)


def test_settings_changes_that_do_not_change_the_result_resume(tmp_path, kit) -> None:
    """stop_after_updates / keep_checkpoints / start_method are not part of the check."""
    from habitat_fih.trainers.settings import check_resume_settings

    a = kit.tiny_config(tmp_path).habitat_baselines.fih
    b = kit.tiny_config(
        tmp_path,
        F + "stop_after_updates=3",
        F + "keep_checkpoints=2",
        F + "collection.start_method=fork",
    ).habitat_baselines.fih
    assert check_resume_settings(resume_settings(a), resume_settings(b), "x", False) == []
