"""Floors manifests, saved package lists and the check itself."""

from __future__ import annotations

import json

import pytest

from rebuild.errors import ConfigError, UsageError
from rebuild.pipeline.floors import MISSING, OK, TOO_OLD, check, load_floors, parse_installed
from tests.conftest import ROOT, run_cli

INSTALLED = """\
# saved with rpm -qa --qf '%{NAME} %{EPOCH} %{VERSION} %{RELEASE}\\n' on an RH 7.3 box

openssl (none) 0.9.6b 32.7
openssl-devel (none) 0.9.6 99
krb5-libs (none) 1.2.4 10
krb5-libs (none) 1.2.4 11
krb5-devel (none) 1.2.4 11
pam 1 0.70 1
pam-devel (none) 0.75 46.7.10
gdbm (none) 1.8.0 14
gdbm-devel (none) 1.8.0 14
hesiod (none) 3.0.2 18
hesiod-devel (none) 3.0.2 17
openldap (none) 2.0.27 2.7.3
openldap-devel (none) 2.0.27 2.7.3
cyrus-sasl (none) 1.5.24 25
rpm-build (none) 4.0.4 7x.18
"""

EXPECTED = {
    "openssl": (OK, "0.9.6b-32.7"),
    "openssl-devel": (TOO_OLD, "0.9.6-99"),  # 0.9.6 < 0.9.6b whatever the release
    "krb5-libs": (OK, "1.2.4-11"),  # the newest of two counts
    "krb5-devel": (OK, "1.2.4-11"),
    "pam": (OK, "1:0.70-1"),  # an epoch beats any version
    "pam-devel": (OK, "0.75-46.7.10"),  # 7.10 > 7.3
    "gdbm": (OK, "1.8.0-14"),
    "gdbm-devel": (OK, "1.8.0-14"),
    "hesiod": (OK, "3.0.2-18"),
    "hesiod-devel": (TOO_OLD, "3.0.2-17"),
    "openldap": (OK, "2.0.27-2.7.3"),
    "openldap-devel": (OK, "2.0.27-2.7.3"),
    "cyrus-sasl": (OK, "1.5.24-25"),
    "cyrus-sasl-devel": (MISSING, None),
    "rpm-build": (OK, "4.0.4-7x.18"),
}


def test_shipped_manifest_has_the_mission_floors():
    floors = {f.name: str(f.minimum) for f in load_floors(ROOT / "specs/rh73-floors.yaml")}
    assert floors["openssl-devel"] == "0.9.6b-32.7"
    assert floors["rpm-build"] == "4.0.4-7x.18"
    assert floors["pam-devel"] == "0.75-46.7.3"
    assert len(floors) == 15


def test_every_status_from_a_saved_list(tmp_path):
    results = check(load_floors(ROOT / "specs/rh73-floors.yaml"), parse_installed(INSTALLED, "list"))
    assert {r.name: (r.status, r.installed) for r in results} == EXPECTED
    assert [r.status for r in results[:3]] == [MISSING, TOO_OLD, TOO_OLD], "problems first"


def test_cli_table_json_and_exit_codes(tmp_path):
    listing = tmp_path / "installed.txt"
    listing.write_text(INSTALLED)
    proc = run_cli("check-deps", "--manifest", "specs/rh73-floors.yaml", "--installed", str(listing))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["NAME", "REQUIRED", "INSTALLED", "STATUS"]
    assert lines[1].split() == ["cyrus-sasl-devel", ">=", "1.5.24-25", "-", "missing"]
    assert lines[-1] == "15 floors: 12 met, 2 too old, 1 missing"
    proc = run_cli("check-deps", "--manifest", "specs/rh73-floors.yaml", "--installed", str(listing), "--json")
    data = json.loads(proc.stdout)
    assert {d["name"]: (d["status"], d["installed"]) for d in data} == EXPECTED
    assert set(data[0]) == {"name", "required", "installed", "status"}
    listing.write_text(INSTALLED + "cyrus-sasl-devel (none) 2.1.10 1\nhesiod-devel 0 3.0.2 18\n")
    proc = run_cli("check-deps", "--manifest", "specs/rh73-floors.yaml", "--installed", str(listing))
    assert proc.returncode == 1 and "openssl-devel" in proc.stdout
    listing.write_text(listing.read_text().replace("openssl-devel (none) 0.9.6 99", "openssl-devel (none) 0.9.7 1"))
    proc = run_cli("check-deps", "--manifest", "specs/rh73-floors.yaml", "--installed", str(listing))
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.splitlines()[-1] == "15 floors: all met"


