"""rebuild image from an RPM tree (the rh73 mechanism) on a tree the test builds, served from loopback."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from rebuild.config.target import SHIPPED
from rebuild.roots.solver import Want, solve
from rebuild.roots.treeindex import read_tree
from rebuild.roots.unpack import RootTree, UnsafePayload
from tests.conftest import ROOT, run_cli
from tests.httpfault import FaultServer
from tests.rpmtree_data import build_rpm, make_tree, simple_spec

pytestmark = pytest.mark.docker

TARGET = """\
image:
  tag: rebuild-test/t73:1
  method: rpmtree
  packages: packages.txt
arch: i686
personality: linux32
build_command: auto
user: builder
uid: 500
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("tree")
    rpms = make_tree(base)
    files = {}
    for path in (base / "tree").rglob("*.rpm"):
        files["/" + str(path.relative_to(base / "tree"))] = path.read_bytes()
    up = base / "tree" / "updates"
    sums = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in up.glob("*.rpm"))
    files["/updates/SHA256SUMS"] = sums.encode()
    with FaultServer(files=files) as server:
        yield base, rpms, server


@pytest.fixture
def home(tmp_path):
    folder = tmp_path / "home" / "containers" / "t73"
    folder.mkdir(parents=True)
    (folder / "target.yaml").write_text(TARGET)
    (folder / "packages.txt").write_text("# test set\nbusybox\ntool\nlibthing\n")
    return tmp_path / "home"


def _env(home: Path) -> dict:
    """The test's own project folder and cache: each session makes its tree's packages afresh (new bytes under
    the same names), which a cache shared with earlier sessions rightly refuses as changed."""
    return {"REBUILD_HOME": str(home), "REBUILD_CACHE": str(home.parent / "cache")}


def test_solve_prefers_newer_wherever_it_is(tree, tmp_path):
    base, _, server = tree
    trees = [read_tree(server.url + "/os/", "os", tmp_path), read_tree(server.url + "/updates/", "updates", tmp_path)]
    solution = solve(trees, "i686", [Want("base", n) for n in ("busybox", "tool", "libthing")])
    chosen = {p.name: (p.version, p.release, p.origin) for p in solution.install}
    assert chosen == {"busybox": ("1.35.0", "1", "os"), "tool": ("1.0", "2", "updates"), "libthing": ("2.0", "1", "os")}
    assert all(p.sha256 for p in trees[1]), "the updates tree's SHA256SUMS is read"
    local = read_tree(str(base / "tree" / "os"), "os", tmp_path)
    assert {p.name for p in local} == {"busybox", "tool", "libthing", "extra"}


def test_image_from_tree_runs_i686_shell(tree, home):
    _, _, server = tree
    env = _env(home)
    proc = run_cli("image", "t73", "--mirror", server.url + "/os", "--updates", server.url + "/updates/", env=env)
    assert proc.returncode == 0, proc.stderr
    image = proc.stdout.split()[1]

    def run(*argv):
        return subprocess.run(["docker", "run", "--rm", "--network", "none", image, *argv],
                              capture_output=True, text=True)

    assert run("linux32", "sh", "-c", "uname -m").stdout.strip() == "i686"
    assert run("sh", "-c", "cat /usr/share/tool/version").stdout == "1.0-2 updates"
    assert run("sh", "-c", "cat /usr/share/libthing/v").stdout == "2.0 os"
    assert run("sh", "-c", "test -e /usr/share/extra && echo yes || echo no").stdout.strip() == "no"
    assert "builder:x:500:500:" in run("cat", "/etc/passwd").stdout
    labels = subprocess.run(["docker", "inspect", "-f", "{{json .Config.Labels}}", image], capture_output=True, text=True).stdout
    assert server.url in labels and "org.rebuild.packages" in labels
    again = run_cli("image", "t73", "--mirror", server.url + "/os", "--updates", server.url + "/updates/", env=env)
    assert again.returncode == 0 and "up to date" in again.stderr


