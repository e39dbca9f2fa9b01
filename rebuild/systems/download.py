"""HTTP downloads: one URL into one file, hashed as it arrives, resumed with Range, bounded in time.

Each attempt has a wall-clock deadline (``FetchOptions.deadline``): a watchdog shuts the
attempt's sockets down when it passes, so neither a body trickling at a byte a second, nor
headers sent one every few seconds, nor endless ``100 Continue`` lines can hold a download
forever. Between attempts the download resumes from the last byte received. A server that
accepts connections but never answers costs ``attempts`` read timeouts (about 2 minutes
with the defaults).
"""

from __future__ import annotations

import hashlib
import queue
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from rebuild.log import Log
from rebuild.systems.urls import file_name, redact

CHUNK = 1 << 20
DEFAULT_MAX_SIZE = 512 << 20
RETRY_STATUS = {408, 429, 500, 502, 503, 504}
_DIGITS = re.compile(r"^[0-9]{1,18}$")  # ASCII digits only: str.isdigit() accepts '²' and other scripts


@dataclass(frozen=True)
class FetchOptions:
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    attempts: int = 4  # per URL
    backoff: float = 0.5  # seconds, doubled each retry
    max_retry_after: float = 30.0
    max_size: int = DEFAULT_MAX_SIZE
    max_redirects: int = 5
    deadline: float = 300.0  # wall-clock seconds per attempt


