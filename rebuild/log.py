"""Progress a person can follow: step lines with durations, echoed commands, CI folding.

Library code takes a ``Log`` and reports through it; it never prints directly.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from contextlib import contextmanager
from typing import IO, Iterator


class Log:
    def __init__(self, stream: IO[str] | None = None, *, quiet: bool = False, prefix: str = "") -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.prefix = prefix
        # log folding only when one build writes at a time
        self.github = os.environ.get("GITHUB_ACTIONS") == "true" and not prefix

    def child(self, prefix: str) -> "Log":
        """A log for one of several builds running at once: every line says which."""
        return Log(self.stream, quiet=self.quiet, prefix=prefix)

    def _write(self, line: str) -> None:
        if not self.quiet:
            print(self.prefix + line, file=self.stream, flush=True)

    def info(self, message: str) -> None:
        self._write(message)

    def warn(self, message: str) -> None:
        # warnings show even when quiet
        print(f"{self.prefix}rebuild: warning: {message}", file=self.stream, flush=True)

    def command(self, argv: list[str], where: str = "") -> None:
        prefix = f"[{where}] " if where else ""
        self._write(f"    $ {prefix}{shlex.join(argv)}")

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self.github:
            self._write(f"::group::{name}")
        self._write(f"==> {name}")
        start = time.monotonic()
        ok = False
        try:
            yield
            ok = True
        finally:
            took = time.monotonic() - start
            self._write(f"    {name}: {'done' if ok else 'FAILED'} in {took:.2f}s")
            if self.github:
                self._write("::endgroup::")
