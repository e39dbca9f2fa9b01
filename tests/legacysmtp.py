"""A small SMTP server on loopback that stands in for a 2003 MTA where a test needs one: TLS 1.0 only with
AES128-SHA and a 1024-bit RSA certificate signed with SHA-1 (what OpenSSL 0.9.6b/0.9.7 servers offered), and
switchable flaws: an open relay, AUTH before TLS, VRFY answered, commands pipelined with STARTTLS answered
after the handshake (CVE-2011-0411). It speaks just enough SMTP for probe-smtp; nothing is delivered."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Flaws:
    tls_min: ssl.TLSVersion = ssl.TLSVersion.TLSv1
    tls_max: ssl.TLSVersion = ssl.TLSVersion.TLSv1
    ciphers: str = "AES128-SHA:@SECLEVEL=0"
    key_bits: int = 1024
    sha1: bool = True
    open_relay: bool = False
    auth_before_tls: bool = False
    vrfy: bool = False
    injection: bool = False


def make_certificate(folder: Path, key_bits: int, sha1: bool, name: str = "mail.legacy.test") -> tuple[Path, Path]:
    """A self-signed certificate with a *key_bits* RSA key, signed with SHA-1 where asked (by the openssl
    command: the cryptography package no longer signs with SHA-1)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", f"rsa:{key_bits}", "-nodes", "-days", "30",
                    "-sha1" if sha1 else "-sha256", "-subj", f"/CN={name}", "-keyout", str(key_path),
                    "-out", str(cert_path)], check=True, capture_output=True)
    return cert_path, key_path


class LegacySMTP:
    """``with LegacySMTP(folder, Flaws(...)) as server:`` listens on 127.0.0.1:server.port until the block ends."""

    def __init__(self, folder: Path, flaws: Flaws = Flaws()) -> None:
        self.flaws = flaws
        self.cert, self.key = make_certificate(folder, flaws.key_bits, flaws.sha1)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():  # TLS 1.0 is deprecated: that is what this server stands in for
            warnings.simplefilter("ignore", DeprecationWarning)
            self.context.minimum_version, self.context.maximum_version = flaws.tls_min, flaws.tls_max
        self.context.set_ciphers(flaws.ciphers)
        self.context.load_cert_chain(self.cert, self.key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)  # accept() wakes up to see the server stopping
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.seen: list[bytes] = []  # every command line received, for a test to look at

    def __enter__(self) -> LegacySMTP:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self.threads.append(thread)
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.listener.close()
        for thread in self.threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        held = [conn]  # the plain socket, and the TLS one once STARTTLS wrapped it
        try:
            self._session(held)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            for sock in reversed(held):
                sock.close()

    def _session(self, held: list[socket.socket]) -> None:
        flaws, tls, buffer, conn = self.flaws, False, b"", held[0]

        def send(line: str) -> None:
            conn.sendall(line.encode() + b"\r\n")

        send("220 mail.legacy.test ESMTP stand-in for a 2003 server")
        while not self.stopping.is_set():
            while b"\r\n" not in buffer:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buffer += chunk
            line, buffer = buffer.split(b"\r\n", 1)
            verb = line.decode(errors="replace").split(" ", 1)[0].upper()
            self.seen.append(line)
            if verb in ("EHLO", "HELO"):
                lines = ["mail.legacy.test", "PIPELINING"] + ([] if tls else ["STARTTLS"])
                if tls or flaws.auth_before_tls:
                    lines.append("AUTH PLAIN LOGIN")
                for extension in lines[:-1]:
                    send(f"250-{extension}")
                send(f"250 {lines[-1]}")
            elif verb == "STARTTLS" and not tls:
                send("220 2.0.0 Ready to start TLS")
                if not flaws.injection:
                    buffer = b""  # what came with STARTTLS is thrown away, as a fixed server does
                conn = self.context.wrap_socket(conn, server_side=True)
                held.append(conn)
                tls = True
            elif verb == "MAIL":
                send("250 2.1.0 Sender ok")
            elif verb == "RCPT":
                local = re.fullmatch(rb"RCPT TO:<[A-Za-z0-9._-]+@legacy\.test>", line, flags=re.I) is not None
                send("250 2.1.5 Recipient ok" if flaws.open_relay or local else "550 5.7.1 Relaying denied")
            elif verb in ("VRFY", "EXPN"):
                send("250 2.1.5 root <root@legacy.test>" if flaws.vrfy else "252 2.5.2 Cannot VRFY user")
            elif verb in ("RSET", "NOOP"):
                send("250 2.0.0 OK")
            elif verb == "QUIT":
                send("221 2.0.0 Bye")
                return
            else:
                send("502 5.5.1 Command not implemented")
