"""publish takes result folders from CI jobs and holds the signing key: it never takes a path from
manifest.json, never publishes a link or a file from outside the result folder, never forges SHA256SUMS
lines, and never converts a folder that is not a repository."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import DATA
from tests.hostile.conftest import one_line_error, quietly, tree_snapshot

OLD = DATA / "results" / "schema1-mailer"
RPM = "RPMS/x86_64/mailer-8.12.8-9.73.x86_64.rpm"


@pytest.fixture
def result(tmp_path) -> Path:
    dest = tmp_path / "result"
    shutil.copytree(OLD, dest)
    return dest


@pytest.fixture
def outside(tmp_path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret").write_text("root:$6$secret\n")
    return folder


def _edit(result: Path, change) -> None:
    data = json.loads((result / "manifest.json").read_text())
    change(data)
    (result / "manifest.json").write_text(json.dumps(data))


def _published(tmp_path: Path, result: Path, *extra: str):
    return quietly("publish", str(result), "--repo", str(tmp_path / "repo"), *extra)


@pytest.mark.parametrize("field, value", [
    ("file", "../../outside/authorized_keys"), ("file", "/root/.ssh/authorized_keys"),
    ("file", "RPMS/../../../outside/x.rpm"), ("arch", "../../outside"), ("arch", "x86_64\nffff  forged"),
    ("name", "mailer/../../x"),
])
def test_paths_from_the_manifest_are_refused(tmp_path, result, outside, field, value):
    _edit(result, lambda d: d["outputs"][0].update({field: value}))
    before = tree_snapshot(tmp_path)
    proc = _published(tmp_path, result)
    one_line_error(proc, 2)
    assert tree_snapshot(tmp_path) == before, "nothing written anywhere"


def test_a_symlinked_rpm_to_a_host_file_is_refused(tmp_path, result, outside):
    rpm = result / RPM
    rpm.unlink()
    rpm.symlink_to(outside / "secret")
    data = (outside / "secret").read_bytes()
    _edit(result, lambda d: d["outputs"][0].update(size=len(data), sha256=hashlib.sha256(data).hexdigest()))
    proc = _published(tmp_path, result)
    one_line_error(proc, 1)
    assert "not a regular file" in proc.stderr and not (tmp_path / "repo").exists()


def test_a_symlinked_folder_is_refused(tmp_path, result, outside):
    shutil.move(result / "RPMS", outside / "RPMS")
    os.symlink(outside / "RPMS", result / "RPMS")
    one_line_error(_published(tmp_path, result), 1)


def test_the_header_decides_the_name_not_the_manifest(tmp_path, result):
    _edit(result, lambda d: d["outputs"][0].update(nevra="other-1-1.x86_64", name="other"))
    proc = _published(tmp_path, result)
    one_line_error(proc, 1)
    assert "by its header" in proc.stderr


@pytest.mark.parametrize("flag, value", [("--sign-key", "%(touch /tmp/rebuild-owned)"), ("--sign-key", "a\nb"),
                                         ("--gpg-home", "/tmp/%{?x}")])
def test_signing_arguments_cannot_reach_the_macro_file(tmp_path, result, flag, value):
    proc = _published(tmp_path, result, flag, value)
    one_line_error(proc, 2)
    assert not Path("/tmp/rebuild-owned").exists()


def test_a_folder_that_is_not_a_repository_is_not_converted(tmp_path, result):
    ssh = tmp_path / "dotssh"
    ssh.mkdir(mode=0o700)
    (ssh / "authorized_keys").write_text("ssh-ed25519 AAAA key\n")
    (ssh / "id_link").symlink_to("/etc/hostname")
    before = tree_snapshot(ssh)
    proc = quietly("publish", str(result), "--repo", str(ssh))
    one_line_error(proc, 2)
    assert "--adopt" in proc.stderr and tree_snapshot(ssh) == before


@pytest.mark.parametrize("index", ['[1, 2]', '{"packages": "x"}', '{"packages": [{"nevra": 1}]}',
                                   '{"packages": [{"nevra": "a", "file": "../../etc/passwd", "built_sha256": "x"}]}',
                                   'not json'])
def test_a_damaged_index_is_one_clear_error(tmp_path, result, index):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "index.json").write_text(index)
    proc = quietly("publish", str(result), "--repo", str(repo))
    one_line_error(proc, 2)
    assert "index.json" in proc.stderr


def test_verify_refuses_the_same_folders(tmp_path, result):
    _edit(result, lambda d: d.update(outputs="RPMS"))
    one_line_error(quietly("verify", str(result)), 2)
