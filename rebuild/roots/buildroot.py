"""What goes into a root made from an RPM tree: the trees read, what is asked, the solution, and the
packages fetched (verified) and locked.

What is asked of a target's base image is ``containers/<target>/packages.txt``: only the top-level
names (the minimal system, the tool chain, rpm-build); the solver adds their closure. A build adds
its edited spec's BuildRequires and its floors (``roots.layers``). The trees a root was solved from
are kept as a snapshot beside its pin (``tree.json``) so builds can solve against the same trees
without reading them again.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

from rebuild.config.target import Target
from rebuild.errors import CheckFailed, ConfigError, UsageError
from rebuild.files import atomic_write, read_json, read_user_file, sha256_file
from rebuild.log import Log
from rebuild.roots.lock import LockedPackage, RootLock, locked_package
from rebuild.roots.solver import Solution, Want, solve
from rebuild.roots.treeindex import IndexStats, PackageMeta, read_tree
from rebuild.systems.store import Cache, fetch_urls
from rebuild.systems.urls import local_path, redact, with_credentials

FETCH_PARALLEL = 4
SNAPSHOT = "tree.json"  # beside the pin: the trees the root was solved from
MAX_SNAPSHOT = 1 << 30  # a snapshot of every tree of a release, with its files kept, is well under this
# the files a snapshot keeps of each package: those some package requires, and the usual targets of
# file BuildRequires (what rpm-md's primary.xml keeps)
_PRIMARY_FILE = re.compile(r"^(/etc/|.*/bin/|/usr/lib/sendmail$)")


def read_package_list(path: Path) -> list[str]:
    """Package names, one per line; blank lines and # comments ignored."""

    try:
        lines = read_user_file(path, "package list").decode("utf-8").splitlines()
    except (UsageError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the package list: {getattr(exc, 'message', exc)}") from None
    names = []
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not re.fullmatch(r"[A-Za-z0-9/][A-Za-z0-9._+/()-]*", line):
            raise ConfigError(f"{path}:{number}: {line!r} is not a package name or capability")
        names.append(line)
    return names


def base_wants(target: Target) -> list[Want]:
    if target.image.packages is None or not target.image.packages.is_file():
        raise UsageError(f"target {target.name}: image.packages must name the package list file")
    return [Want("base", name) for name in read_package_list(target.image.packages)]


def read_trees(mirror: str, updates: str | None, cache: Path, log: Log,
               stats: IndexStats | None = None) -> list[list[PackageMeta]]:
    where = redact(mirror) + (f" and {redact(updates)}" if updates else "")
    with log.step(f"read the package headers of {where}"):
        trees = [read_tree(mirror, "os", cache, log, stats)]
        if updates:
            trees.append(read_tree(updates, "updates", cache, log, stats))
        log.info(f"    {sum(len(t) for t in trees)} packages")
    return trees


def plan_root(target: Target, trees: list[list[PackageMeta]], log: Log, extra: list[Want] = (),
              installed: list[PackageMeta] = ()) -> Solution:
    wants = base_wants(target) + list(extra)
    with log.step(f"solve the {target.name} root for {len(wants)} wants"):
        solution = solve(trees, target.arch, wants, installed=list(installed))
        log.info(f"    {len(solution.install)} packages"
                 + (f", {len(solution.new)} new" if installed else ""))
    return solution


# ---------------------------------------------------------------- the snapshot of the trees


def save_snapshot(path: Path, trees: list[list[PackageMeta]], locations: dict[str, str]) -> None:
    needed = {name for tree in trees for p in tree for name, _, _ in p.requires if name.startswith("/")}
    data = {"trees": {k: redact(v) for k, v in locations.items()},
            "packages": [[{**asdict(_trim(p, needed)), "url": redact(p.url)} for p in tree] for tree in trees]}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data))


def _trim(meta: PackageMeta, needed: set[str]) -> PackageMeta:
    return replace(meta, files=tuple(f for f in meta.files if f in needed or _PRIMARY_FILE.match(f)))


