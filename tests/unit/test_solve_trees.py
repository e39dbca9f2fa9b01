"""Roots solved from trees of real RPMs made by rpmbuild: sonames derived from ELF files, versioned
requires, a file dependency, a conflict, an obsoletes, a package only in updates; read from a folder,
from an hdlist and over HTTP (headers only)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import textwrap
from pathlib import Path

import pytest

from rebuild.roots.solver import Unsolvable, Want, solve
from rebuild.roots.treeindex import IndexStats, read_tree
from tests.conftest import ROOT, run_cli
from tests.httpfault import FaultServer

LIB_C = "int greet(void) { return 42; }\n"
PROG_C = "int greet(void);\nint main(void) { return greet() == 42 ? 0 : 1; }\n"


def _spec(name: str, version: str, body: str, *, arch: str | None = "noarch", header: str = "") -> str:
    return textwrap.dedent(f"""\
        Name: {name}
        Version: {version}
        Release: 1
        Summary: {name}
        License: MIT
        {"BuildArch: " + arch if arch else ""}
        """) + textwrap.dedent(header) + "%description\n" + name + "\n" + textwrap.dedent(body)


def _build(spec_text: str, work: Path, out: Path) -> None:
    work.mkdir(parents=True)
    (work / "pkg.spec").write_text(spec_text)
    (work / "greet.c").write_text(LIB_C)
    (work / "main.c").write_text(PROG_C)
    proc = subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {work / 'top'}",
                           "--define", f"_sourcedir {work}", "--define", f"_rpmdir {out}",
                           "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
                           "--define", "debug_package %{nil}", str(work / "pkg.spec")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("solvetree")
    os_dir, updates = base / "os" / "RedHat" / "RPMS", base / "updates"
    os_dir.mkdir(parents=True)
    updates.mkdir()
    lib = _spec("libgreet", "1.0", """\
        %build
        gcc -shared -fPIC -Wl,-soname,libgreet.so.1 -o libgreet.so.1 %{_sourcedir}/greet.c
        %install
        mkdir -p %{buildroot}%{_libdir}
        install -m 755 libgreet.so.1 %{buildroot}%{_libdir}/libgreet.so.1
        %files
        %{_libdir}/libgreet.so.1
        """, arch=None)
    prog = _spec("greeter", "1.0", """\
        %build
        gcc -shared -fPIC -Wl,-soname,libgreet.so.1 -o libgreet.so.1 %{_sourcedir}/greet.c
        gcc -o greeter %{_sourcedir}/main.c ./libgreet.so.1
        %install
        mkdir -p %{buildroot}%{_bindir}
        install -m 755 greeter %{buildroot}%{_bindir}/greeter
        %files
        %{_bindir}/greeter
        """, arch=None, header="Requires: greetdata >= 2.0\nRequires: /usr/share/greet/motd\n")
    data = lambda v: _spec("greetdata", v, f"%install\nmkdir -p %{{buildroot}}/usr/share/greet\n"  # noqa: E731
                                         f"echo {v} > %{{buildroot}}/usr/share/greet/data\n%files\n/usr/share/greet/data\n")
    motd = _spec("motd", "1", "%install\nmkdir -p %{buildroot}/usr/share/greet\necho hi > %{buildroot}/usr/share/greet/motd\n"
                              "%files\n/usr/share/greet/motd\n")
    unused = _spec("unused", "1", "%install\nmkdir -p %{buildroot}/usr/share/unused\n"
                                  "head -c 2000000 /dev/urandom > %{buildroot}/usr/share/unused/blob\n"
                                  "%files\n/usr/share/unused/blob\n")
    for label, text, out in (
        ("lib", lib, os_dir), ("prog", prog, os_dir), ("data1", data("1.0"), os_dir), ("data2", data("2.0"), updates),
        ("motd", motd, os_dir), ("unused", unused, os_dir),
        ("oldtool", _spec("oldtool", "1", "%files\n"), os_dir),
        ("newtool", _spec("newtool", "2", "%files\n", header="Provides: oldtool = 2\nObsoletes: oldtool < 2\n"), updates),
        ("conflicter", _spec("conflicter", "1", "%files\n", header="Conflicts: greetdata\n"), os_dir),
    ):
        _build(text, base / "work" / label, out)
    # a C library for the programs: it provides what their ELF files require of the system's libc
    wanted = subprocess.run(["rpm", "-qp", "--requires", *map(str, os_dir.glob("*.x86_64.rpm"))], capture_output=True,
                            text=True, check=True).stdout.split("\n")
    libc = sorted({w.strip() for w in wanted if w.startswith(("libc.so", "ld-linux", "rtld("))})
    _build(_spec("glibc", "2.36", "%files\n", header="".join(f"Provides: {cap}\n" for cap in libc)),
           base / "work" / "glibc", os_dir)
    return base


def _trees(tree: Path, cache: Path, stats: IndexStats | None = None):
    return [read_tree(str(tree / "os"), "os", cache, stats=stats), read_tree(str(tree / "updates"), "updates", cache,
                                                                              stats=stats)]


def test_closure_is_installed_and_nothing_more(tree, tmp_path):
    solution = solve(_trees(tree, tmp_path), "x86_64", [Want("base", "greeter")])
    assert {p.name: (p.version, p.origin) for p in solution.install} == {
        "greeter": ("1.0", "os"), "libgreet": ("1.0", "os"), "greetdata": ("2.0", "updates"), "motd": ("1", "os"),
        "glibc": ("2.36", "os")}
    greeter = next(p for p in solution.install if p.name == "greeter")
    assert any(name.startswith("libgreet.so.1") for name, _, _ in greeter.requires), "a soname from the ELF file"
    assert solution.explain("libgreet")[0].startswith("libgreet-1.0-1.x86_64: required by greeter-1.0-1.x86_64"
                                                      " (it requires libgreet.so.1")
    assert solution.explain("motd")[0] == ("motd-1-1.noarch: required by greeter-1.0-1.x86_64 (it requires"
                                           " /usr/share/greet/motd)"), "a file dependency"
    assert "greetdata >= 2.0" in solution.explain("greetdata")[0], "the versioned require picks the update"


def test_a_floor_picks_the_update_and_an_unmeetable_one_is_refused(tree, tmp_path):
    trees = _trees(tree, tmp_path)
    solution = solve(trees, "x86_64", [Want("base", "motd"), Want("floor", "greetdata >= 1.5")])
    assert {p.name: p.version for p in solution.install}["greetdata"] == "2.0"
    with pytest.raises(Unsolvable, match="greetdata >= 3"):
        solve(trees, "x86_64", [Want("floor", "greetdata >= 3")])


def test_obsoletes_and_conflicts(tree, tmp_path):
    trees = _trees(tree, tmp_path)
    assert [p.name for p in solve(trees, "x86_64", [Want("base", "oldtool")]).install] == ["newtool"]
    with pytest.raises(Unsolvable, match="conflicter-1-1.noarch conflicts with greetdata"):
        solve(trees, "x86_64", [Want("base", "greeter"), Want("base", "conflicter")])


def test_an_unsolvable_job_names_the_missing_capability(tree, tmp_path):
    with pytest.raises(Unsolvable, match="nothing provides requested libnosuch.so.7"):
        solve(_trees(tree, tmp_path), "x86_64", [Want("buildrequires", "libnosuch.so.7")])


def test_headers_are_cached(tree, tmp_path):
    cold, warm = IndexStats(), IndexStats()
    _trees(tree, tmp_path, cold)
    _trees(tree, tmp_path, warm)
    assert cold.misses == 10 and cold.hits == 0
    assert warm.hits == 10 and warm.misses == 0


def _hdlist_entry(rpm_path: Path) -> bytes:
    """The package's header with magic and Red Hat's FILENAME tag (1000000), as genhdlist wrote it."""
    import rpm

    ts = rpm.TransactionSet()
    ts.setVSFlags(-1)
    fd = os.open(rpm_path, os.O_RDONLY)
    try:
        blob = ts.hdrFromFdno(fd).unload()
    finally:
        os.close(fd)
    il, dl = struct.unpack(">II", blob[:8])
    name = rpm_path.name.encode() + b"\0"
    entry = struct.pack(">IIII", 1000000, 6, dl, 1)
    return b"\x8e\xad\xe8\x01\0\0\0\0" + struct.pack(">II", il + 1, dl + len(name)) + blob[8:8 + 16 * il] + entry \
        + blob[8 + 16 * il:] + name


def test_an_hdlist_tree(tree, tmp_path):
    """Red Hat's layout: RedHat/base/hdlist holds every header; the RPMs are read only when fetched."""
    copy = tmp_path / "rh" / "RedHat"
    shutil.copytree(tree / "os" / "RedHat" / "RPMS", copy / "RPMS")
    (copy / "base").mkdir()
    (copy / "base" / "hdlist").write_bytes(b"".join(_hdlist_entry(p) for p in sorted((copy / "RPMS").glob("*.rpm"))))
    for rpm_file in (copy / "RPMS").glob("*.rpm"):
        rpm_file.write_bytes(b"not read")  # the solve needs the hdlist alone
    packages = read_tree(str(tmp_path / "rh"), "os", tmp_path / "cache")
    assert sorted(p.name for p in packages) == ["conflicter", "glibc", "greetdata", "greeter", "libgreet", "motd",
                                                "oldtool", "unused"]
    greeter = next(p for p in packages if p.name == "greeter")
    assert greeter.url == (copy / "RPMS" / "greeter-1.0-1.x86_64.rpm").as_uri()
    with pytest.raises(Unsolvable, match="greetdata >= 2.0"):
        solve([packages], "x86_64", [Want("base", "greeter")])  # the update is not in this tree


