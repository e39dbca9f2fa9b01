"""The rpmdb step of rpmtree images: written by the image's own rpm, read back, committed."""

from __future__ import annotations

import dataclasses

import pytest

from rebuild.errors import EnvironmentProblem
from rebuild.log import Log
from rebuild.roots.rpmtree import TreePackage
from rebuild.config.target import load_target
from rebuild.roots.treeimage import _register
from tests.unit.fake_engine import FakeEngine


@pytest.fixture
def setup(tmp_path):
    target = dataclasses.replace(load_target("testroot"), personality="linux32", name="old", image=dataclasses.replace(
        load_target("testroot").image, tag="rebuild-test/old:1"))
    files = []
    chosen = []
    for name in ("glibc", "rpm"):
        path = tmp_path / "cache" / f"{name}-1-1.i386.rpm"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
        files.append(path)
        chosen.append(TreePackage(name, "1", "1", "i386", path.name, path.as_uri(), "os"))
    work = tmp_path / "work"
    work.mkdir()
    return target, files, chosen, work


def test_register_uses_the_images_own_rpm_and_commits(setup):
    target, files, chosen, work = setup
    engine = FakeEngine({("linux32", "rpm", "--initdb"): (0, b""), ("linux32", "rpm", "-i"): (0, b""),
                         ("linux32", "rpm", "-qa"): (0, b"warning: noise on stderr\nrebuild-pkg rpm\nrebuild-pkg glibc\n")})
    assert _register(target, engine, "sha256:imported", files, chosen, work, Log(quiet=True)) == "sha256:committed"
    ran = engine.boxes[0].ran
    assert ran[0] == ["linux32", "rpm", "--initdb"]
    assert ran[1][:8] == ["linux32", "rpm", "-i", "--justdb", "--nodeps", "--noscripts", "--notriggers", "--ignorearch"]
    assert ran[1][8:] == ["/pkgs/glibc-1-1.i386.rpm", "/pkgs/rpm-1-1.i386.rpm"]
    assert engine.committed == ["rebuild-test/old:1"]


def test_register_refuses_an_rpmdb_its_rpm_cannot_read_back(setup):
    target, files, chosen, work = setup
    engine = FakeEngine({("linux32", "rpm", "--initdb"): (0, b""), ("linux32", "rpm", "-i"): (0, b""),
                         ("linux32", "rpm", "-qa"): (0, b"rebuild-pkg glibc\n")})
    with pytest.raises(EnvironmentProblem, match="cannot read back its rpmdb.*1 of 2"):
        _register(target, engine, "sha256:imported", files, chosen, work, Log(quiet=True))
    assert engine.committed == []


def test_register_reports_rpm_failure(setup):
    target, files, chosen, work = setup
    engine = FakeEngine({("linux32", "rpm", "--initdb"): (1, b"error: cannot create /var/lib/rpm\n")})
    with pytest.raises(EnvironmentProblem, match="rpm --initdb failed in the new image.*cannot create"):
        _register(target, engine, "sha256:imported", files, chosen, work, Log(quiet=True))
