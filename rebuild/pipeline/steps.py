"""The steps of a build that run in its container: preflight, SRPM install, spec edit and query,
floors, rpmbuild. Each returns what it found (typed, for the manifest) or raises a typed error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from rebuild.config.recipe import Recipe
from rebuild.config.target import Target
from rebuild.errors import BuildFailed, RebuildError, UsageError
from rebuild.files import atomic_write, read_user_file, sha256_bytes, sha256_file
from rebuild.log import Log
from rebuild.pipeline.floors import QUERY_FORMAT, FloorsReport, check_in_container, parse_query
from rebuild.pipeline.result import SpecReport
from rebuild.pipeline.spec import SpecText, encoded, release_uses
from rebuild.pipeline.spec import edit_spec as edit
from rebuild.pipeline.tools import PROBE, TOOL_MACROS, Tools, tools_from_probe
from rebuild.pipeline.workdir import LogSink, StateLog, failure_cause, tail
from rebuild.systems.engine import Container
from rebuild.systems.rpmfile import RpmInfo
from rebuild.systems.store import installed_list

TOPDIR = "/build"
SRPM_DIR = "/srpm"
# rpm 4.0.x's -ba writes into RPMS/<arch>/ and SRPMS/ and runs %prep in BUILD/, and makes none of them
BUILD_ARCHES = {
    "i686": ("i386", "i486", "i586", "i686", "athlon", "noarch"),
    "i386": ("i386", "noarch"),
}
_32BIT = ("i386", "i486", "i586", "i686")


@dataclass
class Step:
    """What every in-container step needs: the container, the build user, the logs."""

    recipe: Recipe
    target: Target
    box: Container
    work: Path
    staging: Path
    log: Log
    sink: LogSink
    state: StateLog
    build_log: Path
    user: str
    env: dict
    tools: Tools | None = None
    #: where the build tree is mounted (the reproducibility check's second build moves it)
    tree: str = TOPDIR

    @property
    def topdir(self) -> list[str]:
        return ["--define", f"_topdir {self.tree}"]

    def run(self, argv: list[str], **kw) -> int:
        """Run *argv* under the target's personality; its output goes to build.log."""
        return self.box.run(self.target.wrap(argv), user=self.user, env=self.env, output=self.sink, **kw)

    def copy_out(self, rel: str) -> None:
        """The container's TREE/*rel* (the whole tree for "") into the host's work tree (a no-op when the
        tree is bind-mounted)."""
        self.box.copy_out(f"{self.tree}/{rel}".rstrip("/"))

    def copy_in(self, rel: str) -> None:
        """The host's work tree's *rel* into the container's TREE (a no-op when bind-mounted)."""
        self.box.copy_in(f"{self.tree}/{rel}")


def is_32bit(target: Target) -> bool:
    return target.personality == "linux32" or target.arch in _32BIT


def prepare_tree(work: Path, target: Target) -> None:
    """The build tree as /usr/src/redhat had it: BUILD, RPMS/<arch> for every arch the target builds, SRPMS."""
    folders = ["BUILD", "SRPMS", "SOURCES", "SPECS", "RPMS"]
    folders += [f"RPMS/{a}" for a in BUILD_ARCHES.get(target.arch, (target.arch, "noarch"))]
    for folder in folders:
        path = work / folder
        path.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            os.chown(path, target.uid, target.uid)


