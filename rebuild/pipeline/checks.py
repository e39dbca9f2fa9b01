"""Post-build checks: install the built RPMs in a fresh container of the target and run the
recipe's checks there (no network, a fully qualified host name). ``rebuild verify`` runs them
again on a result folder."""

from __future__ import annotations

import re
from pathlib import Path

from rebuild.config.recipe import Check, Recipe, Source, load_recipe
from rebuild.config.target import Target, load_target
from rebuild.errors import CheckFailed
from rebuild.log import Log
from rebuild.pipeline import buildindex
from rebuild.pipeline.result import CheckResult, ResultDir
from rebuild.roots.pins import check_image
from rebuild.systems.engine import Engine, Mount

CHECK_HOSTNAME = "rebuild.localdomain"
OUTPUT_LIMIT = 4000


def _judge(check: Check, code: int, output: str) -> bool:
    if check.expect_stdout is None:
        return code == 0
    return re.search(check.expect_stdout, output) is not None


def run_checks(recipe: Recipe, target: Target, engine: Engine, image_id: str, result_dir: Path,
               log: Log) -> list[CheckResult]:
    """Install the binary RPMs of *result_dir* (rpm -Uvh) and run every check; never raises for a failed check."""
    rpms_dir = result_dir / "RPMS"
    rpms = sorted(p.relative_to(rpms_dir) for p in rpms_dir.rglob("*.rpm")) if rpms_dir.is_dir() else []
    if not rpms:
        return [CheckResult("install", False, -1, "no binary RPMs to install")]
    results: list[CheckResult] = []
    with log.step(f"checks in a fresh {target.name} container"):
        with engine.container(image_id, mounts=[Mount(rpms_dir, "/rpms", read_only=True)],
                              hostname=CHECK_HOSTNAME) as box:
            chunks: list[bytes] = []
            nodeps = ["--nodeps"] if target.nodeps else []
            code = box.run(target.wrap(["rpm", "-Uvh", *nodeps, *[f"/rpms/{p}" for p in rpms]]), user="0:0",
                           output=chunks.append)
            installed = _text(chunks)
            results.append(CheckResult("install", code == 0, code, installed))
            if code != 0:
                return results
            for check in recipe.checks:
                chunks = []
                code = box.run(target.wrap(list(check.run)), user="0:0", output=chunks.append)
                output = _text(chunks)
                results.append(CheckResult(check.name, _judge(check, code, output), code, output))
                log.info(f"    check {check.name}: {'ok' if results[-1].passed else 'FAILED'}")
    return results


def _text(chunks: list[bytes]) -> str:
    text = b"".join(chunks).decode(errors="replace")
    return text if len(text) <= OUTPUT_LIMIT else text[:OUTPUT_LIMIT] + "\n[... cut]"


def failure(results: list[CheckResult]) -> CheckFailed | None:
    failed = [r for r in results if not r.passed]
    if not failed:
        return None
    first = failed[0]
    tail = "\n".join(first.output.strip().splitlines()[-15:])
    names = ", ".join(r.name for r in failed)
    return CheckFailed(f"check {names} failed (exit {first.exit_code})", detail=f"--- {first.name} output:\n{tail}")


def verify_result(result_dir: Path, engine: Engine, log: Log, *, recipe_path: Path | None = None,
                  target_name: str | None = None, cache: Path | None = None) -> list[CheckResult]:
    """``rebuild verify``: install a result folder's RPMs in a fresh container and run the recipe's checks (when it
    has any) again; record them in its manifest."""

    folder = ResultDir(Path(result_dir))
    manifest = folder.verify()
    path = recipe_path or Path(manifest.recipe.path)
    if recipe_path is None and not path.is_file() and manifest.recipe.implied:
        # a bare SRPM's result whose implied recipe is gone: it had no checks; its RPMs are still installed
        recipe = Recipe(path, manifest.recipe.name, Source("", ()), manifest.target.name if manifest.target else "")
    else:
        recipe = load_recipe(path)
    target = load_target(target_name or (manifest.target.name if manifest.target else recipe.target))
    if not recipe.checks:
        log.info(f"{recipe.name}: the recipe has no checks; installing its RPMs is the check")
    image = check_image(target, engine, cache)
    layer = (manifest.root or {}).get("image_id") if manifest.target and manifest.target.name == target.name else None
    if layer and layer != image and engine.image_id(layer) == layer:
        image = layer  # the build root the result was built in: its BuildRequires' libraries are there
    results = run_checks(recipe, target, engine, image, folder.path, log)
    buildindex.rewrite(folder, manifest.with_checks(results))
    return results
