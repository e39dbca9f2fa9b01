"""The operator's first hour: default trees, a build without a recipe, `rebuild init`, a shell in the root,
and live progress on a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from rebuild.config.target import SHIPPED
from tests.conftest import DATA, ROOT, copy_case, make_srpm, run_cli
from tests.httpfault import FaultServer
from tests.rpmtree_data import make_tree

pytestmark = pytest.mark.docker

TARGET = """\
image:
  tag: rebuild-test/defaults:1
  method: rpmtree
  packages: packages.txt
  mirror: {mirror}
  updates: {updates}
arch: i686
personality: linux32
build_command: auto
user: builder
uid: 500
"""


def _home(tmp_path, mirror: str, updates: str):
    folder = tmp_path / "home" / "containers" / "t"
    folder.mkdir(parents=True)
    (folder / "target.yaml").write_text(TARGET.format(mirror=mirror, updates=updates))
    (folder / "packages.txt").write_text("busybox\ntool\n")
    return {"REBUILD_HOME": str(tmp_path / "home"), "REBUILD_CACHE": str(tmp_path / "cache")}


def test_a_target_with_default_trees(tmp_path):
    base = tmp_path / "tree"
    make_tree(base)
    files = {"/" + str(p.relative_to(base / "tree")): p.read_bytes() for p in (base / "tree").rglob("*.rpm")}
    with FaultServer(files=files) as server:
        env = _home(tmp_path, server.url + "/os/", server.url + "/updates/")
        proc = run_cli("image", "t", env=env)
    assert proc.returncode == 0, proc.stderr
    assert server.url in proc.stderr, "the defaults were read"
    lock = json.loads(next((tmp_path / "cache" / "images" / "t").glob("*/root.lock.json")).read_text())
    assert {p["name"]: p["origin"] for p in lock["packages"]} == {"busybox": "os", "tool": "updates"}


def test_an_unreachable_default_tree_is_one_line_naming_it(tmp_path):
    with FaultServer() as server:
        url = server.url + "/os/"
    env = _home(tmp_path, url, url.replace("/os/", "/updates/"))  # the server is gone: connection refused
    proc = run_cli("-q", "image", "t", env=env)
    assert proc.returncode == 3 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert url in proc.stderr and "--mirror DIR" in proc.stderr and "make rpms MIRROR=DIR" in proc.stderr


def test_a_bare_srpm_builds_like_a_recipe(tmp_path, testroot):
    srpm = make_srpm(copy_case("rhstyle", tmp_path) / "mailer.spec", tmp_path / "src")
    recipe = tmp_path / "mailer.yaml"
    recipe.write_text(f"name: mailer\nsource:\n  srpm: {srpm.name}\n  urls: ['{srpm.as_uri()}']\ntarget: testroot\n"
                      "spec:\n  macros:\n    errata: '73'\n")
    via_recipe = run_cli("build", str(recipe), "--out", str(tmp_path / "a"))
    bare = run_cli("build", str(srpm), "--target", "testroot", "--set", "errata=73", "--out", str(tmp_path / "b"))
    assert via_recipe.returncode == 0 and bare.returncode == 0, bare.stderr
    layout = lambda out: sorted(str(p.relative_to(out)) for p in out.rglob("*")  # noqa: E731
                                if ".index" not in p.parts and ".implied" not in p.parts)
    assert layout(tmp_path / "a") == layout(tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "mailer-8.12.8-9.73" / "manifest.json").read_text())
    assert manifest["recipe"]["implied"]["spec"] == {"macros": {"errata": "73"}}
    assert manifest["recipe"]["implied"]["target"] == "testroot"
    missing = run_cli("-q", "build", str(srpm), "--out", str(tmp_path / "c"))
    assert missing.returncode == 2 and "--target" in missing.stderr
    url = run_cli("-q", "build", "http://127.0.0.1:9/x-1-1.src.rpm", "--target", "testroot")
    assert url.returncode == 2 and "--sha256" in url.stderr


def test_init_writes_a_recipe_that_builds_as_is(tmp_path, testroot):
    srpm = make_srpm(copy_case("rhstyle", tmp_path) / "mailer.spec", tmp_path / "src")
    home = tmp_path / "home"
    (home / "specs").mkdir(parents=True)
    shutil_copy = __import__("shutil").copytree
    shutil_copy(SHIPPED / "testroot", home / "containers" / "testroot")
    env = {"REBUILD_HOME": str(home)}
    proc = run_cli("init", str(srpm), "--target", "testroot", env=env)
    assert proc.returncode == 0, proc.stderr
    written = home / "specs" / "mailer.yaml"
    assert proc.stdout.strip() == str(written)
    text = written.read_text()
    assert "sha256:" in text and "#     errata: '80'  # decides the Release" in text
    assert "#     smshell: '/bin/sh'" in text
    built = run_cli("build", str(written), "--out", str(tmp_path / "out"), env=env)
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "out" / "mailer-8.12.8-9.80").is_dir()
    again = run_cli("-q", "init", str(srpm), "--target", "testroot", env=env)
    assert again.returncode == 2 and "exists" in again.stderr


def test_shell_runs_a_command_under_the_personality(i686, tmp_path):
    home, env, tree, image = i686
    proc = run_cli("-q", "shell", "i686-test", "--", "sh", "-c", "uname -m; id -u", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["i686", "500"], "as the build user, under linux32"
    assert run_cli("-q", "shell", "i686-test", "--", "false", env=env).returncode == 1


def test_a_failed_build_says_how_to_look_around_and_the_shell_opens_its_tree(tmp_path, testroot):
    srpm = make_srpm(copy_case("failing", tmp_path) / "failing.spec", tmp_path / "src")
    out = tmp_path / "out"
    proc = run_cli("build", str(srpm), "--target", "testroot", "--out", str(out))
    assert proc.returncode == 10
    failed = out / "failing-1-1.failed"
    assert f"rebuild shell testroot --result {failed}" in proc.stderr
    assert (failed / "tree" / "SPECS" / "failing.spec").is_file()
    look = run_cli("-q", "shell", "testroot", "--result", str(failed), "--", "sh", "-c", "ls /build/SPECS; pwd")
    assert look.returncode == 0 and look.stdout.split() == ["failing.spec", "/build"], look.stderr


def test_progress_on_a_terminal(tmp_path, testroot):
    spec = copy_case("slow", tmp_path) / "slow.spec"
    spec.write_text(spec.read_text().replace("sleep 120", "sleep 4"))
    srpm = make_srpm(spec, tmp_path / "src")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "rebuild", "build", str(srpm), "--target", "testroot", "--out",
                             str(tmp_path / "out")], stdin=slave, stdout=slave, stderr=slave, cwd=ROOT,
                            env={**os.environ, "COLUMNS": "120"})
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(master)
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text[-2000:]
    import re

    status = re.findall(r"slow\S*\s+(rpmbuild|checks|collect)\s+(\d+\.\d)s", text)
    assert status and any(phase == "rpmbuild" for phase, _ in status), "a live line: build, phase, elapsed"
    assert len({seconds for phase, seconds in status if phase == "rpmbuild"}) > 1, "the elapsed time moves"
    assert "\x1b[" in text, "drawn on the terminal"
    plain = run_cli("build", str(srpm), "--target", "testroot", "--out", str(tmp_path / "out"), "--force")
    assert "\x1b[" not in plain.stderr, "plain lines when not a terminal"
    assert DATA.is_dir()
