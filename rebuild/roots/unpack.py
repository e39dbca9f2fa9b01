"""Writing into a root folder as root without ever following a symlink that a package planted.

Every path is walked one component at a time from an open descriptor of the root
(``O_DIRECTORY | O_NOFOLLOW``, ``dir_fd``-relative calls): a symlink anywhere on the way to a
file, or at the place of a folder, is refused or left alone, never followed. ``unpack``
writes an RPM's payload this way, refusing absolute-after-normalisation or ``..`` names and
device files; ``RootDir`` is what the image code uses to add the build user and to check that
``etc``, ``tmp``, ``var/tmp`` and ``home`` are real folders.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import OrderedDict
from pathlib import Path, PurePosixPath

from rebuild.errors import UsageError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePayload(UsageError):
    exit_code = 1


def safe_relative(name: str) -> PurePosixPath:
    """*name* as a path relative to the root; UnsafePayload for ``..``, ``.``, empty parts or NUL."""
    path = PurePosixPath(name)
    parts = path.parts[1:] if path.is_absolute() else path.parts
    if not parts or any(p in ("..", ".", "") for p in parts) or "\0" in name:
        raise UnsafePayload(f"unsafe path {name!r} in the payload")
    return PurePosixPath(*parts)


class RootDir:
    """A root folder opened once; every operation resolves its path without following symlinks."""

    # descriptors of folders already walked (they stay real folders: nothing here removes a folder), most
    # recent last; a payload lists its paths in order, so a few dozen spare most of the walking
    _KEEP = 64

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.fd = os.open(self.root, _DIR_FLAGS)
        self._dirs: OrderedDict[tuple[str, ...], int] = OrderedDict()

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()
        os.close(self.fd)

    def __enter__(self) -> RootDir:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open_dir(self, rel: PurePosixPath, *, create: bool = True, mode: int = 0o755, what: str = "") -> int:
        """A descriptor of the folder *rel* (made when missing); UnsafePayload if a part is a symlink or a file.
        The caller closes it."""
        parts = rel.parts
        depth = len(parts)
        while depth and parts[:depth] not in self._dirs:
            depth -= 1
        fd = os.dup(self._dirs[parts[:depth]] if depth else self.fd)
        try:
            for i in range(depth, len(parts)):
                part = parts[i]
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, mode, dir_fd=fd)
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        where = PurePosixPath(*parts[: i + 1])
                        kind = "the symlink" if os.path.islink(self.root / where) else "the non-folder"
                        raise UnsafePayload(f"{what + ': ' if what else ''}/{rel} would be written through"
                                            f" {kind} /{where}") from None
                    raise
                os.close(fd)
                fd = child
                self._remember(parts[: i + 1], fd)
            if depth == len(parts) and depth:
                self._dirs.move_to_end(parts)
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _remember(self, key: tuple[str, ...], fd: int) -> None:
        self._dirs[key] = os.dup(fd)
        while len(self._dirs) > self._KEEP:
            os.close(self._dirs.popitem(last=False)[1])

    def entry(self, rel: PurePosixPath) -> os.stat_result | None:
        """lstat of *rel* (its parents must be real folders), or None when absent."""
        parent = self.open_dir(rel.parent, create=False) if rel.parent.parts else os.dup(self.fd)
        try:
            return os.stat(rel.name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return None
        finally:
            os.close(parent)

    def ensure_real_dir(self, rel: PurePosixPath, mode: int | None = None) -> None:
        """*rel* exists as a real folder (made when missing); UnsafePayload when it is a symlink or a file."""
        fd = self.open_dir(rel, what="the image root")
        try:
            if mode is not None:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)

    def read_file(self, rel: PurePosixPath) -> bytes | None:
        parent = self.open_dir(rel.parent)
        try:
            fd = os.open(rel.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePayload(f"/{rel} in the image root is a symlink; refusing to read through it") from None
            raise
        finally:
            os.close(parent)
        with os.fdopen(fd, "rb") as fh:
            return fh.read()

    def write_file(self, rel: PurePosixPath, data: bytes, mode: int, *, what: str = "") -> None:
        """Replace *rel* with a new regular file (an existing file or symlink there is removed, not followed)."""
        parent = self.open_dir(rel.parent, what=what)
        try:
            self._clear(parent, rel, what)
            fd = os.open(rel.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                os.fchmod(fh.fileno(), mode)
        finally:
            os.close(parent)

    def symlink(self, rel: PurePosixPath, target: str, *, what: str = "") -> None:
        parent = self.open_dir(rel.parent, what=what)
        try:
            self._clear(parent, rel, what)
            os.symlink(target, rel.name, dir_fd=parent)
        finally:
            os.close(parent)

    def mkdir(self, rel: PurePosixPath, mode: int, *, what: str = "") -> None:
        """A folder at *rel*; a symlink already there is left alone (never chmod'ed through)."""
        parent = self.open_dir(rel.parent, what=what)
        try:
            try:
                st = os.stat(rel.name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                os.mkdir(rel.name, mode, dir_fd=parent)
                st = None
            if st is not None and stat.S_ISLNK(st.st_mode):
                return
            if st is not None and not stat.S_ISDIR(st.st_mode):
                raise UnsafePayload(f"{what + ': ' if what else ''}/{rel} is a file where a folder is wanted")
            fd = os.open(rel.name, _DIR_FLAGS, dir_fd=parent)
            try:
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        finally:
            os.close(parent)

    def chown(self, rel: PurePosixPath, uid: int, gid: int) -> None:
        fd = self.open_dir(rel)
        try:
            os.fchown(fd, uid, gid)
        finally:
            os.close(fd)

    @staticmethod
    def _clear(parent: int, rel: PurePosixPath, what: str) -> None:
        try:
            st = os.stat(rel.name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            raise UnsafePayload(f"{what + ': ' if what else ''}/{rel} is a folder where a file is wanted")
        os.unlink(rel.name, dir_fd=parent)


def unpack(path: Path, root: Path, *, check_digests: bool = True) -> int:
    """Write the payload of the RPM at *path* into *root*; return the number of entries.

    Refuses absolute-after-normalisation or ``..`` paths, writing through a symlink (in any
    part of the path), and device files (the root's /dev comes from the container engine)."""
    import rpm

    ts = rpm.TransactionSet()
    ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | (0 if check_digests else rpm._RPMVSF_NODIGESTS))
    fd = rpm.fd.open(str(path))
    count = 0
    try:
        try:
            hdr = ts.hdrFromFdno(fd)
        except rpm.error as exc:
            raise UnsafePayload(f"{path.name}: unreadable or tampered header ({exc})") from None
        package = hdr[rpm.RPMTAG_NEVRA]
        files = rpm.files(hdr)
        # check every name before writing anything
        for f in files:
            safe_relative(f.name)
            if stat.S_ISCHR(f.mode) or stat.S_ISBLK(f.mode):
                raise UnsafePayload(f"{package}: device file {f.name} refused; the container engine provides /dev")
        archive = files.archive(rpm.fd(fd, flags=hdr[rpm.RPMTAG_PAYLOADCOMPRESSOR]))
        root.mkdir(parents=True, exist_ok=True)
        with RootDir(root) as tree:
            for entry in archive:
                rel = safe_relative(entry.name)
                mode = entry.mode
                if stat.S_ISDIR(mode):
                    tree.mkdir(rel, stat.S_IMODE(mode), what=package)
                elif stat.S_ISLNK(mode):
                    tree.symlink(rel, entry.linkto, what=package)
                elif stat.S_ISREG(mode):
                    data = archive.read() if archive.hascontent() else b""
                    linked = [getattr(link, "name", link) for link in getattr(entry, "links", ()) or ()]
                    for name in dict.fromkeys([entry.name, *linked]):
                        if name != entry.name and not archive.hascontent():
                            continue
                        tree.write_file(safe_relative(name), data, stat.S_IMODE(mode), what=package)
                elif stat.S_ISFIFO(mode):
                    continue
                count += 1
    finally:
        fd.close()
    return count
