"""A Red-Hat-style RPM tree of real 32-bit binaries, for the i686 test target.

Debian's i386 packages for a small build root (and what they need) are downloaded with a private
apt configuration (no change to the host's apt or dpkg), each is repackaged as an RPM the 2003
way (gzip payload, MD5 file digests) keeping its real dependencies: rpmbuild derives sonames from
the ELF files, a script's interpreter becomes a file dependency, and Debian's Depends become
Requires where no soname says it. The few packages a Red Hat recipe names are renamed to Red
Hat's names (libssl-dev is openssl-devel). ``rpm`` and ``rpm-build`` are the genuine rpm 4.0.4
from ``shared/rpm-4.0.4`` beside the checkout or the repository it was cloned from, or
``REBUILD_TEST_RPM404`` (Debian's i386 rpm 4.18 where that is absent). The tree is laid out
as Red Hat's: ``os/RedHat/RPMS/`` and ``updates/``, with openssl-devel also in updates at a newer
release. Built once and cached under ``$REBUILD_TEST_CACHE`` (default ``~/.cache/rebuild-tests``).

    python -m tests.i686tree [--cache DIR]     # builds (or finds) the tree, prints its folder
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent


def find_shared(relative: Path, variable: str) -> Path:
    """A file or folder of the workplace's ``shared`` folder: *variable* (an environment variable), else
    ``shared/RELATIVE`` beside this checkout, or beside the repository it was cloned from (CI runs on a fresh
    clone somewhere else). The first candidate where none exists."""
    if os.environ.get(variable):
        return Path(os.environ[variable])
    relative = Path("shared", relative)
    candidates = [HERE.parent.parent / relative]
    try:
        origin = subprocess.run(["git", "-C", str(HERE.parent), "remote", "get-url", "origin"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    origin = origin.removeprefix("file://")
    if origin.startswith("/"):  # a clone of a folder on this machine (not a URL, not host:path)
        candidates.append(Path(origin).resolve().parent / relative)
    return next((c for c in candidates if c.exists()), candidates[0])


#: the genuine rpm 4.0.4's root tarball
RPM404 = find_shared(Path("rpm-4.0.4", "rpm-4.0.4-i386-root.tar.gz"), "REBUILD_TEST_RPM404")
#: 14 real SRPMs of 1999 (Conectiva Linux 4) packed by rpm 4.0.4
ERA_SRPMS = find_shared(Path("era-srpms"), "REBUILD_TEST_ERA_SRPMS")
FORMAT = 17  # bump when the repackaging changes: the cached tree is made again

# what the build root needs (and, for the sendmail procedure, what sendmail needs); apt adds the closure
WANTED = [
    "libc6", "libc-bin", "bash", "dash", "coreutils", "sed", "grep", "gawk", "tar", "gzip", "bzip2", "cpio", "diffutils",
    "findutils", "patch", "make", "file", "binutils", "gcc", "libc6-dev", "zlib1g", "zlib1g-dev", "libssl3",
    "libssl-dev", "libgdbm-dev", "m4", "libdb5.3-dev", "libsasl2-dev", "libsasl2-modules", "hostname", "procps",
    "openssl",
    # what 1999-2003 specs use without declaring it (Red Hat's build hosts had the development tools group)
    "flex", "bison", "autoconf", "automake", "gettext", "libncurses-dev", "libpopt-dev", "unzip", "perl",
]
# Debian name -> Red Hat name, for the packages recipes and floors name
RH_NAMES = {
    "libc6": "glibc", "libc6-dev": "glibc-devel", "zlib1g": "zlib", "zlib1g-dev": "zlib-devel",
    "libssl3": "openssl-libs", "libssl-dev": "openssl-devel", "libgdbm6": "gdbm", "libgdbm-dev": "gdbm-devel",
    "libdb5.3": "db4", "libdb5.3-dev": "db4-devel", "libsasl2-2": "cyrus-sasl", "libsasl2-dev": "cyrus-sasl-devel",
    "libsasl2-modules": "cyrus-sasl-plain", "gcc-12": "gcc12",
    "libncurses6": "ncurses", "libncurses-dev": "ncurses-devel", "libpopt0": "popt", "libpopt-dev": "popt-devel",
}
# capabilities Red Hat's packages provided that these stand in for
EXTRA_PROVIDES = {
    "glibc": ["rtld(GNU_HASH)"],  # elfdeps requires it of every GNU-hash binary; Red Hat's glibc provides it
    "db4-devel": ["db3-devel"],   # Berkeley DB 5.3 keeps the db 3/4 API the 2003 specs use
}
# where Debian's own package names are not the names the tree uses for them
APT_SOURCES = """\
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
"""


def cache_root() -> Path:
    return Path(os.environ.get("REBUILD_TEST_CACHE") or Path.home() / ".cache" / "rebuild-tests")


class Unavailable(Exception):
    """Debian's archive cannot be reached: the tests that need the tree are skipped with this reason."""


