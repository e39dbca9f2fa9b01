"""Dependency floors: a YAML manifest of minimum versions, checked against an rpmdb.

The installed versions come from one ``rpm -qa --qf`` query in a container, the
host's rpmdb, or a saved list; the library returns results and never prints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rebuild.errors import CheckFailed, ConfigError, EnvironmentProblem, RebuildError, UsageError
from rebuild.evr import EVR, compare_evr, parse

# In a container stdout and stderr arrive as one stream: the query tags its own lines.
QUERY_TAG = "rebuild-pkg"
QUERY_FORMAT = QUERY_TAG + " %{NAME} %{EPOCH} %{VERSION} %{RELEASE}\\n"
OK, TOO_OLD, MISSING = "ok", "too old", "missing"
_ORDER = {MISSING: 0, TOO_OLD: 1, OK: 2}


@dataclass(frozen=True)
class Floor:
    name: str
    minimum: EVR
    line: int


@dataclass(frozen=True)
class FloorResult:
    name: str
    required: str
    installed: str | None
    status: str

    def as_dict(self) -> dict:
        return {"name": self.name, "required": self.required, "installed": self.installed, "status": self.status}


def load_floors(path: Path) -> list[Floor]:
    """Read a floors manifest; every problem is one line with the file and line number."""
    # imported here: with --image, YAML loads while the query container starts (load_and_query)
    from rebuild.config import check_keys, expect_mapping, load_yaml

    path = Path(path)
    data = expect_mapping(load_yaml(path), path, "a floors manifest", 1)
    check_keys(data, ("floors",), path, "the floors manifest", required=("floors",))
    floors = expect_mapping(data["floors"], path, "floors", data.line_of("floors"))
    out = []
    for name, value in floors.items():
        line = floors.line_of(name)
        if not name or any(ch.isspace() for ch in name):
            raise ConfigError(f"{path}:{line}: package name {name!r} may not contain spaces")
        if not isinstance(value, str):
            raise ConfigError(f"{path}:{line}: {name}: the floor must be a version string like \"0.9.6b-32.7\"")
        try:
            minimum = parse(value)
        except ValueError as exc:
            raise ConfigError(f"{path}:{line}: {name}: bad version {value!r}: {exc}") from None
        out.append(Floor(name, minimum, line))
    return out


def parse_installed(text: str, source: str) -> dict[str, list[EVR]]:
    """Parse ``NAME EPOCH VERSION RELEASE`` lines (EPOCH may be ``(none)``)."""
    installed: dict[str, list[EVR]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 4:
            raise UsageError(
                f"{source}:{number}: expected 'NAME EPOCH VERSION RELEASE' (as rpm -qa --qf prints), got {raw.strip()!r}"
            )
        name, epoch, version, release = fields
        if epoch != "(none)" and not epoch.isdigit():
            raise UsageError(f"{source}:{number}: epoch {epoch!r} must be a number or (none)")
        try:
            evr = parse(f"{'' if epoch == '(none)' else epoch + ':'}{version}-{release}")
        except ValueError as exc:
            raise UsageError(f"{source}:{number}: bad version in {raw.strip()!r}: {exc}") from None
        installed.setdefault(name, []).append(evr)
    return installed


def installed_from_file(path: Path) -> dict[str, list[EVR]]:
    try:
        text = Path(path).read_text(errors="strict")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read as text: {exc}") from None
    return parse_installed(text, str(path))


def installed_from_host() -> dict[str, list[EVR]]:
    """The host's rpmdb, read with librpm."""
    import rpm

    installed: dict[str, list[EVR]] = {}
    try:
        for hdr in rpm.TransactionSet().dbMatch():
            epoch = hdr[rpm.RPMTAG_EPOCH]
            evr = EVR(int(epoch) if epoch is not None else None, str(hdr[rpm.RPMTAG_VERSION]), str(hdr[rpm.RPMTAG_RELEASE]))
            installed.setdefault(str(hdr[rpm.RPMTAG_NAME]), []).append(evr)
    except rpm.error as exc:
        raise EnvironmentProblem(f"cannot read the host's rpmdb: {exc}") from None
    return installed


def installed_from_container(box, wrap=lambda argv: argv, user: str | None = None) -> dict[str, list[EVR]]:
    """One ``rpm -qa --qf`` query in the running container *box*, whatever the manifest's size."""
    chunks: list[bytes] = []
    code = box.run(wrap(["rpm", "-qa", "--qf", QUERY_FORMAT]), user=user, output=chunks.append)
    return _parse_query(code, b"".join(chunks))


