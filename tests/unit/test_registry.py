"""Images by content and through registries, around the engine interface (the fake engine; the real
registry and second engine are in tests/integration/test_scaleout.py)."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from rebuild.config.target import load_target
from rebuild.errors import BuildFailed, CheckFailed, ConfigError, UsageError
from rebuild.log import Log
from rebuild.roots.pins import read_pin
from rebuild.roots.registry import pull_image, push_image, split_repository
from rebuild.systems.dockerimages import content_id, parse_reference
from rebuild.systems.engine import transfer_is_archive
from rebuild.systems.transfer import extract
from tests.unit.fake_engine import FakeEngine

DIGEST = "sha256:" + "ab" * 32


def test_references_need_a_digest():
    ref = parse_reference(f"127.0.0.1:5000/rebuild/rh73:v1@{DIGEST}")
    assert (ref.repository, ref.tag, ref.digest) == ("127.0.0.1:5000/rebuild/rh73", "v1", DIGEST)
    assert ref.pinned == f"127.0.0.1:5000/rebuild/rh73@{DIGEST}"
    with pytest.raises(UsageError, match="a tag alone can be moved"):
        parse_reference("127.0.0.1:5000/rebuild/rh73:v1")
    for bad in (f"UPPER/case@{DIGEST}", "repo@sha256:short", f"repo@md5:{'ab' * 16}", f"re po@{DIGEST}"):
        with pytest.raises(UsageError):
            parse_reference(bad)


def test_repository_and_tag_split_around_a_registry_port():
    assert split_repository("127.0.0.1:5000/rebuild/rh73") == ("127.0.0.1:5000/rebuild/rh73", None)
    assert split_repository("127.0.0.1:5000/rebuild/rh73:v2") == ("127.0.0.1:5000/rebuild/rh73", "v2")
    assert split_repository("ghcr.io/me/rh73:latest") == ("ghcr.io/me/rh73", "latest")


def test_content_identity_ignores_when_an_image_was_made():
    attrs = {"Id": "sha256:1", "Created": "2026-01-01", "RootFS": {"Layers": ["sha256:aa"]},
             "Config": {"Env": ["PATH=/bin"], "Labels": {"a": "1"}}, "Os": "linux", "Architecture": "amd64"}
    again = {**attrs, "Id": "sha256:2", "Created": "2026-06-01"}
    assert content_id(attrs) == content_id(again)
    assert content_id(attrs) != content_id({**attrs, "RootFS": {"Layers": ["sha256:bb"]}})
    assert content_id(attrs) != content_id({**attrs, "Config": {"Env": ["PATH=/usr/bin"], "Labels": {"a": "1"}}})


def test_transfer_mode():
    assert not transfer_is_archive("auto", "")
    assert not transfer_is_archive("auto", "unix:///var/run/docker.sock")
    assert transfer_is_archive("auto", "tcp://127.0.0.1:2375") and transfer_is_archive("auto", "ssh://builder")
    assert transfer_is_archive("archive", "") and not transfer_is_archive("bind", "tcp://x:1")


def test_registry_line_in_a_target_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("REBUILD_HOME", str(tmp_path))
    folder = tmp_path / "containers" / "shared"
    folder.mkdir(parents=True)
    body = "image:\n  tag: x/shared:1\n  method: debootstrap\n  registry: {ref}\narch: x86_64\nbuild_command: rpmbuild\nuser: b\n"
    (folder / "target.yaml").write_text(body.format(ref=f"127.0.0.1:5000/x/shared@{DIGEST}"))
    with_line = load_target("shared")
    assert with_line.image.registry.endswith(DIGEST)
    (folder / "target.yaml").write_text(body.format(ref="127.0.0.1:5000/x/shared:1"))
    with pytest.raises(ConfigError, match=r"target.yaml:4: .*a tag alone"):
        load_target("shared")
    (folder / "target.yaml").write_text(body.format(ref=f"127.0.0.1:5000/x/shared@{'cd' * 32}").replace(
        f"{'cd' * 32}", f"sha256:{'cd' * 32}"))
    assert load_target("shared").image_key == with_line.image_key, "where an image is kept is not what it is made of"


def _engine_with_pushed(target, labels: dict) -> tuple[FakeEngine, str]:
    engine = FakeEngine()
    engine.images["elsewhere:1"] = "sha256:made-elsewhere"
    engine.labels["sha256:made-elsewhere"] = labels
    digest = engine.push("sha256:made-elsewhere", "127.0.0.1:5000/r/testroot", "t")
    return engine, f"127.0.0.1:5000/r/testroot@{digest}"


def test_pull_checks_the_definition_and_pins_by_digest(tmp_path):
    target = load_target("testroot")
    engine, ref = _engine_with_pushed(target, {"org.rebuild.definition": "something else"})
    with pytest.raises(CheckFailed, match="made from another definition"):
        pull_image(target, engine, ref, Log(quiet=True), tmp_path)
    assert read_pin(target, tmp_path) is None
    engine.labels["sha256:made-elsewhere"] = {"org.rebuild.definition": target.image_key, "org.rebuild.rootfs": "r"}
    pin = pull_image(target, engine, ref, Log(quiet=True), tmp_path)
    assert (pin.image_id, pin.registry, pin.made_from) == ("sha256:made-elsewhere", ref, "r")
    assert pin.content_id == "content:sha256:made-elsewhere" and engine.images[target.tag] == pin.image_id


def test_push_pins_the_digest(tmp_path):
    target = load_target("testroot")
    engine = FakeEngine()
    engine.images[target.tag] = "sha256:here"
    from rebuild.roots.pins import pin_image

    pin_image(target, engine, "sha256:here", "made", tmp_path)
    pin = push_image(target, engine, "127.0.0.1:5000/r/testroot", Log(quiet=True), tmp_path)
    assert pin.registry.startswith("127.0.0.1:5000/r/testroot@sha256:")
    assert read_pin(target, tmp_path).registry == pin.registry


def test_a_tree_image_without_its_lock_or_with_another_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("REBUILD_HOME", str(tmp_path))
    folder = tmp_path / "containers" / "tree"
    folder.mkdir(parents=True)
    (folder / "packages.txt").write_text("bash\n")
    (folder / "target.yaml").write_text("image: {tag: x/tree:1, method: rpmtree, packages: packages.txt}\n"
                                        "arch: i686\nbuild_command: rpm\nuser: b\nuid: 500\n")
    target = load_target("tree")
    engine, ref = _engine_with_pushed(target, {"org.rebuild.definition": target.image_key, "org.rebuild.lock": "x"})
    with pytest.raises(UsageError, match="holds no /usr/share/rebuild/root.lock.json"):
        pull_image(target, engine, ref, Log(quiet=True), tmp_path)


def _tar(members: list[tuple[str, bytes | None, str | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_what_a_container_sends_back_stays_in_its_folder(tmp_path):
    dest = tmp_path / "work"
    dest.mkdir()
    extract([_tar([("RPMS", None, None), ("RPMS/a.rpm", b"rpm", None)])], dest, "RPMS")
    assert (dest / "RPMS" / "a.rpm").read_bytes() == b"rpm"
    for bad in ([("RPMS", None, None), ("RPMS/../../escape", b"x", None)],
                [("RPMS", None, None), ("RPMS/link", None, "/etc/passwd"), ("RPMS/link/x", b"x", None)],
                [("SPECS", None, None)]):
        with pytest.raises(BuildFailed):
            extract([_tar(bad)], dest, "RPMS")
    assert not (tmp_path / "escape").exists()
    assert json.dumps(sorted(p.name for p in dest.rglob("*"))) == '["RPMS", "a.rpm"]'
