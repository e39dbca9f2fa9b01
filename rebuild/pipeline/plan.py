"""The CI build matrix: one entry per recipe and target, for a CI system to fan out.

Every value that reaches a CI shell line is validated as ``build`` validates it (a recipe
loads, a target is a target name) and quoted with ``shlex.quote``.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import yaml

from rebuild.config.recipe import load_recipe
from rebuild.config.yamlfile import load_yaml
from rebuild.errors import ConfigError, UsageError


def default_recipes(home: Path) -> list[Path]:
    """Every recipe directly under specs/: the YAML files with a source section (not floors manifests)."""

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
        if any(not ch.isprintable() for ch in shown):  # a newline would be a second line of `--format shell`
            raise UsageError(f"{shown!r}: a recipe path holding a control character cannot go on a command line;"
                             " rename the file")
        entries.append({"name": recipe.name, "recipe": shown, "target": target or recipe.target})
    return entries


def render(entries: list[dict], fmt: str, executor: str = "docker") -> str:
    if fmt == "json":
        return json.dumps(entries, indent=2)
    if fmt == "github":
        # lines for $GITHUB_OUTPUT: matrix=... (the builds) and targets=... (one image job each); the workflow
        # reads them with fromJSON
        targets = sorted({e["target"] for e in entries})
        return ("matrix=" + json.dumps({"include": entries}, separators=(",", ":")) + "\n"
                + "targets=" + json.dumps(targets, separators=(",", ":")))
    if fmt == "shell":
        return "".join(f"rebuild build {shlex.quote(e['recipe'])} --target {shlex.quote(e['target'])}\n"
                       for e in entries).rstrip("\n")
    if fmt == "gitlab":
        return gitlab_child(entries, executor)
    raise ValueError(fmt)


# the child pipeline's jobs run in Debian with the tools rebuild needs; the engine is a docker:dind service,
# which is another machine to rebuild (DOCKER_HOST=tcp://docker:2375): files travel as archives
_GITLAB_SETUP = ("apt-get update -qq && apt-get install -y -qq python3-venv python3-rpm rpm make createrepo-c gnupg"
                 " debootstrap >/dev/null && make venv")
_GITLAB_SERVICES = [{"name": "docker:24-dind", "alias": "docker", "command": ["--tls=false"]}]
_GITLAB_VARIABLES = {"DOCKER_HOST": "tcp://docker:2375", "DOCKER_TLS_CERTDIR": "",
                     "REBUILD_CACHE": "$CI_PROJECT_DIR/.rebuild-cache"}


def gitlab_head(executor: str = "docker") -> dict:
    """The child pipeline's variables and defaults. *executor* "docker": jobs in debian:12 with a docker:dind
    service; "shell": a shell runner whose host has Docker and the tools (no image, no service, its engine)."""
    login = ('if [ -n "$CI_REGISTRY" ]; then .venv/bin/python -c "import docker; docker.from_env().login('
             '\'$CI_REGISTRY_USER\', \'$CI_REGISTRY_PASSWORD\', registry=\'$CI_REGISTRY\')"; fi')
    if executor == "shell":
        return {"variables": {"REBUILD_CACHE": _GITLAB_VARIABLES["REBUILD_CACHE"]},
                "default": {"before_script": ["make venv", login]}}
    return {"variables": _GITLAB_VARIABLES,
            "default": {"image": "debian:12", "services": _GITLAB_SERVICES, "before_script": [_GITLAB_SETUP, login]}}


def gitlab_image_job(target: str) -> dict:
    """The target's image made once and pushed to the project's registry; its digest passed on as an artifact."""
    q = shlex.quote
    return {
        "stage": "image",
        "cache": {"key": f"tree-{target}", "paths": [".rebuild-cache/srpms/", ".rebuild-cache/headers/"]},
        "script": [f'.venv/bin/rebuild image {q(target)} ${{MIRROR:+--mirror "$MIRROR"}}'
                   f' --push "$CI_REGISTRY_IMAGE/{target}" > image-{target}.out',
                   f"tail -n 1 image-{target}.out > image-{target}.ref", f"cat image-{target}.ref"],
        "artifacts": {"paths": [f"image-{target}.ref"]},
    }


def gitlab_publish_job(needs: list[str], results: str, executor: str = "docker") -> dict:
    """Every result matching the glob *results* signed and published into one repository."""
    return {
        "stage": "publish",
        "needs": needs,
        **({"services": []} if executor != "shell" else {}),
        "script": ['printf \'%s\\n\' "$RPM_SIGNING_KEY" | gpg --batch --import',
                   f'.venv/bin/rebuild publish {results} --repo repo --sign-key "$RPM_SIGNING_KEY_ID"'],
        "artifacts": {"paths": ["repo/"]},
    }


def gitlab_child(entries: list[dict], executor: str = "docker") -> str:
    """The child pipeline: one image job per target (made once, pushed to the project's registry by digest),
    one build job per entry (pulls that digest; results cached by build key), one publish job."""

    q = shlex.quote
    jobs = gitlab_head(executor)
    for target in sorted({e["target"] for e in entries}):
        jobs[f"image:{target}"] = gitlab_image_job(target)
    for entry in entries:
        recipe, target = q(entry["recipe"]), q(entry["target"])
        jobs[f"build:{entry['name']}:{entry['target']}"] = {
            "stage": "build",
            "needs": [f"image:{entry['target']}"],
            "cache": {"key": f"results-{entry['name']}-{entry['target']}", "paths": ["results/"]},
            "script": [
                f'.venv/bin/rebuild image {target} --pull "$(cat image-{entry["target"]}.ref)"',
                f'.venv/bin/rebuild build {recipe} --target {target} --out results ${{FORCE:+--force}}',
            ],
            "artifacts": {"paths": ["results/"]},
        }
    jobs["publish"] = gitlab_publish_job([f"build:{e['name']}:{e['target']}" for e in entries], "results/*/", executor)
    return yaml.safe_dump({"stages": ["image", "build", "publish"], **jobs}, sort_keys=False, width=200)
