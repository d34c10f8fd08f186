"""``make test-habitat-sim`` refuses in one line (exit 2) where it cannot work, never skipping:
without root (it builds and enters a chroot), and without the chroot kit."""

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "tests_habitat_sim" / "run.sh"


def _run(cmd, **kw):
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60, **kw)


def test_without_root_one_line_and_exit_2():
    # the script comes on stdin and runs from /: a checkout in a 0700 folder (mktemp -d) is not
    # readable by the unprivileged user, and the root check comes before anything reads it
    cmd = ["bash", "-s", "/tmp/fih-hsim-never-built", str(REPO)]
    if os.getuid() == 0:  # drop to nobody (util-linux's setpriv) to see what a user gets
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    with RUN.open() as script:
        res = subprocess.run(cmd, cwd="/", stdin=script, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs root" in lines[0], res.stderr
    assert not Path("/tmp/fih-hsim-never-built").exists()


def test_missing_kit_one_line_and_exit_2(tmp_path):
    if os.getuid() != 0:
        res = _run(["bash", str(RUN), str(tmp_path / "root"), str(tmp_path / "kit")])
        assert res.returncode == 2 and "needs root" in res.stderr
        return
    res = _run(["bash", str(RUN), str(tmp_path / "root"), str(tmp_path / "kit")])
    assert res.returncode == 2, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "no habitat-sim chroot kit" in lines[0], res.stderr
