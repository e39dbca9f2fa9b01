"""Images made from an RPM tree (the ``rpmtree`` method): RH 7.3's own packages, or any tree.

1. solve the root: ``packages.txt`` (top-level names) and its whole closure, from the trees'
   headers (``buildroot``, ``solver``), or take it from a lock (``--locked``); 2. fetch each
   package through the verified cache, several at once (its own digests checked; sha256 from
   the tree, the lock, or recorded at first download and required afterwards); 3. lay the
   payloads out as rpm would (``unpack``), add the build user and, for 32-bit targets without one, a
   static ``linux32`` helper; 4. stream that root into ``docker import`` as one tar (no root folder on
   this host: no root needed); 5. register the packages in an rpmdb written by
   the image's OWN rpm (``--justdb``, with ``rebuild-rpmdb-indexes`` so every index exists and
   holds an entry, then ``--rebuilddb``), so rpm 4.0.4 can read it; 6. have that rpm check every dependency (``rpm -Va --nofiles``); 7. lock and pin.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from rebuild import hostcmd
from rebuild.config.target import Target
from rebuild.errors import EnvironmentProblem, UsageError
from rebuild.files import work_folder
from rebuild.log import Log
from rebuild.roots.buildroot import (
    SNAPSHOT,
    base_wants,
    fetch_packages,
    make_lock,
    plan_root,
    read_known,
    read_trees,
    save_snapshot,
)
from rebuild.roots.lock import LOCK_IN_IMAGE, LockedPackage, RootLock, lock_path, read_lock, write_lock
from rebuild.roots.pins import Pin, image_dir, pin_image, read_pin, write_json
from rebuild.roots.solver import Want
from rebuild.roots.unpack import RootTree
from rebuild.settings import Settings
from rebuild.systems.engine import Engine, Mount
from rebuild.systems.urls import local_path, redact

HELPER_PATH = "usr/bin/linux32"
# A personality wrapper for roots that have no setarch/linux32 (RH 7.3 has neither):
# static, so it runs whatever the root's libc is.
_LINUX32_C = r"""
#include <stdio.h>
#include <sys/personality.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: linux32 COMMAND [ARG...]\n"); return 2; }
    if (personality(PER_LINUX32) == -1) { perror("linux32: personality(PER_LINUX32)"); return 126; }
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    return 127;
}
"""


def _helper(log: Log) -> bytes:
    """The static linux32 helper, compiled with the host's C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise EnvironmentProblem("a C compiler is needed once to make the static linux32 helper: apt-get install gcc")
    with tempfile.TemporaryDirectory() as tmp:
        source, binary = Path(tmp) / "linux32.c", Path(tmp) / "linux32"
        source.write_text(_LINUX32_C)
        hostcmd.run([cc, "-static", "-Os", "-o", str(binary), str(source)], "compiling the linux32 helper", log)
        return binary.read_bytes()


# folders every root must have as real folders (never symlinks): the build user is added through them
REAL_FOLDERS = ("etc", "tmp", "var/tmp", "home")


def _add_user(tree: RootTree, target: Target) -> None:
    """The build user and group in etc/passwd and etc/group, its home, and sticky tmp folders; nothing is
    written through a symlink a package may have planted."""
    for folder in REAL_FOLDERS:
        tree.ensure_real_dir(PurePosixPath(folder))
    for tmp in ("tmp", "var/tmp"):
        tree.ensure_real_dir(PurePosixPath(tmp), 0o1777)
    passwd, group = PurePosixPath("etc/passwd"), PurePosixPath("etc/group")
    users = (tree.read_file(passwd) or b"root:x:0:0:root:/root:/bin/sh\n").decode("utf-8", "replace")
    if not any(line.split(":")[0] == target.user for line in users.splitlines()):
        users = users.rstrip("\n") + f"\n{target.user}:x:{target.uid}:{target.uid}::/home/{target.user}:/bin/sh\n"
    tree.write_file(passwd, users.encode(), 0o644, what="adding the build user")
    groups = (tree.read_file(group) or b"root:x:0:\n").decode("utf-8", "replace")
    if not any(line.split(":")[0] == target.user for line in groups.splitlines()):
        groups = groups.rstrip("\n") + f"\n{target.user}:x:{target.uid}:\n"
    tree.write_file(group, groups.encode(), 0o644, what="adding the build group")
    home = PurePosixPath("home") / target.user
    tree.ensure_real_dir(home, 0o755)
    tree.chown(home, target.uid, target.uid)


def _has_rpm(tree: RootTree) -> str | None:
    for candidate in ("bin/rpm", "usr/bin/rpm"):
        if tree.exists(candidate):
            return "/" + candidate
    return None


