"""A build's own layer: the edited spec's BuildRequires and the recipe's floors, installed by the image's
own rpm on top of the target's base image, cached as an image keyed by what it adds.

root = solve(base ∪ BuildRequires ∪ floors), with the base image's packages as the installed set.
When that adds nothing the base image is used as it is. Otherwise the new packages (and any
upgrade a floor needs) are fetched through the verified cache and installed with ``rpm -Uvh`` by
the image's own rpm in a container of the base image, whose own dependency check must then find
nothing missing; the container is committed as ``<image>-layer:<key>``. Two builds that need the
same packages share the layer. Targets without a solved root (debootstrap, a root made from a
lock without its trees) build in the base image.

A target's extra trees (a chain's repository) join the trees solved from, their packages locked with
their origin. On a root without a solved lock, the extra trees' packages that meet the BuildRequires
(with what they need of each other) are installed alone, with ``--nodeps`` where the target says its
rpmdb does not list what is installed; the lock then lists only them (``partial``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rebuild.config.floors import FloorsManifest
from rebuild.config.target import Target
from rebuild.errors import EnvironmentProblem, UsageError
from rebuild.files import atomic_write, read_json
from rebuild.log import Log
from rebuild.roots.buildroot import SNAPSHOT, fetch_packages, load_snapshot, make_lock, plan_root, read_known
from rebuild.roots.lock import MAX_LOCK, RootLock, lock_path, read_lock
from rebuild.roots.pins import image_dir
from rebuild.roots.solver import Unsolvable, Want, parse_dep, satisfies
from rebuild.roots.treeimage import unmet_dependencies
from rebuild.roots.treeindex import PackageMeta, read_tree
from rebuild.systems.engine import Engine, Mount


@dataclass(frozen=True)
class Layer:
    image_id: str
    lock: RootLock | None          # the whole root: base and layer
    added: tuple[str, ...] = ()    # NEVRAs the layer adds or upgrades
    partial: bool = False          # the lock lists only what the layer added (a root without a solved lock)


def buildroot_wants(buildrequires: list[str] | None, floors: FloorsManifest | None) -> list[Want]:
    wants = [Want("buildrequires", br) for br in buildrequires or () if not br.startswith("rpmlib(")]
    wants += [Want("floor", f"{f.name} >= {f.minimum}") for f in (floors.floors if floors else ())]
    return wants


def build_layer(target: Target, base_image: str, buildrequires: list[str] | None, floors: FloorsManifest | None,
                engine: Engine, log: Log, cache: Path, base_lock: RootLock | None = None) -> Layer:
    """The image a build runs in: the base image, or a layer with what the build needs besides.

    *base_lock* is what *base_image* holds (default: the target's lock; a layer's own lock to stack another
    layer on it, as for the packages a built RPM needs at run time)."""
    folder = image_dir(target, cache)
    base_lock = base_lock or read_lock(lock_path(folder))
    trees = load_snapshot(folder / SNAPSHOT, tree_locations(target)) if base_lock is not None else None
    extra = [read_tree(location, origin, cache, log) for origin, location, _ in target.extra_trees]
    if trees is None:
        if extra and buildrequires:
            return _extra_only(target, base_image, buildrequires, extra, engine, log, cache)
        return Layer(base_image, base_lock)
    trees = trees + extra
    extra_origins = {origin for origin, _, _ in target.extra_trees}
    by_nevra = {p.nevra: p for tree in trees for p in tree}
    installed = [by_nevra[p.nevra] for p in base_lock.packages if p.nevra in by_nevra]
    wants = buildroot_wants(buildrequires, floors)
    try:
        solution = plan_root(target, trees, log, wants, installed=installed)
    except Unsolvable as exc:
        if "nothing provides requested" in exc.message and buildrequires:
            exc.message += ("; if another SRPM makes it, build them together and in order: rebuild build --chain"
                            " THIS.src.rpm OTHER.src.rpm ... (or --with-rpms a folder of its results)")
        if floors and len(trees) == 1:
            exc.message += ("; the image was made without an updates tree, and floors above a release's own"
                            f" versions need one: `rebuild image {target.name} --mirror ... --updates ...`")
        raise
    if not solution.new:
        return Layer(base_image, base_lock)
    tag, record = _layer_name(target, folder, _layer_key(base_image, solution.new, extra_origins))
    cached = _cached_layer(engine, tag, record)
    if cached:
        log.info(f"    build root layer {tag} (+{len(solution.new)} packages) is cached")
        return Layer(*cached, tuple(p.nevra for p in solution.new))
    packages_file = folder / "packages.json"
    seen = read_known(packages_file)
    paths, locked = fetch_packages(list(solution.new), cache, log, seen, packages_file)
    atomic_write(packages_file, json.dumps(seen, indent=2, sort_keys=True) + "\n")
    with log.step(f"install {len(paths)} packages into a layer with the image's own rpm"):
        image_id = _install(target, engine, base_image, paths, tag, log)
    new_nevras = {p.nevra for p in solution.new}
    trees_used = {**base_lock.trees, **{origin: location for origin, location, _ in target.extra_trees}}
    lock = make_lock(target, trees_used, [Want(k, t) for k, t in base_lock.wants] + wants,
                     [p for p in base_lock.packages if p.nevra not in _replaced(base_lock, solution)] + locked)
    _keep_record(record, image_id, tag, lock)
    return Layer(image_id, lock, tuple(sorted(new_nevras)))


def tree_locations(target: Target) -> tuple[str, ...]:
    """Where the target's trees are, as its definition gives them (credentials, if any, held in memory only)."""
    return tuple(loc for loc in (target.image.mirror, target.image.updates) if loc)


