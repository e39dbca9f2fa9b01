"""check-deps against a real image's rpmdb, and the floors preflight of rebuild build."""

from __future__ import annotations

import json

import pytest

from rebuild.roots.pins import read_pin
from tests.conftest import ROOT, cli_process, copy_case, make_srpm, run_cli, write_recipe
from tests.rpmdb_image import build_packages, image_with_packages

pytestmark = pytest.mark.docker

PACKAGES = [
    ("openssl", None, "0.9.6b", "32.7"),        # at the floor
    ("openssl-devel", None, "0.9.6", "40"),     # below: 0.9.6 < 0.9.6b
    ("krb5-libs", None, "1.2.4", "10"),         # two installed, the newest counts
    ("krb5-devel", None, "1.2.7", "1"),         # above
    ("pam", 1, "0.70", "1"),                    # epoch wins
    ("pam-devel", None, "0.75", "46.7.10"),     # 7.10 > 7.3
]


@pytest.fixture(scope="module")
def floors_image(testroot, tmp_path_factory):
    rpms = build_packages(PACKAGES, tmp_path_factory.mktemp("rpms"))
    # a second, older krb5-libs beside the first (multilib, kernels): the newest counts
    older = build_packages([("krb5-libs", None, "1.2.2", "4")], tmp_path_factory.mktemp("older"))
    for rpm in older.glob("*.rpm"):
        (rpms / rpm.name).write_bytes(rpm.read_bytes())
    return image_with_packages(read_pin(testroot).image_id, rpms, "rebuild-test/floors:1")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "floors.yaml"
    path.write_text(
        "floors:\n"
        "  openssl: 0.9.6b-32.7\n"
        "  openssl-devel: 0.9.6b-32.7\n"
        "  krb5-libs: 1.2.4-10\n"
        "  krb5-devel: 1.2.4-11\n"
        "  pam: 0.75-46.7.3\n"
        "  pam-devel: 0.75-46.7.3\n"
        "  cyrus-sasl: 1.5.24-25\n"
    )
    return path


def test_check_deps_image(floors_image, manifest):
    proc = run_cli("check-deps", "--manifest", str(manifest), "--image", floors_image, "--json")
    assert proc.returncode == 1, proc.stderr
    got = {d["name"]: (d["status"], d["installed"]) for d in json.loads(proc.stdout)}
    assert got == {
        "openssl": ("ok", "0.9.6b-32.7"),
        "openssl-devel": ("too old", "0.9.6-40"),
        "krb5-libs": ("ok", "1.2.4-10"),
        "krb5-devel": ("ok", "1.2.7-1"),
        "pam": ("ok", "1:0.70-1"),
        "pam-devel": ("ok", "0.75-46.7.10"),
        "cyrus-sasl": ("missing", None),
    }


def test_check_deps_missing_image_is_exit_3(manifest):
    proc = run_cli("-q", "check-deps", "--manifest", str(manifest), "--image", "rebuild-test/nosuch:0")
    assert proc.returncode == 3, proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_check_deps_target_testroot_has_empty_rpmdb(testroot, manifest):
    proc = run_cli("check-deps", "--manifest", str(manifest), "--target", "testroot")
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == "7 floors: 0 met, 0 too old, 7 missing"


