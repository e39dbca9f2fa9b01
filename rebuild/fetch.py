"""Verified, resumable, cached downloads of source RPMs.

Nothing unverified reaches the cache: a download streams into ``<cache>/tmp/``,
its sha256 is checked against the pin (the recipe's, the lock file's or
``--sha256``), the file must be a source RPM whose name and version match the
recipe, its own digests and signature are checked against only the recipe's keys
when it lists any, and only then is it renamed to ``<cache>/sha256/<hex>/<file>``.
A pinned file already in the cache is used without any request.

Exit codes: 1 verification failed (digest, not an RPM, wrong package, signature),
2 bad input (no pin without --lock, bad URL), 3 no URL could be downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable
from urllib.parse import unquote, urljoin, urlparse, urlunparse

from rebuild.errors import CheckFailed, EnvironmentProblem, UsageError
from rebuild.log import Log
from rebuild.paths import cache_root

if TYPE_CHECKING:
    from rebuild.recipe import Recipe

CHUNK = 1 << 20
DEFAULT_MAX_SIZE = 512 << 20
RETRY_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class FetchOptions:
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    attempts: int = 4  # per URL
    backoff: float = 0.5  # seconds, doubled each retry
    max_retry_after: float = 30.0
    max_size: int = DEFAULT_MAX_SIZE
    max_redirects: int = 5


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


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


class _GiveUp(Exception):
    def __init__(self, reason: str, verification: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.verification = reason, verification


# ---------------------------------------------------------------- URLs and mirrors


def local_path(url: str) -> Path | None:
    """The path of a file:// URL or a plain path; None for http(s)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if not parsed.scheme:
        return Path(url)
    return None


def redact(url: str) -> str:
    """The URL without user:password, for messages."""
    parsed = urlparse(url)
    if parsed.username or parsed.password:
        host = parsed.hostname or ""
        if parsed.port:
            host += f":{parsed.port}"
        return urlunparse(parsed._replace(netloc=f"***@{host}"))
    return url


def parse_mirrors(spec: str | None) -> list[tuple[str, str]]:
    """``FROM=TO`` pairs, separated by spaces or commas (REBUILD_MIRROR, --mirror)."""
    pairs = []
    for item in re.split(r"[\s,]+", spec or ""):
        if not item:
            continue
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise UsageError(f"mirror {item!r}: expected FROM=TO, e.g. https://archive.example/pub=file:///srv/mirror/pub")
        pairs.append((old, new))
    return pairs


def with_mirrors(urls: list[str], mirrors: list[tuple[str, str]]) -> list[str]:
    """Each URL rewritten by the first matching mirror (tried first), then the original."""
    out: list[str] = []
    for url in urls:
        for old, new in mirrors:
            if url.startswith(old):
                out.append(new + url[len(old):])
                break
        out.append(url)
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------- the cache


class Cache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or cache_root()) / "srpms"

    def path(self, sha256: str, filename: str) -> Path:
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
            seen = json.loads(stamp.read_text())
            if seen == {"size": st.st_size, "mtime_ns": st.st_mtime_ns}:
                return path
        except (OSError, ValueError):
            pass
        if _sha256_file(path) != sha256:
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
        fd, name = tempfile.mkstemp(prefix="dl-", suffix=".part", dir=folder)
        os.close(fd)
        return Path(name)

    @staticmethod
    def _stamp(path: Path) -> None:
        st = path.stat()
        stamp = path.with_name(".verified")
        tmp = path.with_name(f".verified.{os.getpid()}")
        tmp.write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns}))
        os.replace(tmp, stamp)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- lock files


def lock_path(recipe: Recipe) -> Path:
    return recipe.path.with_suffix(".lock")


