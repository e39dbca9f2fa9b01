"""Temporary files in folders other users share: a planted symlink at any guessable name is never followed;
what a command writes is whole or absent."""

from __future__ import annotations

import os
import stat

import pytest

from tests.conftest import copy_case, make_srpm
from tests.hostile.conftest import one_line_error, quietly, within


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim"
    path.write_text("do not touch\n")
    return path


def test_fetch_dest_in_a_shared_folder(tmp_path, victim):
    srpm = make_srpm(copy_case("noarch", tmp_path) / "greeting.spec", tmp_path / "src")
    import hashlib

    digest = hashlib.sha256(srpm.read_bytes()).hexdigest()
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o1777)
    for guess in (f".{srpm.name}.tmp", f".{srpm.name}.{os.getpid()}.tmp", f".{srpm.name}.1.tmp"):
        (shared / guess).symlink_to(victim)
    proc = quietly("fetch", srpm.as_uri(), "--sha256", digest, "--dest", str(shared),
                   env={"REBUILD_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "do not touch\n"
    assert (shared / srpm.name).read_bytes() == srpm.read_bytes()


def test_patch_output_in_a_shared_folder(tmp_path, victim):
    spec = tmp_path / "x.spec"
    spec.write_text("%define errata 80\nName: x\nVersion: 1\nRelease: 1.%{errata}\n%description\nx\n")
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o1777)
    for pid in range(os.getpid() - 5, os.getpid() + 50):
        (shared / f".out.spec.{pid}.tmp").symlink_to(victim)
    proc = quietly("patch", str(spec), "--set", "errata=73", "--output", str(shared / "out.spec"))
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "do not touch\n" and "%define errata 73" in (shared / "out.spec").read_text()


def test_spec_files_that_are_not_files(tmp_path):
    fifo = tmp_path / "x.spec"
    os.mkfifo(fifo)
    with within(10):
        one_line_error(quietly("patch", str(fifo), "--set", "a=b"), 2)
        one_line_error(quietly("patch", "/dev/zero", "--set", "a=b"), 2)
    big = tmp_path / "big.spec"
    big.write_bytes(b"%define errata 80\nName: x\n" + b"# filler\n" * (8 << 20))
    with within(10):
        one_line_error(quietly("patch", str(big), "--set", "errata=73"), 2)
    assert not (tmp_path / "big.spec.orig").exists()


def test_results_are_world_readable_files_not_0600(tmp_path):
    spec = tmp_path / "x.spec"
    spec.write_text("%define errata 80\nName: x\nVersion: 1\nRelease: 1.%{errata}\n%description\nx\n")
    spec.chmod(0o640)
    assert quietly("patch", str(spec), "--set", "errata=73").returncode == 0
    assert stat.S_IMODE(spec.stat().st_mode) == 0o640, "the spec keeps its mode"