def test_build_preflight_stops_on_unmet_floors(tmp_path, testroot, manifest):
    srpm = make_srpm(copy_case("noarch", tmp_path) / "greeting.spec", tmp_path / "src")
    recipe = write_recipe(tmp_path, srpm, extra=f"floors: {manifest}\n")
    proc = run_cli("build", str(recipe), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stderr
    assert "does not meet 7 of 7 floors" in proc.stderr
    assert "cyrus-sasl" in proc.stderr and "missing" in proc.stderr
    assert "start rpmbuild" not in (tmp_path / "out" / "greeting-2.1-3.failed" / "state.log").read_text()
    proc = run_cli("build", str(recipe), "--out", str(tmp_path / "out"), "--skip-deps-check")
    assert proc.returncode == 0, proc.stderr
    floors = json.loads((tmp_path / "out" / "greeting-2.1-3" / "manifest.json").read_text())["floors"]
    assert floors["skipped"] is True and len(floors["results"]) == 7


def test_build_preflight_passes_when_floors_met(tmp_path, testroot):
    met = tmp_path / "met.yaml"
    met.write_text("floors: {}\n")
    srpm = make_srpm(copy_case("noarch", tmp_path) / "greeting.spec", tmp_path / "src")
    recipe = write_recipe(tmp_path, srpm, extra=f"floors: {met}\n")
    proc = run_cli("build", str(recipe), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert (ROOT / "specs/rh73-floors.yaml").exists()


def test_check_deps_bad_manifest_beats_the_engine_and_leaves_no_container(floors_image, tmp_path, new_containers):
    """The manifest loads while the query container starts: its error still wins, one line, exit 2,
    and the container it did not need is gone by the time the command returns."""
    bad = tmp_path / "floors.yaml"
    bad.write_text("floors:\n  openssl: 0.9.6b-32.7\n  pam: 0.75 46\n")
    proc = run_cli("-q", "check-deps", "--manifest", str(bad), "--image", floors_image)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and f"{bad}:3" in proc.stderr
    assert new_containers() == set()
    proc = run_cli("-q", "check-deps", "--manifest", str(bad), "--image", "rebuild-test/nosuch:0")
    assert proc.returncode == 2, proc.stderr


def test_query_container_takes_its_anonymous_volumes_along(floors_image, manifest):
    """An image that declares a VOLUME gets an anonymous volume per container: removing the
    container must remove it too, or every run leaks one."""
    import docker

    client = docker.from_env()
    box = client.containers.create(floors_image, ["true"], network_mode="none")
    try:
        image = box.commit(repository="rebuild-test/withvolume", tag="1", changes=["VOLUME /scratch"]).id
    finally:
        box.remove(force=True, v=True)
    assert "/scratch" in client.images.get(image).attrs["Config"]["Volumes"]
    before = {v.name for v in client.volumes.list()}
    proc = run_cli("-q", "check-deps", "--manifest", str(manifest), "--image", image)
    assert proc.returncode == 1, proc.stderr
    assert {v.name for v in client.volumes.list()} - before == set()


def test_ctrl_c_at_any_moment_leaves_no_container(floors_image, manifest, new_containers, tmp_path):
    """SIGINT swept across the query, from the moment rebuild echoes the container's command (just
    before the create) to its end. Before that echo the interpreter is still starting, and a
    Ctrl-C there is Python's own business. Each run has an empty cache, so each queries."""
    import signal
    import time

    codes = set()
    for delay in [0.015 * i for i in range(20)]:  # the create's window is ~10 ms wide: sweep densely
        with cli_process("check-deps", "--manifest", str(manifest), "--image", floors_image,
                         env={"REBUILD_CACHE": str(tmp_path / f"cache-{delay}")}) as proc:
            echoed = proc.stderr.readline()
            assert "$ [engine] docker run" in echoed, echoed
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        codes.add(proc.returncode)
        # 130, or ended by SIGINT after rebuild handled it (CPython 3.11 re-raises an interrupt caught inside
        # exec(), as a dataclass being made runs): both are a Ctrl-C's outcome, with nothing left behind
        assert proc.returncode in (1, 130, -signal.SIGINT), err
        assert "Traceback" not in err
        assert new_containers() == set(), f"a container was left after SIGINT at {delay} s"
    assert 130 in codes


def test_a_cached_list_starts_no_container_and_a_remade_image_is_read_again(floors_image, manifest, tmp_path,
                                                                          new_containers):
    """The installed list is kept per image content identity: the second check starts no container; an
    image made again under the same tag (other content) is never answered from the old list."""
    import docker

    env = {"REBUILD_CACHE": str(tmp_path / "cache")}
    first = run_cli("-v", "check-deps", "--manifest", str(manifest), "--image", floors_image, "--json", env=env)
    assert "docker run" in first.stderr
    second = run_cli("-v", "check-deps", "--manifest", str(manifest), "--image", floors_image, "--json", env=env)
    assert second.returncode == first.returncode and second.stdout == first.stdout
    assert "docker run" not in second.stderr, "answered from the cache"
    assert len(list((tmp_path / "cache" / "installed").iterdir())) == 1
    client = docker.from_env()
    box = client.containers.create(floors_image, ["sh", "-c", "rpm -e --nodeps openssl || true"], network_mode="none")
    try:
        box.start()
        box.wait()
        box.commit(repository="rebuild-test/remade", tag="1")
    finally:
        box.remove(force=True, v=True)
    remade = run_cli("-v", "check-deps", "--manifest", str(manifest), "--image", "rebuild-test/remade:1", "--json",
                     env=env)
    assert "docker run" in remade.stderr, "another content identity: read again"
    statuses = {r["name"]: r["status"] for r in json.loads(remade.stdout)}
    assert statuses.get("openssl") == "missing" and statuses != {r["name"]: r["status"] for r in json.loads(first.stdout)}
