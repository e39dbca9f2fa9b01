"""Reading a tree over HTTP, every answer bounded: whole tree files (an hdlist, a listing, SHA256SUMS) in size
and time, and one package's header by Range requests that read no more than the header even where a
server ignores Range."""

from __future__ import annotations

import re
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from rebuild.errors import EnvironmentProblem, UsageError
from rebuild.systems.urls import redact

HEADER_MAGIC = b"\x8e\xad\xe8"
MAX_HDLIST = 512 << 20  # Red Hat 7.3's hdlist is 5 MiB, a whole distribution's under 100
MAX_HEADER = 64 << 20  # one package's header: the largest real ones are a few MiB of file lists
GET_DEADLINE = 300  # seconds for one tree file (a 5 MiB hdlist at 20 KiB/s)
HEADER_DEADLINE = 60  # seconds for one package's header (tens of KiB)


@dataclass(frozen=True)
class Answer:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def get(session, url: str) -> Answer:
    """A tree file (hdlist, listing, SHA256SUMS) read whole, at most MAX_HDLIST bytes within GET_DEADLINE
    seconds: a server that trickles or never ends is an EnvironmentProblem, not a hang."""
    import requests

    started = time.monotonic()
    try:
        with session.get(url, timeout=(10, 60), stream=True) as response:
            data = bytearray()
            for chunk in response.iter_content(1 << 16):
                data += chunk
                if len(data) > MAX_HDLIST:
                    raise EnvironmentProblem(f"{redact(url)}: over {MAX_HDLIST >> 20} MiB; not a tree file")
                if time.monotonic() - started > GET_DEADLINE:
                    raise EnvironmentProblem(f"{redact(url)}: still sending after {GET_DEADLINE} s; giving up")
            return Answer(response.status_code, bytes(data))
    except requests.RequestException as exc:
        raise EnvironmentProblem(f"{redact(url)}: cannot read the tree: {type(exc).__name__}") from None


def rpm_links(folder: str, html: str) -> list[str]:
    names = sorted({Path(urlsplit(h).path).name for h in re.findall(r'href="([^"]+\.rpm)"', html)})
    return [urljoin(folder, n) for n in names if not n.endswith(".src.rpm")]


def header_size(data: bytes, offset: int, url: str) -> int:
    if data[offset:offset + 3] != HEADER_MAGIC:
        raise UsageError(f"{redact(url)}: not an RPM (no header at byte {offset})")
    il, dl = struct.unpack(">II", data[offset + 8:offset + 16])
    size = 16 + 16 * il + dl
    if size > MAX_HEADER:
        raise UsageError(f"{redact(url)}: a header of {size} bytes at byte {offset}; not an RPM rebuild reads")
    return size


def byte_range(session, url: str, start: int, end: int) -> bytes:
    """Bytes start..end-1 of *url* (fewer at the end of the file); reads no more even if the server ignores Range."""
    response = session.get(url, headers={"Range": f"bytes={start}-{end - 1}", "Accept-Encoding": "identity"},
                           stream=True, timeout=(10, 60))
    with response:
        if response.status_code not in (200, 206):
            raise EnvironmentProblem(f"{redact(url)}: HTTP {response.status_code} reading its header")
        skip = start if response.status_code == 200 else 0
        data = b""
        started = time.monotonic()
        for chunk in response.iter_content(16 << 10):
            data += chunk
            if len(data) >= skip + (end - start):
                break
            if time.monotonic() - started > HEADER_DEADLINE:
                raise EnvironmentProblem(f"{redact(url)}: its header still not sent after {HEADER_DEADLINE} s")
        return data[skip:skip + (end - start)]
