"""rebuild publish with real createrepo_c, rpmsign, rpmkeys and gpg; the CI workflow's commands."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import ROOT, copy_case, make_srpm, run_cli, write_recipe

pytestmark = pytest.mark.docker

NS = {"repo": "http://linux.duke.edu/metadata/repo", "common": "http://linux.duke.edu/metadata/common"}


@pytest.fixture(scope="module")
def results(tmp_path_factory, testroot) -> dict[str, Path]:
    """Three real result directories: greeting (noarch), cprog (x86_64), mailer (errata 73)."""
    tmp = tmp_path_factory.mktemp("results")
    out = tmp / "out"
    found = {}
    for case, spec, extra in (("noarch", "greeting.spec", ""), ("cprog", "cprog.spec", ""),
                              ("rhstyle", "mailer.spec", 'spec:\n  macros:\n    errata: "73"\n')):
        srpm = make_srpm(copy_case(case, tmp) / spec, tmp / f"src-{case}")
        proc = run_cli("-q", "build", str(write_recipe(tmp, srpm, extra=extra)), "--out", str(out), "--json")
        assert proc.returncode == 0, proc.stderr
        found[case] = Path(json.loads(proc.stdout)[0]["directory"])
    return found


def consume(repo: Path) -> dict[str, dict]:
    """Read the repository as a package manager does: repomd.xml -> primary -> locations and checksums."""
    repomd = ET.parse(repo / "repodata" / "repomd.xml").getroot()
    primary = repomd.find("repo:data[@type='primary']", NS)
    href = primary.find("repo:location", NS).get("href")
    data = (repo / href).read_bytes()
    assert hashlib.sha256(data).hexdigest() == primary.find("repo:checksum", NS).text
    packages = {}
    for pkg in ET.fromstring(gzip.decompress(data)).findall("common:package", NS):
        location = pkg.find("common:location", NS).get("href")
        checksum = pkg.find("common:checksum", NS)
        assert checksum.get("type") == "sha256"
        version = pkg.find("common:version", NS)
        packages[location] = {
            "name": pkg.find("common:name", NS).text,
            "arch": pkg.find("common:arch", NS).text,
            "release": version.get("rel"),
            "sha256": checksum.text,
        }
        assert hashlib.sha256((repo / location).read_bytes()).hexdigest() == checksum.text, location
    return packages


def snapshot(repo: Path) -> dict[str, str]:
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(repo.rglob("*")) if p.is_file()}


def test_publish_two_then_a_third_incrementally(tmp_path, results):
    repo = tmp_path / "repo"
    proc = run_cli("publish", str(results["noarch"]), str(results["cprog"]), "--repo", str(repo))
    assert proc.returncode == 0, proc.stderr
    first = consume(repo)
    assert set(first) == {"noarch/greeting-2.1-3.noarch.rpm", "SRPMS/greeting-2.1-3.src.rpm",
                          "x86_64/cprog-0.9.6b-32.80.x86_64.rpm", "SRPMS/cprog-0.9.6b-32.80.src.rpm"}
    proc = run_cli("publish", str(results["rhstyle"]), "--repo", str(repo))
    assert proc.returncode == 0, proc.stderr
    second = consume(repo)
    assert set(second) == set(first) | {"x86_64/mailer-8.12.8-9.73.x86_64.rpm", "SRPMS/mailer-8.12.8-9.73.src.rpm"}
    assert second["x86_64/mailer-8.12.8-9.73.x86_64.rpm"]["release"] == "9.73"
    for location, pkg in first.items():
        assert second[location]["sha256"] == pkg["sha256"], "what was there is kept as it was"
    sums = dict(line.split("  ")[::-1] for line in (repo / "SHA256SUMS").read_text().splitlines())
    assert {k: v for k, v in sums.items() if k.endswith(".rpm")} == {loc: pkg["sha256"] for loc, pkg in second.items()}
    evidence = {k for k in sums if not k.endswith(".rpm")}
    assert evidence == {f"{kind}/{nvr}.{ext}" for nvr in ("greeting-2.1-3", "cprog-0.9.6b-32.80", "mailer-8.12.8-9.73")
                        for kind, ext in (("provenance", "intoto.json"), ("sbom", "spdx.json"))}
    assert all(hashlib.sha256((repo / k).read_bytes()).hexdigest() == sums[k] for k in evidence)
    index = json.loads((repo / "index.json").read_text())["packages"]
    assert {e["file"] for e in index} == set(second)
    mailer = next(e for e in index if e["file"] == "x86_64/mailer-8.12.8-9.73.x86_64.rpm")
    assert mailer["recipe"] == "mailer" and mailer["size"] == (repo / mailer["file"]).stat().st_size
    build_manifest = json.loads((repo / mailer["manifest"]).read_text())
    assert build_manifest["spec"]["release_after"] == "9.73"
    again = run_cli("publish", str(results["rhstyle"]), "--repo", str(repo))
    assert again.returncode == 0 and "0 added" in again.stderr


def test_signed_publish_verifies_with_that_key_only(tmp_path, results):
    from tests.signing import make_key

    key = make_key(tmp_path / "gpg", "Repo Signer <repo@example.invalid>")
    repo = tmp_path / "repo"
    proc = run_cli("publish", str(results["noarch"]), str(results["cprog"]), "--repo", str(repo),
                   "--sign-key", key.keyid, "--gpg-home", str(key.home))
    assert proc.returncode == 0, proc.stderr
    consume(repo)
    db = tmp_path / "rpmdb"
    db.mkdir()
    subprocess.run(["rpmkeys", "--dbpath", str(db), "--import", str(key.public)], check=True)
    for rpm in repo.rglob("*.rpm"):
        check = subprocess.run(["rpmkeys", "--dbpath", str(db), "--checksig", "-v", str(rpm)], capture_output=True, text=True)
        assert check.returncode == 0 and "Signature, key ID" in check.stdout and "OK" in check.stdout, check.stdout
    empty = tmp_path / "emptydb"
    empty.mkdir()
    unknown = subprocess.run(["rpmkeys", "--dbpath", str(empty), "--checksig", str(next(repo.rglob("*.rpm")))],
                             capture_output=True, text=True)
    assert unknown.returncode != 0, "without the key the signature does not verify"
    verify = subprocess.run(["gpg", "--homedir", str(key.home), "--verify", str(repo / "SHA256SUMS.asc"),
                             str(repo / "SHA256SUMS")], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    built = json.loads((results["noarch"] / "manifest.json").read_text())["outputs"][0]
    entry = next(e for e in json.loads((repo / "index.json").read_text())["packages"] if e["nevra"] == built["nevra"])
    assert entry["built_sha256"] == built["sha256"] != entry["sha256"], "signing changed the file, the index says both"


def _published_noarch(tmp_path, results):
    """A repository holding the noarch result, and its snapshot before the test's publish."""
    repo = tmp_path / "repo"
    assert run_cli("publish", str(results["noarch"]), "--repo", str(repo)).returncode == 0
    return repo, snapshot(repo)


