"""A small RPM tree in Red Hat's archive layout, built by the test with the host's rpmbuild."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

APPLETS = ["sh", "ls", "cat", "uname", "sleep", "true", "echo", "id", "mkdir", "rm", "test", "env"]


def build_rpm(spec_text: str, out: Path, sources: Path | None = None, target: str | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "pkg.spec"
    spec.write_text(textwrap.dedent(spec_text))
    argv = ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {out / 'top'}",
            "--define", "_binary_payload w9.gzdio",  # gzip'd cpio and MD5 file digests, as in 2003
            "--define", "_binary_filedigest_algorithm 1",
            "--define", "__os_install_post %{nil}", "--define", "debug_package %{nil}"]
    if sources:
        argv += ["--define", f"_sourcedir {sources}"]
    if target:
        argv += ["--target", target]
    proc = subprocess.run([*argv, str(spec)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (rpm,) = (out / "top" / "RPMS").rglob("*.rpm")
    return rpm


def simple_spec(name: str, version: str, release: str, arch: str, files: dict[str, str]) -> str:
    lines = [f"Name: {name}", f"Version: {version}", f"Release: {release}", f"Summary: {name}", "License: MIT",
             f"BuildArch: {arch}", "%description", name, "%install"]
    for path, content in files.items():
        lines += [f"mkdir -p %{{buildroot}}{Path(path).parent}", f"printf '%s' '{content}' > %{{buildroot}}{path}"]
    return "\n".join(lines + ["%files", *files]) + "\n"


def busybox_spec() -> str:
    lines = ["Name: busybox", "Version: 1.35.0", "Release: 1", "Summary: static busybox with applet links",
             "License: GPL", "Source0: busybox", "AutoReqProv: no", "%description", "A shell for the test image.",
             "%install", "mkdir -p %{buildroot}/bin %{buildroot}/usr/bin %{buildroot}/etc %{buildroot}/tmp",
             "install -m 0755 %{SOURCE0} %{buildroot}/bin/busybox"]
    lines += [f"ln -s busybox %{{buildroot}}/bin/{a}" for a in APPLETS]
    lines += ["echo 'Red Hat Linux release 7.3 (Valhalla), for this test' > %{buildroot}/etc/redhat-release",
              "%files", "/bin/busybox", *[f"/bin/{a}" for a in APPLETS], "%dir /usr/bin", "%dir /tmp",
              "/etc/redhat-release"]
    return "\n".join(lines) + "\n"


def make_tree(base: Path) -> dict[str, Path]:
    """os/RedHat/RPMS and updates/ folders; returns the built RPMs by label."""
    src = base / "src"
    src.mkdir(parents=True)
    shutil.copy(shutil.which("busybox") or "/bin/busybox", src / "busybox")
    rpms = {
        "busybox": build_rpm(busybox_spec(), base / "b1", src, target="i686"),
        "tool-os": build_rpm(simple_spec("tool", "1.0", "1", "noarch", {"/usr/share/tool/version": "1.0-1 os"}), base / "b2"),
        "tool-up": build_rpm(simple_spec("tool", "1.0", "2", "noarch", {"/usr/share/tool/version": "1.0-2 updates"}), base / "b3"),
        "lib-os": build_rpm(simple_spec("libthing", "2.0", "1", "noarch", {"/usr/share/libthing/v": "2.0 os"}), base / "b4"),
        "lib-up": build_rpm(simple_spec("libthing", "1.9", "5", "noarch", {"/usr/share/libthing/v": "1.9 updates"}), base / "b5"),
        "extra": build_rpm(simple_spec("extra", "1", "1", "noarch", {"/usr/share/extra": "not wanted"}), base / "b6"),
    }
    os_dir = base / "tree" / "os" / "RedHat" / "RPMS"
    up_dir = base / "tree" / "updates"
    os_dir.mkdir(parents=True)
    up_dir.mkdir(parents=True)
    for label, rpm in rpms.items():
        shutil.copy(rpm, (up_dir if label.endswith("-up") else os_dir) / rpm.name)
    return rpms


def _rpm_closure() -> list[str]:
    """Debian's rpm binary, the libraries it loads (symlink and target), and its config."""
    paths: set[str] = {"/usr/bin/rpm", "/usr/bin/rpmdb"}  # rpm 4.18 hands --initdb to rpmdb
    out = subprocess.run(["ldd", "/usr/bin/rpm", "/usr/bin/rpmdb"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.endswith(":"):
            continue
        parts = line.split()
        lib = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if lib.startswith("/"):
            paths.add(lib)
            paths.add(str(Path(lib).resolve()))
    for folder in ("/usr/lib/rpm", "/usr/lib/x86_64-linux-gnu/rpm-plugins"):
        if Path(folder).is_dir():
            paths.update(str(p) for p in Path(folder).rglob("*") if p.is_file() or p.is_symlink())
    # Debian 12 merges /usr (/lib -> usr/lib): name every file by its real folder
    return sorted({str(Path(p).parent.resolve() / Path(p).name) for p in paths})


def _merged_usr_links() -> list[str]:
    return [d for d in ("/lib", "/lib64") if Path(d).is_symlink()]


def rpm_spec(requires: list[str] = ()) -> str:
    """A package "rpm" carrying Debian's real rpm, so the image can write and read its own rpmdb."""
    files = _rpm_closure()
    copy = "\n".join(f"mkdir -p %{{buildroot}}{Path(p).parent} && cp -a {p} %{{buildroot}}{p}" for p in files)
    links = _merged_usr_links()
    make_links = "\n".join(f"ln -s {Path(d).readlink()} %{{buildroot}}{d}" for d in links)
    return "\n".join([
        "Name: rpm", "Version: 4.0.4", "Release: 7x.18", "Summary: rpm for the test tree", "License: GPL",
        "AutoReqProv: no", *[f"Requires: {r}" for r in requires], "%define _build_id_links none", "%description",
        "Debian's rpm, repackaged for a test.",
        "%install", "mkdir -p %{buildroot}/var/lib/rpm", copy, make_links,
        "%files", "%dir /var/lib/rpm", *links, *files,
    ]) + "\n"


# What Red Hat Linux 7.3's packages require of each other (a part: enough that a list without closure
# misses some), and the versions the floors name.
RH73_REQUIRES = {
    "gcc": ["cpp", "binutils", "glibc-devel"], "glibc": ["glibc-common"], "glibc-devel": ["glibc", "glibc-kernheaders"],
    "rpm": ["popt", "db3", "zlib", "bzip2-libs"], "rpm-build": ["patch", "cpio", "gawk", "file", "rpm"],
    "fileutils": ["libtermcap"], "krb5-libs": ["e2fsprogs"], "krb5-devel": ["krb5-libs"],
    "pam": ["cracklib", "cracklib-dicts", "glib", "pwdb"], "pam-devel": ["pam"], "groff": ["libstdc++"],
    "openssl-devel": ["openssl"], "openldap-devel": ["openldap"], "openldap": ["cyrus-sasl", "openssl"],
    "cyrus-sasl-devel": ["cyrus-sasl"], "hesiod-devel": ["hesiod"], "gdbm-devel": ["gdbm"], "db3-devel": ["db3"],
    "tcp_wrappers": [],
}
RH73_FLOORS = {"rpm-build": ("4.0.4", "7x.18"), "gdbm": ("1.8.0", "14"), "gdbm-devel": ("1.8.0", "14"),
               "hesiod": ("3.0.2", "18"), "hesiod-devel": ("3.0.2", "18"), "krb5-libs": ("1.2.4", "11"),
               "krb5-devel": ("1.2.4", "11"), "openldap": ("2.0.27", "2.7.3"), "openldap-devel": ("2.0.27", "2.7.3"),
               "openssl": ("0.9.6b", "32.7"), "openssl-devel": ("0.9.6b", "32.7"), "pam": ("0.75", "46.7.3"),
               "pam-devel": ("0.75", "46.7.3"), "cyrus-sasl": ("1.5.24", "25"), "cyrus-sasl-devel": ("1.5.24", "25")}
# sendmail's BuildRequires with errata 73 (Red Hat's spec picks db3-devel there)
SENDMAIL_73_BUILDREQUIRES = ["openssl-devel", "krb5-devel", "pam-devel", "openldap-devel", "cyrus-sasl-devel",
                             "hesiod-devel", "gdbm-devel", "db3-devel", "tcp_wrappers", "groff"]


def make_rh73_tree(base: Path, package_list: Path) -> dict[str, str]:
    """A tree for the rh73 target: the names in *package_list*, what they require (RH73_REQUIRES), sendmail's
    BuildRequires and the floors' packages. ``bash`` is a static busybox with applet links, ``rpm`` is a
    real rpm, the rest are empty packages with their requires; the floors' packages sit at their floor
    versions, ``openssl-devel`` below it in os and at it in updates. Returns name -> version-release of
    every package in the tree."""
    from rebuild.roots.buildroot import read_package_list
    from tests.rpmdb_image import build_packages

    names = set(read_package_list(package_list)) | set(SENDMAIL_73_BUILDREQUIRES) | set(RH73_FLOORS)
    names |= {r for n in list(names) for r in RH73_REQUIRES.get(n, [])}
    names |= {r for n in list(names) for r in RH73_REQUIRES.get(n, [])}
    empty = sorted(n for n in names if n not in ("bash", "rpm"))
    versions = {n: RH73_FLOORS.get(n, ("1.0", "1")) for n in empty}
    os_set = [(n, None, versions[n][0], "30.7" if n == "openssl-devel" else versions[n][1], RH73_REQUIRES.get(n, []))
              for n in empty]  # openssl-devel below its floor in os
    src = base / "src"
    src.mkdir(parents=True)
    shutil.copy(shutil.which("busybox") or "/bin/busybox", src / "busybox")
    os_dir = base / "tree" / "os" / "RedHat" / "RPMS"
    up_dir = base / "tree" / "updates"
    os_dir.mkdir(parents=True)
    up_dir.mkdir(parents=True)
    bash = build_rpm(busybox_spec().replace("Name: busybox", "Name: bash"), base / "bash", src, target="i686")
    rpm = build_rpm(rpm_spec(RH73_REQUIRES["rpm"]), base / "rpm", target="i686")
    shutil.copy(bash, os_dir / bash.name)
    shutil.copy(rpm, os_dir / rpm.name)
    for rpm_path in build_packages(os_set, base / "empty-os", old=True).glob("*.rpm"):
        shutil.copy(rpm_path, os_dir / rpm_path.name)
    update = [("openssl-devel", None, "0.9.6b", "32.7", RH73_REQUIRES["openssl-devel"])]
    for rpm_path in build_packages(update, base / "empty-up", old=True).glob("*.rpm"):
        shutil.copy(rpm_path, up_dir / rpm_path.name)
    result = {n: f"{v}-{r}" for n, (v, r) in versions.items()}
    result.update(bash="1.35.0-1", rpm="4.0.4-7x.18")
    return result
