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

from rebuild.config.recipe import SpecEdits
from rebuild.errors import UsageError
from rebuild.files import atomic_write, read_user_file
from rebuild.pipeline import specrules
from rebuild.pipeline.backport import apply_backport

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
    def read(cls, path: Path) -> SpecText:
        path = Path(path)
        raw = read_user_file(path, "spec file", max_bytes=MAX_SPEC)
        if not raw.strip():
            raise UsageError(f"{path}: empty file, not a spec; point at the .spec from the SRPM")
        if b"\0" in raw:
            raise UsageError(f"{path}: binary file (NUL bytes), not a spec; point at the .spec, not the .rpm")
        try:
            text, encoding = raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            # Latin-1, CP1251, or UTF-8 with a stray 8-bit byte (rpm 4.0.4 reads them all): each byte one
            # character, so an edit of an ASCII definition line writes every other byte back as it was
            text, encoding = raw.decode("latin-1"), "latin-1"
            controls = [i for i, ch in enumerate(text) if ch < " " and ch not in "\t\r\n\f\v\x1b"]
            if controls:
                raise UsageError(f"{path}: not text ({len(controls)} control bytes, the first at byte offset"
                                 f" {controls[0]}); not a spec") from None
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
        return "".join(b + e for b, e in zip(self.bodies, self.endings, strict=False))

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
    #: macros asked for with the value every definition already has
    unchanged: list[str] = field(default_factory=list)

    @property
    def edited(self) -> str:
        return self.spec.text()

    @property
    def changed(self) -> bool:
        return self.edited != self.original

    def diff(self, name: str | None = None) -> str:
        name = name or self.spec.path.name
        lines = difflib.unified_diff(
            _lines(self.original),
            _lines(self.edited),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
        )
        out = []
        for line in lines:
            out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
        return "".join(out)


def _lines(text: str) -> list[str]:
    """*text* in lines ending at \\n only (a lone CR, form feed or other separator str.splitlines knows is
    part of a spec line)."""
    return [piece + "\n" for piece in text.split("\n")[:-1]] + ([text.rsplit("\n", 1)[-1]] if not text.endswith("\n") else [])


# rpm reads "# %define x 1" (a comment) as a definition too, and "%global x\\" (no blank before the
# backslash) as a definition whose body is on the next line; specfile's parser knows neither spelling
_COMMENTED = re.compile(r"^(\s*#\s*)(%(?:define|global)\b)")
# a line rpm runs as a definition: %define/%global at its start, or after a # (rpm expands macros in comments);
# not a C "#define" in a here-document, not an escaped "#%%global", not a "%dnl" line (discarded by rpm >= 4.15)
_RUNS = re.compile(r"^\s*(?:#\s*)?%(?:define|global)\b")
_TIGHT_BACKSLASH = re.compile(r"^(\s*#?\s*%(?:define|global)\s+[A-Za-z_][A-Za-z0-9_]*(?:\([^)]*\))?)\\$")


# "%define x: 80": rpm 4.18 warns ("needs whitespace before body") and defines x as ": 80"
_COLON_NAME = re.compile(r"^(\s*#?\s*%(?:define|global)\s+[A-Za-z_][A-Za-z0-9_]*):(?=\s)")


def _parser_view(line: str) -> str:
    """*line* as specfile's parser must see it to find every definition rpm runs."""
    line = _COMMENTED.sub(lambda m: "#" + m.group(2), line)
    line = _COLON_NAME.sub(lambda m: m.group(1) + " :", line)
    return _TIGHT_BACKSLASH.sub(lambda m: m.group(1) + " \\", line)


def _definitions(spec: SpecText) -> list[tuple[int, int, object]]:
    """(first line index, line count, MacroDefinition) for every definition rpm runs."""
    found = []
    index = 0
    # specfile (with librpm) loads in ~0.1 s: only the commands that edit a spec pay for it
    from specfile.macro_definitions import MacroDefinitions

    for md in MacroDefinitions.parse([_parser_view(line) for line in spec.bodies]):
        raw = md.get_raw_data()
        span = md.body.count("\n") + 1
        start = index + len(raw) - span
        if _RUNS.match(spec.bodies[start]):
            found.append((start, span, md))
        index += len(raw)
    return found


def _is_commented(md) -> bool:
    return bool(md.commented_out or "#" in md._prefix)  # specfile keeps "#%define" as prefix "#"


