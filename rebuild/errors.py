"""One error hierarchy; ``cli.main`` catches ``RebuildError`` once.

===========  ==========================================================
exit code    meaning
===========  ==========================================================
0            success
1            a check found problems (unmet floor, digest mismatch, ...)
2            bad input or usage (recipe, spec, manifest, arguments)
3            environment (no Docker engine, image missing, tool missing)
10           the build failed (rpmbuild or a step in the container)
130          interrupted (Ctrl-C / SIGTERM)
===========  ==========================================================
"""

from __future__ import annotations


class RebuildError(Exception):
    """Base class: an expected failure with a one-line message."""

    exit_code = 2

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: extra lines printed after the message (log tail, a table)
        self.detail = detail


class CheckFailed(RebuildError):
    """A check ran and found problems."""

    exit_code = 1


class UsageError(RebuildError):
    """Bad input: a file, a value or an argument is wrong."""

    exit_code = 2


class ConfigError(UsageError):
    """A YAML file (recipe, target, manifest) does not validate."""


class EnvironmentProblem(RebuildError):
    """Something the machine must provide is missing."""

    exit_code = 3


class BuildFailed(RebuildError):
    """A step inside the build container failed."""

    exit_code = 10


class Interrupted(RebuildError):
    exit_code = 130


EXIT_CODES = {
    0: "success",
    1: "a check found problems",
    2: "bad input or usage",
    3: "environment: no Docker engine, image missing, tool missing",
    10: "build failed",
    130: "interrupted",
}
