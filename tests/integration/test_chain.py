"""Chain builds on real roots: three SRPMs that need each other's RPMs built in three waves by rpm 4.0.4 on
i686-test (and by rpm 4.18 on testroot, whose root has no solved lock), the chain's packages named in the
lock, SBOM and provenance; the last one alone refused; a cycle reported and broken; a failure mid-chain;
the waves as `plan --chain` prints them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rebuild.systems.rpmfile import payload
from tests.conftest import DATA, ROOT, make_srpm, run_cli, write_recipe

pytestmark = pytest.mark.docker

CHAIN = DATA / "chain"


def _srpms(image: str, tmp_path: Path, names: list[str]) -> Path:
    """The specs packed by the image's rpm 4.0.4 into one folder of SRPMs."""
    from tests.i686tree import make_srpm_in

    folder = tmp_path / "srpms"
    folder.mkdir(exist_ok=True)
    for name in names:
        made = make_srpm_in(image, CHAIN / f"{name}.spec", tmp_path / f"pack-{name}")
        shutil.copy(made, folder / made.name)
    return folder


def _chain_packages(result: Path) -> dict:
    manifest = json.loads((result / "manifest.json").read_text())
    lock = {p["name"]: p for p in manifest["root"]["lock"]["packages"] if p["origin"] == "chain"}
    sbom = json.loads((result / "sbom.spdx.json").read_text())
    in_sbom = {p["name"] for p in sbom["packages"] if "built earlier in this chain build" in p.get("comment", "")}
    provenance = json.loads((result / "provenance.json").read_text())
    in_provenance = {d["name"] for d in provenance["predicate"]["buildDefinition"]["resolvedDependencies"]
                     if d.get("annotations", {}).get("origin") == "chain"}
    return {"lock": lock, "sbom": in_sbom, "provenance": in_provenance, "manifest": manifest}


def test_three_srpms_build_in_three_waves_on_i686_and_the_last_alone_is_refused(i686, tmp_path):
    home, env, tree, image = i686
    srpms = _srpms(image, tmp_path, ["chainc", "chainb", "chaina"])
    out = tmp_path / "out"

    alone = run_cli("build", str(srpms / "chainc-1.0-1.src.rpm"), "--target", "i686-test", "--out", str(out), env=env)
    assert alone.returncode == 2, alone.stderr
    assert "nothing provides requested chainb-devel >= 1.5" in alone.stderr and "--chain" in alone.stderr
    assert not (out / "chainc-1.0-1").exists()

    built = run_cli("build", "--chain", *sorted(map(str, srpms.glob("*.src.rpm"))), "--target", "i686-test",
                    "--out", str(out), "--jobs", "2", env=env, timeout=1200)
    assert built.returncode == 0, built.stderr
    assert "wave 1: chaina\n" in built.stderr
    assert "wave 2: chainb (needs chaina: chaina-devel >= 2.0)" in built.stderr
    assert "wave 3: chainc (needs chainb: chainb-devel >= 1.5)" in built.stderr
    c = _chain_packages(out / "chainc-1.0-1")
    assert set(c["lock"]) == {"chaina", "chaina-devel", "chainb", "chainb-devel"}
    assert c["sbom"] == set(c["lock"])
    assert c["provenance"] == {p["filename"] for p in c["lock"].values()}
    b_rpms = {o["file"].rsplit("/", 1)[-1]: o["sha256"] for o in
              json.loads((out / "chainb-1.5-1" / "manifest.json").read_text())["outputs"]}
    assert c["lock"]["chainb-devel"]["sha256"] == b_rpms[c["lock"]["chainb-devel"]["filename"]], \
        "the lock names the very RPM wave 2 built"
    assert c["manifest"]["root"]["lock"]["trees"]["chain"].startswith(str(out / ".chain"))
    assert "extra_trees" in c["manifest"]["build_key_inputs"]
    requires = subprocess.run(["rpm", "-qp", "--requires", str(out / "chainc-1.0-1" / "RPMS" / "i386" /
                                                           "chainc-1.0-1.i386.rpm")], capture_output=True, text=True)
    assert "libchainb.so.1" in requires.stdout, "rpm 4.0.4 linked chainc against the chain's chainb"
    a = json.loads((out / "chaina-2.0-1" / "manifest.json").read_text())
    assert "extra_trees" not in a["build_key_inputs"], "wave 1 builds against the target's own trees"

    suggested = run_cli("floors", "suggest", str(out / "chainc-1.0-1"), "--output", str(tmp_path / "floors.yaml"),
                        env=env)
    assert suggested.returncode == 0, suggested.stderr
    floors = (tmp_path / "floors.yaml").read_text()
    assert 'chainb-devel: "1.5-1"  # BuildRequires' in floors
    assert 'chaina: "2.0-1"  # required by chainc: libchaina.so.2' in floors and "\n  glibc: " in floors
    layer = c["manifest"]["root"]["image_id"]
    met = run_cli("check-deps", "--manifest", str(tmp_path / "floors.yaml"), "--image", layer, "--json", env=env)
    assert met.returncode == 0 and all(r["status"] == "ok" for r in json.loads(met.stdout)), met.stdout + met.stderr
    base = run_cli("check-deps", "--manifest", str(tmp_path / "floors.yaml"), "--target", "i686-test", "--json",
                   env=env)
    assert base.returncode == 1, "the target's own image lacks what the chain built"
    assert {r["name"] for r in json.loads(base.stdout) if r["status"] == "missing"} == {"chaina", "chainb",
                                                                                          "chainb-devel"}

    again = run_cli("build", "--chain", *map(str, srpms.glob("*.src.rpm")), "--target", "i686-test",
                    "--out", str(out), env=env)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("up to date:") == 3, again.stderr


