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
            "--define", "_binary_payload w9.gzdio",  # gzip'd cpio, as in 2003
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
