"""Build roots from an RPM tree (Red Hat's ``RedHat/RPMS`` layout, or any folder of RPMs).

``list_tree`` reads a local folder or an HTTP directory index; ``resolve`` picks, for
each wanted name, the newest package by rpm's version order across the release tree
and its updates; ``unpack`` writes a payload into a root folder refusing absolute or
``..`` paths, writes through symlinks, and device files.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urljoin, urlparse

from rebuild.errors import ConfigError, EnvironmentProblem, UsageError
from rebuild.evr import EVR, compare_evr
from rebuild.fetch import local_path, redact

_FILENAME = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<release>[^-]+)\.(?P<arch>[^.]+)\.rpm$")
ARCHES = {
    "i686": ["i686", "i586", "i486", "i386", "noarch"],
    "i386": ["i386", "noarch"],
    "x86_64": ["x86_64", "noarch"],
    "aarch64": ["aarch64", "noarch"],
}


@dataclass(frozen=True)
class TreePackage:
    name: str
    version: str
    release: str
    arch: str
    filename: str
    url: str
    origin: str  # "os" or "updates"
    sha256: str | None = None

    @property
    def evr(self) -> EVR:
        return EVR(None, self.version, self.release)


class UnsafePayload(UsageError):
    exit_code = 1


def read_package_list(path: Path) -> list[str]:
    """Package names, one per line; blank lines and # comments ignored."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the package list: {exc.strerror}") from None
    names = []
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", line):
            raise ConfigError(f"{path}:{number}: {line!r} is not a package name")
        names.append(line)
    return names


def _tree_root(location: str) -> str:
    """The folder holding the RPMs: LOCATION/RedHat/RPMS when it has the archive layout, else LOCATION."""
    base = location if location.endswith("/") else location + "/"
    local = local_path(base)
    if local is not None:
        return str(local / "RedHat" / "RPMS") + "/" if (local / "RedHat" / "RPMS").is_dir() else str(local) + "/"
    import requests

    try:
        probe = requests.get(urljoin(base, "RedHat/RPMS/"), timeout=30)
    except requests.RequestException as exc:
        raise EnvironmentProblem(f"{redact(base)}: cannot list the tree: {type(exc).__name__}") from None
    return urljoin(base, "RedHat/RPMS/") if probe.status_code == 200 else base


def list_tree(location: str, origin: str) -> list[TreePackage]:
    """Every RPM the tree at *location* offers (with sha256 from its SHA256SUMS when it has one)."""
    root = _tree_root(location)
    local = local_path(root)
    if local is not None:
        if not local.is_dir():
            raise UsageError(f"{location}: no such folder")
        names = sorted(p.name for p in local.iterdir() if p.name.endswith(".rpm"))
        sums_text = (local / "SHA256SUMS").read_text() if (local / "SHA256SUMS").is_file() else ""
        url_of = lambda n: (local / n).as_uri()  # noqa: E731
    else:
        import requests

        try:
            index = requests.get(root, timeout=30)
        except requests.RequestException as exc:
            raise EnvironmentProblem(f"{redact(root)}: cannot list the tree: {type(exc).__name__}") from None
        if index.status_code != 200:
            raise EnvironmentProblem(f"{redact(root)}: HTTP {index.status_code} listing the tree")
        names = sorted({Path(urlparse(h).path).name for h in re.findall(r'href="([^"]+\.rpm)"', index.text)})
        sums = requests.get(urljoin(root, "SHA256SUMS"), timeout=30)
        sums_text = sums.text if sums.status_code == 200 else ""
        url_of = lambda n: urljoin(root, n)  # noqa: E731
    sums = {}
    for line in sums_text.splitlines():
        parts = line.split()
        if len(parts) == 2 and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            sums[parts[1].lstrip("*").split("/")[-1]] = parts[0]
    packages = []
    for name in names:
        m = _FILENAME.match(name)
        if m and m.group("arch") != "src":
            packages.append(TreePackage(m["name"], m["version"], m["release"], m["arch"], name, url_of(name), origin,
                                        sums.get(name)))
    if not packages:
        raise UsageError(f"{location}: no RPMs found (expected RedHat/RPMS/*.rpm or *.rpm)")
    return packages


def resolve(wanted: list[str], trees: list[list[TreePackage]], arch: str) -> list[TreePackage]:
    """The newest package of each wanted name (updates win when newer); error naming what is missing."""
    allowed = ARCHES.get(arch, [arch, "noarch"])
    chosen: dict[str, TreePackage] = {}
    for tree in trees:
        for pkg in tree:
            if pkg.name not in wanted or pkg.arch not in allowed:
                continue
            best = chosen.get(pkg.name)
            if best is None:
                chosen[pkg.name] = pkg
                continue
            order = compare_evr(pkg.evr, best.evr)
            if order > 0 or (order == 0 and allowed.index(pkg.arch) < allowed.index(best.arch)):
                chosen[pkg.name] = pkg
    missing = [n for n in wanted if n not in chosen]
    if missing:
        raise UsageError(f"the tree has no {arch}-compatible package for: {', '.join(missing)}")
    return [chosen[n] for n in wanted]


def _safe_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    parts = path.parts[1:] if path.is_absolute() else path.parts
    if not parts or any(p in ("..", ".", "") for p in parts) or "\0" in name:
        raise UnsafePayload(f"unsafe path {name!r} in the payload")
    return PurePosixPath(*parts)


def _no_symlink_parents(root: Path, rel: PurePosixPath, package: str) -> None:
    current = root
    for part in rel.parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise UnsafePayload(f"{package}: {rel} would be written through the symlink /{current.relative_to(root)}")


def unpack(path: Path, root: Path, *, check_digests: bool = True) -> int:
    """Write the payload of the RPM at *path* into *root*; return the number of entries.

    Refuses absolute-after-normalisation or ``..`` paths, writing through a symlink, and
    device files (the root's /dev comes from the container engine)."""
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
            _safe_relative(f.name)
            if stat.S_ISCHR(f.mode) or stat.S_ISBLK(f.mode):
                raise UnsafePayload(f"{package}: device file {f.name} refused; the container engine provides /dev")
        archive = files.archive(rpm.fd(fd, flags=hdr[rpm.RPMTAG_PAYLOADCOMPRESSOR]))
        for entry in archive:
            rel = _safe_relative(entry.name)
            _no_symlink_parents(root, rel, package)
            target = root / rel
            mode = entry.mode
            if stat.S_ISDIR(mode):
                target.mkdir(parents=True, exist_ok=True)
                os.chmod(target, stat.S_IMODE(mode))
            elif stat.S_ISLNK(mode):
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_symlink() or target.exists():
                    target.unlink()
                os.symlink(entry.linkto, target)
            elif stat.S_ISREG(mode):
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_symlink():
                    target.unlink()
                data = archive.read() if archive.hascontent() else b""
                linked = [getattr(link, "name", link) for link in getattr(entry, "links", ()) or ()]
                for name in dict.fromkeys([entry.name, *linked]):
                    if name != entry.name and not archive.hascontent():
                        continue
                    dest = root / _safe_relative(name)
                    _no_symlink_parents(root, _safe_relative(name), package)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with open(dest, "wb") as out:
                        out.write(data)
                    os.chmod(dest, stat.S_IMODE(mode))
            elif stat.S_ISFIFO(mode):
                continue
            count += 1
    finally:
        fd.close()
    return count