def read_lock(recipe: Recipe) -> str | None:
    path = lock_path(recipe)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable lock file ({exc}); delete it and fetch again with --lock") from None
    entry = data.get("srpms", {}).get(recipe.source.srpm)
    if entry is None:
        return None
    sha = entry.get("sha256", "")
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise UsageError(f"{path}: bad sha256 for {recipe.source.srpm}; delete the entry and fetch again with --lock")
    return sha


def write_lock(recipe: Recipe, sha256: str, url: str) -> Path:
    path = lock_path(recipe)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data.setdefault("srpms", {})[recipe.source.srpm] = {
        "sha256": sha256,
        "url": redact(url),
        "locked": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "how": "trust on first use",
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def pin_for(recipe: Recipe, override: str | None = None) -> str | None:
    """The sha256 a recipe's SRPM must have: --sha256, the recipe, or its lock file (which must agree)."""
    lock = read_lock(recipe)
    pins = {p for p in (override, recipe.source.sha256, lock) if p}
    if len(pins) > 1:
        raise CheckFailed(
            f"{recipe.path}: conflicting sha256 pins for {recipe.source.srpm}"
            f" (--sha256 {override}, recipe {recipe.source.sha256}, lock {lock}); resolve them before fetching"
        )
    return pins.pop() if pins else None


# ---------------------------------------------------------------- progress


class Progress:
    """A bar (size, rate, ETA) when stderr is a terminal, else a line per 10%."""

    def __init__(self, log: Log, label: str, total: int | None, done: int = 0) -> None:
        self.log, self.label, self.total, self.done = log, label, total, done
        self.start, self.last_decile = time.monotonic(), done * 10 // total if total else 0
        self.bar = None
        if sys.stderr.isatty() and not log.quiet and total:
            from rich.progress import BarColumn, DownloadColumn, Progress as Bar, TimeRemainingColumn, TransferSpeedColumn

            self.bar = Bar("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                           TimeRemainingColumn(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(label, total=total, completed=done)

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)
        elif self.total:
            decile = self.done * 10 // self.total
            if decile > self.last_decile:
                self.last_decile = decile
                rate = self.done / max(time.monotonic() - self.start, 1e-6) / (1 << 20)
                self.log.info(f"    {self.label}: {min(decile, 10) * 10}% of {self.total / (1 << 20):.1f} MiB, {rate:.1f} MiB/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


# ---------------------------------------------------------------- downloading


class _Hasher:
    """sha256 in a second thread (hashlib releases the GIL), fed through a short queue:
    the download hashes at the speed of the slower of the two, with at most 8 chunks in memory."""

    def __init__(self) -> None:
        import queue
        import threading

        self._digest = hashlib.sha256()
        self._queue: queue.Queue = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._digest.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def hexdigest(self) -> str:
        self._queue.put(None)
        self._thread.join()
        return self._digest.hexdigest()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)


class _Download:
    """One URL into one temporary file, hashing as it goes; resumes within this call."""

    def __init__(self, session, url: str, tmp: Path, options: FetchOptions, log: Log) -> None:
        self.session, self.url, self.tmp, self.options, self.log = session, url, tmp, options, log
        self.hasher = _Hasher()
        self.size = 0

    def restart(self) -> None:
        self.hasher.close()
        self.hasher = _Hasher()
        self.size = 0
        with self.tmp.open("wb"):
            pass

    def run(self) -> None:
        for attempt in range(1, self.options.attempts + 1):
            try:
                self._once()
                return
            except _Retry as retry:
                if attempt == self.options.attempts:
                    raise _GiveUp(f"{retry.reason} (gave up after {attempt} attempts)") from None
                wait = retry.wait if retry.wait is not None else self.options.backoff * 2 ** (attempt - 1)
                wait = min(wait, self.options.max_retry_after)
                self.log.info(f"    {redact(self.url)}: {retry.reason}; retrying in {wait:.1f}s"
                              + (f" from byte {self.size}" if self.size else ""))
                time.sleep(wait)

    def _get(self):
        import requests

        url = self.url
        headers = {"Accept-Encoding": "identity"}
        if self.size:
            headers["Range"] = f"bytes={self.size}-"
        for _ in range(self.options.max_redirects + 1):
            try:
                response = self.session.get(url, headers=headers, stream=True, allow_redirects=False,
                                            timeout=(self.options.connect_timeout, self.options.read_timeout))
            except requests.exceptions.SSLError as exc:
                untrusted = re.search(r"certificate verify failed: ([^(']+)", str(exc))
                if untrusted:  # not transient: no retry
                    raise _GiveUp(f"TLS certificate not trusted ({untrusted.group(1).strip()}); for a private CA"
                                  " set REQUESTS_CA_BUNDLE=/path/to/ca.pem") from None
                raise _Retry(f"TLS handshake failed ({_short(exc)})") from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise _Retry(_short(exc)) from None
            if response.is_redirect:
                target = urljoin(url, response.headers.get("Location", ""))
                response.close()
                if urlparse(target).scheme not in ("http", "https"):
                    raise _GiveUp(f"redirect to {redact(target)} refused: only http and https are followed")
                url = target
                continue
            return response
        raise _GiveUp(f"more than {self.options.max_redirects} redirects")

    def _once(self) -> None:
        import requests

        response = self._get()
        with response:
            status = response.status_code
            if status in RETRY_STATUS:
                raise _Retry(f"HTTP {status}", _retry_after(response.headers.get("Retry-After")))
            if status == 416 and self.size:
                self.log.info(f"    {redact(self.url)}: server refused the range; starting over")
                self.restart()
                raise _Retry("range not satisfiable", 0)
            if status not in (200, 206):
                raise _GiveUp(f"HTTP {status} {response.reason or ''}".strip())
            if status == 200 and self.size:
                self.log.info(f"    {redact(self.url)}: server ignores Range; starting over")
                self.restart()
            if status == 206:
                start = _content_range_start(response.headers.get("Content-Range"))
                if start != self.size:
                    self.restart()
                    raise _Retry(f"server resumed at byte {start}, not {self.size}", 0)
            length = response.headers.get("Content-Length")
            total = self.size + int(length) if length and length.isdigit() else None
            if total is not None and total > self.options.max_size:
                raise _GiveUp(f"{total} bytes is over the size cap of {self.options.max_size} bytes")
            progress = Progress(self.log, Path(urlparse(self.url).path).name, total, self.size)
            try:
                with self.tmp.open("ab") as out:
                    # read1 hands over what has arrived, so a cut connection loses no byte already received
                    for chunk in iter(lambda: response.raw.read1(CHUNK), b""):
                        if self.size + len(chunk) > self.options.max_size:
                            raise _GiveUp(f"over the size cap of {self.options.max_size} bytes")
                        out.write(chunk)
                        self.hasher.update(chunk)
                        self.size += len(chunk)
                        progress.advance(len(chunk))
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    *_urllib3_errors()) as exc:
                raise _Retry(f"connection lost after {self.size} bytes ({_short(exc)})", None) from None
            finally:
                progress.close()
            if total is not None and self.size < total:
                raise _Retry(f"short body: {self.size} of {total} bytes")