def test_tampered_rpm_is_refused_and_repo_unchanged(tmp_path, results):
    repo, before = _published_noarch(tmp_path, results)
    bad = tmp_path / "bad"
    shutil.copytree(results["cprog"], bad)
    rpm = next((bad / "RPMS").rglob("*.rpm"))
    data = bytearray(rpm.read_bytes())
    data[-10] ^= 0xFF
    rpm.write_bytes(bytes(data))
    proc = run_cli("publish", str(bad), "--repo", str(repo))
    assert proc.returncode == 1
    assert "does not match the sha256 in manifest.json" in proc.stderr
    assert snapshot(repo) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "repo"], "no staging left behind"


def test_same_nevra_with_other_content_is_refused(tmp_path, results):
    repo, before = _published_noarch(tmp_path, results)
    other = tmp_path / "other"
    shutil.copytree(results["noarch"], other)
    manifest = json.loads((other / "manifest.json").read_text())
    rpm = other / manifest["outputs"][0]["file"]
    rpm.write_bytes(rpm.read_bytes() + b"\0")
    manifest["outputs"][0].update(sha256=hashlib.sha256(rpm.read_bytes()).hexdigest(), size=rpm.stat().st_size)
    (other / "manifest.json").write_text(json.dumps(manifest))
    proc = run_cli("publish", str(other), "--repo", str(repo))
    assert proc.returncode == 1 and "already in" in proc.stderr and "bump the release" in proc.stderr
    assert snapshot(repo) == before


def test_interrupted_publish_leaves_old_repo_intact(tmp_path, results):
    repo, before = _published_noarch(tmp_path, results)
    slow = tmp_path / "bin"
    slow.mkdir()
    marker = tmp_path / "started"
    (slow / "createrepo_c").write_text(f"#!/bin/sh\ntouch {marker}\nsleep 30\nexec {shutil.which('createrepo_c')} \"$@\"\n")
    (slow / "createrepo_c").chmod(0o755)
    env = {**os.environ, "PATH": f"{slow}:{os.environ['PATH']}"}
    proc = subprocess.Popen([sys.executable, "-m", "rebuild", "publish", str(results["cprog"]), "--repo", str(repo)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert snapshot(repo) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "repo", "started"]
