"""Edits that carry a backport in a recipe: extra patches and BuildRequires added or removed.

``spec.patches`` adds each file as ``PatchN:`` after the main package's last ``Source``/``Patch`` tag and
applies it in ``%prep`` after the last ``%setup``/``%patch`` line with ``%patchN -pLEVEL`` (the spelling
rpm 4.0.4 and rpm 4.18 both read). ``spec.buildrequires`` drops named entries from ``BuildRequires:`` and
``BuildPrereq:`` lines (a line left empty goes) and adds ``BuildRequires:`` lines after the last one. The
lines are edited in place; the diff shows them like any other edit.
"""

from __future__ import annotations

import re

from rebuild.config.recipe import SpecEdits
from rebuild.errors import UsageError

_SECTION = re.compile(r"^%(?:description|package|prep|build|install|check|clean|files|changelog|pre|post|preun|"
                      r"postun|triggerin|triggerun|verifyscript)\b")
_SOURCE_OR_PATCH = re.compile(r"^(?:Source|Patch)\d*\s*:", re.I)
_PATCH_TAG = re.compile(r"^Patch(\d*)\s*:", re.I)
_APPLY = re.compile(r"^\s*%(?:setup|patch\d*|\{setup\}|autosetup|autopatch)\b")
_BUILDREQUIRES = re.compile(r"^((?:BuildRequires|BuildPrereq)\s*:\s*)(.*?)(\s*)$", re.I)
_RELEASE = re.compile(r"^Release\s*:", re.I)
# one entry of a dependency list: NAME, or NAME OP VERSION
_ENTRY = re.compile(r"([^\s,]+)(?:\s*(<=|>=|<|>|=)\s*([^\s,]+))?")


def apply_backport(spec, edits: SpecEdits, result) -> None:
    """Apply the recipe's patches and BuildRequires edits to *spec* (a ``SpecText``), noting each change in
    *result* (an ``EditResult``); UsageError when the spec has no place for them."""
    if edits.buildrequires_remove:
        _remove_buildrequires(spec, edits.buildrequires_remove, result)
    if edits.buildrequires_add:
        _add_buildrequires(spec, edits.buildrequires_add, result)
    if edits.patches:
        _add_patches(spec, edits, result)


def _header_end(spec) -> int:
    """The index of the first section line: the main package's tags are above it."""
    return next((i for i, body in enumerate(spec.bodies) if _SECTION.match(body)), len(spec.bodies))


def _insert(spec, index: int, line: str) -> None:
    spec.bodies.insert(index, line)
    spec.endings.insert(index, spec.newline)


def _add_patches(spec, edits: SpecEdits, result) -> None:
    name = spec.path.name
    end = _header_end(spec)
    numbers = [int(m.group(1) or 0) for body in spec.bodies if (m := _PATCH_TAG.match(body))]
    tags = [i for i in range(end) if _SOURCE_OR_PATCH.match(spec.bodies[i])]
    if not tags:
        raise UsageError(f"{spec.path}: no Source or Patch tag in the main package to add spec.patches after")
    prep = next((i for i, body in enumerate(spec.bodies) if re.match(r"^%prep\b", body)), None)
    if prep is None:
        raise UsageError(f"{spec.path}: no %prep section to apply spec.patches in")
    stop = next((i for i in range(prep + 1, len(spec.bodies)) if _SECTION.match(spec.bodies[i])), len(spec.bodies))
    applied = [i for i in range(prep + 1, stop) if _APPLY.match(spec.bodies[i])]
    if not applied:
        raise UsageError(f"{spec.path}:{prep + 1}: %prep has no %setup or %patch line to apply spec.patches after")
    first = max(numbers, default=-1) + 1
    # the %prep lines first (they are below the tags, so the tag insertions do not move them)
    at = applied[-1] + 1
    for offset, patch in enumerate(edits.patches):
        _insert(spec, at + offset, f"%patch{first + offset} -p{patch.level}")
    at = tags[-1] + 1
    for offset, patch in enumerate(edits.patches):
        _insert(spec, at + offset, f"Patch{first + offset}: {patch.path.name}")
        result.changes.append(f"{name}:{at + offset + 1}: added Patch{first + offset}: {patch.path.name},"
                              f" applied in %prep with -p{patch.level}")


def _entries(value: str) -> list[tuple[str, str]]:
    """(name, the entry as written) for each entry of a dependency list."""
    return [(m.group(1), m.group(0)) for m in _ENTRY.finditer(value)]


def _remove_buildrequires(spec, names: tuple[str, ...], result) -> None:
    found: set[str] = set()
    for i in reversed(range(len(spec.bodies))):
        m = _BUILDREQUIRES.match(spec.bodies[i])
        if not m:
            continue
        head, value, tail = m.groups()
        entries = _entries(value)
        kept = [text for entry_name, text in entries if entry_name not in names]
        gone = {entry_name for entry_name, _ in entries if entry_name in names}
        if not gone:
            continue
        found |= gone
        if kept:
            spec.bodies[i] = f"{head}{', '.join(kept)}{tail}"
            result.changes.append(f"{spec.path.name}:{i + 1}: removed {', '.join(sorted(gone))} from {head.strip()}")
        else:
            del spec.bodies[i]
            del spec.endings[i]
            result.changes.append(f"{spec.path.name}:{i + 1}: removed {head.strip()} {value}")
    missing = [n for n in names if n not in found]
    if missing:
        raise UsageError(f"{spec.path}: spec.buildrequires.remove: {', '.join(missing)} is in no BuildRequires or"
                         " BuildPrereq line; nothing to remove")


def _add_buildrequires(spec, wanted: tuple[str, ...], result) -> None:
    end = _header_end(spec)
    lines = [i for i in range(end) if _BUILDREQUIRES.match(spec.bodies[i])]
    anchor = lines[-1] if lines else next((i for i in range(end) if _RELEASE.match(spec.bodies[i])), None)
    if anchor is None:
        raise UsageError(f"{spec.path}: no Release: tag in the main package to add BuildRequires after")
    for offset, entry in enumerate(wanted):
        _insert(spec, anchor + 1 + offset, f"BuildRequires: {entry}")
        result.changes.append(f"{spec.path.name}:{anchor + 2 + offset}: added BuildRequires: {entry}")