def load_snapshot(path: Path, locations: tuple[str, ...] = ()) -> list[list[PackageMeta]] | None:
    """The trees kept beside the pin; a package URL stored redacted is fetched through the one of *locations*
    (the trees as given now, credentials in memory) it came from, else with ~/.netrc's credentials."""
    try:
        data = json.loads(read_user_file(path, "tree snapshot", max_bytes=MAX_SNAPSHOT))
        return [[replace(m, url=with_credentials(m.url, locations)) for m in map(PackageMeta.from_dict, tree)]
                for tree in data["packages"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError, UsageError):
        return None


# ---------------------------------------------------------------- fetching and locking


def fetch_packages(packages: list[PackageMeta] | list[LockedPackage], cache: Path, log: Log,
                   known: dict[str, str], known_file: Path | None = None) -> tuple[list[Path], list[LockedPackage]]:
    """Each package through the verified cache, several at once: its own digests checked, its header the
    NEVRA solved, its sha256 taken from the tree's SHA256SUMS, the lock, or recorded at first download
    (*known*, kept in *known_file*) and required after.

    A package of a local tree (a folder, file://) whose bytes differ from its first-use pin is followed (a
    fixed package rebuilt with the same NEVRA) and said; a remote one is refused, naming both digests and
    how to accept the new one."""

    store = Cache(cache)
    progress = log.progress(f"fetch {len(packages)} packages", len(packages), unit="packages")

    def one(pkg):
        pinned = pkg.sha256 or known.get(pkg.filename)
        local = local_path(pkg.url)
        if pinned and not pkg.sha256 and local is not None and local.is_file():
            now = sha256_file(local)
            if now != pinned:
                log.warn(f"    {pkg.filename} changed in the local tree since it was first used (was {pinned[:12]},"
                         f" now {now[:12]}): following the tree")
                pinned = now
        try:
            fetched = fetch_urls([pkg.url], filename=pkg.filename, sha256=pinned, expected_nevra=pkg.nevra,
                                 allow_unpinned=True, source=False, cache=store, log=log)
        except CheckFailed as exc:
            if pinned and not pkg.sha256 and "sha256 mismatch" in exc.message:
                where = known_file or "packages.json beside the target's pin"
                raise CheckFailed(f"{exc.message}; {pkg.filename} was pinned at first use in {where}: if the tree's"
                                  " new copy is wanted, delete its entry there and run again") from None
            raise
        progress.advance(1)
        return fetched

    try:
        with log.step(f"fetch {len(packages)} packages ({FETCH_PARALLEL} at a time)"):
            with ThreadPoolExecutor(max_workers=FETCH_PARALLEL) as pool:
                results = list(pool.map(one, packages))
    finally:
        progress.close()
    locked = []
    for pkg, fetched in zip(packages, results, strict=False):
        known[pkg.filename] = fetched.sha256
        locked.append(pkg if isinstance(pkg, LockedPackage) else locked_package(pkg, fetched.sha256, fetched.size))
    return [f.path for f in results], locked


def read_known(path: Path) -> dict[str, str]:
    """The first-use pins kept beside a target's pin (file name -> sha256); a damaged file is refused, not
    forgotten (forgetting would trust whatever the tree serves next)."""
    data = read_json(path, "list of first-use pins", max_bytes=MAX_SNAPSHOT, missing_ok=True)
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) and re.fullmatch(
            r"[0-9a-f]{64}", v) for k, v in data.items()):
        raise UsageError(f"{path}: not a list of first-use pins (file name: sha256); restore it, or delete it to"
                         " pin every package again at its next download")
    return data


def make_lock(target: Target, locations: dict[str, str], wants: list[Want], packages: list[LockedPackage]) -> RootLock:
    return RootLock(target=target.name, arch=target.arch, trees={k: redact(v) for k, v in locations.items()},
                    wants=tuple((w.kind, w.text) for w in wants),
                    packages=tuple(sorted(packages, key=lambda p: (p.name, p.arch))))
