"""Build roots solved with libsolv: what must be installed for what is asked, and why each package is there.

A pool with RPM semantics is built from the trees' headers (libsolv's PyPI wheel has no
``add_rpm``): each package becomes a solvable with its provides (and its own ``name = evr``),
requires, conflicts and obsoletes. A file dependency (``/bin/sh``) resolves through the files of
the packages that hold it: only files some package (or a want) requires are added as provides,
as Red Hat's own genhdlist did. ``rpmlib(...)`` requirements are met by the target's rpm:
rpm 4.0.x provides exactly what its ``--showrc`` lists; newer rpms are taken to provide any. (libsolv
itself ignores ``rpmlib()`` requires, so the check is made here.)

What is asked (a ``Want``) is a package name or capability from the base list, a BuildRequires
of the edited spec, or a floor ``name >= evr`` (the package of that name, at that version or
newer: the solver picks an update that meets it). Packages already in the image are the
installed set: they stay unless a floor needs a newer one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rebuild.errors import UsageError
from rebuild.roots.treeindex import PackageMeta
from rebuild.systems.evr import compare

# rpm 4.0.4's own list (rpm --showrc, "Features supported by rpmlib")
RPMLIB_404 = {
    "rpmlib(VersionedDependencies)": "3.0.3-1",
    "rpmlib(CompressedFileNames)": "3.0.4-1",
    "rpmlib(PayloadIsBzip2)": "3.0.5-1",
    "rpmlib(PayloadFilesHavePrefix)": "4.0-1",
    "rpmlib(ExplicitPackageProvide)": "4.0-1",
    "rpmlib(HeaderLoadSortsTags)": "4.0.1-1",
    "rpmlib(ScriptletInterpreterArgs)": "4.0.3-1",
    "rpmlib(PartialHardlinkSets)": "4.0.4-1",
}
_OPS = {"<": 4, ">": 1, "=": 2, "<=": 6, ">=": 3}  # libsolv's REL_LT 4, REL_GT 1, REL_EQ 2
_WANT = re.compile(r"^\s*(\S+)\s*(?:(<=|>=|=|<|>)\s*(\S+))?\s*$")


class Unsolvable(UsageError):
    """What is asked cannot be installed from these trees (exit 2): libsolv's explanation follows."""


@dataclass(frozen=True)
class Want:
    kind: str  # "base", "buildrequires", "floor", "asked"
    text: str  # "gcc", "db3-devel >= 3.3", "openssl-devel >= 0.9.6b-32.7"

    def parts(self) -> tuple[str, str, str]:
        m = _WANT.match(self.text)
        if not m:
            raise UsageError(f"{self.kind} {self.text!r} is not NAME or NAME OP VERSION")
        return m.group(1), m.group(2) or "", m.group(3) or ""


@dataclass(frozen=True)
class Solution:
    install: tuple[PackageMeta, ...]      # what the root holds, by name
    new: tuple[PackageMeta, ...]          # what is not in the installed set yet (installs and upgrades)
    why: dict                             # nevra -> (requirer nevra or None, capability or want)

    def explain(self, name: str) -> list[str]:
        """Why *name* is in the root: the chain of requirements up to what was asked."""
        by_name = {p.name: p for p in self.install}
        if name not in by_name:
            raise UsageError(f"{name} is not in the solved root")
        lines, seen, nevra = [], set(), by_name[name].nevra
        while nevra and nevra not in seen:
            seen.add(nevra)
            requirer, reason = self.why.get(nevra, (None, "in the image already, needed by nothing asked"))
            lines.append(f"{nevra}: " + (f"required by {requirer} (it requires {reason})" if requirer else reason))
            nevra = requirer
        return lines


def parse_dep(text: str) -> tuple[str, str, str]:
    m = _WANT.match(text)
    if not m:
        raise UsageError(f"{text!r} is not NAME or NAME OP VERSION")
    return m.group(1), m.group(2) or "", m.group(3) or ""


def satisfies(provide: tuple[str, str, str], want: tuple[str, str, str]) -> bool:
    """Whether *provide* (name, op, evr) meets *want*, as rpm matches a requirement to a provide: an
    unversioned side matches any version; a release is compared only where both sides give one."""
    name, op, evr = provide
    want_name, want_op, want_evr = want
    if name != want_name:
        return False
    if not want_op or not evr or op != "=":  # a ranged provide: taken to meet what it overlaps (rare in SRPMs)
        return True
    have = evr if "-" in want_evr else evr.rsplit("-", 1)[0]
    result = compare(have, want_evr)
    return {"=": result == 0, ">=": result >= 0, "<=": result <= 0, ">": result > 0, "<": result < 0}[want_op]


def _rpmlib_for(rpm_version: str | None) -> dict[str, str] | None:
    """The rpmlib() features of an rpm of this version; None for 'any' (rpm 4.1 and later)."""
    if rpm_version and re.match(r"^4\.0(\.|$)|^3\.", rpm_version):
        return {k: v for k, v in RPMLIB_404.items() if compare(v.split("-")[0], rpm_version) <= 0}
    return None


def solve(trees: list[list[PackageMeta]], arch: str, wants: list[Want], *,
          installed: list[PackageMeta] = (), rpm_version: str | None = None) -> Solution:
    """The packages to install for *wants*; Unsolvable with libsolv's reasons when there are none.

    Without *rpm_version* the target's rpm is the newest ``rpm`` the solution holds."""
    solution = _solve(trees, arch, wants, installed, _rpmlib_for(rpm_version) if rpm_version else None)
    if rpm_version is None:
        chosen = next((p for p in solution.install if p.name == "rpm"), None)
        features = _rpmlib_for(chosen.version) if chosen else None
        if features is not None:
            solution = _solve(trees, arch, wants, installed, features)
    return solution


