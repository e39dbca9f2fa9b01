"""Chain builds: SRPMs whose BuildRequires only other SRPMs of the chain meet, built in waves.

Each member's BuildRequires come from its SRPM's header (with the recipe's ``spec.buildrequires``
applied); what its RPMs will provide is read from its spec by the target's own rpm, in one throwaway
container for the whole chain (``rpmspec -q``, or ``rpm -q --specfile`` on rpm 4.0.x). A member needs
another when one of its BuildRequires is met by the other's provides. The waves are the layers of that
graph: a wave builds in parallel, and its binary RPMs then join a local repository (its own
``SHA256SUMS``) that every later wave's build root is solved from, as a tree of origin ``chain``; the
root's lock, the SBOM and the provenance name the packages that came from it. A cycle is reported with
its members and the edge that closes it; ``--break NAME`` builds NAME first, against the target's own
packages. A failed member stops the members that need it, which are named.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from rebuild.config.recipe import Recipe
from rebuild.config.target import Target
from rebuild.errors import BuildFailed, UsageError
from rebuild.files import atomic_write, sha256_file
from rebuild.log import Log
from rebuild.pipeline.batch import FAILURE_TAIL, BatchItem, NotBuilt, build_many
from rebuild.pipeline.fetch import locate_srpm
from rebuild.pipeline.inputs import BuildRequest
from rebuild.pipeline.result import MANIFEST, ResultDir
from rebuild.roots.pins import check_image
from rebuild.roots.solver import parse_dep, satisfies
from rebuild.settings import Settings
from rebuild.systems.engine import Engine, Mount
from rebuild.systems.rpmfile import read_info, source_buildrequires
from rebuild.systems.store import Cache

ORIGIN = "chain"
#: where a chain's repository lives under the results folder: .chain/<chain id>/
FOLDER = ".chain"


class ChainCycle(UsageError):
    """The chain's members need each other (exit 2): the members, and the edge that closes the circle."""


@dataclass(frozen=True)
class Member:
    """One SRPM of a chain: what its build needs and what its RPMs will provide."""

    recipe: Recipe
    srpm: Path
    buildrequires: tuple[str, ...]
    packages: tuple[str, ...]                      # the binary packages' names
    provides: tuple[tuple[str, str, str], ...]     # (name, op, evr), each package's own "name = evr" included

    @property
    def name(self) -> str:
        return self.recipe.name


@dataclass(frozen=True)
class Edge:
    needer: str
    provider: str
    capability: str  # the needer's BuildRequires the provider meets

    def __str__(self) -> str:
        return f"{self.needer} needs {self.provider} ({self.capability})"


def edges(members: list[Member]) -> list[Edge]:
    """Who needs whom: a member's BuildRequires met by another member's provides (a member never needs
    itself; a file BuildRequires, which provides do not list, makes no edge)."""
    out = []
    for needer in members:
        for text in needer.buildrequires:
            want = parse_dep(text)
            for provider in members:
                if provider is not needer and any(satisfies(p, want) for p in provider.provides):
                    out.append(Edge(needer.name, provider.name, text))
    return out


def waves(members: list[Member], broken: tuple[str, ...] = ()) -> tuple[list[list[Member]], list[Edge]]:
    """The members in build order, a wave at a time, and the edges that decided it. A member in *broken*
    is built first, its own needs within the chain ignored; ChainCycle when members still need each other."""
    names = [m.name for m in members]
    for name in broken:
        if name not in names:
            raise UsageError(f"--break {name}: no member of the chain is named so (members: {', '.join(names)})")
    graph = [e for e in edges(members) if e.needer not in broken]
    needs = {m.name: {e.provider for e in graph if e.needer == m.name} for m in members}
    by_name = {m.name: m for m in members}
    done: set[str] = set()
    out: list[list[Member]] = []
    while len(done) < len(members):
        ready = [name for name in names if name not in done and needs[name] <= done]
        if not ready:
            raise ChainCycle(_cycle_message({n: needs[n] for n in names if n not in done}, graph))
        out.append([by_name[n] for n in ready])
        done.update(ready)
    return out, graph


