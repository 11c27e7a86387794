"""The layers hold: blocks and settings at the bottom, then the engine, the phases (tasks),
the flows, and the CLI, setup and bench on top; an import that runs back up fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from blocks.settings import REPO_ROOT


def test_imports_flow_one_way():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout
