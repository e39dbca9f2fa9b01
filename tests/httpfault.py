"""A real HTTP server on 127.0.0.1 whose answers a test scripts, request by request."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    path: str
    range: str | None
    status: int
    sent: int


@dataclass
class FaultServer:
    """Serves ``files``; ``faults[path]`` is a queue of one-shot faults taken per request:
    ``404``, ``500``, ``429:SECONDS``, ``cut:N`` (promise the whole body, send N bytes, hang up),
    ``stall:SECONDS`` (wait before the body), ``redirect:URL``, ``html``, ``wrong``; hostile ones:
    ``trickle`` (a byte a second, forever), ``slowheaders`` (a header line every second, forever),
    ``continue`` (endless ``100 Continue``), ``header:NAME:VALUE`` (send that raw header; the body
    follows).
    ``ignore_range`` paths answer every request with 200 and the whole file;
    ``throttle`` (bytes per second) slows every body down."""

    files: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, list[str]] = field(default_factory=dict)
    ignore_range: set[str] = field(default_factory=set)
    throttle: int | None = None
    tls: tuple[str, str] | None = None  # (certificate, key) files: serve https
    auth: str | None = None  # "user:password": every request without that Basic authorization gets 401
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self
        self.busy = 0
        self.lock = threading.Condition()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                with owner.lock:
                    owner.busy += 1
                try:
                    owner._handle(self)
                finally:
                    with owner.lock:
                        owner.busy -= 1
                        owner.lock.notify_all()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a client hanging up mid-answer is a test's point
        if self.tls:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            # the handshake happens in the handler's thread, where a client's refusal is just a closed request
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def settled(self) -> list[Seen]:
        """The requests seen, once no handler is still writing."""
        with self.lock:
            self.lock.wait_for(lambda: self.busy == 0, timeout=10)
        return list(self.seen)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _send(self, h, status: int, body: bytes, headers: dict | None = None, *, limit: int | None = None,
              stall: float = 0, length: int | None = None) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        if limit is not None:
            h.send_header("Connection", "close")
        h.end_headers()
        if stall:
            time.sleep(stall)
        data = b"" if h.command == "HEAD" else body if limit is None else body[:limit]
        sent = 0
        try:
            if self.throttle:
                step = max(1, self.throttle // 20)
                for i in range(0, len(data), step):
                    h.wfile.write(data[i : i + step])
                    h.wfile.flush()
                    sent += len(data[i : i + step])
                    time.sleep(step / self.throttle)
            else:
                h.wfile.write(data)
                sent = len(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if limit is not None:
            h.close_connection = True
        self.seen.append(Seen(h.path, h.headers.get("Range"), status, sent))

    def _handle(self, h) -> None:
        path = h.path.split("?", 1)[0]
        if self.auth is not None:
            import base64

            if h.headers.get("Authorization") != "Basic " + base64.b64encode(self.auth.encode()).decode():
                return self._send(h, 401, b"who are you?\n", {"WWW-Authenticate": 'Basic realm="tree"'})
        queue = self.faults.get(path, [])
        fault = queue.pop(0) if queue else ""
        body = self.files.get(path)
        if body is None and path.endswith("/") and not fault:
            children = sorted({p[len(path):].split("/")[0] + ("/" if "/" in p[len(path):] else "")
                               for p in self.files if p.startswith(path)})
            if children:
                links = "".join(f'<a href="{c}">{c}</a>\n' for c in children)
                return self._send(h, 200, f"<html><body>\n{links}</body></html>\n".encode(), {"Content-Type": "text/html"})
        if fault == "404" or (body is None and not fault.startswith("redirect")):
            return self._send(h, 404, b"not found\n")
        if fault == "500":
            return self._send(h, 500, b"oops\n")
        if fault.startswith("429"):
            return self._send(h, 429, b"slow down\n", {"Retry-After": fault.split(":")[1]})
        if fault.startswith("redirect:"):
            return self._send(h, 302, b"", {"Location": fault.split(":", 1)[1]})
        if fault == "html":
            return self._send(h, 200, b"<!DOCTYPE html><html><body>Mirror maintenance</body></html>\n",
                              {"Content-Type": "text/html"})
        if fault == "wrong":
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        if fault in ("trickle", "slowheaders", "continue"):
            return self._hostile(h, fault, body)
        if fault.startswith("header:"):
            _, name, value = fault.split(":", 2)
            h.wfile.write(f"HTTP/1.1 200 OK\r\n{name}: {value}\r\nConnection: close\r\n\r\n".encode("latin-1") + body)
            h.close_connection = True
            self.seen.append(Seen(h.path, h.headers.get("Range"), 200, len(body)))
            return None
        start, end = 0, len(body)
        rng = h.headers.get("Range")
        ranged = bool(rng and path not in self.ignore_range and rng.startswith("bytes="))
        if ranged:
            first, _, last = rng[6:].partition("-")
            start = int(first)
            end = min(len(body), int(last) + 1) if last else len(body)
        status = 206 if ranged and (start or end < len(body)) else 200
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{len(body)}-{hash(body) & 0xffffff:x}"'} \
            if path not in self.ignore_range else {}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(body)}"
        if h.command == "HEAD":
            return self._send(h, 200, b"", headers, length=len(body))
        chunk = body[start:end]
        if fault.startswith("cut:"):
            return self._send(h, status, chunk, headers, limit=int(fault.split(":")[1]))
        if fault.startswith("stall:"):
            return self._send(h, status, chunk, headers, stall=float(fault.split(":")[1]))
        return self._send(h, status, chunk, headers)

    def _hostile(self, h, fault: str, body: bytes) -> None:
        """Answers that never end, until the client hangs up (or a minute passes)."""
        deadline = time.monotonic() + 60
        sent = 0
        try:
            if fault == "continue":
                while time.monotonic() < deadline:
                    h.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    h.wfile.flush()
                    time.sleep(0.2)
            elif fault == "slowheaders":
                h.wfile.write(b"HTTP/1.1 200 OK\r\n")
                n = 0
                while time.monotonic() < deadline:
                    h.wfile.write(f"X-Slow-{n}: {n}\r\n".encode())
                    h.wfile.flush()
                    n += 1
                    time.sleep(1)
            else:
                h.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
                for byte in body:
                    if time.monotonic() > deadline:
                        break
                    h.wfile.write(bytes([byte]))
                    h.wfile.flush()
                    sent += 1
                    time.sleep(1)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        h.close_connection = True
        self.seen.append(Seen(h.path, h.headers.get("Range"), 200, sent))