# ---------------------------------------------------------------- downloading Debian's i386 packages


def _apt(root: Path, *args: str) -> subprocess.CompletedProcess:
    conf = root / "apt.conf"
    if not conf.exists():
        for sub in ("lists/partial", "cache/archives/partial", "etc/parts"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "etc" / "sources.list").write_text(APT_SOURCES)
        (root / "status").touch()
        conf.write_text(textwrap.dedent(f"""\
            APT::Architecture "i386";
            APT::Architectures {{ "i386"; }};
            APT::Install-Recommends "false";
            Dir::State "{root}";
            Dir::State::Lists "{root}/lists";
            Dir::State::status "{root}/status";
            Dir::Cache "{root}/cache";
            Dir::Etc::SourceList "{root}/etc/sources.list";
            Dir::Etc::SourceParts "{root}/etc/parts";
            Dir::Etc::Preferences "{root}/etc/none";
            Dir::Etc::PreferencesParts "{root}/etc/parts";
            Debug::NoLocking "true";
            """))
    return subprocess.run(["apt-get", "-q", "-y", *args], env={**os.environ, "APT_CONFIG": str(conf)},
                          capture_output=True, text=True)


def download(root: Path, wanted: list[str]) -> list[Path]:
    """Debian's i386 .debs for *wanted* and their closure (apt resolves it against an empty dpkg status)."""
    fresh = root / "lists" / ".updated"
    if not fresh.exists() or time.time() - fresh.stat().st_mtime > 7 * 86400:
        proc = _apt(root, "update")
        if proc.returncode != 0 or "Err:" in proc.stdout:
            raise Unavailable(f"Debian's archive is not reachable (apt-get update: {proc.stdout.strip()[-200:]})")
        fresh.touch()
    sim = _apt(root, "install", "-s", *wanted)
    if sim.returncode != 0:
        raise Unavailable(f"apt-get cannot resolve the i386 packages: {(sim.stdout + sim.stderr)[-400:]}")
    # Inst NAME (VERSION SUITE [ARCH]) -> NAME_VERSION_ARCH.deb, with the epoch's ':' as apt writes it
    names = {f"{m[1]}_{m[2].replace(':', '%3a')}_{m[3]}.deb"
             for m in re.finditer(r"^Inst (\S+) \((\S+) .*\[(\S+)\]\)", sim.stdout, re.M)}
    proc = _apt(root, "install", "--download-only", *wanted)
    if proc.returncode != 0:
        raise Unavailable(f"apt-get could not download the i386 packages: {(proc.stdout + proc.stderr)[-400:]}")
    debs = sorted((root / "cache" / "archives" / n) for n in names)
    missing = [d.name for d in debs if not d.is_file()]
    if missing:
        raise Unavailable(f"apt-get did not leave {', '.join(missing[:5])}")
    return debs


# ---------------------------------------------------------------- repackaging


