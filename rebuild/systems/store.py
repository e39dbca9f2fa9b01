"""The cache, and the one module that knows its layout (``REBUILD_CACHE``, by default ~/.cache/rebuild):

- ``srpms/sha256/<hex>/<file>``: verified downloads (source RPMs and a tree's packages), by digest;
  ``srpms/tmp/``: downloads in progress;
- ``headers/``: parsed headers of trees' packages (``roots.treeindex``);
- ``images/<target>/<key>/``: a target's pin, lock, tree snapshot, first-use pins and root tarball;
- ``installed/<identity>``: an image's package list (an image never changes, so neither does its list).

Nothing unverified reaches ``srpms/``: a download streams into ``srpms/tmp/``, its sha256 is checked
against the pin, the file must be an RPM of the right kind (and name, NEVRA, digests and signature where
asked), and only then is it renamed into place. A pinned file already there is used without any
request. The HTTP loop is ``rebuild.systems.download``.

Exit codes: 1 verification failed (digest, not an RPM, wrong package, signature),
2 bad input (no pin, bad URL), 3 no URL could be downloaded.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rebuild.errors import CheckFailed, EnvironmentProblem, UsageError
from rebuild.files import SAFE_NAME, atomic_write, open_regular, read_json, sha256_file
from rebuild.log import Log
from rebuild.settings import Settings
from rebuild.systems.download import CHUNK, Download, FetchOptions, GiveUp, session
from rebuild.systems.rpmfile import BadPackage, check_digests, check_header, check_lead, check_signature
from rebuild.systems.urls import check_url, local_path, redact

STALE_PART = 24 * 3600  # seconds after which a .part of a process that may still run is removed


def headers_dir(cache: Path) -> Path:
    return Path(cache) / "headers"


def images_dir(cache: Path) -> Path:
    return Path(cache) / "images"


def installed_list(cache: Path, identity: str) -> Path:
    """Where the package list of the image with content *identity* is kept (check-deps, builds' floors
    and SBOM)."""
    return Path(cache) / "installed" / identity.split(":")[-1]


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    url: str | None  # None when it came from the cache
    size: int
    cached: bool


@dataclass
class _Attempt:
    """What went wrong with one URL, for the final message."""

    url: str
    reason: str
    verification: bool = False


# ---------------------------------------------------------------- the cache


class Cache:
    """Files by sha256 under ``<root>/srpms/sha256/<hex>/<file>``."""

    def __init__(self, root: Path | None = None) -> None:
        if root is None:
            root = Settings.from_env().cache
        self.root = Path(root) / "srpms"

    def path(self, sha256: str, filename: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256) or not SAFE_NAME.match(filename):
            raise UsageError(f"{filename!r}: not a file name the cache stores (a bare name is needed)")
        return self.root / "sha256" / sha256 / filename

    def get(self, sha256: str, filename: str) -> Path | None:
        """The cached file when present and unchanged since it was verified (else re-hashed)."""
        path = self.path(sha256, filename)
        stamp = path.with_name(".verified")
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        try:
            if read_json(stamp, "stamp", max_bytes=4096) == {"size": st.st_size, "mtime_ns": st.st_mtime_ns}:
                return path
        except UsageError:
            pass
        if sha256_file(path) != sha256:
            path.unlink(missing_ok=True)
            return None
        self._stamp(path)
        return path

    def put(self, tmp: Path, sha256: str, filename: str) -> Path:
        final = self.path(sha256, filename)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
        self._stamp(final)
        return final

    def temp(self) -> Path:
        folder = self.root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        self._remove_stale(folder)
        fd, name = tempfile.mkstemp(prefix=f"dl-{os.getpid()}-", suffix=".part", dir=folder)
        os.close(fd)
        return Path(name)

    @staticmethod
    def _remove_stale(folder: Path) -> None:
        """Remove the .part files of downloads whose process is gone (or that are a day old)."""
        now = time.time()
        for part in folder.glob("dl-*.part"):
            m = re.match(r"dl-(\d+)-", part.name)
            try:
                if m and int(m.group(1)) != os.getpid():
                    try:
                        os.kill(int(m.group(1)), 0)
                        alive = True
                    except ProcessLookupError:
                        alive = False
                    except PermissionError:
                        alive = True
                    if not alive or now - part.stat().st_mtime > STALE_PART:
                        part.unlink()
                elif not m and now - part.stat().st_mtime > STALE_PART:
                    part.unlink()
            except OSError:
                pass

    @staticmethod
    def _stamp(path: Path) -> None:
        st = path.stat()
        atomic_write(path.with_name(".verified"), json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns}))


# ---------------------------------------------------------------- fetching


def _copy_local(path: Path, tmp: Path, options: FetchOptions) -> tuple[str, int]:
    import hashlib

    hasher, size = hashlib.sha256(), 0
    try:
        src = open_regular(path, "package file")
    except UsageError as exc:
        raise GiveUp(exc.message.removeprefix(f"{path}: ")) from None
    with src, tmp.open("wb") as out:
        for block in iter(lambda: src.read(CHUNK), b""):
            size += len(block)
            if size > options.max_size:
                raise GiveUp(f"over the size cap of {options.max_size} bytes")
            out.write(block)
            hasher.update(block)
    return hasher.hexdigest(), size


def fetch_urls(
    urls: list[str],
    *,
    filename: str,
    sha256: str | None,
    expected_nvr: str | None = None,
    expected_nevra: str | None = None,
    gpg_keys: tuple[Path, ...] = (),
    allow_unpinned: bool = False,
    source: bool = True,
    options: FetchOptions = FetchOptions(),
    cache: Cache | None = None,
    log: Log | None = None,
) -> Fetched:
    """Fetch *filename* from the first URL that yields a verified copy."""

    log = log or Log(quiet=True)
    cache = cache or Cache()
    cache.path("0" * 64, filename)  # the name is one the cache can store
    if sha256:
        hit = cache.get(sha256, filename)
        if hit is not None:
            return Fetched(hit, sha256, None, hit.stat().st_size, cached=True)
    elif not allow_unpinned:
        raise UsageError(
            f"no sha256 pin for {filename}: give --sha256, put sha256 in the recipe, or fetch once with --lock"
            " to record the digest it sees (trust on first use)"
        )
    for url in urls:
        problem = check_url(url)
        if problem:
            raise UsageError(f"{redact(url)}: {problem.replace(url, redact(url))}")
    failures: list[_Attempt] = []
    with session() as http:
        for url in urls:
            shown = redact(url)
            tmp = cache.temp()
            try:
                local = local_path(url)
                log.info(f"    fetching {shown}")
                if local is not None:
                    digest, size = _copy_local(local, tmp, options)
                else:
                    download = Download(http, url, tmp, options, log)
                    digest = download.run()
                    size = download.size
                check_lead(tmp, shown, source)
                if sha256 and digest != sha256:
                    raise GiveUp(f"sha256 mismatch: expected {sha256}, got {digest}", verification=True)
                found = check_header(tmp, expected_nvr, shown).nevra  # one header read for both checks
                if expected_nevra and found != expected_nevra:
                    raise BadPackage(f"{shown}: the header says {found}, but {expected_nevra} was solved from the"
                                     " tree's index")
                if not source:
                    check_digests(tmp, shown)
                if gpg_keys:
                    check_signature(tmp, gpg_keys, shown)
                final = cache.put(tmp, digest, filename)
                return Fetched(final, digest, url, size, cached=False)
            except GiveUp as exc:
                log.warn(f"{shown}: {exc.reason}")
                failures.append(_Attempt(shown, exc.reason, exc.verification))
            except BadPackage as exc:
                log.warn(exc.message)
                failures.append(_Attempt(shown, exc.message.removeprefix(f"{shown}: "), True))
            except (ValueError, UnicodeError) as exc:  # a server's answer no parser expected
                log.warn(f"{shown}: unusable answer ({type(exc).__name__})")
                failures.append(_Attempt(shown, f"unusable answer ({type(exc).__name__})"))
            finally:
                tmp.unlink(missing_ok=True)
    summary = "; ".join(f"{f.url}: {f.reason}" for f in failures)
    if any(f.verification for f in failures):
        raise CheckFailed(f"{filename}: no URL gave a verified copy: {summary}")
    raise EnvironmentProblem(f"{filename}: could not download from any URL: {summary}")