def installed_from_image(engine, image: str, wrap=lambda argv: argv,
                         meanwhile: Callable[[], None] | None = None) -> dict[str, list[EVR]]:
    """One ``rpm -qa --qf`` query as the only process of a fresh container of *image*
    (*meanwhile* runs while the engine starts it)."""
    code, output = engine.run_once(image, wrap(["rpm", "-qa", "--qf", QUERY_FORMAT]), meanwhile=meanwhile)
    return _parse_query(code, output)


def load_and_query(manifest: Path, engine, image: Callable[[], str],
                   wrap=lambda argv: argv) -> tuple[list[Floor], dict[str, list[EVR]]]:
    """The floors of *manifest* and the installed versions of the image *image()* names.

    The manifest loads while the engine starts the query container. A bad manifest still wins
    over a missing engine or image (the user's input comes first); the container is removed
    before this returns or raises."""
    loaded: list[list[Floor]] = []
    try:
        installed = installed_from_image(engine, image(), wrap, meanwhile=lambda: loaded.append(load_floors(manifest)))
    except RebuildError:
        if not loaded:
            load_floors(manifest)  # raises the manifest's own error, if it has one
        raise
    return loaded[0], installed


def _parse_query(code: int, output: bytes) -> dict[str, list[EVR]]:
    text = output.decode(errors="replace")
    tagged = "\n".join(line[len(QUERY_TAG) + 1:] for line in text.splitlines() if line.startswith(QUERY_TAG + " "))
    if code != 0:
        first = text.strip().splitlines()[:1]
        raise EnvironmentProblem(
            f"rpm -qa failed in the image (exit {code}){': ' + first[0] if first else ''};"
            " does the image have an rpm that can read its rpmdb?"
        )
    return parse_installed(tagged, "rpm -qa output")


def check(floors: list[Floor], installed: dict[str, list[EVR]]) -> list[FloorResult]:
    """Each floor's status (the newest installed version counts), problems first."""
    results = []
    for floor in floors:
        versions = installed.get(floor.name, [])
        if not versions:
            results.append(FloorResult(floor.name, str(floor.minimum), None, MISSING))
            continue
        newest = versions[0]
        for evr in versions[1:]:
            if compare_evr(evr, newest) > 0:
                newest = evr
        status = OK if compare_evr(newest, floor.minimum) >= 0 else TOO_OLD
        results.append(FloorResult(floor.name, str(floor.minimum), str(newest), status))
    return sorted(results, key=lambda r: (_ORDER[r.status], r.name))


def format_table(results: list[FloorResult]) -> str:
    rows = [("NAME", "REQUIRED", "INSTALLED", "STATUS")]
    rows += [(r.name, ">= " + r.required, r.installed or "-", r.status) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    bad = sum(r.status != OK for r in results)
    missing = sum(r.status == MISSING for r in results)
    old = sum(r.status == TOO_OLD for r in results)
    summary = (
        f"{len(results)} floors: all met"
        if not bad
        else f"{len(results)} floors: {len(results) - bad} met, {old} too old, {missing} missing"
    )
    return "\n".join(lines + [summary])


def check_in_container(floors_path: Path, target, box, manifest: dict, log, *, skip: bool) -> None:
    """The build's preflight: stop with the table (exit 1) unless every floor is met or *skip*."""
    from rebuild.rpmfile import sha256_file

    floors = load_floors(floors_path)
    with log.step(f"check {len(floors)} dependency floors ({floors_path.name})"):
        results = check(floors, installed_from_container(box, target.wrap))
    unmet = [r for r in results if r.status != OK]
    manifest["floors"] = {
        "manifest": str(floors_path),
        "sha256": sha256_file(floors_path),
        "skipped": skip,
        "results": [r.as_dict() for r in results],
    }
    if unmet and skip:
        log.warn(f"{len(unmet)} floors not met; building anyway (--skip-deps-check, recorded in manifest.json)")
    elif unmet:
        raise CheckFailed(
            f"the build root does not meet {len(unmet)} of {len(results)} floors in {floors_path}"
            " (--skip-deps-check builds anyway)",
            detail=format_table(results),
        )


def results_json(results: list[FloorResult]) -> str:
    return json.dumps([r.as_dict() for r in results], indent=2)
