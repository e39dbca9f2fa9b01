"""An image root laid out from RPM payloads and written as one tarball, never as files on the host.

``RootTree`` first reads every package's header and lays its files out in memory, in order, the
way rpm would write them: a later package's file replaces an earlier one's, a folder entry over a
folder only changes its mode, and nothing is written through a symlink a package planted (refused,
naming it), nor as a device file (the container engine provides /dev), nor outside the root (``..``).
What rebuild adds (the build user, the lock, a helper) goes through the same checks. ``chunks`` then
streams each payload once into the tarball, each path in its final form only (the engine refuses a layer
that holds a path twice), with no root folder on the host to fill, walk, pack and remove.
"""

from __future__ import annotations

import stat
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from rebuild.errors import UsageError


class UnsafePayload(UsageError):
    exit_code = 1


def safe_relative(name: str) -> PurePosixPath:
    """*name* as a path relative to the root; UnsafePayload for ``..``, ``.``, empty parts or NUL."""
    return PurePosixPath(_relative(name))


def _relative(name: str) -> str:
    parts = name.split("/")
    if name.startswith("/"):
        parts = parts[1:]
    if not parts or "\0" in name or any(p in ("..", ".", "") for p in parts):
        raise UnsafePayload(f"unsafe path {name!r} in the payload")
    return "/".join(parts)


_OURS = -1  # a file whose bytes are in ``data``


def _parent(rel: str) -> str:
    return rel.rpartition("/")[0]


class _Node:
    """One path of the root: a folder ("d"), a regular file ("f") or a symlink ("l"); ``package`` is the
    index of the package whose payload holds a file's bytes (or ``_OURS``: ``data`` holds them)."""

    __slots__ = ("kind", "mode", "mtime", "uid", "gid", "package", "linkto", "data")

    def __init__(self, kind: str, mode: int, mtime: int, package: int = _OURS, linkto: str = "",
                 data: bytes = b"") -> None:
        self.kind, self.mode, self.mtime, self.package = kind, mode, mtime, package
        self.uid = self.gid = 0
        self.linkto, self.data = linkto, data


