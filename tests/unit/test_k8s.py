"""`rebuild plan --format k8s`: the Indexed Job, its plan and its NetworkPolicy validated against Kubernetes'
own schema (kubernetes-validate, strict); what the pods may do. Never run on a cluster here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rebuild.errors import UsageError
from rebuild.pipeline.k8splan import k8s_job

RUNNER = "registry.example/rebuild/runner@sha256:" + "a" * 64
IMAGE = "registry.example/rebuild/rh73@sha256:" + "b" * 64
ENTRIES = [{"name": "sendmail", "recipe": "specs/sendmail.yaml", "target": "rh73"},
           {"name": "flex", "recipe": "specs/examples/era/flex.yaml", "target": "rh73"}]


def validate(path: Path, version: str | None = None) -> subprocess.CompletedProcess:
    """kubernetes-validate, strict, against *version*'s schema (default: the newest it has)."""
    tool = Path(sys.executable).parent / "kubernetes-validate"
    return subprocess.run([str(tool), "--strict", *(["--kubernetes-version", version] if version else []), str(path)],
                          capture_output=True, text=True)


def test_the_job_validates_against_kubernetes_schema_and_a_broken_one_does_not(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(k8s_job(ENTRIES, {"rh73": IMAGE}, runner=RUNNER, engine="ssh://builder@10.0.0.5"))
    for version in ("1.31.0", None):  # backoffLimitPerIndex and podFailurePolicy's FailIndex: GA in 1.31
        proc = validate(path, version)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.count("passed") == 3
    docs = list(yaml.safe_load_all(path.read_text()))
    docs[1]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsUser"] = "five hundred"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump_all(docs))
    assert validate(broken).returncode != 0


def test_what_the_pods_may_do(tmp_path):
    config, job, policy = yaml.safe_load_all(k8s_job(ENTRIES, {"rh73": IMAGE}, runner=RUNNER,
                                                     engine="ssh://builder@10.0.0.5:2222"))
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 2
    assert config["data"]["plan.tsv"].splitlines() == [f"specs/sendmail.yaml\trh73\t{IMAGE}",
                                                       f"specs/examples/era/flex.yaml\trh73\t{IMAGE}"]
    rules = {(r["action"], tuple(r["onExitCodes"]["values"])) for r in spec["podFailurePolicy"]["rules"]
             if "onExitCodes" in r}
    assert rules == {("FailIndex", (2, 10)), ("Count", (3,))}
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == RUNNER and pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["runAsUser"] == 500 and container["securityContext"]["runAsNonRoot"]
    assert "privileged" not in str(job) and "dind" not in str(job)
    assert {"name": "DOCKER_HOST", "value": "ssh://builder@10.0.0.5:2222"} in container["env"]
    assert policy["spec"]["ingress"] == [] and policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["egress"] == [{"to": [{"ipBlock": {"cidr": "10.0.0.5/32"}}],
                                         "ports": [{"protocol": "TCP", "port": 2222}]}]


@pytest.mark.parametrize("engine", ["tcp://10.0.0.5:2375", "ssh://builder@buildhost", "ssh://10.0.0.5"])
def test_an_engine_the_policy_cannot_name_is_refused(engine):
    with pytest.raises(UsageError, match="--k8s-engine"):
        k8s_job(ENTRIES, {"rh73": IMAGE}, runner=RUNNER, engine=engine)


def test_a_runner_not_by_digest_is_refused():
    with pytest.raises(UsageError):
        k8s_job(ENTRIES, {"rh73": IMAGE}, runner="registry.example/rebuild/runner:latest", engine="ssh://b@10.0.0.5")
