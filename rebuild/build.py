"""The build pipeline: one fresh container per build, results renamed into place.

Phases (each in ``state.log`` with start, end, duration):
source -> image -> container -> install-srpm -> edit-spec -> check-spec ->
floors -> rpmbuild -> collect -> publish-result.
The work tree is a host folder bind-mounted at /build; the SRPM is mounted read-only.
A failed or interrupted build leaves no result directory: the failed build's logs go
to ``<out>/<nvr>.failed/`` instead.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Callable

from rebuild import __version__, cache
from rebuild.engine import Container, Engine, Mount
from rebuild.errors import BuildFailed, CheckFailed, UsageError
from rebuild.image import check_image, read_pin
from rebuild.log import Log
from rebuild.recipe import Recipe
from rebuild.rpmfile import RpmInfo, read_info, sha256_file
from rebuild.targets import Target

TOPDIR = "/build"
SRPM_DIR = "/srpm"
HOSTNAME = "rebuild.localdomain"
LOG_TAIL = 25


@dataclass(frozen=True)
class BuildResult:
    directory: Path
    nvr: str
    outputs: tuple[dict, ...]
    duration: float
    cached: bool = False


@dataclass
class StateLog:
    """Each phase with start, end and duration; written line by line once it has a file."""

    path: Path | None = None
    phases: list[dict] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    def attach(self, path: Path) -> None:
        self.path = path
        with path.open("a") as fh:
            fh.writelines(self.pending)
        self.pending.clear()

    def _line(self, text: str) -> None:
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = f"{stamp} {text}\n"
        if self.path is None:
            self.pending.append(line)
            return
        with self.path.open("a") as fh:
            fh.write(line)

    def phase(self, name: str) -> "_Phase":
        return _Phase(self, name)


class _Phase:
    def __init__(self, state: StateLog, name: str) -> None:
        self.state, self.name = state, name

    def __enter__(self) -> None:
        self.start = time.monotonic()
        self.state._line(f"start {self.name}")

    def __exit__(self, kind, exc, tb) -> None:
        took = time.monotonic() - self.start
        status = "ok" if kind is None else ("interrupted" if kind is KeyboardInterrupt else "failed")
        self.state._line(f"end   {self.name} {took:.3f}s {status}")
        self.state.phases.append({"phase": self.name, "seconds": round(took, 3), "status": status})


def resolve_srpm(recipe: Recipe, log: Log) -> Path:
    """The local SRPM for *recipe*: a path or file:// URL, or the verified fetch cache for http(s)."""
    from rebuild.fetch import locate_srpm

    return locate_srpm(recipe, log)


def _check_srpm(recipe: Recipe, srpm: Path, digest: str) -> RpmInfo:
    info = read_info(srpm)
    if not info.is_source:
        raise UsageError(f"{srpm}: is a binary RPM ({info.nevra}); the recipe needs a source RPM")
    expected = recipe.source.srpm[: -len(".src.rpm")]
    if info.nvr != expected:
        raise UsageError(
            f"{srpm}: header says {info.nvr}, but the recipe {recipe.path.name} expects {expected}; fix source.srpm"
        )
    if recipe.source.sha256 and digest != recipe.source.sha256:
        raise CheckFailed(f"{srpm}: sha256 is {digest}, the recipe pins {recipe.source.sha256}; refusing to build")
    return info


class _LogSink:
    """Collects a step's output into build.log and optionally echoes it."""

    def __init__(self, fh: IO[bytes], echo: Callable[[bytes], None] | None) -> None:
        self.fh, self.echo = fh, echo

    def __call__(self, chunk: bytes) -> None:
        self.fh.write(chunk)
        self.fh.flush()
        if self.echo:
            self.echo(chunk)


def _tail(path: Path, lines: int = LOG_TAIL) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def _collect(work: Path, staging: Path) -> list[dict]:
    outputs = []
    found = sorted((work / "RPMS").rglob("*.rpm")) + sorted((work / "SRPMS").glob("*.rpm"))
    for src in found:
        rel = src.relative_to(work)
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        info = read_info(dest)
        outputs.append(
            {
                "file": str(rel),
                **info.as_dict(),
                "source": info.is_source,
                "size": dest.stat().st_size,
                "sha256": sha256_file(dest),
            }
        )
    return outputs


