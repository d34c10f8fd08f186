"""Exceptions inside ``VectorEnv`` workers, reported to the main process by name.

habitat's ``VectorEnv`` ends a worker on any exception, and the main process only sees its pipe
close (``EOFError`` / ``BrokenPipeError``) after the worker's traceback scrolled by. Here each
worker has a report file: the environment (``collector.FIHEnv`` / ``make_fih_env``) writes its
exception there - the call, the episode id, the exception's type, message and traceback - before
the exception ends the worker, and :class:`ReportingVectorEnv` turns a closed pipe into ONE
:class:`~habitat_fih.trainers.inputs.EnvWorkerError` built from that report ("environment 1
failed in step of episode '100004': ValueError: ..."), the worker's traceback chained as its
cause. A worker that dies without a report (killed, out of memory) is named with its exit code.
The normal path is habitat's, untouched: the pipes are only wrapped to catch their closing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from habitat.core.vector_env import VectorEnv

from habitat_fih.trainers.inputs import EnvWorkerError
from habitat_fih.utils import atomic_write

__all__ = ["ReportingVectorEnv", "report_paths", "write_report"]


def report_paths(num_envs: int) -> list[str]:
    """One fresh report path per environment (in a new temporary folder)."""
    folder = tempfile.mkdtemp(prefix="fih-env-reports-")
    return [os.path.join(folder, f"env{i}.json") for i in range(num_envs)]


def write_report(path: str | None, during: str, episode_id: Any, exc: BaseException) -> None:
    """Record `exc` for the main process (worker side; best effort, never raises)."""
    if path is None:
        return
    message = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)
    report = {
        "during": during,
        "episode_id": None if episode_id is None else str(episode_id),
        "type": type(exc).__name__,
        "message": str(message) or repr(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }
    try:
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(report)))
    except Exception:  # noqa: BLE001 - the original exception is what matters
        pass


class _WorkerTraceback(Exception):
    """The worker's own traceback, chained as the cause of the main side's error."""

    def __str__(self) -> str:
        return "\n" + str(self.args[0]) if self.args else ""


class _PipeGuard:
    """One of habitat's pipe callables (read or write) of worker `index`: calls go through
    unchanged; the pipe closing raises the worker's :class:`EnvWorkerError`."""

    def __init__(self, fn: Callable[..., Any], index: int, owner: ReportingVectorEnv) -> None:
        self._fn, self._index, self._owner = fn, index, owner

    def __call__(self, *args: Any) -> Any:
        try:
            return self._fn(*args)
        except (EOFError, BrokenPipeError, ConnectionResetError):
            raise self._owner.worker_error(self._index) from None

    def __getattr__(self, name: str) -> Any:  # e.g. is_waiting, read by VectorEnv.close
        return getattr(self._fn, name)


class ReportingVectorEnv(VectorEnv):
    """habitat's ``VectorEnv`` whose worker failures surface as :class:`EnvWorkerError`.

    `reports`: the report path of each worker (:func:`report_paths`), also passed to its env
    factory; the folder is removed on :meth:`close`.
    """

    def __init__(self, reports: list[str], **kwargs: Any) -> None:
        self._reports = list(reports)
        try:
            super().__init__(**kwargs)
        except EnvWorkerError:
            self._abandon()
            raise

    def _spawn_workers(self, *args: Any, **kwargs: Any) -> Any:
        reads, writes = super()._spawn_workers(*args, **kwargs)
        return (
            [_PipeGuard(fn, i, self) for i, fn in enumerate(reads)],
            [_PipeGuard(fn, i, self) for i, fn in enumerate(writes)],
        )

    def worker_error(self, index: int) -> EnvWorkerError:
        """The error of worker `index`, whose pipe closed: from its report, else its exit code."""
        path = self._reports[index] if index < len(self._reports) else None
        if path and os.path.isfile(path):
            r = json.loads(Path(path).read_text())
            err = EnvWorkerError(
                index, r["during"], r["episode_id"], r["type"], r["message"], r["traceback"]
            )
            err.__cause__ = _WorkerTraceback(r["traceback"])
            return err
        process = self._workers[index] if index < len(getattr(self, "_workers", [])) else None
        code = None
        if process is not None:
            process.join(timeout=5)
            code = process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return EnvWorkerError(
            index,
            "the worker process",
            None,
            "WorkerExit",
            f"the worker ended without a report ({how}, e.g. out of memory)",
        )

    def _abandon(self) -> None:
        """Stop every worker without talking to it (one of them failed)."""
        for process in getattr(self, "_workers", []):
            if process.is_alive():
                process.terminate()
            process.join(timeout=30)
        self._is_closed = True

    def close(self) -> None:
        try:
            if not self._is_closed:
                super().close()
        except EnvWorkerError:  # a failed worker cannot take part in the goodbye
            self._abandon()
        finally:
            if self._reports:
                shutil.rmtree(os.path.dirname(self._reports[0]), ignore_errors=True)