def _layer_key(base_image: str, new, extra_origins: set[str]) -> str:
    """A layer is named by its base and what it adds; a package of an extra tree (a chain's, rebuilt under
    the same NEVRA) by its digest too."""
    names = sorted(p.nevra + (f"@{p.sha256}" if p.origin in extra_origins else "") for p in new)
    return hashlib.sha256("\n".join([base_image, *names]).encode()).hexdigest()


def _extra_only(target: Target, base_image: str, buildrequires: list[str], extra: list[list[PackageMeta]],
                engine: Engine, log: Log, cache: Path) -> Layer:
    """On a root without a solved lock: the extra trees' packages that meet *buildrequires*, and those of
    the extra trees they require, installed by the image's rpm as a layer."""
    packages = [p for tree in extra for p in tree if p.arch != "src"]
    chosen: dict[str, PackageMeta] = {}
    queue = [parse_dep(br) for br in buildrequires if not br.startswith(("rpmlib(", "/"))]
    while queue:
        want = queue.pop()
        for p in packages:
            if p.nevra not in chosen and any(satisfies(prov, want) for prov in [(p.name, "=", p.evr), *p.provides]):
                chosen[p.nevra] = p
                queue += [r for r in p.requires if not r[0].startswith(("rpmlib(", "/"))]
    if not chosen:
        return Layer(base_image, None)
    new = sorted(chosen.values(), key=lambda p: p.nevra)
    tag, record = _layer_name(target, image_dir(target, cache), _layer_key(base_image, new, {p.origin for p in new}))
    added = tuple(p.nevra for p in new)
    cached = _cached_layer(engine, tag, record)
    if cached:
        log.info(f"    build root layer {tag} (+{len(new)} packages of the chain) is cached")
        return Layer(*cached, added, partial=True)
    paths, locked = fetch_packages(new, cache, log, {})
    with log.step(f"install {len(paths)} packages of the chain into a layer with the image's own rpm"):
        image_id = _install(target, engine, base_image, paths, tag, log, check=not target.nodeps)
    lock = make_lock(target, {origin: location for origin, location, _ in target.extra_trees},
                     [Want("buildrequires", br) for br in buildrequires], locked)
    _keep_record(record, image_id, tag, lock)
    return Layer(image_id, lock, added, partial=True)


def _layer_name(target: Target, folder: Path, key: str) -> tuple[str, Path]:
    """The layer's engine tag and the record beside the target's pin that says what it holds."""
    repository = target.tag.rpartition(":")[0] or target.tag
    return f"{repository}-layer:{key[:16]}", folder / "layers" / f"{key}.json"


def _cached_layer(engine: Engine, tag: str, record: Path) -> tuple[str, RootLock] | None:
    """(image ID, lock) of a layer made before and still in the engine under its tag."""
    known = _read_record(record)
    if known and engine.image_id(tag) == known["image_id"]:
        return known["image_id"], RootLock.from_json(known["lock"], str(record))
    return None


def _keep_record(record: Path, image_id: str, tag: str, lock: RootLock) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(record, json.dumps({"image_id": image_id, "tag": tag, "lock": lock.to_json()}) + "\n")


def _replaced(base_lock: RootLock, solution) -> set[str]:
    kept = {p.nevra for p in solution.install}
    return {p.nevra for p in base_lock.packages if p.nevra not in kept}


def _read_record(path: Path) -> dict | None:
    try:
        data = read_json(path, "layer record", max_bytes=MAX_LOCK)
        return data if isinstance(data.get("image_id"), str) and isinstance(data.get("lock"), str) else None
    except (UsageError, AttributeError):
        return None


def _install(target: Target, engine: Engine, base_image: str, paths: list[Path], tag: str, log: Log,
             check: bool = True) -> str:
    work = Path(tempfile.mkdtemp(prefix="rebuild-layer-"))
    try:
        for path in paths:
            shutil.copyfile(path, work / path.name)
        with engine.container(base_image, mounts=[Mount(work, "/pkgs", read_only=True)]) as box:
            out: list[bytes] = []
            nodeps = [] if check else ["--nodeps"]
            code = box.run(target.wrap(["rpm", "-Uvh", *nodeps, *[f"/pkgs/{p.name}" for p in paths]]), user="0:0",
                           output=out.append)
            if code != 0:
                text = b"".join(out).decode(errors="replace").strip()
                raise EnvironmentProblem(f"the image's rpm could not install the build's packages (exit {code}):"
                                         f" {' '.join(text.split())[-400:]}")
            problems = unmet_dependencies(target, box) if check else []
            if problems:
                raise EnvironmentProblem(f"after installing the build's packages the image's own rpm finds unmet"
                                         f" dependencies: {'; '.join(problems[:5])}")
            return box.commit(tag)
    finally:
        shutil.rmtree(work, ignore_errors=True)

