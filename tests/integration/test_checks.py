"""Post-build checks in a fresh container: rebuild build and rebuild verify."""

from __future__ import annotations

import json

import pytest

from tests.conftest import copy_case, make_srpm, run_cli, write_recipe

pytestmark = pytest.mark.docker

CHECKS = """\
checks:
  - name: runs
    run: [/usr/bin/cprog]
    expect_stdout: "errata 8[0-9]"
  - name: fqdn
    run: [hostname, -f]
    expect_stdout: '^[a-z0-9-]+\\.[a-z]'
  - name: no-network
    run: [sh, -c, "test ! -e /sys/class/net/eth0"]
"""


def test_checks_pass_and_are_recorded_then_verify(tmp_path, testroot):
    srpm = make_srpm(copy_case("cprog", tmp_path) / "cprog.spec", tmp_path / "src")
    recipe = write_recipe(tmp_path, srpm, extra=CHECKS)
    out = tmp_path / "out"
    proc = run_cli("build", str(recipe), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result = out / "cprog-0.9.6b-32.80"
    checks = json.loads((result / "manifest.json").read_text())["checks"]
    assert [(c["name"], c["passed"]) for c in checks] == [("install", True), ("runs", True), ("fqdn", True),
                                                          ("no-network", True)]
    assert checks[1]["output"] == "cprog errata 80\n"
    verify = run_cli("verify", str(result))
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.split() == ["ok", "install", "ok", "runs", "ok", "fqdn", "ok", "no-network"]
    stricter = tmp_path / "stricter.yaml"
    stricter.write_text(recipe.read_text().replace("errata 8[0-9]", "errata 73"))
    verify = run_cli("verify", str(result), "--recipe", str(stricter))
    assert verify.returncode == 1
    assert "check runs failed" in verify.stderr and "cprog errata 80" in verify.stderr
    assert json.loads((result / "manifest.json").read_text())["checks"][1]["passed"] is False


def test_failed_check_fails_the_build_with_name_and_output(tmp_path, testroot):
    srpm = make_srpm(copy_case("cprog", tmp_path) / "cprog.spec", tmp_path / "src")
    recipe = write_recipe(tmp_path, srpm, extra=(
        "checks:\n  - name: starttls-compiled-in\n    run: [/usr/bin/cprog]\n    expect_stdout: STARTTLS\n"))
    out = tmp_path / "out"
    proc = run_cli("build", str(recipe), "--out", str(out))
    assert proc.returncode == 1, proc.stderr
    assert "check starttls-compiled-in failed" in proc.stderr
    assert "cprog errata 80" in proc.stderr, "the check's output is shown"
    failed = out / "cprog-0.9.6b-32.80.failed"
    assert sorted(p.name for p in out.iterdir() if p.name != ".index") == [failed.name]
    manifest = json.loads((failed / "manifest.json").read_text())
    assert manifest["checks"][1] == {"name": "starttls-compiled-in", "passed": False, "exit_code": 0,
                                     "output": "cprog errata 80\n"}
    assert (failed / "RPMS" / "x86_64" / "cprog-0.9.6b-32.80.x86_64.rpm").is_file()


def test_install_failure_is_a_failed_check(tmp_path, testroot):
    case = copy_case("noarch", tmp_path)
    spec = case / "greeting.spec"
    # testroot installs with --nodeps, so break the install with a %pre scriptlet that fails
    spec.write_text(spec.read_text().replace("%install", "%pre\necho pre refuses >&2\nexit 1\n\n%install"))
    recipe = write_recipe(tmp_path, make_srpm(spec, tmp_path / "src"), extra="checks:\n  - name: trivial\n    run: [/bin/true]\n")
    proc = run_cli("build", str(recipe), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stderr
    assert "check install failed" in proc.stderr and "pre refuses" in proc.stderr
