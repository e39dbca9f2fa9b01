"""No-op rebuilds, corrupted caches, concurrent and parallel builds, on the real engine."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, cli_process, copy_case, make_srpm, run_cli, write_recipe

pytestmark = pytest.mark.docker


@pytest.fixture
def greeting(tmp_path, testroot):
    srpm = make_srpm(copy_case("noarch", tmp_path) / "greeting.spec", tmp_path / "src")
    return write_recipe(tmp_path, srpm)


def test_second_build_is_up_to_date_and_force_rebuilds(tmp_path, greeting):
    out = tmp_path / "out"
    first = run_cli("build", str(greeting), "--out", str(out))
    assert first.returncode == 0, first.stderr
    manifest = out / "greeting-2.1-3" / "manifest.json"
    built_at = manifest.stat().st_mtime_ns
    second = run_cli("build", str(greeting), "--out", str(out))
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stderr
    assert "docker create" not in second.stderr
    assert second.stdout == first.stdout
    assert manifest.stat().st_mtime_ns == built_at
    forced = run_cli("build", str(greeting), "--out", str(out), "--force")
    assert forced.returncode == 0 and "up to date" not in forced.stderr
    assert manifest.stat().st_mtime_ns != built_at


def test_changed_edit_invalidates(tmp_path, testroot):
    srpm = make_srpm(copy_case("cprog", tmp_path) / "cprog.spec", tmp_path / "src")
    recipe = write_recipe(tmp_path, srpm, extra='spec:\n  macros:\n    errata: "73"\n')
    out = tmp_path / "out"
    assert run_cli("build", str(recipe), "--out", str(out)).returncode == 0
    recipe.write_text(recipe.read_text().replace('"73"', '"72"'))
    proc = run_cli("build", str(recipe), "--out", str(out))
    assert proc.returncode == 0 and "up to date" not in proc.stderr
    assert (out / "cprog-0.9.6b-32.72").is_dir() and (out / "cprog-0.9.6b-32.73").is_dir()


def test_corrupted_cached_file_triggers_rebuild(tmp_path, greeting):
    out = tmp_path / "out"
    assert run_cli("build", str(greeting), "--out", str(out)).returncode == 0
    rpm = out / "greeting-2.1-3" / "RPMS" / "noarch" / "greeting-2.1-3.noarch.rpm"
    good = rpm.read_bytes()
    rpm.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    proc = run_cli("build", str(greeting), "--out", str(out))
    assert proc.returncode == 0 and "up to date" not in proc.stderr
    manifest = json.loads((out / "greeting-2.1-3" / "manifest.json").read_text())
    from rebuild.files import sha256_file

    assert all(sha256_file(out / "greeting-2.1-3" / o["file"]) == o["sha256"] for o in manifest["outputs"])


def test_two_concurrent_builds_of_one_recipe_leave_one_intact_result(tmp_path, greeting, new_containers):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "rebuild", "-q", "build", str(greeting), "--out", str(out), "--force"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == [".index", "greeting-2.1-3"]
    proc = run_cli("build", str(greeting), "--out", str(out))
    assert "up to date" in proc.stderr, "the index and the stored result agree"
    assert new_containers() == set()


def test_parallel_builds_one_failure_does_not_stop_others(tmp_path, testroot, new_containers):
    recipes = []
    for case, spec in (("noarch", "greeting.spec"), ("failing", "failing.spec"), ("cprog", "cprog.spec")):
        srpm = make_srpm(copy_case(case, tmp_path) / spec, tmp_path / f"src-{case}")
        recipes.append(str(write_recipe(tmp_path, srpm)))
    out = tmp_path / "out"
    start = time.monotonic()
    proc = run_cli("build", *recipes, "--out", str(out), "--jobs", "2")
    assert proc.returncode == 10, proc.stderr
    assert time.monotonic() - start < 120
    table = proc.stderr[proc.stderr.index("RECIPE"):].splitlines()
    assert table[0].split() == ["RECIPE", "RESULT", "SECONDS", "HOW"]
    rows = {line.split()[0]: line for line in table[1:4]}
    assert "greeting-2.1-3" in rows["greeting"] and "built" in rows["greeting"]
    assert "FAILED (exit 10)" in rows["failing"]
    assert "cprog-0.9.6b-32.80" in rows["cprog"]
    assert table[4] == "3 recipes: 2 ok, 1 failed"
    assert "[failing] " in proc.stderr, "each line of a parallel build says which build"
    again = run_cli("build", recipes[0], recipes[2], "--out", str(out), "--jobs", "2")
    assert again.returncode == 0
    assert again.stderr.count("cached") == 2
    assert new_containers() == set()


def test_ctrl_c_stops_all_parallel_builds(tmp_path, testroot, new_containers):
    import signal

    recipes = []
    for n in (1, 2):
        case = copy_case("slow", tmp_path / f"c{n}")
        spec = case / "slow.spec"
        spec.write_text(spec.read_text().replace("Name: slow", f"Name: slow{n}"))
        srpm = make_srpm(spec, tmp_path / f"src{n}")
        recipes.append(str(write_recipe(tmp_path, srpm)))
    out = tmp_path / "out"
    with cli_process("build", *recipes, "--out", str(out), "--jobs", "2") as proc:
        deadline = time.monotonic() + 60
        while len(new_containers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(new_containers()) == 2
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert new_containers() == set()
    assert not [p for p in out.iterdir() if not p.name.endswith(".failed") and p.name != ".index"]
