"""Hostile SMTP servers (a tiny scripted server on loopback) and bad probe arguments: the probe ends within
its deadline, its memory bounded, with a finding; bad input is one line and exit 2."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from rebuild.mail.smtpprobe import ProbeOptions, probe
from tests.hostile.conftest import one_line_error, quietly, within


class Scripted:
    """A loopback server that greets, then feeds each connection from *talk(conn)*."""

    def __init__(self, talk) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.talk = talk
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn) -> None:
        try:
            self.talk(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


def endless_lines(conn) -> None:
    conn.sendall(b"220 hostile ESMTP\r\n")
    conn.recv(1024)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conn.sendall(b"250-" + b"X" * 500 + b"\r\n")


def a_byte_a_second(conn) -> None:
    conn.sendall(b"220 slow ESMTP\r\n")
    conn.recv(1024)
    for byte in b"250-PIPELINING\r\n" * 100:
        conn.sendall(bytes([byte]))
        time.sleep(0.5)


@pytest.mark.parametrize("talk, finding", [(endless_lines, "reply"), (a_byte_a_second, "deadline")])
def test_servers_that_never_finish_a_reply(talk, finding):
    server = Scripted(talk)
    try:
        with within(8):
            report = probe("127.0.0.1", server.port, ProbeOptions(timeout=3, deadline=2.5))
    finally:
        server.close()
    assert finding in {f.check for f in report.findings} and report.failed


@pytest.mark.parametrize("args", [["127.0.0.1:\u00b2"], ["127.0.0.1:0"], ["127.0.0.1:99999"], ["bad host:25"],
                                  ["127.0.0.1:25", "--ehlo", "x\r\nMAIL FROM:<a@b>"],
                                  ["127.0.0.1:25", "--ehlo", "caf\u00e9.example"],
                                  ["127.0.0.1:25", "--relay-test", "a@b\r\nDATA", "c@d"],
                                  ["127.0.0.1:25", "--relay-test", "a@b", "c d@e"],
                                  ["127.0.0.1:25", "--client-cert", "/nonexistent.pem", "--client-key", "/x.pem"]])
def test_bad_arguments_are_one_line(args):
    with within(10):
        one_line_error(quietly("probe-smtp", *args), 2)