def _urllib3_errors() -> tuple[type[Exception], ...]:
    import urllib3.exceptions

    return (urllib3.exceptions.HTTPError, OSError)


def _content_range_start(value: str | None) -> int | None:
    m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", value or "")
    return int(m.group(1)) if m else None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


def _short(exc: Exception) -> str:
    text = str(exc)
    if "timed out" in text.lower() or "timeout" in type(exc).__name__.lower():
        return "timed out"
    if "reset" in text.lower():
        return "connection reset"
    return type(exc).__name__


def _copy_local(path: Path, tmp: Path, options: FetchOptions) -> tuple[str, int]:
    hasher, size = hashlib.sha256(), 0
    try:
        with path.open("rb") as src, tmp.open("wb") as out:
            for block in iter(lambda: src.read(CHUNK), b""):
                size += len(block)
                if size > options.max_size:
                    raise _GiveUp(f"over the size cap of {options.max_size} bytes")
                out.write(block)
                hasher.update(block)
    except FileNotFoundError:
        raise _GiveUp("no such file") from None
    except IsADirectoryError:
        raise _GiveUp("is a directory") from None
    except PermissionError:
        raise _GiveUp("permission denied") from None
    return hasher.hexdigest(), size


# ---------------------------------------------------------------- verification


def verify_lead(path: Path, where: str, source: bool = True) -> None:
    """The file starts like an RPM (lead magic ED AB EE DB) of the right type (1 source, 0 binary)."""
    from rebuild.rpmfile import LEAD_MAGIC

    with path.open("rb") as fh:
        lead = fh.read(8)
    if not lead.startswith(LEAD_MAGIC):
        hint = " (looks like an HTML page)" if lead.lstrip().lower().startswith((b"<!do", b"<htm", b"<hea")) else ""
        raise _GiveUp(f"{where}: not an RPM file{hint}", verification=True)
    kind = int.from_bytes(lead[6:8], "big") if len(lead) >= 8 else -1
    if source and kind != 1:
        raise _GiveUp(f"{where}: a binary RPM, not a source RPM", verification=True)
    if not source and kind != 0:
        raise _GiveUp(f"{where}: a source RPM, not a binary RPM", verification=True)


