"""``provenance.json``: an in-toto Statement (v1) with a SLSA Provenance v1 predicate for a result, and
``rebuild verify-provenance``, which checks a statement's shape and every subject's digest against the
files of a result folder or a published repository.

subjects: the built RPMs (by file name) with their sha256. buildDefinition: the recipe (its content and
digest), the SRPM (digest and URLs), the spec edits, the target and its image, the floors' result;
resolvedDependencies: the SRPM, the build root image, and the root's locked packages. runDetails:
rebuild's version, the build key, start and end.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from rebuild import __version__
from rebuild.errors import CheckFailed, UsageError
from rebuild.files import read_user_file, sha256_file
from rebuild.pipeline.result import Manifest, ResultDir

STATEMENT = "https://in-toto.io/Statement/v1"
SLSA = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://rebuild.invalid/buildtypes/srpm-rebuild/v1"
FILE = "provenance.json"


def statement(manifest: Manifest, recipe_text: str) -> dict:
    srpm = manifest.inputs.srpm
    target = manifest.target
    root = manifest.root or {}
    image = root.get("image_id") or target.image_id
    resolved = [{"name": srpm.file, "uri": srpm.urls[0] if srpm.urls else srpm.file, "digest": {"sha256": srpm.sha256}},
                {"name": f"build root {target.image}", "uri": f"docker-image://{target.image}",
                 "digest": {"sha256": image.split(":", 1)[-1]}}]
    for p in (root.get("lock") or {}).get("packages", []):
        entry = {"name": p["filename"], "uri": p["url"], "digest": {"sha256": p["sha256"]}}
        if p.get("origin") == "chain":  # made by an earlier build of the same chain, not taken from a tree
            entry["annotations"] = {"origin": "chain", "builtBy": "rebuild build --chain"}
        resolved.append(entry)
    return {
        "_type": STATEMENT,
        "subject": [{"name": Path(o.file).name, "digest": {"sha256": o.sha256}} for o in manifest.outputs],
        "predicateType": SLSA,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "recipe": {"name": manifest.recipe.name, "sha256": manifest.recipe.sha256, "content": recipe_text},
                    "source": {"srpm": srpm.file, "sha256": srpm.sha256, "urls": list(srpm.urls)},
                    "specEdits": manifest.spec.edits if manifest.spec else {},
                    "target": target.name,
                },
                "internalParameters": {
                    "image": target.image, "imageId": target.image_id, "buildRootImageId": image,
                    "personality": target.personality, "buildCommand": target.build_command_used,
                    "floors": [r.__dict__ for r in manifest.floors.results] if manifest.floors else None,
                    "floorsSkipped": manifest.floors.skipped if manifest.floors else None,
                },
                "resolvedDependencies": resolved,
            },
            "runDetails": {
                "builder": {"id": f"https://rebuild.invalid/rebuild@{__version__}"},
                "metadata": {"invocationId": manifest.build_key, "startedOn": manifest.started,
                             "finishedOn": manifest.finished},
            },
        },
    }


@dataclass(frozen=True)
class SubjectCheck:
    name: str
    status: str  # "ok", "mismatch", "missing"
    detail: str


def _load(path: Path) -> dict:
    raw = read_user_file(path, "provenance statement", max_bytes=16 << 20)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from None
    problems = []
    if not isinstance(data, dict):
        raise UsageError(f"{path}: not an in-toto statement (a JSON object)")
    if data.get("_type") != STATEMENT:
        problems.append(f"_type is {data.get('_type')!r}, not {STATEMENT}")
    if data.get("predicateType") != SLSA:
        problems.append(f"predicateType is {data.get('predicateType')!r}, not {SLSA}")
    subjects = data.get("subject")
    if not isinstance(subjects, list) or not subjects:
        problems.append("no subjects")
    else:
        for s in subjects:
            if not (isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("digest"), dict)
                    and isinstance(s["digest"].get("sha256"), str) and len(s["digest"]["sha256"]) == 64):
                problems.append(f"subject {str(s)[:80]!r} has no name and sha256 digest")
    predicate = data.get("predicate")
    if not (isinstance(predicate, dict) and isinstance(predicate.get("buildDefinition"), dict)
            and isinstance(predicate.get("runDetails"), dict)
            and isinstance(predicate["buildDefinition"].get("buildType"), str)
            and isinstance(predicate["runDetails"].get("builder"), dict)):
        problems.append("the predicate lacks buildDefinition.buildType or runDetails.builder")
    if problems:
        raise UsageError(f"{path}: not a SLSA v1 provenance statement: {'; '.join(problems)}")
    return data


# what an index.json entry's file may be: ARCH/NAME.rpm or SRPMS/NAME.rpm
_REPO_FILE = re.compile(r"^(SRPMS|[A-Za-z0-9_]+)/[A-Za-z0-9_+~^][A-Za-z0-9._+~^-]*\.rpm$")


def _subject_files(location: Path, repository: bool) -> dict[str, Path]:
    """The files the statements are about, by the name a subject gives, taken from where the folder records
    them (a result's manifest outputs, a repository's index.json entries), never found by name anywhere
    below: an untouched copy elsewhere must not vouch for a tampered file. A name listed twice is refused."""
    if repository:
        try:
            index = json.loads(read_user_file(location / "index.json", "repository index", max_bytes=64 << 20))
            listed = [e["file"] for e in index["packages"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{location / 'index.json'}: not a repository index rebuild wrote ({exc})") from None
        if not all(isinstance(f, str) and _REPO_FILE.match(f) for f in listed):
            raise UsageError(f"{location / 'index.json'}: lists a file that is not ARCH/NAME.rpm or SRPMS/NAME.rpm")
    else:
        listed = [o.file for o in ResultDir(location).read().outputs]
    files: dict[str, Path] = {}
    for rel in listed:
        name = Path(rel).name
        if name in files:
            raise UsageError(f"{location}: {name} is listed twice; refusing to say which one a statement is about")
        files[name] = location / rel
    return files


def verify(location: Path) -> list[SubjectCheck]:
    """Every statement in a result folder (provenance.json) or a repository (provenance/*.json) checked:
    its shape, and each subject's sha256 against the file the folder records under that name (each file hashed
    once). CheckFailed lists what does not match."""
    location = Path(location)
    if (location / FILE).is_file():
        statements, repository = [location / FILE], False
    elif (location / "provenance").is_dir():
        statements, repository = sorted((location / "provenance").glob("*.json")), True
    else:
        raise UsageError(f"{location}: neither a result folder with {FILE} nor a repository with provenance/")
    if not statements:
        raise UsageError(f"{location}: holds no provenance statements")
    files = _subject_files(location, repository)
    digests: dict[Path, str] = {}
    results = []
    for path in statements:
        for subject in _load(path)["subject"]:
            name, want = subject["name"], subject["digest"]["sha256"]
            found = files.get(name)
            if found is None or found.is_symlink() or not found.is_file():
                results.append(SubjectCheck(name, "missing", f"named in {path.name}, not a file {location} records"))
                continue
            digest = digests.get(found) or digests.setdefault(found, sha256_file(found))
            if digest == want:
                results.append(SubjectCheck(name, "ok", digest))
            else:
                results.append(SubjectCheck(name, "mismatch", f"{found} has sha256 {digest}, {path.name} says {want}"))
    return results


def failures(results: list[SubjectCheck]) -> CheckFailed | None:
    bad = [r for r in results if r.status != "ok"]
    if not bad:
        return None
    return CheckFailed(f"{len(bad)} of {len(results)} subjects do not match: "
                       + "; ".join(f"{r.name} ({r.status})" for r in bad[:5]))

