"""The typed result: an old result folder reads, hostile manifests are refused at the boundary, and
publish and verify work on a result made without Docker."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from rebuild.errors import CheckFailed, UsageError
from rebuild.pipeline.result import SCHEMA_VERSION, BadManifest, Manifest, ResultDir
from tests.conftest import DATA, run_cli

OLD = DATA / "results" / "schema1-mailer"


@pytest.fixture
def old(tmp_path) -> Path:
    dest = tmp_path / "mailer-8.12.8-9.73"
    shutil.copytree(OLD, dest)
    return dest


def test_a_result_written_before_schema_version_reads_and_verifies(old):
    raw = json.loads((old / "manifest.json").read_text())
    assert "schema_version" not in raw
    manifest = ResultDir(old).verify()
    assert manifest.schema_version == 1
    assert manifest.spec.release_after == "9.73" and manifest.inputs.srpm.nevra == "mailer-8.12.8-9.80.src"
    assert {o.nevra for o in manifest.outputs} == {"mailer-8.12.8-9.73.x86_64", "mailer-8.12.8-9.73.src"}
    assert manifest.floors.skipped is True and manifest.checks[1].name == "branch"
    again = Manifest.from_json(manifest.to_json(), "roundtrip")
    assert again == manifest
    assert json.loads(Manifest.from_json(json.dumps({**raw, "schema_version": SCHEMA_VERSION}), "x").to_json())[
        "schema_version"] == SCHEMA_VERSION


def _tamper(folder: Path, change) -> None:
    data = json.loads((folder / "manifest.json").read_text())
    change(data)
    (folder / "manifest.json").write_text(json.dumps(data))


@pytest.mark.parametrize("change, message", [
    (lambda d: d["outputs"][0].update(file="../../../etc/passwd"), "is not RPMS/<arch>/<name>.rpm"),
    (lambda d: d["outputs"][0].update(file="/etc/passwd"), "is not RPMS/<arch>/<name>.rpm"),
    (lambda d: d["outputs"][0].update(arch="x86_64\nforged  line"), "is not a package name"),
    (lambda d: d["recipe"].update(name="a\x1b[2Jb"), "control characters"),
    (lambda d: d["outputs"][0].update(arch="../.."), "is not a package name"),
    (lambda d: d.update(outputs=["RPMS/x86_64/a.rpm"]), "expected an object, found str"),
    (lambda d: d.update(outputs={"a": 1}), "expected a list, found dict"),
    (lambda d: d["outputs"][0].pop("sha256"), "missing 'sha256'"),
    (lambda d: d["outputs"][0].update(size="12"), "expected int, found str"),
    (lambda d: d.update(schema_version=99), "newer than this rebuild reads"),
])
def test_hostile_manifests_are_refused(old, change, message):
    _tamper(old, change)
    with pytest.raises(BadManifest) as err:
        ResultDir(old).verify()
    assert message in err.value.message and "\n" not in err.value.message.replace("\\n", "")


def test_a_list_is_not_a_manifest(old):
    (old / "manifest.json").write_text("[1, 2]")
    with pytest.raises(BadManifest, match="expected an object, found list"):
        ResultDir(old).read()


def test_symlinked_or_changed_output_is_refused(old, tmp_path):
    rpm = old / "RPMS" / "x86_64" / "mailer-8.12.8-9.73.x86_64.rpm"
    outside = tmp_path / "elsewhere.rpm"
    rpm.rename(outside)
    rpm.symlink_to(outside)
    with pytest.raises(CheckFailed, match="not a regular file"):
        ResultDir(old).verify()
    rpm.unlink()
    outside.rename(rpm)
    with open(rpm, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(CheckFailed, match="does not match the sha256"):
        ResultDir(old).verify()
    assert ResultDir(old).intact() is None


def test_symlinked_folder_is_refused(old, tmp_path):
    shutil.move(old / "RPMS", tmp_path / "RPMS")
    os.symlink(tmp_path / "RPMS", old / "RPMS")
    with pytest.raises(CheckFailed, match="outside the result folder"):
        ResultDir(old).verify()


def test_publish_without_docker(old, tmp_path):
    repo = tmp_path / "repo"
    proc = run_cli("publish", str(old), "--repo", str(repo))
    assert proc.returncode == 0, proc.stderr
    assert (repo / "x86_64" / "mailer-8.12.8-9.73.x86_64.rpm").is_file()
    assert (repo / "SRPMS" / "mailer-8.12.8-9.73.src.rpm").is_file()
    index = json.loads((repo / "index.json").read_text())["packages"]
    assert {e["nevra"] for e in index} == {"mailer-8.12.8-9.73.x86_64", "mailer-8.12.8-9.73.src"}
    copied = json.loads((repo / "manifests" / "mailer-8.12.8-9.73.json").read_text())
    assert copied["schema_version"] == SCHEMA_VERSION, "the repository keeps the manifest in today's form"


def test_verify_with_the_fake_engine_records_the_checks(old, tmp_path):
    from rebuild.config.target import load_target
    from rebuild.log import Log
    from rebuild.pipeline.checks import verify_result
    from rebuild.roots.pins import Pin, write_pin
    from tests.unit.fake_engine import FakeEngine

    recipe = tmp_path / "mailer.yaml"
    recipe.write_text("name: mailer\nsource:\n  srpm: mailer-8.12.8-9.80.src.rpm\n  urls: [x.src.rpm]\n"
                      "target: testroot\nchecks:\n  - name: branch\n    run: [cat, /usr/share/mailer/branch.txt]\n"
                      "    expect_stdout: branch=rh73\n")
    target = load_target("testroot")
    write_pin(Pin("testroot", target.tag, "sha256:p", target.image_key, "x"), target, tmp_path / "cache")
    engine = FakeEngine(images={target.tag: "sha256:p"}, answers={
        ("rpm", "-Uvh"): (0, b""), ("cat",): (0, b"errata=73 branch=rh73\n")})
    results = verify_result(old, engine, Log(quiet=True), recipe_path=recipe, cache=tmp_path / "cache")
    assert [(r.name, r.passed) for r in results] == [("install", True), ("branch", True)]
    assert engine.boxes[0].mounts["/rpms"] == old / "RPMS"
    assert ResultDir(old).read().checks[1].output == "errata=73 branch=rh73\n"
    engine.answers[("cat",)] = (0, b"errata=80 branch=rh80\n")
    results = verify_result(old, engine, Log(quiet=True), recipe_path=recipe, cache=tmp_path / "cache")
    assert results[1].passed is False and ResultDir(old).read().checks[1].passed is False


def test_not_a_result_folder(tmp_path):
    with pytest.raises(UsageError, match="no manifest.json"):
        ResultDir(tmp_path).read()
    with pytest.raises(UsageError, match="no such result folder"):
        ResultDir(tmp_path / "absent").read()