def verify_digests(path: Path, where: str) -> None:
    """The package's own header and payload digests (MD5/SHA1 in 2003-era RPMs), with rpmkeys."""
    proc = subprocess.run(["rpmkeys", "--checksig", "--nosignature", str(path)], capture_output=True, text=True)
    if proc.returncode != 0 or "digests OK" not in proc.stdout:
        raise _GiveUp(f"{where}: its own digests do not verify: {' '.join((proc.stdout + proc.stderr).split())[:200]}",
                      verification=True)


def verify_rpm(path: Path, expected_nvr: str | None, where: str) -> None:
    """An RPM (its lead already checked) whose header, read with librpm, names *expected_nvr*."""
    from rebuild.rpmfile import read_info

    try:
        info = read_info(path)
    except UsageError as exc:
        raise _GiveUp(f"{where}: {exc.message}", verification=True) from None
    if expected_nvr and info.nvr != expected_nvr:
        raise _GiveUp(f"{where}: the header says {info.nvr}, expected {expected_nvr}", verification=True)


def verify_signature(path: Path, keys: tuple[Path, ...], where: str) -> None:
    """Digests and signature with rpmkeys against only *keys*, in a throwaway rpmdb."""
    if not shutil.which("rpmkeys"):
        raise EnvironmentProblem("rpmkeys is not installed (Debian: apt-get install rpm)")
    with tempfile.TemporaryDirectory(prefix="rebuild-keys-") as db:
        for key in keys:
            proc = subprocess.run(["rpmkeys", "--dbpath", db, "--import", str(key)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise UsageError(f"{key}: cannot import the key: {proc.stderr.strip() or proc.stdout.strip()}")
        proc = subprocess.run(["rpmkeys", "--dbpath", db, "--checksig", "-v", str(path)], capture_output=True, text=True)
    out = (proc.stdout + proc.stderr).strip()
    signed_ok = re.search(r"(RSA|DSA|EdDSA|ECDSA|V\d) .*signature.*: OK", out, re.I)
    if proc.returncode != 0 or not signed_ok:
        problem = "no signature" if "signature" not in out.lower() else "signature not OK with the given keys"
        raise _GiveUp(f"{where}: {problem}: {' '.join(out.split())[:300]}", verification=True)


# ---------------------------------------------------------------- the entry points


def fetch_urls(
    urls: list[str],
    *,
    filename: str,
    sha256: str | None,
    expected_nvr: str | None = None,
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
        scheme = urlparse(url).scheme
        if scheme and scheme not in ("http", "https", "file"):
            raise UsageError(f"{redact(url)}: only http, https and file URLs are fetched")
    import requests

    failures: list[_Attempt] = []
    with requests.Session() as session:
        session.headers["User-Agent"] = "rebuild-fetch"
        for url in urls:
            tmp = cache.temp()
            try:
                local = local_path(url)
                log.info(f"    fetching {redact(url)}")
                if local is not None:
                    digest, size = _copy_local(local, tmp, options)
                else:
                    download = _Download(session, url, tmp, options, log)
                    try:
                        download.run()
                        digest, size = download.hasher.hexdigest(), download.size
                    finally:
                        download.hasher.close()
                verify_lead(tmp, redact(url), source)
                if sha256 and digest != sha256:
                    raise _GiveUp(f"sha256 mismatch: expected {sha256}, got {digest}", verification=True)
                verify_rpm(tmp, expected_nvr, redact(url))
                if not source:
                    verify_digests(tmp, redact(url))
                if gpg_keys:
                    verify_signature(tmp, gpg_keys, redact(url))
                final = cache.put(tmp, digest, filename)
                return Fetched(final, digest, url, size, cached=False)
            except _GiveUp as exc:
                log.warn(f"{redact(url)}: {exc.reason}")
                failures.append(_Attempt(redact(url), exc.reason, exc.verification))
            finally:
                tmp.unlink(missing_ok=True)
    summary = "; ".join(f"{f.url}: {f.reason}" for f in failures)
    if any(f.verification for f in failures):
        raise CheckFailed(f"{filename}: no URL gave a verified copy: {summary}")
    raise EnvironmentProblem(f"{filename}: could not download from any URL: {summary}")


def fetch_recipe(recipe: Recipe, *, sha256: str | None = None, lock: bool = False, mirrors=None,
                 options: FetchOptions = FetchOptions(), log: Log | None = None) -> Fetched:
    """Fetch a recipe's SRPM, verified against its pin; ``lock`` records a first-seen digest."""
    log = log or Log(quiet=True)
    pin = pin_for(recipe, sha256)
    urls = with_mirrors([recipe.resolve(u) for u in recipe.source.urls], mirrors or [])
    fetched = fetch_urls(
        urls,
        filename=recipe.source.srpm,
        sha256=pin,
        expected_nvr=recipe.source.srpm[: -len(".src.rpm")],
        gpg_keys=recipe.source.gpg_keys,
        allow_unpinned=lock,
        options=options,
        log=log,
    )
    if pin is None and lock:
        path = write_lock(recipe, fetched.sha256, fetched.url or "")
        log.warn(
            f"TRUST ON FIRST USE: recorded sha256 {fetched.sha256} for {recipe.source.srpm}"
            f" from {redact(fetched.url or '')} in {path}. Check this digest out of band (a second mirror,"
            " the vendor's errata notice) before trusting builds from it."
        )
    return fetched


def locate_srpm(recipe: Recipe, log: Log | None = None) -> Path:
    """The build's SRPM: a local path or file:// URL as given, else the verified cached download."""
    for url in recipe.source.urls:
        path = local_path(recipe.resolve(url))
        if path is not None and path.is_file():
            return path
    remote = [u for u in recipe.source.urls if local_path(u) is None]
    if not remote:
        tried = ", ".join(str(local_path(recipe.resolve(u))) for u in recipe.source.urls)
        raise UsageError(f"{recipe.path}: source RPM {recipe.source.srpm} not found (tried {tried})")
    if pin_for(recipe) is None:
        raise UsageError(
            f"{recipe.path}: {recipe.source.srpm} has no sha256 pin; builds use only pinned SRPMs:"
            f" run `rebuild fetch {recipe.path} --lock` (trust on first use) or add source.sha256"
        )
    return fetch_recipe(recipe, mirrors=parse_mirrors(os.environ.get("REBUILD_MIRROR")), log=log).path
