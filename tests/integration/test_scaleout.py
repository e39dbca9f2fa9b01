"""Beyond one machine, with real parts on loopback: the testroot image pushed to a registry
(docker-registry) and pulled by digest into a second Docker engine (its own dockerd on TCP, the stand-in
for a remote build host); a registry whose content no longer matches the digest refused; a build on the
second engine with no bind mounts, giving the same RPMs as a local build; and each engine's result "up to
date" for the other."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rebuild.cli.build import EXAMPLE
from rebuild.config.target import SHIPPED, load_target
from rebuild.roots.pins import image_dir
from tests.conftest import ROOT, make_srpm, run_cli, write_recipe
from tests.engines import Registry, SecondEngine, Unavailable

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def servers(tmp_path_factory, testroot):
    base = tmp_path_factory.mktemp("scaleout")
    try:
        with Registry(base / "registry") as registry, SecondEngine(base / "engine") as engine:
            yield registry, engine, base
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def pushed(servers) -> str:
    """testroot pushed from this host's engine; the REPOSITORY@sha256 reference printed."""
    registry, _, _ = servers
    proc = run_cli("image", "testroot", "--push", f"{registry.address}/rebuild/testroot")
    assert proc.returncode == 0, proc.stderr
    ref = proc.stdout.split()[-1]
    assert ref.startswith(f"{registry.address}/rebuild/testroot@sha256:")
    return ref


TESTROOT = load_target("testroot")


def pin_file(cache: Path) -> Path:
    return image_dir(TESTROOT, cache) / "pin.json"


def remote_env(servers, name: str) -> dict:
    """Another host: the second engine, its own rebuild cache."""
    _, engine, base = servers
    return {"DOCKER_HOST": engine.host, "REBUILD_CACHE": str(base / f"cache-{name}")}


def test_push_then_pull_by_digest_gives_the_same_image(servers, pushed):
    _, engine, _ = servers
    env = remote_env(servers, "pull")
    proc = run_cli("image", "testroot", "--pull", pushed, env=env)
    assert proc.returncode == 0, proc.stderr
    local_pin = json.loads(pin_file(Path(os.environ.get("REBUILD_CACHE", Path.home() / ".cache/rebuild"))).read_text())
    remote_pin = json.loads(pin_file(Path(env["REBUILD_CACHE"])).read_text())
    assert remote_pin["content_id"] == local_pin["content_id"] and remote_pin["registry"] == pushed
    assert local_pin["registry"] == pushed, "the push pinned its digest"
    assert engine.docker("image", "inspect", "-f", "{{.Id}}", TESTROOT.tag).stdout.strip() == remote_pin["image_id"]
    again = run_cli("image", "testroot", "--pull", pushed, env=env)
    assert again.returncode == 0 and "up to date" in again.stderr


def test_a_tag_alone_is_refused_and_a_moved_tag_does_not_move_the_pin(servers, pushed):
    registry, engine, _ = servers
    env = remote_env(servers, "tag")
    repository = pushed.split("@")[0]
    bare = run_cli("image", "testroot", "--pull", f"{repository}:latest", env=env)
    assert bare.returncode == 2 and "a tag alone can be moved" in bare.stderr
    # the tag moved to other content: the pinned digest still names the image that was pushed
    tag = "testroot-moved"
    assert engine.docker("pull", pushed).returncode == 0
    other = engine.docker("image", "build", "-q", "-t", f"{repository}:{tag}", "-f-", str(ROOT / "tests"))
    if other.returncode != 0:  # no build context wanted: make the other image by commit
        created = engine.docker("create", pushed, "true").stdout.strip()
        engine.docker("commit", "-c", "LABEL moved=1", created, f"{repository}:{tag}")
        engine.docker("rm", created)
    assert engine.docker("push", f"{repository}:{tag}").returncode == 0
    proc = run_cli("image", "testroot", "--pull", f"{repository}:{tag}@{pushed.split('@')[1]}", env=env)
    assert proc.returncode == 0, proc.stderr
    pin = json.loads(pin_file(Path(env["REBUILD_CACHE"])).read_text())
    assert pin["registry"] == pushed


