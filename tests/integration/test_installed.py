"""rebuild as people install it: a wheel (not the checkout) in a fresh virtualenv, run from an empty folder
of the user's own; and two project folders sharing one engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from rebuild.cli.build import EXAMPLE
from rebuild.config.target import SHIPPED
from tests.conftest import ROOT, copy_checkout, make_srpm

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip install .` makes, built from a copy of the checkout (pip builds in the source folder)."""
    out = tmp_path_factory.mktemp("wheel")
    source = copy_checkout(out / "source")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (built,) = out.glob("rebuild-*.whl")
    return built


def test_the_wheel_carries_the_shipped_targets_and_the_demo_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for target in ("testroot", "rh73", "el", "i686-test"):
        assert f"rebuild/targets/{target}/target.yaml" in names
    assert {"rebuild/targets/rh73/packages.txt", "rebuild/targets/i686-test/packages.txt"} <= names
    assert {"rebuild/examples/hello/hello.spec", "rebuild/examples/hello/hello.c"} <= names
    assert not any(n.startswith(("tests/", "specs/", "bench/")) for n in names)


@pytest.fixture(scope="module")
def installed(tmp_path_factory, wheel) -> Path:
    """A fresh virtualenv with the wheel installed (not editable); its dependencies are this environment's,
    reached through a .pth line (a path there, whose own .pth files, such as an editable install's, are not
    read: the checkout stays off sys.path)."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    with zipfile.ZipFile(wheel) as whl:
        whl.extractall(site)
    script = venv / "bin" / "rebuild"
    script.write_text(f"#!{venv}/bin/python\nimport sys\nfrom rebuild.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return venv


def _tree_state(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*") if "__pycache__" not in p.parts}


def test_an_installed_rebuild_works_in_an_empty_folder_and_writes_only_there(installed, tmp_path, testroot):
    work = tmp_path / "ops"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("REBUILD_HOME", "PYTHONPATH")}
    package = next((installed / "lib").glob("python3*/site-packages/rebuild"))
    before_pkg = _tree_state(package)
    before_git = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=ROOT, capture_output=True,
                                text=True).stdout

    def rebuild(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(installed / "bin" / "rebuild"), *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=600)

    where = subprocess.run([str(installed / "bin/python"), "-c", "import rebuild; print(rebuild.__file__)"],
                           cwd=work, capture_output=True, text=True)
    assert where.stdout.startswith(str(installed)), "the wheel, not the checkout, is what runs"
    listed = rebuild("targets")
    assert listed.returncode == 0, listed.stderr
    assert f"testroot\tshipped\t{package}/targets/testroot/target.yaml" in listed.stdout

    srpm = make_srpm(EXAMPLE / "hello.spec", tmp_path / "srpm")
    init = rebuild("init", str(srpm), "--target", "testroot")
    assert init.returncode == 0, init.stderr
    assert (work / "specs" / "hello.yaml").is_file() and init.stdout.strip().endswith("specs/hello.yaml")
    built = rebuild("build", str(srpm), "--target", "testroot", "--set", "errata=73", "--out", "out")
    assert built.returncode == 0, built.stderr
    assert (work / "out" / "hello-1.0-1.73" / "RPMS" / "x86_64" / "hello-1.0-1.73.x86_64.rpm").is_file()

    shutil.copytree(SHIPPED / "testroot", work / "containers" / "mytarget")
    assert "mytarget\tproject\t" in rebuild("targets").stdout

    assert _tree_state(package) == before_pkg, "nothing is written into the installed package"
    after_git = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=ROOT, capture_output=True,
                               text=True).stdout
    assert after_git == before_git, "nothing is written into the checkout"


def test_two_project_folders_on_one_engine_build_one_target_alternately(tmp_path, testroot):
    """Both define testroot (one as shipped, one with another tag and build user id) and share one cache:
    each image is made once and keeps its own pin and tag; builds alternate twice without an exit 3."""
    srpm = make_srpm(EXAMPLE / "hello.spec", tmp_path / "srpm")
    homes = []
    for name in ("a", "b"):
        home = tmp_path / name
        (home / "containers").mkdir(parents=True)
        shutil.copytree(SHIPPED / "testroot", home / "containers" / "testroot")
        homes.append(home)
    yaml = homes[1] / "containers" / "testroot" / "target.yaml"
    yaml.write_text(yaml.read_text().replace("tag: rebuild/testroot:1", "tag: rebuild-test/shared:1")
                    .replace("uid: 1000", "uid: 1001"))
    env = {k: v for k, v in os.environ.items() if k != "REBUILD_HOME"}

    def rebuild(home: Path, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "rebuild", *args], cwd=home, env=env, capture_output=True,
                              text=True, timeout=900)

    for home in homes:
        made = rebuild(home, "image", "testroot")
        assert made.returncode == 0, made.stderr
    tags = {rebuild(home, "image", "testroot").stdout.split()[0] for home in homes}
    assert len(tags) == 2, "one tag per definition"
    for round_ in range(2):
        for home in homes:
            proc = rebuild(home, "build", str(srpm), "--target", "testroot", "--set", "errata=73", "--out", "out",
                           "--force")
            assert proc.returncode == 0, f"{home.name}, round {round_}: {proc.stderr}"


HOST_VENV = ROOT / ".venv-host"  # made by `make test-host-python` (which .ci/run runs first)


@pytest.mark.skipif(not (HOST_VENV / "bin" / "rebuild").exists(),
                    reason="no .venv-host: run `make test-host-python` first (Debian's /usr/bin/python3)")
def test_an_archive_transfer_build_under_the_hosts_python(tmp_path, testroot):
    """Debian 12's python3 is 3.11.2, whose tarfile has no extraction filters: files copied back from the
    engine as archives (what tcp:// and ssh:// engines get) go through rebuild's own member check there."""
    version = subprocess.run([str(HOST_VENV / "bin" / "python"), "--version"], capture_output=True, text=True).stdout
    srpm = make_srpm(EXAMPLE / "hello.spec", tmp_path / "srpm")
    env = {k: v for k, v in os.environ.items() if k != "REBUILD_HOME"} | {"REBUILD_TRANSFER": "archive"}
    proc = subprocess.run([str(HOST_VENV / "bin" / "rebuild"), "build", str(srpm), "--target", "testroot", "--set",
                           "errata=73", "--out", "out"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"{version}: {proc.stderr}"
    assert (tmp_path / "out" / "hello-1.0-1.73" / "RPMS" / "x86_64" / "hello-1.0-1.73.x86_64.rpm").is_file()
