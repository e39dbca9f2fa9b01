"""rebuild diff on RPMs the host's rpmbuild makes from tests/data/evidence/variant.spec: variant 2 changes a
file, drops one and adds one, adds a Requires and links libm (one more NEEDED soname)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DATA, run_cli

SPEC = DATA / "evidence" / "variant.spec"


@pytest.fixture(scope="module")
def variants(tmp_path_factory) -> dict[int, Path]:
    top = tmp_path_factory.mktemp("variants")
    made = {}
    for v in (1, 2):
        proc = subprocess.run(["rpmbuild", "-bb", "--quiet", "--nodeps", "--define", f"_topdir {top / str(v)}",
                               "--define", f"_sourcedir {SPEC.parent}", "--define", f"variant {v}", str(SPEC)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        (made[v],) = (top / str(v) / "RPMS").rglob("variant-*.rpm")
    return made


def test_two_variants_differ_in_a_file_a_dependency_and_a_soname(variants):
    proc = run_cli("diff", str(variants[1]), str(variants[2]), "--json")
    assert proc.returncode == 1, proc.stderr
    (package,) = json.loads(proc.stdout)["packages"]
    changed = {c["path"]: c["what"] for c in package["changed"]}
    assert set(changed["/usr/share/variant/which"]) == {"digest"}, "same size, other content"
    assert "/usr/share/variant/common" not in changed
    assert "/usr/share/variant/new" in package["added"] and "/usr/share/variant/old" in package["removed"]
    assert "coreutils" in package["deps"]["requires"]["added"]
    assert any(r.startswith("libm.so.6") for r in package["deps"]["requires"]["added"]), "rpm's own find-requires"
    assert package["sonames"] == [{"path": "/usr/bin/variant", "added": ["libm.so.6"], "removed": []}]


def test_the_text_report_names_each_difference(variants):
    proc = run_cli("diff", str(variants[1]), str(variants[2]))
    assert proc.returncode == 1
    assert "~ /usr/share/variant/which: digest" in proc.stdout
    assert "+ requires: coreutils" in proc.stdout
    assert "~ /usr/bin/variant NEEDED: +libm.so.6" in proc.stdout


def test_a_package_is_the_same_as_itself(variants, tmp_path):
    copy = tmp_path / variants[1].name
    shutil.copy(variants[1], copy)
    proc = run_cli("diff", str(variants[1]), str(copy))
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.strip().endswith(": same")


def test_folders_are_matched_by_name_and_arch(variants, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "x86_64").mkdir(parents=True)
    b.mkdir()
    shutil.copy(variants[1], a / "x86_64")
    shutil.copy(variants[2], b)
    shutil.copy(DATA / "results" / "schema1-mailer" / "SRPMS" / "mailer-8.12.8-9.73.src.rpm", a)
    proc = run_cli("diff", str(a), str(b), "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert [p["a"] for p in report["packages"]] == ["variant-1.0-1.x86_64"]
    assert report["only_in_a"] == ["mailer.src"] and report["only_in_b"] == []


def test_not_an_rpm_is_one_line_and_exit_2(variants, tmp_path):
    bogus = tmp_path / "bogus.rpm"
    bogus.write_bytes(b"not an rpm at all" * 10)
    proc = run_cli("diff", str(variants[1]), str(bogus))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "bogus.rpm" in proc.stderr and "Traceback" not in proc.stderr
