"""A separate process holding a folder's lock (habitat_fih.utils.folder_lock) until killed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def hold_lock(folder: Path) -> subprocess.Popen:
    """Start the holder and return once it holds the lock (kill + wait it when done)."""
    code = textwrap.dedent(
        f"""
        import time
        from habitat_fih.utils.folder_lock import locked
        with locked({str(folder)!r}):
            print("locked", flush=True)
            time.sleep(120)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc
