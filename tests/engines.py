"""Real servers for the scale-out tests, on 127.0.0.1 only: a Docker registry (Debian's docker-registry)
and a second Docker engine (its own dockerd, data root, exec root and containerd, listening on TCP), the
stand-in for a remote build host."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.mta import free_port


class Unavailable(Exception):
    """The server cannot be started here (the reason says what is missing)."""


def _wait(check, what: str, proc: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Unavailable(f"{what} exited ({proc.returncode}): {log.read_text()[-800:]}")
        if check():
            return
        time.sleep(0.2)
    raise Unavailable(f"{what} did not answer within {seconds:.0f} s: {log.read_text()[-800:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Registry:
    """``docker-registry serve`` on 127.0.0.1:<port>, storing blobs under *base*/storage."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.storage = base / "storage"
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Registry:
        binary = shutil.which("docker-registry")
        if not binary:
            raise Unavailable("docker-registry is not installed (Debian: apt-get install docker-registry)")
        self.storage.mkdir(parents=True, exist_ok=True)
        config = self.base / "config.yml"
        config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
                          f"  delete:\n    enabled: true\nhttp:\n  addr: {self.address}\n")
        log = self.base / "registry.log"
        with log.open("wb") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)

        def up() -> bool:
            try:
                return urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1).status == 200
            except OSError:
                return False

        _wait(up, "docker-registry", self.proc, log)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            _stop(self.proc)

    def blob(self, digest: str) -> Path:
        hex_ = digest.split(":", 1)[1]
        return self.storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hex_[:2] / hex_ / "data"


class SecondEngine:
    """A second dockerd on tcp://127.0.0.1:<port> with its own data root: builds there cannot see this
    host's folders through bind mounts any more than a remote engine's could."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.host = f"tcp://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> SecondEngine:
        binary = shutil.which("dockerd")
        if not binary or os.geteuid() != 0:
            raise Unavailable("a second engine needs dockerd and root")
        for folder in ("data", "exec"):
            (self.base / folder).mkdir(parents=True, exist_ok=True)
        log = self.base / "dockerd.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [binary, "--data-root", str(self.base / "data"), "--exec-root", str(self.base / "exec"),
                 "--pidfile", str(self.base / "dockerd.pid"), "-H", self.host, "--bridge=none", "--iptables=false",
                 "--ip-masq=false", "--config-file", str(self._config())],
                stdout=out, stderr=subprocess.STDOUT)
        _wait(lambda: self.docker("info").returncode == 0, "the second dockerd", self.proc, log, seconds=90)
        return self

    def _config(self) -> Path:
        path = self.base / "daemon.json"
        path.write_text("{}\n")
        return path

    def docker(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "-H", self.host, *args], capture_output=True, text=True)

    def __exit__(self, *exc) -> None:
        if self.proc is None:
            return
        ids = self.docker("ps", "-aq").stdout.split()
        if ids:
            self.docker("rm", "-f", *ids)
        _stop(self.proc)
        shutil.rmtree(self.base / "data", ignore_errors=True)
