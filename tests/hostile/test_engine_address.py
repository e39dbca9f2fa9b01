"""Engine addresses that never answer, or carry a password: exit 3 within the ping deadline, one line,
nothing printed with the password."""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from rebuild.systems import transfer
from rebuild.systems.dockerengine import PING_DEADLINE, DockerEngine
from rebuild.systems.transfer import EngineAnswerTooLong
from tests.conftest import ROOT
from tests.hostile.conftest import one_line_error, quietly, within


def test_an_engine_that_accepts_and_never_answers_is_exit_3_within_the_deadline():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])  # and say nothing
            except OSError:
                pass

    worker = threading.Thread(target=accept, daemon=True)
    worker.start()
    try:
        env = {"DOCKER_HOST": f"tcp://127.0.0.1:{listener.getsockname()[1]}"}
        with within(PING_DEADLINE + 15):
            proc = quietly("check-deps", "--image", "img:1", "--manifest", str(ROOT / "specs" / "rh73-floors.yaml"),
                           env=env, timeout=PING_DEADLINE + 30)
        one_line_error(proc, 3)
        assert f"did not answer within {PING_DEADLINE} s" in proc.stderr
    finally:
        stop.set()
        worker.join()
        for conn in held:
            conn.close()
        listener.close()


def test_a_password_in_an_ssh_engine_address_is_never_printed():
    proc = quietly("doctor", env={"DOCKER_HOST": "ssh://builder:s3cret-pw@127.0.0.1:1"}, timeout=120)
    assert "s3cret-pw" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_ssh_engine_without_the_ssh_extra_is_one_line_naming_the_extra(tmp_path):
    """A default install has no paramiko (the ssh extra): the docker SDK makes no ssh:// client without it.
    paramiko is made unimportable in this process as an install without it has it."""
    run = ("import sys; sys.modules['paramiko'] = None; sys.argv[0] = 'rebuild'; from rebuild.cli import main;"
           " sys.exit(main())")
    proc = subprocess.run([sys.executable, "-c", run, "-q", "check-deps", "--image", "img:1", "--manifest",
                           str(ROOT / "specs" / "rh73-floors.yaml")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DOCKER_HOST": "ssh://builder@127.0.0.1:1"}, cwd=tmp_path)
    one_line_error(proc, 3)
    assert "DOCKER_HOST=ssh://***@127.0.0.1:1" in proc.stderr and "rebuild[ssh]" in proc.stderr, proc.stderr


def test_a_refused_image_reference_is_printed_without_its_password():
    for flag, value in (("--pull", "https://u:s3cret-pw@127.0.0.1:5/x:1"), ("--pull", "u:s3cret-pw@127.0.0.1:5/x:1"),
                        ("--pull", "127.0.0.1:5/x:1?token=s3cret-pw"), ("--push", "https://u:s3cret-pw@127.0.0.1:5/x")):
        proc = quietly("image", "testroot", flag, value)
        one_line_error(proc, 2)
        assert "s3cret-pw" not in proc.stderr and "***" in proc.stderr, proc.stderr


class _HostileEngine(http.server.BaseHTTPRequestHandler):
    """Answers the ping as an engine does, then every other call with ``mode``: a body that says it is
    100 MiB, one that never ends, or one that trickles."""

    mode = "huge"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.endswith("/_ping"):
            self.send_response(200)
            self.send_header("Api-Version", "1.41")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        try:
            if self.mode == "huge":
                self.send_header("Content-Length", str(100 << 20))
                self.end_headers()
                self.wfile.write(b"{" + b" " * (1 << 20))
            elif self.mode == "endless":
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b" " * (1 << 20)
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:  # a byte now and then, each well within the engine's per-read wait
                self.send_header("Content-Length", "100000")
                self.end_headers()
                while True:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
        except OSError:
            pass

    do_POST = do_GET


@contextlib.contextmanager
def _hostile_engine(mode: str):
    handler = type("Handler", (_HostileEngine,), {"mode": mode})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    worker = threading.Thread(target=server.serve_forever, daemon=True)
    worker.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        worker.join()


def test_an_engine_answer_past_its_size_bound_is_exit_3():
    """An answer that says it is 100 MiB, and one that never ends: refused at 64 MiB, one line, exit 3."""
    for mode in ("huge", "endless"):
        with _hostile_engine(mode) as address:
            with within(60):
                proc = quietly("check-deps", "--image", "img:1", "--manifest",
                               str(ROOT / "specs" / "rh73-floors.yaml"), env={"DOCKER_HOST": address}, timeout=90)
        one_line_error(proc, 3)
        assert "64 MiB" in proc.stderr and "/images/img:1/json" in proc.stderr, proc.stderr


def test_an_engine_answer_that_trickles_ends_at_its_deadline(monkeypatch):
    """A byte every 0.2 s never trips the engine's per-read wait; the answer's own deadline ends it."""
    monkeypatch.setattr(transfer, "ANSWER_SECONDS", 2)
    with _hostile_engine("trickle") as address:
        engine = DockerEngine(docker_host=address)
        started = time.monotonic()
        with pytest.raises(EngineAnswerTooLong, match=r"answer to /v[\d.]+/images/img:1/json took over 2 s"):
            engine.image_id("img:1")
        assert time.monotonic() - started < 10
