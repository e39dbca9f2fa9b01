"""Laying out a tree's packages and adding the build user: nothing is ever written, or chmod'ed, through a
symlink a package planted, and nothing lands on the host: the root exists only as the tarball."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from rebuild.config.target import load_target
from rebuild.roots.treeimage import _add_user
from rebuild.roots.unpack import RootTree, UnsafePayload, safe_relative
from tests.hostile.conftest import tree_snapshot
from tests.rpmtree_data import build_rpm


def _pkg(tmp_path: Path, name: str, install: str, files: str) -> Path:
    spec = (f"Name: {name}\nVersion: 1\nRelease: 1\nSummary: x\nLicense: MIT\nBuildArch: noarch\n"
            f"%description\nx\n%install\n{install}\n%files\n{files}\n")
    return build_rpm(spec, tmp_path / f"b-{name}")


@pytest.fixture
def host(tmp_path) -> Path:
    """A folder standing for the host's: it must not change."""
    folder = tmp_path / "host"
    folder.mkdir(mode=0o700)
    (folder / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    return folder


def test_a_file_through_a_symlinked_folder(tmp_path, host):
    link = _pkg(tmp_path, "evil-etc", f"mkdir -p %{{buildroot}}\nln -s {host} %{{buildroot}}/etc", "/etc")
    write = _pkg(tmp_path, "evil-write", "mkdir -p %{buildroot}/etc\necho owned > %{buildroot}/etc/passwd",
                 "/etc/passwd")
    before = tree_snapshot(host)
    tree = RootTree()
    tree.add(link)
    with pytest.raises(UnsafePayload, match="evil-write.*through the symlink /etc"):
        tree.add(write)
    (tmp_path / "root.tar").write_bytes(b"".join(tree.chunks()))
    assert tree_snapshot(host) == before and "owned" not in (host / "passwd").read_text()
    with tarfile.open(tmp_path / "root.tar") as tar:
        assert [(m.name, m.issym(), m.linkname) for m in tar] == [("etc", True, str(host))]


def test_a_folder_entry_over_a_symlink_is_not_chmod_through(tmp_path, host):
    link = _pkg(tmp_path, "evil-opt", f"mkdir -p %{{buildroot}}\nln -s {host} %{{buildroot}}/opt", "/opt")
    folder = _pkg(tmp_path, "evil-dir", "mkdir -p %{buildroot}/opt\nchmod 0777 %{buildroot}/opt", "%dir %attr(0777,-,-) /opt")
    before = tree_snapshot(host)
    tree = RootTree()
    tree.add(link)
    tree.add(folder)
    (tmp_path / "root.tar").write_bytes(b"".join(tree.chunks()))
    assert tree_snapshot(host) == before, "the host folder keeps its 0700"
    with tarfile.open(tmp_path / "root.tar") as tar:
        assert [(m.name, m.issym()) for m in tar] == [("opt", True)], "the symlink stays; no folder entry"


def test_adding_the_user_never_writes_through_links(tmp_path, host):
    target = load_target("testroot")
    for planted in ("etc", "home", "tmp"):
        tree = RootTree()
        tree.symlink(planted, str(host))
        with pytest.raises(UnsafePayload, match=f"/{planted}"):
            _add_user(tree, target)
    tree = RootTree()
    tree.mkdir("etc", 0o755)
    tree.symlink("etc/passwd", str(host / "passwd"))
    with pytest.raises(UnsafePayload, match="/etc/passwd in the image root is a symlink"):
        _add_user(tree, target)


def test_the_root_as_rpm_would_lay_it_out(tmp_path):
    """A later package's file replaces an earlier one's (one tarball entry, the later bytes), hard links all
    carry their bytes, a folder entry changes only the mode, and the user is added to the packaged
    passwd read from its payload."""
    first = _pkg(tmp_path, "first", "mkdir -p %{buildroot}/etc %{buildroot}/opt/d\n"
                 "printf 'root:x:0:0::/root:/bin/sh\\n' > %{buildroot}/etc/passwd\n"
                 "echo old > %{buildroot}/opt/shared\necho one > %{buildroot}/opt/d/a\n"
                 "ln %{buildroot}/opt/d/a %{buildroot}/opt/d/b",
                 "/etc/passwd\n/opt/shared\n/opt/d/a\n/opt/d/b")
    second = _pkg(tmp_path, "second", "mkdir -p %{buildroot}/opt/d\necho new > %{buildroot}/opt/shared",
                  "/opt/shared\n%dir %attr(0700,-,-) /opt/d")
    tree = RootTree()
    tree.add(first)
    tree.add(second)
    target = load_target("testroot")
    _add_user(tree, target)
    (tmp_path / "root.tar").write_bytes(b"".join(tree.chunks()))
    with tarfile.open(tmp_path / "root.tar") as tar:
        members = {m.name: m for m in tar}
        names = [m.name for m in tar]
        assert len(names) == len(set(names)), "no path twice"
        assert tar.extractfile("opt/shared").read() == b"new\n"
        assert tar.extractfile("opt/d/a").read() == tar.extractfile("opt/d/b").read() == b"one\n"
        assert members["opt/d"].mode == 0o700 and members["opt/d"].isdir()
        passwd = tar.extractfile("etc/passwd").read().decode()
        assert passwd.startswith("root:x:0:0::/root:/bin/sh\n") and f"\n{target.user}:x:{target.uid}:" in passwd
        home = members[f"home/{target.user}"]
        assert (home.uid, home.gid) == (target.uid, target.uid) and members["tmp"].mode == 0o1777


def test_a_payload_that_ends_early_is_one_line(tmp_path):
    """The header is whole, the payload cut short: found while the stream is written, named, no traceback."""
    whole = _pkg(tmp_path, "cut", "mkdir -p %{buildroot}/opt\nhead -c 300000 /dev/urandom > %{buildroot}/opt/blob",
                 "/opt/blob")
    cut = tmp_path / "cut.rpm"
    cut.write_bytes(whole.read_bytes()[:-100000])
    tree = RootTree()
    tree.add(cut)
    with pytest.raises(UnsafePayload, match="cut.rpm: the payload is damaged"):
        b"".join(tree.chunks())


def test_names_that_climb_out_are_refused_before_anything_is_written(tmp_path):
    for name in ("/../etc/x", "a/../../b", "./.", "", "x\0y"):
        with pytest.raises(UnsafePayload):
            safe_relative(name)
