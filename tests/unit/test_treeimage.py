"""The rpmdb step of rpmtree images: written by the image's own rpm with every index, read back, checked
for unmet dependencies by that rpm, committed."""

from __future__ import annotations

import dataclasses

import pytest

from rebuild.config.target import load_target
from rebuild.errors import EnvironmentProblem
from rebuild.log import Log
from rebuild.roots.lock import LockedPackage
from rebuild.roots.treeimage import INDEX_PACKAGE, _register
from tests.unit.fake_engine import FakeEngine

GOOD = {("linux32", "rpm", "--version"): (0, b"RPM version 4.0.4\n"), ("linux32", "rpm", "--initdb"): (0, b""), ("linux32", "rpm", "-i"): (0, b""),
        ("linux32", "rpm", "-e"): (0, b"rpmdb: Suspiciously high nelem\n"), ("linux32", "rpm", "--rebuilddb"): (0, b""),
        ("linux32", "rpm", "-qa"): (0, b"warning: noise on stderr\nrebuild-pkg rpm-1-1\nrebuild-pkg glibc-1-1\n"
                                      b"rebuild-pkg rebuild-rpmdb-indexes-1-1\n"),
        ("linux32", "rpm", "-Va"): (0, b"")}


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
        chosen.append(LockedPackage(f"{name}-1-1.i386", name, None, "1", "1", "i386", path.name, path.as_uri(), "os",
                                    "0" * 64, 1))
    work = tmp_path / "work"
    work.mkdir()
    return target, files, chosen, work


def test_register_uses_the_images_own_rpm_and_commits(setup):
    target, files, chosen, work = setup
    engine = FakeEngine(dict(GOOD))
    assert _register(target, engine, "sha256:imported", files, chosen, work, Log(quiet=True)) == "sha256:committed"
    ran = [argv for argv in engine.boxes[0].ran if argv != ["linux32", "rpm", "--version"]]
    assert ran[0] == ["linux32", "rpm", "--initdb"]
    assert ran[1][:8] == ["linux32", "rpm", "-i", "--justdb", "--nodeps", "--noscripts", "--notriggers", "--ignorearch"]
    assert ran[1][8:] == ["/pkgs/glibc-1-1.i386.rpm", "/pkgs/rpm-1-1.i386.rpm",
                          f"/pkgs/{INDEX_PACKAGE}/{INDEX_PACKAGE}-1-1.noarch.rpm"]
    assert ran[2] == ["linux32", "rpm", "--rebuilddb"], "every index is written as root"
    assert ["linux32", "rpm", "-Va", "--nofiles", "--nodigest"] in ran
    assert engine.committed == [target.tag] and target.tag.startswith("rebuild-test/old:1-")
    assert (work / "pkgs" / INDEX_PACKAGE / f"{INDEX_PACKAGE}-1-1.noarch.rpm").is_file(), "a real package, 2003 style"


def test_register_refuses_an_rpmdb_its_rpm_cannot_read_back(setup):
    target, files, chosen, work = setup
    engine = FakeEngine({**GOOD, ("linux32", "rpm", "-qa"): (0, b"rebuild-pkg glibc-1-1\nrebuild-pkg rebuild-rpmdb-indexes-1-1\n")})
    with pytest.raises(EnvironmentProblem, match="cannot read back its rpmdb.*2 of 3"):
        _register(target, engine, "sha256:imported", files, chosen, work, Log(quiet=True))
    assert engine.committed == []


def test_register_reports_rpm_failure(setup):
    target, files, chosen, work = setup
    engine = FakeEngine({("linux32", "rpm", "--initdb"): (1, b"error: cannot create /var/lib/rpm\n")})
    with pytest.raises(EnvironmentProblem, match="rpm --initdb failed in the new image.*cannot create"):
        _register(target, engine, "sha256:imported", files, chosen, work, Log(quiet=True))


def test_unmet_dependencies_found_by_the_images_rpm_name_the_packages(setup):
    """rpm 4.0.4 knows no --nodigest: the check falls back to plain -Va --nofiles, and its findings are an error."""
    target, files, chosen, work = setup
    engine = FakeEngine({**GOOD, ("linux32", "rpm", "-Va", "--nofiles", "--nodigest"):
                         (1, b"-Va: unknown option --nodigest\n"),
                         ("linux32", "rpm", "-Va", "--nofiles"):
                         (1, b"Unsatisfied dependencies for krb5-libs-1.2.4-1:\n\tlibcom_err.so.2\n")})
    with pytest.raises(EnvironmentProblem, match="unmet dependencies: krb5-libs-1.2.4-1 libcom_err.so.2"):
        _register(target, engine, "sha256:imported", files, chosen, work, Log(quiet=True))
    assert engine.committed == []
