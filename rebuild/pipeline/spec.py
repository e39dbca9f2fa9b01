"""Spec edits that work on 2003-era specs, byte for byte.

Uses specfile's text-level ``MacroDefinitions`` (no librpm parse, so old tags like
``Copyright:`` that modern rpm rejects do not matter). Only the edited lines change:
line endings, tabs, spacing and a missing final newline are kept. The result is
validated later with the target's own rpm, inside the container.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from specfile.macro_definitions import MacroDefinitions

from rebuild.errors import UsageError
from rebuild.config.recipe import SpecEdits

_LOOKS_LIKE_SPEC = re.compile(r"^\s*(?:(?:Name|Version|Release|Summary)\s*:|%(?:define|global|description|prep)\b)", re.M | re.I)
# the largest real specs are a few hundred KiB; the spec parser's time grows faster than the size
MAX_SPEC = 4 << 20
_RELEASE_TAG = re.compile(r"^(Release\s*:\s*)(.*?)(\s*)$", re.I)


@dataclass
class SpecText:
    """A spec's text split into lines, each with its own ending kept apart."""

    path: Path
    encoding: str
    bodies: list[str]
    endings: list[str]

    @classmethod
    def read(cls, path: Path) -> "SpecText":
        from rebuild.files import read_user_file

        path = Path(path)
        raw = read_user_file(path, "spec file", max_bytes=MAX_SPEC)
        if not raw.strip():
            raise UsageError(f"{path}: empty file, not a spec; point at the .spec from the SRPM")
        if b"\0" in raw:
            raise UsageError(f"{path}: binary file (NUL bytes), not a spec; point at the .spec, not the .rpm")
        try:
            text, encoding = raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = raw.decode("latin-1"), "latin-1"
            controls = sum(1 for ch in text if "\x80" <= ch <= "\x9f" or (ch < " " and ch not in "\t\r\n\f"))
            if controls:
                raise UsageError(f"{path}: neither UTF-8 nor Latin-1 text ({controls} control bytes); not a spec")
        if not _LOOKS_LIKE_SPEC.search(text):
            raise UsageError(f"{path}: no Name:/Release: tag or %define found; not a spec file")
        bodies, endings = [], []
        for piece in text.split("\n"):
            if piece.endswith("\r"):
                bodies.append(piece[:-1])
                endings.append("\r\n")
            else:
                bodies.append(piece)
                endings.append("\n")
        # the last piece has no newline after it (empty when the file ends with one)
        endings[-1] = ""
        if bodies[-1] == "":
            bodies.pop()
            endings.pop()
        return cls(path, encoding, bodies, endings)

    def text(self) -> str:
        return "".join(b + e for b, e in zip(self.bodies, self.endings))

    @property
    def newline(self) -> str:
        return "\r\n" if self.endings.count("\r\n") > self.endings.count("\n") else "\n"


@dataclass
class EditResult:
    """What an edit did: the new text, one note per change, and what was left alone and why."""

    spec: SpecText
    original: str
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def edited(self) -> str:
        return self.spec.text()

    @property
    def changed(self) -> bool:
        return self.edited != self.original

    def diff(self, name: str | None = None) -> str:
        name = name or self.spec.path.name
        lines = difflib.unified_diff(
            self.original.splitlines(keepends=True),
            self.edited.splitlines(keepends=True),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
        )
        out = []
        for line in lines:
            out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
        return "".join(out)


def _definitions(spec: SpecText) -> list[tuple[int, int, object]]:
    """(first line index, line count, MacroDefinition) for every definition specfile finds."""
    found = []
    index = 0
    for md in MacroDefinitions.parse(list(spec.bodies)):
        raw = md.get_raw_data()
        span = md.body.count("\n") + 1
        start = index + len(raw) - span
        found.append((start, span, md))
        index += len(raw)
    return found


def _is_commented(md) -> bool:
    return bool(md.commented_out or "#" in md._prefix)  # specfile keeps "#%define" as prefix "#"