def make_tree_image(target: Target, engine: Engine, log: Log, *, mirror: str | None, updates: str | None,
                    force: bool = False, cache: Path | None = None, locked: Path | None = None) -> Pin:
    """Solve the root from the trees (or take it from the lock *locked*), fetch and verify its packages,
    and make, register, check and pin the image."""
    cache = cache or Settings.from_env().cache
    folder = image_dir(target, cache)
    locations = {"os": mirror or "", **({"updates": updates} if updates else {})}
    if locked is not None:
        lock = read_lock(locked)
        if lock is None:
            raise UsageError(f"--locked {locked}: no such lock file; make the image once without --locked")
        wants = [Want(k, t) for k, t in lock.wants]
        chosen: list = [_rebased(p, lock, locations) for p in lock.packages]
        log.info(f"root from the lock {locked}: {len(chosen)} packages, no solving")
    else:
        if not mirror:
            raise UsageError(f"target {target.name}: give --mirror URL_OR_DIR (or --locked LOCK)")
        try:
            trees = read_trees(mirror, updates, cache, log)
        except EnvironmentProblem as exc:
            raise EnvironmentProblem(f"{exc.message}; where that tree cannot be reached, give a local copy:"
                                     f" rebuild image {target.name} --mirror DIR [--updates DIR]"
                                     " (make rpms MIRROR=DIR UPDATES=DIR)") from None
        wants = base_wants(target)
        solution = plan_root(target, trees, log)
        chosen = list(solution.install)
        save_snapshot(folder / SNAPSHOT, trees, locations)
    known_file = folder / "packages.json"
    known = read_known(known_file)
    paths, locked_packages = fetch_packages(chosen, cache, log, known, known_file)
    write_json(known_file, known)
    lock = make_lock(target, locations, wants, locked_packages)
    made_from = hashlib.sha256((target.image_key + lock.sha256).encode()).hexdigest()
    pin = read_pin(target, cache)
    if not force and pin and pin.made_from == made_from and engine.image_id(target.tag) == pin.image_id:
        write_lock(lock_path(folder), lock)
        log.info(f"image {target.tag} is up to date ({pin.image_id[:19]})")
        return pin if pin.content_id else pin_image(target, engine, pin.image_id, made_from, cache, pin.registry)[0]
    for stale in ("rootfs.tar", "rootfs.json"):  # the root tarball earlier versions kept here (now streamed)
        (folder / stale).unlink(missing_ok=True)
    tree = _root(target, paths, lock, log)
    labels = {
        "org.rebuild.target": target.name,
        "org.rebuild.definition": target.image_key,
        "org.rebuild.mirror": redact(mirror or ""),
        "org.rebuild.updates": redact(updates or ""),
        "org.rebuild.lock": lock.sha256,
        "org.rebuild.packages": hashlib.sha256("".join(f"{p.filename}\n" for p in lock.packages).encode()).hexdigest(),
    }
    with log.step(f"unpack {len(paths)} payloads into {target.tag} (docker import)"):
        progress = log.progress("unpack", len(paths), unit="packages")
        image_id = engine.import_rootfs(tree.chunks(lambda: progress.advance(1)), target.tag, labels)
        progress.close()
    if _has_rpm(tree):
        work = work_folder(folder, ".root")
        try:
            image_id = _register(target, engine, image_id, paths, locked_packages, work, log)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    else:
        log.warn(f"{target.name}: the package set has no rpm; the image has no rpmdb")
    write_lock(lock_path(folder), lock)
    pin, path = pin_image(target, engine, image_id, made_from, cache)
    log.info(f"image {target.tag} is {image_id[:19]} (pinned in {path}; lock {lock_path(folder)})")
    return pin


def _root(target: Target, paths: list[Path], lock: RootLock, log: Log) -> RootTree:
    """The root laid out from the payloads, with the build user, the lock and, for a 32-bit target without
    one, the linux32 helper; every path checked before a byte is written."""
    tree = RootTree()
    for path in paths:
        tree.add(path)
    _add_user(tree, target)
    # the lock travels with the image (rebuild image --pull reads it)
    tree.write_file(LOCK_IN_IMAGE, lock.to_json().encode(), 0o644, what="the root's lock")
    if target.personality == "linux32" and not any(
        tree.exists(p) for p in ("usr/bin/linux32", "bin/linux32", "usr/bin/setarch")
    ):
        tree.write_file(HELPER_PATH, _helper(log), 0o755, what="the linux32 helper")
    return tree


def _rebased(package: LockedPackage, lock: RootLock, locations: dict[str, str]) -> LockedPackage:
    """A locked package fetched from the tree given now (another machine's mirror), else from its URL."""
    from dataclasses import replace

    base = locations.get(package.origin)
    if not base:
        return package

    local = local_path(base)
    if local is not None:
        folder = local / "RedHat" / "RPMS" if (local / "RedHat" / "RPMS").is_dir() else local
        return replace(package, url=(folder / package.filename).as_uri())
    return replace(package, url=base.rstrip("/") + "/RedHat/RPMS/" + package.filename)