def test_a_cycle_is_reported_with_the_edge_that_closes_it_and_break_builds_it(i686, tmp_path):
    home, env, tree, image = i686
    srpms = _srpms(image, tmp_path, ["cyctool", "cycz"])
    out = tmp_path / "out"
    args = ["build", "--chain", *sorted(map(str, srpms.glob("*.src.rpm"))), "--target", "i686-test", "--out", str(out)]
    cycle = run_cli(*args, env=env)
    assert cycle.returncode == 2, cycle.stderr
    assert "the chain has a cycle: cyctool -> cycz -> cyctool" in cycle.stderr
    assert "cycz needs cyctool (cyctool)" in cycle.stderr and "--break cyctool" in cycle.stderr
    broken = run_cli(*args, "--break", "cyctool", env=env, timeout=900)
    assert broken.returncode == 0, broken.stderr
    assert "wave 1: cyctool\n" in broken.stderr and "wave 2: cycz (needs cyctool: cyctool)" in broken.stderr
    z = _chain_packages(out / "cycz-9.9-1")
    assert set(z["lock"]) == {"cyctool"}
    tool = json.loads((out / "cyctool-1.0-1" / "manifest.json").read_text())
    assert not [p for p in tool["root"]["lock"]["packages"] if p["origin"] == "chain"], \
        "the broken member built against the target's own zlib-devel"


def test_a_failure_mid_chain_stops_the_members_that_need_it_and_names_them(i686, tmp_path):
    home, env, tree, image = i686
    srpms = _srpms(image, tmp_path, ["chaina", "chainb", "chainc", "cyctool"])
    specs = tmp_path / "specs"
    specs.mkdir()
    recipes = [write_recipe(specs, srpms / "chaina-2.0-1.src.rpm", target="i686-test",
                            extra="spec:\n  buildrequires:\n    add: [no-such-thing-1999]\n"),
               write_recipe(specs, srpms / "chainb-1.5-1.src.rpm", target="i686-test"),
               write_recipe(specs, srpms / "chainc-1.0-1.src.rpm", target="i686-test"),
               write_recipe(specs, srpms / "cyctool-1.0-1.src.rpm", target="i686-test")]
    out = tmp_path / "out"
    proc = run_cli("build", "--chain", *map(str, recipes), "--out", str(out), env=env, timeout=900)
    assert proc.returncode == 10, proc.stderr
    assert "no-such-thing-1999" in proc.stderr
    assert "1 of 4 builds failed: chaina; not built, as they need what failed: chainb, chainc" in proc.stderr
    assert "NOT BUILT: it needs chainb, which did not build" in proc.stderr
    assert (out / "cyctool-1.0-1" / "manifest.json").is_file(), "an independent member still builds"
    assert not (out / "chainb-1.5-1").exists() and not (out / "chainc-1.0-1").exists()


