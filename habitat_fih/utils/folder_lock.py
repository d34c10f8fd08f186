"""One writer per output folder: the trainer's checkpoint folder, the dataset generator's root.

- :func:`locked`: an exclusive lock (``flock`` on ``.fih_lock`` in the folder, holding the
  owner's pid) for as long as a run writes there; a second run on the same folder fails at once
  with :class:`RunFolderLockedError` naming the holder's pid. The lock is re-entrant within one
  process (a ``fih.schedule``'s last stage trains in the schedule's own folder) and dies with
  its process (a killed run leaves no stale lock; the file itself stays).
- :func:`remove_stale_temporaries`: the temporary files of atomic writes
  (``.<name>.<32 hex>.tmp``, :func:`habitat_fih.utils.atomic_write`) that a kill during a write
  leaves behind are removed when the lock is taken, i.e. only while no other run writes there.

The trainer takes the lock on its main rank only (every rank writes in the folder).
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["LOCK_FILE", "RunFolderLockedError", "locked", "remove_stale_temporaries"]

LOCK_FILE = ".fih_lock"
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")
_HELD: dict[str, int] = {}  # real path -> lock file descriptor, in this process


class RunFolderLockedError(RuntimeError):
    """Another run holds the checkpoint folder."""


@contextmanager
def locked(
    folder: str, hint: str = "set another habitat_baselines.checkpoint_folder"
) -> Iterator[None]:
    """Hold the exclusive lock of `folder` (created if missing) for the ``with`` block; `hint`
    ends the error message (how to use another folder)."""
    real = os.path.realpath(folder)
    if real in _HELD:  # re-entrant: this process already holds it
        yield
        return
    os.makedirs(real, exist_ok=True)
    path = os.path.join(real, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunFolderLockedError(
            f"folder {folder!r} is in use by another run (pid {holder}, lock {path}); wait for "
            f"it to finish, or {hint}"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[real] = fd
    try:
        remove_stale_temporaries(real)
        yield
    finally:
        del _HELD[real]
        os.close(fd)  # releases the lock


def remove_stale_temporaries(folder: str) -> list[str]:
    """Remove the atomic-write temporaries in `folder` (not recursive); returns their paths.

    Call only while holding the folder's lock: a live writer's temporary looks the same.
    """
    removed = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if _TEMPORARY.match(name) and os.path.isfile(path):
            os.remove(path)
            removed.append(path)
    return removed