def _register(target: Target, engine: Engine, image_id: str, paths: list[Path], packages: list[LockedPackage],
              work: Path, log: Log) -> str:
    """Write the rpmdb with the image's own rpm (--justdb) and every index a build will open, check that
    rpm reads back the whole set and finds every dependency met, and commit the image."""
    pkgs = work / "pkgs"
    pkgs.mkdir()
    for path in paths:
        if path.stat().st_dev == pkgs.stat().st_dev:
            os.link(path, pkgs / path.name)
        else:
            shutil.copyfile(path, pkgs / path.name)
    names = sorted(p.name for p in pkgs.iterdir())
    _index_package(pkgs, work)
    with log.step("register the packages in the image's own rpmdb"):
        with engine.container(image_id, mounts=[Mount(pkgs, "/pkgs", read_only=True)]) as box:
            out: list[bytes] = []
            # rpm 4.0.4 makes an index only when it first writes an entry to it, and a build user later
            # cannot ("cannot open Conflictname index using db3"); and Berkeley DB's check of an empty
            # index at every later install prints "DB_VERIFY_BAD". A package with a conflict and a
            # trigger stays registered, so every index exists and holds an entry; --rebuilddb as root.
            justdb = ["--justdb", "--nodeps", "--noscripts", "--notriggers"]
            steps = [["rpm", "--initdb"],
                     ["rpm", "-i", *justdb, "--ignorearch", *[f"/pkgs/{n}" for n in names],
                      f"/pkgs/{INDEX_PACKAGE}/{INDEX_PACKAGE}-1-1.noarch.rpm"]]
            if _berkeley_db_rpm(target, box):
                steps.append(["rpm", "--rebuilddb"])
            for argv in steps:
                out.clear()
                code = box.run(target.wrap(argv), user="0:0", output=out.append)
                if code != 0:
                    raise EnvironmentProblem(
                        f"{argv[0]} {argv[1]} failed in the new image (exit {code}): "
                        + b"".join(out).decode(errors="replace").strip()[-300:]
                    )
            out.clear()
            # rpm's warnings share the stream: read only the lines the query tags
            code = box.run(target.wrap(["rpm", "-qa", "--qf", "rebuild-pkg %{NAME}-%{VERSION}-%{RELEASE}\\n"]),
                           user="0:0", output=out.append)
            listed = sorted(line.split()[1] for line in b"".join(out).decode(errors="replace").splitlines()
                            if line.startswith("rebuild-pkg ") and len(line.split()) == 2)
            wanted = sorted([f"{p.name}-{p.version}-{p.release}" for p in packages] + [f"{INDEX_PACKAGE}-1-1"])
            if code != 0 or listed != wanted:
                raise EnvironmentProblem(
                    f"the image's rpm cannot read back its rpmdb (rpm -qa exit {code}, {len(listed)} of {len(wanted)}"
                    " packages)"
                )
            problems = unmet_dependencies(target, box)
            if problems:
                raise EnvironmentProblem(f"the image's own rpm finds unmet dependencies: {'; '.join(problems[:5])}"
                                         + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
            return box.commit(target.tag)


def _berkeley_db_rpm(target: Target, box) -> bool:
    """Whether the image's rpm keeps a Berkeley DB rpmdb (before 4.16), whose indexes --rebuilddb completes."""
    import re

    out: list[bytes] = []
    box.run(target.wrap(["rpm", "--version"]), user="0:0", output=out.append)
    m = re.search(rb"RPM version (\d+)\.(\d+)", b"".join(out))
    return m is not None and (int(m.group(1)), int(m.group(2))) < (4, 16)


INDEX_PACKAGE = "rebuild-rpmdb-indexes"
_INDEX_SPEC = f"""\
Name: {INDEX_PACKAGE}
Version: 1
Release: 1
Summary: keeps an entry in every index of the rpmdb
License: MIT
BuildArch: noarch
Conflicts: rebuild-no-such-package
%description
Stays registered (files: none) so that rpm writes, and keeps an entry in, the Conflictname and Triggername
indexes.
%triggerin -- rebuild-no-such-package
true
%files
"""


def _index_package(pkgs: Path, work: Path) -> None:
    """pkgs/rebuild-rpmdb-indexes/...rpm, built the 2003 way (gzip payload, MD5) so any rpm reads it."""
    top = work / "index-package"
    top.mkdir()
    (top / "index.spec").write_text(_INDEX_SPEC)
    hostcmd.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}", "--define", f"_rpmdir {pkgs / INDEX_PACKAGE}",
                 "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
                 "--define", "_binary_payload w9.gzdio", "--define", "_binary_filedigest_algorithm 1",
                 str(top / "index.spec")], "making the rpmdb index package")


def unmet_dependencies(target: Target, box) -> list[str]:
    """What the image's own rpm reports as unmet (``rpm -Va --nofiles``; ``--nodigest`` where rpm knows it)."""
    out: list[bytes] = []
    code = box.run(target.wrap(["rpm", "-Va", "--nofiles", "--nodigest"]), user="0:0", output=out.append)
    text = b"".join(out).decode(errors="replace")
    if code != 0 and ("unknown option" in text or "--nodigest" in text):
        out.clear()
        code = box.run(target.wrap(["rpm", "-Va", "--nofiles"]), user="0:0", output=out.append)
        text = b"".join(out).decode(errors="replace")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Unsatisfied dependencies for"):
            found.append(line.removeprefix("Unsatisfied dependencies for ").rstrip(":"))
        elif found and line and not line.startswith(("Unsatisfied", "warning")):
            found[-1] += " " + line
    return found