def preflight(target: Target, box: Container, work: Path, user: str) -> None:
    """Clear errors, before anything is built, for what old 32-bit targets need from this machine."""
    probe = work / ".inode-probe"
    probe.write_bytes(b"")
    # copied to a remote engine, the tree lives on that machine's filesystem, which this one cannot see
    for path in () if box.archive else (work, probe):
        if inode(path) > 0xFFFFFFFF:
            raise BuildFailed(
                f"{path.parent if path == probe else path}: inode numbers here exceed 2^32, and 32-bit tools built"
                " without large-file support (RH 7.3's) fail with EOVERFLOW on them; use --out on a filesystem with"
                " 32-bit inodes (ext4; XFS mounted with inode32; tmpfs without inode64)"
            )
    probe.unlink()
    out: list[bytes] = []
    code = box.run(target.wrap(["uname", "-m"]), user=user, output=out.append)
    machine = b"".join(out).decode(errors="replace").strip()
    if code != 0 or (target.personality == "linux32" and machine not in _32BIT):
        raise BuildFailed(
            f"the {target.personality or 'default'} personality does not work here (uname -m says {machine!r},"
            f" exit {code}): the kernel lacks 32-bit support (CONFIG_IA32_EMULATION, or ia32_emulation=0 on the"
            " kernel command line) or the seccomp profile forbids personality(); build on a host that allows both"
        )
    out.clear()
    code = box.run(target.wrap(["rpm", "-qa", "--qf", "%{NAME}\\n"]), user=user, output=out.append)
    text = b"".join(out).decode(errors="replace")
    if code != 0:
        if code == 127 or "executable file not found" in text:
            raise BuildFailed(f"the {target.name} image has no rpm: add rpm (and rpm-build) to its package list")
        if "exec format error" in text.lower() or code == 126:
            raise BuildFailed("the image's 32-bit rpm cannot run: the kernel lacks IA32 emulation; enable it or use"
                              " another build host")
        raise BuildFailed(
            f"the image's rpm cannot read its own rpmdb (rpm -qa exit {code}: {text.strip()[:200]});"
            f" remake the image with `rebuild image {target.name} --force ...` so its own rpm writes the rpmdb"
        )


def inode(path: Path) -> int:
    return path.stat().st_ino


_INSTALL = """
rpm -i --define "_topdir $TREE" "$SRPM"; rc=$?
echo "rebuild-probe rpm-i $rc"
[ "$rc" = 0 ] || exit "$rc"
"""


def install_srpm(step: Step, srpm_name: str, nvr: str, *, source_date_epoch: bool = True,
                 probe_cache: Path | None = None) -> tuple[Path, Tools]:
    """``rpm -i`` the SRPM into the build tree and probe the root's tools (``tools``), in one exec; return
    the one spec it holds and the tools. rpm's own output goes to build.log. An image never changes: with
    *probe_cache* (a file named by the image's content identity) the probe runs once per image."""
    with step.log.step(f"install {nvr}.src.rpm"):
        cached = _read_probe(probe_cache)
        chunks: list[bytes] = []
        env = {**step.env, "TREE": step.tree, "SRPM": f"{SRPM_DIR}/{srpm_name}", "TOOLS": " ".join(TOOL_MACROS)}
        shown = ["rpm", "-i", *step.topdir, f"{SRPM_DIR}/{srpm_name}",
                 *(["&&", "(probe the target's tools)"] if cached is None else [])]
        code = step.box.run(step.target.wrap(["sh", "-c", _INSTALL + (PROBE if cached is None else "")]),
                            user=step.user, env=env, output=chunks.append, shown=step.target.wrap(shown))
        text = b"".join(chunks).decode(errors="replace")
        probe = [line.split() for line in text.splitlines() if line.startswith("rebuild-probe ")]
        step.sink("".join(line + "\n" for line in text.splitlines() if not line.startswith("rebuild-probe ")).encode())
        if code != 0 or ["rebuild-probe", "rpm-i", "0"] not in probe:
            raise BuildFailed(f"rpm -i of the SRPM failed (exit {code}); see {step.build_log}",
                              detail=tail(step.build_log))
        if cached is None:
            _write_probe(probe_cache, [p for p in probe if p[1] != "rpm-i"])
        step.copy_out("")  # the whole tree (SPECS, SOURCES; the rest is empty yet): one round trip
    specs = sorted((step.work / "SPECS").glob("*.spec"))
    if len(specs) != 1:
        raise BuildFailed(f"the SRPM holds {len(specs)} spec files, expected exactly one")
    return specs[0], tools_from_probe(step, probe if cached is None else cached, source_date_epoch)


