"""``rebuild doctor``: what this host needs for rebuild and whether it has it, each with its fix.

The checks: the container engine and its version; 32-bit code (a tiny i386 program run on the host:
IA32 emulation) and the 32-bit personality, on the host and, where a 32-bit target's image is
pinned, in a container of it (the same probe as a build's preflight, so seccomp counts too); the
inode numbers of the output folder's filesystem; the host's tools (rpm, rpmbuild, rpmkeys, rpmsign,
createrepo_c, gpg, debootstrap, a C compiler); free space in the cache and output folders; and
every pinned image, whether it is still in the engine.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rebuild.config.target import available_targets, load_target
from rebuild.errors import RebuildError
from rebuild.log import format_table
from rebuild.roots.pins import image_dir, read_pin
from rebuild.settings import Settings

OK, WARN, FAIL = "ok", "warning", "FAILED"
LOW_SPACE = 5 << 30
TOOLS = {"rpm": "rpm", "rpmbuild": "rpm", "rpmkeys": "rpm", "rpmsign": "rpm", "createrepo_c": "createrepo-c",
         "gpg": "gnupg", "debootstrap": "debootstrap", "tar": "tar", "cc": "gcc"}


@dataclass(frozen=True)
class Finding:
    check: str
    status: str
    detail: str
    fix: str = ""


def _tiny_i386_program() -> bytes:
    """A static 32-bit x86 ELF of 93 bytes that exits with 0 (``int 0x80``): it runs only with IA32 emulation."""
    code = bytes([0x31, 0xDB, 0xB8, 1, 0, 0, 0, 0xCD, 0x80])  # xor ebx,ebx; mov eax,1; int 0x80
    base, ehdr, phdr = 0x08048000, 52, 32
    total = ehdr + phdr + len(code)
    header = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8) + struct.pack(
        "<HHIIIIIHHHHHH", 2, 3, 1, base + ehdr + phdr, ehdr, 0, 0, ehdr, phdr, 1, 0, 0, 0)
    return header + struct.pack("<IIIIIIII", 1, 0, base, base, total, total, 5, 0x1000) + code


def check_host_32bit() -> list[Finding]:
    findings = []
    with tempfile.TemporaryDirectory(prefix="rebuild-doctor-") as tmp:
        program = Path(tmp) / "i386-exit0"
        program.write_bytes(_tiny_i386_program())
        program.chmod(0o755)
        try:
            code = subprocess.run([str(program)], capture_output=True, timeout=10).returncode
            problem = None if code == 0 else f"exit {code}"
        except OSError as exc:
            problem = exc.strerror or str(exc)
    findings.append(Finding("32-bit programs", OK if problem is None else FAIL,
                            "a static i386 program runs" if problem is None else f"an i386 program cannot run ({problem})",
                            "" if problem is None else "enable IA32 emulation (CONFIG_IA32_EMULATION; no"
                                                       " ia32_emulation=0 on the kernel command line)"))
    setarch = shutil.which("setarch") or shutil.which("linux32")
    if setarch:
        argv = [setarch, "i686", "uname", "-m"] if setarch.endswith("setarch") else [setarch, "uname", "-m"]
        out = subprocess.run(argv, capture_output=True, text=True).stdout.strip()
        good = out in ("i386", "i486", "i586", "i686")
        findings.append(Finding("32-bit personality (host)", OK if good else FAIL, f"linux32 uname -m says {out!r}",
                                "" if good else "the kernel refuses personality(PER_LINUX32); build on another host"))
    return findings


def check_engine(engine) -> tuple[list[Finding], bool]:
    try:
        version = engine.version()
    except RebuildError as exc:  # "what is wrong; what to do" (unreachable, too old, refused, no ssh extra)
        problem, _, remedy = exc.message.partition("; ")
        return [Finding("container engine", FAIL, problem, remedy)], False
    return [Finding("container engine", OK, f"Docker {version}")], True


def check_targets(engine, settings: Settings) -> list[Finding]:
    """Every pinned image still in the engine; in a pinned 32-bit target's image, the build's personality probe."""

    findings = []
    for name in available_targets(settings.home):
        try:
            target = load_target(name, settings.home)
        except RebuildError as exc:
            findings.append(Finding(f"target {name}", FAIL, exc.message, "fix its target.yaml"))
            continue
        pin = read_pin(target, settings.cache)
        if pin is None:
            made = (image_dir(target, settings.cache) / "pin.json").exists()
            findings.append(Finding(f"image {target.name}", WARN, "made from an older definition" if made else
                                    "not made yet", f"rebuild image {target.name}"))
            continue
        if engine.image_id(target.tag) != pin.image_id:
            findings.append(Finding(f"image {target.name}", FAIL, f"{target.tag} is not the pinned"
                                    f" {pin.image_id[:19]}", f"rebuild image {target.name}"))
            continue
        findings.append(Finding(f"image {target.name}", OK, f"{target.tag} {pin.image_id[:19]}"))
        if target.personality == "linux32":
            findings.append(_container_personality(engine, target, pin.image_id))
    return findings


def _container_personality(engine, target, image: str) -> Finding:
    check = f"32-bit personality ({target.name})"
    try:
        code, out = engine.run_once(image, target.wrap(["uname", "-m"]))
    except RebuildError as exc:
        return Finding(check, FAIL, exc.message, "see the engine's log")
    machine = out.decode(errors="replace").strip()
    if code == 0 and machine in ("i386", "i486", "i586", "i686"):
        return Finding(check, OK, f"uname -m in {target.tag} says {machine}")
    if code in (126, 127) or "exec format" in machine.lower():
        return Finding(check, FAIL, f"the image's 32-bit programs cannot run ({machine[:80]!r}, exit {code})",
                       "enable IA32 emulation in the kernel")
    return Finding(check, FAIL, f"uname -m says {machine[:40]!r} (exit {code}): the personality is refused",
                   "allow personality() in the engine's seccomp profile, or build on another host")


def check_inodes(out_dir: Path) -> Finding:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".doctor-", dir=out_dir)
        os.close(fd)
        inode = max(os.stat(name).st_ino, out_dir.stat().st_ino)
        os.unlink(name)
    except OSError as exc:
        return Finding("output inodes", FAIL, f"{out_dir}: {exc.strerror}", "choose a writable --out")
    if inode > 0xFFFFFFFF:
        return Finding("output inodes", FAIL, f"{out_dir}: inode numbers above 2^32 (32-bit tools get EOVERFLOW)",
                       "use --out on ext4, or XFS mounted with inode32")
    return Finding("output inodes", OK, f"{out_dir}: 32-bit inode numbers")


def check_tools() -> list[Finding]:
    findings = []
    for tool, package in TOOLS.items():
        where = shutil.which(tool)
        findings.append(Finding(f"tool {tool}", OK if where else FAIL, where or "not found",
                                "" if where else f"apt-get install {package}"))
    return findings


def check_space(folders: dict[str, Path]) -> list[Finding]:
    findings = []
    for label, folder in folders.items():
        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free = shutil.disk_usage(probe).free
        status = OK if free >= LOW_SPACE else WARN if free >= LOW_SPACE // 5 else FAIL
        findings.append(Finding(f"free space ({label})", status, f"{folder}: {free / (1 << 30):.1f} GiB free",
                                "" if status == OK else "free some space (an image and a build need a few GiB)"))
    return findings


def diagnose(engine, settings: Settings, out_dir: Path) -> list[Finding]:
    findings, reachable = check_engine(engine)
    findings += check_host_32bit()
    if reachable:
        findings += check_targets(engine, settings)
    findings.append(check_inodes(out_dir))
    findings += check_tools()
    findings += check_space({"cache": settings.cache, "output": out_dir})
    return findings


def format_findings(findings: list[Finding]) -> str:
    rows = [("CHECK", "STATUS", "DETAIL", "FIX")] + [(f.check, f.status, f.detail, f.fix) for f in findings]
    failed = sum(f.status == FAIL for f in findings)
    warned = sum(f.status == WARN for f in findings)
    return format_table(rows, [f"{len(findings)} checks: {failed} failed, {warned} warnings"
                               if failed or warned else f"{len(findings)} checks: all well"])
