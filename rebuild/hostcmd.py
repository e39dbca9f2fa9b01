"""One way to run a command on the host: echoed to the log, output captured, errors typed.

A tool that is not installed, or that fails when *check* is set, becomes an
``EnvironmentProblem`` whose message names what was being done and the tool's last lines.
"""

from __future__ import annotations

import os
import subprocess

from rebuild.errors import EnvironmentProblem
from rebuild.log import Log

# Debian package that carries each tool the host needs (for the messages)
PACKAGE_OF = {"rpm": "rpm", "rpmbuild": "rpm", "rpmkeys": "rpm", "rpmsign": "rpm", "createrepo_c": "createrepo-c",
              "gpg": "gnupg", "debootstrap": "debootstrap", "tar": "tar", "cc": "gcc", "gcc": "gcc"}


def run(argv: list[str], what: str, log: Log | None = None, *, check: bool = True,
        env: dict[str, str] | None = None, tail: int = 15) -> subprocess.CompletedProcess:
    """Run *argv* (never through a shell) with stdin closed; return the finished process (text output).

    With *check*, a non-zero exit raises EnvironmentProblem with the last *tail* lines of its output."""
    if log is not None:
        log.command(argv)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL,
                              env={**os.environ, "LC_ALL": "C", **(env or {})})
    except FileNotFoundError:
        tool = os.path.basename(argv[0])
        package = PACKAGE_OF.get(tool)
        raise EnvironmentProblem(f"{tool} is not installed" + (f" (Debian: apt-get install {package})" if package else "")
                                 + f"; needed for {what}") from None
    if check and proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).strip().splitlines()[-tail:]
        raise EnvironmentProblem(f"{what} failed (exit {proc.returncode})" + (f": {lines[-1].strip()}" if lines else ""),
                                 detail="\n".join(lines) if len(lines) > 1 else None)
    return proc
