"""The dataset generator's command line: bad arguments and a second generator on the same
root are one error line, exit status 2, and nothing is written (issue 15, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lock_holder import hold_lock

from habitat_fih.datasets.generate import main


def _fails(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_unknown_house_is_named(tmp_path: Path, capsys) -> None:
    last = _fails(["--out", str(tmp_path / "d"), "--only", "house_999"], capsys)
    assert "unknown house(s) ['house_999']" in last and "house_000" in last
    assert not (tmp_path / "d").exists()


def test_out_that_is_a_file_is_named(tmp_path: Path, capsys) -> None:
    (tmp_path / "f").write_text("x")
    last = _fails(["--out", str(tmp_path / "f")], capsys)
    assert f"--out {str(tmp_path / 'f')!r} exists and is not a folder" in last


def test_a_second_generator_on_the_same_root_is_refused(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    holder = hold_lock(root)
    try:
        last = _fails(["--out", str(root), "--only", "house_000"], capsys)
        assert f"in use by another run (pid {holder.pid}" in last and "another --out" in last
        assert sorted(p.name for p in root.iterdir()) == [".fih_lock"]  # nothing generated
    finally:
        holder.kill()
        holder.wait()
