"""Tree packages that are not what was solved or pinned: a mirror serving other bytes under a solved name, a
local tree whose package was rebuilt under the same file name, a remote one that changed after first use."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from rebuild.errors import CheckFailed
from rebuild.log import Log
from rebuild.roots.buildroot import fetch_packages
from rebuild.roots.treeindex import read_tree
from tests.httpfault import FaultServer
from tests.rpmtree_data import build_rpm, simple_spec


@pytest.fixture(scope="module")
def rpms(tmp_path_factory):
    base = tmp_path_factory.mktemp("pkgs")
    made = {
        "tool": build_rpm(simple_spec("tool", "1.0", "1", "noarch", {"/usr/share/tool/v": "first"}), base / "a"),
        "tool-fixed": build_rpm(simple_spec("tool", "1.0", "1", "noarch", {"/usr/share/tool/v": "fixed"}), base / "b"),
        "other": build_rpm(simple_spec("other", "2.0", "1", "noarch", {"/usr/share/other/v": "x"}), base / "c"),
    }
    assert made["tool"].name == made["tool-fixed"].name and made["tool"].read_bytes() != made["tool-fixed"].read_bytes()
    return made


def _local_tree(folder, *packages):
    folder.mkdir(parents=True, exist_ok=True)
    for p in packages:
        shutil.copy(p, folder / p.name)
    return folder


def test_a_package_rebuilt_in_a_local_tree_is_followed_and_said(rpms, tmp_path):
    tree = _local_tree(tmp_path / "tree", rpms["tool"])
    cache, known, log = tmp_path / "cache", {}, Log(quiet=True)
    [tool] = read_tree(str(tree), "os", cache)
    first, _ = fetch_packages([tool], cache, log, known)
    assert first[0].read_bytes() == rpms["tool"].read_bytes()
    shutil.copy(rpms["tool-fixed"], tree / rpms["tool"].name)  # the same NEVRA, fixed
    warnings = []
    log.warn = warnings.append
    [tool] = read_tree(str(tree), "os", cache)
    again, locked = fetch_packages([tool], cache, log, known)
    assert again[0].read_bytes() == rpms["tool-fixed"].read_bytes(), "the tree's bytes, not the stale first copy"
    assert locked[0].sha256 == known[tool.filename] != first[0].name
    assert any("changed in the local tree" in w and "following the tree" in w for w in warnings)


def test_a_remote_package_changed_since_first_use_is_refused_naming_both_digests(rpms, tmp_path):
    import hashlib

    name = rpms["tool"].name
    files = {"/" + name: rpms["tool"].read_bytes()}
    cache, known_file = tmp_path / "cache", tmp_path / "packages.json"
    with FaultServer(files=files) as server:
        [tool] = read_tree(server.url + "/", "os", cache)
        known = {}
        fetch_packages([tool], cache, Log(quiet=True), known, known_file)
        shutil.rmtree(cache / "srpms")  # the downloaded copy is gone (pruned): the first-use pin is what is left
        files["/" + name] = rpms["tool-fixed"].read_bytes()
        with pytest.raises(CheckFailed) as err:
            fetch_packages([tool], cache, Log(quiet=True), known, known_file)
    message = err.value.message
    assert hashlib.sha256(rpms["tool"].read_bytes()).hexdigest() in message
    assert hashlib.sha256(rpms["tool-fixed"].read_bytes()).hexdigest() in message
    assert str(known_file) in message and "delete its entry" in message and "\n" not in message


def test_a_mirror_serving_another_package_under_the_solved_name_is_refused(rpms, tmp_path):
    name = rpms["tool"].name
    cache = tmp_path / "cache"
    with FaultServer(files={"/" + name: rpms["tool"].read_bytes()}) as server:
        [tool] = read_tree(server.url + "/", "os", cache)
        # the index said tool-1.0-1; the download is another package's bytes under that name
        server.files["/" + name] = rpms["other"].read_bytes()
        with pytest.raises(CheckFailed) as err:
            fetch_packages([replace(tool, sha256=None)], cache, Log(quiet=True), {})
    assert "other-2.0-1.noarch" in err.value.message and "tool-1.0-1.noarch" in err.value.message
    assert not list(cache.rglob("*.rpm")), "nothing cached under the solved name"
