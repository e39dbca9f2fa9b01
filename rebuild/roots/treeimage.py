"""Images made from an RPM tree (the ``rpmtree`` method): RH 7.3's own packages, or any tree.

1. resolve the package list (``containers/<target>/packages.txt``) against the tree and
   its updates; 2. download each package through the verified cache (its own digests
   checked; sha256 recorded at first download and required afterwards); 3. unpack the
   payloads safely into a root, add the build user and, for 32-bit targets without one,
   a static ``linux32`` helper; 4. ``docker import`` it; 5. register the packages in an
   rpmdb written by the image's OWN rpm (``--justdb``), so rpm 4.0.4 can read it; 6. pin.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from rebuild import hostcmd
from rebuild.config.target import Target
from rebuild.errors import EnvironmentProblem, UsageError
from rebuild.log import Log
from rebuild.pipeline.fetch import Cache, fetch_urls
from rebuild.roots.pins import Pin, image_dir, read_pin, write_json, write_pin
from rebuild.roots.rpmtree import list_tree, read_package_list, resolve
from rebuild.roots.unpack import RootDir, unpack
from rebuild.systems.engine import Engine, Mount
from rebuild.systems.urls import redact

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


def _helper(dest: Path, log: Log) -> None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise EnvironmentProblem("a C compiler is needed once to make the static linux32 helper: apt-get install gcc")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "linux32.c"
        source.write_text(_LINUX32_C)
        dest.parent.mkdir(parents=True, exist_ok=True)
        hostcmd.run([cc, "-static", "-Os", "-o", str(dest), str(source)], "compiling the linux32 helper", log)


# folders every root must have as real folders (never symlinks): the build user is added through them
REAL_FOLDERS = ("etc", "tmp", "var/tmp", "home")


def _add_user(root: Path, target: Target) -> None:
    """The build user and group in etc/passwd and etc/group, its home, and sticky tmp folders; nothing is
    written through a symlink a package may have planted."""
    with RootDir(root) as tree:
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


def _has_rpm(root: Path) -> str | None:
    for candidate in ("bin/rpm", "usr/bin/rpm"):
        if os.path.lexists(root / candidate):
            return "/" + candidate
    return None


def make_tree_image(target: Target, engine: Engine, log: Log, *, mirror: str, updates: str | None,
                    force: bool = False, cache: Path | None = None) -> Pin:
    if os.geteuid() != 0:
        raise EnvironmentProblem(f"making the {target.name} root needs root (file ownership): run it with sudo")
    if target.image.packages is None or not target.image.packages.is_file():
        raise UsageError(f"target {target.name}: image.packages must name the package list file")
    wanted = read_package_list(target.image.packages)
    with log.step(f"resolve {len(wanted)} packages from {redact(mirror)}" + (f" and {redact(updates)}" if updates else "")):
        trees = [list_tree(mirror, "os")] + ([list_tree(updates, "updates")] if updates else [])
        chosen = resolve(wanted, trees, target.arch)
        for pkg in chosen:
            if pkg.origin == "updates":
                log.info(f"    {pkg.filename} (updates)")
    listing = "\n".join(p.filename for p in chosen) + "\n"
    list_digest = hashlib.sha256((target.image_key + listing).encode()).hexdigest()
    folder = image_dir(target, cache)
    pin = read_pin(target, cache)
    if not force and pin and pin.made_from == list_digest and engine.image_id(target.image.tag) == pin.image_id:
        log.info(f"image {target.image.tag} is up to date ({pin.image_id[:19]})")
        return pin
    pins_file = folder / "packages.json"
    known = json.loads(pins_file.read_text()) if pins_file.exists() else {}
    packages = Cache(cache)
    paths: list[Path] = []
    with log.step(f"fetch {len(chosen)} packages"):
        for pkg in chosen:
            fetched = fetch_urls([pkg.url], filename=pkg.filename, sha256=pkg.sha256 or known.get(pkg.filename),
                                 allow_unpinned=True, source=False, cache=packages, log=log)
            known[pkg.filename] = fetched.sha256
            paths.append(fetched.path)
    write_json(pins_file, known)
    folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".root-", dir=folder))
    try:
        root = work / "root"
        root.mkdir()
        with log.step(f"unpack {len(paths)} payloads"):
            for path in paths:
                unpack(path, root)
        _add_user(root, target)
        if target.personality == "linux32" and not any(
            (root / p).exists() for p in ("usr/bin/linux32", "bin/linux32", "usr/bin/setarch")
        ):
            _helper(root / HELPER_PATH, log)
        tarball = work / "rootfs.tar"
        hostcmd.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(tarball), "."], "packing the root", log)
        labels = {
            "org.rebuild.target": target.name,
            "org.rebuild.mirror": redact(mirror),
            "org.rebuild.updates": redact(updates or ""),
            "org.rebuild.packages": hashlib.sha256(listing.encode()).hexdigest(),
        }
        with log.step(f"import {target.image.tag}"):
            image_id = engine.import_rootfs(tarball, target.image.tag, labels)
        rpm_binary = _has_rpm(root)
        if rpm_binary:
            image_id = _register(target, engine, image_id, paths, chosen, work, log)
        else:
            log.warn(f"{target.name}: the package set has no rpm; the image has no rpmdb")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pin = Pin(target.name, target.image.tag, image_id, target.image_key, list_digest)
    path = write_pin(pin, target, cache)
    log.info(f"image {target.image.tag} is {image_id[:19]} (pinned in {path})")
    return pin


def _register(target: Target, engine: Engine, image_id: str, paths: list[Path], chosen, work: Path, log: Log) -> str:
    """Write the rpmdb with the image's own rpm (--justdb), check rpm -qa, and commit the image."""
    pkgs = work / "pkgs"
    pkgs.mkdir()
    for path in paths:
        if path.stat().st_dev == pkgs.stat().st_dev:
            os.link(path, pkgs / path.name)
        else:
            shutil.copyfile(path, pkgs / path.name)
    names = sorted(p.name for p in pkgs.iterdir())
    with log.step("register the packages in the image's own rpmdb"):
        with engine.container(image_id, mounts=[Mount(pkgs, "/pkgs", read_only=True)]) as box:
            out: list[bytes] = []
            for argv in (["rpm", "--initdb"],
                         ["rpm", "-i", "--justdb", "--nodeps", "--noscripts", "--notriggers", "--ignorearch",
                          *[f"/pkgs/{n}" for n in names]]):
                code = box.run(target.wrap(argv), user="0:0", output=out.append)
                if code != 0:
                    raise EnvironmentProblem(
                        f"{argv[0]} {argv[1]} failed in the new image (exit {code}): "
                        + b"".join(out).decode(errors="replace").strip()[-300:]
                    )
            out.clear()
            # rpm's warnings share the stream: read only the lines the query tags
            code = box.run(target.wrap(["rpm", "-qa", "--qf", "rebuild-pkg %{NAME}\\n"]), user="0:0", output=out.append)
            listed = sorted(line.split()[1] for line in b"".join(out).decode(errors="replace").splitlines()
                            if line.startswith("rebuild-pkg ") and len(line.split()) == 2)
            if code != 0 or listed != sorted(p.name for p in chosen):
                raise EnvironmentProblem(
                    f"the image's rpm cannot read back its rpmdb (rpm -qa exit {code}, {len(listed)} of {len(chosen)} packages)"
                )
            return box.commit(target.image.tag)
