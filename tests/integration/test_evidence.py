"""The evidence of a build on the testroot target (rpm 4.18): sbom.spdx.json validated by spdx-tools,
provenance.json checked by verify-provenance on a result and a published repository (and a tampered RPM
caught), and the reproducibility check: the demo package reproducible, a package that records its build's
time and host reported with that file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rebuild.cli.build import EXAMPLE
from tests.conftest import DATA, make_srpm, run_cli, write_recipe

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def demo(tmp_path_factory, testroot) -> tuple[Path, Path, str]:
    """The demo package (specs/examples/hello) built with errata 73 and --check-reproducible:
    (result folder, out folder, the command's stderr)."""
    base = tmp_path_factory.mktemp("evidence")
    srpm = make_srpm(EXAMPLE / "hello.spec", base / "srpm")
    recipe = write_recipe(base, srpm, extra='spec:\n  macros:\n    errata: "73"\n')
    out = base / "out"
    proc = run_cli("build", str(recipe), "--out", str(out), "--check-reproducible")
    assert proc.returncode == 0, proc.stderr
    return out / "hello-1.0-1.73", out, proc.stderr


def test_the_demo_package_is_reproducible_on_testroot(demo):
    result, _, stderr = demo
    assert "hello: reproducible (2 packages compared)" in stderr
    manifest = json.loads((result / "manifest.json").read_text())
    record = manifest["reproducibility"]
    assert record["verdict"] == "reproducible" and record["differences"] == [] and record["packages"] == 2
    assert record["second_build"]["hostname"] != "rebuild.localdomain"
    assert manifest["target"]["rpm_version"].startswith("4.18")
    assert "source_date_epoch_from_changelog 1" in manifest["target"]["build_macros"]
    assert not any(p.name.startswith(".reproduce-") for p in result.parent.iterdir()), "the second build is removed"


def test_the_sbom_validates_and_lists_the_root_and_the_outputs(demo):
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    result, _, _ = demo
    document = parse_file(str(result / "sbom.spdx.json"))
    assert validate_full_spdx_document(document) == []
    by_name = {p.name: p for p in document.packages}
    # testroot is Debian: its rpmdb is empty, so dpkg lists the root
    assert {"rpm", "gcc", "libc6-dev", "make"} <= set(by_name)
    assert by_name["gcc"].external_references[0].locator.startswith("pkg:deb/debian/gcc@")
    manifest = json.loads((result / "manifest.json").read_text())
    for output in manifest["outputs"]:
        (package,) = [p for p in document.packages if p.file_name == output["file"]]
        assert package.checksums[0].value == output["sha256"]
    kinds = {(r.spdx_element_id, r.relationship_type.name) for r in document.relationships}
    assert ("SPDXRef-BuildRoot", "BUILD_TOOL_OF") in kinds and ("SPDXRef-BuildRoot", "CONTAINS") in kinds
    assert any(kind == "GENERATED_FROM" for _, kind in kinds)


def test_provenance_verifies_and_a_tampered_rpm_fails(demo, tmp_path):
    result, _, _ = demo
    statement = json.loads((result / "provenance.json").read_text())
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    params = statement["predicate"]["buildDefinition"]["externalParameters"]
    assert params["specEdits"]["macros"] == {"errata": "73"} and "errata" in params["recipe"]["content"]
    assert {s["name"] for s in statement["subject"]} == {"hello-1.0-1.73.x86_64.rpm", "hello-1.0-1.73.src.rpm"}
    ok = run_cli("verify-provenance", str(result))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["ok", "hello-1.0-1.73.x86_64.rpm", "ok", "hello-1.0-1.73.src.rpm"] or \
        sorted(ok.stdout.split()) == sorted(["ok", "ok", "hello-1.0-1.73.x86_64.rpm", "hello-1.0-1.73.src.rpm"])

    repo = tmp_path / "repo"
    published = run_cli("publish", str(result), "--repo", str(repo))
    assert published.returncode == 0, published.stderr
    sums = (repo / "SHA256SUMS").read_text()
    assert "provenance/hello-1.0-1.73.intoto.json" in sums and "sbom/hello-1.0-1.73.spdx.json" in sums
    assert run_cli("verify-provenance", str(repo)).returncode == 0

    tampered = tmp_path / "tampered"
    shutil.copytree(result, tampered)
    (rpm,) = (tampered / "RPMS").rglob("*.rpm")
    with rpm.open("r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 0xFF]))
    bad = run_cli("verify-provenance", str(tampered))
    assert bad.returncode == 1
    assert f"MISMATCH  {rpm.name}" in bad.stdout
    assert "1 of 2 subjects do not match" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1

    (tampered / "provenance.json").write_text(json.dumps({**statement, "_type": "something else"}))
    shape = run_cli("verify-provenance", str(tampered))
    assert shape.returncode == 2 and "not a SLSA v1 provenance statement" in shape.stderr


def test_a_package_that_records_its_build_time_is_reported_with_that_file(testroot, tmp_path):
    srpm = make_srpm(DATA / "evidence" / "stamp.spec", tmp_path / "srpm")
    recipe = write_recipe(tmp_path, srpm)
    proc = run_cli("build", str(recipe), "--out", str(tmp_path / "out"), "--check-reproducible")
    assert proc.returncode == 1, proc.stderr
    assert "stamp: differs" in proc.stderr and "not reproducible: stamp" in proc.stderr
    manifest = json.loads((tmp_path / "out" / "stamp-1.0-1" / "manifest.json").read_text())
    differences = manifest["reproducibility"]["differences"]
    assert {(d["what"], d["item"]) for d in differences} == {("file digest", "/usr/share/stamp/built-at")} or \
        {(d["what"], d["item"]) for d in differences} == {("file digest", "/usr/share/stamp/built-at"),
                                                          ("file size", "/usr/share/stamp/built-at")}
    assert manifest["reproducibility"]["verdict"] == "differs"


def test_without_source_date_epoch_rpm_418_differs_in_build_time_and_host(testroot, tmp_path, demo):
    srpm = make_srpm(EXAMPLE / "hello.spec", tmp_path / "srpm")
    recipe = write_recipe(tmp_path, srpm, extra='spec:\n  macros:\n    errata: "73"\n')
    proc = run_cli("build", str(recipe), "--out", str(tmp_path / "out"), "--check-reproducible", "--no-source-date-epoch")
    assert proc.returncode == 1, proc.stderr
    manifest = json.loads((tmp_path / "out" / "hello-1.0-1.73" / "manifest.json").read_text())
    assert "build_macros" not in manifest["target"]
    assert {d["item"] for d in manifest["reproducibility"]["differences"]} == {"buildtime", "buildhost"}
    assert manifest["build_key"] != json.loads((demo[0] / "manifest.json").read_text())["build_key"]
