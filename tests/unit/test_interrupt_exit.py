"""An interrupt that rebuild handled ends the process with exit 130, whatever code it landed in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A Ctrl-C that lands while a dataclass or namedtuple is being made is raised inside exec() of a string;
# CPython 3.11 then marks it unhandled even after rebuild caught it, and kills the process by SIGINT.
SCRIPT = """
import sys
from rebuild.cli.main import cli, main

@cli.command("interrupt-inside-exec")
def interrupt_inside_exec():
    exec("raise KeyboardInterrupt")

main(["interrupt-inside-exec"])
"""


def test_an_interrupt_raised_inside_exec_exits_130_not_by_signal(tmp_path):
    # run as `python -m`, as the tests and `python -m rebuild` do
    (tmp_path / "interrupted").mkdir()
    (tmp_path / "interrupted" / "__main__.py").write_text(SCRIPT)
    proc = subprocess.run([sys.executable, "-m", "interrupted"], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 130, (proc.returncode, proc.stderr)
    assert proc.stderr.strip().splitlines()[-1] == "rebuild: interrupted; containers and partial results were removed"
