"""Recipes rebuild writes: the recipe a bare `rebuild build foo.src.rpm --target T` implies, and the one
`rebuild init foo.src.rpm` writes to specs/<name>.yaml for a person to finish.

Both pin the SRPM's sha256 and name its URL; `init` lists the spec's %define/%global macros as
commented candidates for spec.macros, marking the ones the Release tag uses (like errata).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from rebuild.config.recipe import Recipe, check_srpm_name, load_recipe
from rebuild.errors import UsageError
from rebuild.files import atomic_write, sha256_file
from rebuild.pipeline.spec import release_uses
from rebuild.systems.urls import check_url, file_name, local_path, redact, redact_text

IMPLIED = ".implied"  # under --out: the recipes bare SRPMs imply


@dataclass(frozen=True)
class SourceRef:
    """An SRPM the user named: a local file or a URL, with its file name."""

    text: str
    local: Path | None
    url: str
    name: str


def source_ref(text: str) -> SourceRef:
    problem = check_url(text)
    if problem:
        raise UsageError(f"{redact(text)}: {problem}")
    local = local_path(text)
    name = local.name if local is not None else file_name(text)
    problem = check_srpm_name(name)
    if problem:
        raise UsageError(f"{redact(text)}: {problem}")
    if local is not None:
        if not local.is_file():
            raise UsageError(f"{local}: no such source RPM")
        local = local.resolve()
        return SourceRef(text, local, local.as_uri(), name)
    return SourceRef(text, None, text, name)


def name_of(srpm_name: str) -> str:
    """The package name in NAME-VERSION-RELEASE.src.rpm."""
    stem = srpm_name[: -len(".src.rpm")]
    parts = stem.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else stem


def _recipe_data(ref: SourceRef, target: str, sha256: str | None, macros: dict[str, str],
                 floors: Path | None) -> dict:
    data: dict = {"name": name_of(ref.name), "source": {"srpm": ref.name, "urls": [ref.url]}, "target": target}
    if sha256:
        data["source"]["sha256"] = sha256
    if macros:
        data["spec"] = {"macros": dict(macros)}
    if floors is not None:
        data["floors"] = str(Path(floors).resolve())
    return data


def is_srpm(ref: str) -> bool:
    """Whether a command-line argument names a source package (a path, or a URL whose path ends in .src.rpm,
    whatever its query says) rather than a recipe."""
    return urlsplit(ref).path.endswith(".src.rpm") if "://" in ref else ref.endswith(".src.rpm")


def implied_recipe(text: str, target: str, sets: tuple[tuple[str, str], ...], floors: Path | None,
                   sha256: str | None, folder: Path) -> tuple[Recipe, str]:
    """The recipe `rebuild build SRPM --target T` implies, written under *folder* (the output's .implied/) so
    its lock and paths work as a recipe's do; and its YAML, which the manifest records."""
    ref = source_ref(text)
    if ref.local is None and not sha256:
        raise UsageError(f"{redact(text)}: a downloaded SRPM is built only with a pin: give --sha256 HEX, or write a"
                         f" recipe with `rebuild init {redact(text)}` (it pins what it downloads)")
    if ref.local is not None and sha256 is None:
        sha256 = sha256_file(ref.local)
    data = _recipe_data(ref, target, sha256, dict(sets), floors)
    text_yaml = yaml.safe_dump(data, sort_keys=False)
    folder.mkdir(parents=True, exist_ok=True)
    # named by the SRPM's file name and digest: two SRPMs of one name (less-332-8cl, less-332-9cl) in one
    # command each get their own recipe, and the evidence of each names its own input
    path = folder / f"{ref.name.removesuffix('.rpm').removesuffix('.src')}-{sha256[:12]}.yaml"
    # on disk (and so in the evidence) with a URL's credentials redacted; the recipe built keeps them in memory
    stored = redact_text(text_yaml)
    atomic_write(path, stored)
    recipe = load_recipe(path)
    if stored != text_yaml:
        recipe = replace(recipe, source=replace(recipe.source, urls=tuple(data["source"]["urls"])))
    return recipe, stored


def init_recipe(text: str, target: str, output: Path | None, specs: Path, sha256: str, spec_text: str | None) -> Path:
    """specs/<name>.yaml for the SRPM *text*: pinned, its URL, the target, and the spec's macros as candidates."""
    ref = source_ref(text)
    path = output or specs / f"{name_of(ref.name)}.yaml"
    if path.exists():
        raise UsageError(f"{path} exists; give --output for another file, or remove it first")
    url = ref.url
    if ref.local is not None:  # a path relative to the recipe, so the folder can move with the SRPM
        try:
            url = str(Path(ref.local).relative_to(path.parent.resolve()))
        except ValueError:
            url = ref.local.as_uri()
    data = _recipe_data(SourceRef(text, ref.local, url, ref.name), target, sha256, {}, None)
    body = yaml.safe_dump(data, sort_keys=False)
    body += _macro_candidates(spec_text) if spec_text else ""
    header = (f"# Written by `rebuild init` for {ref.name} (sha256 pinned as downloaded: check it out of band).\n"
              "# Build it with `rebuild build " + str(path) + "`.\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, header + body)
    load_recipe(path)  # what it wrote loads
    return path


def _macro_candidates(spec_text: str) -> str:
    """The spec's %define/%global macros as a commented spec.macros section."""
    from specfile.macro_definitions import MacroDefinitions

    seen: dict[str, str] = {}
    for md in MacroDefinitions.parse(spec_text.splitlines()):
        name = md.name.split("(")[0]
        if name not in seen and "\n" not in md.body and not md.commented_out:
            seen[name] = md.body
    if not seen:
        return ""
    lines = ["# spec:", "#   macros:                    # the spec's own %define/%global: set any to change it"]
    for name, body in seen.items():
        note = "  # decides the Release" if release_uses(spec_text, [name]) else ""
        lines.append(f"#     {name}: {_quote(body)}{note}")
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    """Single-quoted, so 1.10 stays 1.10 for any YAML reader."""
    return "'" + value.replace("'", "''") + "'"
