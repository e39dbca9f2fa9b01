"""A small HTTP server for benchmarks: serves one folder with sendfile, ranges included.

    python bench/fileserver.py DIR   (prints its URL, serves until killed)
"""

from __future__ import annotations

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    root = Path(sys.argv[1]).resolve()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            path = (root / self.path.lstrip("/")).resolve()
            if root not in path.parents or not path.is_file():
                self.send_error(404)
                return
            size = path.stat().st_size
            start = 0
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
            self.send_response(206 if start else 200)
            self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.send_header("Content-Length", str(size - start))
            self.end_headers()
            with path.open("rb") as fh:
                self.wfile.flush()
                os.sendfile(self.connection.fileno(), fh.fileno(), start, size - start)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
