"""rebuild patch --check: rpmspec reads the edited spec in a throwaway container, never on the host, where a
spec's %(...) would run its shell code as the user running rebuild."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.docker

HEAD = "Name: x\nVersion: 1\nRelease: 1\nSummary: x\nLicense: MIT\n"


def _spec(tmp_path, text: str, encoding: str = "utf-8"):
    path = tmp_path / "x.spec"
    path.write_bytes((HEAD + text).encode(encoding))
    return path


def test_check_reads_the_result_with_rpmspec_in_a_container(tmp_path, testroot):
    path = _spec(tmp_path, "%define errata 80\n%description\nx\n")
    proc = run_cli("patch", str(path), "--set", "errata=73", "--check")
    assert proc.returncode == 0, proc.stderr
    assert "check: x.spec parses (rpmspec in a testroot container)" in proc.stdout
    assert "check: %{errata} = '73'" in proc.stdout
    old = _spec(tmp_path, "%define errata 80\nCopyright: GPL\n%description\nx\n")
    proc = run_cli("patch", str(old), "--set", "errata=73", "--check")
    assert proc.returncode == 1 and "Unknown tag" in proc.stdout and "target's own rpm" in proc.stdout


def test_a_specs_shell_code_never_runs_on_the_host(tmp_path, testroot):
    marker = tmp_path / "ran-on-the-host"
    path = _spec(tmp_path, f"%define errata 80\n%global x %(touch {marker}; echo y)\n%description\nx\n")
    proc = run_cli("patch", str(path), "--set", "errata=73", "--check")
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), "rpmspec ran the spec's %(...) on the host"


def test_a_latin1_spec_is_checked_too(tmp_path, testroot):
    path = _spec(tmp_path, "%define errata 80\n%description\nCaf\xe9 na p\xe1gina\n", encoding="latin-1")
    proc = run_cli("patch", str(path), "--set", "errata=73", "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "check: %{errata} = '73'" in proc.stdout
