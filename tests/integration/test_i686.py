"""The main job on a real 32-bit userland: an i686 root of Debian's i386 binaries with the genuine rpm 4.0.4
(tests/i686tree.py), made by `rebuild image` through the solver; check-deps; a C program that links zlib and
OpenSSL, its 2003-style spec edited from errata 80 to 73 and built by rpm 4.0.4 under linux32; its checks run
in a fresh container after rpm 4.0.4 installed it; publish; verify."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from rebuild.systems.rpmfile import payload
from tests.conftest import DATA, run_cli

pytestmark = pytest.mark.docker

RECIPE = """\
name: zcheck
source:
  srpm: zcheck-1.0-1.80.src.rpm
  urls: ["{srpm}"]
spec:
  macros:
    errata: "73"
target: i686-test
floors: floors.yaml
checks:
  - name: runs
    run: [/usr/bin/zcheck]
    expect_stdout: "zcheck errata=73 bits=32 zlib=1\\\\.2\\\\.[0-9]+ OpenSSL 3\\\\.[0-9.]+ .* gdbm=ok"
"""
FLOORS = """\
floors:
  openssl-devel: "3.0.0"
  zlib-devel: "1:1.2.11"
  gdbm-devel: "1.20"
"""


def genuine_rpm() -> bool:
    """Whether the tree's rpm is the genuine rpm 4.0.4 (else Debian's i386 rpm 4.18 stands in)."""
    from tests.i686tree import RPM404

    return RPM404.is_file()


def test_the_image_is_a_32bit_root_whose_rpm_404_reads_its_rpmdb(i686):
    home, env, tree, image = i686

    def run(*argv, user="500:500"):
        return subprocess.run(["docker", "run", "--rm", "--network", "none", "-u", user, image, "linux32", *argv],
                              capture_output=True, text=True)

    assert run("uname", "-m").stdout.strip() == "i686"
    assert run("rpm", "--version").stdout.strip() == ("RPM version 4.0.4" if genuine_rpm() else "RPM version 4.18.0")
    listed = run("rpm", "-qa")
    assert listed.returncode == 0 and listed.stderr == "", "the build user reads every index without an error"
    names = {line.rsplit("-", 2)[0] for line in listed.stdout.split()}
    assert {"gcc", "glibc-devel", "rpm-build", "bash", "libc-bin"} <= names, "the closure of packages.txt"
    unneeded = {"openssl-devel", "gdbm-devel"}  # (perl is there: autoconf and automake need it)
    assert not unneeded & names, "nothing the build root does not need"
    lock = json.loads(next((Path(env["REBUILD_CACHE"]) / "images" / "i686-test").glob("*/root.lock.json")).read_text())
    assert {p["name"] for p in lock["packages"]} == names - {"rebuild-rpmdb-indexes"}
    assert all(len(p["sha256"]) == 64 for p in lock["packages"])
    file_out = run("sh", "-c", "file -L /bin/bash").stdout
    assert "ELF 32-bit" in file_out and "80386" in file_out


def test_check_deps_on_the_target(i686, tmp_path):
    home, env, tree, image = i686
    floors = tmp_path / "floors.yaml"
    floors.write_text("floors:\n  rpm-build: 4.0.4-7x.18\n  glibc: 2.36\n  gcc: 4:12\n  openssl-devel: 3.0.0\n")
    proc = run_cli("check-deps", "--manifest", str(floors), "--target", "i686-test", "--json", env=env)
    assert proc.returncode == 1, proc.stderr
    got = {r["name"]: r["status"] for r in json.loads(proc.stdout)}
    assert got == {"rpm-build": "ok", "glibc": "ok", "gcc": "ok", "openssl-devel": "missing"}


def test_a_2003_spec_built_by_rpm_404_on_i686(i686, tmp_path):
    """The whole main job on this root; each part of issue 14's list is asserted."""
    from tests.i686tree import make_srpm_in

    home, env, tree, image = i686
    spec = DATA / "i686prog" / "zcheck.spec"
    assert "Copyright: MIT" in spec.read_text()
    if not genuine_rpm():  # rpm 4.18 refuses the 2003 tag
        shutil.copytree(spec.parent, tmp_path / "spec")
        spec = tmp_path / "spec" / "zcheck.spec"
        spec.write_text(spec.read_text().replace("Copyright:", "License:"))
    srpm = make_srpm_in(image, spec, tmp_path / "srpm")
    (tmp_path / "floors.yaml").write_text(FLOORS + ('  rpm-build: "4.0.4-7x.18"\n' if genuine_rpm() else ""))
    recipe = tmp_path / "zcheck.yaml"
    recipe.write_text(RECIPE.format(srpm=srpm.as_uri()))
    out = tmp_path / "out"
    proc = run_cli("build", str(recipe), "--out", str(out), env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    result = out / "zcheck-1.0-1.73"
    manifest = json.loads((result / "manifest.json").read_text())
    # the errata-73 branch: gdbm-devel, not db4-devel, read from the edited spec by rpm 4.0.4 and installed
    assert "gdbm-devel" in manifest["spec"]["buildrequires_after"]
    assert not any(br.startswith("db4-devel") for br in manifest["spec"]["buildrequires_after"])
    added = {nevra.rsplit("-", 2)[0] for nevra in manifest["root"]["added"]}
    assert {"gdbm-devel", "openssl-devel", "zlib-devel"} <= added and "db4-devel" not in added
    assert any(p["name"] == "openssl-devel" and p["origin"] == "updates" for p in manifest["root"]["lock"]["packages"]), \
        "the update is newer: it wins"
    assert manifest["target"]["build_command_used"] == "rpmbuild" and manifest["spec"]["release_after"] == "1.73"
    assert all(f["status"] == "ok" for f in manifest["floors"]["results"])
    (rpm,) = (result / "RPMS").rglob("*.rpm")
    header = subprocess.run(["rpm", "-qp", "--qf", "%{RPMVERSION} %{ARCH}", str(rpm)], capture_output=True,
                            text=True).stdout
    assert header.split()[0] == ("4.0.4" if genuine_rpm() else "4.18.0") and header.split()[1] in ("i386", "i686")
    files = payload(rpm)
    elf = files["/usr/bin/zcheck"]
    assert elf[:4] == b"\x7fELF" and elf[4] == 1, "a 32-bit ELF file (EI_CLASS 1)"
    assert files["/usr/share/zcheck/build-machine.txt"] == b"i686\n", "uname -m in the build said i686"
    requires = subprocess.run(["rpm", "-qp", "--requires", str(rpm)], capture_output=True, text=True).stdout.split()
    assert {"libz.so.1", "libcrypto.so.3", "libgdbm.so.6"} <= set(requires), "rpm 4.0.4's find-requires saw the sonames"
    checks = {c["name"]: c for c in manifest["checks"]}
    assert checks["install"]["passed"] and "DB_VERIFY_BAD" not in checks["install"]["output"]
    assert checks["runs"]["passed"] and "bits=32" in checks["runs"]["output"]
    log = (result / "build.log").read_text()
    assert "cannot open" not in log and "index using db3" not in log, "no rpmdb errors during the build"
    repo = tmp_path / "repo"
    published = run_cli("publish", str(result), "--repo", str(repo), env=env)
    assert published.returncode == 0, published.stderr
    assert (repo / "i386" / "zcheck-1.0-1.73.i386.rpm").is_file() or (repo / "i686" / "zcheck-1.0-1.73.i686.rpm").is_file()
    verified = run_cli("verify", str(result), "--recipe", str(recipe), env=env)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.split() == ["ok", "install", "ok", "runs"]

    # the SBOM lists the solved root from its lock, each package with its file's sha256
    sbom = json.loads((result / "sbom.spdx.json").read_text())
    listed = {p["name"]: p["checksums"][0]["checksumValue"] for p in sbom["packages"] if p.get("checksums")}
    for package in manifest["root"]["lock"]["packages"]:
        assert listed[package["name"]] == package["sha256"]
    assert run_cli("verify-provenance", str(repo), env=env).returncode == 0

    # a second build with another host, time zone, path and time: rpm 4.0.4 cannot take the build time from
    # SOURCE_DATE_EPOCH, so only the header's build time and host may differ, and that is said
    again = run_cli("build", str(recipe), "--out", str(out), "--check-reproducible", env=env, timeout=900)
    record = json.loads((result / "manifest.json").read_text())["reproducibility"]
    if genuine_rpm():
        assert again.returncode == 0, again.stderr
        assert record["verdict"] == "payload-reproducible", record
        assert {d["item"] for d in record["differences"]} <= {"buildtime", "buildhost"}
        assert "cannot take them from SOURCE_DATE_EPOCH" in again.stderr
    else:
        assert record["verdict"] in ("reproducible", "differs")