def test_a_chain_on_testroot_installs_the_chains_packages_into_a_root_without_a_lock(testroot, tmp_path):
    srpms = [make_srpm(CHAIN / f"{name}.spec", tmp_path / name) for name in ("chaina", "chainb", "chainc")]
    out = tmp_path / "out"
    proc = run_cli("build", "--chain", *map(str, srpms), "--target", "testroot", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    c = _chain_packages(out / "chainc-1.0-1")
    assert set(c["lock"]) == {"chaina", "chaina-devel", "chainb", "chainb-devel"}
    assert c["manifest"]["root"]["partial"] is True
    sbom = json.loads((out / "chainc-1.0-1" / "sbom.spdx.json").read_text())
    assert {"chaina", "rpm", "gcc"} <= {p["name"] for p in sbom["packages"]}, "the chain's lock and the root's rpm -qa"


def test_plan_backport_finds_what_a_tree_of_srpms_must_supply_and_names_what_none_does(i686, tmp_path):
    home, env, tree, image = i686
    srpms = _srpms(image, tmp_path, ["chaina", "chainb", "chainc", "cyctool"])
    newer = tmp_path / "newer"
    newer.mkdir()
    for name in ("chaina-2.0-1", "chainb-1.5-1", "cyctool-1.0-1"):
        shutil.copy(srpms / f"{name}.src.rpm", newer)
    wanted = srpms / "chainc-1.0-1.src.rpm"
    proc = run_cli("plan", "--backport", str(wanted), "--from", str(newer), "--target", "i686-test", env=env)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert [(u["capability"], u["needed_by"], u["provided_by"]) for u in found["unmet"]] == [
        ("chainb-devel >= 1.5", "chainc", "chainb-1.5-1.src.rpm"),
        ("chaina-devel >= 2.0", "chainb", "chaina-2.0-1.src.rpm")]
    assert [[Path(p).name for p in wave] for wave in found["waves"]] == [
        ["chaina-2.0-1.src.rpm"], ["chainb-1.5-1.src.rpm"], ["chainc-1.0-1.src.rpm"]], "cyctool is not needed"
    (newer / "chaina-2.0-1.src.rpm").unlink()
    short = run_cli("plan", "--backport", str(wanted), "--from", str(newer), "--target", "i686-test", env=env)
    assert short.returncode == 1, short.stderr
    assert json.loads(short.stdout)["unresolved"] == ["chaina-devel >= 2.0"]
    assert "chainb needs chaina-devel >= 2.0: i686-test's trees cannot meet it; UNRESOLVED" in short.stderr


def test_the_shell_plan_of_a_chain_builds_it_wave_by_wave_with_the_earlier_waves_results(i686, tmp_path):
    home, env, tree, image = i686
    srpms = _srpms(image, tmp_path, ["chaina", "chainb", "chainc"])
    plan = run_cli("plan", "--chain", *map(str, srpms.glob("*.src.rpm")), "--target", "i686-test", "--format",
                   "shell", env=env)
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    assert len(lines) == 3 and "--with-rpms artifacts/wave-1 --with-rpms artifacts/wave-2" in lines[2]
    work = tmp_path / "ci"
    work.mkdir()
    script = "\n".join(line.replace("rebuild build", f"{sys.executable} -m rebuild build", 1) for line in lines)
    ran = subprocess.run(["sh", "-e", "-c", script], cwd=work, capture_output=True, text=True,
                         env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, timeout=900)
    assert ran.returncode == 0, ran.stderr
    c = _chain_packages(work / "artifacts" / "wave-3" / "chainc-1.0-1")
    assert set(c["lock"]) == {"chaina", "chaina-devel", "chainb", "chainb-devel"}


def test_a_real_1999_library_srpm_chains_into_a_program_that_needs_its_version(i686, tmp_path):
    """../shared/era-srpms' gdbm 1.7.3 (built bare by rpm 4.0.4) is the only maker of gdbm-devel = 1.7.3: the
    tree has Debian's newer one. Its -devel Requires info (for install-info in %post), which the tree lacks:
    a stand-in info SRPM joins the chain, as a user's would."""
    from tests.i686tree import ERA_SRPMS

    if not (ERA_SRPMS / "gdbm-1.7.3-22cl.src.rpm").is_file():
        pytest.skip(f"{ERA_SRPMS} is absent (set REBUILD_TEST_ERA_SRPMS to the era-srpms folder)")
    home, env, tree, image = i686
    srpms = _srpms(image, tmp_path, ["needsgdbm173", "info"])
    shutil.copy(ERA_SRPMS / "gdbm-1.7.3-22cl.src.rpm", srpms)
    out = tmp_path / "out"
    without_info = run_cli("build", "--chain", str(srpms / "gdbm-1.7.3-22cl.src.rpm"),
                           str(srpms / "needsgdbm173-1.0-1.src.rpm"), "--target", "i686-test", "--out", str(out),
                           env=env, timeout=900)
    assert without_info.returncode == 10, without_info.stderr
    assert "wave 2: needsgdbm173 (needs gdbm: gdbm-devel = 1.7.3)" in without_info.stderr
    assert "nothing provides info needed by gdbm-devel-1.7.3-22cl" in without_info.stderr
    built = run_cli("build", "--chain", *map(str, srpms.glob("*.src.rpm")), "--target", "i686-test",
                    "--out", str(out), env=env, timeout=900)
    assert built.returncode == 0, built.stderr
    assert "up to date: " in built.stderr, "gdbm, built in the first run, is not built again"
    result = out / "needsgdbm173-1.0-1"
    assert set(_chain_packages(result)["lock"]) == {"gdbm-devel", "info"}
    (rpm,) = (result / "RPMS" / "i386").glob("*.rpm")
    assert payload(rpm)["/usr/share/needsgdbm173/built-with"].startswith(b"gdbm-devel-1.7.3-22cl")
