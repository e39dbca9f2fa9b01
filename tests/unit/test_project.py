"""The project folder, the shipped targets, per-definition image tags and pins, and archive extraction on
a Python without tarfile's filters: what an installed rebuild, run from a user's own folder, relies on."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from rebuild.config.target import SHIPPED, load_target, target_sources
from rebuild.errors import BuildFailed, EnvironmentProblem
from rebuild.log import Log
from rebuild.roots.pins import Pin, check_image, image_dir, write_pin
from rebuild.settings import Settings, find_project
from rebuild.systems import transfer
from tests.unit.fake_engine import FakeEngine


def test_the_project_folder_is_the_nearest_one_upward_with_specs_or_containers(tmp_path):
    (tmp_path / "ops" / "specs").mkdir(parents=True)
    deep = tmp_path / "ops" / "specs" / "sub" / "deeper"
    deep.mkdir(parents=True)
    assert find_project(deep) == tmp_path / "ops"
    (tmp_path / "ops" / "specs" / "sub" / "containers").mkdir()
    assert find_project(deep) == tmp_path / "ops" / "specs" / "sub"
    lone = tmp_path / "lone"
    lone.mkdir()
    assert find_project(lone) == lone, "no project upward: the folder itself"


def test_rebuild_home_wins_over_the_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env({"REBUILD_HOME": "/srv/ops"}).home == Path("/srv/ops")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in __import__("os").environ.items() if k != "REBUILD_HOME"}
    return subprocess.run([sys.executable, "-m", "rebuild", *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=60)


def test_targets_lists_the_shipped_ones_and_a_projects_own_which_wins(tmp_path):
    listed = _cli("targets", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in listed.stdout.splitlines()}
    assert {"testroot", "rh73", "el", "i686-test"} <= set(rows)
    assert rows["testroot"][0] == "shipped" and rows["testroot"][1].endswith("rebuild/targets/testroot/target.yaml")
    mine = tmp_path / "containers" / "mytarget"
    shutil.copytree(SHIPPED / "testroot", mine)
    shutil.copytree(SHIPPED / "rh73", tmp_path / "containers" / "rh73")
    listed = _cli("targets", cwd=tmp_path / "containers")  # from a sub-folder: the project is found upward
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in listed.stdout.splitlines()}
    assert rows["mytarget"] == ["project", str(mine / "target.yaml")]
    assert rows["rh73"][0] == "project", "the project's own definition wins over the shipped one"
    assert target_sources(tmp_path)["testroot"].is_relative_to(SHIPPED)


def test_an_unknown_target_names_the_project_folder(tmp_path):
    proc = _cli("targets", "nosuch.yaml", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    with pytest.raises(Exception, match="unknown target 'testrot'; did you mean 'testroot'"):
        load_target("testrot", tmp_path)


def test_the_image_tag_and_the_pin_folder_belong_to_the_definition(tmp_path):
    shipped = load_target("i686-test", tmp_path)
    copy = tmp_path / "a" / "containers" / "i686-test"
    shutil.copytree(SHIPPED / "i686-test", copy)
    same = load_target("i686-test", tmp_path / "a")
    assert same.image_key == shipped.image_key, "the same definition in another folder is the same image"
    assert same.tag == shipped.tag and shipped.tag.startswith("rebuild/i686-test:1-")
    (copy / "packages.txt").write_text((copy / "packages.txt").read_text() + "m4\n")
    other = load_target("i686-test", tmp_path / "a")
    assert other.tag != shipped.tag and image_dir(other, tmp_path) != image_dir(shipped, tmp_path)


def _pinned(tmp_path) -> tuple:
    target = load_target("testroot", tmp_path)
    write_pin(Pin(target.name, target.tag, "sha256:mine", target.image_key, "x", content_id="c"), target, tmp_path)
    return target, FakeEngine()


def test_a_tag_re_made_elsewhere_keeps_the_pinned_image_while_the_engine_has_it(tmp_path):
    target, engine = _pinned(tmp_path)
    engine.images = {target.tag: "sha256:theirs", "kept-by-id": "sha256:mine"}
    assert check_image(target, engine, tmp_path) == "sha256:mine"


def test_a_pinned_image_that_is_gone_is_re_resolved_by_definition_and_said(tmp_path, capsys):
    target, engine = _pinned(tmp_path)
    engine.images = {target.tag: "sha256:theirs"}
    engine.labels = {"sha256:theirs": {"org.rebuild.definition": target.image_key}}
    assert check_image(target, engine, tmp_path, Log()) == "sha256:theirs"
    assert "re-made elsewhere from the same definition" in capsys.readouterr().err
    assert check_image(target, engine, tmp_path) == "sha256:theirs", "and pinned"
    engine.labels = {"sha256:theirs": {"org.rebuild.definition": "another"}}
    engine.images = {target.tag: "sha256:third"}
    with pytest.raises(EnvironmentProblem, match="not in the engine|another definition"):
        check_image(target, engine, tmp_path)


def _archive(*members: tuple[tarfile.TarInfo, bytes]) -> list[bytes]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return [buf.getvalue()]


def _member(name: str, kind=tarfile.REGTYPE, mode=0o644, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.uid = kind, mode, link, 12345
    return info


@pytest.fixture(params=["filters", "no-filters"])
def python_filters(request, monkeypatch):
    """Both the tarfile of Python >= 3.11.4 and the one of Debian 12's 3.11.2, which has no filters."""
    if request.param == "no-filters":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return request.param