class Retry(Exception):
    """A transient failure: try the same URL again (from the last byte received)."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


class GiveUp(Exception):
    """This URL will not give the file; try the next one. *verification*: the content was wrong."""

    def __init__(self, reason: str, verification: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.verification = reason, verification


class _Hasher:
    """sha256 in a second thread (hashlib releases the GIL), fed through a short queue:
    the download hashes at the speed of the slower of the two, with at most 8 chunks in memory."""

    def __init__(self) -> None:
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


class _Sockets:
    """The sockets a session has open, so a watchdog can shut them down from another thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: set = set()

    def add(self, sock) -> None:
        with self.lock:
            self.live.add(sock)

    def shutdown_all(self) -> None:
        import socket

        with self.lock:
            live = list(self.live)
            self.live.clear()
        for sock in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def session():
    """A requests session whose connections register their sockets (for the per-attempt deadline)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    sockets = _Sockets()

    class Conn(HTTPConnection):
        def connect(self) -> None:
            super().connect()
            sockets.add(self.sock)

    class TLSConn(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            sockets.add(self.sock)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Conn

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = TLSConn

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}

    s = requests.Session()
    s.mount("http://", Adapter())
    s.mount("https://", Adapter())
    s.headers["User-Agent"] = "rebuild-fetch"
    s.rebuild_sockets = sockets  # type: ignore[attr-defined]
    return s


class Download:
    """One URL into one temporary file, hashing as it goes; resumes within this call."""

    def __init__(self, session, url: str, tmp: Path, options: FetchOptions, log: Log) -> None:
        self.session, self.url, self.tmp, self.options, self.log = session, url, tmp, options, log
        self.hasher = _Hasher()
        self.size = 0
        self.expired = False

    def restart(self) -> None:
        self.hasher.close()
        self.hasher = _Hasher()
        self.size = 0
        with self.tmp.open("wb"):
            pass

    def run(self) -> str:
        """Download the whole body; return its sha256. Raises GiveUp when this URL will not do."""
        try:
            for attempt in range(1, self.options.attempts + 1):
                try:
                    self._attempt()
                    return self.hasher.hexdigest()
                except Retry as retry:
                    if attempt == self.options.attempts:
                        raise GiveUp(f"{retry.reason} (gave up after {attempt} attempts)") from None
                    wait = retry.wait if retry.wait is not None else self.options.backoff * 2 ** (attempt - 1)
                    wait = min(wait, self.options.max_retry_after)
                    self.log.info(f"    {redact(self.url)}: {retry.reason}; retrying in {wait:.1f}s"
                                  + (f" from byte {self.size}" if self.size else ""))
                    time.sleep(wait)
        finally:
            self.hasher.close()
        raise GiveUp("no attempts")  # attempts < 1

    def _attempt(self) -> None:
        """One attempt under the wall-clock deadline."""
        import requests
        import urllib3.exceptions

        self.expired = False
        self.started = time.monotonic()
        sockets = getattr(self.session, "rebuild_sockets", None)
        watchdog = threading.Timer(self.options.deadline, self._expire, args=(sockets,))
        watchdog.daemon = True
        watchdog.start()
        try:
            self._once()
            if self.expired:  # the watchdog cut the answer short where it read as an (empty) end
                raise Retry(f"no complete answer within the {self.options.deadline:g}s deadline")
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if self.expired:
                raise Retry(f"no complete answer within the {self.options.deadline:g}s deadline") from None
            if isinstance(exc, requests.exceptions.SSLError):
                untrusted = re.search(r"certificate verify failed: ([^(']+)", str(exc))
                if untrusted:  # not transient: no retry
                    raise GiveUp(f"TLS certificate not trusted ({untrusted.group(1).strip()}); for a private CA"
                                 " set REQUESTS_CA_BUNDLE=/path/to/ca.pem") from None
                raise Retry(f"TLS handshake failed ({_short(exc)})") from None
            if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader,
                                requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)):
                raise GiveUp(f"the server's answer cannot be used ({_short(exc)})") from None
            raise Retry(f"connection lost after {self.size} bytes ({_short(exc)})" if self.size else _short(exc)) from None
        finally:
            watchdog.cancel()

    def _expire(self, sockets) -> None:
        self.expired = True
        if sockets is not None:
            sockets.shutdown_all()

    def _get(self):
        url = self.url
        headers = {"Accept-Encoding": "identity"}
        if self.size:
            headers["Range"] = f"bytes={self.size}-"
        for _ in range(self.options.max_redirects + 1):
            response = self.session.get(url, headers=headers, stream=True, allow_redirects=False,
                                        timeout=(self.options.connect_timeout, self.options.read_timeout))
            if response.is_redirect:
                location = response.headers.get("Location", "")
                response.close()
                try:
                    target = urljoin(url, location)
                    scheme = urlsplit(target).scheme
                    urlsplit(target).port  # noqa: B018 - raises on a bad port
                except ValueError:
                    raise GiveUp(f"redirect to a malformed URL {redact(location)[:200]!r}") from None
                if scheme not in ("http", "https"):
                    raise GiveUp(f"redirect to {redact(target)[:200]} refused: only http and https are followed")
                url = target
                continue
            return response
        raise GiveUp(f"more than {self.options.max_redirects} redirects")

    def _once(self) -> None:
        response = self._get()
        with response:
            status = response.status_code
            if status in RETRY_STATUS:
                raise Retry(f"HTTP {status}", _retry_after(response.headers.get("Retry-After")))
            if status == 416 and self.size:
                self.log.info(f"    {redact(self.url)}: server refused the range; starting over")
                self.restart()
                raise Retry("range not satisfiable", 0)
            if status not in (200, 206):
                raise GiveUp(f"HTTP {status} {_printable(response.reason or '')}".strip())
            if status == 200 and self.size:
                self.log.info(f"    {redact(self.url)}: server ignores Range; starting over")
                self.restart()
            if status == 206:
                start = _content_range_start(response.headers.get("Content-Range"))
                if start != self.size:
                    self.restart()
                    raise Retry(f"server resumed at byte {start}, not {self.size}", 0)
            length = response.headers.get("Content-Length", "")
            if length and not _DIGITS.match(length.strip()):
                raise GiveUp(f"unusable Content-Length {_printable(length)[:40]!r}")
            total = self.size + int(length) if length else None
            if total is not None and total > self.options.max_size:
                raise GiveUp(f"{total} bytes is over the size cap of {self.options.max_size} bytes")
            progress = self.log.progress(file_name(self.url), total, self.size)
            try:
                with self.tmp.open("ab") as out:
                    # read1 hands over what has arrived, so a cut connection loses no byte already received
                    for chunk in iter(lambda: response.raw.read1(CHUNK), b""):
                        if self.size + len(chunk) > self.options.max_size:
                            raise GiveUp(f"over the size cap of {self.options.max_size} bytes")
                        out.write(chunk)
                        self.hasher.update(chunk)
                        self.size += len(chunk)
                        progress.advance(len(chunk))
                        if time.monotonic() - self.started > self.options.deadline:
                            self.expired = True
                            raise Retry(f"no complete answer within the {self.options.deadline:g}s deadline")
            finally:
                progress.close()
            if total is not None and self.size < total:
                raise Retry(f"short body: {self.size} of {total} bytes")


def _content_range_start(value: str | None) -> int | None:
    m = re.match(r"bytes ([0-9]{1,18})-[0-9]{1,18}/([0-9]{1,18}|\*)$", value or "")
    return int(m.group(1)) if m else None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if _DIGITS.match(value.strip()):
        return float(value.strip())
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _short(exc: Exception) -> str:
    text = str(exc)
    if "timed out" in text.lower() or "timeout" in type(exc).__name__.lower():
        return "timed out"
    if "reset" in text.lower():
        return "connection reset"
    return type(exc).__name__
