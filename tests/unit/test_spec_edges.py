"""Spec edits at the edges that 1,427 real specs turned up, each on a small spec of the same shape; the recipe
path (spec.macros in a build) behaves as `rebuild patch` does."""

from __future__ import annotations

import shutil

import pytest

from rebuild.config.recipe import SpecEdits, load_recipe
from rebuild.errors import UsageError
from rebuild.pipeline.spec import SpecText, edit_spec, patch_file
from tests.conftest import run_cli

HEAD = "Name: x\nVersion: 1\nRelease: 1\nSummary: x\nLicense: MIT\n"


def _spec(tmp_path, text: str, encoding: str = "utf-8"):
    path = tmp_path / "x.spec"
    path.write_bytes((HEAD + text).encode(encoding))
    return path


def _set(path, **values):
    return patch_file(path, SpecEdits(macros=tuple(values.items())))


def test_parametric_macros_keep_their_options(tmp_path):
    path = _spec(tmp_path, "%define greet() hello %1\n%define multi(a:) \\\n  first %{-a*} \\\n  second\n")
    result = _set(path, greet="hi %1")
    assert "%define greet() hi %1\n" in path.read_text()
    assert any("greet() is a parametric macro; its body is set, its options kept" in n for n in result.notes)
    proc = run_cli("patch", str(path), "--set", "multi(a:)=one %{-a*}")
    assert proc.returncode == 0, proc.stderr
    assert "%define multi(a:) one %{-a*}\n" in path.read_text() and "second" not in path.read_text()
    assert "spanned 3 lines" in proc.stderr, "collapsing a multi-line body is said"


def test_global_with_the_backslash_right_after_the_name(tmp_path):
    path = _spec(tmp_path, "%global errata\\\n    80\nRelease2: %{errata}\n")
    result = _set(path, errata="73")
    assert "%global errata 73\n" in path.read_text() and "    80" not in path.read_text()
    (change,) = result.changes
    assert change.startswith("x.spec:6: errata '") and change.endswith("80' -> '73'")


@pytest.mark.parametrize("value, message", [
    ("73\\", "ends in a backslash"), ("%{expand:73", "never closes"), ("%(echo 73", "never closes"),
    ("%{?dist:%{dist}", "never closes"), ("73\n%post", "one line"),
])
def test_values_that_would_break_the_spec_are_refused(tmp_path, value, message):
    path = _spec(tmp_path, "%define errata 80\n%changelog\n")
    before = path.read_bytes()
    with pytest.raises(UsageError, match=message):
        _set(path, errata=value)
    assert path.read_bytes() == before and not (tmp_path / "x.spec.orig").exists()


def test_balanced_values_and_an_empty_one(tmp_path):
    path = _spec(tmp_path, "%define errata 80\n%define other 1\n")
    _set(path, errata="%{?rhel:%{rhel}}%%x")
    assert "%define errata %{?rhel:%{rhel}}%%x\n" in path.read_text()
    result = _set(path, other="")
    assert "%define other %{nil}\n" in path.read_text()
    assert any("set to %{nil}" in n for n in result.notes)
    again = _set(path, other="")
    assert not again.changed, "the next edit reads the result back"


def test_a_value_outside_latin1_in_a_latin1_spec(tmp_path):
    path = _spec(tmp_path, "%define v velho\n%changelog\n* Jos\xe9 Jo\xe3o\n", encoding="latin-1")
    before = path.read_bytes()
    proc = run_cli("-q", "patch", str(path), "--set", "v=\u20acuro")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1 and "latin-1" in proc.stderr
    assert path.read_bytes() == before and not (tmp_path / "x.spec.orig").exists()
    assert run_cli("patch", str(path), "--set", "v=n\xe3o").returncode == 0, "a Latin-1 value round-trips"
    assert SpecText.read(path).encoding == "latin-1" and "%define v n\xe3o\n" in path.read_bytes().decode("latin-1")


def test_definitions_in_comments_are_the_ones_rpm_runs(tmp_path):
    path = _spec(tmp_path, "%global x new\nRelease2: %{x}\n#%global x old\n")
    result = _set(path, x="73")
    assert path.read_text().count("%global x 73") == 2, "the comment's definition would still win"
    only = _spec(tmp_path, "#%define y 1\n")
    result = _set(only, y="2")
    assert "#%define y 2" in only.read_text()
    assert any("rpm expands macros in comments" in n for n in result.notes)


