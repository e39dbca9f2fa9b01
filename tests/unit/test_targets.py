from __future__ import annotations

import pytest

from rebuild.config.target import load_target
from rebuild.errors import ConfigError, UsageError


def test_testroot_target():
    target = load_target("testroot")
    assert target.image.method == "debootstrap"
    assert target.build_command == "rpmbuild"
    assert target.user == "builder" and target.uid == 1000
    assert target.wrap(["rpmbuild", "-ba"]) == ["rpmbuild", "-ba"]
    assert len(target.definition_sha256) == 64


def test_unknown_target_hints(monkeypatch):
    with pytest.raises(UsageError, match="did you mean 'testroot'"):
        load_target("testrot")


def test_target_validation(tmp_path, monkeypatch):
    monkeypatch.setenv("REBUILD_HOME", str(tmp_path))
    folder = tmp_path / "containers" / "old"
    folder.mkdir(parents=True)
    base = (
        "image: {tag: x/old:1, method: rpmtree}\narch: i686\npersonality: linux32\n"
        "build_command: rpm\nuser: builder\nuid: 500\n"
    )
    (folder / "target.yaml").write_text(base)
    target = load_target("old")
    assert target.wrap(["rpm", "-ba", "x.spec"]) == ["linux32", "rpm", "-ba", "x.spec"]
    (folder / "target.yaml").write_text(base.replace("user: builder", "user: root"))
    with pytest.raises(ConfigError, match="target.yaml:5: user must not be root"):
        load_target("old")
    (folder / "target.yaml").write_text(base.replace("personality: linux32", "personality: linux31"))
    with pytest.raises(ConfigError, match="target.yaml:3: personality must be one of"):
        load_target("old")
    (folder / "target.yaml").write_text(base.replace("arch: i686", "arc: i686"))
    with pytest.raises(ConfigError, match="unknown key 'arc' in the target; did you mean 'arch'"):
        load_target("old")
