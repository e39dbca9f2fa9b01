"""``rebuild plan --format k8s``: the plan as one Kubernetes Indexed Job (written and schema-checked here,
never run on a cluster here).

Kubernetes schedules; a Docker engine reached over ssh builds (``DOCKER_HOST=ssh://``, as a pool of build
hosts is reached without CI), so no pod needs a privileged docker-in-docker. Index *i* of the Job builds
line *i* of the plan (recipe, target, the target's image by digest) with rebuild from a runner image given
by digest, which holds rebuild and the project folder (``REBUILD_HOME=/project``). Pods run as user 500,
without a service-account token, with a read-only root filesystem; the results go to a volume claim.
``podFailurePolicy``: exit 10 (the build failed) and 2 (bad input) fail that index at once, exit 3 (the
environment: engine, registry) is retried up to ``backoffLimitPerIndex``. A NetworkPolicy denies every
ingress and all egress but the build host's ssh port (given by address: no DNS either).
"""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import urlsplit

import yaml

from rebuild.errors import UsageError
from rebuild.systems.dockerimages import parse_reference

# exit codes (README's table): what a retry cannot fix fails the index; the environment is retried
FAIL_INDEX = (2, 10)
RETRY = (3,)

_SCRIPT = """\
set -eu
line=$(sed -n "$((JOB_COMPLETION_INDEX + 1))p" /plan/plan.tsv)
recipe=$(printf '%s' "$line" | cut -f1); target=$(printf '%s' "$line" | cut -f2); image=$(printf '%s' "$line" | cut -f3)
rebuild image "$target" --pull "$image"
exec rebuild build "$recipe" --target "$target" --out /results
"""


def engine_host(engine: str) -> tuple[str, int]:
    """(IP, port) of an ``ssh://user@IP[:port]`` engine: the NetworkPolicy allows egress to it alone."""
    url = urlsplit(engine)
    try:
        if url.scheme != "ssh" or not url.username or not url.hostname:
            raise ValueError
        address = ipaddress.ip_address(url.hostname)
        port = url.port or 22
    except ValueError:
        raise UsageError(f"--k8s-engine {engine!r}: give ssh://USER@IP[:PORT] (an address: the NetworkPolicy"
                         " allows egress to it alone)") from None
    return str(address), port


def k8s_job(entries: list[dict], images: dict[str, str], *, runner: str, engine: str, name: str = "rebuild",
            results_claim: str = "rebuild-results", ssh_secret: str = "rebuild-ssh", parallelism: int = 4) -> str:
    """The ConfigMap (the plan), the Indexed Job and the NetworkPolicy, as one YAML stream. *images*: each
    target's image by digest (``REPOSITORY@sha256:...``)."""
    parse_reference(runner, "--k8s-runner")
    address, port = engine_host(engine)
    if not entries:
        raise UsageError("the plan is empty: no recipe to build")
    rows = []
    for entry in entries:
        ref = images[entry["target"]]
        for value in (entry["recipe"], entry["target"], ref):
            if "\t" in value or "\n" in value:
                raise UsageError(f"{value!r}: a tab or newline cannot go into the plan's table")
        rows.append(f"{entry['recipe']}\t{entry['target']}\t{ref}\n")
    labels = {"app.kubernetes.io/name": "rebuild", "app.kubernetes.io/instance": name}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-plan", "labels": labels},
              "data": {"plan.tsv": "".join(rows), "plan.json": json.dumps(entries, indent=2)}}
    container = {
        "name": "build",
        "image": runner,
        "command": ["sh", "-c", _SCRIPT],
        "env": [{"name": "REBUILD_HOME", "value": "/project"},
                {"name": "REBUILD_CACHE", "value": "/cache"},
                {"name": "HOME", "value": "/cache"},
                {"name": "DOCKER_HOST", "value": engine}],
        "securityContext": {"runAsUser": 500, "runAsGroup": 500, "runAsNonRoot": True,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "plan", "mountPath": "/plan", "readOnly": True},
                         {"name": "results", "mountPath": "/results"},
                         {"name": "cache", "mountPath": "/cache"},
                         {"name": "ssh", "mountPath": "/cache/.ssh", "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
    }
    job = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": len(entries),
            "parallelism": min(parallelism, len(entries)),
            "backoffLimitPerIndex": 2,
            "maxFailedIndexes": len(entries),
            "podFailurePolicy": {"rules": [
                {"action": "FailIndex", "onExitCodes": {"containerName": "build", "operator": "In",
                                                        "values": list(FAIL_INDEX)}},
                {"action": "Count", "onExitCodes": {"containerName": "build", "operator": "In",
                                                    "values": list(RETRY)}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            ]},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {"runAsUser": 500, "runAsGroup": 500, "fsGroup": 500, "runAsNonRoot": True},
                    "containers": [container],
                    "volumes": [
                        {"name": "plan", "configMap": {"name": f"{name}-plan"}},
                        {"name": "results", "persistentVolumeClaim": {"claimName": results_claim}},
                        {"name": "cache", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                        # the ssh key (id_ed25519), config and known_hosts for the build host
                        {"name": "ssh", "secret": {"secretName": ssh_secret, "defaultMode": 0o400}},
                    ],
                },
            },
        },
    }
    policy = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": f"{name}-deny-all-but-the-build-host", "labels": labels},
        "spec": {
            "podSelector": {"matchLabels": labels},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [
                {"to": [{"ipBlock": {"cidr": f"{address}/{32 if ':' not in address else 128}"}}],
                 "ports": [{"protocol": "TCP", "port": port}]},
            ],
        },
    }
    header = ("# written by `rebuild plan --format k8s`; checked against Kubernetes' schema, never run on a cluster"
              " by rebuild's tests\n")
    return header + yaml.safe_dump_all([config, job, policy], sort_keys=False, width=200)
