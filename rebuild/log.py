"""Progress a person can follow: step lines with durations, echoed commands, CI folding, tables.

Library code takes a ``Log`` and reports through it; it never prints directly.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO


class Log:
    def __init__(self, stream: IO[str] | None = None, *, quiet: bool = False, prefix: str = "",
                 ci: str | None = None) -> None:
        self._stream = stream
        self.quiet = quiet
        self.prefix = prefix
        # log folding only when one build writes at a time
        self.ci = ci if not prefix else None

    @property
    def stream(self) -> IO[str]:
        # looked up at each write when not given: a live status display redirects sys.stderr above itself
        return self._stream or sys.stderr

    def child(self, prefix: str) -> Log:
        """A log for one of several builds running at once: every line says which."""
        return Log(self._stream, quiet=self.quiet, prefix=prefix)

    def status_board(self, names: list[str]) -> StatusBoard | None:
        """A live status line per build (phase, elapsed time, rpmbuild's last line) when the log goes to a
        terminal and not to CI; None otherwise (plain lines are enough)."""
        if self.quiet or self.ci or not getattr(self.stream, "isatty", lambda: False)():
            return None
        return StatusBoard(self.stream, names)

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

    def progress(self, label: str, total: int | None, done: int = 0, *, unit: str = "bytes") -> Progress:
        """A progress report for *total* units (bytes, packages): a bar on a terminal, else a line per 10%."""
        return Progress(self, label, total, done, unit=unit)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        section = f"s{int(time.time() * 1000)}"
        if self.ci == "github":
            self._write(f"::group::{name}")
        elif self.ci == "gitlab":
            self._write(f"\x1b[0Ksection_start:{int(time.time())}:{section}[collapsed=true]\r\x1b[0K{name}")
        self._write(f"==> {name}")
        start = time.monotonic()
        ok = False
        try:
            yield
            ok = True
        finally:
            took = time.monotonic() - start
            self._write(f"    {name}: {'done' if ok else 'FAILED'} in {took:.2f}s")
            if self.ci == "github":
                self._write("::endgroup::")
            elif self.ci == "gitlab":
                self._write(f"\x1b[0Ksection_end:{int(time.time())}:{section}\r\x1b[0K")


def format_table(rows: Sequence[Sequence[str]], footer: Sequence[str] = ()) -> str:
    """Rows of text cells as left-aligned columns (the first row is the header), then *footer* lines."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip() for row in rows]
    return "\n".join([*lines, *footer])


class Progress:
    """A bar (size, rate, ETA) when the log's stream is a terminal, else a line per 10%."""

    def __init__(self, log: Log, label: str, total: int | None, done: int = 0, *, unit: str = "bytes") -> None:
        self.log, self.label, self.total, self.done, self.unit = log, label, total, done, unit
        self.start, self.last_decile = time.monotonic(), done * 10 // total if total else 0
        self.bar = None
        if total and not log.quiet and getattr(log.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, TimeRemainingColumn, TransferSpeedColumn
            from rich.progress import Progress as Bar

            columns = [BarColumn(), DownloadColumn(), TransferSpeedColumn()] if unit == "bytes" else [BarColumn()]
            self.bar = Bar("{task.description}", *columns, "{task.completed}/{task.total}" if unit != "bytes" else "",
                           TimeRemainingColumn(), transient=True, console=Console(file=log.stream))
            self.bar.start()
            self.task = self.bar.add_task(label, total=total, completed=done)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)
        elif self.total:
            decile = self.done * 10 // self.total
            if decile > self.last_decile:
                self.last_decile = decile
                if self.unit == "bytes":
                    rate = self.done / max(time.monotonic() - self.start, 1e-6) / (1 << 20)
                    self.log.info(f"    {self.label}: {min(decile, 10) * 10}% of {self.total / (1 << 20):.1f} MiB,"
                                  f" {rate:.1f} MiB/s")
                else:
                    self.log.info(f"    {self.label}: {self.done} of {self.total}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class StatusBoard:
    """Live status lines, one per build, under the log's own lines (rich's Live, sys.stderr redirected above)."""

    def __init__(self, stream: IO[str], names: list[str]) -> None:
        import threading

        from rich.console import Console
        from rich.live import Live

        self.rows = {name: {"phase": "waiting", "since": time.monotonic(), "line": ""} for name in names}
        self.lock = threading.Lock()
        self.live = Live(self._render(), console=Console(file=stream), refresh_per_second=4, transient=True,
                         redirect_stderr=True, redirect_stdout=False, get_renderable=self._render)
        self.live.start()

    def update(self, name: str, *, phase: str | None = None, output: bytes | None = None) -> None:
        with self.lock:
            row = self.rows[name]
            if phase is not None:
                row["phase"], row["since"] = phase, time.monotonic()
            if output:
                lines = [line for line in output.decode(errors="replace").splitlines() if line.strip()]
                if lines:
                    row["line"] = lines[-1].strip()[:80]

    def _render(self):
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        for _ in range(3):
            table.add_column(no_wrap=True)
        table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        now = time.monotonic()
        for name, row in self.rows.items():
            table.add_row(f"[bold]{name}[/]", row["phase"], f"{now - row['since']:5.1f}s", row["line"])
        return table

    def close(self) -> None:
        self.live.stop()


def printable(text: str) -> str:
    """*text* as one may print it: control characters (a newline, a terminal escape) in a name that came from a
    package, a statement or a server are shown escaped, so they cannot forge or erase lines."""
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)
