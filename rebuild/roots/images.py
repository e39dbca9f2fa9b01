"""Make a target's image and pin it: ``debootstrap`` roots here, RPM-tree roots in ``treeimage``.

``debootstrap`` targets: a Debian root made once with debootstrap, a build user added, cached
as a tarball under the cache (``images/<target>/rootfs.tar``) and ``docker import``ed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from rebuild import hostcmd
from rebuild.config.target import Target
from rebuild.errors import EnvironmentProblem, UsageError
from rebuild.files import read_json, sha256_file, work_folder
from rebuild.log import Log
from rebuild.roots.pins import Pin, image_dir, pin_image, read_pin, write_json
from rebuild.roots.registry import pull_image
from rebuild.roots.treeimage import make_tree_image
from rebuild.systems.engine import Engine


def make_image(target: Target, engine: Engine, log: Log, *, force: bool = False, mirror: str | None = None,
               updates: str | None = None, cache: Path | None = None, locked: Path | None = None) -> Pin:
    """Make (or reuse) the target's image and write the pin; with ``image.registry`` in the target, pull it
    from there instead (``force`` makes it here all the same)."""
    if target.image.registry and not force and locked is None and not mirror and not updates:
        return pull_image(target, engine, target.image.registry, log, cache)
    if target.image.method == "rpmtree":
        mirror, updates = tree_locations(target, mirror, updates)
        if not mirror and locked is None:
            raise UsageError(
                f"target {target.name} is made from an RPM tree: give --mirror URL_OR_DIR (its RedHat/RPMS tree,"
                " the archive or a local copy) and optionally --updates URL_OR_DIR (with make: make rpms MIRROR=...)"
            )

        return make_tree_image(target, engine, log, mirror=mirror, updates=updates, force=force, cache=cache,
                               locked=locked)
    if locked is not None:
        raise UsageError(f"target {target.name} is made with debootstrap; --locked applies to RPM-tree targets")
    if mirror or updates:
        raise UsageError(f"target {target.name} is made with debootstrap; --mirror/--updates do not apply")
    folder = image_dir(target, cache)
    tarball = folder / "rootfs.tar"
    stamp = folder / "rootfs.json"
    pin = read_pin(target, cache)
    cached = _read_stamp(stamp) == target.image_key and tarball.is_file()
    if force or not cached:
        with log.step(f"debootstrap {target.image.suite} for {target.name}"):
            _debootstrap(target, tarball, log)
        write_json(stamp, {"image_key": target.image_key})
        pin = None
    else:
        log.info(f"reusing cached root {tarball}")
    current = engine.image_id(target.tag)
    if pin and current == pin.image_id:
        log.info(f"image {target.tag} is up to date ({current[:19]})")
        return pin if pin.content_id else pin_image(target, engine, current, pin.made_from, cache, pin.registry)[0]
    rootfs_sha = sha256_file(tarball)
    with log.step(f"import {target.tag}"):
        image_id = engine.import_rootfs(
            tarball,
            target.tag,
            {
                "org.rebuild.target": target.name,
                "org.rebuild.definition": target.image_key,
                "org.rebuild.rootfs": rootfs_sha,
            },
        )
    pin, path = pin_image(target, engine, image_id, rootfs_sha, cache)
    log.info(f"image {target.tag} is {image_id[:19]} (pinned in {path})")
    return pin


def tree_locations(target: Target, mirror: str | None, updates: str | None) -> tuple[str | None, str | None]:
    """The trees to read: those given, else the target's defaults (``image.mirror``/``image.updates``)."""
    return mirror or target.image.mirror or None, updates or target.image.updates or None


def _read_stamp(path: Path) -> str | None:

    try:
        return read_json(path, "stamp", max_bytes=1 << 20).get("image_key")
    except (UsageError, AttributeError):
        return None


def _debootstrap(target: Target, tarball: Path, log: Log) -> None:
    if os.geteuid() != 0:
        raise EnvironmentProblem("debootstrap needs root: run `sudo rebuild image " + target.name + "`")
    if not shutil.which("debootstrap"):
        raise EnvironmentProblem("debootstrap is not installed: `sudo apt-get install debootstrap`")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    work = work_folder(tarball.parent, ".root")
    root = work / "root"
    try:
        argv = ["debootstrap", "--variant=minbase"]
        if target.image.include:
            argv.append("--include=" + ",".join(target.image.include))
        argv += [target.image.suite, str(root), target.image.mirror]
        hostcmd.run(argv, f"debootstrap of {target.image.suite} from {target.image.mirror}", log)
        uid = str(target.uid)
        hostcmd.run(["chroot", str(root), "groupadd", "-g", uid, target.user], "adding the build group", log)
        hostcmd.run(["chroot", str(root), "useradd", "-m", "-u", uid, "-g", uid, "-s", "/bin/sh", target.user],
                    "adding the build user", log)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / junk).glob("*"):
                if item.is_file():
                    item.unlink()
        fd, name = tempfile.mkstemp(prefix=".rootfs-", suffix=".tar", dir=tarball.parent)
        os.close(fd)
        tmp_tar = Path(name)
        try:
            hostcmd.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(tmp_tar), "."], "packing the root", log)
            os.replace(tmp_tar, tarball)
        finally:
            tmp_tar.unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