def test_over_http_only_headers_of_unused_packages_are_read(tree, tmp_path):
    files = {"/" + str(p.relative_to(tree)): p.read_bytes() for p in tree.rglob("*.rpm")}
    with FaultServer(files=files) as server:
        trees = [read_tree(server.url + "/os/", "os", tmp_path), read_tree(server.url + "/updates/", "updates", tmp_path)]
        solution = solve(trees, "x86_64", [Want("base", "greeter")])
        assert "unused" not in {p.name for p in solution.install}
        unused = [s for s in server.settled() if "unused" in s.path]
        size = len(files["/os/RedHat/RPMS/unused-1-1.noarch.rpm"])
        assert size > 1_000_000 and 0 < sum(s.sent for s in unused) < 70_000, "only its header crossed the wire"
        before = len(server.settled())
        again = read_tree(server.url + "/os/", "os", tmp_path)
        assert len(again) == 8
        assert all(s.range is None and s.sent == 0 for s in server.settled()[before:] if s.path.endswith(".rpm")), \
            "cached headers: HEAD requests only"


def test_dry_run_and_why_from_the_cli(tree, tmp_path):
    home = tmp_path / "home"
    (home / "containers" / "t").mkdir(parents=True)
    (home / "containers" / "t" / "target.yaml").write_text(
        "image: {tag: rebuild-test/t:1, method: rpmtree, packages: packages.txt}\narch: x86_64\n"
        "build_command: rpmbuild\nuser: builder\nuid: 1000\n")
    (home / "containers" / "t" / "packages.txt").write_text("greeter\n")
    env = {"REBUILD_HOME": str(home), "REBUILD_CACHE": str(tmp_path / "cache")}
    proc = run_cli("image", "t", "--dry-run", "--mirror", str(tree / "os"), "--updates", str(tree / "updates"), env=env)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert set(lines) == {"greeter-1.0-1.x86_64", "libgreet-1.0-1.x86_64", "greetdata-2.0-1.noarch", "motd-1-1.noarch",
                          "glibc-2.36-1.noarch"}
    assert "updates" in lines["greetdata-2.0-1.noarch"] and "asked for (base: greeter)" in lines["greeter-1.0-1.x86_64"]
    why = run_cli("image", "t", "--why", "motd", "--mirror", str(tree / "os"), env=env)
    assert why.returncode == 2 and "greetdata >= 2.0" in why.stderr, "without updates the root cannot be solved"
    why = run_cli("image", "t", "--why", "motd", "--mirror", str(tree / "os"), "--updates", str(tree / "updates"), env=env)
    assert why.stdout.splitlines() == ["motd-1-1.noarch: required by greeter-1.0-1.x86_64 (it requires"
                                       " /usr/share/greet/motd)", "greeter-1.0-1.x86_64: asked for (base: greeter)"]
    assert not (tmp_path / "cache" / "images").exists(), "a dry run makes nothing"
    assert ROOT.is_dir()


def test_the_explanation_of_a_long_chain_is_linear():
    """A 20,000-package chain of requirements is solved and explained in seconds (the explanation step
    looked each package up in a list: a minute here)."""
    import time

    from rebuild.roots.treeindex import PackageMeta

    n = 20_000
    tree = [PackageMeta(name=f"p{i}", epoch=None, version="1", release="1", arch="noarch", provides=(),
                        requires=((f"p{i + 1}", "", ""),) if i + 1 < n else (), conflicts=(), obsoletes=(), files=(),
                        url=f"file:///t/p{i}-1-1.noarch.rpm", origin="os") for i in range(n)]
    started = time.monotonic()
    solution = solve([tree], "i686", [Want("base", "p0")])
    assert len(solution.install) == n
    assert solution.explain(f"p{n - 1}")[0] == f"p{n - 1}-1-1.noarch: required by p{n - 2}-1-1.noarch (it requires p{n - 1})"
    assert time.monotonic() - started < 15