def _place(staging: Path, final: Path) -> None:
    """Rename *staging* to *final*; an older result is moved aside first and removed after.

    Two builds placing the same result at once both succeed, and *final* is always one
    complete result: a rename onto a non-empty folder fails, so the loser moves it aside
    and tries again.
    """
    for attempt in range(20):
        try:
            os.rename(staging, final)
            return
        except OSError:
            if not final.exists():
                raise
            old = final.with_name(f".{final.name}.old-{os.getpid()}-{threading.get_ident()}-{attempt}")
            try:
                os.rename(final, old)
            except FileNotFoundError:
                continue
            shutil.rmtree(old, ignore_errors=True)
    raise BuildFailed(f"could not place the result at {final}: another build keeps replacing it")


def build(
    recipe: Recipe,
    target: Target,
    engine: Engine,
    log: Log,
    *,
    out_dir: Path,
    skip_deps_check: bool = False,
    force: bool = False,
    echo: Callable[[bytes], None] | None = None,
) -> BuildResult:
    """Build *recipe* on *target*; return where the verified result directory is."""
    started = time.monotonic()
    started_at = datetime.now(timezone.utc)
    out_dir = Path(out_dir).resolve()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=".probe-", dir=out_dir))
        probe.rmdir()
    except OSError as exc:
        raise UsageError(f"--out {out_dir}: cannot write results there ({exc.strerror}); choose another folder") from None
    state = StateLog()
    manifest: dict = {
        "rebuild_version": __version__,
        "recipe": {"name": recipe.name, "path": str(recipe.path), "sha256": sha256_file(recipe.path)},
        "started": started_at.isoformat(timespec="seconds"),
    }
    with state.phase("source"):
        srpm = resolve_srpm(recipe, log)
        digest = sha256_file(srpm)
    pin = read_pin(target)
    # The pin's image ID keys the cache: a no-op needs neither librpm nor the engine.
    key_image = pin.image_id if pin else "unpinned"
    key, key_inputs = cache.build_key(recipe, target, key_image, digest, skip_deps_check=skip_deps_check)
    if not force:
        hit = cache.lookup(out_dir, key)
        if hit is not None:
            directory, stored = hit
            log.info(f"up to date: {directory} (build key {key[:12]}; --force rebuilds)")
            return BuildResult(directory, directory.name, tuple(stored["outputs"]), time.monotonic() - started,
                               cached=True)
    if not recipe.spec.empty:
        # specfile takes ~0.1 s to load; load it while the engine round trips wait on the socket
        threading.Thread(target=_warm_up, daemon=True).start()
    with state.phase("image"):
        image_id = check_image(target, engine)
    with state.phase("verify-source"), log.step("verify source RPM"):
        info = _check_srpm(recipe, srpm, digest)
        manifest["inputs"] = {
            "srpm": {
                "file": srpm.name,
                "path": str(srpm),
                "urls": list(recipe.source.urls),
                "sha256": digest,
                "size": srpm.stat().st_size,
                "nevra": info.nevra,
            }
        }
    if image_id != key_image:
        key, key_inputs = cache.build_key(recipe, target, image_id, digest, skip_deps_check=skip_deps_check)
    manifest["build_key"] = key
    manifest["build_key_inputs"] = key_inputs
    manifest["target"] = {
        "name": target.name,
        "image": target.image.tag,
        "image_id": image_id,
        "arch": target.arch,
        "personality": target.personality,
        "build_command": target.build_command,
        "definition_sha256": target.definition_sha256,
    }
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out_dir))
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=out_dir))
    state.attach(staging / "state.log")
    build_log = staging / "build.log"
    try:
        if os.geteuid() == 0:
            os.chown(work, target.uid, target.uid)
        mounts = [Mount(work, TOPDIR), Mount(srpm, f"{SRPM_DIR}/{srpm.name}", read_only=True)]
        user = f"{target.uid}:{target.uid}"
        env = {"HOME": TOPDIR, "LC_ALL": "C", "TZ": "UTC"}
        with open(build_log, "ab") as log_fh:
            sink = _LogSink(log_fh, echo)
            with ExitStack() as stack:
                with state.phase("container"):
                    box = stack.enter_context(engine.container(image_id, mounts=mounts, hostname=HOSTNAME))
                _in_container(recipe, target, box, work, staging, state, log, sink, manifest, info, user, env,
                              skip_deps_check=skip_deps_check, build_log=build_log)
        with state.phase("collect"), log.step("collect results"):
            outputs = _collect(work, staging)
            srpms = [o for o in outputs if o["source"]]
            if not srpms or not any(not o["source"] for o in outputs):
                raise BuildFailed(f"rpmbuild finished but left no {'source' if not srpms else 'binary'} RPM in {work}")
            built_nvr = f"{srpms[0]['name']}-{srpms[0]['version']}-{srpms[0]['release']}"
            _check_built_release(manifest, srpms[0]["release"])
        manifest["outputs"] = outputs
        if recipe.checks:
            from rebuild.verify import failure, run_checks

            with state.phase("checks"):
                results = run_checks(recipe, target, engine, image_id, staging, log)
            manifest["checks"] = [r.as_dict() for r in results]
            problem = failure(results)
            if problem is not None:
                manifest["phases"] = state.phases
                _write_text(staging / "manifest.json", json.dumps(manifest, indent=2) + "\n")
                problem.message += f"; the RPMs and logs are in {out_dir / (info.nvr + '.failed')}"
                raise problem
        manifest["phases"] = state.phases
        manifest["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        manifest["duration_seconds"] = round(time.monotonic() - started, 3)
        _write_text(staging / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        final = out_dir / built_nvr
        staging.chmod(0o755)  # mkdtemp made it 0700
        _place(staging, final)
        cache.record(out_dir, key, final)
        log.info(f"results in {final}")
        return BuildResult(final, built_nvr, tuple(outputs), time.monotonic() - started)
    except BaseException:
        if build_log.exists():
            _keep_failed_logs(staging, out_dir / f"{info.nvr}.failed")
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)


def _warm_up() -> None:
    import specfile.macro_definitions  # noqa: F401


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _keep_failed_logs(staging: Path, dest: Path) -> None:
    """Logs (and, when checks failed, the RPMs and manifest) of a failed build go to <nvr>.failed/."""
    keep = Path(tempfile.mkdtemp(prefix=".failed-", dir=dest.parent))
    for name in ("build.log", "state.log", "spec.diff", "manifest.json"):
        if (staging / name).exists():
            shutil.copyfile(staging / name, keep / name)
    for folder in ("RPMS", "SRPMS"):
        if (staging / folder).is_dir():
            shutil.copytree(staging / folder, keep / folder)
    keep.chmod(0o755)
    _place(keep, dest)


def _check_built_release(manifest: dict, built_release: str) -> None:
    expected = manifest.get("spec", {}).get("release_after")
    if expected and built_release != expected:
        raise BuildFailed(f"rpmbuild built release {built_release}, but the edited spec says {expected}")


def _is_32bit(target: Target) -> bool:
    return target.personality == "linux32" or target.arch in ("i386", "i486", "i586", "i686")


def preflight(target: Target, box: Container, work: Path, user: str) -> None:
    """Clear errors, before anything is built, for what old 32-bit targets need from this machine."""
    probe = work / ".inode-probe"
    probe.write_bytes(b"")
    for path in (work, probe):
        if _inode(path) > 0xFFFFFFFF:
            raise BuildFailed(
                f"{path.parent if path == probe else path}: inode numbers here exceed 2^32, and 32-bit tools built"
                " without large-file support (RH 7.3's) fail with EOVERFLOW on them; use --out on a filesystem with"
                " 32-bit inodes (ext4; XFS mounted with inode32; tmpfs without inode64)"
            )
    probe.unlink()
    out: list[bytes] = []
    code = box.run(target.wrap(["uname", "-m"]), user=user, output=out.append)
    machine = b"".join(out).decode(errors="replace").strip()
    if code != 0 or (target.personality == "linux32" and machine not in ("i386", "i486", "i586", "i686")):
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


def _inode(path: Path) -> int:
    return path.stat().st_ino


def _build_command(target: Target, box: Container, user: str) -> str:
    if target.build_command != "auto":
        return target.build_command
    code = box.run(["sh", "-c", "command -v rpmbuild"], user=user, output=lambda _chunk: None)
    return "rpmbuild" if code == 0 else "rpm"


def _in_container(recipe, target, box: Container, work, staging, state, log, sink, manifest, info, user, env,
                  *, skip_deps_check: bool, build_log: Path) -> None:
    topdir = ["--define", f"_topdir {TOPDIR}"]
    if _is_32bit(target):
        with state.phase("preflight"), log.step("preflight for a 32-bit target"):
            preflight(target, box, work, user)
    with state.phase("install-srpm"), log.step(f"install {info.nvr}.src.rpm"):
        code = box.run(["rpm", "-i", *topdir, f"{SRPM_DIR}/{recipe.source.srpm}"], user=user, env=env, output=sink)
        if code != 0:
            raise BuildFailed(f"rpm -i of the SRPM failed (exit {code}); see {build_log}", detail=_tail(build_log))
    specs = sorted((work / "SPECS").glob("*.spec"))
    if len(specs) != 1:
        raise BuildFailed(f"the SRPM holds {len(specs)} spec files, expected exactly one")
    spec_path = specs[0]
    with state.phase("edit-spec"):
        _apply_edits(recipe, spec_path, staging, manifest, log)
    with state.phase("check-spec"):
        _check_spec(recipe, target, box, spec_path, manifest, info, user, env, log)
    with state.phase("floors"):
        _check_floors(recipe, target, box, manifest, log, skip=skip_deps_check)
    nodeps = ["--nodeps"] if target.nodeps else []
    command = _build_command(target, box, user)
    manifest["target"]["build_command_used"] = command
    argv = target.wrap([command, "-ba", *nodeps, *topdir, f"{TOPDIR}/SPECS/{spec_path.name}"])
    with state.phase("rpmbuild"), log.step(f"{command} -ba {spec_path.name}"):
        code = box.run(argv, user=user, workdir=TOPDIR, env=env, output=sink)
        if code != 0:
            failed = build_log.parent.parent / f"{info.nvr}.failed" / "build.log"
            raise BuildFailed(
                f"{command} -ba {spec_path.name} failed (exit {code}); full log: {failed}",
                detail=_tail(build_log),
            )


def _apply_edits(recipe: Recipe, spec_path: Path, staging: Path, manifest: dict, log: Log) -> None:
    from rebuild.spec import SpecText, edit_spec, write_atomic

    manifest["spec"] = {"file": spec_path.name, "edits": recipe.spec.as_dict()}
    if recipe.spec.empty:
        return
    with log.step(f"edit {spec_path.name}"):
        spec = SpecText.read(spec_path)
        result = edit_spec(spec, recipe.spec)
        for note in result.notes:
            log.warn(note)
        for change in result.changes:
            log.info(f"    {change}")
        diff = result.diff(spec_path.name)
        header = "".join(f"# {note}\n" for note in result.notes)
        write_atomic(staging / "spec.diff", header + diff, spec.encoding)
        if result.changed:
            write_atomic(spec_path, result.edited, spec.encoding, like=spec_path)
        manifest["spec"].update(
            {"changes": result.changes, "notes": result.notes, "diff_sha256": sha256_file(staging / "spec.diff")}
        )


def _query_spec(target: Target, box: Container, spec_name: str, user: str, env: dict) -> tuple[str, list[str]] | None:
    """Release and BuildRequires as the target's own rpm reads the spec; None when it cannot tell."""
    spec = f"{TOPDIR}/SPECS/{spec_name}"
    topdir = ["--define", f"_topdir {TOPDIR}"]
    # the source package's Requires are the spec's BuildRequires
    qf = "%{RELEASE}\\n[%{REQUIRENAME} %{REQUIREFLAGS:depflags} %{REQUIREVERSION}\\n]"
    for argv in (
        ["rpmspec", "-q", "--srpm", "--qf", qf, *topdir, spec],
        ["rpm", "-q", "--qf", "%{RELEASE}\\n", *topdir, "--specfile", spec],
    ):
        chunks: list[bytes] = []
        code = box.run(target.wrap(argv), user=user, env=env, output=chunks.append)
        text = b"".join(chunks).decode(errors="replace")
        lines = [line.strip() for line in text.strip().splitlines()]
        if code == 0 and lines:
            return lines[0], [" ".join(line.split()) for line in lines[1:] if line]
        if code not in (126, 127) and "not found" not in text and "unknown option" not in text:
            return None
    return None


def _check_spec(recipe, target, box, spec_path, manifest, info: RpmInfo, user, env, log: Log) -> None:
    edits = recipe.spec
    if edits.empty:
        return
    with log.step("check the edited Release with the target's rpm"):
        queried = _query_spec(target, box, spec_path.name, user, env)
        release = queried[0] if queried else None
        manifest["spec"]["release_before"] = info.release
        if queried:
            manifest["spec"]["buildrequires_after"] = queried[1]
        if release is None:
            log.warn("the target's rpm cannot query the spec; the Release is checked on the built SRPM instead")
            manifest["spec"]["release_check"] = "after-build"
        else:
            manifest["spec"]["release_after"] = release
            manifest["spec"]["release_check"] = "spec-query"
            log.info(f"    Release {info.release} -> {release}")
        from rebuild.spec import release_uses

        original = spec_path.read_text(errors="replace")
        names = [n for n, _ in edits.macros]
        must_change = bool(edits.release_suffix) or release_uses(original, names)
        if release is not None and must_change and release == info.release:
            raise BuildFailed(
                f"{spec_path.name}: Release is still {release} after editing {', '.join(names) or 'Release'};"
                " the edit did not take effect (is the macro redefined later, or set by a conditional?)"
            )
        if release is not None and edits.release_suffix and not release.endswith(edits.release_suffix):
            raise BuildFailed(f"{spec_path.name}: Release {release} does not end in {edits.release_suffix}")


def _check_floors(recipe, target, box, manifest, log, *, skip: bool) -> None:
    if recipe.floors is None:
        return
    from rebuild.deps import check_in_container

    check_in_container(recipe.floors, target, box, manifest, log, skip=skip)


@dataclass(frozen=True)
class BatchItem:
    recipe: Recipe
    result: BuildResult | None
    error: BaseException | None
    duration: float


def build_many(
    jobs: list[tuple[Recipe, Target]],
    engine,
    log: Log,
    *,
    out_dir: Path,
    parallel: int,
    skip_deps_check: bool = False,
    force: bool = False,
    echo: Callable[[bytes], None] | None = None,
) -> list[BatchItem]:
    """Build independent recipes, *parallel* at a time, each in its own container and work tree.

    One failure does not stop the others. Ctrl-C removes every container and re-raises.
    """
    from concurrent.futures import ThreadPoolExecutor

    from rebuild.errors import RebuildError

    def one(recipe: Recipe, target: Target) -> BatchItem:
        child = log.child(f"[{recipe.name}] ") if len(jobs) > 1 else log
        own_engine = engine.for_log(child) if hasattr(engine, "for_log") else engine
        start = time.monotonic()
        try:
            result = build(recipe, target, own_engine, child, out_dir=out_dir, skip_deps_check=skip_deps_check,
                           force=force, echo=echo if len(jobs) == 1 else None)
            return BatchItem(recipe, result, None, time.monotonic() - start)
        except RebuildError as exc:
            if len(jobs) > 1:
                child.warn(f"failed: {exc.message}")
            return BatchItem(recipe, None, exc, time.monotonic() - start)

    if len(jobs) == 1 or parallel <= 1:
        return [one(recipe, target) for recipe, target in jobs]
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="build")
    futures = [pool.submit(one, recipe, target) for recipe, target in jobs]
    try:
        items = [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        if hasattr(engine, "remove_all"):
            engine.remove_all()
        pool.shutdown(wait=True, cancel_futures=True)
        if hasattr(engine, "remove_all"):
            engine.remove_all()
        raise
    pool.shutdown(wait=True)
    return items


def summary_table(items: list[BatchItem]) -> str:
    rows = [("RECIPE", "RESULT", "SECONDS", "HOW")]
    for item in items:
        if item.result is not None:
            rows.append((item.recipe.name, item.result.directory.name, f"{item.duration:.1f}",
                         "cached" if item.result.cached else "built"))
        else:
            rows.append((item.recipe.name, f"FAILED (exit {getattr(item.error, 'exit_code', 1)})",
                         f"{item.duration:.1f}", "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    failed = sum(1 for i in items if i.result is None)
    lines.append(f"{len(items)} recipes: {len(items) - failed} ok, {failed} failed")
    return "\n".join(lines)
