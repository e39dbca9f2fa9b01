"""What an RPM tree offers: every package's name, version, dependencies and files, from its headers.

The headers come from wherever the tree keeps them:
- ``RedHat/base/hdlist`` (Red Hat's trees of 1998-2003): every header in one file, one download.
  Red Hat's genhdlist keeps in it only the files some package requires (the rest went to
  ``hdlist2``), which is all a solver needs; the RPM's file name is tag 1000000.
- ``repodata/`` (rpm-md): primary and filelists, read with createrepo_c.
- a folder of RPMs: each package's own header; over HTTP only the header, with Range requests,
  several at once, cached by URL, size and ETag (a package that is not used is never downloaded).
A ``SHA256SUMS`` beside the packages gives their digests. Parsed headers are cached under
``<cache>/headers/``.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from rebuild.errors import EnvironmentProblem, UsageError
from rebuild.files import atomic_write, open_regular, read_user_file
from rebuild.log import Log
from rebuild.roots.treehttp import HEADER_MAGIC, MAX_HDLIST, byte_range, get, header_size, rpm_links
from rebuild.systems.store import headers_dir
from rebuild.systems.urls import local_path, redact

INDEX_FORMAT = 2  # cached indexes of another format are read again
HDLIST_FILENAME_TAG = 1000000
_FIRST_RANGE = 64 << 10
_PARALLEL = 8
_SENSE = {0: "", 2: "<", 4: ">", 8: "=", 10: "<=", 12: ">="}
# Red Hat's updates trees keep one folder per arch (updates/7.3/en/os/i386/, .../i686/, .../noarch/)
ARCH_FOLDERS = ("noarch", "i386", "i486", "i586", "i686", "athlon", "x86_64", "aarch64", "ppc", "ppc64le", "s390x")


@dataclass(frozen=True)
class PackageMeta:
    """One package of a tree, as the solver sees it."""

    name: str
    epoch: int | None
    version: str
    release: str
    arch: str
    provides: tuple[tuple[str, str, str], ...]
    requires: tuple[tuple[str, str, str], ...]
    conflicts: tuple[tuple[str, str, str], ...]
    obsoletes: tuple[tuple[str, str, str], ...]
    files: tuple[str, ...]
    url: str
    origin: str  # "os", "updates", ...
    size: int | None = None
    sha256: str | None = None

    @property
    def evr(self) -> str:
        return (f"{self.epoch}:" if self.epoch is not None else "") + f"{self.version}-{self.release}"

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.evr}.{self.arch}"

    @property
    def filename(self) -> str:
        return unquote(Path(urlsplit(self.url).path).name)

    @classmethod
    def from_dict(cls, data: dict) -> PackageMeta:
        data = dict(data)
        for key in ("provides", "requires", "conflicts", "obsoletes"):
            data[key] = tuple(tuple(d) for d in data[key])
        data["files"] = tuple(data["files"])
        return cls(**data)


def _deps(hdr, names: int, flags: int, versions: int) -> tuple[tuple[str, str, str], ...]:
    import rpm

    out = []
    for name, flag, version in zip(hdr[names] or [], hdr[flags] or [], hdr[versions] or [], strict=False):
        op = _SENSE.get(flag & (rpm.RPMSENSE_LESS | rpm.RPMSENSE_GREATER | rpm.RPMSENSE_EQUAL), "")
        out.append((str(name), op, str(version) if op else ""))
    return tuple(out)


def from_header(hdr, url: str, origin: str, size: int | None = None, sha256: str | None = None) -> PackageMeta:
    """A librpm header as a PackageMeta."""
    import rpm

    epoch = hdr[rpm.RPMTAG_EPOCH]
    return PackageMeta(
        name=str(hdr[rpm.RPMTAG_NAME]), epoch=int(epoch) if epoch is not None else None,
        version=str(hdr[rpm.RPMTAG_VERSION]), release=str(hdr[rpm.RPMTAG_RELEASE]), arch=str(hdr[rpm.RPMTAG_ARCH]),
        provides=_deps(hdr, rpm.RPMTAG_PROVIDENAME, rpm.RPMTAG_PROVIDEFLAGS, rpm.RPMTAG_PROVIDEVERSION),
        requires=_deps(hdr, rpm.RPMTAG_REQUIRENAME, rpm.RPMTAG_REQUIREFLAGS, rpm.RPMTAG_REQUIREVERSION),
        conflicts=_deps(hdr, rpm.RPMTAG_CONFLICTNAME, rpm.RPMTAG_CONFLICTFLAGS, rpm.RPMTAG_CONFLICTVERSION),
        obsoletes=_deps(hdr, rpm.RPMTAG_OBSOLETENAME, rpm.RPMTAG_OBSOLETEFLAGS, rpm.RPMTAG_OBSOLETEVERSION),
        files=tuple(str(f) for f in hdr[rpm.RPMTAG_FILENAMES] or ()),
        url=url, origin=origin, size=size, sha256=sha256,
    )


# ---------------------------------------------------------------- the cache of parsed headers


class HeaderCache:
    """Parsed headers under ``<cache>/headers/``, one JSON file per key."""

    def __init__(self, root: Path) -> None:
        self.root = headers_dir(root)

    def _path(self, key: str) -> Path:
        return self.root / hashlib.sha256(f"{INDEX_FORMAT}:{key}".encode()).hexdigest()

    def get(self, key: str) -> list[PackageMeta] | None:
        try:
            data = json.loads(self._path(key).read_text())
            return [PackageMeta.from_dict(d) for d in data]
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def put(self, key: str, packages: list[PackageMeta]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # stored with each URL's credentials redacted; readers put back the URL they asked for
        atomic_write(self._path(key), json.dumps([{**asdict(p), "url": redact(p.url)} for p in packages]))


class IndexStats:
    """How many headers were read from the cache and how many were fetched (for the bench)."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0