def test_image_needs_a_mirror(home):
    proc = run_cli("image", "t73", env=_env(home))
    assert proc.returncode == 2 and "--mirror" in proc.stderr


def test_missing_package_is_named(tree, home):
    _, _, server = tree
    (home / "containers" / "t73" / "packages.txt").write_text("busybox\nopenssl-devel\n")
    proc = run_cli("image", "t73", "--mirror", server.url + "/os", env=_env(home))
    assert proc.returncode == 2 and "openssl-devel" in proc.stderr


def _hostile_spec(name: str, install: str, files: str) -> str:
    """A noarch spec whose %install and %files lines are given as they are."""
    return (f"Name: {name}\nVersion: 1\nRelease: 1\nSummary: x\nLicense: MIT\nBuildArch: noarch\n"
            f"%description\nx\n%install\n{install}\n%files\n{files}\n")


def test_unsafe_payloads_are_refused(tmp_path):
    link = build_rpm(_hostile_spec("evil-link", "mkdir -p %{buildroot}\nln -s /tmp/outside %{buildroot}/evil", "/evil"),
                     tmp_path / "a")
    through = build_rpm(simple_spec("evil-write", "1", "1", "noarch", {"/evil/passwd": "owned"}), tmp_path / "b")
    tree = RootTree()
    tree.add(link)
    with pytest.raises(UnsafePayload, match="written through the symlink /evil"):
        tree.add(through)
    (tmp_path / "root.tar").write_bytes(b"".join(tree.chunks()))
    assert not Path("/tmp/outside/passwd").exists()
    device = build_rpm(_hostile_spec("evil-dev", "mkdir -p %{buildroot}/dev", "%dev(c, 1, 3) /dev/mynull"),
                       tmp_path / "c")
    with pytest.raises(UnsafePayload, match="device file /dev/mynull refused"):
        tree.add(device)
    # a header whose directory names climb out of the root (same length, so the header still parses)
    dots = build_rpm(simple_spec("evil-dots", "1", "1", "noarch", {"/opt/xx/yy/f": "x"}), tmp_path / "d")
    data = dots.read_bytes()
    assert data.count(b"/opt/xx/yy/") == 1
    patched = tmp_path / "dots.rpm"
    patched.write_bytes(data.replace(b"/opt/xx/yy/", b"/opt/../../"))
    with pytest.raises(UnsafePayload, match="tampered header"):
        RootTree().add(patched)
    fresh = RootTree()
    with pytest.raises(UnsafePayload, match=r"unsafe path '/opt/\.\./\.\./f'"):
        fresh.add(patched, check_digests=False)
    assert not fresh.nodes and not fresh.packages, "nothing laid out before every name is checked"


