"""Recipes (``specs/<name>.yaml``): what to rebuild, validated into frozen dataclasses.

Everything a recipe names is checked when it loads, before any engine is asked for an image:
the SRPM's file name (a bare name, never a path), the URLs, the key files, the floors manifest
(parsed here) and the checks.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from rebuild.config.floors import FloorsManifest, load_manifest
from rebuild.config.yamlfile import (
    Mapping,
    check_keys,
    expect_mapping,
    expect_str,
    expect_str_list,
    parse_yaml,
    read_yaml_bytes,
)
from rebuild.errors import ConfigError, RebuildError, UsageError
from rebuild.files import SAFE_NAME, read_user_file
from rebuild.systems.urls import check_url

# a macro's name, with the options of a parametric macro where it is one: errata, foo(), foo(a:b)
MACRO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\([A-Za-z0-9:-]*\))?$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_PATCH = 16 << 20
_SUFFIX = re.compile(r"^[A-Za-z0-9._+~^]+$")


@dataclass(frozen=True)
class Source:
    """Where the SRPM comes from. A URL without a scheme is a path relative to the recipe."""

    srpm: str
    urls: tuple[str, ...]
    sha256: str | None = None
    gpg_keys: tuple[Path, ...] = ()


@dataclass(frozen=True)
class SpecPatch:
    """A patch file beside the recipe, added to the spec as ``PatchN:`` and applied in %prep with ``-pLEVEL``."""

    path: Path
    level: int
    sha256: str  # of the file as the recipe was loaded: part of the build key and the evidence


@dataclass(frozen=True)
class SpecEdits:
    macros: tuple[tuple[str, str], ...] = ()
    add_macros: tuple[tuple[str, str], ...] = ()
    release_suffix: str = ""
    patches: tuple[SpecPatch, ...] = ()
    buildrequires_add: tuple[str, ...] = ()
    buildrequires_remove: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.macros or self.add_macros or self.release_suffix or self.patches
                    or self.buildrequires_add or self.buildrequires_remove)

    def as_dict(self) -> dict:
        out = {
            "macros": dict(self.macros),
            "add_macros": dict(self.add_macros),
            "release_suffix": self.release_suffix,
        }
        # only where used: recipes without a backport keep the build keys they had
        if self.patches:
            out["patches"] = [{"file": p.path.name, "level": p.level, "sha256": p.sha256} for p in self.patches]
        if self.buildrequires_add or self.buildrequires_remove:
            out["buildrequires"] = {"add": list(self.buildrequires_add), "remove": list(self.buildrequires_remove)}
        return out


@dataclass(frozen=True)
class Check:
    name: str
    run: tuple[str, ...]
    expect_stdout: str | None = None


@dataclass(frozen=True)
class Recipe:
    path: Path
    name: str
    source: Source
    target: str
    spec: SpecEdits = field(default_factory=SpecEdits)
    floors: FloorsManifest | None = None
    checks: tuple[Check, ...] = ()
    #: "root" where the recipe builds as root (1999 Makefiles that `install -o root`), else "" (the target's user)
    build_user: str = ""
    #: the recipe's text as it was read: what the manifest and provenance record, whatever the file says later
    text: str = field(default="", repr=False, compare=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def resolve(self, ref: str) -> str:
        """A URL as given, or a path made absolute against the recipe's folder."""
        if urlparse(ref).scheme:
            return ref
        return str((self.path.parent / ref).resolve())


_TOP_KEYS = ("name", "source", "spec", "target", "floors", "checks", "build")
_SOURCE_KEYS = ("srpm", "urls", "sha256", "gpg_keys")
_SPEC_KEYS = ("macros", "add_macros", "release_suffix", "patches", "buildrequires")
_PATCH_KEYS = ("file", "level")
_BUILDREQUIRES_KEYS = ("add", "remove")
_BUILD_KEYS = ("user",)
# a BuildRequires entry: a name (or capability) with an optional version comparison
_BUILDREQUIRES = re.compile(r"^[A-Za-z0-9_/.+()-]+(?:\s*(?:<|>|<=|>=|=)\s*[A-Za-z0-9_.:+~^-]+)?$")
_CHECK_KEYS = ("name", "run", "expect_stdout")


def check_release_suffix(suffix: str) -> str | None:
    """Why *suffix* cannot be appended to a Release tag, or None when it can (recipe and ``patch`` alike)."""
    if suffix and not _SUFFIX.match(suffix):
        return f"release suffix {suffix!r} may hold only letters, digits and . _ + ~ ^"
    return None


def check_srpm_name(name: str) -> str | None:
    """Why *name* is not a bare source RPM file name, or None."""
    if not name.endswith(".src.rpm"):
        return f"{name!r} must name a .src.rpm file"
    if "/" in name or "\\" in name or not SAFE_NAME.match(name):
        return f"{name!r} must be a bare file name (letters, digits, . _ + ~ ^ -), not a path"
    return None


