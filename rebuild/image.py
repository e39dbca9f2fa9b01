"""Make a target's image and pin it by image ID.

``debootstrap`` targets: a Debian root made once with debootstrap, a build user
added, cached as a tarball under the cache (``images/<target>/rootfs.tar``) and
``docker import``ed. The pin (``images/<target>/pin.json``) records the image ID
and the definition it was made from; builds refuse an image that does not match.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rebuild.engine import Engine
from rebuild.errors import EnvironmentProblem, UsageError
from rebuild.log import Log
from rebuild.rpmfile import sha256_file
from rebuild.paths import cache_root
from rebuild.targets import Target


@dataclass(frozen=True)
class Pin:
    target: str
    tag: str
    image_id: str
    image_key: str  # Target.image_key the image was made from
    made_from: str  # sha256 of the rootfs tarball, or of the resolved package list (rpmtree)


def image_dir(target: Target) -> Path:
    return cache_root() / "images" / target.name


def read_pin(target: Target) -> Pin | None:
    """The target's pin when it was made from the current image definition, else None."""
    path = image_dir(target) / "pin.json"
    try:
        pin = Pin(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return pin if pin.image_key == target.image_key else None


def write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def check_image(target: Target, engine: Engine) -> str:
    """The pinned image ID of *target*, or EnvironmentProblem saying what to run."""
    fix = f"run `rebuild image {target.name}`"
    if not (image_dir(target) / "pin.json").exists():
        raise EnvironmentProblem(f"target {target.name}: no image has been made yet; {fix}")
    pin = read_pin(target)
    if pin is None:
        raise EnvironmentProblem(f"target {target.name}: its image definition changed since the image was made; {fix}")
    current = engine.image_id(target.image.tag)
    if current is None:
        raise EnvironmentProblem(f"target {target.name}: image {target.image.tag} is not in the engine; {fix}")
    if current != pin.image_id:
        raise EnvironmentProblem(
            f"target {target.name}: {target.image.tag} is {current[:19]}, not the pinned {pin.image_id[:19]}; {fix}"
        )
    return current


def make_image(target: Target, engine: Engine, log: Log, *, force: bool = False, mirror: str | None = None,
               updates: str | None = None) -> Pin:
    """Make (or reuse) the target's image and write the pin."""
    if target.image.method == "rpmtree":
        if not mirror:
            raise UsageError(
                f"target {target.name} is made from an RPM tree: give --mirror URL_OR_DIR (its RedHat/RPMS tree,"
                " the archive or a local copy) and optionally --updates URL_OR_DIR (with make: make rpms MIRROR=...)"
            )
        from rebuild.treeimage import make_tree_image

        return make_tree_image(target, engine, log, mirror=mirror, updates=updates, force=force)
    if mirror or updates:
        raise UsageError(f"target {target.name} is made with debootstrap; --mirror/--updates do not apply")
    folder = image_dir(target)
    tarball = folder / "rootfs.tar"
    stamp = folder / "rootfs.json"
    pin = read_pin(target)
    cached = _read_stamp(stamp) == target.image_key and tarball.is_file()
    if force or not cached:
        with log.step(f"debootstrap {target.image.suite} for {target.name}"):
            _debootstrap(target, tarball, log)
        write_json_atomic(stamp, {"image_key": target.image_key})
        pin = None
    else:
        log.info(f"reusing cached root {tarball}")
    current = engine.image_id(target.image.tag)
    if pin and current == pin.image_id:
        log.info(f"image {target.image.tag} is up to date ({current[:19]})")
        return pin
    rootfs_sha = sha256_file(tarball)
    with log.step(f"import {target.image.tag}"):
        image_id = engine.import_rootfs(
            tarball,
            target.image.tag,
            {
                "org.rebuild.target": target.name,
                "org.rebuild.definition": target.image_key,
                "org.rebuild.rootfs": rootfs_sha,
            },
        )
    pin = Pin(target.name, target.image.tag, image_id, target.image_key, rootfs_sha)
    write_json_atomic(folder / "pin.json", pin.__dict__)
    log.info(f"image {target.image.tag} is {image_id[:19]} (pinned in {folder / 'pin.json'})")
    return pin


def _read_stamp(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("image_key")
    except (OSError, ValueError):
        return None




def run_host(argv: list[str], log: Log, what: str) -> None:
    log.command(argv)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-15:])
        raise EnvironmentProblem(f"{what} failed (exit {proc.returncode})", detail=tail)


def _debootstrap(target: Target, tarball: Path, log: Log) -> None:
    if os.geteuid() != 0:
        raise EnvironmentProblem("debootstrap needs root: run `sudo rebuild image " + target.name + "`")
    if not shutil.which("debootstrap"):
        raise EnvironmentProblem("debootstrap is not installed: `sudo apt-get install debootstrap`")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".root-", dir=tarball.parent))
    root = work / "root"
    try:
        argv = ["debootstrap", "--variant=minbase"]
        if target.image.include:
            argv.append("--include=" + ",".join(target.image.include))
        argv += [target.image.suite, str(root), target.image.mirror]
        run_host(argv, log, f"debootstrap of {target.image.suite} from {target.image.mirror}")
        uid = str(target.uid)
        run_host(["chroot", str(root), "groupadd", "-g", uid, target.user], log, "adding the build group")
        run_host(
            ["chroot", str(root), "useradd", "-m", "-u", uid, "-g", uid, "-s", "/bin/sh", target.user],
            log,
            "adding the build user",
        )
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / junk).glob("*"):
                if item.is_file():
                    item.unlink()
        tmp_tar = tarball.with_name(f".{tarball.name}.{os.getpid()}.tmp")
        run_host(["tar", "--numeric-owner", "-C", str(root), "-cf", str(tmp_tar), "."], log, "packing the root")
        os.replace(tmp_tar, tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)
