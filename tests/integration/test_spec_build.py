"""The errata edit through a real build: Release, the branch taken, spec.diff, the check."""

from __future__ import annotations

import json

import pytest

from rebuild.systems.rpmfile import payload, read_info
from tests.conftest import copy_case, make_srpm, run_cli, write_recipe

pytestmark = pytest.mark.docker

EDIT = """\
spec:
  macros:
    errata: "73"
"""


def test_rh_style_spec_builds_the_73_branch(tmp_path, testroot):
    srpm = make_srpm(copy_case("rhstyle", tmp_path) / "mailer.spec", tmp_path / "src")
    assert srpm.name == "mailer-8.12.8-9.80.src.rpm"
    recipe = write_recipe(tmp_path, srpm, extra=EDIT)
    out = tmp_path / "out"
    proc = run_cli("build", str(recipe), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result = out / "mailer-8.12.8-9.73"
    rpm = result / "RPMS" / "x86_64" / "mailer-8.12.8-9.73.x86_64.rpm"
    assert read_info(rpm).release == "9.73"
    files = payload(rpm)
    assert files["/usr/share/mailer/branch.txt"] == b"errata=73 branch=rh73\n"
    diff = (result / "spec.diff").read_text()
    assert "-%define errata 80\n+%define errata 73\n" in diff
    manifest = json.loads((result / "manifest.json").read_text())
    spec = manifest["spec"]
    assert spec["edits"]["macros"] == {"errata": "73"}
    assert (spec["release_before"], spec["release_after"]) == ("9.80", "9.73")
    assert any(br.startswith("db3-devel") for br in spec["buildrequires_after"])
    assert not any(br.startswith("db4-devel") for br in spec["buildrequires_after"])
    srpm_out = read_info(result / "SRPMS" / "mailer-8.12.8-9.73.src.rpm")
    assert srpm_out.release == "9.73"


def test_edit_overridden_later_in_the_spec_fails_clearly(tmp_path, testroot):
    case = copy_case("rhstyle", tmp_path)
    spec = case / "mailer.spec"
    spec.write_text(spec.read_text().replace("%define smshell /bin/sh\n", "%{expand:%%global errata 80}\n"))
    srpm = make_srpm(spec, tmp_path / "src")
    recipe = write_recipe(tmp_path, srpm, extra=EDIT)
    proc = run_cli("build", str(recipe), "--out", str(tmp_path / "out"))
    assert proc.returncode == 10, proc.stderr
    assert "Release is still 9.80 after editing errata" in proc.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["mailer-8.12.8-9.80.failed"]


def test_release_suffix_and_missing_macro(tmp_path, testroot):
    srpm = make_srpm(copy_case("rhstyle", tmp_path) / "mailer.spec", tmp_path / "src")
    recipe = write_recipe(tmp_path, srpm, extra=EDIT + "  release_suffix: .rb1\n")
    proc = run_cli("build", str(recipe), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "mailer-8.12.8-9.73.rb1").is_dir()
    bad = write_recipe(tmp_path, srpm, name="mailer2", extra='spec:\n  macros:\n    erratum: "73"\n')
    bad.write_text(bad.read_text().replace("name: mailer2", "name: mailer"))
    proc = run_cli("build", str(bad), "--out", str(tmp_path / "out2"))
    assert proc.returncode == 2, proc.stderr
    assert "macro 'erratum' has no %define or %global to change" in proc.stderr
