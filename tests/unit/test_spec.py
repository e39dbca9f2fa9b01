"""rebuild patch / spec edits: exact outputs on 2003-style and tricky specs."""

from __future__ import annotations

import pytest

from rebuild.config.recipe import SpecEdits
from rebuild.errors import UsageError
from rebuild.pipeline.spec import SpecText, edit_spec, patch_file
from tests.conftest import DATA, copy_case, run_cli

ERRATA_73 = SpecEdits(macros=(("errata", "73"),))


def _edit(tmp_path, text: bytes | str, edits=ERRATA_73):
    path = tmp_path / "t.spec"
    path.write_bytes(text.encode("latin-1") if isinstance(text, str) else text)
    return patch_file(path, edits), path


def test_rh_style_spec_gets_a_one_line_diff(tmp_path):
    spec = copy_case("rhstyle", tmp_path) / "sendmail-like.spec"
    before = spec.read_bytes()
    result = patch_file(spec, ERRATA_73)
    changed = [line for line in result.diff().splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-%define errata 80", "+%define errata 73"]
    after = spec.read_bytes()
    assert after == before.replace(b"%define errata 80", b"%define errata 73")
    assert (spec.parent / "sendmail-like.spec.orig").read_bytes() == before
    assert result.changes == ["sendmail-like.spec:2: errata '80' -> '73'"]


def test_spacing_tabs_crlf_and_missing_final_newline_are_kept(tmp_path):
    text = b"Name: x\r\n%define  errata\t80   \r\nRelease: 1.%{errata}"
    result, path = _edit(tmp_path, text)
    assert path.read_bytes() == b"Name: x\r\n%define  errata\t73   \r\nRelease: 1.%{errata}"
    assert result.changed


def test_global_and_multiple_definitions_are_all_edited_and_said(tmp_path):
    text = "Name: x\n%global errata 80\n%if 0\n%define errata 81\n%endif\n"
    result, path = _edit(tmp_path, text)
    assert path.read_text() == "Name: x\n%global errata 73\n%if 0\n%define errata 73\n%endif\n"
    assert "t.spec: errata is defined 2 times (lines 2, 4); all are edited" in result.notes


def test_non_edits_and_commented_definitions_rpm_still_runs(tmp_path):
    """A conditional default and a similar name are left alone; definitions in comments are edited too,
    as rpm expands macros in comments (`#%define errata 70` after the live one would win)."""
    text = (
        "Name: x\n"
        "%define errata_old 80\n"
        "#%define errata 70\n"
        "# %define errata 71\n"
        "%{!?errata:%define errata 80}\n"
        "%define errata 80\n"
        "Release: 9.%{errata}\n"
        "%build\nif test %{errata} -gt 72; then echo new; fi\n"
    )
    result, path = _edit(tmp_path, text)
    assert path.read_text() == text.replace("%define errata 80\nRelease", "%define errata 73\nRelease").replace(
        "#%define errata 70", "#%define errata 73").replace("# %define errata 71", "# %define errata 73")
    assert "t.spec:5: conditional default of errata left alone (it only applies when errata is not already defined)" \
        in result.notes
    assert [n for n in result.notes if "rpm expands macros in comments" in n][0].startswith("t.spec:4: a comment")


def test_idempotent_second_run_changes_nothing(tmp_path):
    spec = copy_case("rhstyle", tmp_path) / "sendmail-like.spec"
    patch_file(spec, ERRATA_73)
    edited = spec.read_bytes()
    orig = (spec.parent / "sendmail-like.spec.orig").read_bytes()
    second = patch_file(spec, ERRATA_73)
    assert not second.changed and second.diff() == ""
    assert spec.read_bytes() == edited
    assert (spec.parent / "sendmail-like.spec.orig").read_bytes() == orig, "an existing .orig is never overwritten"


def test_existing_orig_is_not_overwritten(tmp_path):
    spec = copy_case("rhstyle", tmp_path) / "sendmail-like.spec"
    (spec.parent / "sendmail-like.spec.orig").write_text("older original\n")
    patch_file(spec, ERRATA_73)
    assert (spec.parent / "sendmail-like.spec.orig").read_text() == "older original\n"


def test_output_leaves_the_original_alone(tmp_path):
    spec = copy_case("rhstyle", tmp_path) / "sendmail-like.spec"
    before = spec.read_bytes()
    patch_file(spec, ERRATA_73, output=tmp_path / "new.spec")
    assert spec.read_bytes() == before
    assert b"%define errata 73" in (tmp_path / "new.spec").read_bytes()
    assert not (spec.parent / "sendmail-like.spec.orig").exists()


def test_latin1_spec_stays_latin1(tmp_path):
    text = "Name: x\n%define errata 80\n%changelog\n* Mon Jan 06 2003 Jos\xe9 Garc\xeda\n"
    _, path = _edit(tmp_path, text)
    assert path.read_bytes() == text.replace("80", "73").encode("latin-1")


def test_add_macro_and_release_suffix(tmp_path):
    text = "Name: x\n%define errata 80\nRelease:  9.%{errata}  \n"
    edits = SpecEdits(macros=(("errata", "73"),), add_macros=(("rebuilt", "1"),), release_suffix=".rb1")
    result, path = _edit(tmp_path, text, edits)
    assert path.read_text() == "%define rebuilt 1\nName: x\n%define errata 73\nRelease:  9.%{errata}.rb1  \n"
    again = patch_file(path, edits)
    assert not again.changed


def test_add_macro_that_exists_is_refused(tmp_path):
    with pytest.raises(UsageError, match=r"add_macros: errata is already defined here as '80'; change it with"
                                         r" --set errata=VALUE \(spec.macros in a recipe\)"):
        _edit(tmp_path, "Name: x\n%define errata 80\n", SpecEdits(add_macros=(("errata", "73"),)))


def test_undefined_macro_changes_nothing(tmp_path):
    text = "Name: x\nRelease: 1.%{errata}\n"
    path = tmp_path / "t.spec"
    path.write_text(text)
    with pytest.raises(UsageError, match=r"t.spec: macro 'errata' has no %define or %global to change"):
        patch_file(path, ERRATA_73)
    assert path.read_text() == text
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"\xed\xab\xee\xdb\x00\x00binary", "binary file"),
        (b"Name: x\n%define errata 80\n\x01\x02\xff\n", r"not text \(2 control bytes, the first at byte offset 26\)"),
        (b"just some notes\n", "not a spec file"),
    ],
)
def test_not_a_spec(tmp_path, content, message):
    path = tmp_path / "t.spec"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        SpecText.read(path)


