"""The container engine behind a small interface.

``Engine`` and ``Container`` are Protocols so the pipeline can be unit-tested with
``tests/unit/fake_engine.py``; ``dockerengine.DockerEngine`` talks to a real engine through the
docker SDK. A container's context always removes it on exit, Ctrl-C included;
``REBUILD_KEEP_CONTAINER=1`` (``Settings.keep_containers``) keeps it for debugging.

Host folders reach a container by bind mount when the engine runs on this host, and as archives
through the engine API when it does not (``DOCKER_HOST=tcp://`` or ``ssh://``; ``REBUILD_TRANSFER``
chooses): a mount's content is copied in when the container is made, and ``Container.copy_out`` /
``copy_in`` carry a read-write mount's changes each way (no-ops with bind mounts). Images by content
and through registries: ``dockerimages``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rebuild.log import Log
from rebuild.systems.dockerimages import ImageInfo, Reference

LABEL = "org.rebuild"
# Docker 20.10's API. Newer engines accept it; pinning it saves a version round trip per run.
API_VERSION = "1.41"
START_ENGINE_HINT = (
    "start one: `sudo systemctl start docker`, or `sudo dockerd --bridge=none --iptables=false &`"
    " (rebuild needs no container network); set DOCKER_HOST if it listens elsewhere"
)


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = False


class Container(Protocol):
    name: str
    #: whether host files travel as archives (copy_out/copy_in do the work) rather than bind mounts
    archive: bool

    def run(
        self,
        argv: list[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        env: dict[str, str] | None = None,
        output: Callable[[bytes], None] | None = None,
        shown: list[str] | None = None,
    ) -> int:
        """Run *argv* in the container; stream its output to *output*; return its exit code. The command is
        echoed to the log as *shown* when given (a script's summary instead of its text)."""

    def commit(self, tag: str) -> str:
        """Save the container's filesystem as image *tag*; return the image ID."""

    def copy_out(self, path: str) -> None:
        """Bring *path* (inside a read-write mount) back to the host folder it mirrors; a no-op when the
        folder is bind-mounted."""

    def copy_in(self, path: str) -> None:
        """Send the host's copy of *path* (inside a mount) into the container; a no-op when bind-mounted."""


class Engine(Protocol):
    def for_log(self, log: Log) -> Engine:
        """The same engine echoing its commands to *log* (one per parallel build)."""

    def image_id(self, tag: str) -> str | None:
        """The ID the tag points at, or None when there is no such image."""

    def inspect_image(self, ref: str) -> ImageInfo | None:
        """ID, content identity, labels and registry digests of an image, or None."""

    def push(self, image: str, repository: str, tag: str) -> str:
        """Push *image* as REPOSITORY:TAG; return the registry's manifest digest."""

    def pull(self, ref: Reference) -> ImageInfo:
        """Pull REPOSITORY@DIGEST; CheckFailed when the content does not match."""

    def tag(self, image: str, tag: str) -> None:
        """Point *tag* at *image*."""

    def read_file(self, image: str, path: str) -> bytes | None:
        """The file *path* of *image*, or None."""

    def import_rootfs(self, tarball: Path | Iterable[bytes], tag: str, labels: dict[str, str]) -> str:
        """``docker import`` a root filesystem tarball (a file, or a stream of its bytes); return the new
        image ID."""

    def container(
        self, image: str, *, mounts: list[Mount], hostname: str | None = None
    ) -> AbstractContextManager[Container]:
        """A started container with no network, removed when the context exits."""

    def run_once(self, image: str, argv: list[str], *, user: str | None = None) -> tuple[int, bytes]:
        """Run *argv* as a fresh container's only process; return its exit code and output."""

    def close(self) -> None:
        """Close the connection to the engine (a process that lives on after using it)."""

    def remove_all(self) -> None:
        """Remove every container this process still has (Ctrl-C during parallel builds)."""

    def version(self) -> str:
        """The engine's version (EnvironmentProblem when it cannot be reached)."""

    def shell(self, image: str, argv: list[str], *, mounts: list[Mount], user: str, workdir: str,
              hostname: str, tty: bool) -> int:
        """Run *argv* in a fresh container of *image* attached to this terminal; remove it on exit."""


def transfer_is_archive(transfer: str, docker_host: str) -> bool:
    """``archive`` or ``bind`` as asked; ``auto``: archives when DOCKER_HOST names another machine's engine."""
    if transfer in ("archive", "bind"):
        return transfer == "archive"
    return bool(docker_host) and not docker_host.startswith(("unix://", "npipe://", "fd://"))