def probe_cache_path(cache: Path, identity: str | None) -> Path | None:
    """Where the probe of the image with content *identity* is kept (named by the probe's own text too)."""
    import hashlib

    if not identity:
        return None
    script = hashlib.sha256((PROBE + " ".join(TOOL_MACROS)).encode()).hexdigest()[:12]

    listed = installed_list(cache, identity)
    return listed.with_name(f"{listed.name}.probe-{script}")


def _read_probe(path: Path | None) -> list[list[str]] | None:
    try:
        return [line.split() for line in path.read_text().splitlines()] if path is not None else None
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def _write_probe(path: Path | None, probe: list[list[str]]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, "".join(" ".join(p) + "\n" for p in probe), mode=0o644)


def edit_spec(step: Step, spec_path: Path) -> SpecReport:
    """Apply the recipe's edits to the installed spec; spec.diff goes into the result."""
    recipe = step.recipe
    report = SpecReport(file=spec_path.name, edits=recipe.spec.as_dict())
    if recipe.spec.empty:
        return report  # and specfile (~0.1 s to load) is never loaded

    with step.log.step(f"edit {spec_path.name}"):
        spec = SpecText.read(spec_path)
        result = edit(spec, recipe.spec)
        for note in result.notes:
            step.log.warn(note)
        for change in result.changes:
            step.log.info(f"    {change}")
        header = "".join(f"# {note}\n" for note in result.notes)
        atomic_write(step.staging / "spec.diff", encoded(spec_path, header + result.diff(spec_path.name), spec.encoding),
                     mode=0o644)
        if result.changed:
            before = spec_path.stat()
            atomic_write(spec_path, encoded(spec_path, result.edited, spec.encoding), mode=before.st_mode & 0o7777)
            if os.geteuid() == 0:  # the build user's, as rpm -i left it (the SRPM records the owner)
                os.chown(spec_path, before.st_uid, before.st_gid)
            step.copy_in(f"SPECS/{spec_path.name}")
        for patch in recipe.spec.patches:  # beside the SRPM's own sources, which it may not replace
            dest = step.work / "SOURCES" / patch.path.name
            if os.path.lexists(dest):
                raise UsageError(f"{recipe.path}: spec.patches: the SRPM already has a source named"
                                 f" {patch.path.name}; rename the patch file")
            data = read_user_file(patch.path, "patch")
            if sha256_bytes(data) != patch.sha256:
                raise UsageError(f"{patch.path}: changed since the recipe was read; run the build again")
            dest.write_bytes(data)
            if os.geteuid() == 0:
                os.chown(dest, step.target.uid, step.target.uid)
            step.copy_in(f"SOURCES/{patch.path.name}")
    return replace(report, changes=tuple(result.changes), notes=tuple(result.notes),
                   diff_sha256=sha256_file(step.staging / "spec.diff"), unchanged=tuple(result.unchanged))


