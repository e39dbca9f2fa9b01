"""Preflight for 32-bit targets: each machine problem gets its own clear message."""

from __future__ import annotations

import dataclasses

import pytest

from rebuild.config.target import load_target
from rebuild.errors import BuildFailed
from rebuild.pipeline import steps
from tests.unit.fake_engine import FakeContainer


@pytest.fixture
def target():
    return dataclasses.replace(load_target("testroot"), personality="linux32", arch="i686", name="old")


def box(answers=None):
    return FakeContainer({("linux32", "uname", "-m"): (0, b"i686\n"), ("linux32", "rpm", "-qa"): (0, b"glibc\n"),
                          **(answers or {})})


def test_all_good(tmp_path, target):
    fake = box()
    steps.preflight(target, fake, tmp_path, "500:500")
    assert fake.ran[0] == ["linux32", "uname", "-m"]
    assert not list(tmp_path.iterdir()), "the inode probe is removed"


def test_personality_not_working(tmp_path, target):
    with pytest.raises(BuildFailed, match="kernel lacks 32-bit support"):
        steps.preflight(target, box({("linux32", "uname", "-m"): (0, b"x86_64\n")}), tmp_path, "u")


def test_no_ia32_emulation(tmp_path, target):
    with pytest.raises(BuildFailed, match="lacks IA32 emulation"):
        steps.preflight(target, box({("linux32", "rpm", "-qa"): (126, b"exec format error\n")}), tmp_path, "u")


def test_rpmdb_unreadable(tmp_path, target):
    fake = box({("linux32", "rpm", "-qa"): (1, b"error: cannot open Packages index using db3\n")})
    with pytest.raises(BuildFailed, match="cannot read its own rpmdb.*rebuild image old --force"):
        steps.preflight(target, fake, tmp_path, "u")


def test_no_rpm(tmp_path, target):
    with pytest.raises(BuildFailed, match="has no rpm"):
        steps.preflight(target, box({("linux32", "rpm", "-qa"): (127, b"")}), tmp_path, "u")


def test_inodes_above_2_32(tmp_path, target, monkeypatch):
    monkeypatch.setattr(steps, "inode", lambda path: 2**32 + 5)
    with pytest.raises(BuildFailed, match="inode numbers here exceed 2\\^32.*EOVERFLOW"):
        steps.preflight(target, box(), tmp_path, "u")
