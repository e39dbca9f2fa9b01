"""A result folder's files checked against what its manifest records (standard library only: the no-op
fast path uses it before anything heavier loads; ``ResultDir.verify`` uses it too).

Each output must be ``RPMS/<arch>/<name>.rpm`` or ``SRPMS/<name>.rpm`` (no separator, ``..`` or control
character in a part), a regular file (not a link) whose folder lies inside the result folder, with the
recorded size and sha256; each evidence file (``attestations``) a regular file with its sha256.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from rebuild.files import SAFE_NAME, sha256_file


def shape_ok(file: str) -> bool:
    parts = file.split("/")
    shaped = (len(parts) == 3 and parts[0] == "RPMS") or (len(parts) == 2 and parts[0] == "SRPMS")
    return shaped and all(SAFE_NAME.match(p) for p in parts[1:]) and parts[-1].endswith(".rpm")


def location_problem(directory: Path, file: str) -> str | None:
    """Whether *file* is an output's shape, present, a regular file and inside *directory*; None when it is."""
    if not shape_ok(file):
        return f"{file!r} is not RPMS/<arch>/<name>.rpm or SRPMS/<name>.rpm"
    path = directory / file
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return f"{file} is listed in manifest.json but missing"
    if not os.path.realpath(path.parent).startswith(os.path.realpath(directory) + os.sep):
        return f"{file} lies outside the result folder (a symlinked folder)"
    if not stat.S_ISREG(st.st_mode):
        return f"{file} is not a regular file (a symlink or device?); refusing it"
    return None


def output_problem(directory: Path, file: str, size: int, sha256: str) -> str | None:
    """What is wrong with one output (its place, size or sha256), or None."""
    problem = location_problem(directory, file)
    if problem is None and ((directory / file).stat().st_size != size or sha256_file(directory / file) != sha256):
        problem = f"{file} does not match the sha256 in manifest.json (rebuild it, or find out who changed it)"
    return problem


def attestation_problems(directory: Path, attestations: dict) -> Iterator[str]:
    for name, digest in attestations.items():
        path = directory / str(name)
        if not SAFE_NAME.match(str(name)) or not path.is_file() or path.is_symlink() or sha256_file(path) != digest:
            yield f"{name} does not match the sha256 in manifest.json"
