"""Atomic file writes: write a temporary file in the target's directory, fsync it, then
``os.replace`` it onto the target — a process killed at any moment leaves either the old file or
the complete new one, never a partial write."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` to fill a temporary file next to `path`, then move it to `path`
    (directories are created) with the permissions a plain ``open(path, "w")`` would give
    (0666 minus the umask; so checkpoints stay readable by a group). On any error the temporary file is removed and the error
    re-raised; `path` is untouched. Returns `path`."""
    target = Path(os.path.abspath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name created like open(path, "w") would (mode 0666 minus the umask; mkstemp
    # would make it owner-only): O_EXCL guarantees nobody else has it
    tmp = str(target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp")
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """`atomic_write` of a bytes payload."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
