"""Files into and out of a container through the engine API (tar archives), for engines that cannot see
this host's folders (``DOCKER_HOST=tcp://`` or ``ssh://``): what a bind mount shares, copied instead.

``archive_of`` packs a host file or folder under the path it has in the container, owned by the mount's
owner; ``extract`` unpacks what the engine sends back into the host folder with tarfile's ``data`` filter
(no absolute names, no ``..``, no link leaving the folder, no device files): a container's output is
not trusted. ``frames`` and ``close_stream`` read and close the streams of exec and attach.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from rebuild.errors import BuildFailed, EnvironmentProblem
from rebuild.log import Log
from rebuild.systems.engine import Mount

# past this size an archive is spooled to a temporary file rather than held in memory
_SPOOL = 64 << 20


def archive_of(mounts: list[tuple[Mount, int, int]]):
    """One tar archive (a file object at offset 0) of each mount's source, named by its target without the
    leading slash (the engine makes the folders above it), every entry owned by the uid:gid given with it."""
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL)
    with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for mount, uid, gid in mounts:
            for path, arcname in _walk(mount.source, PurePosixPath(mount.target).relative_to("/")):
                info = tar.gettarinfo(str(path), arcname=str(arcname))
                info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
                if mount.read_only:
                    info.mode &= ~0o222
                if info.isreg():
                    with open(path, "rb") as fh:
                        tar.addfile(info, fh)
                elif info.isdir() or info.issym():
                    tar.addfile(info)
    spool.seek(0)
    return spool


def _walk(source: Path, name: PurePosixPath) -> Iterable[tuple[Path, PurePosixPath]]:
    yield source, name
    if source.is_dir() and not source.is_symlink():
        for root, dirs, files in os.walk(source):
            rel = PurePosixPath(Path(root).relative_to(source).as_posix())
            for entry in sorted(dirs) + sorted(files):
                yield Path(root) / entry, name / rel / entry


def extract(chunks: Iterable[bytes], dest_parent: Path, expected_top: str, host_name: str | None = None) -> None:
    """Unpack the engine's archive of one path (its top entry is *expected_top*) into *dest_parent*, under
    *host_name* when the host's folder is named otherwise (the work tree mounted as /build)."""
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL)
    for chunk in chunks:
        spool.write(chunk)
    spool.seek(0)
    try:
        with tarfile.open(fileobj=spool, mode="r:") as tar:
            members = tar.getmembers()
            for member in members:
                top, _, rest = member.name.partition("/")
                if top != expected_top:
                    raise BuildFailed(f"the engine sent {member.name!r} for {expected_top}; refusing the copy")
                if host_name is not None:
                    member.name = f"{host_name}/{rest}" if rest else host_name
            _clear_types(dest_parent, members)
            if getattr(tarfile, "data_filter", None) is not None:
                tar.extractall(dest_parent, members=members, filter="data")
            else:  # Python < 3.11.4 (Debian 12's 3.11.2) has no extraction filters
                tar.extractall(dest_parent, members=[data_member(m, dest_parent) for m in members])
    except (tarfile.TarError, OSError) as exc:
        raise BuildFailed(f"copying {expected_top} out of the container failed: {exc}") from None
    finally:
        spool.close()


def data_member(member: tarfile.TarInfo, dest_parent: Path) -> tarfile.TarInfo:
    """What tarfile's ``data`` filter does, for Pythons without it: refuse absolute names, ``..``, links
    that leave *dest_parent*, devices and FIFOs; drop set-id bits and owners (nothing is chowned)."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise tarfile.TarError(f"{member.name!r} leaves the destination")
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise tarfile.TarError(f"{member.name!r} is a device or FIFO")
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        base = name.parent if member.issym() else PurePosixPath()
        resolved = os.path.normpath(base / target)
        if target.is_absolute() or resolved == ".." or resolved.startswith("../"):
            raise tarfile.TarError(f"{member.name!r} links outside the destination ({member.linkname!r})")
    member.uid, member.gid, member.uname, member.gname = os.getuid(), os.getgid(), "", ""
    member.mode &= 0o755
    if member.isreg() and not member.mode & 0o100:
        member.mode &= ~0o111
    return member


def _clear_types(dest_parent: Path, members: list[tarfile.TarInfo]) -> None:
    """A host entry whose type differs from the archive's (a folder where a file comes) is removed first,
    the way a bind mount would simply show the container's."""
    for member in members:
        path = dest_parent / member.name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        host_dir = stat.S_ISDIR(st.st_mode)
        if host_dir != member.isdir() or stat.S_ISLNK(st.st_mode):
            if host_dir:
                shutil.rmtree(path)
            else:
                path.unlink()


