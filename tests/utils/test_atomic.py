"""habitat_fih.utils.atomic: complete replacement or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from habitat_fih.utils import atomic_write, atomic_write_bytes


def test_writes_into_new_directories_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "f.bin"
    assert atomic_write_bytes(target, b"one") == target
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]  # no temp file left


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")

    def half_then_fail(tmp: str) -> None:
        Path(tmp).write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_written_files_get_the_mode_a_plain_open_gives(tmp_path: Path) -> None:
    import os

    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # 0666 minus the process umask
    target = tmp_path / "atomic.txt"
    atomic_write_bytes(target, b"x")
    assert (target.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)
    old = os.umask(0o002)  # a shared-group umask: group-writable, world-readable
    try:
        atomic_write_bytes(target, b"y")
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o664
