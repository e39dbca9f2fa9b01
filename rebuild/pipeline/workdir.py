"""A build's folders: the state log, collecting the RPMs, placing the result, keeping a failed build's logs.

A result is assembled in a staging folder beside its final place and renamed into place, so
``OUT/<nvr>/`` is always one complete result; a failed or interrupted build leaves no result
folder, only ``OUT/<nvr>.failed/`` with its logs (and, when checks failed, its RPMs).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from rebuild.errors import BuildFailed
from rebuild.files import sha256_file
from rebuild.pipeline.result import Output, Phase
from rebuild.systems.rpmfile import read_info

LOG_TAIL = 25


@dataclass
class StateLog:
    """Each phase with start, end and duration; written line by line once it has a file."""

    path: Path | None = None
    phases: list[Phase] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    #: called with each phase's name as it starts (live status lines)
    on_phase: Callable[[str], None] | None = None

    def attach(self, path: Path) -> None:
        self.path = path
        with path.open("a") as fh:
            fh.writelines(self.pending)
        self.pending.clear()

    def _line(self, text: str) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = f"{stamp} {text}\n"
        if self.path is None:
            self.pending.append(line)
            return
        with self.path.open("a") as fh:
            fh.write(line)

    def phase(self, name: str) -> _Phase:
        return _Phase(self, name)

    def record(self, name: str, seconds: float) -> None:
        """A phase that ran before the log existed (the SRPM located while the build was resolved)."""
        self._line(f"start {name}")
        self._line(f"end   {name} {seconds:.3f}s ok")
        self.phases.append(Phase(name, round(seconds, 3), "ok"))


class _Phase:
    def __init__(self, state: StateLog, name: str) -> None:
        self.state, self.name = state, name

    def __enter__(self) -> None:
        self.start = time.monotonic()
        self.state._line(f"start {self.name}")
        if self.state.on_phase:
            self.state.on_phase(self.name)

    def __exit__(self, kind, exc, tb) -> None:
        took = time.monotonic() - self.start
        status = "ok" if kind is None else ("interrupted" if kind is KeyboardInterrupt else "failed")
        self.state._line(f"end   {self.name} {took:.3f}s {status}")
        self.state.phases.append(Phase(self.name, round(took, 3), status))


class LogSink:
    """Collects a step's output into build.log and optionally echoes it."""

    def __init__(self, fh: IO[bytes], echo: Callable[[bytes], None] | None) -> None:
        self.fh, self.echo = fh, echo

    def __call__(self, chunk: bytes) -> None:
        self.fh.write(chunk)
        self.fh.flush()
        if self.echo:
            self.echo(chunk)


def tail(path: Path, lines: int = LOG_TAIL) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def collect(work: Path, staging: Path) -> list[Output]:
    """Copy the RPMs rpmbuild left in *work* into *staging*, each described from its own header."""
    outputs = []
    found = sorted((work / "RPMS").rglob("*.rpm")) + sorted((work / "SRPMS").glob("*.rpm"))
    for src in found:
        if src.is_symlink() or not src.is_file():
            continue
        info = read_info(src)
        folder = "SRPMS" if info.is_source else f"RPMS/{info.arch}"
        rel = f"{folder}/{src.name}"
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        outputs.append(Output(file=rel, name=info.name, epoch=info.epoch, version=info.version,
                              release=info.release, arch=info.arch, nevra=info.nevra, source=info.is_source,
                              size=dest.stat().st_size, sha256=sha256_file(dest)))
    return outputs


def place(staging: Path, final: Path) -> None:
    """Rename *staging* to *final*; an older result is moved aside first and removed after.

    Two builds placing the same result at once both succeed, and *final* is always one
    complete result: a rename onto a non-empty folder fails, so the loser moves it aside
    and tries again.
    """
    for attempt in range(20):
        try:
            os.rename(staging, final)
            return
        except OSError:
            if not final.exists():
                raise
            old = final.with_name(f".{final.name}.old-{os.getpid()}-{threading.get_ident()}-{attempt}")
            try:
                os.rename(final, old)
            except FileNotFoundError:
                continue
            if old.is_symlink():  # a result folder swapped for a link: the link goes, not what it points at
                old.unlink()
            else:
                shutil.rmtree(old, ignore_errors=True)
    raise BuildFailed(f"could not place the result at {final}: another build keeps replacing it")


def keep_failed_logs(staging: Path, dest: Path, tree: Path | None = None) -> None:
    """Logs (and, when checks failed, the RPMs and manifest) of a failed build go to <nvr>.failed/; with
    *tree*, the build tree too (<nvr>.failed/tree/, for `rebuild shell --result`)."""
    keep = Path(tempfile.mkdtemp(prefix=".failed-", dir=dest.parent))
    for name in ("build.log", "state.log", "spec.diff", "manifest.json"):
        if (staging / name).exists():
            shutil.copyfile(staging / name, keep / name)
    for folder in ("RPMS", "SRPMS"):
        if (staging / folder).is_dir():
            shutil.copytree(staging / folder, keep / folder)
    if tree is not None and tree.is_dir():
        os.rename(tree, keep / "tree")
    keep.chmod(0o755)
    place(keep, dest)


_SECTION_FAILED = re.compile(r"Bad exit status from \S+ \((%\w+)\)")
_CAUSE = re.compile(r"(?:error:|error adding|Error \d+|No such file or directory|command not found|Permission denied|"
                    r"not permitted|File not found|undefined reference|is needed by)", re.I)
_WEAK_CAUSE = re.compile(r"cannot |not found", re.I)


def failure_cause(build_log: Path) -> str:
    """Where rpmbuild failed and the first line that says why: ``" in %build: make: makeinfo: No such file"``.
    rpm 4.0.4 writes its summary through a block-buffered stdout, so its own lines may come last; the section
    is taken from "Bad exit status ... (%build)" and the cause from the lines before the first such one."""
    lines = tail(build_log, 400).splitlines()
    section = next((m.group(1) for line in lines if (m := _SECTION_FAILED.search(line))), None)
    before = lines
    if section is not None:
        first = next(i for i, line in enumerate(lines) if _SECTION_FAILED.search(line))
        before = [line for line in lines[:first] if not line.startswith(("RPM build errors", "+ "))]
    candidates = [line.strip() for line in before if "warning:" not in line]
    cause = next((line for line in candidates if _CAUSE.search(line)), None) \
        or next((line for line in candidates if _WEAK_CAUSE.search(line)), None)
    text = (f" in {section}" if section else "") + (f": {cause[:200]}" if cause else "")
    return text
