"""Real SRPMs as a 2003 build host takes them: BuildRequires (and BuildPrereq) solved from a bare SRPM's
header before any container, a Red-Hat-shaped i686 root (bash owns /bin/sh, headers in /usr/include), the 14
real 1999 SRPMs of ../shared/era-srpms each with a correct outcome, recipes that carry a backport (patches,
root builds) building 6 of them, two SRPMs of one name in one command, and --set to the current value."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from rebuild.cli.build import EXAMPLE
from tests.conftest import ROOT, make_srpm, run_cli
from tests.i686tree import ERA_SRPMS, make_srpm_in

pytestmark = pytest.mark.docker

ERA_RECIPES = ROOT / "specs" / "examples" / "era"

SMALL_SPEC = """\
Summary: needs {need}
Name: {name}
Version: 1.0
Release: 1
Copyright: MIT
Group: Test
BuildPrereq: {need}
BuildRoot: /var/tmp/{name}-root

%description
A 1999-style spec whose only build requirement is BuildPrereq.

%prep
%build
test -f /usr/include/gdbm.h
%install
mkdir -p $RPM_BUILD_ROOT/usr/share/{{a,b}}
echo {name} > $RPM_BUILD_ROOT/usr/share/a/{name}

%files
/usr/share/a/{name}
"""

# what each of the 14 real SRPMs does built bare on i686-test (gcc 12, glibc 2.36): built, or the cause the
# failure message names; every failure names its log too
ERA_BARE = {
    "cracklib": "built",
    "gdbm": "built",
    "autoconf": "in %build: make: makeinfo: No such file or directory",
    "bison": "in %install: /usr/bin/install: cannot remove '/usr/bin/bison': Permission denied",
    "ctags": "__has_attribute",
    "dialog": "in %install: install: cannot change ownership",
    "finger": "in %build: lprint.c:178:34: error: invalid use of undefined type 'struct tm'",
    "flex": "File not found: /var/tmp/flex-root/usr/man/man1/lex.1",
    "gettext": "in %build:",
    "lha": "in %install:",
    "libtermcap": "in %build: tparam.c:28:32: error",
    "popt": "in %build: config.h:21:1: error",
    "psmisc": "in %install: install: cannot change ownership",
    "rdate": "in %build: rdate.c:(.text.startup+0x124): undefined reference to `stime'",
}


@pytest.fixture(scope="module")
def era() -> Path:
    if not ERA_SRPMS.is_dir():
        pytest.skip(f"{ERA_SRPMS} is absent (set REBUILD_TEST_ERA_SRPMS to the era-srpms folder)")
    return ERA_SRPMS


def _small_srpm(image: str, tmp_path: Path, name: str, need: str) -> Path:
    folder = tmp_path / f"{name}-spec"
    folder.mkdir()
    (folder / f"{name}.spec").write_text(SMALL_SPEC.format(name=name, need=need))
    return make_srpm_in(image, folder / f"{name}.spec", tmp_path / f"{name}-srpm")


def test_a_bare_srpms_buildprereq_is_solved_into_the_root_and_a_missing_one_stops_before_any_container(
        i686, tmp_path):
    home, env, tree, image = i686
    needs = _small_srpm(image, tmp_path, "needsgdbm", "gdbm-devel")
    out = tmp_path / "out"
    built = run_cli("build", str(needs), "--target", "i686-test", "--out", str(out), env=env, timeout=900)
    assert built.returncode == 0, built.stderr
    manifest = json.loads((out / "needsgdbm-1.0-1" / "manifest.json").read_text())
    assert "gdbm-devel" in manifest["spec"]["buildrequires_after"]
    assert any(n.startswith("gdbm-devel-") for n in manifest["root"]["added"]), "installed into the build's layer"

    missing = _small_srpm(image, tmp_path, "needsnothing", "no-such-capability-1999")
    refused = run_cli("build", str(missing), "--target", "i686-test", "--out", str(out), env=env)
    assert refused.returncode == 2, refused.stderr
    assert "no-such-capability-1999" in refused.stderr
    assert "$ [rebuild-" not in refused.stderr, "no container was started"
    assert not (out / "needsnothing-1.0-1.failed").exists()


def test_the_i686_root_is_red_hat_shaped_where_specs_notice(i686):
    home, env, tree, image = i686
    proc = run_cli("-q", "shell", "i686-test", "--", "sh", "-c",
                   "echo {a,b}; readlink /bin/sh; test -f /usr/include/sys/stat.h && echo stat.h;"
                   " for t in flex bison m4 autoconf automake aclocal msgfmt unzip; do command -v $t >/dev/null || echo no $t; done",
                   env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["a b", "bash", "stat.h"], proc.stdout
    assert "no " not in proc.stdout, "the undeclared build tools of 1999 specs are there"


def test_the_14_real_1999_srpms_each_get_a_correct_outcome(i686, era, tmp_path):
    home, env, tree, image = i686
    srpms = sorted(era.glob("*.src.rpm"))
    assert len(srpms) == 14
    out = tmp_path / "out"
    proc = run_cli("build", *map(str, srpms), "--target", "i686-test", "--out", str(out), "--jobs", "2", env=env,
                   timeout=1800)
    assert proc.returncode == 10, proc.stderr
    summary = {line.split()[0]: line for line in proc.stderr.splitlines() if re.match(r"^[a-z]+ +(FAILED|\S+-\S+ )", line)}
    outcomes = {}
    for srpm in srpms:
        name = srpm.name.rsplit("-", 2)[0]
        nvr = srpm.name.removesuffix(".src.rpm")
        expected = ERA_BARE[name]
        if expected == "built":
            assert (out / nvr / "manifest.json").is_file(), name
            outcomes[name] = "built"
            continue
        (warning,) = [line for line in proc.stderr.splitlines() if line.startswith(f"[{name}] rebuild: warning: failed:")]
        assert expected in warning, warning
        assert f"full log: {out / (nvr + '.failed') / 'build.log'}" in warning
        assert (out / f"{nvr}.failed" / "build.log").is_file() and nvr in summary[name]
        outcomes[name] = warning.split("failed (exit 1)")[1].split("; full log")[0].strip(" :")
    print("\nera SRPMs, bare on i686-test:", file=sys.stderr)
    for name, outcome in sorted(outcomes.items()):
        seconds = summary[name].split()[-2] if name in summary else "?"
        print(f"  {name:12} {seconds:>6}s  {outcome}", file=sys.stderr)


def test_recipes_that_carry_a_backport_build_six_of_them(i686, era, tmp_path):
    home, env, tree, image = i686
    recipes = sorted(ERA_RECIPES.glob("*.yaml"))
    assert {r.stem for r in recipes} == {"rdate", "finger", "ctags", "dialog", "psmisc", "flex"}
    copies = tmp_path / "recipes"
    shutil.copytree(ERA_RECIPES, copies)
    for recipe in copies.glob("*.yaml"):  # the SRPMs where this machine has them
        text = recipe.read_text()
        recipe.write_text(re.sub(r"\.\./\.\./\.\./\.\./shared/era-srpms/", era.as_uri() + "/", text))
    out = tmp_path / "out"
    proc = run_cli("build", *sorted(map(str, copies.glob("*.yaml"))), "--out", str(out), "--jobs", "2", env=env,
                   timeout=1800)
    assert proc.returncode == 0, proc.stderr
    patched = 0
    for result in out.iterdir():
        if result.name.startswith("."):
            continue
        manifest = json.loads((result / "manifest.json").read_text())
        patches = manifest["spec"]["edits"].get("patches", [])
        patched += bool(patches)
        for patch in patches:
            assert f"applied in %prep with -p{patch['level']}" in " ".join(manifest["spec"]["changes"])
        provenance = json.loads((result / "provenance.json").read_text())
        assert "patches" in json.dumps(provenance) or not patches
        if manifest["recipe"]["name"] in ("dialog", "psmisc", "finger"):
            assert manifest["target"]["build_user"] == "root"
    assert patched >= 3


def test_set_to_the_value_the_spec_has_builds_and_two_srpms_of_one_name_keep_their_own_evidence(testroot, tmp_path):
    spec_dir = tmp_path / "hello"
    shutil.copytree(EXAMPLE, spec_dir)
    first = make_srpm(spec_dir / "hello.spec", tmp_path / "a")
    (spec_dir / "hello.spec").write_text((spec_dir / "hello.spec").read_text().replace("Version: 1.0", "Version: 1.1"))
    second = make_srpm(spec_dir / "hello.spec", tmp_path / "b")
    out = tmp_path / "out"
    same = run_cli("build", str(first), "--target", "testroot", "--set", "errata=80", "--out", str(out))
    assert same.returncode == 0, same.stderr
    assert "errata is already 80; nothing to change" in same.stderr
    assert (out / "hello-1.0-1.80" / "manifest.json").is_file()

    both = run_cli("build", str(first), str(second), "--target", "testroot", "--set", "errata=73", "--out", str(out))
    assert both.returncode == 0, both.stderr
    for srpm, nvr in ((first, "hello-1.0-1.73"), (second, "hello-1.1-1.73")):
        manifest = json.loads((out / nvr / "manifest.json").read_text())
        assert manifest["inputs"]["srpm"]["file"] == srpm.name and manifest["recipe"]["implied"]["source"]["srpm"] == srpm.name
        provenance = (out / nvr / "provenance.json").read_text()
        assert srpm.name in provenance and (second if srpm == first else first).name not in provenance

    verified = run_cli("verify", str(out / "hello-1.1-1.73"))
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.split() == ["ok", "install"], "a bare SRPM's result: its RPMs install"
