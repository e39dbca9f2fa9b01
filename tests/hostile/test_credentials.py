"""A password in an SRPM's URL never reaches a file: not the implied recipe, the manifest, the provenance
statement, the SBOM or the published repository (issue: evidence that cannot leak)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from rebuild.cli.build import EXAMPLE
from tests.conftest import make_srpm, run_cli
from tests.httpfault import FaultServer

pytestmark = pytest.mark.docker

PASSWORD = "s3cret-Pa55word"
TOKEN = "tok-0123456789"


def _files_holding(folder: Path, needle: str) -> list[Path]:
    found = []
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if not path.is_symlink() and needle.encode() in path.read_bytes():
                found.append(path)
    return found


def test_a_credentialed_srpm_url_leaves_no_password_in_output_cache_or_repository(tmp_path, testroot):
    srpm = make_srpm(EXAMPLE / "hello.spec", tmp_path / "srpm")
    digest = hashlib.sha256(srpm.read_bytes()).hexdigest()
    out, repo, cache = tmp_path / "out", tmp_path / "repo", tmp_path / "cache"
    env = {"REBUILD_CACHE": str(cache)}
    with FaultServer(files={"/SRPMS/" + srpm.name: srpm.read_bytes()}) as server:
        url = server.url.replace("http://", f"http://builder:{PASSWORD}@") + f"/SRPMS/{srpm.name}?token={TOKEN}"
        # the image pin lives in the default cache: share it
        import shutil

        from rebuild.roots.pins import image_dir

        shutil.copytree(image_dir(testroot).parent.parent, cache / "images", ignore=shutil.ignore_patterns("*.tar"))
        built = run_cli("build", url, "--sha256", digest, "--target", "testroot", "--set", "errata=73",
                        "--out", str(out), env=env)
        assert built.returncode == 0, built.stderr
        assert server.seen, "the SRPM came over HTTP"
    published = run_cli("publish", str(out / "hello-1.0-1.73"), "--repo", str(repo))
    assert published.returncode == 0, published.stderr
    for secret in (PASSWORD, TOKEN):
        assert PASSWORD not in built.stderr + built.stdout + published.stderr
        leaks = [p for folder in (out, repo, cache) for p in _files_holding(folder, secret)]
        assert leaks == [], f"{secret} stored in {leaks}"
    provenance = (out / "hello-1.0-1.73" / "provenance.json").read_text()
    assert "builder:" not in provenance and "***@" in provenance, "the recipe text is there, redacted"
