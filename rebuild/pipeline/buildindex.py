"""The build index: content-addressed no-op rebuilds.

A build's key is the sha256 of everything that decides its output: the SRPM's digest, the
recipe's spec edits and checks, the floors manifest's content, the target definition, the
image's content identity (the same on every engine that holds it) and the lock of its solved
root (and any chain repository it is solved from, by content), rebuild's own version, whether the floors check was skipped and whether
SOURCE_DATE_EPOCH was asked for. ``<out>/.index/<key>`` names the result folder made with
that key and the digest of the manifest the build wrote; a hit counts only when that folder is a
real folder, its manifest has that digest and carries the same key, and its RPMs are exactly the
ones the manifest lists, each with the digest recorded. A result built on one engine is therefore up to
date on another that pulled the same image.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from rebuild import __version__
from rebuild.config.recipe import Recipe
from rebuild.config.target import Target
from rebuild.errors import UsageError
from rebuild.files import SAFE_NAME, atomic_write, read_user_file, sha256_file
from rebuild.pipeline.result import MANIFEST, Manifest, ResultDir
from rebuild.roots.lock import lock_path, read_lock
from rebuild.roots.pins import image_dir, read_pin

INDEX = ".index"


def build_key(recipe: Recipe, target: Target, image: str, srpm_sha256: str, *, skip_deps_check: bool,
              root_lock: str | None = None, source_date_epoch: bool = True) -> tuple[str, dict]:
    """The key and the inputs it was computed from (stored in manifest.json)."""
    inputs = {
        "srpm_sha256": srpm_sha256,
        "srpm_file": recipe.source.srpm,
        "srpm_pin": recipe.source.sha256,
        "spec_edits": recipe.spec.as_dict(),
        "checks": [{"name": c.name, "run": list(c.run), "expect_stdout": c.expect_stdout} for c in recipe.checks],
        "floors_sha256": recipe.floors.sha256 if recipe.floors else None,
        "target_definition_sha256": target.definition_sha256,
        "image": image,  # the image's content identity (Pin.identity)
        "rebuild_version": __version__,
        "skip_deps_check": skip_deps_check,
        "source_date_epoch": source_date_epoch,
    }
    if root_lock is not None:
        inputs["root_lock_sha256"] = root_lock
    if target.extra_trees:  # a chain's repository: what it holds, not where
        inputs["extra_trees"] = {origin: digest for origin, _, digest in target.extra_trees}
    if recipe.build_user:  # only where set: other recipes keep the keys they had
        inputs["build_user"] = recipe.build_user
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest(), inputs


def key_for(recipe: Recipe, target: Target, cache: Path, srpm_sha256: str, *, skip_deps_check: bool = False,
            source_date_epoch: bool = True):
    """(pin, key, inputs) for *recipe* on *target*'s pinned image and solved root, as ``build`` keys it;
    the pin is None (and the key names an unpinned image) when no image has been made or pulled."""

    pin = read_pin(target, cache)
    lock = read_lock(lock_path(image_dir(target, cache)))
    key, inputs = build_key(recipe, target, pin.identity if pin else "unpinned", srpm_sha256,
                            skip_deps_check=skip_deps_check, root_lock=lock.sha256 if lock else None,
                            source_date_epoch=source_date_epoch)
    return pin, key, inputs


def lookup(out_dir: Path, key: str) -> tuple[Path, Manifest] | None:
    """The stored result for *key* when it is intact; None when it must be built.

    Nothing in the result folder is taken on trust: the entry names the digest of the manifest the build
    wrote (a manifest edited together with an RPM's digest is not the one indexed), the folder is a real
    folder (not a symlink to another), and the RPMs found in it are exactly those the manifest lists, each
    with its recorded size and sha256."""
    try:
        entry = json.loads(read_user_file(out_dir / INDEX / key, "index entry", max_bytes=4096))
        name, manifest_sha256 = entry["directory"], entry["manifest_sha256"]
    except (UsageError, ValueError, KeyError, TypeError, RecursionError):
        return None
    if not isinstance(name, str) or not SAFE_NAME.match(name) or not isinstance(manifest_sha256, str):
        return None
    directory = out_dir / name
    try:
        if not stat.S_ISDIR(os.lstat(directory).st_mode):
            return None
    except OSError:
        return None
    result = ResultDir(directory)
    manifest = result.intact(key)
    if manifest is None or result.manifest_sha256 != manifest_sha256:
        return None
    if found_rpms(directory) != {o.file for o in manifest.outputs}:
        return None
    return directory, manifest


def found_rpms(directory: Path) -> set[str]:
    """The RPM files under RPMS/ and SRPMS/ of a result folder, as paths relative to it."""
    return {str(p.relative_to(directory)) for pattern in ("RPMS/*/*.rpm", "SRPMS/*.rpm") for p in directory.glob(pattern)}


def record(out_dir: Path, key: str, directory: Path) -> None:
    """Index *directory* under *key*, bound to the digest of the manifest it holds now."""
    index = out_dir / INDEX
    index.mkdir(exist_ok=True)
    digest = sha256_file(directory / MANIFEST)
    atomic_write(index / key, json.dumps({"directory": directory.name, "manifest_sha256": digest}) + "\n")


def rewrite(result: ResultDir, manifest: Manifest) -> None:
    """Write a result's manifest again (a check's or a reproducibility verdict) and, where the index names
    that folder for the manifest's key, bind the entry to the new manifest."""
    result.write(manifest)
    out_dir, key = result.path.parent, manifest.build_key
    try:
        indexed = json.loads(read_user_file(out_dir / INDEX / key, "index entry", max_bytes=4096))["directory"]
    except (UsageError, ValueError, KeyError, TypeError, RecursionError):
        return
    if key and indexed == result.path.name:
        record(out_dir, key, result.path)
