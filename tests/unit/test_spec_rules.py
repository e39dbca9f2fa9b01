"""Edits rpm would undo or skip (pipeline/specrules.py): a %bcond that makes or re-sets with_x, and a
definition in a branch of %if that the spec's own definitions show is not taken."""

from __future__ import annotations

import pytest

from rebuild.config.recipe import SpecEdits
from rebuild.errors import UsageError
from rebuild.pipeline.spec import patch_file
from rebuild.pipeline.specrules import evaluate, untaken_branches

TAIL = "Name: x\nVersion: 1\nRelease: 1.%{errata}\nSummary: x\nLicense: MIT\n%description\nx\n%files\n"


def _patch(tmp_path, head: str, **values):
    path = tmp_path / "x.spec"
    path.write_text(head + TAIL)
    return path, patch_file(path, SpecEdits(macros=tuple(values.items())))


def test_with_x_made_by_a_bcond_is_refused_naming_the_bcond_line(tmp_path):
    """PLD's %bcond_without x defines with_x: there is no %define to edit, and the message says where."""
    with pytest.raises(UsageError) as err:
        _patch(tmp_path, "%define errata 80\n%bcond_without ssl\n", with_ssl="0")
    assert "x.spec:2: with_ssl is made by `%bcond_without ssl`" in err.value.message
    assert "%bcond_with ssl: off" in err.value.message


def test_a_bcond_after_the_edited_definition_sets_it_again_and_is_refused(tmp_path):
    with pytest.raises(UsageError, match=r"x.spec:3: `%bcond_without ssl` comes after"):
        _patch(tmp_path, "%define errata 80\n%define with_ssl 0\n%bcond_without ssl\n", with_ssl="1")
    # a %bcond before the definition: the definition wins, as rpm runs them in order
    path, result = _patch(tmp_path, "%define errata 80\n%bcond_without ssl\n%define with_ssl 0\n", with_ssl="1")
    assert "%define with_ssl 1\n" in path.read_text() and result.changes


def test_a_definition_in_a_branch_not_taken_is_named(tmp_path):
    head = "%define errata 80\n%if 0%{?rhel} >= 7\n%define errata 90\n%else\n%define errata 85\n%endif\n"
    path, result = _patch(tmp_path, head, errata="73")
    text = path.read_text()
    assert text.count("%define errata 73") == 3, "every definition is edited"
    notes = "\n".join(result.notes)
    assert "x.spec:3: inside `%if 0%{?rhel} >= 7` (line 2), which is false" in notes
    assert "x.spec:5" not in notes, "the %else branch is the one taken"


def test_a_branch_that_cannot_be_judged_is_not_named(tmp_path):
    head = "%define errata 80\n%ifarch i386\n%define errata 90\n%endif\n%if %{_vendor} == \"redhat\"\n%define errata 91\n%endif\n"
    _, result = _patch(tmp_path, head, errata="73")
    assert not any("false" in n for n in result.notes), result.notes


@pytest.mark.parametrize(("expression", "macros", "taken"), [
    ("0%{?rhel} >= 7", {}, False),
    ("0%{?rhel} >= 7", {"rhel": "7"}, True),
    ("%{?fedora:1}%{!?fedora:0}", {}, False),
    ("%{with ssl}", {"with_ssl": "1"}, True),
    ("%{without ssl}", {"with_ssl": "1"}, False),
    ("!%{defined errata} || 0%{errata} == 73", {"errata": "73"}, True),
    ("(1 && 0) || -1", {}, True),
    ("\"%{?dist}\" == \"\"", {}, True),
    ("%{_arch} == \"i386\"", {}, None),      # the host's macro: not judged
    ("%{errata} > 5", {"errata": None}, None),  # defined, but not as plain text
    ("1 +", {}, None),
])
def test_the_evaluation_of_conditions(expression, macros, taken):
    assert evaluate(expression, macros) is taken


def test_elif_and_nesting():
    bodies = ["%define a 1", "%if 0%{a} == 2", "x", "%elif 0%{a} == 1", "y", "%if 0", "z", "%endif", "%else", "w",
              "%endif"]
    untaken = untaken_branches(bodies)
    assert set(untaken) == {2, 6, 9}
    assert untaken[6] == "`%if 0` (line 6)" and "%else" in untaken[9]


def test_a_colon_after_the_name_is_a_definition_rpm_runs(tmp_path):
    """rpm 4.18 runs `%define errata: 80` (with a warning, the colon in the body): it is edited, and said."""
    path, result = _patch(tmp_path, "%define errata: 80\n", errata="73")
    assert path.read_text().startswith("%define errata 73\n")
    assert any("no blank before its body" in n for n in result.notes)


def test_the_not_defined_spelling_with_the_bang_second_is_a_conditional_default(tmp_path):
    with pytest.raises(UsageError, match="the only definition of errata is the conditional default"):
        _patch(tmp_path, "%{?!errata:%define errata 80}\n", errata="73")
    path, result = _patch(tmp_path, "%define errata 80\n%{?!rh7:%define errata 81}\n", errata="73")
    assert "%{?!rh7:%define errata 73}" in path.read_text()
    assert any("when rh7 is not defined" in c for c in result.changes)


def test_the_diff_keeps_a_line_with_a_lone_cr_whole(tmp_path):
    path, result = _patch(tmp_path, "%define errata 80\nSummary2: a\rb\n", errata="73")
    diff = result.diff()
    assert " Summary2: a\rb\n" in diff, diff
    assert all(line[:1] in " +-@\\" for line in diff.split("\n") if line), "every line of the diff is a diff line"