def hosts_file(hostname: str) -> str:
    """/etc/hosts with *hostname* first on the 127.0.0.1 line: sendmail and rpmbuild want a fully qualified
    canonical name."""
    short = hostname.split(".")[0]
    return f"127.0.0.1\t{hostname} {short} localhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def tar_bytes(entries: dict[str, bytes], mode: int = 0o644) -> bytes:
    """A small archive of named files (the hosts file)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def copy_mounts(api, container_id: str, mounts: list[Mount], log: Log, owner: Path | None = None) -> None:
    """The mounts' host files and folders copied into the container at their targets in one archive, owned
    as *owner* (default: each source) is on the host."""

    if not mounts:
        return
    from docker.errors import APIError

    owned = []
    for mount in mounts:
        st = (owner or mount.source).stat()
        owned.append((mount, st.st_uid, st.st_gid))
        log.command(["docker", "cp", str(mount.source), f"{container_id[:12]}:{mount.target}"], "engine")
    with archive_of(owned) as archive:
        try:
            api.put_archive(container_id, "/", archive)
        except APIError as exc:
            raise BuildFailed(f"cannot copy {', '.join(str(m.source) for m in mounts)} into the container:"
                              f" {exc.explanation or exc}") from None


# ---------------------------------------------------------------- streams the engine hands out

# An engine's answer (a JSON document, or pull and push progress) is bounded in size; one read in full before
# it is used must also arrive within a deadline (a local engine sends one in milliseconds, and the engine's
# long work (a commit, an import) happens before its answer starts). Archives and exec or attach output
# are streams whose readers bound them.
ANSWER_BYTES = 64 << 20
ANSWER_SECONDS = 120
_PROGRESS = re.compile(r"/images/(create|[^?]+/push)(\?|$)")


class EngineAnswerTooLong(EnvironmentProblem):
    pass


def bound_answers(api, where: str) -> None:
    """Bound every answer of the SDK's APIClient *api* (see ANSWER_BYTES); *where* names the engine."""

    def hook(response, *args, stream: bool = False, **kwargs):
        path = urlsplit(response.request.url).path
        if not stream or _PROGRESS.search(path):
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > ANSWER_BYTES:
                raise EngineAnswerTooLong(f"Docker engine at {where}: its answer to {path} is {int(length)} bytes"
                                          f" (over {ANSWER_BYTES >> 20} MiB); is that a Docker engine?")
            response.raw = _BoundedBody(response.raw, f"Docker engine at {where}: its answer to {path}",
                                        None if stream else time.monotonic() + ANSWER_SECONDS)
        return response

    api.hooks["response"].append(hook)


class _BoundedBody:
    """A response's body as requests and the SDK read it, ended past ANSWER_BYTES or its deadline; all else
    is the response's own."""

    def __init__(self, raw, what: str, deadline: float | None) -> None:
        self._raw, self._what, self._deadline, self._left = raw, what, deadline, ANSWER_BYTES

    def _counted(self, data: bytes) -> bytes:
        self._left -= len(data)
        if self._left < 0:
            raise EngineAnswerTooLong(f"{self._what} goes on past {ANSWER_BYTES >> 20} MiB; is that a Docker engine?")
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise EngineAnswerTooLong(f"{self._what} took over {ANSWER_SECONDS} s; is that a Docker engine?")
        return data

    def read(self, *args, **kwargs) -> bytes:
        return self._counted(self._raw.read(*args, **kwargs))

    def stream(self, amt: int = 1 << 16, decode_content: bool | None = None) -> Iterator[bytes]:
        # read1: what one receive brings (read(amt) would wait for all of amt, a byte now and then)
        while data := self._raw.read1(amt, decode_content=decode_content):
            yield self._counted(data)

    def __getattr__(self, name: str):
        return getattr(self._raw, name)



def frames(stream) -> Iterator[bytes]:
    """The payloads of a multiplexed (non-tty) exec or attach stream, stdout and stderr alike, to its end."""
    from docker.utils.socket import frames_iter

    return (data for _, data in frames_iter(stream, False))


def close_stream(stream) -> None:
    """Close a stream the SDK handed out (its SocketIO leaves the socket open on close()). Over ssh:// the
    stream is an ssh process's pipes; one whose process has ended already raises BrokenPipeError: it is
    closed then."""
    inner = getattr(stream, "_sock", None)
    try:
        stream.close()
        if inner is not None:
            inner.close()
    except OSError:
        pass