# ---------------------------------------------------------------- reading a tree


def read_tree(location: str, origin: str, cache: Path, log: Log | None = None,
              stats: IndexStats | None = None) -> list[PackageMeta]:
    """Every binary package the tree at *location* (a folder, file:// or http(s) URL) offers."""
    log = log or Log(quiet=True)
    stats = stats or IndexStats()
    headers = HeaderCache(cache)
    base = location if location.endswith("/") else location + "/"
    local = local_path(base)
    if local is not None:
        packages = _read_local(local, base, origin, headers, stats)
    else:
        packages = _read_http(base, origin, headers, stats, log)
    packages = [p for p in packages if p.arch != "src"]
    if not packages:
        raise UsageError(f"{redact(location)}: no RPMs found (expected RedHat/RPMS/*.rpm, RedHat/base/hdlist,"
                         " repodata/ or *.rpm)")
    return packages


def _sums(text: str) -> dict[str, str]:
    sums = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            sums[parts[1].lstrip("*").split("/")[-1]] = parts[0]
    return sums


def _read_local(root: Path, base: str, origin: str, headers: HeaderCache, stats: IndexStats) -> list[PackageMeta]:
    import rpm

    if not root.is_dir():
        raise UsageError(f"{root}: no such folder")
    rpms = root / "RedHat" / "RPMS" if (root / "RedHat" / "RPMS").is_dir() else root
    sums_file = rpms / "SHA256SUMS"
    sums = _sums(read_user_file(sums_file, "SHA256SUMS").decode("utf-8", "replace")) if sums_file.exists() else {}
    hdlist = root / "RedHat" / "base" / "hdlist"
    if hdlist.is_file():
        return _from_hdlist(read_user_file(hdlist, "hdlist", max_bytes=MAX_HDLIST), rpms.as_uri() + "/", origin, sums,
                            headers, stats)
    if (root / "repodata" / "repomd.xml").is_file():
        return _from_repodata(root, root.as_uri() + "/", origin, headers, stats)
    out = []
    ts = rpm.TransactionSet()
    ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | rpm._RPMVSF_NODIGESTS)
    files = sorted(rpms.glob("*.rpm")) or sorted(p for a in ARCH_FOLDERS for p in (rpms / a).glob("*.rpm"))
    for path in files:
        st = path.stat()
        key = f"file:{path}:{st.st_size}:{st.st_mtime_ns}"
        cached = headers.get(key)
        if cached is not None:
            stats.hits += 1
            out += [_with(cached[0], origin=origin, sha256=sums.get(path.name))]
            continue
        stats.misses += 1
        with open_regular(path, "RPM") as fh:
            try:
                hdr = ts.hdrFromFdno(fh.fileno())
            except rpm.error:
                raise UsageError(f"{path}: not a readable RPM; remove it from the tree") from None
        meta = from_header(hdr, path.as_uri(), origin, st.st_size, sums.get(path.name))
        headers.put(key, [meta])
        out.append(meta)
    return out