def query_spec(step: Step, spec_name: str, command: str) -> tuple[str, list[str] | None] | None:
    """Release and BuildRequires as the target's own rpm reads the spec; None when it cannot tell.

    rpmspec where there is one. rpm 4.0.x has none, and its ``rpm -q --specfile`` yields the binary
    packages' headers (their Release, not the BuildRequires): there, a source package is made from the
    edited spec (``-bs --nodeps``) and its requires are read, as they are the spec's BuildRequires."""
    spec = f"{step.tree}/SPECS/{spec_name}"
    requires = "[%{REQUIRENAME} %{REQUIREFLAGS:depflags} %{REQUIREVERSION}\\n]"
    code, text = _quiet(step, ["rpmspec", "-q", "--srpm", "--qf", "%{RELEASE}\\n" + requires, *step.topdir, spec])
    if code == 0 and text.strip():
        lines = [line.strip() for line in text.strip().splitlines()]
        return lines[0], [" ".join(line.split()) for line in lines[1:] if line]
    code, text = _quiet(step, ["rpm", "-q", "--qf", "rebuild-release %{RELEASE}\\n", *step.topdir, "--specfile", spec])
    releases = [line.split()[1] for line in text.splitlines() if line.startswith("rebuild-release ")]
    if code != 0 or not releases:
        return None
    query_dir = f"{step.tree}/.query"
    (step.work / ".query").mkdir(exist_ok=True)
    if os.geteuid() == 0:
        os.chown(step.work / ".query", step.target.uid, step.target.uid)
    step.copy_in(".query")
    code, _ = _quiet(step, [command, "-bs", "--nodeps", *step.topdir, "--define", f"_srcrpmdir {query_dir}", spec])
    step.copy_out(".query")
    made = sorted((step.work / ".query").glob("*.src.rpm"))
    if code != 0 or len(made) != 1:
        return releases[0], None
    code, text = _quiet(step, ["rpm", "-qp", "--qf", requires.replace("[", "[rebuild-req "),
                               f"{query_dir}/{made[0].name}"])
    made[0].unlink()
    if code != 0:
        return releases[0], None
    lines = [line.split(None, 1)[1] if " " in line else "" for line in text.splitlines()
             if line.startswith("rebuild-req ")]
    return releases[0], [" ".join(line.split()) for line in lines if line.strip()]


def _quiet(step: Step, argv: list[str]) -> tuple[int, str]:
    """Run a query: its output is read, not logged."""
    chunks: list[bytes] = []
    code = step.box.run(step.target.wrap(argv), user=step.user, env=step.env, output=chunks.append)
    return code, b"".join(chunks).decode(errors="replace")


def check_spec(step: Step, spec_path: Path, info: RpmInfo, report: SpecReport, command: str) -> SpecReport:
    """The edited spec read by the target's rpm: the Release the edit implies, and the BuildRequires."""
    edits = step.recipe.spec
    if edits.empty:
        return report

    with step.log.step("check the edited Release with the target's rpm"):
        queried = query_spec(step, spec_path.name, command)
        release = queried[0] if queried else None
        report = replace(report, release_before=info.release,
                         buildrequires_after=tuple(queried[1]) if queried and queried[1] is not None else None)
        if release is None:
            step.log.warn("the target's rpm cannot query the spec; the Release is checked on the built SRPM instead")
            report = replace(report, release_check="after-build")
        else:
            report = replace(report, release_after=release, release_check="spec-query")
            step.log.info(f"    Release {info.release} -> {release}")
        original = spec_path.read_text(errors="replace")
        # a macro set to the value it already has implies no new Release (said once, as a note, by the edit)
        names = [n for n, _ in edits.macros if n.partition("(")[0] not in report.unchanged]
        must_change = bool(edits.release_suffix) or release_uses(original, names)
        if release is not None and must_change and release == info.release:
            raise BuildFailed(
                f"{spec_path.name}: Release is still {release} after editing {', '.join(names) or 'Release'};"
                " the edit did not take effect (is the macro redefined later, or set by a conditional?)"
            )
        if release is not None and edits.release_suffix and not release.endswith(edits.release_suffix):
            raise BuildFailed(f"{spec_path.name}: Release {release} does not end in {edits.release_suffix}")
    return report


_INVENTORY = 'rpm -qa --qf "$QF"; rc=$?; [ -z "$DEBQF" ] || dpkg-query -W -f "$DEBQF"; exit $rc'
_DEB_TAG = "rebuild-deb"


