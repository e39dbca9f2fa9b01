"""rebuild doctor: each finding with its fix; a missing tool and a refused personality fail it (exit 3)."""

from __future__ import annotations

import json
import os
import shutil
import sys

from rebuild.config.target import load_target
from rebuild.doctor import FAIL, OK, check_targets, check_tools, diagnose
from rebuild.errors import EnvironmentProblem
from rebuild.roots.pins import Pin, write_pin
from rebuild.settings import Settings
from rebuild.systems.engine import START_ENGINE_HINT
from tests.conftest import ROOT, run_cli
from tests.unit.fake_engine import FakeEngine


def test_a_refused_personality_in_a_32bit_image(tmp_path):
    settings = Settings(home=ROOT, cache=tmp_path / "cache")
    target = load_target("rh73")
    write_pin(Pin("rh73", target.tag, "sha256:old", target.image_key, "x"), target, settings.cache)
    engine = FakeEngine(images={target.tag: "sha256:old"},
                        answers={("linux32", "uname", "-m"): (0, b"x86_64\n")})
    findings = {f.check: f for f in check_targets(engine, settings)}
    assert findings["image rh73"].status == OK
    refused = findings["32-bit personality (rh73)"]
    assert refused.status == FAIL and "refused" in refused.detail and "seccomp" in refused.fix
    engine.answers[("linux32", "uname", "-m")] = (126, b"exec format error\n")
    assert "IA32" in {f.check: f for f in check_targets(engine, settings)}["32-bit personality (rh73)"].fix


def test_no_engine_and_a_missing_tool(tmp_path, monkeypatch):
    engine = FakeEngine(missing=EnvironmentProblem(f"Docker engine not reachable at unix:///x; {START_ENGINE_HINT}"))
    findings = diagnose(engine, Settings(home=ROOT, cache=tmp_path / "cache"), tmp_path / "out")
    engine_row = findings[0]
    assert engine_row.check == "container engine" and engine_row.status == FAIL and "dockerd" in engine_row.fix
    assert engine_row.detail == "Docker engine not reachable at unix:///x"
    engine = FakeEngine(missing=EnvironmentProblem("DOCKER_HOST=ssh://b: an ssh:// engine needs rebuild's ssh extra"
                                                   " (paramiko); pipx install 'rebuild[ssh]'"))
    engine_row = diagnose(engine, Settings(home=ROOT, cache=tmp_path / "cache"), tmp_path / "out")[0]
    assert engine_row.fix == "pipx install 'rebuild[ssh]'", "the engine's own remedy, not how to start one"
    monkeypatch.setenv("PATH", str(tmp_path))
    tools = {f.check: f for f in check_tools()}
    assert tools["tool createrepo_c"].status == FAIL and tools["tool createrepo_c"].fix == "apt-get install createrepo-c"


def test_cli_exit_code_and_json(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("rpm", "rpmbuild", "rpmkeys", "rpmsign", "gpg", "tar", "cc", "setarch", "uname"):
        found = shutil.which(tool)
        if found:
            os.symlink(found, bin_dir / tool)
    env = {"PATH": f"{bin_dir}:{os.path.dirname(sys.executable)}", "REBUILD_CACHE": str(tmp_path / "cache"),
           "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    proc = run_cli("doctor", "--out", str(tmp_path / "out"), "--json", env=env)
    assert proc.returncode == 3
    rows = {r["check"]: r for r in json.loads(proc.stdout)}
    assert rows["tool debootstrap"]["status"] == FAIL and rows["tool debootstrap"]["fix"] == "apt-get install debootstrap"
    assert rows["container engine"]["status"] == FAIL
    assert rows["tool rpm"]["status"] == OK and rows["output inodes"]["status"] == OK
    assert rows["32-bit programs"]["status"] == OK, "this host runs i386 programs"