class RootTree:
    """The root's paths, laid out package by package and checked as they come (see the module)."""

    def __init__(self) -> None:
        self.nodes: dict[str, _Node] = {}
        self.packages: list[Path] = []
        self._now = int(time.time())

    # --- laying out -------------------------------------------------------------------------------
    def _folder_for(self, rel: str, what: str) -> None:
        """Every folder above *rel* is a real folder (made when missing); UnsafePayload at a symlink or file."""
        parent = _parent(rel)
        if not parent:
            return
        node = self.nodes.get(parent)
        if node is not None and node.kind == "d":
            return
        self._folder_for(parent, what)
        if node is None:
            self.nodes[parent] = _Node("d", 0o755, self._now)
            return
        kind = "the symlink" if node.kind == "l" else "the non-folder"
        raise UnsafePayload(f"{what + ': ' if what else ''}/{rel} would be written through {kind} /{parent}")

    def _place(self, rel: str, node: _Node, what: str) -> None:
        """*node* at *rel* in place of a file or symlink there; a folder there is refused."""
        self._folder_for(rel, what)
        old = self.nodes.get(rel)
        if old is not None and old.kind == "d":
            raise UnsafePayload(f"{what + ': ' if what else ''}/{rel} is a folder where a file is wanted")
        self.nodes[rel] = node

    def write_file(self, rel: PurePosixPath | str, data: bytes, mode: int, *, what: str = "") -> None:
        """A regular file with *data* at *rel*, replacing a file or symlink there (never written through it)."""
        self._place(_relative(str(rel)), _Node("f", stat.S_IMODE(mode), self._now, data=data), what)

    def symlink(self, rel: PurePosixPath | str, target: str, *, what: str = "", mtime: int | None = None) -> None:
        self._place(_relative(str(rel)), _Node("l", 0o777, mtime or self._now, linkto=target), what)

    def mkdir(self, rel: PurePosixPath | str, mode: int, *, what: str = "", mtime: int | None = None) -> None:
        """A folder at *rel* with *mode*; a symlink already there is left alone (never chmod'ed through)."""
        rel = _relative(str(rel))
        self._folder_for(rel, what)
        node = self.nodes.get(rel)
        if node is None:
            self.nodes[rel] = _Node("d", stat.S_IMODE(mode), mtime or self._now)
        elif node.kind == "d":
            node.mode = stat.S_IMODE(mode)
        elif node.kind == "f":
            raise UnsafePayload(f"{what + ': ' if what else ''}/{rel} is a file where a folder is wanted")

    def ensure_real_dir(self, rel: PurePosixPath | str, mode: int | None = None) -> None:
        """*rel* is a real folder (made when missing); UnsafePayload when it or a folder above is a symlink or
        a file."""
        rel = _relative(str(rel))
        self._folder_for(rel, "the image root")
        node = self.nodes.get(rel)
        if node is None:
            node = self.nodes[rel] = _Node("d", 0o755, self._now)
        if node.kind != "d":
            kind = "a symlink" if node.kind == "l" else "a file"
            raise UnsafePayload(f"the image root: /{rel} is {kind} where a real folder is wanted")
        if mode is not None:
            node.mode = mode

    def chown(self, rel: PurePosixPath | str, uid: int, gid: int) -> None:
        node = self.nodes.get(_relative(str(rel)))
        if node is None:
            raise UnsafePayload(f"/{rel} is not in the image root")
        node.uid, node.gid = uid, gid

    def exists(self, rel: PurePosixPath | str) -> bool:
        return _relative(str(rel)) in self.nodes

    def read_file(self, rel: PurePosixPath | str) -> bytes | None:
        """The bytes of the regular file at *rel* (from its package's payload), None when absent;
        UnsafePayload for a symlink on the way or there (never read through)."""
        rel = _relative(str(rel))
        parts = rel.split("/")
        for depth in range(1, len(parts) + 1):
            node = self.nodes.get("/".join(parts[:depth]))
            if node is None:
                return None
            if node.kind == "l":
                raise UnsafePayload(f"/{rel} in the image root is a symlink; refusing to read through it")
            if node.kind == "f" and depth < len(parts):
                return None
        if node.kind == "d":
            raise UnsafePayload(f"/{rel} in the image root is a folder where a file is wanted")
        if node.package == _OURS:
            return node.data
        wanted = "/" + rel
        with _Payload(self.packages[node.package]) as payload:
            for entry in payload.archive:
                if payload.archive.hascontent() and wanted in _names(entry):
                    return payload.archive.read()
        return b""

    def add(self, path: Path, *, check_digests: bool = True) -> None:
        """Lay out the files of the RPM at *path* (its header only).

        Every name is checked before anything is laid out: ``..``, ``.`` or empty parts and device files
        are refused."""
        with _Payload(path, check_digests=check_digests) as payload:
            files = [f for f in payload.files if not f.fflags & _GHOST]
            names = [_relative(f.name) for f in files]
            for f in files:
                if stat.S_ISCHR(f.mode) or stat.S_ISBLK(f.mode):
                    raise UnsafePayload(f"{payload.nevra}: device file {f.name} refused;"
                                        " the container engine provides /dev")
            index = len(self.packages)
            self.packages.append(path)
            for f, rel in zip(files, names, strict=True):
                mode = f.mode
                if stat.S_ISDIR(mode):
                    self.mkdir(rel, mode, what=payload.nevra, mtime=f.mtime)
                elif stat.S_ISLNK(mode):
                    self.symlink(rel, f.linkto, what=payload.nevra, mtime=f.mtime)
                elif stat.S_ISREG(mode):
                    self._place(rel, _Node("f", stat.S_IMODE(mode), f.mtime, package=index), payload.nevra)

    # --- writing ----------------------------------------------------------------------------------
    def chunks(self, progress: Callable[[], None] = lambda: None) -> Iterator[bytes]:
        """The root as a tar stream, a member or two at a time: folders first (parents before children), then
        each package's files in its payload's order, then what rebuild wrote. *progress* is called after each
        package. Each payload is read once, while the reader of the stream (the engine) unpacks."""
        owned = [0] * len(self.packages)
        for node in self.nodes.values():
            if node.kind == "f" and node.package >= 0:
                owned[node.package] += 1
        sink = _Sink()
        with tarfile.open(fileobj=sink, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8",
                          errors="surrogateescape", copybufsize=1 << 20) as tar:
            for rel in sorted(r for r, n in self.nodes.items() if n.kind == "d"):
                tar.addfile(self._info(rel, self.nodes[rel], tarfile.DIRTYPE))
            for rel, node in self.nodes.items():
                if node.kind == "l":
                    tar.addfile(self._info(rel, node, tarfile.SYMTYPE))
            yield from sink.take()
            written: set[str] = set()
            for index, path in enumerate(self.packages):
                if owned[index]:
                    for _ in self._write_package(tar, index, path, written):
                        yield from sink.take()
                progress()
            for rel, node in self.nodes.items():
                if node.kind == "f" and node.package == _OURS:
                    self._write_data(tar, rel, node, node.data)
        yield from sink.take()

    def _write_package(self, tar: tarfile.TarFile, index: int, path: Path, written: set[str]) -> Iterator[None]:
        """Write the package's files that are in their final form; yield after each."""
        with _Payload(path) as payload:
            archive = payload.archive
            for entry in archive:
                if not stat.S_ISREG(entry.mode):
                    continue
                if not archive.hascontent():
                    if entry.nlink > 1:
                        continue  # a hard link: the bytes come with the set's last name, written for all
                    data = b""
                else:
                    data = archive.read()
                for name in _names(entry):
                    rel = _relative(name)
                    node = self.nodes.get(rel)
                    if node is not None and node.kind == "f" and node.package == index and rel not in written:
                        written.add(rel)  # a later name of a hard-link set does not write it again
                        self._write_data(tar, rel, node, data)
                        yield

    def _write_data(self, tar: tarfile.TarFile, rel: str, node: _Node, data: bytes) -> None:
        info = self._info(rel, node, tarfile.REGTYPE)
        info.size = len(data)
        tar.addfile(info, _Bytes(data))

    @staticmethod
    def _info(rel: str, node: _Node, kind: bytes) -> tarfile.TarInfo:
        info = tarfile.TarInfo(rel)
        info.type, info.mode, info.mtime = kind, node.mode, max(node.mtime, 0)
        info.uid, info.gid = node.uid, node.gid
        if kind == tarfile.SYMTYPE:
            info.linkname = node.linkto
        return info