def _with(meta: PackageMeta, **changes) -> PackageMeta:
    from dataclasses import replace

    return replace(meta, **changes)


def _from_hdlist(data: bytes, rpms_url: str, origin: str, sums: dict[str, str], headers: HeaderCache,
                 stats: IndexStats) -> list[PackageMeta]:
    import rpm

    key = "hdlist:" + hashlib.sha256(data).hexdigest()
    cached = headers.get(key)
    if cached is not None:
        stats.hits += len(cached)
        return [_with(p, origin=origin, url=rpms_url + p.filename, sha256=sums.get(p.filename)) for p in cached]
    out = []
    offset = 0
    while offset + 16 <= len(data):
        if data[offset:offset + 3] != HEADER_MAGIC:
            raise UsageError(f"{rpms_url}: hdlist is damaged at byte {offset}")
        il, dl = struct.unpack(">II", data[offset + 8:offset + 16])
        end = offset + 16 + 16 * il + dl
        try:
            hdr = rpm.hdr(data[offset + 8:end])
            hdr[rpm.RPMTAG_NAME]  # noqa: B018 - a header without a name is as damaged as one rpm refuses
        except (rpm.error, ValueError, TypeError, KeyError):
            raise UsageError(f"{rpms_url}: hdlist is damaged at byte {offset}") from None
        offset = end
        try:
            filename = hdr[HDLIST_FILENAME_TAG]
        except (KeyError, ValueError, rpm.error):
            filename = None
        if not filename:
            filename = f"{hdr[rpm.RPMTAG_NAME]}-{hdr[rpm.RPMTAG_VERSION]}-{hdr[rpm.RPMTAG_RELEASE]}.{hdr[rpm.RPMTAG_ARCH]}.rpm"
        out.append(from_header(hdr, rpms_url + str(filename), origin, None, sums.get(str(filename))))
    stats.misses += len(out)
    headers.put(key, out)
    return out


