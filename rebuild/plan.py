"""The CI build matrix: one entry per recipe and target, for a CI system to fan out."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from rebuild.paths import project_root
from rebuild.recipe import load_recipe


def default_recipes() -> list[Path]:
    """Every recipe directly under specs/: the YAML files with a source section (not floors manifests)."""
    found = []
    for path in sorted((project_root() / "specs").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and "source" in data:
            found.append(path)
    return found


def plan(recipes: list[Path], target: str | None = None) -> list[dict]:
    entries = []
    root = project_root()
    for path in recipes:
        recipe = load_recipe(path)
        try:
            shown = str(recipe.path.relative_to(root))
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
    if fmt == "gitlab":
        jobs = {}
        for entry in entries:
            jobs[f"build:{entry['name']}:{entry['target']}"] = {
                "stage": "build",
                "script": [
                    "make venv",
                    f".venv/bin/rebuild build {entry['recipe']} --target {entry['target']} --out results",
                ],
                "artifacts": {"paths": ["results/"]},
            }
        return yaml.safe_dump({"stages": ["build"], **jobs}, sort_keys=False)
    raise ValueError(fmt)
