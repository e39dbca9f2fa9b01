"""The result of a build, typed: what ``build`` fills, the build index, ``publish`` and ``verify`` read.

A result folder holds ``RPMS/<arch>/*.rpm``, ``SRPMS/*.src.rpm``, ``build.log``, ``state.log``,
``spec.diff`` and ``manifest.json``. ``Manifest`` is the JSON's typed form (frozen dataclasses);
``Manifest.from_json`` validates what it reads, since a result folder may come from a CI job
that is not trusted: every output's ``file`` must be ``RPMS/<arch>/<name>.rpm`` or
``SRPMS/<name>.rpm`` with no separator, ``..`` or control character in any part.
``ResultDir`` reads, verifies and writes a folder. Manifests written before ``schema_version``
existed (version 1) read as they are.
"""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from rebuild.errors import CheckFailed, UsageError
from rebuild.files import SAFE_NAME, atomic_write, read_user_file, sha256_bytes
from rebuild.pipeline.floors import FloorResult, FloorsReport  # made where they are produced
from rebuild.pipeline.resultcheck import attestation_problems, location_problem, output_problem, shape_ok

SCHEMA_VERSION = 2
MANIFEST = "manifest.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BadManifest(UsageError):
    """manifest.json is not a manifest rebuild wrote (exit 2)."""


# ---------------------------------------------------------------- the parts


@dataclass(frozen=True)
class RecipeRef:
    name: str
    path: str
    sha256: str
    #: the recipe's content when it was implied by the command line (build SRPM --target T)
    implied: dict | None = None


@dataclass(frozen=True)
class SrpmInput:
    file: str
    path: str
    urls: tuple[str, ...]
    sha256: str
    size: int
    nevra: str


@dataclass(frozen=True)
class Inputs:
    srpm: SrpmInput


@dataclass(frozen=True)
class TargetInfo:
    name: str
    image: str
    image_id: str
    arch: str
    personality: str | None
    build_command: str
    definition_sha256: str
    build_command_used: str | None = None
    #: rpm tool macros pointed at this root's tools ("%__mkdir /usr/bin/mkdir -> /bin/mkdir")
    redirected_tools: tuple[str, ...] | None = None
    #: the image's content identity (the same on every engine) and the registry reference it came from
    content_id: str | None = None
    registry: str | None = None
    #: the target's rpm, as `rpm --version` says ("4.18.0")
    rpm_version: str | None = None
    #: macros defined on rpmbuild's command line for reproducible output (SOURCE_DATE_EPOCH; rpm >= 4.14)
    build_macros: tuple[str, ...] | None = None
    #: "root" where the recipe built as root (build.user: root); None: the target's own user
    build_user: str | None = None


@dataclass(frozen=True)
class SpecReport:
    file: str
    edits: dict
    changes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    diff_sha256: str | None = None
    release_before: str | None = None
    release_after: str | None = None
    release_check: str | None = None
    buildrequires_after: tuple[str, ...] | None = None
    #: macros the recipe sets to the value the spec already has: nothing to edit, and no Release change implied
    unchanged: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    exit_code: int
    output: str


@dataclass(frozen=True)
class Output:
    file: str
    name: str
    epoch: int | None
    version: str
    release: str
    arch: str
    nevra: str
    source: bool
    size: int
    sha256: str


@dataclass(frozen=True)
class Phase:
    phase: str
    seconds: float
    status: str


@dataclass(frozen=True)
class Manifest:
    rebuild_version: str
    recipe: RecipeRef
    started: str
    inputs: Inputs | None = None
    build_key: str | None = None
    build_key_inputs: dict | None = None
    target: TargetInfo | None = None
    spec: SpecReport | None = None
    floors: FloorsReport | None = None
    #: the build root: the lock of a solved root (packages with sha256), or None
    root: dict | None = None
    outputs: tuple[Output, ...] = ()
    checks: tuple[CheckResult, ...] | None = None
    #: the evidence files beside the RPMs (sbom.spdx.json, provenance.json) and their sha256
    attestations: dict | None = None
    #: the reproducibility check's verdict and what differed (build --check-reproducible)
    reproducibility: dict | None = None
    phases: tuple[Phase, ...] = ()
    finished: str | None = None
    duration_seconds: float | None = None
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        data = _plain(self)
        data = {"schema_version": data.pop("schema_version"), **data}
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> Manifest:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BadManifest(f"{where}: not JSON ({exc})") from None
        return _build(cls, data, where)

    def with_checks(self, checks: list[CheckResult]) -> Manifest:
        return replace(self, checks=tuple(checks))


def _plain(value: Any) -> Any:
    """JSON data from the dataclasses; a field that is None is left out (the JSON stays as it was before
    the types), free-form dicts (the build key's inputs) are kept as they are."""
    if is_dataclass(value):
        return {f.name: _plain(v) for f in fields(value)
                if (v := getattr(value, f.name)) is not None or f.name in _KEEP_NONE}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# keys whose None is meaningful (a missing floor's installed version; no epoch; no personality)
_KEEP_NONE = {"installed", "epoch", "personality"}


# ---------------------------------------------------------------- validation of what is read


