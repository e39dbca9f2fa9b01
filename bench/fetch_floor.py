"""What the machine allows a verified download: the floor under `bench/fetch.py`.

A minimal downloader with no framework (one HTTP/1.1 GET on a raw socket, 1 MiB reads
written straight to a file), run as its own Python process, with and without a sha256 of the
body in a second thread, against curl on the same loopback server and 256 MiB file. Its
ratio to curl bounds what any downloader that verifies while it downloads can reach here.

    .venv/bin/python bench/fetch_floor.py
"""

from __future__ import annotations

import os
import shutil
import sys

from common import median, options, report, workdir
from fetch import big_srpm, file_server, run_timed

# The downloader under test, run as `python -c MINIMAL URL OUT HASH(0|1)`.
MINIMAL = r"""
import hashlib, os, queue, socket, sys, threading
from urllib.parse import urlparse
url, out, want_hash = urlparse(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
sock = socket.create_connection((url.hostname, url.port))
sock.sendall(f"GET {url.path} HTTP/1.1\r\nHost: {url.hostname}\r\nConnection: close\r\n\r\n".encode())
head = sock.makefile("rb")
length = 0
while (line := head.readline()) not in (b"\r\n", b""):
    if line.lower().startswith(b"content-length:"):
        length = int(line.split(b":")[1])
body = head.read(len(head.peek())) if length else b""
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
digest, chunks = hashlib.sha256(), queue.Queue(8)
def hash_chunks():
    while (chunk := chunks.get()) is not None:
        digest.update(chunk)
hasher = threading.Thread(target=hash_chunks)
if want_hash:
    hasher.start()
got = 0
while True:
    if body:
        os.write(fd, body)
        if want_hash:
            chunks.put(body)
        got += len(body)
    if got >= length:
        break
    body = sock.recv(min(1 << 20, length - got))
    if not body:
        break
if want_hash:
    chunks.put(None)
    hasher.join()
assert got == length, (got, length)
"""


def main() -> dict:
    args = options(runs=7)
    tmp = workdir()
    try:
        srpm = big_srpm(tmp)
        with file_server(srpm.parent) as base:
            url = f"{base}/{srpm.name}"
            out = tmp / "download"
            times: dict[str, list[float]] = {"curl": [], "minimal": [], "minimal+sha256": []}
            for _ in range(args.runs):
                for label, argv in (("curl", ["curl", "-sf", "-o", str(out), url]),
                                    ("minimal", [sys.executable, "-c", MINIMAL, url, str(out), "0"]),
                                    ("minimal+sha256", [sys.executable, "-c", MINIMAL, url, str(out), "1"])):
                    os.sync()
                    times[label].append(run_timed(argv)[0])
                    out.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    curl = median(times["curl"])
    row = {label: round(median(t), 3) for label, t in times.items()}
    row["ratio_minimal"] = round(curl / median(times["minimal"]), 3)
    row["ratio_minimal_sha256"] = round(curl / median(times["minimal+sha256"]), 3)
    report(row, args, f"256 MiB over loopback, whole processes, median of {args.runs}:",
           f"  curl {row['curl']} s; minimal downloader {row['minimal']} s (ratio {row['ratio_minimal']});"
           f" with sha256 {row['minimal+sha256']} s (ratio {row['ratio_minimal_sha256']})",
           "  the last ratio bounds a downloader that verifies what it downloads, on this machine")
    return row


if __name__ == "__main__":
    main()
