"""Shared helpers: SRPMs built from specs under tests/data/, recipes, the CLI as a subprocess."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rebuild.config.target import SHIPPED

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent

# A run started in the background of a non-interactive shell inherits SIGINT ignored, and an ignored signal
# stays ignored across exec: every rebuild a test starts would then never see the Ctrl-C the interrupt
# tests send. A handler (reset to the default on exec) gives each child Python's own.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def copy_case(case: str, tmp_path: Path) -> Path:
    """Copy tests/data/<case>/ into tmp_path so a test may change it freely."""
    dest = tmp_path / case
    shutil.copytree(DATA / case, dest)
    return dest


def make_srpm(spec: Path, out: Path) -> Path:
    """Pack *spec* (sources beside it) into an SRPM with the host's rpmbuild."""
    out.mkdir(parents=True, exist_ok=True)
    top = out / "top"
    proc = subprocess.run(
        ["rpmbuild", "-bs", "--define", f"_topdir {top}", "--define", f"_sourcedir {spec.parent}", str(spec)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    (srpm,) = (top / "SRPMS").glob("*.src.rpm")
    return srpm


def write_recipe(directory: Path, srpm: Path, *, name: str | None = None, extra: str = "", target: str = "testroot") -> Path:
    name = name or srpm.name.split("-")[0]
    path = directory / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: {name}
            source:
              srpm: {srpm.name}
              urls: ["{srpm.as_uri()}"]
            target: {target}
            """
        )
        + textwrap.dedent(extra)
    )
    return path


def copy_checkout(dest: Path) -> Path:
    """The checkout's sources copied to *dest* (no git, venvs, build output or caches): pip builds in the
    folder it installs from, and the checkout stays untouched."""
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "artifacts", "*.egg-info",
                                                              "__pycache__", ".pytest_cache"))
    return dest


def run_cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "rebuild", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )


@contextmanager
def cli_process(*args: str, env: dict | None = None) -> Iterator[subprocess.Popen]:
    """``python -m rebuild ARGS`` running (stdout and stderr piped, as text), for tests that
    signal it; killed on the way out if it still runs, so a failed assertion leaves no build behind."""
    proc = subprocess.Popen([sys.executable, "-m", "rebuild", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def rebuild_containers() -> set[str]:
    """The containers rebuild made (label org.rebuild) that exist now."""
    out = subprocess.run(["docker", "ps", "-aq", "--filter", "label=org.rebuild"], capture_output=True, text=True,
                         check=True)
    return set(out.stdout.split())


@pytest.fixture
def new_containers():
    """``new_containers()``: rebuild's containers made since the test began and still there.
    Containers the machine had before do not count; what a failed test leaves is removed after it,
    so one failure does not fail the tests that follow."""
    before = rebuild_containers()
    yield lambda: rebuild_containers() - before
    left = rebuild_containers() - before
    if left:
        subprocess.run(["docker", "rm", "-f", "-v", *left], capture_output=True)


@pytest.fixture(scope="session")
def engine():
    from rebuild.systems.dockerengine import DockerEngine

    engine = DockerEngine()
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def testroot(engine):
    """The testroot target with its image made (cached across runs under the rebuild cache)."""
    from rebuild.config.target import load_target
    from rebuild.log import Log
    from rebuild.roots.images import make_image

    target = load_target("testroot")
    make_image(target, engine, Log(quiet=True))
    return target


@pytest.fixture(scope="session")
def i686(tmp_path_factory):
    """The i686-test target (retagged rebuild-test/) made from the tree (tests/i686tree.py):
    (home, env, tree, image ID). Skipped, with the reason, where Debian's archive cannot be reached."""
    import sys

    from tests.i686tree import RPM404, Unavailable, build_tree

    try:
        tree = build_tree(log=lambda message: print(message, file=sys.__stderr__))
    except Unavailable as exc:
        pytest.skip(f"the i686 tree needs Debian's archive: {exc}")
    if not RPM404.is_file():
        print(f"tests: {RPM404} is absent (set REBUILD_TEST_RPM404 to its path): the i686 target's rpm is"
              " Debian's i386 rpm 4.18, not rpm 4.0.4", file=sys.__stderr__)
    base = tmp_path_factory.mktemp("i686")
    home = base / "home"
    shutil.copytree(SHIPPED / "i686-test", home / "containers" / "i686-test")
    target_yaml = home / "containers" / "i686-test" / "target.yaml"
    target_yaml.write_text(target_yaml.read_text().replace("tag: rebuild/i686-test:1", "tag: rebuild-test/i686-test:1"))
    env = {"REBUILD_HOME": str(home), "REBUILD_CACHE": str(base / "cache")}
    proc = run_cli("image", "i686-test", "--mirror", str(tree / "os"), "--updates", str(tree / "updates"), env=env)
    assert proc.returncode == 0, proc.stderr
    return home, env, tree, proc.stdout.split()[1]



def _stop_test_gpg_agents() -> None:
    """The gpg-agents that signing tests' throwaway GnuPG homes (under pytest's temporary folders) started."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0].endswith(b"gpg-agent") or b"--homedir" not in argv:
            continue
        home = argv[argv.index(b"--homedir") + 1].decode(errors="replace") if argv.index(b"--homedir") + 1 < len(argv) else ""
        if "/pytest-of-" in home:
            subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], capture_output=True)


@contextmanager
def _engine_client():
    """A docker SDK client to this host's engine, or None: no engine, or a socket no engine answers (a unit
    run: nothing to tidy, no connection left open)."""
    if not os.environ.get("DOCKER_HOST"):
        import socket

        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect("/var/run/docker.sock")
        except OSError:
            yield None
            return
    import docker

    from rebuild.systems.engine import API_VERSION

    client = docker.from_env(version=API_VERSION)  # a set version: the client connects on first call only
    try:
        yield client
    finally:
        client.close()  # with no engine, the failed connection's socket too


_TAGS_BEFORE: set[str] | None = None


def _tags(client) -> set[str]:
    return {tag for image in client.images.list() for tag in image.tags}


def pytest_sessionstart(session):
    """The engine's tags before the run: the build-root layers the tests make (rebuild/<target>-layer:*)
    are told from a user's by not being here."""
    global _TAGS_BEFORE
    try:
        with _engine_client() as client:
            _TAGS_BEFORE = _tags(client) if client is not None else None
    except Exception:  # noqa: BLE001 - no engine answers: nothing to tidy at the end either
        _TAGS_BEFORE = None


def pytest_sessionfinish(session, exitstatus):
    """Remove the images tests made, with their untagged parents, so repeated runs on one build host do not
    pile up images: the tags rebuild-test/* (each run makes them afresh) and the build-root layers made
    during the run under any target's layer repository (a chain's layers are new each run: its packages
    are). rebuild/testroot, the base image `make image` and `make demo` share, and every image not made
    here stay."""
    _stop_test_gpg_agents()
    try:
        with _engine_client() as client:
            if client is None:
                return
            from docker.errors import APIError

            now = _tags(client)
            made = now - _TAGS_BEFORE if _TAGS_BEFORE is not None else set()
            tags = [t for t in now if t.startswith("rebuild-test/") or (t in made and t.split(":")[0].endswith("-layer"))]
            for tag in tags:
                try:
                    client.images.remove(tag, noprune=False)
                except APIError:  # in use by another session's container: it stays, the rest go
                    pass
            # and earlier runs' images the helper made (it labels them), should a run have died before this
            client.images.prune(filters={"dangling": True, "label": "org.rebuild.test=1"})
    except Exception:  # noqa: BLE001 - no engine (unit runs) or an image in use: nothing to tidy
        pass
