"""The lock of a solved root: every package that went in, with its NEVRA, arch, source URL and sha256.

Written next to the image pin (``<cache>/images/<target>/root.lock.json``) when a root is made,
copied into every build's manifest.json, and part of the build key. ``rebuild image T --locked``
makes the root from the lock alone: no solving, every digest checked, so the same lock gives the
same root on another machine.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from rebuild.errors import UsageError
from rebuild.files import SAFE_NAME, atomic_write, read_user_file
from rebuild.systems.urls import redact

LOCK_VERSION = 1
MAX_LOCK = 64 << 20  # a lock of every package of a release is a few MiB


@dataclass(frozen=True)
class LockedPackage:
    nevra: str
    name: str
    epoch: int | None
    version: str
    release: str
    arch: str
    filename: str
    url: str
    origin: str
    sha256: str
    size: int


@dataclass(frozen=True)
class RootLock:
    target: str
    arch: str
    trees: dict          # origin -> location (credentials redacted)
    wants: tuple[tuple[str, str], ...]  # (kind, text)
    packages: tuple[LockedPackage, ...]
    lock_version: int = LOCK_VERSION

    def to_json(self) -> str:
        data = asdict(self)
        data["wants"] = [list(w) for w in self.wants]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str, where: str) -> RootLock:
        try:
            data = json.loads(text)
            packages = tuple(LockedPackage(**p) for p in data["packages"])
            lock = cls(target=str(data["target"]), arch=str(data["arch"]), trees=dict(data["trees"]),
                       wants=tuple((str(k), str(t)) for k, t in data["wants"]), packages=packages,
                       lock_version=int(data.get("lock_version", 1)))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise UsageError(f"{where}: not a root lock rebuild wrote ({type(exc).__name__}: {exc})") from None
        for p in lock.packages:
            if not SAFE_NAME.match(p.filename) or not p.filename.endswith(".rpm") or len(p.sha256) != 64:
                raise UsageError(f"{where}: package entry {p.nevra!r} has a bad file name or sha256")
        return lock


def lock_path(image_dir: Path) -> Path:
    return image_dir / "root.lock.json"


# where an image made from a tree holds its own lock
LOCK_IN_IMAGE = "usr/share/rebuild/root.lock.json"


def read_lock(path: Path) -> RootLock | None:
    if not os.path.lexists(path):
        return None
    # an image's lock may come from a registry (--pull): bounded like any input
    return RootLock.from_json(read_user_file(path, "lock", max_bytes=MAX_LOCK).decode("utf-8", "replace"), str(path))


def write_lock(path: Path, lock: RootLock) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lock.to_json())


def locked_package(meta, sha256: str, size: int) -> LockedPackage:
    return LockedPackage(nevra=meta.nevra, name=meta.name, epoch=meta.epoch, version=meta.version,
                         release=meta.release, arch=meta.arch, filename=meta.filename, url=redact(meta.url),
                         origin=meta.origin, sha256=sha256, size=size)
