"""`make demo` as a person runs it, and its result published and consumed like a package manager would."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rebuild.systems.rpmfile import read_info
from tests.conftest import ROOT, run_cli
from tests.integration.test_publish import consume

pytestmark = pytest.mark.docker


def test_make_demo_prints_rpms_built_for_errata_73_and_publishes(tmp_path, testroot):
    out = tmp_path / "artifacts"
    proc = subprocess.run(["make", "-s", "demo", f"OUT={out}"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    printed = [Path(line) for line in proc.stdout.splitlines() if line.startswith(str(out))]
    rpms = [p for p in printed if p.suffix == ".rpm"]
    assert {p.name for p in rpms} == {"hello-1.0-1.73.x86_64.rpm", "hello-1.0-1.73.src.rpm"}
    assert all(read_info(p).release.endswith(".73") for p in rpms)
    assert out / "hello-1.0-1.73" / "manifest.json" in printed
    repo = tmp_path / "repo"
    published = run_cli("publish", str(out / "hello-1.0-1.73"), "--repo", str(repo))
    assert published.returncode == 0, published.stderr
    assert set(consume(repo)) == {"x86_64/hello-1.0-1.73.x86_64.rpm", "SRPMS/hello-1.0-1.73.src.rpm"}