def _cycle_message(needs: dict[str, set[str]], graph: list[Edge]) -> str:
    """The first circle found by walking needs from the first waiting member: its members in order and
    the edge that closes it."""
    path: list[str] = []
    node = next(iter(needs))
    while node not in path:
        path.append(node)
        node = sorted(needs[node] & set(needs))[0]
    circle = path[path.index(node):] + [node]
    closing = next(e for e in graph if e.needer == circle[-2] and e.provider == circle[-1])
    return (f"the chain has a cycle: {' -> '.join(circle)} (each needs the next); the edge that closes it:"
            f" {closing}; build one of them first against the target's own packages with --break"
            f" {circle[-1]}")


# ---------------------------------------------------------------- reading the members


# per SRPM: rpm -i into its own tree, then the spec's binary packages and their provides as the target's rpm
# reads them (rpmspec -q where there is one; rpm 4.0.x's rpm -q --specfile yields the binary headers)
_QUERY = r"""
qf='rebuild-pkg %{NAME} %{EPOCH} %{VERSION} %{RELEASE}\n[rebuild-prov %{PROVIDENAME} %{PROVIDEFLAGS:depflags} %{PROVIDEVERSION}\n]'
for srpm in /srpm/*.src.rpm; do
  n=$(basename "$srpm" .src.rpm); d="$TREE/$n"
  mkdir -p "$d/SOURCES" "$d/SPECS" "$d/BUILD" "$d/RPMS" "$d/SRPMS"
  if ! rpm -i --define "_topdir $d" "$srpm" >/dev/null 2>&1; then echo "rebuild-member $n install-failed"; continue; fi
  spec=$(ls "$d"/SPECS/*.spec | head -n 1)
  echo "rebuild-member $n"
  if command -v rpmspec >/dev/null 2>&1; then
    rpmspec -q --define "_topdir $d" --qf "$qf" "$spec" 2>/dev/null
  else
    rpm -q --qf "$qf" --define "_topdir $d" --specfile "$spec" 2>/dev/null
  fi
done
"""


def read_members(pairs: list[tuple[Recipe, Target]], engine: Engine, log: Log, settings: Settings) -> list[Member]:
    """Each recipe's SRPM located (fetched, verified) and read: BuildRequires from its header, the packages
    and provides of its spec from the target's rpm. All recipes of a chain build on one target."""
    targets = {t.name for _, t in pairs}
    if len(targets) != 1:
        raise UsageError(f"a chain builds on one target; these recipes name {', '.join(sorted(targets))}"
                         " (give --target)")
    names = [r.name for r, _ in pairs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"two members of the chain are named {twice[0]}: give each recipe its own name")
    target = pairs[0][1]
    srpms = [locate_srpm(r, log, mirrors=settings.mirrors, cache=Cache(settings.cache)) for r, _ in pairs]
    for srpm in srpms:  # not an RPM, or a binary one: stopped here (exit 2), before any container
        if not read_info(srpm).is_source:
            raise UsageError(f"{srpm}: a binary RPM; a chain is built from source RPMs")
    headers = [source_buildrequires(srpm) for srpm in srpms]
    with log.step(f"read what {len(pairs)} SRPMs need and make, with {target.name}'s rpm"):
        image_id = check_image(target, engine, settings.cache, log)
        found = _query(target, engine, image_id, srpms)
    members = []
    for index, ((recipe, _), srpm) in enumerate(zip(pairs, srpms, strict=True)):
        packages = found.get(str(index))
        if packages is None:
            raise BuildFailed(f"{srpm}: {target.name}'s rpm could not install or read this SRPM's spec; build it"
                              " alone to see why")
        if not packages:  # a spec the target's rpm cannot query: its own name is what it is known to make
            log.warn(f"{recipe.name}: {target.name}'s rpm cannot list this spec's packages; the chain takes it to"
                     f" make {recipe.name} only")
        buildrequires = [br for br in headers[index] if parse_dep(br)[0] not in recipe.spec.buildrequires_remove]
        buildrequires += [br for br in recipe.spec.buildrequires_add if br not in buildrequires]
        provides = tuple(p for _, ps in packages for p in ps)
        members.append(Member(recipe, srpm, tuple(buildrequires), tuple(n for n, _ in packages) or (recipe.name,),
                              provides or ((recipe.name, "", ""),)))
    return members