def test_rh73_definition_on_a_test_tree_with_its_own_rpm(tmp_path, engine):
    """The real rh73 target definition and its top-level package list (retagged so no operator image is
    touched), on a tree that holds a real rpm and packages that require each other: the solver adds the
    closure and nothing more, the image's own rpm writes the rpmdb and finds every dependency met, rpm -qa
    lists exactly the solved set; a build's layer with sendmail's errata-73 BuildRequires and the 15
    floors picks openssl-devel from updates, and check-deps on it finds every floor met."""
    from rebuild.config.floors import load_manifest
    from rebuild.config.target import load_target
    from rebuild.log import Log
    from rebuild.roots.buildroot import read_package_list
    from rebuild.roots.layers import build_layer
    from tests.rpmtree_data import RH73_REQUIRES, SENDMAIL_73_BUILDREQUIRES, make_rh73_tree

    home = tmp_path / "home"
    shutil.copytree(SHIPPED / "rh73", home / "containers" / "rh73")
    shutil.copytree(ROOT / "specs", home / "specs")
    target_yaml = home / "containers" / "rh73" / "target.yaml"
    target_yaml.write_text(target_yaml.read_text().replace("tag: rebuild/rh73:1", "tag: rebuild-test/rh73:1"))
    make_rh73_tree(tmp_path / "t", home / "containers" / "rh73" / "packages.txt")
    env = {"REBUILD_HOME": str(home), "REBUILD_CACHE": str(tmp_path / "cache")}
    proc = run_cli("image", "rh73", "--mirror", str(tmp_path / "t" / "tree" / "os"),
                   "--updates", (tmp_path / "t" / "tree" / "updates").as_uri(), env=env)
    assert proc.returncode == 0, proc.stderr
    image = proc.stdout.split()[1]
    run = lambda img, *argv: subprocess.run(["docker", "run", "--rm", "--network", "none", img, *argv],  # noqa: E731
                                            capture_output=True, text=True)
    assert run(image, "linux32", "sh", "-c", "uname -m").stdout.strip() == "i686"
    top = read_package_list(home / "containers" / "rh73" / "packages.txt")
    closure = set(top) | {r for n in top for r in RH73_REQUIRES.get(n, [])}
    closure |= {r for n in list(closure) for r in RH73_REQUIRES.get(n, [])}
    listed = {line.rsplit("-", 2)[0] for line in run(image, "linux32", "rpm", "-qa").stdout.split()}
    assert listed - {"rebuild-rpmdb-indexes"} == closure, "the closure of the top-level names, nothing more"
    assert {"glibc-common", "popt", "db3", "libtermcap", "cpp"} <= listed and "openssl-devel" not in listed
    target = load_target("rh73", home)
    floors = load_manifest(home / "specs" / "rh73-floors.yaml")
    layer = build_layer(target, image, SENDMAIL_73_BUILDREQUIRES, floors, engine, Log(quiet=True),
                        tmp_path / "cache")
    assert layer.image_id != image and "openssl-devel-0.9.6b-32.7.noarch" in layer.added
    assert {"e2fsprogs", "cracklib", "cracklib-dicts", "pwdb", "glib", "libstdc++"} <= {
        line.rsplit("-", 2)[0] for line in run(layer.image_id, "linux32", "rpm", "-qa").stdout.split()}
    assert {p.name: f"{p.version}-{p.release}" for p in layer.lock.packages}["openssl-devel"] == "0.9.6b-32.7"
    deps = run_cli("check-deps", "--manifest", str(home / "specs" / "rh73-floors.yaml"), "--image", layer.image_id,
                   env=env)
    assert deps.returncode == 0, deps.stdout + deps.stderr
    assert deps.stdout.splitlines()[-1] == "15 floors: all met"
    assert [p.name for p in (tmp_path / "t" / "tree" / "os" / "RedHat" / "RPMS").glob("openssl-devel-*")] == [
        "openssl-devel-0.9.6b-30.7.noarch.rpm"], "the release tree alone is below the floor"
    subprocess.run(["docker", "rmi", "-f", layer.image_id], capture_output=True)


def test_a_file_two_packages_hold_reaches_the_engine_once(tmp_path, engine):
    """Two packages hold /opt/shared with different bytes: the streamed root carries the later one only (the
    engine refuses a layer that holds a path twice: "duplicates of file paths not supported"), and the image
    is written back out whole."""
    first = build_rpm(simple_spec("first", "1", "1", "noarch", {"/opt/shared": "old", "/opt/a": "a"}), tmp_path / "a")
    second = build_rpm(simple_spec("second", "1", "1", "noarch", {"/opt/shared": "new"}), tmp_path / "b")
    tree = RootTree()
    tree.add(first)
    tree.add(second)
    tag = "rebuild-test/two-owners:1"
    try:
        image = engine.import_rootfs(tree.chunks(), tag, {"org.rebuild.test": "1"})
        assert engine.read_file(image, "/opt/shared").strip() == b"new"
        assert engine.read_file(image, "/opt/a").strip() == b"a"
        saved = subprocess.run(["docker", "save", "-o", str(tmp_path / "image.tar"), tag], capture_output=True, text=True)
        assert saved.returncode == 0, saved.stderr
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