def load_recipe(path: Path) -> Recipe:
    """Read and validate a recipe; every error names the file and line."""
    path = Path(path)
    raw = read_yaml_bytes(path, "recipe")
    data = parse_yaml(raw, path, "recipe")
    top = expect_mapping(data, path, "a recipe", 1)
    check_keys(top, _TOP_KEYS, path, "the recipe", required=("name", "source", "target"))
    name = expect_str(top["name"], path, "name", top.line_of("name"))
    if not SAFE_NAME.match(name):
        raise ConfigError(f"{path}:{top.line_of('name')}: name {name!r} may hold only letters, digits and . _ + ~ ^ -")
    target = expect_str(top["target"], path, "target", top.line_of("target"))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", target):
        raise ConfigError(f"{path}:{top.line_of('target')}: target {target!r} is not a target name")
    return Recipe(
        path=path.resolve(),
        name=name,
        source=_source(top, path),
        target=target,
        spec=_spec(top, path),
        floors=_floors(top, path),
        checks=_checks(top, path),
        build_user=_build_user(top, path),
        text=raw.decode("utf-8"),
    )


def _source(top: Mapping, path: Path) -> Source:
    src = expect_mapping(top["source"], path, "source", top.line_of("source"))
    check_keys(src, _SOURCE_KEYS, path, "source", required=("urls",))
    urls = expect_str_list(src["urls"], path, "source.urls", src.line_of("urls"))
    if not urls:
        raise ConfigError(f"{path}:{src.line_of('urls')}: source.urls is empty; list at least one URL or path")
    for url in urls:
        problem = check_url(url)
        if problem:
            raise ConfigError(f"{path}:{src.line_of('urls')}: source.urls: {problem}")
    srpm = src.get("srpm") or Path(urlparse(urls[0]).path).name
    srpm = expect_str(srpm, path, "source.srpm", src.line_of("srpm"))
    problem = check_srpm_name(srpm)
    if problem:
        raise ConfigError(f"{path}:{src.line_of('srpm')}: source.srpm {problem}")
    sha = src.get("sha256")
    if sha is not None:
        sha = expect_str(sha, path, "source.sha256", src.line_of("sha256")).lower()
        if not _SHA256.match(sha):
            raise ConfigError(f"{path}:{src.line_of('sha256')}: source.sha256 must be 64 hex digits")
    keys = expect_str_list(src.get("gpg_keys"), path, "source.gpg_keys", src.line_of("gpg_keys"))
    resolved = tuple((path.parent / k).resolve() for k in keys)
    for ref, key in zip(keys, resolved, strict=False):
        try:
            read_user_file(key, "key file", max_bytes=1 << 20)
        except RebuildError as exc:
            raise ConfigError(f"{path}:{src.line_of('gpg_keys')}: source.gpg_keys {ref!r}: {exc.message}") from None
    return Source(srpm=srpm, urls=urls, sha256=sha, gpg_keys=resolved)


def macro_pairs(values: Mapping | dict, where: str) -> tuple[tuple[str, str], ...]:
    """(name, body) pairs from a mapping, each name a macro name and each body one line."""
    out = []
    for name, body in values.items():
        if not isinstance(name, str) or not MACRO_NAME.match(name):
            raise UsageError(f"{where}: {name!r} is not a macro name (letters, digits, _)")
        if isinstance(body, bool) or body is None or not isinstance(body, str):
            raise UsageError(f"{where}.{name} must be a string value; quote it")
        if "\n" in body or "\r" in body:
            raise UsageError(f"{where}.{name} must be one line")
        out.append((name, body))
    return tuple(out)


def _macro_map(spec: Mapping, key: str, path: Path) -> tuple[tuple[str, str], ...]:
    raw = expect_mapping(spec.get(key), path, f"spec.{key}", spec.line_of(key))
    out = []
    for name, body in raw.items():
        try:
            out += macro_pairs({name: body}, f"{path}:{raw.line_of(name)}: spec.{key}")
        except UsageError as exc:
            raise ConfigError(exc.message) from None
    return tuple(out)


def _spec(top: Mapping, path: Path) -> SpecEdits:
    spec = expect_mapping(top.get("spec"), path, "spec", top.line_of("spec"))
    check_keys(spec, _SPEC_KEYS, path, "spec")
    suffix = spec.get("release_suffix") or ""
    suffix = expect_str(suffix, path, "spec.release_suffix", spec.line_of("release_suffix"), empty_ok=True)
    problem = check_release_suffix(suffix)
    if problem:
        raise ConfigError(f"{path}:{spec.line_of('release_suffix')}: spec.{problem.replace('release suffix', 'release_suffix', 1)}")
    add, remove = _buildrequires(spec, path)
    return SpecEdits(
        macros=_macro_map(spec, "macros", path),
        add_macros=_macro_map(spec, "add_macros", path),
        release_suffix=suffix,
        patches=_patches(spec, path),
        buildrequires_add=add,
        buildrequires_remove=remove,
    )


