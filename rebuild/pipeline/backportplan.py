"""``rebuild plan --backport``: what must be rebuilt first for an SRPM to build on a target.

The SRPM's BuildRequires are solved one at a time against the target's own trees (libsolv, with the
image's packages installed, as a build's layer is solved); each one the trees cannot meet is looked for
among the SRPMs of a newer release (a folder of SRPMs), by what their specs make as the target's rpm
reads them (``chain.read_members``). A chosen SRPM's own BuildRequires are treated the same way, until
nothing new is needed. The chosen SRPMs and the first one order into waves as ``build --chain`` builds
them; what no SRPM provides stays unresolved.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from rebuild.config.newrecipe import implied_recipe, source_ref
from rebuild.config.recipe import Recipe
from rebuild.config.target import Target
from rebuild.errors import UsageError
from rebuild.log import Log
from rebuild.pipeline.chain import Member, read_members, waves
from rebuild.roots.buildroot import SNAPSHOT, load_snapshot, plan_root
from rebuild.roots.lock import lock_path, read_lock
from rebuild.roots.pins import image_dir
from rebuild.roots.solver import Unsolvable, Want, parse_dep, satisfies
from rebuild.settings import Settings
from rebuild.systems.engine import Engine
from rebuild.systems.evr import EVR, parse


@dataclass(frozen=True)
class Unmet:
    capability: str       # the BuildRequires the target's trees cannot meet
    needed_by: str        # the member whose BuildRequires it is
    provided_by: str | None  # the SRPM (file name) that makes it, or None: unresolved


@dataclass(frozen=True)
class BackportPlan:
    unmet: tuple[Unmet, ...]
    waves: tuple[tuple[Path, ...], ...]   # SRPM paths, wave by wave

    @property
    def unresolved(self) -> list[Unmet]:
        return [u for u in self.unmet if u.provided_by is None]

    def record(self) -> dict:
        return {"unmet": [u.__dict__ for u in self.unmet],
                "unresolved": [u.capability for u in self.unresolved],
                "waves": [[str(p) for p in wave] for wave in self.waves]}

    def text(self, target: str) -> str:
        lines = []
        for u in self.unmet:
            lines.append(f"{u.needed_by} needs {u.capability}: {target}'s trees cannot meet it; "
                         + (f"{u.provided_by} makes it" if u.provided_by else "UNRESOLVED: no SRPM given makes it"))
        if not self.unmet:
            lines.append(f"every BuildRequires is met by {target}'s trees: nothing to rebuild first")
        for number, wave in enumerate(self.waves, 1):
            lines.append(f"wave {number}: {' '.join(p.name for p in wave)}")
        if len(self.waves) > 1 or self.unmet:
            lines.append("build them: rebuild build --chain " + " ".join(str(p) for w in self.waves for p in w)
                         + f" --target {target}")
        return "\n".join(lines)


def target_trees(target: Target, cache: Path):
    """(trees, installed packages) of the target's solved root; UsageError for a target without one."""
    folder = image_dir(target, cache)
    lock = read_lock(lock_path(folder))
    trees = load_snapshot(folder / SNAPSHOT) if lock is not None else None
    if trees is None:
        raise UsageError(f"target {target.name}: its image was not solved from an RPM tree (or not made yet), so"
                         f" what its trees offer is unknown; plan --backport needs a tree target: rebuild image"
                         f" {target.name} --mirror ...")
    by_nevra = {p.nevra: p for tree in trees for p in tree}
    return trees, [by_nevra[p.nevra] for p in lock.packages if p.nevra in by_nevra]


def unmet(target: Target, trees, installed, buildrequires: tuple[str, ...], log: Log) -> list[str]:
    """The BuildRequires the target's trees cannot meet, each solved alone (libsolv)."""
    quiet = Log(quiet=True)
    missing = []
    for br in buildrequires:
        if br.startswith("rpmlib("):
            continue
        try:
            plan_root(target, trees, quiet, [Want("buildrequires", br)], installed=installed)
        except Unsolvable:
            missing.append(br)
    return missing


def plan_backport(srpm: str, sources: Path, target: Target, engine: Engine, log: Log,
                  settings: Settings) -> BackportPlan:
    """The SRPMs of *sources* that must be rebuilt before *srpm* builds on *target*, as waves."""
    if not sources.is_dir():
        raise UsageError(f"--from {sources}: not a folder of SRPMs")
    candidates = sorted(p for p in sources.glob("*.src.rpm") if p.is_file())
    if not candidates:
        raise UsageError(f"--from {sources}: holds no *.src.rpm")
    trees, installed = target_trees(target, settings.cache)
    with tempfile.TemporaryDirectory(prefix="rebuild-backport-") as scratch:
        first, _ = implied_recipe(srpm, target.name, (), None, None, Path(scratch) / "first")
        given = source_ref(srpm).local
        recipes = [implied_recipe(str(p), target.name, (), None, None, Path(scratch) / "sources")[0]
                   for p in candidates if given is None or p.resolve() != given.resolve()]
        named: dict[str, int] = {}
        for index, recipe in enumerate(recipes):  # two SRPMs of one name (less-332-8cl, -9cl) stay apart
            named[recipe.name] = named.get(recipe.name, 0) + 1
            if named[recipe.name] > 1:
                recipes[index] = _renamed(recipe, f"{recipe.name}-{named[recipe.name]}")
        members = read_members([(r, target) for r in [first, *recipes]], engine, log, settings)
    root, pool = members[0], members[1:]
    chosen: list[Member] = [root]
    found: list[Unmet] = []
    queue = [root]
    while queue:
        member = queue.pop(0)
        for br in unmet(target, trees, installed, member.buildrequires, log):
            want = parse_dep(br)
            if any(satisfies(p, want) for m in chosen if m is not member for p in m.provides):
                provider = next(m for m in chosen if m is not member and any(satisfies(p, want) for p in m.provides))
                found.append(Unmet(br, member.name, provider.srpm.name))
                continue
            offers = [m for m in pool if any(satisfies(p, want) for p in m.provides)]
            if not offers:
                found.append(Unmet(br, member.name, None))
                continue
            best = max(offers, key=lambda m: _newest(m, want).key)  # the newest SRPM that makes it
            found.append(Unmet(br, member.name, best.srpm.name))
            chosen.append(best)
            pool.remove(best)
            queue.append(best)
    order, _ = waves(chosen)
    return BackportPlan(tuple(found), tuple(tuple(m.srpm for m in wave) for wave in order))


def _newest(member: Member, want) -> EVR:
    evrs = [p[2] for p in member.provides if p[0] == want[0] and p[2]]
    return max((parse(e) for e in evrs), default=parse("0"), key=lambda e: e.key)


def _renamed(recipe: Recipe, name: str) -> Recipe:
    return replace(recipe, name=name)