def edit_spec(spec: SpecText, edits: SpecEdits) -> EditResult:
    """Apply *edits* to *spec* in memory. UsageError when a macro to change is defined nowhere."""
    result = EditResult(spec=spec, original=spec.text())
    path = spec.path
    for name, value in edits.macros:
        live = []
        for start, span, md in _definitions(spec):
            if md.name != name:
                continue
            if _is_commented(md):
                result.notes.append(f"{path.name}:{start + 1}: commented-out definition of {name} left alone")
                continue
            live.append((start, span, md))
        _note_conditional_defaults(spec, name, result)
        if not live:
            raise UsageError(
                f"{path}: macro {name!r} has no %define or %global to change; check the name,"
                f" or use add_macros to define a new one"
            )
        if len(live) > 1:
            lines = ", ".join(str(s + 1) for s, _, _ in live)
            result.notes.append(f"{path.name}: {name} is defined {len(live)} times (lines {lines}); all are edited")
        # edit from the bottom so earlier indices stay valid when a multi-line body shrinks
        for start, span, md in sorted(live, key=lambda item: item[0], reverse=True):
            if md.body == value:
                result.notes.append(f"{path.name}:{start + 1}: {name} is already {value}; nothing to change")
                continue
            old = md.body
            md.body = value
            spec.bodies[start : start + span] = [str(md)]
            ending = spec.endings[start + span - 1]
            spec.endings[start : start + span] = [ending if span == 1 else spec.endings[start]]
            result.changes.append(f"{path.name}:{start + 1}: {name} {old!r} -> {value!r}")
    for name, value in edits.add_macros:
        _add_macro(spec, name, value, result)
    if edits.release_suffix:
        _release_suffix(spec, edits.release_suffix, result)
    return result


def _note_conditional_defaults(spec: SpecText, name: str, result: EditResult) -> None:
    pattern = re.compile(r"%\{!?\?" + re.escape(name) + r":\s*%(?:define|global)\s+" + re.escape(name) + r"\b")
    for i, body in enumerate(spec.bodies):
        if pattern.search(body):
            result.notes.append(
                f"{spec.path.name}:{i + 1}: conditional default of {name} left alone"
                f" (it only applies when {name} is not already defined)"
            )


def _add_macro(spec: SpecText, name: str, value: str, result: EditResult) -> None:
    for start, _span, md in _definitions(spec):
        if md.name == name and not _is_commented(md):
            if md.body == value:
                result.notes.append(f"{spec.path.name}:{start + 1}: {name} is already defined as {value}; nothing to add")
                return
            raise UsageError(
                f"{spec.path}:{start + 1}: add_macros: {name} is already defined here as {md.body!r};"
                f" use spec.macros to change it"
            )
    spec.bodies.insert(0, f"%define {name} {value}")
    spec.endings.insert(0, spec.newline)
    result.changes.append(f"{spec.path.name}:1: added %define {name} {value}")


def _release_suffix(spec: SpecText, suffix: str, result: EditResult) -> None:
    for i, body in enumerate(spec.bodies):
        m = _RELEASE_TAG.match(body)
        if not m:
            continue
        head, value, tail = m.groups()
        if value.endswith(suffix):
            result.notes.append(f"{spec.path.name}:{i + 1}: Release already ends in {suffix}; nothing to change")
        else:
            spec.bodies[i] = f"{head}{value}{suffix}{tail}"
            result.changes.append(f"{spec.path.name}:{i + 1}: Release {value!r} -> {value + suffix!r}")
        return
    raise UsageError(f"{spec.path}: no Release: tag to append {suffix!r} to")


def release_uses(spec_text: str, names: list[str]) -> bool:
    """Whether the Release tag refers to any of *names* (so editing them must change Release)."""
    for line in spec_text.splitlines():
        m = _RELEASE_TAG.match(line)
        if m:
            return any(re.search(r"%\{?[?!]*" + re.escape(n) + r"\b", m.group(2)) for n in names)
    return False


def encoded(path: Path, text: str, encoding: str) -> bytes:
    """*text* in the spec's own encoding, or a UsageError naming what it cannot hold (nothing is written)."""
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as exc:
        raise UsageError(f"{path}: the edit holds {text[exc.start:exc.end]!r}, which a {encoding} spec cannot hold;"
                         " use a value in the spec's own encoding") from None


def patch_file(path: Path, edits: SpecEdits, *, output: Path | None = None) -> EditResult:
    """``rebuild patch``: edit *path* (in place, keeping SPEC.orig) or write to *output*.

    The edited text is encoded before anything is written, so a value the spec's encoding cannot
    hold leaves neither a changed spec nor a SPEC.orig behind."""
    from rebuild.files import atomic_write

    path = Path(path)
    spec = SpecText.read(path)
    result = edit_spec(spec, edits)
    data = encoded(path, result.edited, spec.encoding)
    mode = path.stat().st_mode & 0o7777
    if output is not None:
        atomic_write(Path(output), data, mode=mode)
    elif result.changed:
        orig = path.with_name(path.name + ".orig")
        if not orig.exists() and not orig.is_symlink():
            atomic_write(orig, encoded(path, result.original, spec.encoding), mode=mode)
        atomic_write(path, data, mode=mode)
    return result
