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

        pinned = image_dir(testroot)  # its pin and records only: no root tarball, no root a killed run left
        shutil.copytree(pinned, image_dir(testroot, cache), ignore=shutil.ignore_patterns("*.tar", ".*"))
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


def test_a_credentialed_tree_leaves_no_password_in_cache_snapshot_or_lock_and_is_fetched_again(tmp_path):
    """A mirror behind a password: the header cache, the tree snapshot, the lock and the image labels keep
    its URLs redacted; a later build layer fetches a package of the snapshot through the target's own
    (credentialed) mirror, which the server requires."""
    import subprocess
    from dataclasses import replace

    from rebuild.config.target import load_target
    from rebuild.log import Log
    from rebuild.roots.buildroot import SNAPSHOT, fetch_packages, load_snapshot
    from rebuild.roots.layers import tree_locations
    from rebuild.roots.pins import image_dir
    from tests.integration.test_tree_image import TARGET
    from tests.rpmtree_data import make_tree

    make_tree(tmp_path / "t")
    files = {"/" + str(p.relative_to(tmp_path / "t" / "tree")): p.read_bytes()
             for p in (tmp_path / "t" / "tree").rglob("*.rpm")}
    home, cache = tmp_path / "home", tmp_path / "cache"
    folder = home / "containers" / "t73"
    folder.mkdir(parents=True)
    (folder / "packages.txt").write_text("busybox\ntool\nlibthing\n")
    env = {"REBUILD_HOME": str(home), "REBUILD_CACHE": str(cache)}
    with FaultServer(files=files, auth=f"builder:{PASSWORD}") as server:
        mirror = server.url.replace("http://", f"http://builder:{PASSWORD}@") + "/os"
        (folder / "target.yaml").write_text(TARGET.replace("rebuild-test/t73:1", "rebuild-test/t73cred:1"))
        proc = run_cli("image", "t73", "--mirror", mirror, env=env)
        try:
            assert proc.returncode == 0, proc.stderr
            assert PASSWORD not in proc.stderr + proc.stdout
            labels = subprocess.run(["docker", "inspect", "-f", "{{json .Config.Labels}}", proc.stdout.split()[1]],
                                    capture_output=True, text=True).stdout
            assert PASSWORD not in labels and "***@" in labels
            leaks = [p for d in (home, cache) for p in _files_holding(d, PASSWORD)]
            assert leaks == [], f"the password stored in {leaks}"

            # the snapshot read back for a build layer: a definition naming the mirror gives the credentials again
            target = load_target("t73", home)
            snap = image_dir(target, cache) / SNAPSHOT
            target = replace(target, image=replace(target.image, mirror=mirror))
            bare = load_snapshot(snap)
            extra = next(p for tree in bare for p in tree if p.name == "extra")
            assert "***" not in extra.url and "builder" not in extra.url, "without the definition: ~/.netrc's turn"
            again = load_snapshot(snap, tree_locations(target))
            extra = next(p for tree in again for p in tree if p.name == "extra")
            assert extra.url.startswith(mirror)
            paths, _ = fetch_packages([extra], cache, Log(quiet=True), {})
            assert paths[0].read_bytes() == files["/os/RedHat/RPMS/" + paths[0].name]
            leaks = [p for d in (home, cache) for p in _files_holding(d, PASSWORD)]
            assert leaks == [], f"the password stored in {leaks}"
        finally:
            subprocess.run(["docker", "rmi", "-f", "rebuild-test/t73cred:1"], capture_output=True)
