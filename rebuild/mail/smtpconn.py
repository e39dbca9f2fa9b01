"""The connection layer of ``probe-smtp``: smtplib with replies capped in lines and bytes, a deadline for the
whole probe that shuts every socket it opened, and a connect that names what failed.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading

from rebuild.errors import UsageError

MAX_REPLY_LINES = 200
MAX_REPLY_BYTES = 64 << 10


class Capped(smtplib.SMTP):
    """smtplib's reply reader with a cap on a reply's lines and bytes."""

    def getreply(self):
        resp, size = [], 0
        if self.file is None:
            self.file = self.sock.makefile("rb")
        while True:
            try:
                line = self.file.readline(smtplib._MAXLINE + 1)
            except OSError as exc:
                self.close()
                raise smtplib.SMTPServerDisconnected(f"connection lost: {exc}") from None
            if not line:
                self.close()
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            size += len(line)
            if len(line) > smtplib._MAXLINE or len(resp) >= MAX_REPLY_LINES or size > MAX_REPLY_BYTES:
                self.close()
                raise smtplib.SMTPResponseException(500, f"a reply of over {MAX_REPLY_LINES} lines or"
                                                         f" {MAX_REPLY_BYTES} bytes")
            resp.append(line[4:].strip(b" \t\r\n"))
            code = line[:3]
            errcode = int(code) if code.isdigit() and code.isascii() else -1
            if errcode == -1 or line[3:4] != b"-":
                break
        return errcode, b"\n".join(resp)


class Deadline:
    """Shuts the probe's sockets down when the whole probe has taken *seconds*."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.live: list[smtplib.SMTP] = []
        self.timer = threading.Timer(seconds, self._expire)
        self.timer.daemon = True
        self.timer.start()

    def _expire(self) -> None:
        self.expired = True
        for smtp in list(self.live):
            sock = smtp.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cancel(self) -> None:
        self.timer.cancel()


def parse_target(text: str) -> tuple[str, int]:
    """HOST, HOST:PORT, [IPv6]:PORT or a bare IPv6 address; port 25 by default."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "25"
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, "25"
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536 \
            or any(ch.isspace() or not ch.isprintable() for ch in host):
        raise UsageError(f"{text!r}: expected HOST or HOST:PORT")
    return host, int(port)


class CappedSSL(Capped, smtplib.SMTP_SSL):
    """TLS on connect (port 465), with the same capped replies."""


def connect(host: str, port: int, timeout: float, ehlo_name: str, source: str | None,
             deadline: Deadline | None = None, tls: ssl.SSLContext | None = None) -> tuple[smtplib.SMTP, str]:
    kwargs = dict(timeout=timeout, local_hostname=ehlo_name, source_address=(source, 0) if source else None)
    smtp = CappedSSL(context=tls, **kwargs) if tls is not None else Capped(**kwargs)
    if deadline is not None:
        deadline.live.append(smtp)
    smtp._host = host  # the name starttls() sends as SNI; smtplib sets it only when the constructor connects
    try:
        code, banner = smtp.connect(host, port)
    except (OSError, smtplib.SMTPException) as exc:
        smtp.close()
        raise UsageError(f"cannot connect to {host}:{port}{' from ' + source if source else ''}: {exc}") from None
    if code != 220:
        smtp.close()
        raise UsageError(f"{host}:{port} answered {code} {banner.decode(errors='replace')} instead of a 220 greeting")
    return smtp, banner.decode(errors="replace")