def inventory(step: Step, identity: str | None = None, cache: Path | None = None) -> tuple[dict, list]:
    """What the build root holds: its rpm's packages (name -> [(EVR, arch)]), for the floors and the SBOM,
    and on a Debian root dpkg's (name, version, arch), whose rpmdb is empty. One exec for both; none when
    this image (its content *identity*) was listed before: the list is kept in ``<cache>/installed/``,
    shared with check-deps."""

    debian = step.target.image.method == "debootstrap"
    stored = installed_list(cache, identity) if identity and cache else None
    try:
        if stored is not None:
            rpm_raw = stored.read_bytes()
            deb_raw = stored.with_suffix(".deb").read_bytes() if debian else b""
            return parse_query(0, rpm_raw, inventory=True), _debs(deb_raw)
    except FileNotFoundError:
        pass
    chunks: list[bytes] = []
    env = {**step.env, "QF": QUERY_FORMAT.replace("\\n", "\n"),
           "DEBQF": f"{_DEB_TAG} ${{Package}}\t${{Version}}\t${{Architecture}}\n" if debian else ""}
    code = step.box.run(step.target.wrap(["sh", "-c", _INVENTORY]), user=step.user, env=env, output=chunks.append)
    output = b"".join(chunks)
    rpm_raw = b"".join(line for line in output.splitlines(keepends=True) if not line.startswith(_DEB_TAG.encode()))
    deb_raw = b"".join(line for line in output.splitlines(keepends=True) if line.startswith(_DEB_TAG.encode()))
    installed = parse_query(code, rpm_raw, inventory=True)
    if stored is not None:
        stored.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(stored, rpm_raw, mode=0o644)
        if debian:
            atomic_write(stored.with_suffix(".deb"), deb_raw, mode=0o644)
    return installed, _debs(deb_raw)


def _debs(raw: bytes) -> list[tuple[str, str, str]]:
    rows = []
    for line in raw.decode(errors="replace").splitlines():
        fields = line.removeprefix(_DEB_TAG + " ").split("\t")
        if len(fields) == 3:
            rows.append((fields[0], fields[1], fields[2]))
    return rows


def check_floors(step: Step, installed: dict, *, skip: bool, hint: str = "") -> FloorsReport | None:
    if step.recipe.floors is None:
        return None

    versions = {name: [evr for evr, _ in v] for name, v in installed.items()}
    return check_in_container(step.recipe.floors, versions, step.log, skip=skip, hint=hint)


def rpmbuild(step: Step, spec_path: Path, tools: Tools, failed_dir: Path) -> None:
    nodeps = ["--nodeps"] if step.target.nodeps else []
    command = tools.command
    defines = [arg for macro in tools.macros for arg in ("--define", macro)]
    argv = [command, "-ba", *nodeps, *step.topdir, *defines, f"{step.tree}/SPECS/{spec_path.name}"]
    # build.user: root, for 1999 Makefiles that `install -o root` (the container stays --network none)
    user = "0:0" if step.recipe.build_user == "root" else step.user
    with step.log.step(f"{command} -ba {spec_path.name}" + (" as root" if user == "0:0" else "")):
        code = step.box.run(step.target.wrap(argv), user=user, env=step.env, output=step.sink, workdir=step.tree)
        if code != 0:
            _keep_build_tree(step)
            log_tail = tail(step.build_log)
            missing = re.search(r": (/\S+): not found", log_tail)
            hint = (f"; the build ran {missing.group(1)}, which this root lacks (rpm 4.0.x compiles some tool paths"
                    " in; a root laid out otherwise needs that path: add a package or link that provides it)"
                    if missing else "")
            raise BuildFailed(
                f"{command} -ba {spec_path.name} failed (exit {code}){failure_cause(step.build_log)}{hint};"
                f" full log: {failed_dir / 'build.log'}",
                detail=log_tail,
            )
        step.copy_out("RPMS")
        step.copy_out("SRPMS")


def _keep_build_tree(step: Step) -> None:
    """A failed build's BUILD folder, for `rebuild shell --result` (from a remote engine: best effort)."""

    try:
        step.copy_out("BUILD")
    except RebuildError as exc:
        step.log.warn(f"the failed build's tree could not be copied back: {exc.message}")
