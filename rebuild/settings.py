"""Settings from the environment, read in this one place into a frozen object passed down.

==========================  ===================================================================
variable                    meaning
==========================  ===================================================================
REBUILD_HOME                the project folder, holding ``specs/`` and ``containers/`` (default: the nearest
                            folder upward from the current one that holds either, else the current one)
REBUILD_CACHE               the cache (default ``$XDG_CACHE_HOME/rebuild`` or ``~/.cache/rebuild``)
REBUILD_MIRROR              ``FROM=TO`` URL prefix rewrites for downloads
REBUILD_KEEP_CONTAINER      keep containers for debugging
REBUILD_TRANSFER            ``auto`` (default), ``bind`` or ``archive``: how host files reach containers
                            (``auto``: archives when DOCKER_HOST names a remote engine)
DOCKER_HOST                 the engine, as for the docker CLI (read by the docker SDK)
GITHUB_ACTIONS, GITLAB_CI   the CI system, for log folding
==========================  ===================================================================
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rebuild.errors import UsageError
from rebuild.systems.urls import redact


def find_project(start: Path) -> Path:
    """The project folder: the nearest folder from *start* upward holding ``specs/`` or ``containers/``
    (as cibuildwheel reads the project it runs in), else *start* itself."""
    for folder in (start, *start.parents):
        if (folder / "specs").is_dir() or (folder / "containers").is_dir():
            return folder
    return start


@dataclass(frozen=True)
class Settings:
    home: Path
    cache: Path
    mirrors: tuple[tuple[str, str], ...] = ()
    keep_containers: bool = False
    ci: str | None = None  # "github", "gitlab" or None
    transfer: str = "auto"
    docker_host: str = ""  # DOCKER_HOST, checked (the docker SDK reads it too)
    step_summary: str | None = None  # GITHUB_STEP_SUMMARY: where publish appends its table

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env["REBUILD_HOME"]).resolve() if env.get("REBUILD_HOME") else find_project(Path.cwd().resolve())
        if env.get("REBUILD_CACHE"):
            cache = Path(env["REBUILD_CACHE"]).resolve()
        else:
            base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
            cache = base / "rebuild"
        ci = "github" if env.get("GITHUB_ACTIONS") == "true" else "gitlab" if env.get("GITLAB_CI") == "true" else None
        transfer = env.get("REBUILD_TRANSFER") or "auto"
        if transfer not in ("auto", "bind", "archive"):
            raise UsageError(f"REBUILD_TRANSFER={transfer!r}: expected auto, bind or archive")
        # checked here, where the environment is read; the engine modules and the docker SDK take it from there
        check_docker_host(env.get("DOCKER_HOST", ""))
        return cls(home=home, cache=cache, mirrors=parse_mirrors(env.get("REBUILD_MIRROR", ""), "REBUILD_MIRROR"),
                   keep_containers=bool(env.get("REBUILD_KEEP_CONTAINER")), ci=ci, transfer=transfer,
                   docker_host=env.get("DOCKER_HOST", ""), step_summary=env.get("GITHUB_STEP_SUMMARY") or None)


_DOCKER_HOST = re.compile(r"^(?:(?:unix|npipe|fd)://\S+|tcp://(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?/?"
                          r"|ssh://(?:[A-Za-z0-9._-]+@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?/?)$")


def check_docker_host(value: str) -> None:
    """DOCKER_HOST as the docker CLI takes it (unix://, tcp://HOST:PORT, ssh://[USER@]HOST[:PORT], fd://,
    npipe://); UsageError (exit 2, the value's credentials redacted) for anything else."""
    if not value:
        return
    match = _DOCKER_HOST.match(value)
    port = next((p for p in (match.groups() if match else ()) if p), None)
    if match is None or (port is not None and not 0 < int(port) < 65536):
        from_user = re.sub(r"(?<=://)[^/@]*@", "***@", value)
        raise UsageError(f"DOCKER_HOST={from_user!r}: expected unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]")


def parse_mirrors(spec: str, where: str = "--mirror") -> tuple[tuple[str, str], ...]:
    """``FROM=TO`` pairs, separated by spaces or commas."""
    pairs = []
    for item in re.split(r"[\s,]+", spec or ""):
        if not item:
            continue
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise UsageError(f"{where}: {redact(item)!r}: expected FROM=TO, e.g."
                             " https://archive.example/pub=file:///srv/mirror/pub")
        pairs.append((old, new))
    return tuple(pairs)
