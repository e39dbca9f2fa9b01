"""Post-build checks: install the built RPMs in a fresh container of the target and run the
recipe's checks there (no network, a fully qualified host name)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from rebuild.engine import Engine, Mount
from rebuild.errors import CheckFailed, UsageError
from rebuild.log import Log
from rebuild.recipe import Check, Recipe
from rebuild.targets import Target

CHECK_HOSTNAME = "rebuild.localdomain"
OUTPUT_LIMIT = 4000


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    exit_code: int
    output: str

    def as_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "exit_code": self.exit_code, "output": self.output}


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
                  target_name: str | None = None) -> list[CheckResult]:
    """``rebuild verify``: run the recipe's checks again on a result directory; record them in its manifest."""
    from rebuild.image import check_image
    from rebuild.publish import _load_result
    from rebuild.recipe import load_recipe
    from rebuild.targets import load_target

    manifest = _load_result(result_dir)
    recipe = load_recipe(recipe_path or Path(manifest["recipe"]["path"]))
    target = load_target(target_name or manifest.get("target", {}).get("name") or recipe.target)
    if not recipe.checks:
        raise UsageError(f"{recipe.path}: the recipe has no checks to run")
    results = run_checks(recipe, target, engine, check_image(target, engine), result_dir, log)
    manifest["checks"] = [r.as_dict() for r in results]
    path = result_dir / "manifest.json"
    tmp = path.with_name(f".manifest.json.{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, path)
    return results