def test_extraction_keeps_files_and_drops_set_id_bits(tmp_path, python_filters):
    chunks = _archive((_member("out", tarfile.DIRTYPE, 0o755), b""), (_member("out/a.rpm", mode=0o4755), b"rpm"),
                      (_member("out/link", tarfile.SYMTYPE, link="a.rpm"), b""))
    transfer.extract(chunks, tmp_path, "out")
    assert (tmp_path / "out" / "a.rpm").read_bytes() == b"rpm"
    assert (tmp_path / "out" / "a.rpm").stat().st_mode & 0o7777 == 0o755
    assert (tmp_path / "out" / "link").resolve() == (tmp_path / "out" / "a.rpm")


@pytest.mark.parametrize("member", [
    _member("out/../../escape"),
    _member("out/evil", tarfile.SYMTYPE, link="/etc/passwd"),
    _member("out/evil", tarfile.SYMTYPE, link="../../etc"),
    _member("out/dev", tarfile.CHRTYPE),
    _member("out/fifo", tarfile.FIFOTYPE),
], ids=["dotdot", "absolute-link", "escaping-link", "device", "fifo"])
def test_extraction_refuses_what_leaves_the_folder(tmp_path, python_filters, member):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(BuildFailed, match="refusing|failed"):
        transfer.extract(_archive((_member("out", tarfile.DIRTYPE, 0o755), b""), (member, b"")), dest, "out")
    assert not (tmp_path / "escape").exists()


def test_shell_refuses_a_result_folder_whose_path_would_add_mount_options(tmp_path):
    from rebuild.roots.shell import open_shell

    target, engine = _pinned(tmp_path)
    engine.images = {"kept": "sha256:mine"}
    evil = tmp_path / "out,source=,readonly=false"
    evil.mkdir()
    with pytest.raises(Exception, match="comma, quote or newline"):
        open_shell(target, engine, tmp_path, evil, ["true"], tty=False)


def test_shell_takes_a_results_layer_only_when_made_from_this_targets_definition(tmp_path):
    from rebuild.roots.shell import open_shell

    target, engine = _pinned(tmp_path)
    engine.images = {"kept": "sha256:mine", "other": "sha256:other-root"}
    engine.labels = {"sha256:other-root": {"org.rebuild.definition": "another target"}}
    result = tmp_path / "result"
    result.mkdir()
    (result / "manifest.json").write_text('{"root": {"image_id": "sha256:other-root"}}')
    used = []
    engine.shell = lambda image, *a, **k: used.append(image) or 0
    assert open_shell(target, engine, tmp_path, result, ["true"], tty=False) == 0
    assert used == ["sha256:mine"], "a manifest cannot name any image the engine holds"
