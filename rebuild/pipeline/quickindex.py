"""The no-op fast path: an unchanged recipe answered from ``<out>/.index/quick-<id>`` with the standard
library alone (no YAML, no engine, no typed result), before the full path would load them.

``build`` records, with each build key, the files the key was computed from (the recipe and its .lock,
the floors manifest, target.yaml and its package list, the image pin and root lock, every local place
the SRPM may come from) with their sha256, or that they were absent. When each is byte for byte as it
was and the options and rebuild's version are the same, the key is the same: the result it names is the
answer once its files are verified (``resultcheck``). Anything else falls through to the full path,
which decides as before.
"""

from __future__ import annotations

import json
from pathlib import Path

from rebuild import __version__
from rebuild.files import atomic_write, sha256_bytes, sha256_file
from rebuild.pipeline.fetch import local_path
from rebuild.pipeline.resultcheck import attestation_problems, output_problem
from rebuild.roots.lock import lock_path
from rebuild.roots.pins import image_dir

INDEX = ".index"


def entry_path(out_dir: Path, recipe: Path, options: dict) -> Path:
    """Where the entry for *recipe* built with *options* lives: one per recipe, options and version."""
    blob = json.dumps({"recipe": str(Path(recipe).resolve()), "options": options, "version": __version__},
                      sort_keys=True).encode()
    return out_dir / INDEX / f"quick-{sha256_bytes(blob)[:32]}"


def _digest(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def dependencies(recipe, target, cache: Path, srpm: Path) -> list[Path]:
    """The files a build key is computed from (see the module's docstring)."""

    deps = [recipe.path, recipe.path.with_suffix(".lock"), target.directory / "target.yaml",
            *(p.path for p in recipe.spec.patches),
            image_dir(target, cache) / "pin.json", lock_path(image_dir(target, cache)), srpm]
    if recipe.floors is not None:
        deps.append(recipe.floors.path)
    if target.image.packages is not None:
        deps.append(target.image.packages)
    deps += [p for p in (local_path(recipe.resolve(u)) for u in recipe.source.urls) if p is not None]
    return deps


def record(out_dir: Path, recipe: Path, options: dict, deps: list[Path], key: str, directory: Path,
           known: dict[Path, str] | None = None) -> None:
    """*known*: digests the build already took (the SRPM's), not read again."""
    known = known or {}
    entry = {"key": key, "directory": directory.name,
             "files": {str(p): known[p] if p in known else _digest(p) for p in deps}}
    atomic_write(entry_path(out_dir, recipe, options), json.dumps(entry, sort_keys=True) + "\n")


def lookup(out_dir: Path, recipe: Path, options: dict) -> tuple[Path, str, list[str]] | None:
    """(result folder, build key, output files) when nothing the key depends on changed and the result is
    intact; else None."""
    try:
        entry = json.loads(entry_path(out_dir, recipe, options).read_text())
        name, key, files = entry["directory"], entry["key"], entry["files"]
        if not isinstance(name, str) or "/" in name or name.startswith(".") or not isinstance(files, dict):
            return None
        if any(_digest(Path(p)) != digest for p, digest in files.items()):
            return None
        directory = out_dir / name
        manifest = json.loads((directory / "manifest.json").read_text())
        if manifest.get("build_key") != key or not manifest.get("outputs"):
            return None
        outputs = [(o["file"], o["size"], o["sha256"]) for o in manifest["outputs"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        if any(output_problem(directory, *o) for o in outputs) or \
                any(True for _ in attestation_problems(directory, dict(manifest.get("attestations") or {}))):
            return None
    except (OSError, ValueError, TypeError):
        return None
    # the full path reads this index too: it must still name this folder
    try:
        if json.loads((out_dir / INDEX / key).read_text()).get("directory") != name:
            return None
    except (OSError, ValueError, AttributeError):
        return None
    return directory, key, [o[0] for o in outputs]
