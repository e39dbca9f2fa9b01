"""Dependency floors checked against an rpmdb: the installed versions and the verdict.

The installed versions come from one ``rpm -qa --qf`` query in a container (the image's own
rpm: rpm 4.0.4 and 4.18 cannot read each other's rpmdb), the host's rpmdb, or a saved list.
The manifests themselves are ``rebuild.config.floors``. The library returns results and never
prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rebuild.config.floors import load_floors as load
from rebuild.errors import CheckFailed, EnvironmentProblem, UsageError
from rebuild.files import MAX_TEXT, atomic_write, read_user_file
from rebuild.log import format_table as table
from rebuild.systems.evr import EVR, compare_evr, parse
from rebuild.systems.store import installed_list

if TYPE_CHECKING:
    from rebuild.config.floors import Floor, FloorsManifest

# In a container stdout and stderr arrive as one stream: the query tags its own lines.
QUERY_TAG = "rebuild-pkg"
QUERY_FORMAT = QUERY_TAG + " %{NAME} %{EPOCH} %{VERSION} %{RELEASE} %{ARCH}\\n"
OK, TOO_OLD, MISSING = "ok", "too old", "missing"


@dataclass(frozen=True)
class FloorResult:
    name: str
    required: str
    installed: str | None
    status: str


@dataclass(frozen=True)
class FloorsReport:
    manifest: str
    sha256: str
    skipped: bool
    results: tuple[FloorResult, ...]
_ORDER = {MISSING: 0, TOO_OLD: 1, OK: 2}


def load_floors(path: Path) -> list[Floor]:
    return load(path)


def parse_installed(text: str, source: str) -> dict[str, list[EVR]]:
    """Parse ``NAME EPOCH VERSION RELEASE [ARCH]`` lines (EPOCH may be ``(none)``)."""
    return {name: [evr for evr, _ in versions] for name, versions in parse_inventory(text, source).items()}


def parse_inventory(text: str, source: str) -> dict[str, list[tuple[EVR, str]]]:
    """Each package's versions with their arch ("" where the list has no ARCH column)."""
    installed: dict[str, list[tuple[EVR, str]]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) not in (4, 5):
            raise UsageError(
                f"{source}:{number}: expected 'NAME EPOCH VERSION RELEASE' (as rpm -qa --qf prints), got {raw.strip()[:80]!r}"
            )
        name, epoch, version, release = fields[:4]
        arch = fields[4] if len(fields) == 5 else ""
        if epoch != "(none)" and not epoch.isdigit():
            raise UsageError(f"{source}:{number}: epoch {epoch[:20]!r} must be a number or (none)")
        try:
            evr = parse(f"{'' if epoch == '(none)' else epoch + ':'}{version}-{release}")
        except ValueError as exc:
            raise UsageError(f"{source}:{number}: bad version in {raw.strip()[:80]!r}: {exc}") from None
        installed.setdefault(name, []).append((evr, arch))
    return installed


def installed_from_file(path: Path) -> dict[str, list[EVR]]:
    raw = read_user_file(path, "list of installed packages")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start}); save the list with rpm -qa --qf") from None
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


def parse_query(code: int, output: bytes, inventory: bool = False):
    text = output.decode(errors="replace")
    tagged = "\n".join(line[len(QUERY_TAG) + 1:] for line in text.splitlines() if line.startswith(QUERY_TAG + " "))
    if code != 0:
        first = text.strip().splitlines()[:1]
        raise EnvironmentProblem(
            f"rpm -qa failed in the image (exit {code}){': ' + first[0][:200] if first else ''};"
            " does the image have an rpm that can read its rpmdb?"
        )
    return (parse_inventory if inventory else parse_installed)(tagged, "rpm -qa output")


def installed_in_image(ref: str, engine_factory: Callable[[], object], cache: Path, wrap=lambda argv: argv,
                       expected_id: str | None = None,
                       inspect: Callable[[str], tuple[str, str] | None] | None = None) -> dict[str, list[EVR]]:
    """What *ref*'s rpmdb lists, from ``<cache>/installed/<content identity>`` when this image's list was
    read before (an image never changes, so neither does its list; a re-made image has another identity);
    else one ``rpm -qa`` in a fresh container, stored for next time. *inspect* gives the image's (ID,
    content identity), by default as the engine says.
    *expected_id*: the pinned ID the image must have (check-deps --target)."""
    found = (inspect or (lambda r: _identity(r, engine_factory)))(ref)
    if found is None:
        raise EnvironmentProblem(f"image {ref} is not in the engine (`docker images` lists what is);"
                                 " for a target run `rebuild image TARGET`")
    image_id, identity = found
    if expected_id is not None and image_id != expected_id:
        raise EnvironmentProblem(f"{ref} is {image_id[:19]}, not the pinned {expected_id[:19]}; run"
                                 " `rebuild image TARGET`")
    stored = installed_list(cache, identity)
    if stored.exists():
        return parse_query(0, read_user_file(stored, "installed list", max_bytes=MAX_TEXT))
    code, output = engine_factory().run_once(ref, wrap(["rpm", "-qa", "--qf", QUERY_FORMAT]))
    installed = parse_query(code, output)

    stored.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(stored, output, mode=0o644)
    return installed


def _identity(ref: str, engine_factory) -> tuple[str, str] | None:
    """(image ID, content identity) of *ref*, as the engine says."""
    info = engine_factory().inspect_image(ref)
    return None if info is None else (info.id, info.content_id)


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
    bad = sum(r.status != OK for r in results)
    missing = sum(r.status == MISSING for r in results)
    old = sum(r.status == TOO_OLD for r in results)
    summary = (
        f"{len(results)} floors: all met"
        if not bad
        else f"{len(results)} floors: {len(results) - bad} met, {old} too old, {missing} missing"
    )
    return table(rows, [summary])


def check_in_container(manifest: FloorsManifest, installed: dict[str, list[EVR]], log, *, skip: bool,
                       hint: str = "") -> FloorsReport:
    """The build's preflight on what its root's rpm says is *installed*: the report, or CheckFailed with the
    table (exit 1) unless every floor is met or *skip*. *hint* is added to the failure (how the image was made)."""
    with log.step(f"check {len(manifest.floors)} dependency floors ({manifest.path.name})"):
        results = check(list(manifest.floors), installed)
    report = FloorsReport(str(manifest.path), manifest.sha256, skip, tuple(results))
    unmet = [r for r in results if r.status != OK]
    if unmet and skip:
        log.warn(f"{len(unmet)} floors not met; building anyway (--skip-deps-check, recorded in manifest.json)")
    elif unmet:
        raise CheckFailed(
            f"the build root does not meet {len(unmet)} of {len(results)} floors in {manifest.path}"
            f" (--skip-deps-check builds anyway){hint}",
            detail=format_table(results),
        )
    return report


def results_json(results: list[FloorResult]) -> str:
    return json.dumps([r.__dict__ for r in results], indent=2)