def test_an_image_of_another_definition_is_refused(servers, pushed, tmp_path):
    _, _, base = servers
    home = tmp_path / "home"
    (home / "containers" / "testroot").mkdir(parents=True)
    definition = (SHIPPED / "testroot" / "target.yaml").read_text().replace("[rpm, gcc,", "[rpm, gcc, less,")
    (home / "containers/testroot/target.yaml").write_text(definition)
    env = {**remote_env(servers, "other"), "REBUILD_HOME": str(home)}
    proc = run_cli("image", "testroot", "--pull", pushed, env=env)
    assert proc.returncode == 1 and "made from another definition" in proc.stderr


def test_content_that_does_not_match_the_digest_is_refused(servers, pushed, tmp_path):
    """An image the second engine has never seen (one more layer), pushed, then its new layer's blob changed
    in the registry's storage: the pull by digest fails and nothing is pinned."""
    import subprocess
    import uuid

    registry, engine, _ = servers
    repository = f"{registry.address}/rebuild/tampered"
    name = f"rebuild-tamper-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "run", "--name", name, "--network", "none", TESTROOT.tag, "sh", "-c",
                    f"echo {name} > /unique"], check=True, capture_output=True)
    try:
        subprocess.run(["docker", "commit", name, f"{repository}:v1"], check=True, capture_output=True)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    push = subprocess.run(["docker", "push", f"{repository}:v1"], capture_output=True, text=True)
    assert push.returncode == 0, push.stderr
    digest = next(w for w in push.stdout.split() if w.startswith("sha256:"))
    manifest = json.loads(registry.blob(digest).read_text())
    top = registry.blob(manifest["layers"][-1]["digest"])
    data = bytearray(top.read_bytes())
    data[len(data) // 2] ^= 0xFF
    top.write_bytes(bytes(data))
    subprocess.run(["docker", "rmi", f"{repository}:v1"], capture_output=True)
    env = remote_env(servers, "tampered")
    proc = run_cli("image", "testroot", "--pull", f"{repository}@{digest}", env=env)
    assert proc.returncode == 1, proc.stderr
    assert "refused" in proc.stderr and "does not match the digest" in proc.stderr
    assert not pin_file(Path(env["REBUILD_CACHE"])).exists()


def test_a_build_on_the_remote_engine_has_no_bind_mounts_and_the_same_rpms(servers, pushed, tmp_path):
    registry, engine, _ = servers
    env = {**remote_env(servers, "build"), "REBUILD_KEEP_CONTAINER": "1"}
    assert run_cli("image", "testroot", "--pull", pushed, env=env).returncode == 0
    srpm = make_srpm(EXAMPLE / "hello.spec", tmp_path / "srpm")
    recipe = write_recipe(tmp_path, srpm, extra='spec:\n  macros:\n    errata: "73"\n')
    before = set(engine.docker("ps", "-aq").stdout.split())
    remote = run_cli("build", str(recipe), "--out", str(tmp_path / "remote"), env=env)
    assert remote.returncode == 0, remote.stderr
    kept = set(engine.docker("ps", "-aq").stdout.split()) - before
    assert kept, "REBUILD_KEEP_CONTAINER keeps the build's containers to be inspected"
    for container in kept:
        info = json.loads(engine.docker("inspect", container).stdout)[0]
        assert info["Mounts"] == [] and not info["HostConfig"].get("Binds") and not info["HostConfig"].get("Mounts")
    engine.docker("rm", "-f", *kept)
    assert "docker cp" in remote.stderr

    local = run_cli("build", str(recipe), "--out", str(tmp_path / "local"), "--force")
    assert local.returncode == 0, local.stderr
    remote_manifest = json.loads((tmp_path / "remote/hello-1.0-1.73/manifest.json").read_text())
    local_manifest = json.loads((tmp_path / "local/hello-1.0-1.73/manifest.json").read_text())
    assert {o["file"]: o["sha256"] for o in remote_manifest["outputs"]} == \
        {o["file"]: o["sha256"] for o in local_manifest["outputs"]}
    assert remote_manifest["build_key"] == local_manifest["build_key"]
    assert remote_manifest["target"]["content_id"] == local_manifest["target"]["content_id"]

    # each engine's result is up to date for the other
    here = run_cli("build", str(recipe), "--out", str(tmp_path / "remote"))
    assert here.returncode == 0 and "up to date" in here.stderr
    there = run_cli("build", str(recipe), "--out", str(tmp_path / "local"), env=remote_env(servers, "build"))
    assert there.returncode == 0 and "up to date" in there.stderr


def _run_steps(job: dict, cwd: Path, env: dict) -> None:
    """A workflow job's own shell steps, here: installs, logins and key imports left out, sudo -E dropped."""
    import subprocess

    for step in job["steps"]:
        script = step.get("run", "")
        if not script or any(s in script for s in ("apt-get", "make venv", "docker login", "gpg --batch")):
            continue
        proc = subprocess.run(["bash", "-e", "-c", script.replace("sudo -E ", "")], cwd=cwd, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{step.get('name', script)}: {proc.stderr}"


def _outputs(path: Path) -> dict:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_the_github_workflow_runs_here(servers, tmp_path):
    """plan, the image job (made once, pushed to the loopback registry), each build job (pulled by digest,
    keyed by `rebuild key`, up to date from a restored cache), publish: their own commands."""
    import sys

    import yaml

    from tests.conftest import copy_case
    from tests.integration.test_publish import consume

    registry, _, base = servers
    jobs = yaml.safe_load((ROOT / ".github/workflows/rpms.yml").read_text())["jobs"]
    assert list(jobs) == ["plan", "image", "build", "publish"]
    assert jobs["image"]["strategy"]["matrix"]["target"] == "${{ fromJSON(needs.plan.outputs.targets) }}"
    assert jobs["build"]["needs"] == ["plan", "image"] and jobs["publish"]["needs"] == "build"
    srpm = make_srpm(copy_case("noarch", tmp_path) / "greeting.spec", tmp_path / "src")
    recipe = write_recipe(tmp_path, srpm)
    shim = tmp_path / ".venv" / "bin"
    shim.mkdir(parents=True)
    (shim / "rebuild").write_text(f"#!/bin/sh\nexec {sys.executable} -m rebuild \"$@\"\n")
    (shim / "rebuild").chmod(0o755)
    env = {**os.environ, "REGISTRY": f"{registry.address}/gh", "MIRROR": "", "FORCE": ""}

    _run_steps(jobs["plan"], tmp_path, {**env, "RECIPES": str(recipe), "GITHUB_OUTPUT": str(tmp_path / "plan.out")})
    planned = _outputs(tmp_path / "plan.out")
    assert json.loads(planned["targets"]) == ["testroot"]
    for target in json.loads(planned["targets"]):  # the image job, on this host's cache (its tree is here)
        _run_steps(jobs["image"], tmp_path, {**env, "TARGET": target})
        assert (tmp_path / f"image-{target}.ref").read_text().startswith(f"{registry.address}/gh/testroot@sha256:")
    runner = {**env, "REBUILD_CACHE": str(base / "cache-runner")}  # each build job: another runner
    for entry in json.loads(planned["matrix"])["include"]:
        job_env = {**runner, "RECIPE": entry["recipe"], "TARGET": entry["target"],
                   "GITHUB_OUTPUT": str(tmp_path / f"build-{entry['name']}.out")}
        _run_steps(jobs["build"], tmp_path, job_env)
        key = _outputs(tmp_path / f"build-{entry['name']}.out")["key"]
        (result,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir() and not p.name.startswith(".")]
        assert json.loads((result / "manifest.json").read_text())["build_key"] == key, "the cache key is the build key"
        again = run_cli("build", str(tmp_path / entry["recipe"]), "--target", entry["target"], "--out", str(tmp_path / "results"),
                        env={"REBUILD_CACHE": runner["REBUILD_CACHE"]})
        assert "up to date" in again.stderr, "a restored cache is not built again"
    publish = {**jobs["publish"], "steps": [{"run": s["run"].replace(' --sign-key "$KEY_ID"', "")}
                                             for s in jobs["publish"]["steps"] if "run" in s]}
    _run_steps(publish, tmp_path, env)
    assert "noarch/greeting-2.1-3.noarch.rpm" in consume(tmp_path / "repo")
