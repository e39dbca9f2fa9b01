"""The build index: content-addressed no-op rebuilds.

A build's key is the sha256 of everything that decides its output: the SRPM's digest, the
recipe's spec edits and checks, the floors manifest's content, the target definition, the
image's content identity (the same on every engine that holds it) and the lock of its solved
root (and any chain repository it is solved from, by content), rebuild's own version, whether the floors check was skipped and whether
SOURCE_DATE_EPOCH was asked for. ``<out>/.index/<key>`` names the result folder made with
that key; a hit counts only when that folder's manifest carries the same key and every file
still has the digest the manifest records. A result built on one engine is therefore up to
date on another that pulled the same image.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from rebuild import __version__
from rebuild.config.recipe import Recipe
from rebuild.config.target import Target
from rebuild.files import atomic_write
from rebuild.pipeline.result import Manifest, ResultDir
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
    """The stored result for *key* when it is intact; None when it must be built."""
    try:
        name = json.loads((out_dir / INDEX / key).read_text())["directory"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(name, str) or "/" in name or name.startswith("."):
        return None
    directory = out_dir / name
    manifest = ResultDir(directory).intact(key)
    return (directory, manifest) if manifest is not None else None


def record(out_dir: Path, key: str, directory: Path) -> None:
    index = out_dir / INDEX
    index.mkdir(exist_ok=True)
    atomic_write(index / key, json.dumps({"directory": directory.name}) + "\n")
