"""The command line: parse arguments, call one library function, format the result, pick the exit code.

``main`` holds the group and catches every expected error once; the commands live by area:
``build`` (build, demo, key, init, fetch, patch, targets, vercmp), ``plans`` (plan, floors suggest),
``roots`` (image, check-deps),
``results`` (publish, verify), ``evidence`` (diff, verify-provenance), ``mail`` (audit-mc, probe-smtp),
``host`` (doctor, shell).
"""

from rebuild.cli import build, evidence, host, mail, plans, results, roots  # noqa: F401 - each registers its commands
from rebuild.cli.main import cli, main

__all__ = ["cli", "main"]