def _build(cls, data: Any, where: str):
    """An instance of the dataclass *cls* from JSON *data*, each field checked against its type."""
    if not isinstance(data, dict):
        raise BadManifest(f"{where}: expected an object, found {type(data).__name__}")
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise BadManifest(f"{where}: missing {f.name!r}")
            continue
        kwargs[f.name] = _value(f.type, data[f.name], f"{where}: {f.name}")
    if cls is Manifest:
        kwargs.setdefault("schema_version", 1)  # written before the field existed
        if not isinstance(kwargs["schema_version"], int) or kwargs["schema_version"] > SCHEMA_VERSION:
            raise BadManifest(f"{where}: schema_version {data.get('schema_version')!r} is newer than this rebuild"
                              f" reads ({SCHEMA_VERSION}); upgrade rebuild")
    try:
        instance = cls(**kwargs)
    except TypeError as exc:
        raise BadManifest(f"{where}: {exc}") from None
    if cls is Output:
        _check_output(instance, where)
    return instance


_TYPES = {"str": str, "int": int, "bool": bool, "float": (int, float), "dict": dict}
_CLASSES: dict[str, type] = {}


def _value(annotation: str, value: Any, where: str) -> Any:
    annotation = annotation.replace(" ", "")
    if annotation.endswith("|None"):
        return None if value is None else _value(annotation[: -len("|None")], value, where)
    if annotation.startswith("tuple[") and annotation.endswith(",...]"):
        if not isinstance(value, list):
            raise BadManifest(f"{where}: expected a list, found {type(value).__name__}")
        inner = annotation[len("tuple["):-len(",...]")]
        return tuple(_value(inner, item, f"{where}[{i}]") for i, item in enumerate(value))
    if annotation in _CLASSES:
        return _build(_CLASSES[annotation], value, where)
    expected = _TYPES[annotation]
    if isinstance(value, bool) and annotation != "bool" or not isinstance(value, expected):
        raise BadManifest(f"{where}: expected {annotation}, found {type(value).__name__}")
    if annotation == "str" and any(not ch.isprintable() for ch in value if ch not in "\n\t"):
        raise BadManifest(f"{where}: holds control characters")
    return value


def _check_output(output: Output, where: str) -> None:
    parts = output.file.split("/")
    if not shape_ok(output.file):
        raise BadManifest(f"{where}: file {output.file!r} is not RPMS/<arch>/<name>.rpm or SRPMS/<name>.rpm")
    if output.source != (parts[0] == "SRPMS"):
        raise BadManifest(f"{where}: {output.file!r} and source={output.source} disagree")
    for value in (output.name, output.version, output.release, output.arch):
        if not SAFE_NAME.match(value):
            raise BadManifest(f"{where}: {value!r} is not a package name, version, release or arch")
    if not _SHA256.match(output.sha256) or output.size < 0:
        raise BadManifest(f"{where}: bad sha256 or size for {output.file}")


for _cls in (RecipeRef, SrpmInput, Inputs, TargetInfo, SpecReport, FloorResult, FloorsReport, CheckResult, Output, Phase):
    _CLASSES[_cls.__name__] = _cls


# ---------------------------------------------------------------- a result folder


@dataclass
class ResultDir:
    """A result folder: ``read`` validates manifest.json, ``verify`` checks every output against it."""

    path: Path
    _manifest: Manifest | None = field(default=None, repr=False)
    manifest_sha256: str | None = field(default=None, repr=False)  # of the bytes ``read`` parsed

    def read(self) -> Manifest:
        where = self.path / MANIFEST

        try:
            raw = read_user_file(where, "manifest", max_bytes=32 << 20)
        except UsageError as exc:
            if not self.path.is_dir():
                raise UsageError(f"{self.path}: no such result folder") from None
            if not where.exists():
                raise UsageError(f"{self.path}: no manifest.json; is this a result folder of `rebuild build`?") from None
            raise BadManifest(exc.message) from None
        self._manifest = Manifest.from_json(raw.decode("utf-8", errors="replace"), str(where))
        self.manifest_sha256 = sha256_bytes(raw)
        return self._manifest

    @property
    def manifest(self) -> Manifest:
        return self._manifest if self._manifest is not None else self.read()

    def output_path(self, output: Output) -> Path:
        """The output's file: a regular file (not a link) inside the folder, or CheckFailed."""
        problem = location_problem(self.path, output.file)
        if problem:
            raise CheckFailed(f"{self.path}: {problem}")
        return self.path / output.file

    def verify(self) -> Manifest:
        """The manifest, once every output is a regular file in the folder with its recorded size and sha256."""
        manifest = self.manifest
        if not manifest.outputs:
            raise BadManifest(f"{self.path / MANIFEST}: lists no outputs")
        for output in manifest.outputs:
            problem = output_problem(self.path, output.file, output.size, output.sha256)
            if problem:
                raise CheckFailed(f"{self.path}: {problem}")
        for problem in attestation_problems(self.path, manifest.attestations or {}):
            raise CheckFailed(f"{self.path}: {problem}")
        return manifest

    def intact(self, key: str | None = None) -> Manifest | None:
        """The verified manifest (made with build key *key*, when given), or None."""
        try:
            manifest = self.read()
            if key is not None and manifest.build_key != key:
                return None
            return self.verify()
        except (UsageError, CheckFailed, OSError):
            return None

    def write(self, manifest: Manifest) -> None:
        atomic_write(self.path / MANIFEST, manifest.to_json(), mode=0o644)
        self._manifest = manifest