def base_name(name: str) -> str:
    """A macro's name without its options: foo() and foo(a:) are foo."""
    return name.split("(", 1)[0]


def check_value(name: str, value: str) -> tuple[str, str | None]:
    """The body to write for *value*, and a note when it is not *value* itself; UsageError for a value that
    would break the spec (the next edit could not read it back)."""
    if "\n" in value or "\r" in value:
        raise UsageError(f"the value for {name} must be one line")
    if value.endswith("\\"):
        raise UsageError(f"the value for {name} ends in a backslash, which would join the next line of the spec"
                         " to its body; drop the backslash")
    if not value.strip():
        return "%{nil}", f"{name} set to %{{nil}}: rpm refuses an empty body (\"Macro %{name} has empty body\")"
    if value != value.strip():  # rpm trims a body's blanks itself; kept, each run would add one more
        stripped, _ = check_value(name, value.strip())
        return stripped, f"the value for {name} is written without its leading and trailing blanks"
    closers = {"{": "}", "(": ")", "[": "]"}
    stack: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "%" and i + 1 < len(value) and value[i + 1] == "%":
            i += 2
            continue
        if ch == "%" and i + 1 < len(value) and value[i + 1] in closers:
            stack.append(closers[value[i + 1]])
            i += 2
            continue
        if stack and ch in closers:
            stack.append(closers[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
        i += 1
    if stack:
        raise UsageError(f"the value for {name} opens a macro it never closes (a missing {stack[-1]!r}): rpm would"
                         " read the rest of the spec into its body")
    return value, None


def edit_spec(spec: SpecText, edits: SpecEdits) -> EditResult:
    """Apply *edits* to *spec* in memory. UsageError when a macro to change is defined nowhere, or when the
    value would break the spec."""
    result = EditResult(spec=spec, original=spec.text())
    path = spec.path
    for name, wanted in edits.macros:
        value, value_note = check_value(name, wanted)
        if value_note:
            result.notes.append(value_note)
        live = [(start, span, md) for start, span, md in _definitions(spec) if base_name(md.name) == base_name(name)]
        if "(" in name and name.partition("(")[2].rstrip(")") and any(md.name != name for _, _, md in live):
            raise UsageError(f"{name}: options are not changed by an edit (the definition keeps its own,"
                             f" {', '.join(sorted({md.name for _, _, md in live}))}); give {base_name(name)}()")
        conditional = _edit_conditional(spec, base_name(name), value, result)
        if not live and conditional:
            specrules.note_conditional_defaults(spec, base_name(name), result.notes, advise=True)
            continue
        if not live:
            raise UsageError(specrules.nothing_to_edit(spec, base_name(name)))
        specrules.refuse_if_a_tag_sets(spec, base_name(name))
        specrules.refuse_if_a_bcond_overrides(spec, base_name(name), [start for start, _, _ in live])
        specrules.note_conditional_defaults(spec, base_name(name), result.notes)
        # per macro: an earlier edit may have folded a multi-line body into one line, moving the lines after it
        untaken = specrules.untaken_branches(spec.bodies)
        if len(live) > 1:
            lines = ", ".join(str(s + 1) for s, _, _ in live)
            result.notes.append(f"{path.name}: {name} is defined {len(live)} times (lines {lines}); all are edited")
        if all(md.body == value for _, _, md in live):
            result.unchanged.append(base_name(name))
        # edit from the bottom so earlier indices stay valid when a multi-line body shrinks
        for start, span, md in sorted(live, key=lambda item: item[0], reverse=True):
            where = f"{path.name}:{start + 1}"
            if _is_commented(md):
                result.notes.append(f"{where}: a comment, but rpm expands macros in comments (rpm 4.18 warns, 4.0.x"
                                    f" does it silently), so its definition of {base_name(name)} runs: edited too")
            if md.name != base_name(md.name):
                result.notes.append(f"{where}: {md.name} is a parametric macro; its body is set, its options kept")
            if start in untaken:
                result.notes.append(f"{where}: inside {untaken[start]}, which is false for this spec's own"
                                    f" definitions: rpm skips this definition of {base_name(name)} (edited all the same)")
            if _COLON_NAME.match(spec.bodies[start]):
                result.notes.append(f"{where}: `{spec.bodies[start].strip()}` has no blank before its body (rpm 4.18"
                                    f" warns and takes the colon into it): written with a blank, without the colon")
            if md.body == value:
                result.notes.append(f"{where}: {name} is already {value}; nothing to change")
                continue
            if span > 1:
                result.notes.append(f"{where}: the body of {base_name(name)} spanned {span} lines (\\ continuations or"
                                    f" %{{expand:...}}, perhaps a shell fragment); it is now the one line {value!r}")
            old = md.body
            md.body = value
            new_line = str(md)
            original = spec.bodies[start]
            prefix = _COMMENTED.match(original)
            if prefix:  # keep the comment's own spelling ("# %define")
                new_line = prefix.group(1) + new_line[new_line.index("%"):]
            spec.bodies[start : start + span] = [new_line]
            ending = spec.endings[start + span - 1]
            spec.endings[start : start + span] = [ending if span == 1 else spec.endings[start]]
            result.changes.append(f"{where}: {base_name(name)} {old!r} -> {value!r}")
    for name, value in edits.add_macros:
        value, value_note = check_value(name, value)
        if value_note:
            result.notes.append(value_note)
        _add_macro(spec, name, value, result)
    if edits.release_suffix:
        _release_suffix(spec, edits.release_suffix, result)
    apply_backport(spec, edits, result)
    return result


def _edit_conditional(spec: SpecText, name: str, value: str, result: EditResult) -> int:
    """Definitions of *name* inside a conditional on another macro (``%{?rh7:%define errata 73}``, as 2000s specs
    for several releases wrote them): rpm runs the one whose condition holds, so each is set to *value* and
    named in a note with its condition. Returns how many there were. A conditional default of *name* itself
    (``%{!?errata:%global errata 80}``) is not one of them."""
    pattern = re.compile(r"(%\{(!?\?!?)([A-Za-z_]\w*):\s*%(?:define|global)\s+" + re.escape(name) + r"\s+)([^{}%]*?|"
                         r"(?:[^{}]|%\{[^{}]*\})*?)(\s*\})")
    count = 0
    for i, body in enumerate(spec.bodies):
        def edit(m: re.Match, i: int = i) -> str:
            nonlocal count
            negated, condition = "!" in m.group(2), m.group(3)  # rpm reads %{?!x: as %{!?x:
            if condition == name:
                return m.group(0)
            count += 1
            when = f"when {condition} is {'not ' if negated else ''}defined"
            if m.group(4).strip() == value:
                result.notes.append(f"{spec.path.name}:{i + 1}: {name} is already {value} {when}; nothing to change")
                return m.group(0)
            result.changes.append(f"{spec.path.name}:{i + 1}: {name} {m.group(4).strip()!r} -> {value!r} ({when})")
            result.notes.append(f"{spec.path.name}:{i + 1}: {name} is defined {when}: edited too, as rpm runs it"
                                " where that holds")
            return m.group(1) + value + m.group(5)

        spec.bodies[i] = pattern.sub(edit, body)
    return count


def _add_macro(spec: SpecText, name: str, value: str, result: EditResult) -> None:
    for start, _span, md in _definitions(spec):
        if base_name(md.name) == base_name(name):
            if md.body == value:
                result.notes.append(f"{spec.path.name}:{start + 1}: {name} is already defined as {value}; nothing to add")
                return
            raise UsageError(
                f"{spec.path}:{start + 1}: add_macros: {name} is already defined here as {md.body!r};"
                f" change it with --set {name}=VALUE (spec.macros in a recipe)"
            )
    spec.bodies.insert(0, f"%define {name} {value}")
    spec.endings.insert(0, spec.newline)
    result.changes.append(f"{spec.path.name}:1: added %define {name} {value}")


def _release_suffix(spec: SpecText, suffix: str, result: EditResult) -> None:
    """*suffix* appended to every ``Release:`` line: each branch of an %if, and subpackages' own."""
    found = 0
    for i, body in enumerate(spec.bodies):
        m = _RELEASE_TAG.match(body)
        if not m:
            continue
        found += 1
        head, value, tail = m.groups()
        if value.endswith(suffix):
            result.notes.append(f"{spec.path.name}:{i + 1}: Release already ends in {suffix}; nothing to change")
        else:
            spec.bodies[i] = f"{head}{value}{suffix}{tail}"
            result.changes.append(f"{spec.path.name}:{i + 1}: Release {value!r} -> {value + suffix!r}")
    if not found:
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
