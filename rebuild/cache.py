"""Content-addressed no-op rebuilds.

A build's key is the sha256 of everything that decides its output: the SRPM's
digest, the recipe's spec edits and checks, the floors manifest's content, the
target definition and image ID, rebuild's own version, and whether the floors
check was skipped. ``<out>/.index/<key>`` names the result directory made with
that key; a hit counts only when that directory's manifest carries the same key
and every file still has the digest the manifest records.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from rebuild import __version__
from rebuild.recipe import Recipe
from rebuild.rpmfile import sha256_file
from rebuild.targets import Target

INDEX = ".index"


def build_key(recipe: Recipe, target: Target, image_id: str, srpm_sha256: str, *, skip_deps_check: bool) -> tuple[str, dict]:
    """The key and the inputs it was computed from (stored in manifest.json)."""
    inputs = {
        "srpm_sha256": srpm_sha256,
        "srpm_file": recipe.source.srpm,
        "srpm_pin": recipe.source.sha256,
        "spec_edits": recipe.spec.as_dict(),
        "checks": [{"name": c.name, "run": list(c.run), "expect_stdout": c.expect_stdout} for c in recipe.checks],
        "floors_sha256": sha256_file(recipe.floors) if recipe.floors else None,
        "target_definition_sha256": target.definition_sha256,
        "image_id": image_id,
        "rebuild_version": __version__,
        "skip_deps_check": skip_deps_check,
    }
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest(), inputs


def lookup(out_dir: Path, key: str) -> tuple[Path, dict] | None:
    """The stored result for *key* when it is intact; None when it must be built."""
    try:
        name = json.loads((out_dir / INDEX / key).read_text())["directory"]
        directory = out_dir / name
        manifest = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if manifest.get("build_key") != key:
        return None
    for output in manifest.get("outputs", []):
        path = directory / output["file"]
        try:
            if path.stat().st_size != output["size"] or sha256_file(path) != output["sha256"]:
                return None
        except OSError:
            return None
    if not manifest.get("outputs"):
        return None
    return directory, manifest


def record(out_dir: Path, key: str, directory: Path) -> None:
    index = out_dir / INDEX
    index.mkdir(exist_ok=True)
    tmp = index / f".{key}.{os.getpid()}.{id(directory)}.tmp"
    tmp.write_text(json.dumps({"directory": directory.name}) + "\n")
    os.replace(tmp, index / key)
