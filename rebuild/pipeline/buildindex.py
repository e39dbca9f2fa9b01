"""The build index: content-addressed no-op rebuilds.

A build's key is the sha256 of everything that decides its output: the SRPM's digest, the
recipe's spec edits and checks, the floors manifest's content, the target definition, the
image's identity and the lock of its solved root, rebuild's own version, whether the
floors check was skipped and whether SOURCE_DATE_EPOCH was asked for. ``<out>/.index/<key>`` names the result folder made with that key;
a hit counts only when that folder's manifest carries the same key and every file still has
the digest the manifest records.
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

INDEX = ".index"


def build_key(recipe: Recipe, target: Target, image_id: str, srpm_sha256: str, *, skip_deps_check: bool,
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
        "image_id": image_id,
        "rebuild_version": __version__,
        "skip_deps_check": skip_deps_check,
        "source_date_epoch": source_date_epoch,
    }
    if root_lock is not None:
        inputs["root_lock_sha256"] = root_lock
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest(), inputs


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
