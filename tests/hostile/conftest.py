"""Shared helpers for the attacks: the promise each hostile case must keep."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import run_cli


def one_line_error(proc, code: int) -> None:
    """Exit *code*, and stderr is one line (no traceback)."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def quietly(*args: str, env: dict | None = None, timeout: float = 60):
    """The CLI with -q: only errors on stderr."""
    return run_cli("-q", *args, env=env, timeout=timeout)


@contextmanager
def within(seconds: float):
    start = time.monotonic()
    yield
    took = time.monotonic() - start
    assert took < seconds, f"took {took:.1f}s, the bound is {seconds}s"


def tree_snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry below *folder* with its mode and size: to show nothing changed."""
    out = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        out[str(path.relative_to(folder))] = (st.st_mode, st.st_size)
    st = folder.lstat()
    out["."] = (st.st_mode, 0)
    return out
