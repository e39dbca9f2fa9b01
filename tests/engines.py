"""Real servers for the scale-out tests, on 127.0.0.1 only: a Docker registry (Debian's docker-registry)
and a second Docker engine (its own dockerd, data root, exec root and containerd, listening on TCP), the
stand-in for a remote build host."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
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
        self.untag()

    def untag(self) -> None:
        """Remove the tags this registry's address gave images in this host's engine (pushes and pulls)."""
        listed = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True,
                                text=True)
        mine = [t for t in listed.stdout.split() if t.startswith(self.address + "/")]
        if mine:
            subprocess.run(["docker", "rmi", *mine], capture_output=True)

    def blob(self, digest: str) -> Path:
        hex_ = digest.split(":", 1)[1]
        return self.storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hex_[:2] / hex_ / "data"


class SecondEngine:
    """A second dockerd on tcp://127.0.0.1:<port> with its own data root: builds there cannot see this
    host's folders through bind mounts any more than a remote engine's could. With *socket* (and *group*),
    it listens on that unix socket instead, reachable by that group's members only."""

    def __init__(self, base: Path, socket: Path | None = None, group: str | None = None) -> None:
        self.base = base
        self.port = free_port()
        self.host = f"unix://{socket}" if socket else f"tcp://127.0.0.1:{self.port}"
        self.group = group
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
                 "--ip-masq=false", "--config-file", str(self._config()),
                 *(["--group", self.group] if self.group else [])],
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


class SshEngine:
    """A second dockerd on a unix socket that only its group reaches, and a real sshd on 127.0.0.1:<port>
    (key authentication only, one dedicated user in that group, DOCKER_HOST set for its sessions): the
    engine a user reaches with ``DOCKER_HOST=ssh://rebuild-ssh@127.0.0.1:<port>``. ``env`` is what a client
    needs: the ssh:// DOCKER_HOST and an ``ssh`` first on PATH that brings the test's key and known-hosts
    file (a user's ~/.ssh/config does the same)."""

    USER = "rebuild-ssh"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        # where the user's sessions can reach it (pytest's own folders are private to root)
        self.socket_dir = Path(tempfile.mkdtemp(prefix="rebuild-ssh-engine-"))
        self.socket_dir.chmod(0o755)
        self.socket = self.socket_dir / "docker.sock"
        self.host = f"ssh://{self.USER}@127.0.0.1:{self.port}"
        self.engine = SecondEngine(base, socket=self.socket, group=self.USER)
        self.sshd: subprocess.Popen | None = None
        self.made_user = False

    def __enter__(self) -> SshEngine:
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if os.geteuid() != 0 or not shutil.which("dockerd") or not Path(sshd).exists():
            raise Unavailable("an ssh:// engine needs root, dockerd and sshd (Debian: apt-get install openssh-server)")
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        if subprocess.run(["id", self.USER], capture_output=True).returncode != 0:
            # password "*": no password login, yet not a locked account (which sshd refuses without PAM)
            subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/sh", "--password", "*",
                            self.USER], check=True)
            self.made_user = True
        try:
            self.engine.__enter__()
            self._start_sshd(sshd)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start_sshd(self, sshd: str) -> None:
        keys = self.base / "keys"
        keys.mkdir(exist_ok=True)
        for name in ("host", "client"):
            if not (keys / name).exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
        home = Path(subprocess.run(["getent", "passwd", self.USER], capture_output=True, text=True,
                                   check=True).stdout.split(":")[5])
        authorized = home / ".ssh" / "authorized_keys"
        authorized.parent.mkdir(mode=0o700, exist_ok=True)
        authorized.write_text((keys / "client.pub").read_text())
        authorized.chmod(0o600)
        shutil.chown(authorized.parent, self.USER, self.USER)
        shutil.chown(authorized, self.USER, self.USER)
        config = self.base / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\nPidFile {self.base / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {authorized}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            f"UsePAM no\nAllowUsers {self.USER}\nPermitRootLogin no\n"
            f"SetEnv DOCKER_HOST=unix://{self.socket}\n")
        Path("/run/sshd").mkdir(exist_ok=True)  # the privilege separation folder
        log = self.base / "sshd.log"
        with log.open("wb") as out:
            self.sshd = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT)
        client = self.base / "ssh_config"
        client.write_text(f"Host 127.0.0.1\n  IdentityFile {keys / 'client'}\n  IdentitiesOnly yes\n  BatchMode yes\n"
                          f"  UserKnownHostsFile {self.base / 'known_hosts'}\n  StrictHostKeyChecking accept-new\n")
        shim = self.base / "bin"
        shim.mkdir(exist_ok=True)
        (shim / "ssh").write_text(f"#!/bin/sh\nexec /usr/bin/ssh -F {client} \"$@\"\n")
        (shim / "ssh").chmod(0o755)
        probe = lambda: subprocess.run(  # noqa: E731
            ["docker", "-H", self.host, "version", "--format", "{{.Server.Version}}"], capture_output=True,
            env=self.env()).returncode == 0
        _wait(probe, "docker over ssh://", self.sshd, log, seconds=30)

    def env(self) -> dict:
        return {**os.environ, "DOCKER_HOST": self.host, "PATH": f"{self.base / 'bin'}:{os.environ['PATH']}"}

    def docker(self, *args: str) -> subprocess.CompletedProcess:
        """The engine on its socket, directly (for the test's own checks)."""
        return self.engine.docker(*args)

    def __exit__(self, *exc) -> None:
        if self.sshd is not None:
            _stop(self.sshd)
        self.engine.__exit__()
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        if self.made_user:
            subprocess.run(["userdel", "--remove", self.USER], capture_output=True)
