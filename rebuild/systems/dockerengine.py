"""The Docker engine: ``DockerEngine`` and its ``DockerContainer`` (the interface they implement, and how
files reach a container: ``engine``). Every call goes through the docker SDK's low-level ``APIClient``, on
the local socket, tcp://, TLS and ssh:// engines alike, imported when an engine is first used: commands
that never reach one (a no-op build, --help) do not load it."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rebuild.errors import BuildFailed, EnvironmentProblem
from rebuild.log import Log
from rebuild.settings import Settings
from rebuild.systems import dockerimages, transfer
from rebuild.systems.dockerimages import ImageInfo, Reference
from rebuild.systems.engine import API_VERSION, LABEL, START_ENGINE_HINT, Mount, transfer_is_archive
from rebuild.systems.urls import redact

PING_DEADLINE = 20  # seconds for an engine to answer its first call (a local one answers in milliseconds)
# seconds an engine may stay silent within a call (a commit or an import of a large root works before it
# answers); an answer's size and the time to read it are bounded by ``transfer.bound_answers``
READ_SECONDS = 300


class DockerContainer:
    def __init__(self, api, container_id: str, name: str, log: Log, mounts: list[Mount] = (),
                 archive: bool = False) -> None:
        self._api = api
        self.id = container_id
        self.name = name
        self._log = log
        self._mounts = list(mounts)
        self.archive = archive

    def _mount_of(self, path: str) -> tuple[Mount, Path]:
        for m in self._mounts:
            if path == m.target or path.startswith(m.target.rstrip("/") + "/"):
                return m, m.source / path[len(m.target):].lstrip("/")
        raise ValueError(f"{path} is not inside a mount of {self.name}")

    def copy_out(self, path: str) -> None:
        if not self.archive:
            return
        from docker.errors import APIError, NotFound

        mount, host = self._mount_of(path)
        self._log.command(["docker", "cp", f"{self.name}:{path}", str(host)], "engine")
        try:
            stream, _ = self._api.get_archive(self.id, path)
        except NotFound:
            return
        except APIError as exc:
            raise BuildFailed(f"container {self.name}: cannot copy {path} out: {exc.explanation or exc}") from None
        transfer.extract(stream, host.parent, path.rstrip("/").rsplit("/", 1)[-1], host.name)

    def copy_in(self, path: str) -> None:
        if not self.archive:
            return
        mount, host = self._mount_of(path)
        if host.exists():
            transfer.copy_mounts(self._api, self.id, [Mount(host, path, mount.read_only)], self._log, owner=mount.source)

    def run(self, argv, *, user=None, workdir=None, env=None, output=None, shown=None) -> int:
        from docker.errors import APIError

        self._log.command(shown or argv, self.name)
        try:
            exec_id = self._api.exec_create(self.id, argv, user=user or "", workdir=workdir, environment=env)["Id"]
            sock = self._api.exec_start(exec_id, socket=True)  # the raw stream, closed here
            try:
                for chunk in transfer.frames(sock):
                    if output:
                        output(chunk)
            finally:
                transfer.close_stream(sock)
            code = self._api.exec_inspect(exec_id)["ExitCode"]
        except APIError as exc:
            raise BuildFailed(f"container {self.name}: cannot run {argv[0]}: {exc.explanation or exc}") from None
        return 0 if code is None else int(code)

    def commit(self, tag: str) -> str:
        """Save the container's filesystem as image *tag*; return the image ID."""
        repository, _, version = tag.rpartition(":")
        return self._api.commit(self.id, repository=repository or tag, tag=version or "latest")["Id"]


