"""DOCKER_HOST=ssh:// as a user sets it: a second dockerd whose socket only its group reaches, behind a real
sshd on loopback (key authentication, a dedicated user), reached through the system's ssh. The image is
pulled there by digest from a loopback registry, a build runs there with files sent as archives, and
`rebuild plan --format shell | parallel` spreads two recipes over this host's engine and the ssh one: the
results are those of a local run (the same build keys and RPMs) and "up to date" on a second run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from rebuild.cli.build import EXAMPLE
from tests.conftest import ROOT, copy_case, make_srpm, write_recipe
from tests.engines import Registry, SshEngine, Unavailable

pytestmark = pytest.mark.docker

LOCAL = "unix:///var/run/docker.sock"


@pytest.fixture(scope="module")
def ssh_engine(tmp_path_factory, testroot):
    base = tmp_path_factory.mktemp("ssh")
    try:
        with Registry(base / "registry") as registry, SshEngine(base / "engine") as engine:
            yield registry, engine
    except Unavailable as exc:
        pytest.skip(str(exc))


def rebuild(*args: str, env: dict, cwd: Path = ROOT, timeout: float = 900) -> subprocess.CompletedProcess:
    import sys

    return subprocess.run([sys.executable, "-m", "rebuild", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=timeout)


def test_an_ssh_engine_pulls_by_digest_and_builds_with_files_sent_as_archives(ssh_engine, tmp_path):
    registry, engine = ssh_engine
    env = engine.env()
    local = {k: v for k, v in env.items() if k != "DOCKER_HOST"}
    pushed = rebuild("image", "testroot", "--push", f"{registry.address}/ssh/testroot", env=local)
    assert pushed.returncode == 0, pushed.stderr
    ref = pushed.stdout.split()[-1]
    pulled = rebuild("image", "testroot", "--pull", ref, env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert engine.docker("image", "inspect", "-f", "{{.Id}}", ref).returncode == 0, "the image is in the ssh engine"

    srpm = make_srpm(EXAMPLE / "hello.spec", tmp_path / "srpm")
    recipe = write_recipe(tmp_path, srpm, extra='spec:\n  macros:\n    errata: "73"\n')
    before = set(engine.docker("ps", "-aq").stdout.split())
    built = rebuild("build", str(recipe), "--out", str(tmp_path / "out"), env={**env, "REBUILD_KEEP_CONTAINER": "1"})
    assert built.returncode == 0, built.stderr
    assert "docker cp" in built.stderr, "an ssh:// engine is remote: files travel as archives"
    kept = set(engine.docker("ps", "-aq").stdout.split()) - before
    assert kept, "the build ran on the ssh engine (its containers are there)"
    for container in kept:
        info = json.loads(engine.docker("inspect", container).stdout)[0]
        assert info["Mounts"] == [] and not info["HostConfig"].get("Mounts")
    engine.docker("rm", "-f", *kept)
    manifest = json.loads((tmp_path / "out" / "hello-1.0-1.73" / "manifest.json").read_text())
    assert manifest["outputs"] and manifest["target"]["registry"] == ref


def test_plan_shell_and_parallel_spread_builds_over_a_local_and_an_ssh_engine(ssh_engine, tmp_path):
    if not shutil.which("parallel"):
        pytest.skip("GNU parallel is not installed (Debian: apt-get install parallel)")
    registry, engine = ssh_engine
    env = engine.env()
    local = {k: v for k, v in env.items() if k != "DOCKER_HOST"}
    pushed = rebuild("image", "testroot", "--push", f"{registry.address}/ssh/testroot", env=local)
    assert pushed.returncode == 0, pushed.stderr
    assert rebuild("image", "testroot", "--pull", pushed.stdout.split()[-1], env=env).returncode == 0
    hello = write_recipe(tmp_path, make_srpm(EXAMPLE / "hello.spec", tmp_path / "hello"),
                         extra='spec:\n  macros:\n    errata: "73"\n')
    greeting = write_recipe(tmp_path, make_srpm(copy_case("noarch", tmp_path) / "greeting.spec", tmp_path / "greet"))
    plan = rebuild("plan", str(hello), str(greeting), "--format", "shell", env=local, cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    shim = tmp_path / "bin"
    shim.mkdir()
    import sys

    (shim / "rebuild").write_text(f"#!/bin/sh\nexec {sys.executable} -m rebuild \"$@\"\n")
    (shim / "rebuild").chmod(0o755)
    spread_env = {**local, "PATH": f"{shim}:{env['PATH']}", "PYTHONPATH": str(ROOT)}

    def spread(out: str) -> subprocess.CompletedProcess:
        return subprocess.run(["parallel", "-j", "2", "--link", f"DOCKER_HOST={{2}} {{=1 uq() =}} --out {out}",
                               "::::", "-", ":::", LOCAL, engine.host], input=plan.stdout, capture_output=True,
                              text=True, env=spread_env, cwd=tmp_path, timeout=900)

    first = spread("spread")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stderr.count("docker cp") > 0, "one of the two builds went to the ssh engine"
    alone = rebuild("build", str(hello), str(greeting), "--out", str(tmp_path / "alone"), env=local)
    assert alone.returncode == 0, alone.stderr

    def results(folder: Path) -> dict:
        return {m.parent.name: json.loads(m.read_text()) for m in sorted(folder.glob("*/manifest.json"))}

    spread_results, alone_results = results(tmp_path / "spread"), results(tmp_path / "alone")
    assert sorted(spread_results) == sorted(alone_results) == ["greeting-2.1-3", "hello-1.0-1.73"]
    assert {k: m["build_key"] for k, m in spread_results.items()} == {k: m["build_key"] for k, m in alone_results.items()}
    # hello's %changelog dates its build (SOURCE_DATE_EPOCH): its RPMs are the same bytes wherever it built
    assert {o["file"]: o["sha256"] for o in spread_results["hello-1.0-1.73"]["outputs"]} == \
        {o["file"]: o["sha256"] for o in alone_results["hello-1.0-1.73"]["outputs"]}
    again = spread("spread")
    assert again.returncode == 0 and again.stderr.count("up to date") == 2, again.stderr