@pytest.mark.parametrize(
    "text, message",
    [
        ("floors: [a, b]\n", "m.yaml:1: floors must be a mapping"),
        ("floors:\n  a: '1.0'\n  a: '2.0'\n", "m.yaml:3: duplicate key 'a' (first at line 2)"),
        ("floors:\n  a: ''\n", "m.yaml:2: a: bad version '': empty version"),
        ("floors:\n  a: '1.0 -1'\n", "m.yaml:2: a: bad version '1.0 -1': spaces are not allowed"),
        ("floors:\n  a: '1.0-2-3'\n", "m.yaml:2: a: bad version '1.0-2-3': more than one '-'"),
        ("floors:\n  a: 'x:1.0'\n", "m.yaml:2: a: bad version 'x:1.0': epoch 'x' must be a number"),
        ("floors:\n  a:\n", "m.yaml:2: a: the floor must be a version string"),
        ("floors: {}\nfloor: {}\n", "m.yaml:2: unknown key 'floor' in the floors manifest; did you mean 'floors'?"),
        ("- a\n", "a floors manifest must be a mapping"),
    ],
)
def test_bad_manifests(tmp_path, text, message):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_floors(path)
    assert message in str(err.value)
    proc = run_cli("check-deps", "--manifest", str(path), "--installed", "/dev/null")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "line, message",
    [("openssl 0.9.6b 32.7", "list:1: expected 'NAME EPOCH VERSION RELEASE'"),
     ("openssl x 0.9.6b 32.7", "list:1: epoch 'x' must be a number or (none)"),
     ("openssl (none) 0.9-6 1", "list:1: bad version")],
)
def test_bad_installed_lines(line, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_installed(line + "\n", "list")


def test_exactly_one_source_is_required():
    proc = run_cli("check-deps", "--manifest", "specs/rh73-floors.yaml")
    assert proc.returncode == 2 and "exactly one of" in proc.stderr
    proc = run_cli("check-deps", "--manifest", "specs/rh73-floors.yaml", "--host", "--installed", "/dev/null")
    assert proc.returncode == 2


def _query_engine():
    from rebuild.pipeline.floors import QUERY_TAG
    from tests.unit.fake_engine import FakeEngine

    listing = f"{QUERY_TAG} openssl (none) 0.9.6b 32.7\nnoise from the image\n{QUERY_TAG} pam 1 0.70 1\n".encode()
    return FakeEngine(answers={("rpm", "-qa"): (0, listing)})


def test_an_images_list_is_read_once_per_content_identity(tmp_path):
    from rebuild.pipeline.floors import installed_in_image, load_floors

    manifest = tmp_path / "floors.yaml"
    manifest.write_text("floors:\n  openssl: 0.9.6b-32.7\n  pam: 0.75-46.7.3\n")
    engine = _query_engine()
    identities = {"img": ("sha256:id1", "sha256:content1")}
    first = installed_in_image("img", lambda: engine, tmp_path / "cache", inspect=identities.get)
    assert {r.name: r.status for r in check(load_floors(manifest), first)} == {"openssl": OK, "pam": OK}
    engine.answers.clear()  # a second query would now fail: the list must come from the cache
    again = installed_in_image("img", lambda: engine, tmp_path / "cache", inspect=identities.get)
    assert {n: [str(v) for v in vs] for n, vs in again.items()} == {n: [str(v) for v in vs] for n, vs in first.items()}
    identities["img"] = ("sha256:id2", "sha256:content2")  # the image was made again: its list is read again
    with pytest.raises(Exception, match="rpm -qa failed"):
        installed_in_image("img", lambda: engine, tmp_path / "cache", inspect=identities.get)
    assert engine.live == 0


def test_a_bad_manifest_wins_over_a_missing_image_or_engine(tmp_path):
    """check-deps reads the user's manifest before it asks any engine: a bad one is exit 2 at once, even where
    the engine's address answers nothing (that would be exit 3 after the ping deadline)."""
    import socket
    import time

    from rebuild.errors import EnvironmentProblem
    from rebuild.pipeline.floors import installed_in_image
    from tests.conftest import run_cli

    manifest = tmp_path / "floors.yaml"
    manifest.write_text("floors:\n  openssl: 0.9.6b 32.7\n")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        env = {"DOCKER_HOST": f"tcp://127.0.0.1:{silent.getsockname()[1]}"}
        started = time.monotonic()
        for where in (["--image", "img:1"], ["--target", "testroot"]):
            proc = run_cli("check-deps", "--manifest", str(manifest), *where, env=env)
            assert proc.returncode == 2 and "floors.yaml:2: " in proc.stderr, proc.stderr
        assert time.monotonic() - started < 10
    engine = _query_engine()
    with pytest.raises(EnvironmentProblem, match="not in the engine"):
        installed_in_image("img", lambda: engine, tmp_path, inspect=lambda ref: None)
    with pytest.raises(EnvironmentProblem, match="not the pinned"):
        installed_in_image("img", lambda: engine, tmp_path, expected_id="sha256:other",
                           inspect=lambda ref: ("sha256:id", "sha256:c"))