def _bind(source: str, target: str, read_only: bool) -> dict:
    """A bind mount as the API's HostConfig.Mounts lists it."""
    return {"Type": "bind", "Source": source, "Target": target, "ReadOnly": read_only}


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """SIGINT and SIGTERM arriving in the block take effect when it ends (main thread only; other
    threads never receive them)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: held.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in held[:1]:
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)  # Python's SIGINT handler (or rebuild's SIGTERM one) raises here
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


class DockerEngine:
    """The real engine, reached the way the docker CLI would (DOCKER_HOST or the local socket)."""

    def __init__(self, log: Log | None = None, *, keep_containers: bool = False, transfer: str = "auto",
                 docker_host: str | None = None) -> None:
        self._log = log or Log(quiet=True)
        self._keep = keep_containers
        self._transfer = transfer
        self._host = Settings.from_env().docker_host if docker_host is None else docker_host
        # shared with for_log() copies: one connection, one set of live containers
        self._shared: dict = {"api": None, "sdk": None}
        self._live: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def for_log(self, log: Log) -> DockerEngine:
        """The same engine (connected on first use), echoing commands to *log* (one per parallel build)."""
        other = DockerEngine(log, keep_containers=self._keep, transfer=self._transfer, docker_host=self._host)
        other._shared, other._live, other._lock = self._shared, self._live, self._lock
        return other

    def close(self) -> None:
        """Close the connection to the engine (a process that lives on after using it)."""
        with self._lock:
            if self._shared["sdk"] is not None:
                self._shared["sdk"].close()
            self._shared.update(api=None, sdk=None)

    def version(self) -> str:
        return str(self.api.version().get("Version", "?"))

    @property
    def archive(self) -> bool:
        """Whether files travel as archives (the engine is not on this host, or REBUILD_TRANSFER=archive)."""
        return transfer_is_archive(self._transfer, self._host)

    def inspect_image(self, ref: str) -> ImageInfo | None:
        return dockerimages.inspect(self.api, ref)

    def push(self, image: str, repository: str, tag: str) -> str:
        self._log.command(["docker", "push", f"{repository}:{tag}"], "engine")
        return dockerimages.push(self.sdk, image, repository, tag, self._log)

    def pull(self, ref: Reference) -> ImageInfo:
        self._log.command(["docker", "pull", ref.pinned], "engine")
        return dockerimages.pull(self.sdk, self.api, ref, self._log)

    def tag(self, image: str, tag: str) -> None:
        repository, _, version = tag.rpartition(":")
        self.api.tag(image, repository or tag, version or "latest")

    def read_file(self, image: str, path: str) -> bytes | None:
        return dockerimages.read_file(self.api, image, path)

    def shell(self, image: str, argv: list[str], *, mounts: list[Mount], user: str, workdir: str,
              hostname: str, tty: bool) -> int:
        """The docker CLI, for a terminal the SDK does not give: ``docker run --rm -i [-t]``; on a remote
        engine ``docker create``, the mounts copied in, ``docker start -ai`` (changes stay in the container)."""
        import subprocess

        docker = shutil.which("docker")
        if not docker:
            raise EnvironmentProblem("the docker command is not installed (Debian: apt-get install docker.io)")
        self.api  # noqa: B018 - a clear error when no engine answers
        options = ["-i", *(["-t"] if tty else []), "--network", "none", "--hostname", hostname,
                   "--label", f"{LABEL}=1", "-u", user, "-w", workdir, "-e", f"HOME={workdir}"]
        if self.archive:
            created = subprocess.run([docker, "create", *options, image, *argv], capture_output=True, text=True)
            if created.returncode != 0:
                raise EnvironmentProblem(f"docker create {image}: {created.stderr.strip()}")
            container = created.stdout.strip()
            try:
                transfer.copy_mounts(self.api, container, list(mounts), self._log)
                return subprocess.run([docker, "start", "-ai", container]).returncode
            finally:
                subprocess.run([docker, "rm", "-f", container], capture_output=True)
        command = [docker, "run", "--rm", *options]
        for m in mounts:
            command += ["--mount", f"type=bind,source={m.source},target={m.target}" + (",readonly" if m.read_only else "")]
        self._log.command([*command[1:], image, *argv], "engine")
        return subprocess.run([*command, image, *argv]).returncode

    def remove_all(self) -> None:
        """Remove every container this process still has (Ctrl-C during parallel builds)."""
        with self._lock:
            live = list(self._live)
        for container_id, name in live:
            self._remove(container_id, name)

    @property
    def api(self):
        """The SDK's low-level ``APIClient`` for the engine, connected and pinged on first use."""
        with self._lock:
            if self._shared["api"] is None:
                api = self._sdk().api
                self._ping(api)
                self._shared["api"] = api
            return self._shared["api"]

    @property
    def sdk(self):
        """The docker SDK's client (registries: push and pull)."""
        with self._lock:
            return self._sdk()

    def _sdk(self):
        if self._shared["sdk"] is None:
            import docker  # its errors module comes with it

            try:
                # the TLS settings as the docker CLI reads them (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH); the address
                # is this engine's own (the one Settings checked, or the one given); ssh:// through the system's
                # ssh (its keys, config and agent), though the SDK wants paramiko importable for it
                options = {**docker.utils.kwargs_from_env(), "base_url": self._host or None}
                client = docker.DockerClient(timeout=READ_SECONDS, version=API_VERSION, max_pool_size=32,
                                             use_ssh_client=self._host.startswith("ssh://"), **options)
            except (docker.errors.DockerException, OSError) as exc:
                self._unreachable(str(exc))
            transfer.bound_answers(client.api, redact(self._host or "unix:///var/run/docker.sock"))
            self._shared["sdk"] = client
        return self._shared["sdk"]

    def _ping(self, api) -> None:
        timeout, api.timeout = api.timeout, PING_DEADLINE  # an address that never answers: exit 3 soon
        try:
            api.ping()
        except Exception as exc:  # noqa: BLE001 - APIError, OSError, or the SDK's own connection errors
            self._unreachable(str(exc))
        finally:
            api.timeout = timeout

    def _unreachable(self, reason: str):
        where = redact(self._host or "unix:///var/run/docker.sock")
        reason = reason.split("\n")[0]
        if "timed out" in reason.lower():
            raise EnvironmentProblem(f"Docker engine at {where} did not answer within {PING_DEADLINE} s;"
                                     " is that the engine's address?") from None
        if "too new" in reason or "client version" in reason:
            raise EnvironmentProblem(
                f"Docker engine at {where} is too old: rebuild needs API {API_VERSION} (Docker 20.10 or newer)"
            ) from None
        if "paramiko" in reason:  # the SDK's "Install paramiko package to enable ssh:// support"
            raise EnvironmentProblem(f"DOCKER_HOST={where}: an ssh:// engine needs rebuild's ssh extra (paramiko);"
                                     " pipx install 'rebuild[ssh]', or pip install paramiko beside it") from None
        if "Permission denied" in reason or "permission denied" in reason:
            raise EnvironmentProblem(
                f"Docker engine at {where}: permission denied; add your user to the 'docker' group or run as root"
            ) from None
        raise EnvironmentProblem(f"Docker engine not reachable at {where}; {START_ENGINE_HINT}") from None

    def image_id(self, tag: str) -> str | None:
        from docker.errors import APIError, ImageNotFound

        try:
            return self.api.inspect_image(tag)["Id"]
        except ImageNotFound:
            return None
        except APIError as exc:
            raise EnvironmentProblem(f"Docker engine: cannot look up image {tag}: {exc.explanation or exc}") from None

    def import_rootfs(self, tarball: Path | Iterable[bytes], tag: str, labels: dict[str, str]) -> str:
        repository, _, version = tag.rpartition(":")
        if not repository:
            repository, version = tag, "latest"
        changes = [f"LABEL {k}={v}" for k, v in sorted(labels.items())]
        changes.append("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        from docker.errors import APIError

        source = str(tarball) if isinstance(tarball, Path) else "-"
        self._log.command(["docker", "import", source, tag])
        try:
            if isinstance(tarball, Path):
                self.api.import_image_from_file(source, repository=repository, tag=version, changes=changes)
            else:  # streamed as it is made: the engine unpacks while the stream is written
                self.api.import_image(tarball, repository=repository, tag=version, changes=changes, stream_src=True)
        except APIError as exc:
            raise EnvironmentProblem(f"docker import of {source}: {exc.explanation}") from None
        image = self.image_id(tag)
        if image is None:
            raise EnvironmentProblem(f"docker import of {source} did not produce {tag}")
        return image

    @contextmanager
    def _started(self, image: str, command: list[str], *, error: type, hostname: str | None = None,
                 user: str = "", mounts: list[Mount] = (), attach: bool = False) -> Iterator[tuple[str, str, object]]:
        """Create and start a container with networking disabled; remove it on exit, whatever happens.

        With *attach*, the third item is a socket carrying the container's output, attached before
        the start (read while it runs: no logs round trip after it exits); else None.

        No network namespace set-up (about 0.1 s less to start than network mode none); only
        loopback. With *hostname*, the container gets our own /etc/hosts with that name FIRST
        on the 127.0.0.1 line: sendmail and rpmbuild want a fully qualified canonical name."""
        import tempfile

        from docker.errors import APIError, ImageNotFound

        name = f"rebuild-{uuid.uuid4().hex[:12]}"
        api = self.api
        archive = self.archive
        binds = [] if archive else [_bind(str(m.source), m.target, m.read_only) for m in mounts]
        hosts_dir = None
        if hostname and not archive:
            hosts_dir = tempfile.mkdtemp(prefix="rebuild-hosts-")
            hosts = Path(hosts_dir) / "hosts"
            hosts.write_text(transfer.hosts_file(hostname))
            hosts.chmod(0o644)
            binds.append(_bind(str(hosts), "/etc/hosts", True))
        created = stream = None
        try:
            # Ctrl-C waits for the create's answer: cut short, the engine would still make the
            # container after we hung up, and nothing would remove it
            with _interrupts_held():
                created = api.create_container(
                    image, command=command, name=name, hostname=hostname, user=user, network_disabled=True,
                    labels={LABEL: "1", f"{LABEL}.pid": str(os.getpid())},
                    host_config=api.create_host_config(network_mode="none", mounts=binds),
                )
                with self._lock:
                    self._live.add((created["Id"], name))
            if archive:
                transfer.copy_mounts(api, created["Id"], list(mounts), self._log)
            # attach_socket: attach() would first inspect the container to learn it has no tty
            stream = api.attach_socket(created["Id"], params={"stdout": 1, "stderr": 1, "stream": 1}) if attach else None
            api.start(created["Id"])
            if hostname and archive:  # the engine writes /etc/hosts at start: ours goes over it
                api.put_archive(created["Id"], "/etc", transfer.tar_bytes({"hosts": transfer.hosts_file(hostname).encode()}))
            yield created["Id"], name, stream
        except ImageNotFound:
            raise EnvironmentProblem(
                f"image {image} is not in the engine (`docker images` lists what is); for a target run `rebuild image TARGET`"
            ) from None
        except APIError as exc:
            raise error(f"container {name}: {exc.explanation or exc}") from None
        finally:
            if stream is not None:
                transfer.close_stream(stream)
            if created is not None:
                self._remove(created["Id"], name)
            if hosts_dir:
                shutil.rmtree(hosts_dir, ignore_errors=True)

    @contextmanager
    def container(self, image: str, *, mounts: list[Mount], hostname: str | None = None) -> Iterator[DockerContainer]:
        self._log.command(["docker", "run", "--network", "none", image, "(steps follow)"], "engine")
        # A long sleep keeps the container up between steps; removal kills it.
        with self._started(image, ["sleep", "2147483647"], error=BuildFailed, hostname=hostname,
                           mounts=mounts) as (container_id, name, _):
            yield DockerContainer(self.api, container_id, name, self._log, mounts, self.archive)

    def run_once(self, image: str, argv: list[str], *, user: str | None = None) -> tuple[int, bytes]:
        """One command as the container's own process: no keep-alive, no exec, no kill."""
        self._log.command(["docker", "run", "--rm", "--network", "none", image, *argv], "engine")
        with self._started(image, argv, error=EnvironmentProblem, user=user or "", attach=True) as (container_id, _, sock):
            output = b"".join(transfer.frames(sock))  # ends when the process does
            return int(self.api.wait(container_id)["StatusCode"]), output

    def _remove(self, container_id: str, name: str) -> None:
        if self._keep:
            return self._log.warn(f"keeping container {name} (REBUILD_KEEP_CONTAINER is set); remove it with"
                                  f" `docker rm -f {name}`")
        from docker.errors import APIError, NotFound

        # A second Ctrl-C must not leave the container behind: ignore SIGINT while removing.
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
        try:
            # v=True: the anonymous volumes an image's VOLUME lines made go too (as with docker run --rm)
            self.api.remove_container(container_id, force=True, v=True)
            with self._lock:
                self._live.discard((container_id, name))
        except NotFound:
            with self._lock:
                self._live.discard((container_id, name))
        except (APIError, OSError) as exc:
            self._log.warn(f"could not remove container {name}: {exc.explanation or exc}; run `docker rm -f {name}`")
        finally:
            if in_main:
                signal.signal(signal.SIGINT, previous)
