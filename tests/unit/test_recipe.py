from __future__ import annotations

import textwrap

import pytest

from rebuild.config.recipe import load_recipe
from rebuild.errors import ConfigError

GOOD = """\
name: sendmail
source:
  srpm: sendmail-8.12.8-9.80.src.rpm
  urls:
    - http://archive.example/updates/8.0/en/os/SRPMS/sendmail-8.12.8-9.80.src.rpm
    - local/sendmail-8.12.8-9.80.src.rpm
spec:
  macros:
    errata: 73
  release_suffix: .rb1
target: rh73
checks:
  - name: starttls
    run: [/usr/sbin/sendmail, -d0.1, -bv, root]
    expect_stdout: STARTTLS
"""


def _write(tmp_path, text):
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_recipe_loads_into_frozen_dataclasses(tmp_path):
    recipe = load_recipe(_write(tmp_path, GOOD))
    assert recipe.name == "sendmail"
    assert recipe.source.srpm == "sendmail-8.12.8-9.80.src.rpm"
    assert recipe.spec.macros == (("errata", "73"),)  # unquoted numbers stay text
    assert recipe.spec.release_suffix == ".rb1"
    assert recipe.checks[0].run == ("/usr/sbin/sendmail", "-d0.1", "-bv", "root")
    assert recipe.resolve("local/x.src.rpm") == str(tmp_path / "local/x.src.rpm")
    with pytest.raises(AttributeError):
        recipe.name = "other"


def test_version_like_numbers_are_not_floats(tmp_path):
    recipe = load_recipe(_write(tmp_path, GOOD.replace("errata: 73", "errata: 1.10")))
    assert recipe.spec.macros == (("errata", "1.10"),)


@pytest.mark.parametrize(
    "change, message",
    [
        (("target: rh73", "taget: rh73"), "r.yaml:11: unknown key 'taget' in the recipe; did you mean 'target'?"),
        (("  macros:", "  macro:"), "r.yaml:8: unknown key 'macro' in spec; did you mean 'macros'?"),
        (("  srpm: sendmail-8.12.8-9.80.src.rpm", "  srpm: sendmail.tar.gz"), "r.yaml:3: source.srpm 'sendmail.tar.gz' must name a .src.rpm"),
        (("    - local/", "    - ftp://host/"), "r.yaml:4: source.urls: ftp:// is not supported"),
        (("target: rh73", "target: rh73\nname: again"), "r.yaml:12: duplicate key 'name' (first at line 1)"),
        (("    errata: 73", "    errata: yes"), "r.yaml:9: spec.macros.errata must be a string value; quote it"),
        (("    errata: 73", "    err-ata: '73'"), "r.yaml:9: spec.macros: 'err-ata' is not a macro name"),
        (("  release_suffix: .rb1", "  release_suffix: 'a b'"), "r.yaml:10: spec.release_suffix 'a b' may hold only"),
        (("expect_stdout: STARTTLS", "expect_stdout: '(['"), "r.yaml:15: check starttls: bad regex"),
        (("name: sendmail", "name: [unclosed"), "r.yaml:2: invalid YAML"),
    ],
)
def test_bad_recipes_name_file_line_and_fix(tmp_path, change, message):
    old, new = change
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_recipe(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_wrong_shape(tmp_path):
    with pytest.raises(ConfigError, match=r"r.yaml:2: source must be a mapping \(key: value\), not a list"):
        load_recipe(_write(tmp_path, "name: a\nsource: [1]\ntarget: t\n"))
    with pytest.raises(ConfigError, match="a recipe must be a mapping"):
        load_recipe(_write(tmp_path, "- just\n- a list\n"))


def test_missing_required_key(tmp_path):
    with pytest.raises(ConfigError, match="needs the key 'target'"):
        load_recipe(_write(tmp_path, GOOD.replace("target: rh73\n", "")))


def test_missing_file_and_binary_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_recipe(tmp_path / "absent.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_recipe(binary)


def test_shipped_recipes_load():
    from tests.conftest import ROOT

    for path in sorted((ROOT / "specs").rglob("*.yaml")):
        if path.name.endswith("-floors.yaml"):
            continue
        assert load_recipe(path).name