def test_edit_in_memory_matches_file_edit(tmp_path):
    spec = SpecText.read(DATA / "rhstyle" / "sendmail-like.spec")
    result = edit_spec(spec, ERRATA_73)
    assert result.original.count("%define errata 80") == 1
    assert result.edited.count("%define errata 73") == 1


def test_cli_patch_prints_diff_and_exit_codes(tmp_path):
    spec = copy_case("rhstyle", tmp_path) / "sendmail-like.spec"
    proc = run_cli("patch", str(spec), "--set", "errata=73")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("--- a/sendmail-like.spec\n+++ b/sendmail-like.spec\n")
    assert "-%define errata 80\n+%define errata 73\n" in proc.stdout
    again = run_cli("patch", str(spec), "--set", "errata=73")
    assert again.returncode == 0 and again.stdout == ""
    assert "nothing to change" in again.stderr
    missing = run_cli("patch", str(spec), "--set", "nosuch=1")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"rebuild: error: {spec}: macro 'nosuch' has no %define or %global to change; check the name, or define a new"
        " one with --add nosuch=VALUE (spec.add_macros in a recipe)"
    ]
    binary = tmp_path / "x.spec"
    binary.write_bytes(b"\x00\x01")
    proc = run_cli("patch", str(binary), "--set", "errata=73")
    assert proc.returncode == 2 and binary.read_bytes() == b"\x00\x01"
    usage = run_cli("patch", str(spec), "--set", "errata")
    assert usage.returncode == 2 and "NAME=VALUE" in usage.stderr


@pytest.mark.parametrize("description", [
    "Conectiva 1999: descri\u00e7\u00e3o".encode("utf-8") + b" \xe9\n",   # UTF-8 with one stray Latin-1 byte
    "\u041e\u043f\u0438\u0441\u0430\u043d\u0438\u0435\n".encode("cp1251"),  # ALT Linux: CP1251 (0x80-0x9f bytes too)
    b"\x85 ellipsis, \x96 dash from a Windows editor\n",
])
def test_a_spec_that_mixes_encodings_is_edited_byte_exactly(tmp_path, description):
    path = tmp_path / "t.spec"
    original = b"%define errata 80\nName: t\nRelease: 1.%{errata}\n%description\n" + description
    path.write_bytes(original)
    result = patch_file(path, ERRATA_73)
    assert result.changed
    assert path.read_bytes() == original.replace(b"%define errata 80", b"%define errata 73")


def test_the_release_suffix_reaches_every_release_line_rpm_may_use(tmp_path):
    path = tmp_path / "t.spec"
    path.write_text("Name: t\n%if 0%{?rhel}\nRelease: 1.el\n%else\nRelease: 1\n%endif\n"
                    "%package tools\nSummary: x\nRelease: 7\n")
    result = patch_file(path, SpecEdits(release_suffix=".rb1"))
    assert path.read_text().count(".rb1") == 3 and "Release: 7.rb1" in path.read_text()
    assert len(result.changes) == 3
    again = patch_file(path, SpecEdits(release_suffix=".rb1"))
    assert not again.changed and len(again.notes) == 3, "idempotent: each line said once"


@pytest.mark.parametrize("tag_line, refused", [
    ("Version: 1.0", True),          # the literal tag decides %version: the edit would change nothing built
    ("Version: %{version}", False),
    ("version: %version", False),
    ("Version: %{?version}%{!?version:1}", False),
])
def test_a_literal_tag_that_sets_the_macro_refuses_the_edit(tmp_path, tag_line, refused):
    path = tmp_path / "t.spec"
    text = f"%define version 1.0\nName: t\n{tag_line}\nRelease: 1\n"
    path.write_text(text)
    edits = SpecEdits(macros=(("version", "2.0"),))
    if refused:
        with pytest.raises(UsageError, match=r"t.spec:3: the Version: tag is the literal '1.0'.*edit the Version: tag"):
            patch_file(path, edits)
        assert path.read_text() == text, "nothing written"
    else:
        assert patch_file(path, edits).changed and "%define version 2.0" in path.read_text()