def _query(target: Target, engine: Engine, image_id: str, srpms: list[Path]) -> dict[str, list]:
    """{index: [(package, provides)]} for each SRPM the target's rpm could install (empty when it could
    install but not query the spec)."""
    work = Path(tempfile.mkdtemp(prefix="rebuild-chain-"))
    try:
        if os.geteuid() == 0:
            os.chown(work, target.uid, target.uid)
        mounts = [Mount(work, "/tree")] + [Mount(s, f"/srpm/{i}.src.rpm", read_only=True)
                                           for i, s in enumerate(srpms)]
        with engine.container(image_id, mounts=mounts) as box:
            chunks: list[bytes] = []
            code = box.run(target.wrap(["sh", "-c", _QUERY]), user=f"{target.uid}:{target.uid}",
                           env={"TREE": "/tree", "HOME": "/tree", "LC_ALL": "C"}, output=chunks.append,
                           shown=target.wrap(["sh", "-c", f"(rpm -i and query the spec of each of {len(srpms)} SRPMs)"]))
        if code != 0:
            raise BuildFailed(f"reading the chain's specs with {target.name}'s rpm failed (exit {code})")
        return parse_query(b"".join(chunks).decode(errors="replace"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parse_query(text: str) -> dict[str, list]:
    found: dict[str, list] = {}
    current = None
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "rebuild-member":
            current = None if fields[-1] == "install-failed" else found.setdefault(fields[1], [])
        elif fields[0] == "rebuild-pkg" and current is not None and len(fields) == 5:
            name, epoch, version, release = fields[1:]
            evr = ("" if epoch == "(none)" else f"{epoch}:") + f"{version}-{release}"
            current.append((name, [(name, "=", evr)]))
        elif fields[0] == "rebuild-prov" and current and len(fields) in (2, 4):
            provide = (fields[1], fields[2], fields[3]) if len(fields) == 4 else (fields[1], "", "")
            if provide not in current[-1][1]:
                current[-1][1].append(provide)
    return {k: [(n, tuple(ps)) for n, ps in v] for k, v in found.items()}


# ---------------------------------------------------------------- the chain's repository


def chain_id(members: list[Member]) -> str:
    """The chain named by what it builds: its members' SRPM digests and recipes, in order."""
    blob = "\n".join(f"{m.name} {m.recipe.sha256} {sha256_file(m.srpm)}" for m in members)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def add_to_repository(folder: Path, rpms: list[Path]) -> str:
    """Copy the binary *rpms* into the chain's repository and rewrite its SHA256SUMS; return that file's
    sha256 (the repository's content identity: part of the build key of every build that solves from it)."""
    folder.mkdir(parents=True, exist_ok=True)
    for rpm in rpms:
        dest = folder / rpm.name
        if dest.exists() and sha256_file(dest) != sha256_file(rpm):
            raise BuildFailed(f"{rpm.name}: two members of the chain built a package of that name with different"
                              " contents; rename one (spec.release_suffix)")
        if not dest.exists():
            shutil.copyfile(rpm, dest)
            dest.chmod(0o644)
    sums = "".join(f"{sha256_file(p)}  {p.name}\n" for p in sorted(folder.glob("*.rpm")))
    atomic_write(folder / "SHA256SUMS", sums, mode=0o644)
    return hashlib.sha256(sums.encode()).hexdigest()


def with_repository(target: Target, folder: Path, digest: str) -> Target:
    """*target* whose build roots are also solved from the chain's repository."""
    others = tuple(t for t in target.extra_trees if t[0] != ORIGIN)
    return replace(target, extra_trees=others + ((ORIGIN, str(folder), digest),))


# ---------------------------------------------------------------- building the waves


@dataclass(frozen=True)
class ChainPlan:
    """The members in waves (``waves``), the edges that ordered them, the target they all build on."""

    target: Target
    order: list[list[Member]]
    graph: list[Edge]


def build_chain(plan: ChainPlan, engine: Engine, log: Log, request: BuildRequest) -> list[BatchItem]:
    """Build *plan* a wave at a time (a wave's builds in parallel, through ``build_many``); after each wave
    its binary RPMs join the chain's repository, which the next waves' roots are solved from. A member one of
    whose providers failed is not built (a ``NotBuilt`` item naming it)."""
    target, order, graph = plan.target, plan.order, plan.graph
    repository = Path(request.options.out_dir).resolve() / FOLDER / chain_id([m for wave in order for m in wave])
    shutil.rmtree(repository, ignore_errors=True)  # the repository holds exactly what this run's waves built
    current = target
    items: list[BatchItem] = []
    failed: set[str] = set()
    for number, wave in enumerate(order, 1):
        ready = []
        for member in wave:
            blockers = sorted({e.provider for e in graph if e.needer == member.name and e.provider in failed})
            if blockers:
                failed.add(member.name)
                items.append(BatchItem(member.recipe, None, NotBuilt(
                    f"not built: it needs {', '.join(blockers)}, which did not build"), 0.0))
            else:
                ready.append(member)
        if not ready:
            continue
        log.info(f"wave {number} of {len(order)}: {', '.join(m.name for m in ready)}")
        built = build_many([(m.recipe, current) for m in ready], engine, log, request)
        rpms = []
        for item in built:
            items.append(item)
            if item.result is None:
                failed.add(item.recipe.name)
                if len(ready) == 1:  # build_many says why only when several build at once
                    log.warn(f"[{item.recipe.name}] failed: {item.error.message}" + "".join(
                        f"\n    {line}" for line in (item.error.detail or "").splitlines()[-FAILURE_TAIL:]))
            else:
                rpms += [item.result.directory / o.file for o in item.result.outputs if not o.source]
        if number < len(order):
            current = with_repository(target, repository, add_to_repository(repository, rpms))
    return items


def results_repository(folders: list[Path], out_dir: Path) -> tuple[Path, str]:
    """The binary RPMs of every intact result under *folders* (a result folder, or a folder of them, as a CI
    job receives an earlier wave's artifacts), each checked against its manifest, as a chain repository under
    *out_dir*; (folder, digest of its SHA256SUMS)."""
    rpms: list[Path] = []
    named: list[str] = []  # each RPM by the sha256 its verified manifest records
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise UsageError(f"--with-rpms {folder}: no such folder")
        found = [folder] if (folder / MANIFEST).is_file() else sorted(
            p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file())
        if not found:
            raise UsageError(f"--with-rpms {folder}: holds no result folder (a folder with manifest.json)")
        for result in found:
            manifest = ResultDir(result).verify()
            rpms += [result / o.file for o in manifest.outputs if not o.source]
            named += [f"{o.sha256} {Path(o.file).name}" for o in manifest.outputs if not o.source]
    digest = hashlib.sha256("\n".join(sorted(named)).encode()).hexdigest()
    repository = Path(out_dir).resolve() / FOLDER / f"with-{digest[:16]}"
    shutil.rmtree(repository, ignore_errors=True)
    return repository, add_to_repository(repository, rpms)