def _fields(deb: Path) -> dict[str, str]:
    text = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True).stdout
    fields: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line.startswith((" ", "\t")) and key:
            fields[key] += "\n" + line
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _evr(debian_version: str) -> tuple[str | None, str, str]:
    """Epoch, version and release; '~' (which rpm 4.0.4 does not know, and rpmbuild would mark with
    rpmlib(TildeInVersions)) becomes '.'."""
    epoch, _, rest = debian_version.rpartition(":") if ":" in debian_version else (None, "", debian_version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
    return (epoch or None, upstream.replace("-", "_").replace("~", "."),
            revision.replace("-", "_").replace("~", "."))


def _alternatives(value: str) -> list[list[str]]:
    """Debian's Depends: a list of alternative groups of package names (versions and arch qualifiers dropped)."""
    groups = []
    for group in filter(None, (g.strip() for g in value.split(","))):
        names = [re.split(r"[\s(:\[]", alt.strip(), maxsplit=1)[0] for alt in group.split("|")]
        groups.append([n for n in names if n])
    return groups


def _red_hat_shape(package: str, root: Path) -> None:
    """Where 1999-2003 specs and Makefiles notice: bash owns /bin/sh (Red Hat's /bin/sh was bash, and rpm runs
    every scriptlet with it: ``{a,b}`` brace expansion), and headers are in /usr/include itself, not in
    Debian's multiarch /usr/include/i386-linux-gnu (a 2002 Makefile names /usr/include/sys/...)."""
    if package == "dash":
        for name in ("bin/sh", "usr/share/man/man1/sh.1.gz"):
            if os.path.lexists(root / name):
                os.unlink(root / name)
    if package == "bash" and not os.path.lexists(root / "bin" / "sh"):
        (root / "bin" / "sh").symlink_to("bash")
    multiarch = root / "usr" / "include" / "i386-linux-gnu"
    if multiarch.is_dir():
        for entry in sorted(multiarch.rglob("*")):
            if entry.is_dir() and not entry.is_symlink():
                continue
            dest = root / "usr" / "include" / entry.relative_to(multiarch)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not os.path.lexists(dest):
                os.rename(entry, dest)
        shutil.rmtree(multiarch)


def _alternatives_links(deb: Path, root: Path) -> None:
    """The links a package's postinst makes with update-alternatives (/usr/bin/awk -> gawk), as files of the
    package: a Red Hat package carried them itself, and no Debian maintainer script runs here."""
    script = subprocess.run(["sh", "-c", f"dpkg-deb --ctrl-tarfile '{deb}' | tar -xOf - ./postinst 2>/dev/null"],
                            capture_output=True, text=True).stdout.replace("\\\n", " ")
    for name, value in re.findall(r"^(\w+)=(\S+)$", script, flags=re.M):  # automake: ver=1.16, then $ver
        script = script.replace("${" + name + "}", value).replace("$" + name, value)
    for m in re.finditer(r"update-alternatives\s+(?:--quiet\s+)?--install\s+(/\S+)\s+\S+\s+(/\S+)\s+\d+"
                         r"((?:\s+--slave\s+/\S+\s+\S+\s+/\S+)*)", script):
        pairs = [(m.group(1), m.group(2))]
        pairs += re.findall(r"--slave\s+(/\S+)\s+\S+\s+(/\S+)", m.group(3))
        for link, target in pairs:
            dest = root / link.lstrip("/")
            if os.path.lexists(root / target.lstrip("/")) and not os.path.lexists(dest):
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.symlink_to(target)


def _spec_path(path: str) -> str:
    """A path as a %files line: % escaped, quoted; rpmbuild has no escape for glob characters, so each
    stands as ``?`` (it matches itself, and the glob runs in this package's build root only)."""
    escaped = re.sub(r"[\[\]*?{}\\]", "?", path.replace("%", "%%"))
    return f'"{escaped}"'


class Repackager:
    def __init__(self, debs: list[Path], work: Path) -> None:
        self.debs = debs
        self.work = work
        self.info = {deb: _fields(deb) for deb in debs}
        self.by_name = {f["Package"]: deb for deb, f in self.info.items()}
        provided: dict[str, str] = {}
        for _deb, f in self.info.items():
            for group in _alternatives(f.get("Provides", "")):
                provided.setdefault(group[0], f["Package"])
        self.virtual = provided
        self.contents: dict[Path, list[str]] = {}
        self.roots: dict[Path, Path] = {}

    def rpm_name(self, debian: str) -> str:
        return RH_NAMES.get(debian, debian)

    def extra_provides(self, name: str, version: str, release: str) -> list[str]:
        return list(EXTRA_PROVIDES.get(name, []))

    def extract(self, deb: Path) -> None:
        root = self.work / "roots" / deb.stem
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        _alternatives_links(deb, root)
        _red_hat_shape(self.info[deb]["Package"], root)
        if self.info[deb]["Package"] == "rpm":
            # Debian's rpm keeps a per-user rpmdb (~/.rpmdb); a Red Hat system has one, /var/lib/rpm
            (root / "etc" / "rpm").mkdir(parents=True, exist_ok=True)
            (root / "etc" / "rpm" / "macros").write_text("%_dbpath /var/lib/rpm\n")
            (root / "var" / "lib" / "rpm").mkdir(parents=True, exist_ok=True)
        self.roots[deb] = root
        self.contents[deb] = sorted("/" + str(p.relative_to(root)) for p in root.rglob("*")
                                    if p.is_symlink() or not p.is_dir() or not any(p.iterdir()))

    def all_files(self) -> set[str]:
        return {path for files in self.contents.values() for path in files}

    def _library(self, debian: str) -> bool:
        """A shared-library package (libfoo1): its dependents' ELF files name its sonames."""
        return (debian.startswith("lib") and not debian.endswith(("-dev", "-bin", "-common", "-utils", "-data"))
                and any(re.search(r"\.so(\.\d+)+$", p) for p in self.contents[self.by_name[debian]]))

    def _has_elf(self, deb: Path) -> bool:
        """Whether the package holds a program or shared object (whose sonames rpmbuild will require)."""
        root = self.roots[deb]
        for path in self.contents[deb]:
            file = root / path.lstrip("/")
            if not file.is_symlink() and file.is_file():
                with file.open("rb") as fh:
                    if fh.read(4) == b"\x7fELF" and not path.endswith((".o", ".a")):
                        return True
        return False

    def _requires(self, deb: Path, files_in_tree: set[str]) -> list[str]:
        fields = self.info[deb]
        out: set[str] = set()
        elf = self._has_elf(deb)
        for key in ("Pre-Depends", "Depends"):
            for group in _alternatives(fields.get(key, "")):
                for alt in group:
                    real = alt if alt in self.by_name else self.virtual.get(alt)
                    if real is None:
                        continue
                    if not (elf and self._library(real)):  # a library's soname already says it
                        out.add(self.rpm_name(real))
                    break
        root = self.roots[deb]
        for path in self.contents[deb]:
            file = root / path.lstrip("/")
            if file.is_symlink() or not file.is_file():
                continue
            with file.open("rb") as fh:
                head = fh.read(128)
            if head.startswith(b"#!"):
                interpreter = head[2:].split(b"\n")[0].strip().split(b" ")[0].decode(errors="replace")
                if interpreter in files_in_tree and interpreter not in self.contents[deb]:
                    out.add(interpreter)  # a file dependency, as rpm's script generator would make
        out.discard(self.rpm_name(fields["Package"]))
        return sorted(out)

    def spec(self, deb: Path, files_in_tree: set[str]) -> str:
        fields = self.info[deb]
        name = self.rpm_name(fields["Package"])
        epoch, version, release = _evr(fields["Version"])
        provides = [self.rpm_name(g[0]) for g in _alternatives(fields.get("Provides", ""))]
        if name != fields["Package"]:
            provides.append(fields["Package"])
        provides += self.extra_provides(name, version, release)
        summary = fields.get("Description", name).splitlines()[0][:70] or name
        lines = [f"Name: {name}", *([f"Epoch: {epoch}"] if epoch else []), f"Version: {version}",
                 f"Release: {release}", f"Summary: {summary}", "License: see /usr/share/doc",
                 "Group: Debian/i386 repackaged", *[f"Provides: {p}" for p in sorted(set(provides))],
                 *[f"Requires: {r}" for r in self._requires(deb, files_in_tree)],
                 "%description", f"Debian's {fields['Package']} {fields['Version']} (i386), repackaged for tests.",
                 "%install", f"cp -a {self.roots[deb]}/. %{{buildroot}}/", "%files", "%defattr(-,root,root)"]
        root = self.roots[deb]
        for path in self.contents[deb]:
            entry = root / path.lstrip("/")
            lines.append(("%dir " if entry.is_dir() and not entry.is_symlink() else "") + _spec_path(path))
        return "\n".join(lines) + "\n"

    def build(self, deb: Path, out: Path, files_in_tree: set[str]) -> None:
        top = self.work / "top" / deb.stem
        shutil.rmtree(top, ignore_errors=True)
        top.mkdir(parents=True)
        spec = top / "pkg.spec"
        spec.write_text(self.spec(deb, files_in_tree))
        rpmbuild(spec, top, out)


def rpmbuild(spec: Path, top: Path, out: Path, target: str = "i386") -> None:
    """Build *spec* the 2003 way: gzip payload, MD5 file digests, only ELF dependency generators."""
    attrs = top / "fileattrs"
    attrs.mkdir(exist_ok=True)
    shutil.copy("/usr/lib/rpm/fileattrs/elf.attr", attrs / "elf.attr")
    argv = ["rpmbuild", "-bb", "--quiet", "--target", target, "--define", f"_topdir {top}",
            "--define", f"_rpmdir {out}", "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
            "--define", "_binary_payload w9.gzdio", "--define", "_binary_filedigest_algorithm 1",
            "--define", f"_fileattrsdir {attrs}", "--define", "__os_install_post %{nil}",
            "--define", "__arch_install_post %{nil}", "--define", "debug_package %{nil}",
            "--define", "_build_id_links none", "--define", "_unpackaged_files_terminate_build 0", str(spec)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"rpmbuild of {spec} failed:\n{proc.stderr[-2000:]}")


# ---------------------------------------------------------------- rpm 4.0.4 as the tree's rpm and rpm-build


RPM_BUILD_FILES = ("usr/bin/rpmbuild", "usr/bin/mkdir", "usr/lib/rpm/rpmb", "usr/lib/rpm/rpmt", "usr/lib/rpm/find-requires",
                   "usr/lib/rpm/find-provides", "usr/lib/rpm/brp-*", "usr/lib/rpm/check-prereqs",
                   "usr/lib/rpm/find-lang.sh", "usr/lib/rpm/*.req", "usr/lib/rpm/*.prov", "usr/lib/rpm/u_pkg.sh",
                   "usr/lib/rpm/get_magic.pl", "usr/lib/rpm/getpo.sh", "usr/lib/rpm/cross-build",
                   "usr/lib/rpm/Specfile.pm", "usr/lib/rpm/cpanflute*", "usr/lib/rpm/convertrpmrc.sh",
                   "usr/lib/rpm/rpmdiff*", "usr/src/redhat")
RPM_BUILD_REQUIRES = ["bash", "/bin/sh", "/bin/mkdir", "coreutils", "cpio", "diffutils", "file", "findutils", "gawk", "grep",
                      "gzip", "bzip2", "patch", "sed", "tar", "binutils", "make", "libc-bin"]


def rpm404_packages(work: Path, out: Path) -> str:
    """``rpm`` and ``rpm-build`` 4.0.4-7x.18 carrying the static rpm 4.0.4; returns what they are."""
    root = work / "rpm404"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with tarfile.open(RPM404) as tar:
        tar.extractall(root, filter="tar")
    # this rpm 4.0.4 was configured on a merged-/usr host: %setup runs a compiled-in "/usr/bin/mkdir -p"
    # (MKDIR_P), which a split-/usr root (Red Hat's, and this one) has as /bin/mkdir. rpm-build carries
    # the link, as a distribution's rpm package would have been configured for its own layout.
    (root / "usr" / "bin" / "mkdir").symlink_to("../../bin/mkdir")
    everything = sorted("/" + str(p.relative_to(root)) for p in root.rglob("*")
                        if p.is_symlink() or not p.is_dir() or not any(p.iterdir()))
    import fnmatch

    build_files = [p for p in everything if any(fnmatch.fnmatch(p.lstrip("/"), g) or p.lstrip("/").startswith(g + "/")
                                                  for g in RPM_BUILD_FILES)]
    rpm_files = [p for p in everything if p not in build_files]
    for name, files, requires, summary in (
        ("rpm", rpm_files, [], "The RPM package manager 4.0.4 (static i386, Red Hat Linux 7.3's)"),
        ("rpm-build", build_files, ["rpm = 4.0.4-7x.18", *RPM_BUILD_REQUIRES], "rpmbuild and its scripts (rpm 4.0.4)"),
    ):
        lines = [f"Name: {name}", "Version: 4.0.4", "Release: 7x.18", f"Summary: {summary}", "License: GPL",
                 "Group: System Environment/Base", "AutoReqProv: no", *[f"Requires: {r}" for r in requires],
                 "%description", summary, "%install", f"cp -a {root}/. %{{buildroot}}/", "%files",
                 "%defattr(-,root,root)"]
        lines += [("%dir " if (root / p.lstrip("/")).is_dir() and not (root / p.lstrip("/")).is_symlink() else "")
                  + _spec_path(p) for p in files]
        top = work / "top" / name
        top.mkdir(parents=True, exist_ok=True)
        spec = top / f"{name}.spec"
        spec.write_text("\n".join(lines) + "\n")
        rpmbuild(spec, top, out)
    return f"rpm 4.0.4 ({RPM404})"


def debian_rpm_build(packer: Repackager, work: Path, out: Path) -> None:
    """Where rpm 4.0.4 is absent: an ``rpm-build`` beside Debian's repackaged rpm (which carries rpmbuild
    itself), requiring it and what rpmbuild runs, so the root has the package a Red Hat root names and
    a floor on rpm-build is met, as with the genuine rpm 4.0.4."""
    epoch, version, release = _evr(packer.info[packer.by_name["rpm"]]["Version"])
    evr = f"{epoch + ':' if epoch else ''}{version}-{release}"
    lines = ["Name: rpm-build", *([f"Epoch: {epoch}"] if epoch else []), f"Version: {version}", f"Release: {release}",
             "Summary: rpmbuild's requirements (Debian's rpm carries rpmbuild)", "License: GPL",
             "Group: Debian/i386 repackaged", f"Requires: rpm = {evr}", *[f"Requires: {r}" for r in RPM_BUILD_REQUIRES],
             "%description", "Requires Debian's repackaged rpm, which holds rpmbuild, and the tools rpmbuild runs.",
             "%files"]
    top = work / "top" / "rpm-build"
    top.mkdir(parents=True, exist_ok=True)
    spec = top / "rpm-build.spec"
    spec.write_text("\n".join(lines) + "\n")
    rpmbuild(spec, top, out)


# ---------------------------------------------------------------- the tree


def build_tree(cache: Path | None = None, log=print) -> Path:
    """The tree's folder (holding os/ and updates/), built once per set of Debian packages and cached."""
    cache = cache or cache_root()
    apt_root = cache / "apt-i386"
    debs = download(apt_root, WANTED)
    use_404 = RPM404.is_file()
    key = hashlib.sha256("\n".join([str(FORMAT), str(use_404), *(d.name for d in debs)]).encode()).hexdigest()[:16]
    tree = cache / f"i686-tree-{key}"
    if (tree / "DONE").exists():
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    start = time.monotonic()
    work = cache / f".work-{key}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if not use_404:
        debs = download(apt_root, WANTED + ["rpm"])
        log(f"tests: {RPM404} is absent: the i686 tree's rpm and rpmbuild are Debian's i386 rpm 4.18")
    packer = Repackager(debs, work)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(packer.extract, debs))
    files_in_tree = packer.all_files()
    built = work / "rpms"
    built.mkdir()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(lambda d: packer.build(d, built, files_in_tree), debs))
    if use_404:
        rpm404_packages(work, built)
    else:
        debian_rpm_build(packer, work, built)
    os_dir = tree / "os" / "RedHat" / "RPMS"
    updates = tree / "updates"
    os_dir.mkdir(parents=True)
    updates.mkdir(parents=True)
    for rpm in built.glob("*.rpm"):
        shutil.move(str(rpm), os_dir / rpm.name)
    _newer_in_updates(packer, work, updates, files_in_tree)
    shutil.rmtree(work, ignore_errors=True)
    (tree / "DONE").write_text(f"built in {time.monotonic() - start:.0f}s from {len(debs)} Debian packages\n")
    log(f"tests: i686 tree built in {time.monotonic() - start:.0f}s from {len(debs)} Debian packages: {tree}")
    return tree


