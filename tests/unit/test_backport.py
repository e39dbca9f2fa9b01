"""Recipes that carry a backport (spec.patches, spec.buildrequires, build.user), a --set to the value the
spec already has, the name of a bare SRPM's implied recipe, and what a failed rpmbuild's log says."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from rebuild.config.newrecipe import implied_recipe
from rebuild.config.recipe import SpecEdits, SpecPatch, load_recipe
from rebuild.errors import ConfigError, UsageError
from rebuild.pipeline.buildindex import build_key
from rebuild.pipeline.spec import SpecText, edit_spec
from rebuild.pipeline.workdir import failure_cause

SPEC = """\
%define errata 80
Summary: a 1999 program
Name: rdate
Version: 0.960923
Release: 9cl.%{errata}
Copyright: GPL
Source: rdate-960923.tar.gz
Patch: rdate-960923-make.patch
BuildPrereq: byacc, m4 >= 1.4
BuildRoot: /var/tmp/rdate-root

%description
rdate.

%prep
%setup -q -n rdate
%patch -p1

%build
make
"""


def _spec(tmp_path: Path, text: str = SPEC) -> SpecText:
    path = tmp_path / "rdate.spec"
    path.write_text(text)
    return SpecText.read(path)


def _patch(tmp_path: Path, name: str = "rdate-stime.patch", level: int = 1) -> SpecPatch:
    (tmp_path / name).write_text("--- a/x\n+++ b/x\n")
    return SpecPatch(tmp_path / name, level, hashlib.sha256(b"--- a/x\n+++ b/x\n").hexdigest())


def test_a_patch_is_added_as_the_next_patch_tag_and_applied_after_the_last_patch_line(tmp_path):
    result = edit_spec(_spec(tmp_path), SpecEdits(patches=(_patch(tmp_path), _patch(tmp_path, "two.patch", 0))))
    lines = result.edited.splitlines()
    assert lines[lines.index("Patch: rdate-960923-make.patch") + 1:][:2] == ["Patch1: rdate-stime.patch",
                                                                             "Patch2: two.patch"]
    assert lines[lines.index("%patch -p1") + 1:][:2] == ["%patch1 -p1", "%patch2 -p0"]
    assert len(result.changes) == 2 and "applied in %prep with -p1" in result.changes[0]


def test_a_spec_without_setup_has_nowhere_to_apply_a_patch(tmp_path):
    with pytest.raises(UsageError, match="no %setup or %patch line"):
        edit_spec(_spec(tmp_path, SPEC.replace("%setup -q -n rdate\n%patch -p1\n", "")),
                  SpecEdits(patches=(_patch(tmp_path),)))


def test_buildrequires_are_removed_from_buildprereq_lines_and_added(tmp_path):
    result = edit_spec(_spec(tmp_path), SpecEdits(buildrequires_add=("ncurses-devel", "zlib-devel >= 1.1"),
                                                  buildrequires_remove=("byacc",)))
    lines = result.edited.splitlines()
    i = lines.index("BuildPrereq: m4 >= 1.4")
    assert lines[i + 1:i + 3] == ["BuildRequires: ncurses-devel", "BuildRequires: zlib-devel >= 1.1"]
    both = edit_spec(_spec(tmp_path), SpecEdits(buildrequires_remove=("byacc", "m4")))
    assert "BuildPrereq" not in both.edited, "a line left empty goes"
    with pytest.raises(UsageError, match="bison is in no BuildRequires"):
        edit_spec(_spec(tmp_path), SpecEdits(buildrequires_remove=("bison",)))


def test_a_value_the_spec_already_has_is_unchanged_and_said(tmp_path):
    result = edit_spec(_spec(tmp_path), SpecEdits(macros=(("errata", "80"),)))
    assert result.unchanged == ["errata"] and not result.changed
    assert any("already 80" in note for note in result.notes)
    assert edit_spec(_spec(tmp_path), SpecEdits(macros=(("errata", "73"),))).unchanged == []


def _recipe(tmp_path: Path, extra: str) -> Path:
    (tmp_path / "x.src.rpm").write_bytes(b"")
    path = tmp_path / "r.yaml"
    path.write_text("name: r\nsource:\n  srpm: x.src.rpm\n  urls: [x.src.rpm]\ntarget: testroot\n" + textwrap.dedent(extra))
    return path


def test_a_recipe_carries_patches_buildrequires_and_build_user(tmp_path):
    _patch(tmp_path)
    recipe = load_recipe(_recipe(tmp_path, """\
        spec:
          patches:
            - {file: rdate-stime.patch, level: 0}
          buildrequires: {add: [ncurses-devel], remove: [byacc]}
        build:
          user: root
        """))
    assert recipe.spec.patches[0].level == 0 and recipe.spec.patches[0].path.name == "rdate-stime.patch"
    assert recipe.spec.buildrequires_add == ("ncurses-devel",) and recipe.build_user == "root"
    edits = recipe.spec.as_dict()
    assert edits["patches"][0]["sha256"] == recipe.spec.patches[0].sha256
    key, inputs = build_key(recipe, _target(), "img", "0" * 64, skip_deps_check=False)
    assert inputs["build_user"] == "root" and inputs["spec_edits"]["buildrequires"]["remove"] == ["byacc"]
    (tmp_path / "rdate-stime.patch").write_text("changed\n")
    assert build_key(load_recipe(recipe.path), _target(), "img", "0" * 64, skip_deps_check=False)[0] != key, \
        "a changed patch file is another build"


def test_recipes_without_a_backport_keep_their_build_keys(tmp_path):
    recipe = load_recipe(_recipe(tmp_path, ""))
    _, inputs = build_key(recipe, _target(), "img", "0" * 64, skip_deps_check=False)
    assert set(inputs["spec_edits"]) == {"macros", "add_macros", "release_suffix"} and "build_user" not in inputs


@pytest.mark.parametrize("extra, message", [
    ("spec:\n  patches:\n    - {file: missing.patch}\n", "must be a file beside the recipe"),
    ("spec:\n  patches:\n    - {file: ../up.patch}\n", "must be a file beside the recipe"),
    ("spec:\n  patches: [{file: p.patch, level: x}]\n", "patch level must be a number"),
    ("spec:\n  buildrequires: {add: ['a; rm -rf /']}\n", "is not NAME or NAME >= VERSION"),
    ("spec:\n  buildrequires: {drop: [a]}\n", "unknown key"),
    ("build:\n  user: admin\n", "build.user may only be root"),
])
def test_bad_backport_settings_name_the_line(tmp_path, extra, message):
    (tmp_path / "p.patch").write_text("x\n")
    with pytest.raises(ConfigError, match=message) as info:
        load_recipe(_recipe(tmp_path, extra))
    assert str(tmp_path / "r.yaml") in info.value.message


def _target():
    from rebuild.config.target import load_target

    return load_target("testroot")


def test_two_srpms_of_one_name_imply_two_recipes(tmp_path):
    first, second = tmp_path / "less-332-8cl.src.rpm", tmp_path / "less-332-9cl.src.rpm"
    first.write_bytes(b"8")
    second.write_bytes(b"9")
    a, _ = implied_recipe(str(first), "testroot", (), None, None, tmp_path / ".implied")
    b, _ = implied_recipe(str(second), "testroot", (), None, None, tmp_path / ".implied")
    assert a.path != b.path and a.source.srpm == first.name and b.source.srpm == second.name
    assert a.name == b.name == "less"
    second.write_bytes(b"other bytes, same name")
    c, _ = implied_recipe(str(second), "testroot", (), None, None, tmp_path / ".implied")
    assert c.path != b.path, "named by digest too"
    assert b.text != "" and "less-332-9cl.src.rpm" in b.text


@pytest.mark.parametrize("log, cause", [
    ("+ make\nmake: makeinfo: No such file or directory\nmake: *** [Makefile:113: x.info] Error 127\n"
     "error: Bad exit status from /var/tmp/rpm-tmp.1 (%build)\n\n\nRPM build errors:\n",
     " in %build: make: makeinfo: No such file or directory"),
    ("checking for strerror... yes\n*** /usr/bin/file, produces output that libtool cannot recognize.\n"
     "config.h:21:1: error: expected identifier\nBad exit status from /var/tmp/rpm-tmp.2 (%build)\n",
     " in %build: config.h:21:1: error: expected identifier"),
    ("Processing files: flex\nerror: File not found: /var/tmp/flex-root/usr/man/man1/lex.1\n\nRPM build errors:\n",
     ": error: File not found: /var/tmp/flex-root/usr/man/man1/lex.1"),
])
def test_a_failed_rpmbuild_is_summed_up_by_its_section_and_first_cause(tmp_path, log, cause):
    path = tmp_path / "build.log"
    path.write_text(log)
    assert failure_cause(path) == cause