def _patches(spec: Mapping, path: Path) -> tuple[SpecPatch, ...]:
    raw = spec.get("patches")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{path}:{spec.line_of('patches')}: spec.patches must be a list of {{file: F, level: N}}")
    patches = []
    for item, line in zip(raw, raw.item_lines, strict=False):
        item = expect_mapping(item, path, "a patch", line)
        check_keys(item, _PATCH_KEYS, path, "a patch", required=("file",))
        name = expect_str(item["file"], path, "patch file", item.line_of("file"))
        file = (path.parent / name).resolve()
        if "/" in name or not SAFE_NAME.match(name) or not file.is_file():
            raise ConfigError(f"{path}:{item.line_of('file')}: patch {name!r} must be a file beside the recipe"
                              f" (looked at {file})")
        level = str(item.get("level", 1))
        if not level.isdigit() or int(level) > 9:
            raise ConfigError(f"{path}:{item.line_of('level')}: patch level must be a number from 0 to 9 (-pN)")
        data = read_user_file(file, "patch file", max_bytes=MAX_PATCH)
        patches.append(SpecPatch(file, int(level), hashlib.sha256(data).hexdigest()))
    if len({p.path.name for p in patches}) != len(patches):
        raise ConfigError(f"{path}:{spec.line_of('patches')}: a patch file is listed twice")
    return tuple(patches)


def _buildrequires(spec: Mapping, path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if spec.get("buildrequires") is None:
        return (), ()
    section = expect_mapping(spec["buildrequires"], path, "spec.buildrequires", spec.line_of("buildrequires"))
    check_keys(section, _BUILDREQUIRES_KEYS, path, "spec.buildrequires")
    lists = []
    for key in _BUILDREQUIRES_KEYS:
        items = expect_str_list(section.get(key), path, f"spec.buildrequires.{key}", section.line_of(key))
        for item in items:
            if not _BUILDREQUIRES.match(item) or (key == "remove" and " " in item.strip()):
                raise ConfigError(f"{path}:{section.line_of(key)}: spec.buildrequires.{key}: {item!r} is not"
                                  + (" a package name" if key == "remove" else " NAME or NAME >= VERSION"))
        lists.append(tuple(" ".join(i.split()) for i in items))
    return lists[0], lists[1]


def _build_user(top: Mapping, path: Path) -> str:
    if top.get("build") is None:
        return ""
    build = expect_mapping(top["build"], path, "build", top.line_of("build"))
    check_keys(build, _BUILD_KEYS, path, "build")
    user = expect_str(build.get("user", ""), path, "build.user", build.line_of("user"), empty_ok=True)
    if user not in ("", "root"):
        raise ConfigError(f"{path}:{build.line_of('user')}: build.user may only be root (for Makefiles that"
                          " `install -o root`); leave it out to build as the target's user")
    return user


def _floors(top: Mapping, path: Path) -> FloorsManifest | None:
    if top.get("floors") is None:
        return None
    ref = expect_str(top["floors"], path, "floors", top.line_of("floors"))
    floors = (path.parent / ref).resolve()
    if not floors.is_file():
        raise ConfigError(f"{path}:{top.line_of('floors')}: floors manifest {ref!r} not found (looked at {floors})")
    return load_manifest(floors)


def _checks(top: Mapping, path: Path) -> tuple[Check, ...]:
    raw = top.get("checks")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{path}:{top.line_of('checks')}: checks must be a list")
    checks = []
    seen: set[str] = set()
    for item, line in zip(raw, raw.item_lines, strict=False):
        item = expect_mapping(item, path, "a check", line)
        check_keys(item, _CHECK_KEYS, path, "a check", required=("name", "run"))
        name = expect_str(item["name"], path, "check name", item.line_of("name"))
        if name in seen:
            raise ConfigError(f"{path}:{item.line_of('name')}: check {name!r} is listed twice")
        seen.add(name)
        if isinstance(item["run"], str):
            raise ConfigError(f"{path}:{item.line_of('run')}: check {name}: run must be a list of arguments"
                              f" (no shell): [{', '.join(item['run'].split())}] or [sh, -c, '...']")
        run = expect_str_list(item["run"], path, f"check {name}: run", item.line_of("run"), single_ok=False)
        if not run:
            raise ConfigError(f"{path}:{item.line_of('run')}: check {name}: run is empty")
        expect = item.get("expect_stdout")
        if expect is not None:
            expect = expect_str(expect, path, f"check {name}: expect_stdout", item.line_of("expect_stdout"))
            try:
                re.compile(expect)
            except re.error as exc:
                raise ConfigError(f"{path}:{item.line_of('expect_stdout')}: check {name}: bad regex: {exc}") from None
        checks.append(Check(name=name, run=run, expect_stdout=expect))
    return tuple(checks)