def _newer_in_updates(packer: Repackager, work: Path, updates: Path, files_in_tree: set[str]) -> None:
    """openssl-devel again, one release newer, in updates/ only (as Red Hat's errata were)."""
    deb = packer.by_name["libssl-dev"]
    spec = packer.spec(deb, files_in_tree)
    spec = re.sub(r"^Release: (.*)$", r"Release: \1.1", spec, count=1, flags=re.M)
    top = work / "top" / "openssl-devel-update"
    top.mkdir(parents=True)
    (top / "pkg.spec").write_text(spec)
    rpmbuild(top / "pkg.spec", top, updates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        print(build_tree(args.cache, log=lambda m: print(m, file=sys.stderr)))
    except Unavailable as exc:
        print(f"i686tree: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())


def make_srpm_in(image: str, spec: Path, out: Path) -> Path:
    """A source package of *spec* (sources beside it) made by the image's own rpm (rpm 4.0.4 reads 2003
    tags such as Copyright: that rpm 4.18 refuses) under linux32, as the build user."""
    out.mkdir(parents=True, exist_ok=True)
    os.chown(out, 500, 500)
    script = ("mkdir -p /out/SRPMS /out/SPECS /out/SOURCES /out/BUILD /out/RPMS && "
              f"rpmbuild -bs --nodeps --define '_topdir /out' --define '_sourcedir /src' /src/{spec.name}")
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "-u", "500:500", "-v", f"{spec.parent}:/src:ro",
                           "-v", f"{out}:/out", image, "linux32", "sh", "-c", script], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"rpmbuild -bs in {image} failed: {proc.stdout}{proc.stderr}")
    (srpm,) = (out / "SRPMS").glob("*.src.rpm")
    return srpm
