"""The GitLab child pipeline really run, by gitlab-ci-local (npm) with the shell executor, against this host's
engine and a registry on loopback: `rebuild plan --format gitlab --gitlab-executor shell` (what the root
pipeline's plan job runs) -> the image made once and pushed by digest -> each build pulling that digest ->
publish, signed. Then a chain's pipeline (`plan --chain`): a stage per wave, each wave taking the earlier
waves' artifacts. Only the job set-up differs from a runner's: `make venv` (a network install) is replaced
by a shim that runs this checkout's rebuild."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import DATA, ROOT, copy_case, make_srpm, write_recipe
from tests.engines import Registry, Unavailable
from tests.signing import make_key

pytestmark = pytest.mark.docker

GCL = Path(os.environ.get("REBUILD_TEST_GITLAB_CI_LOCAL",
                          Path.home() / ".cache" / "rebuild-tests" / "gitlab-ci-local")) / "node_modules" / ".bin" / "gitlab-ci-local"


@pytest.fixture(scope="module")
def registry(tmp_path_factory, testroot):
    if not GCL.exists() or not shutil.which("node") or not shutil.which("rsync"):
        pytest.skip(f"gitlab-ci-local (npm) is not installed under {GCL.parent.parent.parent} or rsync is missing"
                    " (.ci/run installs both)")
    try:
        with Registry(tmp_path_factory.mktemp("gl-registry")) as running:
            yield running
    except Unavailable as exc:
        pytest.skip(str(exc))


def project(tmp_path: Path) -> Path:
    """A git checkout with the shim in .venv/bin (gitlab-ci-local reads the repository)."""
    proj = tmp_path / "project"
    (proj / ".venv" / "bin").mkdir(parents=True)
    shim = proj / ".venv" / "bin" / "rebuild"
    shim.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m rebuild \"$@\"\n")
    shim.chmod(0o755)
    subprocess.run(["git", "init", "-q", str(proj)], check=True)
    return proj


def run_pipeline(proj: Path, child: str, registry: Registry, tmp_path: Path) -> subprocess.CompletedProcess:
    data = yaml.safe_load(child)
    assert "make venv" in data["default"]["before_script"], "the runner's set-up: replaced by the shim here"
    data["default"]["before_script"] = []
    (proj / "child.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    subprocess.run(["git", "-C", str(proj), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(proj), "-c", "user.email=ci@test.invalid", "-c", "user.name=ci", "commit", "-qm",
                    "pipeline"], check=True)
    key = make_key(tmp_path / "signer", "CI Signer <ci@test.invalid>")
    secret = subprocess.run(["gpg", "--homedir", str(key.home), "--batch", "--pinentry-mode", "loopback",
                             "--passphrase", "", "--armor", "--export-secret-keys", key.uid],
                            check=True, capture_output=True, text=True).stdout
    runner_gpg = tmp_path / "runner-gnupg"
    runner_gpg.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(runner_gpg)}
    env.pop("DOCKER_HOST", None)
    return subprocess.run(
        [str(GCL), "--file", "child.yml", "--force-shell-executor",
         "--variable", f"CI_REGISTRY_IMAGE={registry.address}/gl", "--ignore-predefined-vars", "CI_REGISTRY_IMAGE",
         "--variable", f"RPM_SIGNING_KEY={secret}", "--variable", f"RPM_SIGNING_KEY_ID={key.keyid}",
         # the image job's tree downloads: this host's cache, where the testroot fixture made it
         "--variable", f"REBUILD_CACHE={os.environ.get('REBUILD_CACHE', Path.home() / '.cache' / 'rebuild')}"],
        cwd=proj, env=env, capture_output=True, text=True, timeout=1200)


def test_gitlab_ci_local_runs_the_child_pipeline_green(registry, tmp_path):
    proj = project(tmp_path)
    srpm = make_srpm(copy_case("noarch", tmp_path) / "greeting.spec", tmp_path / "src")
    write_recipe(proj, srpm)
    plan = subprocess.run([sys.executable, "-m", "rebuild", "plan", "greeting.yaml", "--format", "gitlab",
                           "--gitlab-executor", "shell"], cwd=proj, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert plan.returncode == 0, plan.stderr
    ran = run_pipeline(proj, plan.stdout, registry, tmp_path)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    for job in ("image:testroot", "build:greeting:testroot", "publish"):
        assert f"PASS  {job}" in ran.stdout
    ref = (proj / "image-testroot.ref").read_text().strip()
    assert ref.startswith(f"{registry.address}/gl/testroot@sha256:"), "the image job pushed by digest"
    index = json.loads((proj / "repo" / "index.json").read_text())
    assert "greeting-2.1-3.noarch.rpm" in json.dumps(index)
    assert (proj / "repo" / "SHA256SUMS.asc").is_file(), "publish signed with the key the job imported"


def test_gitlab_ci_local_runs_a_chain_wave_after_wave(registry, tmp_path):
    proj = project(tmp_path)
    for name in ("chaina", "chainb", "chainc"):
        made = make_srpm(DATA / "chain" / f"{name}.spec", tmp_path / name)
        shutil.copy(made, proj / made.name)
    plan = subprocess.run([sys.executable, "-m", "rebuild", "plan", "--chain", "chaina-2.0-1.src.rpm",
                           "chainb-1.5-1.src.rpm", "chainc-1.0-1.src.rpm", "--target", "testroot", "--format",
                           "gitlab", "--gitlab-executor", "shell"], cwd=proj, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert plan.returncode == 0, plan.stderr
    assert yaml.safe_load(plan.stdout)["stages"] == ["image", "wave-1", "wave-2", "wave-3", "publish"]
    ran = run_pipeline(proj, plan.stdout, registry, tmp_path)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    for job in ("build:chaina", "build:chainb", "build:chainc", "publish"):
        assert f"PASS  {job}" in ran.stdout
    manifest = json.loads((proj / "results" / "wave-3" / "chainc-1.0-1" / "manifest.json").read_text())
    chain = {p["name"] for p in manifest["root"]["lock"]["packages"] if p["origin"] == "chain"}
    assert chain == {"chaina", "chaina-devel", "chainb", "chainb-devel"}, "wave 3 took waves 1 and 2's RPMs"
    published = json.dumps(json.loads((proj / "repo" / "index.json").read_text()))
    assert all(f"{n}-" in published for n in ("chaina", "chainb", "chainc"))