def test_a_conditional_default_alone_points_to_add(tmp_path):
    path = _spec(tmp_path, "%{!?with_tls:%global with_tls 1}\n")
    proc = run_cli("-q", "patch", str(path), "--set", "with_tls=0")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert "conditional default" in proc.stderr and "--add with_tls=VALUE" in proc.stderr
    assert run_cli("patch", str(path), "--add", "with_tls=0").returncode == 0
    assert path.read_text().startswith("%define with_tls 0\n")


def test_vercmp_takes_a_leading_dash():
    proc = run_cli("vercmp", "1.0", "-1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "cannot compare" in proc.stderr
    assert run_cli("vercmp", "--", "2", "1").returncode == 11


def test_the_recipe_path_behaves_as_patch(tmp_path):
    spec = _spec(tmp_path, "%define greet() hello\n%global errata\\\n 80\n#%define errata 70\n")
    (tmp_path / "b").mkdir()
    copy = tmp_path / "b" / "x.spec"
    shutil.copy(spec, copy)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\nsource:\n  srpm: x-1-1.src.rpm\n  urls: [x.src.rpm]\ntarget: testroot\n"
                      "spec:\n  macros:\n    errata: '73'\n    greet(): hi\n")
    edits = load_recipe(recipe).spec
    in_build = edit_spec(SpecText.read(copy), edits)
    by_patch = patch_file(spec, edits)
    assert in_build.edited == by_patch.edited and in_build.notes == by_patch.notes
    bad = recipe.read_text().replace("greet(): hi", "greet(): '%{oops'")
    recipe.write_text(bad)
    with pytest.raises(UsageError, match="never closes"):
        edit_spec(SpecText.read(copy), load_recipe(recipe).spec)


def test_a_large_spec_is_edited_in_bounded_time(tmp_path):
    import time

    path = _spec(tmp_path, "%define errata 80\n" + "%define m%d value\n" * 0 + "# filler line\n" * 200_000)
    start = time.monotonic()
    _set(path, errata="73")
    assert time.monotonic() - start < 10


def test_conditional_definitions_on_other_macros_are_edited_and_named(tmp_path):
    """Dag Wieers' sendmail spec for Red Hat 6.2/7.x chose errata per release: %{?rh7:%define errata 73}."""
    path = _spec(tmp_path, "%{?rh7:%define errata 73}\n%{?rh6:%define errata 62}\n%{!?errata:%global errata 80}\n"
                           "%description\nx\n")
    result = _set(path, errata="75")
    text = path.read_text()
    assert "%{?rh7:%define errata 75}" in text and "%{?rh6:%define errata 75}" in text
    assert "%{!?errata:%global errata 80}" in text, "the default of errata itself is left alone"
    notes = " ".join(result.notes)
    assert "when rh7 is defined" in notes and "when rh6 is defined" in notes and "--add errata=VALUE" in notes


def test_surrounding_blanks_are_stripped_once_so_the_edit_is_idempotent(tmp_path):
    path = _spec(tmp_path, "%define errata 80\n%description\nx\n")
    first = _set(path, errata="  73 ")
    assert "%define errata 73\n" in path.read_text() and any("without its leading" in n for n in first.notes)
    again = _set(path, errata="  73 ")
    assert not again.changed


def test_an_epoch_above_rpms_range_is_refused():
    from tests.conftest import run_cli

    proc = run_cli("vercmp", "4294967296:1.0", "0:1.0")
    assert proc.returncode == 2 and "4294967295" in proc.stderr
    assert run_cli("vercmp", "4294967295:1.0", "0:1.0").returncode == 11


def test_lines_rpm_never_runs_as_definitions_are_left_alone(tmp_path):
    """A C #define in a %prep here-document, an escaped #%%global and a %dnl line are not definitions rpm runs;
    a #%define in a comment is (rpm expands macros in comments) and is edited."""
    path = _spec(tmp_path, "%define errata 80\n%description\nx\n%prep\ncat > version.h <<EOF\n#define errata 1\nEOF\n"
                           "#%%global errata 70\n%dnl %global errata 71\n#%define errata 72\n")
    result = _set(path, errata="73")
    text = path.read_text()
    assert "#define errata 1\n" in text and "#%%global errata 70\n" in text and "%dnl %global errata 71\n" in text
    assert "%define errata 73\n" in text and "#%define errata 73\n" in text
    assert len(result.changes) == 2


def test_options_given_with_a_name_are_refused_not_ignored(tmp_path):
    path = _spec(tmp_path, "%define greet(a:) hello %1\n")
    with pytest.raises(UsageError, match="options are not changed by an edit"):
        _set(path, **{"greet(b:)": "hi"})
    assert "hello %1" in path.read_text()
