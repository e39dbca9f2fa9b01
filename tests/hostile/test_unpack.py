"""Unpacking a tree's packages and adding the build user, as root: nothing is ever written, or chmod'ed,
through a symlink a package planted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rebuild.config.target import load_target
from rebuild.roots.treeimage import _add_user
from rebuild.roots.unpack import UnsafePayload, unpack
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
    root = tmp_path / "root"
    link = _pkg(tmp_path, "evil-etc", f"mkdir -p %{{buildroot}}\nln -s {host} %{{buildroot}}/etc", "/etc")
    write = _pkg(tmp_path, "evil-write", "mkdir -p %{buildroot}/etc\necho owned > %{buildroot}/etc/passwd",
                 "/etc/passwd")
    before = tree_snapshot(host)
    unpack(link, root)
    with pytest.raises(UnsafePayload, match="through the symlink /etc"):
        unpack(write, root)
    assert tree_snapshot(host) == before and "owned" not in (host / "passwd").read_text()


def test_a_folder_entry_over_a_symlink_is_not_chmod_through(tmp_path, host):
    root = tmp_path / "root"
    link = _pkg(tmp_path, "evil-opt", f"mkdir -p %{{buildroot}}\nln -s {host} %{{buildroot}}/opt", "/opt")
    folder = _pkg(tmp_path, "evil-dir", "mkdir -p %{buildroot}/opt\nchmod 0777 %{buildroot}/opt", "%dir %attr(0777,-,-) /opt")
    before = tree_snapshot(host)
    unpack(link, root)
    unpack(folder, root)
    assert tree_snapshot(host) == before, "the host folder keeps its 0700"


def test_adding_the_user_never_writes_through_links(tmp_path, host):
    target = load_target("testroot")
    before = tree_snapshot(host)
    for planted in ("etc", "home", "tmp"):
        root = tmp_path / f"root-{planted}"
        root.mkdir()
        os.symlink(host, root / planted)
        with pytest.raises(UnsafePayload, match=f"/{planted}"):
            _add_user(root, target)
    root = tmp_path / "root-files"
    (root / "etc").mkdir(parents=True)
    os.symlink(host / "passwd", root / "etc" / "passwd")
    with pytest.raises(UnsafePayload, match="/etc/passwd in the image root is a symlink"):
        _add_user(root, target)
    assert tree_snapshot(host) == before and "builder" not in (host / "passwd").read_text()


def test_names_that_climb_out_are_refused_before_anything_is_written(tmp_path):
    from rebuild.roots.unpack import safe_relative

    for name in ("/../etc/x", "a/../../b", "./.", "", "x\0y"):
        with pytest.raises(UnsafePayload):
            safe_relative(name)
