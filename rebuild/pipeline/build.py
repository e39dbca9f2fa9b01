"""The build pipeline: one fresh container per build, results renamed into place.

Phases (each in ``state.log`` with start, end, duration):
source -> verify-source -> image -> container -> preflight -> install-srpm -> edit-spec ->
check-spec -> floors -> rpmbuild -> collect -> checks.
The work tree is a host folder bind-mounted at /build; the SRPM is mounted read-only. The
in-container steps are ``steps``; the folders (staging, placing, failed logs) ``workdir``;
several builds at once ``batch``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from rebuild import __version__
from rebuild.config.newrecipe import IMPLIED
from rebuild.config.recipe import Recipe
from rebuild.errors import BuildFailed, CheckFailed, UsageError
from rebuild.evidence.provenance import FILE, statement
from rebuild.evidence.sbom import sbom, write_sbom
from rebuild.files import atomic_write, sha256_file
from rebuild.log import Log
from rebuild.pipeline import buildindex, steps
from rebuild.pipeline.checks import failure, run_checks
from rebuild.pipeline.inputs import QUIET, BuildInputs, Progress
from rebuild.pipeline.result import Inputs, Manifest, Output, RecipeRef, ResultDir, SrpmInput, TargetInfo
from rebuild.pipeline.workdir import LogSink, StateLog, collect, keep_failed_logs, place
from rebuild.roots.layers import build_layer
from rebuild.roots.pins import check_image
from rebuild.systems.engine import Engine, Mount
from rebuild.systems.rpmfile import RpmInfo, read_info, source_buildrequires
from rebuild.systems.urls import redact, redact_text


@dataclass(frozen=True)
class BuildResult:
    directory: Path
    nvr: str
    outputs: tuple[Output, ...]
    duration: float
    cached: bool = False


def check_srpm(recipe: Recipe, srpm: Path, digest: str) -> RpmInfo:
    """The SRPM is a source package named as the recipe says, with the pinned digest."""
    try:
        info = read_info(srpm)
    except UsageError as exc:
        raise UsageError(f"{recipe.path}: source {exc.message}") from None
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


def _out_dir(out_dir: Path) -> Path:
    out_dir = Path(out_dir).resolve()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=".probe-", dir=out_dir))
        probe.rmdir()
    except OSError as exc:
        raise UsageError(f"--out {out_dir}: cannot write results there ({exc.strerror}); choose another folder") from None
    return out_dir


def build(inputs: BuildInputs, engine: Engine, log: Log, progress: Progress = QUIET) -> BuildResult:
    """Build *inputs* (``resolve``); return where the verified result folder is.

    The options' *source_date_epoch*: on rpm 4.14 and later, the build time comes from the spec's %changelog
    and file times are clamped to it (tools.REPRODUCIBLE_MACROS); *variant*: the host name, time zone and
    build path."""
    recipe, target, settings, options = inputs.recipe, inputs.target, inputs.settings, inputs.options
    skip_deps_check, source_date_epoch, variant = options.skip_deps_check, options.source_date_epoch, options.variant
    started = time.monotonic() - inputs.source_seconds
    started_at = datetime.now(UTC)
    out_dir = _out_dir(options.out_dir)
    state = StateLog(on_phase=progress.on_phase)
    state.record("source", inputs.source_seconds)
    srpm, digest = inputs.srpm, inputs.srpm_sha256
    # The pin's content identity keys the cache (the same on every engine holding the image): a no-op
    # needs neither librpm nor the engine.
    if not options.force:
        hit = buildindex.lookup(out_dir, inputs.key)
        if hit is not None:
            directory, stored = hit
            log.info(f"up to date: {directory} (build key {inputs.key[:12]}; --force rebuilds)")
            return BuildResult(directory, directory.name, stored.outputs, time.monotonic() - started, cached=True)
    # the SRPM is the user's input: checked before the engine is asked for anything
    with state.phase("verify-source"), log.step("verify source RPM"):
        info = check_srpm(recipe, srpm, digest)
    with state.phase("image"):
        image_id = check_image(target, engine, settings.cache, log)
    if inputs.pin is None or image_id != inputs.pin.image_id:  # made or pulled meanwhile
        inputs = inputs.repinned()
    pin, key, key_inputs = inputs.pin, inputs.key, inputs.key_inputs
    manifest = Manifest(
        rebuild_version=__version__,
        recipe=RecipeRef(recipe.name, str(recipe.path), recipe.sha256, implied=_implied(recipe)),
        started=started_at.isoformat(timespec="seconds"),
        inputs=Inputs(SrpmInput(srpm.name, str(srpm), tuple(redact(u) for u in recipe.source.urls), digest,
                                srpm.stat().st_size, info.nevra)),
        build_key=key,
        build_key_inputs=key_inputs,
        target=TargetInfo(target.name, target.tag, image_id, target.arch, target.personality,
                          target.build_command, target.definition_sha256, content_id=pin.content_id,
                          registry=pin.registry, build_user=recipe.build_user or None),
    )
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out_dir))
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=out_dir))
    state.attach(staging / "state.log")
    build_log = staging / "build.log"
    failed_dir = out_dir / f"{info.nvr}.failed"
    try:
        if os.geteuid() == 0:
            os.chown(work, target.uid, target.uid)
        steps.prepare_tree(work, target)
        mounts = [Mount(work, variant.tree), Mount(srpm, f"{steps.SRPM_DIR}/{srpm.name}", read_only=True)]
        header_buildrequires = None
        early = None
        if recipe.spec.empty:
            # nothing edits the spec: its BuildRequires (and BuildPrereq) are the SRPM header's, solved into the
            # build root before any container, so an unsolvable one stops here with libsolv's reason (exit 2)
            header_buildrequires = source_buildrequires(srpm)
            with state.phase("build-root"):
                early = _layer(inputs, image_id, header_buildrequires, engine, log)
        with open(build_log, "ab") as log_fh, ExitStack() as stack:
            with state.phase("container"):
                box = stack.enter_context(engine.container(early.image_id if early else image_id, mounts=mounts,
                                                           hostname=variant.hostname))
            step = steps.Step(recipe, target, box, work, staging, log, LogSink(log_fh, progress.echo), state, build_log,
                              user=f"{target.uid}:{target.uid}", env={"HOME": variant.tree, "LC_ALL": "C", "TZ": variant.tz},
                              tree=variant.tree)
            first = manifest.target.content_id  # the tool probe is kept per image the container runs
            if early is not None and early.image_id != image_id:
                inspected = engine.inspect_image(early.image_id)
                first = inspected.content_id if inspected else None
            spec_path, manifest = _prepare(step, info, manifest, source_date_epoch, settings.cache, first)
            if early is not None:
                layer = early
                manifest = replace(manifest, spec=replace(manifest.spec, buildrequires_after=tuple(header_buildrequires)))
            else:
                with state.phase("build-root"):
                    layer = _layer(inputs, image_id, list(manifest.spec.buildrequires_after or ()), engine, log)
            check_image_id = layer.image_id
            if early is None and layer.image_id != image_id:
                stack.close()  # the base image's container is done: the build goes on in the layer's
                with state.phase("container"):
                    step.box = stack.enter_context(engine.container(layer.image_id, mounts=mounts,
                                                                    hostname=variant.hostname))
            manifest = replace(manifest, root=_root_record(image_id, layer))
            identity = manifest.target.content_id  # what the build root is, to find its package list once known
            if layer.image_id != image_id:
                info = engine.inspect_image(layer.image_id)
                identity = info.content_id if info else None
            manifest, installed = _build(step, spec_path, manifest, failed_dir, skip_deps_check=skip_deps_check,
                                         identity=identity, cache=settings.cache)
        with state.phase("collect"), log.step("collect results"):
            outputs = collect(work, staging)
            srpms = [o for o in outputs if o.source]
            if not srpms or not any(not o.source for o in outputs):
                raise BuildFailed(f"rpmbuild finished but left no {'source' if not srpms else 'binary'} RPM in {work}")
            built_nvr = f"{srpms[0].name}-{srpms[0].version}-{srpms[0].release}"
            expected = manifest.spec.release_after if manifest.spec else None
            if expected and srpms[0].release != expected:
                raise BuildFailed(f"rpmbuild built release {srpms[0].release}, but the edited spec says {expected}")
            suffix = recipe.spec.release_suffix
            for stale in [o for o in outputs if suffix and not o.release.endswith(suffix)][:1]:  # subpackages too
                raise BuildFailed(f"{stale.file}: release {stale.release} does not end in {suffix} (a subpackage's"
                                  " own Release: the suffix did not reach?)")
        manifest = replace(manifest, outputs=tuple(outputs))
        result_dir = ResultDir(staging)
        if recipe.checks and variant.run_checks:
            with state.phase("checks"):
                results = run_checks(recipe, target, engine, check_image_id, staging, log)
            manifest = manifest.with_checks(results)
            problem = failure(results)
            if problem is not None:
                result_dir.write(replace(manifest, phases=tuple(state.phases)))
                problem.message += f"; the RPMs and logs are in {failed_dir}"
                raise problem
        manifest = replace(manifest, phases=tuple(state.phases),
                           finished=datetime.now(UTC).isoformat(timespec="seconds"),
                           duration_seconds=round(time.monotonic() - started, 3))
        result_dir.write(replace(manifest, attestations=_attest(staging, recipe, manifest, installed)))
        final = out_dir / built_nvr
        staging.chmod(0o755)  # mkdtemp made it 0700
        place(staging, final)
        buildindex.record(out_dir, key, final)
        if variant.kept:
            log.info(f"results in {final}")
        return BuildResult(final, built_nvr, tuple(outputs), time.monotonic() - started)
    except BaseException as exc:
        if build_log.exists():
            if not (staging / "manifest.json").exists():  # what is known so far, for `rebuild shell --result`
                ResultDir(staging).write(replace(manifest, phases=tuple(state.phases)))
            failed_in_build = isinstance(exc, BuildFailed)
            keep_failed_logs(staging, failed_dir, tree=work if failed_in_build else None)
            if failed_in_build:
                exc.message += f"; look around in its tree: rebuild shell {target.name} --result {failed_dir}"
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)


def _prepare(step: steps.Step, info: RpmInfo, manifest: Manifest, source_date_epoch: bool,
             cache: Path, identity: str | None) -> tuple[Path, Manifest]:
    """In the base image: preflight, SRPM install, the spec edit and the target's rpm's reading of it."""
    state, target = step.state, step.target
    if steps.is_32bit(target):
        with state.phase("preflight"), step.log.step("preflight for a 32-bit target"):
            steps.preflight(target, step.box, step.work, step.user)
    with state.phase("install-srpm"):
        spec_path, step.tools = steps.install_srpm(
            step, step.recipe.source.srpm, info.nvr, source_date_epoch=source_date_epoch,
            probe_cache=steps.probe_cache_path(cache, identity))
    with state.phase("edit-spec"):
        spec = steps.edit_spec(step, spec_path)
    with state.phase("check-spec"):
        spec = steps.check_spec(step, spec_path, info, spec, step.tools.command)
    target = replace(manifest.target, build_command_used=step.tools.command,
                     redirected_tools=step.tools.redirected or None, rpm_version=step.tools.rpm_version,
                     build_macros=step.tools.macros or None)
    return spec_path, replace(manifest, spec=spec, target=target)


def _layer(inputs: BuildInputs, image_id: str, buildrequires: list[str], engine: Engine, log: Log):
    """The image the build runs in: the base, or a layer with the BuildRequires and floors solved in."""
    floors = None if inputs.options.skip_deps_check else inputs.recipe.floors
    return build_layer(inputs.target, image_id, buildrequires, floors, engine, log, inputs.settings.cache)


def _root_record(base_image: str, layer) -> dict | None:
    if layer.lock is None:
        return None
    import json

    record = {"base_image_id": base_image, "image_id": layer.image_id, "added": list(layer.added),
              "lock_sha256": layer.lock.sha256, "lock": json.loads(layer.lock.to_json())}
    if layer.partial:  # the lock lists only the chain's packages; the rest of the root is the image's rpm -qa
        record["partial"] = True
    return record


def _build(step: steps.Step, spec_path: Path, manifest: Manifest, failed_dir: Path, *,
           skip_deps_check: bool, identity: str | None = None, cache: Path | None = None) -> tuple[Manifest, dict]:
    """In the build root: the floors checked by its own rpm, then rpmbuild; and what the root holds
    ({"rpm": name -> [(EVR, arch)], "deb": [(name, version, arch)] on a Debian root})."""
    state = step.state
    lock = (manifest.root or {}).get("lock") or {}
    hint = ""
    if step.target.image.method == "rpmtree" and lock and "updates" not in lock.get("trees", {}):
        hint = ("; the image was made without an updates tree, and floors above a release's own versions need one:"
                f" rebuild image {step.target.name} --updates URL_OR_DIR --force")
    with state.phase("floors"):
        installed, debs = steps.inventory(step, identity, cache)
        floors = steps.check_floors(step, installed, skip=skip_deps_check, hint=hint)
    manifest = replace(manifest, floors=floors)
    with state.phase("rpmbuild"):
        steps.rpmbuild(step, spec_path, step.tools, failed_dir)
    return manifest, {"rpm": installed, "deb": debs}


def _attest(staging: Path, recipe: Recipe, manifest: Manifest, installed: dict) -> dict:
    """sbom.spdx.json and provenance.json beside the RPMs; their digests go into the manifest."""
    import json

    inventory = [(name, str(evr), arch) for name, versions in sorted(installed["rpm"].items()) for evr, arch in versions]
    write_sbom(staging / "sbom.spdx.json", sbom(manifest, inventory, manifest.finished, installed["deb"]))
    # the recipe as loaded, its URLs' credentials redacted (manifest.recipe.sha256 is the original's digest)
    atomic_write(staging / FILE, json.dumps(statement(manifest, redact_text(recipe.text)), indent=2) + "\n",
                 mode=0o644)
    return {name: sha256_file(staging / name) for name in ("sbom.spdx.json", FILE)}


def _implied(recipe: Recipe) -> dict | None:
    """The recipe a bare SRPM implied (build foo.src.rpm --target T), as manifest.json records it."""

    if recipe.path.parent.name != IMPLIED:
        return None
    import yaml

    return yaml.safe_load(redact_text(recipe.text))