def _from_repodata(root: Path, base_url: str, origin: str, headers: HeaderCache, stats: IndexStats) -> list[PackageMeta]:
    import createrepo_c as cr

    try:
        repomd = cr.Repomd(str(root / "repodata" / "repomd.xml"))
    except (cr.CreaterepoCError, ValueError, TypeError) as exc:
        raise UsageError(f"{root}/repodata/repomd.xml: damaged ({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__});"
                         " make it again with createrepo_c") from None
    key = "repodata:" + hashlib.sha256(read_user_file(root / "repodata" / "repomd.xml", "repomd.xml")).hexdigest()
    cached = headers.get(key)
    if cached is not None:
        stats.hits += len(cached)
        return [_with(p, origin=origin, url=base_url + p.url) for p in cached]
    where = {record.type: str(root / record.location_href) for record in repomd.records}
    if "primary" not in where:
        raise UsageError(f"{root}/repodata/repomd.xml: no primary metadata")
    out = []

    def dep(entries):
        return tuple((name, {"EQ": "=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}.get(flags or "", ""),
                      (f"{epoch}:" if epoch not in (None, "", "0") else "") + (version or "")
                      + (f"-{release}" if release else "") if flags else "")
                     for name, flags, epoch, version, release, *_ in entries)

    def keep(pkg) -> bool:
        out.append(PackageMeta(
            name=pkg.name, epoch=int(pkg.epoch) if pkg.epoch not in (None, "", "0") else None, version=pkg.version,
            release=pkg.release, arch=pkg.arch, provides=dep(pkg.provides), requires=dep(pkg.requires),
            conflicts=dep(pkg.conflicts), obsoletes=dep(pkg.obsoletes),
            files=tuple(d + f for _type, d, f in pkg.files), url=pkg.location_href, origin=origin,
            size=pkg.size_package, sha256=pkg.pkgId if pkg.checksum_type == "sha256" else None))
        return True

    try:
        for pkg in cr.PackageIterator(primary_path=where["primary"], filelists_path=where.get("filelists"),
                                      other_path=None, warningcb=lambda *a: True):
            keep(pkg)
    except (cr.CreaterepoCError, ValueError, TypeError, AttributeError) as exc:
        raise UsageError(f"{root}/repodata: damaged metadata ({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__});"
                         " make it again with createrepo_c") from None
    stats.misses += len(out)
    headers.put(key, out)
    return [_with(p, url=base_url + p.url) for p in out]


# ---------------------------------------------------------------- over HTTP (bounded reads: treehttp)


def _read_http(base: str, origin: str, headers: HeaderCache, stats: IndexStats, log: Log) -> list[PackageMeta]:
    import requests

    with requests.Session() as session:
        session.headers["User-Agent"] = "rebuild-solve"
        rpms_url = urljoin(base, "RedHat/RPMS/")
        hdlist = get(session, urljoin(base, "RedHat/base/hdlist"))
        listing = get(session, rpms_url)
        if listing.status_code != 200:
            rpms_url, listing = base, get(session, base)
        sums_response = get(session, urljoin(rpms_url, "SHA256SUMS"))
        sums = _sums(sums_response.text) if sums_response.status_code == 200 else {}
        if hdlist.status_code == 200 and hdlist.content[:3] == HEADER_MAGIC:
            return _from_hdlist(hdlist.content, rpms_url, origin, sums, headers, stats)
        if listing.status_code != 200:
            raise EnvironmentProblem(f"{redact(base)}: HTTP {listing.status_code} listing the tree")
        urls = rpm_links(rpms_url, listing.text)
        if not urls:  # an updates tree: one folder per arch
            folders = {h.rstrip("/").rsplit("/", 1)[-1] for h in re.findall(r'href="([^"?]+/)"', listing.text)}
            for arch in (a for a in ARCH_FOLDERS if a in folders):
                folder = urljoin(rpms_url, arch + "/")
                sub = get(session, folder)
                if sub.status_code == 200:
                    urls += rpm_links(folder, sub.text)
        with ThreadPoolExecutor(max_workers=_PARALLEL) as pool:
            found = list(pool.map(lambda u: _remote_header(session, u, origin, headers, stats), urls))
        return [_with(p, sha256=sums.get(p.filename)) for p in found]


def _remote_header(session, url: str, origin: str, headers: HeaderCache, stats: IndexStats) -> PackageMeta:
    """One package's header: from the cache when URL, size and ETag match, else by Range requests."""
    import rpm

    head = session.head(url, timeout=(10, 60), allow_redirects=True)
    size = head.headers.get("Content-Length", "")
    key = f"http:{url}:{size}:{head.headers.get('ETag', '')}"
    cached = headers.get(key) if head.status_code == 200 else None
    if cached is not None:
        stats.hits += 1
        return _with(cached[0], origin=origin, url=url)
    stats.misses += 1
    data = byte_range(session, url, 0, _FIRST_RANGE)
    sig_end = 96 + header_size(data, 96, url)
    main = sig_end + (-sig_end % 8)
    if len(data) < main + 16:
        data += byte_range(session, url, len(data), main + 16 + _FIRST_RANGE)
    end = main + header_size(data, main, url)
    if len(data) < end:
        data += byte_range(session, url, len(data), end)
    try:
        hdr = rpm.hdr(data[main + 8:end])
    except rpm.error:
        raise UsageError(f"{redact(url)}: not a readable RPM header") from None
    meta = from_header(hdr, url, origin, int(size) if size.isascii() and size.isdigit() else None)
    headers.put(key, [meta])
    return meta