class _Sink:
    """Where tarfile writes the stream: the bytes since the last ``take``."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def write(self, data) -> int:
        self._parts.append(data)  # bytes, or a memoryview of a file's bytes (kept alive here)
        self._size += len(data)
        return len(data)

    def tell(self) -> int:
        return self._size

    def take(self) -> list[bytes]:
        """The bytes written since the last take, as one chunk (none when nothing was: an empty chunk would
        end a chunked upload)."""
        parts, self._parts = self._parts, []
        if not parts:
            return []
        return [parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)]


class _Bytes:
    """The file object tarfile copies a member's bytes from, without a copy of them."""

    def __init__(self, data: bytes) -> None:
        self._view, self._at = memoryview(data), 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else self._at + size
        chunk = self._view[self._at:end]
        self._at += len(chunk)
        return chunk


_GHOST = 64  # RPMFILE_GHOST: listed in the header, not in the payload


def _names(entry) -> list[str]:
    """A payload entry's name and those of the hard links that share its bytes."""
    return list(dict.fromkeys([entry.name, *(getattr(link, "name", link) for link in getattr(entry, "links", ()) or ())]))


class _Payload:
    """An RPM opened for its header, file list and payload (signatures not checked: the bytes are the
    pinned ones)."""

    def __init__(self, path: Path, *, check_digests: bool = True) -> None:
        import rpm

        ts = rpm.TransactionSet()
        ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | (0 if check_digests else rpm._RPMVSF_NODIGESTS))
        self.path = path
        self.fd = rpm.fd.open(str(path))
        try:
            hdr = ts.hdrFromFdno(self.fd)
        except rpm.error as exc:
            self.fd.close()
            raise UnsafePayload(f"{path.name}: unreadable or tampered header ({exc})") from None
        self.nevra = hdr[rpm.RPMTAG_NEVRA]
        self.files = rpm.files(hdr)
        self._rpm, self._hdr = rpm, hdr
        self._archive = None

    @property
    def archive(self):
        if self._archive is None:
            rpm = self._rpm
            self._archive = self.files.archive(rpm.fd(self.fd, flags=self._hdr[rpm.RPMTAG_PAYLOADCOMPRESSOR]))
        return self._archive

    def __enter__(self) -> _Payload:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        self.fd.close()
        if isinstance(exc, (OSError, self._rpm.error)):  # a payload that ends early or does not decompress
            raise UnsafePayload(f"{self.path.name}: the payload is damaged ({exc}); replace the package in"
                                " the tree") from None

