"""The Docker engine API calls rebuild makes, with the standard library alone: one HTTP/1.1 request per
connection (``Connection: close``) on the engine's unix socket or a plain TCP address, and the
multiplexed stream of exec and attach read frame by frame. The docker SDK takes ~0.18 s to import, more
than a small build's whole overhead budget; it is kept for what this module does not do (registries,
``ssh://`` and TLS engines: ``SdkAPI``).

Both ``LiteAPI`` and ``SdkAPI`` answer the same calls with the shapes the SDK's low-level ``APIClient``
uses, and raise this module's ``APIError``/``NotFound``/``ImageNotFound``.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from collections.abc import Iterator
from urllib.parse import quote, urlencode, urlparse

from rebuild.files import sha256_bytes

API = "/v1.41"
MAX_BODY = 64 << 20


class Unavailable(Exception):
    """This module cannot talk to the engine at DOCKER_HOST (ssh://, TLS): the SDK must."""


class APIError(Exception):
    def __init__(self, status: int, explanation: str) -> None:
        super().__init__(f"{status}: {explanation}")
        self.status, self.explanation = status, explanation


class NotFound(APIError):
    pass


class ImageNotFound(NotFound):
    pass


def address() -> tuple[str, object]:
    """("unix", path) or ("tcp", (host, port)) for DOCKER_HOST; Unavailable for what needs the SDK."""
    host = os.environ.get("DOCKER_HOST", "") or "unix:///var/run/docker.sock"
    if os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("DOCKER_CERT_PATH"):
        raise Unavailable("a TLS engine")
    url = urlparse(host)
    if url.scheme == "unix":
        return "unix", url.path
    if url.scheme == "tcp" and url.hostname:
        return "tcp", (url.hostname, url.port or 2375)
    raise Unavailable(f"an engine at {host}")


class _Response:
    """A response's status and headers, its body read as it is framed (or the raw stream after it)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""
        head = self._until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise APIError(0, f"not an HTTP answer: {lines[0][:80]!r}")
        self.status = int(parts[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}

    def _fill(self) -> bool:
        chunk = self.sock.recv(1 << 16)
        self.buffer += chunk
        return bool(chunk)

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if len(self.buffer) > 1 << 20 or not self._fill():
                raise APIError(0, "the engine closed the connection mid-answer")
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def read(self, n: int) -> bytes:
        """Exactly *n* bytes of the raw stream, fewer only at its end."""
        while len(self.buffer) < n and self._fill():
            pass
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def chunks(self) -> Iterator[bytes]:
        """The body, as it is framed: chunked, by Content-Length, or to the end of the connection."""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self._until(b"\r\n").split(b";")[0] or b"0", 16)
                if size == 0:
                    return
                yield self.read(size)
                self.read(2)
        elif "content-length" in self.headers:
            left = int(self.headers["content-length"])
            while left > 0:
                data = self.read(min(left, 1 << 16))
                if not data:
                    return
                left -= len(data)
                yield data
        else:
            while True:
                data = self.read(1 << 16)
                if not data:
                    return
                yield data

    def body(self) -> bytes:
        data = b"".join(self.chunks())
        if len(data) > MAX_BODY:
            raise APIError(self.status, "answer too large")
        return data

    def close(self) -> None:
        self.sock.close()


class LiteAPI:
    """The engine's HTTP API on a socket; the method names and answers of the SDK's ``APIClient``."""

    def __init__(self, timeout: float = 600) -> None:
        self.kind, self.where = address()
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        try:
            if self.kind == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(self.where)
                return sock
            return socket.create_connection(self.where, timeout=self.timeout)
        except OSError as exc:
            raise ConnectionError(f"{exc.strerror or exc}") from None

    def request(self, method: str, path: str, params: dict | None = None, body=None, *,
                stream: bool = False, headers: dict | None = None) -> _Response:
        query = ("?" + urlencode(params, doseq=True)) if params else ""
        extra = dict(headers or {})
        if isinstance(body, (dict, list)):
            body, extra["Content-Type"] = json.dumps(body).encode(), "application/json"
        size = None
        if isinstance(body, bytes):
            size = len(body)
        elif body is not None:
            try:
                size = os.fstat(body.fileno()).st_size - body.tell()
            except (OSError, AttributeError, ValueError):  # no descriptor (a spooled archive in memory)
                body = body.read()
                size = len(body)
        if stream:
            extra.update({"Connection": "Upgrade", "Upgrade": "tcp"})
        else:
            extra["Connection"] = "close"
        if size is not None:
            extra["Content-Length"] = str(size)
        lines = [f"{method} {API}{path}{query} HTTP/1.1", "Host: docker"] + [f"{k}: {v}" for k, v in extra.items()]
        sock = self._connect()
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            if isinstance(body, bytes):
                sock.sendall(body)
            elif body is not None:
                while block := body.read(1 << 20):
                    sock.sendall(block)
            response = _Response(sock)
        except BaseException:
            sock.close()
            raise
        if response.status >= 400:
            try:
                data = response.body()
            finally:
                response.close()
            try:
                message = json.loads(data).get("message", "")
            except (ValueError, AttributeError):
                message = data.decode(errors="replace").strip()
            if response.status == 404:
                raise (ImageNotFound if "image" in message.lower() else NotFound)(404, message)
            raise APIError(response.status, message)
        return response

    def _json(self, method: str, path: str, params: dict | None = None, body=None):
        response = self.request(method, path, params, body)
        try:
            data = response.body()
        finally:
            response.close()
        return json.loads(data) if data.strip() else None

    # ---------------------------------------------------------------- the calls rebuild makes

    def ping(self) -> None:
        response = self.request("GET", "/_ping")
        response.close()

    def version(self) -> dict:
        return self._json("GET", "/version")

    def inspect_image(self, ref: str) -> dict:
        return self._json("GET", f"/images/{quote(ref, safe='')}/json")

    def create_host_config(self, *, network_mode: str, mounts: list[dict]) -> dict:
        return {"NetworkMode": network_mode, "Mounts": mounts}

    def create_container(self, image: str, *, command: list[str], name: str, hostname: str | None, user: str,
                         network_disabled: bool, labels: dict, host_config: dict) -> dict:
        body = {"Image": image, "Cmd": command, "Hostname": hostname or "", "User": user,
                "NetworkDisabled": network_disabled, "Labels": labels, "HostConfig": host_config,
                "AttachStdout": False, "AttachStderr": False}
        return self._json("POST", "/containers/create", {"name": name}, body)

    def start(self, container: str) -> None:
        self._json("POST", f"/containers/{container}/start")

    def wait(self, container: str) -> dict:
        return self._json("POST", f"/containers/{container}/wait")

    def remove_container(self, container: str, *, force: bool = False, v: bool = False) -> None:
        self._json("DELETE", f"/containers/{container}", {"force": int(force), "v": int(v)})

    def attach_socket(self, container: str, params: dict) -> _Response:
        return self.request("POST", f"/containers/{container}/attach", params, stream=True)

    def exec_create(self, container: str, cmd: list[str], *, user: str = "", workdir: str | None = None,
                    environment: dict | None = None) -> dict:
        body = {"AttachStdout": True, "AttachStderr": True, "Cmd": cmd, "User": user,
                "Env": [f"{k}={v}" for k, v in (environment or {}).items()]}
        if workdir:
            body["WorkingDir"] = workdir
        return self._json("POST", f"/containers/{container}/exec", None, body)

    def exec_start(self, exec_id: str, *, socket: bool = True) -> _Response:
        return self.request("POST", f"/exec/{exec_id}/start", None, {"Detach": False, "Tty": False}, stream=True)

    def exec_inspect(self, exec_id: str) -> dict:
        return self._json("GET", f"/exec/{exec_id}/json")

    def put_archive(self, container: str, path: str, data) -> bool:
        self._json("PUT", f"/containers/{container}/archive", {"path": path}, data)
        return True

    def get_archive(self, container: str, path: str) -> tuple[Iterator[bytes], dict]:
        response = self.request("GET", f"/containers/{container}/archive", {"path": path})
        encoded = response.headers.get("x-docker-container-path-stat", "")
        stat = json.loads(base64.b64decode(encoded)) if encoded else {}

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.chunks()
            finally:
                response.close()

        return chunks(), stat

    def commit(self, container: str, *, repository: str, tag: str) -> dict:
        return self._json("POST", "/commit", {"container": container, "repo": repository, "tag": tag}, {})

    def tag(self, image: str, repository: str, tag: str) -> None:
        self._json("POST", f"/images/{quote(image, safe='')}/tag", {"repo": repository, "tag": tag})

    def import_image_from_file(self, path: str, *, repository: str, tag: str, changes: list[str]) -> None:
        with open(path, "rb") as fh:
            answer = self._progress("POST", "/images/create",
                                    {"fromSrc": "-", "repo": repository, "tag": tag, "changes": changes}, fh)
        if "error" in answer:
            raise APIError(500, answer["error"])

    def _progress(self, method: str, path: str, params: dict, body) -> dict:
        """A JSON-lines progress answer: the last object, or the first with an error."""
        response = self.request(method, path, params, body, headers={"Content-Type": "application/x-tar"})
        last: dict = {}
        try:
            for line in b"".join(response.chunks()).splitlines():
                if line.strip():
                    event = json.loads(line)
                    if "error" in event:
                        return event
                    last = event
        finally:
            response.close()
        return last

    def close(self) -> None:
        pass


def bind_mount(source: str, target: str, read_only: bool) -> dict:
    """A bind mount as the API's HostConfig.Mounts lists it."""
    return {"Type": "bind", "Source": source, "Target": target, "ReadOnly": read_only}


def frames(stream) -> Iterator[bytes]:
    """The payloads of a multiplexed (non-tty) exec or attach stream, stdout and stderr alike, to its end."""
    read = getattr(stream, "read", None) or stream.recv
    while True:
        header = _exact(read, 8)
        if len(header) < 8:
            return
        _, size = struct.unpack(">BxxxL", header)
        data = _exact(read, size)
        if data:
            yield data
        if len(data) < size:
            return


def _exact(read, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = read(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def close_stream(stream) -> None:
    """Close a stream either API handed out (the SDK's SocketIO leaves its socket open on close())."""
    inner = getattr(stream, "_sock", None)
    stream.close()
    if inner is not None:
        inner.close()


class SdkAPI:
    """The docker SDK's ``APIClient`` with this module's errors: for ssh:// and TLS engines."""

    def __init__(self, client) -> None:
        self._api = client.api

    def __getattr__(self, name: str):
        import docker.errors

        method = getattr(self._api, name)

        def call(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except docker.errors.ImageNotFound as exc:
                raise ImageNotFound(404, str(exc.explanation or exc)) from None
            except docker.errors.NotFound as exc:
                raise NotFound(404, str(exc.explanation or exc)) from None
            except docker.errors.APIError as exc:
                raise APIError(exc.status_code or 0, str(exc.explanation or exc)) from None

        return call


def inspect_image(ref: str, timeout: float = 10) -> dict | None:
    """An image's attributes (None when the engine has no such image); Unavailable for the SDK's engines,
    and when this module cannot reach the engine (the SDK then says why)."""
    try:
        return LiteAPI(timeout).inspect_image(ref)
    except ImageNotFound:
        return None
    except (APIError, ConnectionError, OSError) as exc:
        raise Unavailable(str(exc)) from None


def content_id(attrs: dict) -> str:
    """What the image whose ``inspect`` answer is *attrs* is, whatever host holds it (``dockerimages``
    says what goes in); here beside ``inspect_image`` so that check-deps loads no more than this module."""

    config = attrs.get("Config") or {}
    made_of = {"layers": (attrs.get("RootFS") or {}).get("Layers") or [], "env": config.get("Env") or [],
               "labels": config.get("Labels") or {}, "user": config.get("User") or "",
               "platform": [attrs.get("Os"), attrs.get("Architecture"), attrs.get("Variant")]}
    return "sha256:" + sha256_bytes(json.dumps(made_of, sort_keys=True).encode())
