"""Files: one atomic write, one sha256, and one way to read a file the user names.

``atomic_write`` never opens a name another user could have planted: the temporary file is
made by ``mkstemp`` (``O_CREAT|O_EXCL``, mode 0600, a random name) in the destination's own
folder and renamed over the destination, so a reader sees the old file or the new one and a
symlink at the destination is replaced, not followed. ``read_user_file`` refuses FIFOs,
devices and folders (a FIFO would block forever, ``/dev/zero`` would never end) and caps
the size.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from rebuild.errors import UsageError

CHUNK = 1 << 20
# a name rebuild will put into a path: a package name, version, release, arch or file name; no separator,
# no control character, not a dot file
SAFE_NAME = re.compile(r"^[A-Za-z0-9_+~^][A-Za-z0-9._+~^-]*$")
# what any text file a user names may hold (specs, recipes, manifests, .mc files, lists)
MAX_TEXT = 16 << 20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def sha256_bytes(data: bytes) -> str:
    """The sha256 of *data*, hex."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """The sha256 of the file at *path*, read in 1 MiB blocks."""
    with open(path, "rb") as fh:
        digest = hashlib.sha256()
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def atomic_output(path: Path, *, mode: int | None = None, binary: bool = True,
                  encoding: str = "utf-8") -> Iterator[IO]:
    """Write *path* through a fresh temporary file beside it, renamed into place when the block ends
    without an error (removed otherwise). *mode* defaults to 0666 less the umask."""
    path = Path(path)
    import tempfile  # here: the no-op fast path reads digests and never writes

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding=encoding, newline="")) as fh:
            yield fh
        os.chmod(tmp, (0o666 & ~_UMASK) if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write(path: Path, data: bytes | str, *, mode: int | None = None, encoding: str = "utf-8") -> None:
    """Replace *path* with *data* atomically (see ``atomic_output``)."""
    with atomic_output(path, mode=mode) as fh:
        fh.write(data.encode(encoding) if isinstance(data, str) else data)


def atomic_copy(src: Path, dest: Path, *, mode: int | None = None) -> None:
    """Copy the regular file *src* to *dest* atomically."""
    with open(src, "rb") as fh, atomic_output(dest, mode=mode) as out:
        import shutil

        shutil.copyfileobj(fh, out, CHUNK)


def open_regular(path: Path, what: str = "file"):
    """Open *path* for reading only if it is a regular file: a FIFO, device or folder is a UsageError.

    Opened non-blocking first (a FIFO with no writer would block the open itself), then checked
    with fstat on the open descriptor, so nothing can be swapped in between."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a folder, not a {what}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else \
            "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file"
        raise UsageError(f"{path}: is {kind}, not a {what}; give a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_user_file(path: Path, what: str = "file", *, max_bytes: int = MAX_TEXT) -> bytes:
    """The bytes of a regular file the user named, at most *max_bytes* (else a UsageError naming the cap)."""
    with open_regular(path, what) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UsageError(f"{path}: over {max_bytes >> 20} MiB; that is not a {what} rebuild reads")
    return data


def read_json(path: Path, what: str = "JSON file", *, max_bytes: int = MAX_TEXT, missing_ok: bool = False):
    """The parsed JSON of a regular file of at most *max_bytes*: a FIFO, device, folder, oversized file,
    bad UTF-8, bad JSON or nesting too deep for the parser is one UsageError naming the file. A file that
    does not exist is None with *missing_ok*."""
    import json

    if missing_ok and not os.path.lexists(path):
        return None
    raw = read_user_file(path, what, max_bytes=max_bytes)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a readable {what} ({str(exc).splitlines()[0][:120]})") from None
    except RecursionError:
        raise UsageError(f"{path}: nested too deeply to be a {what}") from None


def work_folder(parent: Path, prefix: str) -> Path:
    """A fresh folder ``<prefix>-<pid>-<random>`` in *parent*, after removing those of processes that are gone
    (a run killed with SIGKILL cannot remove its own: an unpacked root would stay in the cache for good)."""
    import shutil
    import tempfile

    for old in Path(parent).glob(f"{prefix}-*-*"):
        pid = old.name[len(prefix) + 1:].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(old, ignore_errors=True)
            except PermissionError:
                pass
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-{os.getpid()}-", dir=parent))


def is_inside(path: Path, folder: Path) -> bool:
    """Whether *path*, with every symlink resolved, lies inside *folder* (also resolved)."""
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(folder))
        return True
    except ValueError:
        return False