def _dep(pool, name: str, op: str, evr: str):
    dep = pool.Dep(name)
    return dep.Rel(_OPS[op], pool.Dep(evr)) if op and evr else dep


def _solve(trees, arch, wants, installed, rpmlib: dict[str, str] | None) -> Solution:
    import solv

    pool = solv.Pool()
    pool.setdisttype(solv.Pool.DISTTYPE_RPM)
    pool.setarch(arch)
    file_wants = {w.parts()[0] for w in wants if w.text.startswith("/")}
    needed_files = file_wants | {name for tree in [*trees, installed] for p in tree for name, _, _ in p.requires
                                 if name.startswith("/")}
    metas: dict[int, PackageMeta] = {}
    system = pool.add_repo("@System")
    sysrepo_meta = pool.add_repo("rpmlib")
    features = sysrepo_meta.add_solvable()
    features.name, features.evr, features.arch = "rpmlib-features", "1-1", "noarch"
    seen_rpmlib = {name for tree in [*trees, installed] for p in tree for name, _, _ in p.requires
                   if name.startswith("rpmlib(")}
    for name in sorted(seen_rpmlib):
        if rpmlib is None:
            features.add_deparray(solv.SOLVABLE_PROVIDES, pool.Dep(name))
        elif name in rpmlib:
            features.add_deparray(solv.SOLVABLE_PROVIDES, _dep(pool, name, "=", rpmlib[name]))
    for index, tree in enumerate([installed, *trees]):
        repo = system if index == 0 else pool.add_repo(f"tree{index}")
        for meta in tree:
            s = repo.add_solvable()
            s.name, s.evr, s.arch = meta.name, meta.evr, meta.arch
            s.add_deparray(solv.SOLVABLE_PROVIDES, _dep(pool, meta.name, "=", meta.evr))
            for key, deps in ((solv.SOLVABLE_PROVIDES, meta.provides), (solv.SOLVABLE_REQUIRES, meta.requires),
                              (solv.SOLVABLE_CONFLICTS, meta.conflicts), (solv.SOLVABLE_OBSOLETES, meta.obsoletes)):
                for name, op, evr in deps:
                    if key == solv.SOLVABLE_REQUIRES and name.startswith("rpmlib(") and rpmlib is not None \
                            and name not in rpmlib:
                        # libsolv ignores rpmlib() requires: one the target's rpm lacks becomes a requirement
                        # nothing provides, so the solver avoids the package (or says why it cannot)
                        s.add_deparray(key, pool.Dep(f"{name} (which the target's rpm does not provide)"))
                    else:
                        s.add_deparray(key, _dep(pool, name, op, evr))
            for path in meta.files:
                if path in needed_files:
                    s.add_deparray(solv.SOLVABLE_PROVIDES, pool.Dep(path))
            metas[s.id] = meta
        repo.internalize()
    sysrepo_meta.internalize()
    pool.installed = system
    features_job = pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE, features.id)
    pool.createwhatprovides()
    jobs = [features_job]
    for want in wants:
        name, op, evr = want.parts()
        how = solv.Job.SOLVER_SOLVABLE_NAME if want.kind == "floor" else solv.Job.SOLVER_SOLVABLE_PROVIDES
        jobs.append(pool.Job(solv.Job.SOLVER_INSTALL | how, _dep(pool, name, op, evr).id))
    solver = pool.Solver()
    solver.set_flag(solv.Solver.SOLVER_FLAG_IGNORE_RECOMMENDED, 1)
    problems = solver.solve(jobs)
    if problems:
        reasons = []
        for problem in problems:
            for rule in problem.findallproblemrules():
                text = rule.info().problemstr()
                text = text.replace("rpmlib-features-1-1.noarch", "the target's rpm")
                if text not in reasons:
                    reasons.append(text)
        raise Unsolvable("cannot solve the build root: " + "; ".join(reasons[:6])
                         + (f" (and {len(reasons) - 6} more)" if len(reasons) > 6 else ""))
    transaction = solver.transaction()
    new = [metas[s.id] for s in transaction.newsolvables() if s.id in metas]
    # installed packages in the transaction's steps are the ones it replaces (upgrades, obsoletes)
    replaced = {metas[s.id].nevra for s in transaction.steps() if s.repo == system and s.id in metas}
    install = sorted(new + [p for p in installed if p.nevra not in replaced], key=lambda p: (p.name, p.arch))
    why = _why(pool, solver, metas, install, jobs[1:], wants)
    return Solution(tuple(install), tuple(sorted(new, key=lambda p: p.name)), why)


def _why(pool, solver, metas: dict, install: list[PackageMeta], jobs, wants: list[Want]) -> dict:
    """For each package of the root, the shortest chain of requirements from what was asked:
    nevra -> (requirer nevra or None, capability or "asked for (kind: text)")."""
    from collections import deque

    import solv

    in_root = {id(meta) for meta in install}  # the very objects metas holds: a set, not a scan of a list per package
    chosen = {sid for sid, meta in metas.items() if id(meta) in in_root}
    why: dict = {}
    queue: deque = deque()
    for job, want in zip(jobs, wants, strict=False):
        for s in job.solvables():
            if s.id in chosen and metas[s.id].nevra not in why:
                why[metas[s.id].nevra] = (None, f"asked for ({want.kind}: {want.text})")
                queue.append(s)
    while queue:
        s = queue.popleft()
        for dep in s.lookup_deparray(solv.SOLVABLE_REQUIRES):
            for provider in pool.whatprovides(dep):
                if provider.id in chosen and metas[provider.id].nevra not in why:
                    why[metas[provider.id].nevra] = (metas[s.id].nevra, str(dep))
                    queue.append(provider)
    return why
