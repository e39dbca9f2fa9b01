"""Engine addresses that never answer, or carry a password: exit 3 within the ping deadline, one line,
nothing printed with the password."""

from __future__ import annotations

import socket
import threading

from rebuild.systems.dockerengine import PING_DEADLINE
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


def test_a_refused_image_reference_is_printed_without_its_password():
    for flag, value in (("--pull", "https://u:s3cret-pw@127.0.0.1:5/x:1"), ("--pull", "u:s3cret-pw@127.0.0.1:5/x:1"),
                        ("--pull", "127.0.0.1:5/x:1?token=s3cret-pw"), ("--push", "https://u:s3cret-pw@127.0.0.1:5/x")):
        proc = quietly("image", "testroot", flag, value)
        one_line_error(proc, 2)
        assert "s3cret-pw" not in proc.stderr and "***" in proc.stderr, proc.stderr
