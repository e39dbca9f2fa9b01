"""The CI build matrix: one entry per recipe and target, for a CI system to fan out.

Every value that reaches a CI shell line is validated as ``build`` validates it (a recipe
loads, a target is a target name) and quoted with ``shlex.quote``.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from rebuild.config.recipe import load_recipe
from rebuild.errors import ConfigError, UsageError


def default_recipes(home: Path) -> list[Path]:
    """Every recipe directly under specs/: the YAML files with a source section (not floors manifests)."""
    from rebuild.config.yamlfile import load_yaml

    found = []
    for path in sorted((home / "specs").glob("*.yaml")):
        try:
            data = load_yaml(path, "recipe or manifest")
        except ConfigError as exc:
            raise ConfigError(f"{exc.message} (plan reads every YAML file under {home / 'specs'})") from None
        if isinstance(data, dict) and "source" in data:
            found.append(path)
    return found


def plan(recipes: list[Path], target: str | None, home: Path) -> list[dict]:
    import re

    if target is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", target):
        raise UsageError(f"--target {target!r} is not a target name")
    entries = []
    for path in recipes:
        recipe = load_recipe(path)
        try:
            shown = str(recipe.path.relative_to(home))
        except ValueError:
            shown = str(recipe.path)
        entries.append({"name": recipe.name, "recipe": shown, "target": target or recipe.target})
    return entries


def render(entries: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(entries, indent=2)
    if fmt == "github":
        # one line for $GITHUB_OUTPUT: matrix=...; the workflow reads it with fromJSON
        return "matrix=" + json.dumps({"include": entries}, separators=(",", ":"))
    if fmt == "shell":
        return "".join(f"rebuild build {shlex.quote(e['recipe'])} --target {shlex.quote(e['target'])}\n"
                       for e in entries).rstrip("\n")
    if fmt == "gitlab":
        import yaml

        jobs = {}
        for entry in entries:
            jobs[f"build:{entry['name']}:{entry['target']}"] = {
                "stage": "build",
                "script": [
                    "make venv",
                    f".venv/bin/rebuild build {shlex.quote(entry['recipe'])} --target {shlex.quote(entry['target'])}"
                    " --out results",
                ],
                "artifacts": {"paths": ["results/"]},
            }
        return yaml.safe_dump({"stages": ["build"], **jobs}, sort_keys=False)
    raise ValueError(fmt)
