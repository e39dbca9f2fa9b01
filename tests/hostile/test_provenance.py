"""verify-provenance checks the files a statement is about where the folder records them: an untouched copy
of the same file name elsewhere under the folder must not vouch for a tampered one."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from rebuild.errors import UsageError
from rebuild.evidence.provenance import SLSA, STATEMENT, failures, verify
from tests.conftest import DATA

RPM = "RPMS/x86_64/mailer-8.12.8-9.73.x86_64.rpm"


def _statement(names_digests: list[tuple[str, str]]) -> str:
    return json.dumps({"_type": STATEMENT, "predicateType": SLSA,
                       "subject": [{"name": n, "digest": {"sha256": d}} for n, d in names_digests],
                       "predicate": {"buildDefinition": {"buildType": "x"}, "runDetails": {"builder": {"id": "x"}}}})


@pytest.fixture
def result(tmp_path):
    folder = tmp_path / "result"
    shutil.copytree(DATA / "results" / "schema1-mailer", folder)
    rpm = folder / RPM
    (folder / "provenance.json").write_text(_statement([(rpm.name, hashlib.sha256(rpm.read_bytes()).hexdigest())]))
    return folder


def test_a_tampered_rpm_is_caught_though_an_untouched_copy_lies_elsewhere(result):
    assert failures(verify(result)) is None
    (result / "aaa-copy").mkdir()
    shutil.copy(result / RPM, result / "aaa-copy" / (result / RPM).name)  # found first by a walk
    (result / RPM).write_bytes((result / RPM).read_bytes() + b"tampered")
    checks = verify(result)
    assert [c.status for c in checks] == ["mismatch"] and str(result / RPM) in checks[0].detail


def test_a_repository_listing_one_name_twice_is_refused(tmp_path):
    repo = tmp_path / "repo"
    (repo / "provenance").mkdir(parents=True)
    (repo / "provenance" / "x.intoto.json").write_text(_statement([("a-1-1.noarch.rpm", "0" * 64)]))
    (repo / "index.json").write_text(json.dumps({"packages": [{"file": "noarch/a-1-1.noarch.rpm"},
                                                              {"file": "x86_64/a-1-1.noarch.rpm"}]}))
    with pytest.raises(UsageError, match="listed twice"):
        verify(repo)
    (repo / "index.json").write_text(json.dumps({"packages": [{"file": "../../etc/passwd"}]}))
    with pytest.raises(UsageError, match="ARCH/NAME.rpm"):
        verify(repo)


def test_a_subject_name_with_a_newline_or_escape_cannot_forge_output_lines(result):
    from tests.conftest import run_cli

    (result / "provenance.json").write_text(_statement([("evil\nok        forged.rpm\x1b[2J", "0" * 64)]))
    proc = run_cli("verify-provenance", str(result))
    assert proc.returncode == 1
    assert proc.stdout.count("\n") == 1 and "\x1b" not in proc.stdout and "\\n" in proc.stdout
