"""build() with the fake engine: the phases in order, the failure paths, and what lands in the result.

The RPMs are real (made by the host's rpmbuild); only the container is fake: its ``rpm -i`` writes
the spec into the mounted work tree and its ``rpmbuild -ba`` puts the prebuilt RPMs there."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from rebuild.config.recipe import load_recipe
from rebuild.config.target import load_target
from rebuild.errors import BuildFailed, CheckFailed, EnvironmentProblem
from rebuild.log import Log
from rebuild.pipeline.build import build
from rebuild.pipeline.inputs import BuildOptions, resolve
from rebuild.pipeline.result import ResultDir
from rebuild.roots.pins import Pin, write_pin
from rebuild.settings import Settings
from tests.unit.fake_engine import FakeEngine

SPEC = """\
%define errata 80
Summary: greeting
Name: greeting
Version: 2.1
Release: 3.%{errata}
License: MIT
BuildArch: noarch
%description
x
%install
mkdir -p %{buildroot}/usr/share/greeting
echo %{errata} > %{buildroot}/usr/share/greeting/errata
%files
/usr/share/greeting/errata
"""


def _rpmbuild(spec_text: str, top: Path, mode: str) -> None:
    top.mkdir(parents=True, exist_ok=True)
    spec = top / "greeting.spec"
    spec.write_text(spec_text)
    subprocess.run(["rpmbuild", mode, "--quiet", "--define", f"_topdir {top}", str(spec)], check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """The errata-80 SRPM the recipe names, and the errata-73 RPMs the fake rpmbuild 'builds'."""
    base = tmp_path_factory.mktemp("pkgs")
    _rpmbuild(SPEC, base / "80", "-bs")
    _rpmbuild(SPEC.replace("%define errata 80", "%define errata 73"), base / "73", "-ba")
    return next((base / "80" / "SRPMS").glob("*.rpm")), base / "73"


@pytest.fixture
def setup(tmp_path, packages):
    srpm, built = packages
    settings = Settings(home=Path(__file__).parents[2], cache=tmp_path / "cache")
    target = load_target("testroot")
    write_pin(Pin(target.name, target.tag, "sha256:pinned", target.image_key, "x"), target, settings.cache)
    floors = tmp_path / "floors.yaml"
    floors.write_text("floors:\n  rpm: '4.18'\n")
    recipe = tmp_path / "greeting.yaml"
    recipe.write_text(f"name: greeting\nsource:\n  srpm: {srpm.name}\n  urls: ['{srpm.as_uri()}']\n"
                      "spec:\n  macros:\n    errata: '73'\ntarget: testroot\nfloors: floors.yaml\n"
                      "checks:\n  - name: says-73\n    run: [cat, /usr/share/greeting/errata]\n    expect_stdout: '73'\n")

    def shell(argv, mounts):
        script = argv[2]
        if "rpm -i" in script:  # the SRPM installed and the tools probed, in one exec
            (mounts["/build"] / "SPECS" / "greeting.spec").write_text(SPEC)
            return 0, b"rebuild-probe rpm-i 0\nrebuild-probe rpm RPM version 4.18.0\nrebuild-probe command rpmbuild\n"
        if "rpm -qa" in script:  # the inventory runs in a shell too: answered as the test set rpm -qa
            return engine.answers[("rpm", "-qa")]
        return 127, b""

    def rpmbuild(argv, mounts):
        work = mounts["/build"]
        for rpm in (built / "RPMS").rglob("*.rpm"):
            shutil.copy(rpm, work / "RPMS" / "noarch" / rpm.name)
        for rpm in (built / "SRPMS").glob("*.rpm"):
            shutil.copy(rpm, work / "SRPMS" / rpm.name)
        return 0, b"Wrote: greeting-2.1-3.73\n"

    engine = FakeEngine(images={target.tag: "sha256:pinned"}, answers={
        ("sh", "-c"): shell,
        ("rpmspec", "-q"): (0, b"3.73\nrpm-build >= 4\n"),
        ("rpm", "-qa"): (0, b"rebuild-pkg rpm (none) 4.18.0 4\n"),
        ("rpmbuild", "-ba"): rpmbuild,
        ("rpm", "-Uvh"): (0, b"installed\n"),
        ("cat", "/usr/share/greeting/errata"): (0, b"73\n"),
    })
    return load_recipe(recipe), target, engine, settings, tmp_path / "out"


def run(setup, **options):
    recipe, target, engine, settings, out = setup
    return build(resolve(recipe, target, BuildOptions(out, **options), settings), engine, Log(quiet=True))


def test_phases_in_order_and_what_lands_in_the_result(setup):
    recipe, target, engine, settings, out = setup
    result = run(setup)
    assert result.directory == out / "greeting-2.1-3.73" and not result.cached
    phases = [p.phase for p in ResultDir(result.directory).read().phases]
    assert phases == ["source", "verify-source", "image", "container", "install-srpm", "edit-spec", "check-spec",
                      "build-root",
                      "floors", "rpmbuild", "collect", "checks"]
    manifest = ResultDir(result.directory).verify()
    assert manifest.spec.release_before == "3.80" and manifest.spec.release_after == "3.73"
    assert manifest.spec.buildrequires_after == ("rpm-build >= 4",)
    assert [(f.name, f.status) for f in manifest.floors.results] == [("rpm", "ok")]
    assert [(c.name, c.passed) for c in manifest.checks] == [("install", True), ("says-73", True)]
    assert {o.file for o in manifest.outputs} == {"RPMS/noarch/greeting-2.1-3.73.noarch.rpm",
                                                  "SRPMS/greeting-2.1-3.73.src.rpm"}
    assert manifest.target.image_id == "sha256:pinned" and manifest.target.build_command_used == "rpmbuild"
    assert "%define errata 73" in (result.directory / "spec.diff").read_text()
    assert engine.live == 0, "every container was removed"
    # the same inputs again: up to date, no container at all
    boxes = len(engine.boxes)
    again = run(setup)
    assert again.cached and again.directory == result.directory and len(engine.boxes) == boxes


def test_the_index_trusts_no_file_of_the_result_folder(setup, tmp_path):
    """An RPM swapped together with its digest in manifest.json, an extra RPM, a folder swapped for a symlink
    and an entry with no manifest digest are each built again, never served as up to date."""
    recipe, target, engine, settings, out = setup
    first = run(setup)
    folder = first.directory
    rpm = folder / "RPMS" / "noarch" / "greeting-2.1-3.73.noarch.rpm"
    original_rpm, original_manifest = rpm.read_bytes(), (folder / "manifest.json").read_text()

    def rebuilt() -> bool:
        return not run(setup).cached

    # 1. the RPM and its digest in the manifest replaced together
    forged = original_rpm + b"\0tampered"
    rpm.write_bytes(forged)
    import hashlib

    text = original_manifest.replace(hashlib.sha256(original_rpm).hexdigest(), hashlib.sha256(forged).hexdigest())
    (folder / "manifest.json").write_text(text.replace(f'"size": {len(original_rpm)}', f'"size": {len(forged)}'))
    assert ResultDir(folder).verify(), "the forged manifest agrees with the forged RPM"
    assert rebuilt() and rpm.read_bytes() == original_rpm, "the build put the real RPM back"
    # 2. an RPM the manifest does not list
    (folder / "RPMS" / "noarch" / "planted-1-1.noarch.rpm").write_bytes(original_rpm)
    assert rebuilt() and not (folder / "RPMS" / "noarch" / "planted-1-1.noarch.rpm").exists()
    assert not rebuilt(), "and a third run is up to date again"
    # 3. the folder swapped for a symlink to an intact copy elsewhere
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(folder), elsewhere)
    folder.symlink_to(elsewhere)
    assert rebuilt() and not folder.is_symlink()
    # 4. an index entry without the manifest's digest (as an older rebuild wrote, or a hand-made one)
    entry = next((out / ".index").iterdir())
    entry.write_text(json.dumps({"directory": folder.name}))
    assert rebuilt()
    # rebuild's own rewrite of a manifest (`rebuild check`, a reproducibility verdict) keeps the entry bound
    from rebuild.pipeline import buildindex

    result = ResultDir(folder)
    buildindex.rewrite(result, dataclasses.replace(result.read(), checks=()))
    assert not rebuilt()


def test_a_release_suffix_must_reach_every_package_built(setup, tmp_path):
    """--release-suffix: a binary package (a subpackage with its own Release:) built without it fails the
    build, naming the file."""
    recipe, target, engine, settings, out = setup
    suffixed = SPEC.replace("%define errata 80", "%define errata 73").replace("Release: 3.%{errata}",
                                                                                "Release: 3.%{errata}.rb1")
    _rpmbuild(suffixed, tmp_path / "rb1", "-bs")
    plain_rpmbuild = engine.answers[("rpmbuild", "-ba")]

    def rpmbuild(argv, mounts):
        code, text = plain_rpmbuild(argv, mounts)
        for old in (mounts["/build"] / "SRPMS").glob("*.rpm"):
            old.unlink()
        for rpm in (tmp_path / "rb1" / "SRPMS").glob("*.rpm"):
            shutil.copy(rpm, mounts["/build"] / "SRPMS" / rpm.name)
        return code, text

    engine.answers[("rpmbuild", "-ba")] = rpmbuild
    engine.answers[("rpmspec", "-q")] = (0, b"3.73.rb1\nrpm-build >= 4\n")
    recipe = dataclasses.replace(recipe, spec=dataclasses.replace(recipe.spec, release_suffix=".rb1"))
    with pytest.raises(BuildFailed, match=r"RPMS/noarch/greeting-2.1-3.73.noarch.rpm: release 3.73 does not end in"
                                          r" .rb1"):
        build(resolve(recipe, target, BuildOptions(out), settings), engine, Log(quiet=True))


def test_failed_rpmbuild_keeps_logs_not_a_result(setup):
    recipe, target, engine, settings, out = setup
    engine.answers[("rpmbuild", "-ba")] = (1, b"error: compiler says no\n")
    with pytest.raises(BuildFailed, match="rpmbuild -ba greeting.spec failed") as err:
        run(setup)
    assert "compiler says no" in err.value.detail
    assert sorted(p.name for p in out.iterdir()) == ["greeting-2.1-3.80.failed"]
    assert "compiler says no" in (out / "greeting-2.1-3.80.failed" / "build.log").read_text()


def test_unmet_floor_stops_before_rpmbuild(setup):
    recipe, target, engine, settings, out = setup
    engine.answers[("rpm", "-qa")] = (0, b"rebuild-pkg rpm (none) 4.0.4 7x.18\n")
    with pytest.raises(CheckFailed, match="does not meet 1 of 1 floors") as err:
        run(setup)
    assert "rpm" in err.value.detail and "too old" in err.value.detail
    assert not any(argv[:2] == ["rpmbuild", "-ba"] for box in engine.boxes for argv in box.ran)
    assert not (out / "greeting-2.1-3.73").exists()


def test_failed_check_keeps_rpms_and_manifest(setup):
    recipe, target, engine, settings, out = setup
    engine.answers[("cat", "/usr/share/greeting/errata")] = (0, b"80\n")
    with pytest.raises(CheckFailed, match="check says-73 failed"):
        run(setup)
    failed = out / "greeting-2.1-3.80.failed"
    assert (failed / "RPMS" / "noarch" / "greeting-2.1-3.73.noarch.rpm").is_file()
    checks = json.loads((failed / "manifest.json").read_text())["checks"]
    assert checks[1] == {"name": "says-73", "passed": False, "exit_code": 0, "output": "80\n"}


def test_edit_without_effect_is_refused_before_rpmbuild(setup):
    recipe, target, engine, settings, out = setup
    engine.answers[("rpmspec", "-q")] = (0, b"3.80\n")
    with pytest.raises(BuildFailed, match="Release is still 3.80 after editing errata"):
        run(setup)


def test_missing_image_is_found_after_the_srpm_is_checked(setup, tmp_path):
    recipe, target, engine, settings, out = setup
    engine.images.clear()
    with pytest.raises(EnvironmentProblem, match="rebuild image testroot"):
        run(setup)
    bad = dataclasses.replace(recipe, source=dataclasses.replace(recipe.source, sha256="0" * 64))
    with pytest.raises(CheckFailed, match="refusing to build"):
        build(resolve(bad, target, BuildOptions(out), settings), engine, Log(quiet=True))
    assert engine.boxes == []


def test_fake_engine_implements_the_whole_interface():
    from rebuild.systems.dockerengine import DockerContainer, DockerEngine
    from rebuild.systems.engine import Container, Engine
    from tests.unit.fake_engine import FakeContainer

    def verbs(cls):
        return {name for name in vars(cls) if not name.startswith("_")} - {"name"}

    assert verbs(Engine) <= verbs(FakeEngine) and verbs(Engine) <= verbs(DockerEngine)
    assert verbs(Container) <= verbs(FakeContainer) and verbs(Container) <= verbs(DockerContainer)
